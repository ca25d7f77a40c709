"""The wheel is a tool: installed into a fresh virtual environment, ``esa-train``,
``esa-predict`` and ``esa-evaluate`` run from a folder outside the clone, with the configs
shipped in the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

COMMANDS = ("esa-train", "esa-predict", "esa-evaluate", "esa-merge")


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert done.returncode == 0, f"{cmd}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def build_wheel(work: Path) -> Path:
    """The wheel of a copy of what the package is built from (nothing else of the clone)."""
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in ("esa_lightning", "hydra_plugins"):
        shutil.copytree(
            REPO / package,
            src / package,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    dist = work / "dist"
    pip_wheel = "-m pip wheel --no-deps --no-build-isolation --quiet -w".split()
    run([sys.executable, *pip_wheel, str(dist), str(src)], cwd=work)
    (wheel,) = dist.glob("esa_lightning-*.whl")
    return wheel


def fresh_venv(work: Path) -> Path:
    """A new virtual environment that sees this environment's packages (torch etc., not
    downloaded again) behind its own site-packages, but not the clone."""
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    parent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(own, "parent_environment.pth").write_text("\n".join(sorted(parent)) + "\n")
    return venv


def test_the_wheel_ships_the_hydra_plugin_in_the_shared_namespace(tmp_path):
    """The search path plugin that registers the configs' resolvers for Hydra's own compose
    (``hydra_plugins/esa_lightning_resolvers``) is in the wheel, and ``hydra_plugins`` stays a
    namespace package (an ``__init__.py`` of ours would hide other packages' Hydra plugins)."""
    with zipfile.ZipFile(build_wheel(tmp_path)) as wheel:
        names = set(wheel.namelist())
    assert "hydra_plugins/esa_lightning_resolvers/__init__.py" in names
    assert "hydra_plugins/__init__.py" not in names
    assert "esa_lightning/conf/__init__.py" in names


@pytest.mark.slow
def test_the_installed_wheel_trains_predicts_and_evaluates_outside_the_clone(tmp_path):
    wheel = build_wheel(tmp_path)
    venv = fresh_venv(tmp_path)
    bin_dir = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYDRA_FULL_ERROR")}
    env |= {"OMP_NUM_THREADS": "1", "XDG_DATA_HOME": str(tmp_path / "user_data")}
    env.pop("ESA_LIGHTNING_ROOT", None)
    pip_install = "-m pip install --no-deps --no-index --quiet".split()
    run([str(bin_dir / "python"), *pip_install, str(wheel)], cwd=tmp_path, env=env)
    assert all((bin_dir / name).is_file() for name in COMMANDS)

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = run(
        [str(bin_dir / "python"), "-c", "import esa_lightning; print(esa_lightning.__file__)"],
        cwd=work,
        env=env,
    )
    assert Path(where.strip()).is_relative_to(venv)

    run([str(bin_dir / "esa-train"), "experiment=smoke"], cwd=work, env=env)
    (train_run,) = (work / "outputs" / "smoke").iterdir()
    assert (train_run / "metrics.json").is_file() and (train_run / "train.log").is_file()
    assert (train_run / "detector").is_dir()
    # the embedded mission went to the user's data folder, not into the clone or the cwd
    assert (tmp_path / "user_data" / "esa_lightning" / "datasets" / "synthetic_default").is_dir()
    assert not (work / "datasets").exists()

    # one alarm figure (written under the umask too): the default 100 took 15 s
    predict = [str(bin_dir / "esa-predict"), f"ckpt={train_run / 'detector'}", "max_figures=1"]
    run(predict, cwd=work, env=env)
    (predict_run,) = (work / "outputs" / "predict").iterdir()
    assert (predict_run / "submission.csv").is_file()
    assert (predict_run / "predict.log").is_file()

    run(
        [str(bin_dir / "esa-evaluate"), f"predictions={predict_run / 'submission.csv'}"],
        cwd=work,
        env=env,
    )
    (evaluate_run,) = (work / "outputs" / "evaluate").iterdir()
    assert (evaluate_run / "evaluation.json").is_file()

    # the installed commands write through the same writers: files follow the umask (022)
    modes = {p: p.stat().st_mode & 0o777 for p in (work / "outputs").rglob("*") if p.is_file()}
    assert modes and all(mode == 0o644 for mode in modes.values()), modes
