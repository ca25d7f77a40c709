"""Every entry point's answer to Hydra's flags is one ``error:`` line naming the value and what
to do, exit code 2, before anything runs.

Found by running ``train.py``, ``predict.py``, ``evaluate.py``, ``merge.py`` and ``sweep.py``
with ``--help``, ``--cfg job``, ``-c job``, ``--info``, a misspelt group option and a bad
``-cn``. Before: ``--cfg nope``, ``--nope`` or ``-cp`` without a folder were Hydra's usage
message of several lines; ``-m --cfg job`` a ``ValueError`` traceback; ``--cfg job`` or
``--info`` with an override that does not compose (``experiment=nope``) or a bad ``-cn``
Hydra's message of several lines, exit code 1 (the early check let any such flag through);
``-cn nope`` said ``Cannot find primary config 'nope'. Check that it's in your config search
path.``, naming neither the folder nor its configs; ``-cd nope`` ``Additional config directory
... not found``; ``sweep.py --cfg job`` argparse's usage message.
"""

from __future__ import annotations

import pytest

from tests.conftest import CONF
from tests.unit.test_config_flags_checks import refused
from tests.unit.test_config_path_cwd import ENTRY_POINTS, own_configs, run


@pytest.mark.parametrize("args, said", [
    (["--cfg", "nope"], "argument --cfg/-c: invalid choice: 'nope'"),
    (["--info", "nope"], "argument --info/-i: invalid choice: 'nope'"),
    (["seed=1", "--nope"], "unrecognized arguments: --nope"),
    (["seed=1", "-cp"], "argument --config-path/-cp: expected one argument"),
    (["-m", "--cfg", "job"], "-m and --cfg: Hydra takes one of"),
    (["--info", "-m", "seed=1"], "-m and --info: Hydra takes one of"),
])
def test_flags_hydra_refuses_are_named_on_one_line(args, said):
    from esa_lightning.jobs.config_path import hydra_flags_refusal, overrides_together

    reason = hydra_flags_refusal(overrides_together(args))
    assert reason is not None and reason.startswith(said), reason
    assert "\n" not in reason


@pytest.mark.parametrize("args", [[], ["--cfg", "job"], ["-c", "all", "--resolve"], ["--info"],
                                  ["--info", "defaults"], ["-m", "seed=1,2"], ["--help"],
                                  ["--version"], ["-cp", "/x", "-cn", "y", "seed=1"]])
def test_flags_hydra_takes_pass(args):
    from esa_lightning.jobs.config_path import hydra_flags_refusal

    assert hydra_flags_refusal(args) is None


@pytest.mark.parametrize("flag", [["--cfg", "job"], ["-c", "all"], ["--info"],
                                  ["--cfg", "job", "--resolve"], ["--info", "defaults"]])
def test_a_shown_config_that_does_not_compose_is_one_line(tmp_path, capsys, flag):
    own = own_configs(tmp_path)
    line = refused(capsys, ["experiment=nope", *flag])
    assert "Could not find 'experiment/nope'" in line
    line = refused(capsys, ["-cp", str(own), "-cn", "my_train", "experiment=nope", *flag])
    assert "In 'my_train': Could not find 'experiment/nope'" in line


def test_a_shown_config_that_composes_goes_to_hydra(tmp_path):
    from esa_lightning.cli.overrides import composes_or_exit

    own = own_configs(tmp_path)
    composes_or_exit("train", ["--cfg", "job", "experiment=smoke", "seed=abc"])  # no run: shown
    composes_or_exit("train", ["-cp", str(own), "-cn", "my_train", "--info", "seed=3"])


def test_a_missing_primary_config_names_the_folder_and_its_configs(tmp_path, capsys):
    own = own_configs(tmp_path)
    line = refused(capsys, ["-cn", "nope"])
    assert line.startswith("error: config 'nope' not found: no nope.yaml in conf/"), line
    assert "predict, train" in line and "-cn NAME" in line
    line = refused(capsys, ["-cp", str(own), "-cn", "my_nope", "--cfg", "job"])
    assert f"no my_nope.yaml in {own}: " in line and "my_predict, my_train" in line, line
    line = refused(capsys, ["-m", "-cn", "nope", "seed=1,2"])
    assert line.startswith("error: sweep job 0 (seed=1): config 'nope' not found"), line


def test_a_config_dir_that_is_no_folder_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, ["-cd", "nope", "seed=1"])
    assert line.startswith(f"error: -cd nope: no such folder ({tmp_path / 'nope'})"), line


@pytest.mark.parametrize("job", ENTRY_POINTS)
def test_each_entry_point_answers_bad_flags_in_one_line(tmp_path, job):
    for args, said in ((["-cn", "nope", "--cfg", "job"], "error: config 'nope' not found"),
                       (["--cfg", "nope"], "error: argument --cfg/-c: invalid choice: 'nope'")):
        proc = run(job, tmp_path, *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0].startswith(said), lines
        assert f"python {job}.py --hydra-help" in lines[0] or "-cn NAME" in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, said", [
    (["--cfg", "job"], "unrecognized arguments: --cfg"),
    (["-c", "job"], "ambiguous option: -c could match"),
    (["--info"], "unrecognized arguments: --info"),
])
def test_sweep_py_names_hydras_flags_on_one_line(capsys, args, said):
    from esa_lightning.jobs import optuna_sweep

    with pytest.raises(SystemExit) as stopped:
        optuna_sweep.main(["hparams_search=optuna", *args], CONF, [])
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {said}"), lines
    assert "--help lists its flags" in lines[0] and "--cfg job shows a trial's config" in lines[0]


def test_version_is_printed_once(tmp_path):
    """``train.py --version`` printed ``Hydra 1.3.8`` four times: the early checks' own reads of
    the command line by Hydra's parser printed it too."""
    proc = run("train", tmp_path, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines() == [proc.stdout.strip().splitlines()[0]]
    assert proc.stdout.startswith("Hydra ")


@pytest.mark.parametrize("job", ["predict", "evaluate", "merge"])
@pytest.mark.parametrize("override", ["experiment=nope", "model=zscore"])
def test_a_group_the_job_does_not_choose_is_named_with_its_groups(job, override):
    """``predict.py experiment=nope`` was Hydra's ``To append to your default list use
    +experiment=nope``, which does not compose either (predict.py's config has no model)."""
    from esa_lightning.cli.overrides import compose_error

    group = override.split("=")[0]
    reason = compose_error(job, [override], check=True)
    assert reason is not None and reason.startswith(
        f"{override}: {job}.py (conf/{job}.yaml) chooses no {group} (its config groups: "), reason
    assert "data" in reason and reason.endswith(f"); {group}= is train.py's"), reason


def test_hydras_advice_to_append_a_group_is_kept_where_it_composes():
    from esa_lightning.cli.overrides import compose_error

    reason = compose_error("predict", ["debug=default"])
    assert reason is not None and "use +debug=default" in reason, reason


def test_sweep_py_names_a_missing_config_and_a_bad_override_without_a_column(capsys):
    """``sweep.py -cn nope`` said ``column 'overrides': the overrides do not compose: Cannot
    find primary config 'nope'...``: a command line has no columns, and no folder was named."""
    from esa_lightning.jobs import optuna_sweep

    assert optuna_sweep.main(["hparams_search=optuna", "-cn", "nope"], CONF, []) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: config 'nope' not found: no nope.yaml in conf/ (the package's configs): "), lines
    assert optuna_sweep.main(["hparams_search=optuna", "experiment=nope"], CONF, []) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: the overrides do not compose: In 'train': Could not find 'experiment/nope'"), lines
