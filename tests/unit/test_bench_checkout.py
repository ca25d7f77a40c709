"""Benchmark scripts import the esa_lightning package of their own checkout.

``python benchmarks/<x>.py`` (and the workers the scripts start the same way) puts only
``benchmarks/`` on ``sys.path``: the package came from wherever it was installed (an editable
install of another checkout) while the train.py / predict.py they run from the repository root,
and ``full_scale.pipeline_code``'s digest, used this checkout's code.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"
LOCAL = {p.stem for p in BENCH.glob("*.py")}

SENTINEL = """import os, sys
print("SENTINEL", __file__, flush=True)
os._exit(0)
"""


def _imported(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name.split(".")[0] for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module.split(".")[0]]
    return []


@pytest.mark.parametrize("path", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_every_benchmark_module_imports_the_checkout_bootstrap_first(path):
    """The bootstrap comes before the package and before any other benchmark module (which
    could import the package) at module level."""
    if path.name == "_checkout.py":
        return
    tree = ast.parse(path.read_text())
    top = [name for node in tree.body for name in _imported(node)]
    nested = [name for node in ast.walk(tree) for name in _imported(node)]
    wanted = [n for n in top if n == "esa_lightning" or n in LOCAL]
    if not wanted and "esa_lightning" not in nested:
        return  # imports neither the package nor another benchmark module
    assert wanted and wanted[0] == "_checkout", f"{path.name}: imports {wanted[:3]} first"


@pytest.mark.parametrize(
    "argv",
    [
        ["full_scale.py", "read-worker", "no_mission", "no_cache"],
        ["spike_tail.py", "--help"],
        ["bench_predict.py", "--worker", "no_test", "no_ref.csv"],
    ],
    ids=lambda a: a[0],
)
def test_a_script_run_by_path_imports_the_package_beside_it(tmp_path, argv):
    """A copy of benchmarks/ beside a sentinel package: the script (started from another
    folder, as a worker is) imports the sentinel, not the installed package."""
    tree = tmp_path / "checkout"
    shutil.copytree(BENCH, tree / "benchmarks", ignore=shutil.ignore_patterns("*.png", "*.md"))
    (tree / "esa_lightning").mkdir()
    (tree / "esa_lightning" / "__init__.py").write_text(SENTINEL)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / argv[0]), *argv[1:]],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
    )
    sentinel = str((tree / "esa_lightning" / "__init__.py").resolve())
    assert f"SENTINEL {sentinel}" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
