"""Config keys that did nothing: ``callbacks.model_checkpoint.dirpath`` and ``tags``.

``dirpath`` was in the config and never read: each component's checkpoints go to
``<run folder>/checkpoints/<component>/``, where ``ckpt_path=last``, the run guard and the
artifact find them, whatever it said. It is no longer a key, and one given anyway (added with
``+``, in a config of one's own, a component's, through an interpolation) is refused naming the
key before anything is written. ``tags`` were kept in the saved config only; they now reach
TensorBoard's HParams tab and a ``-m`` sweep's ``summary.csv``, and a value that is no list of
labels is refused naming the key.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from tests.conftest import CONF


def test_the_checkpoint_config_has_no_dirpath():
    from esa_lightning.jobs.paths import compose_config

    assert "dirpath" not in compose_config("train", []).callbacks.model_checkpoint
    for experiment in ("smoke", "channel_ensemble", "rolling_gbdt", "esa_full"):
        cfg = compose_config("train", [f"experiment={experiment}"])
        assert "dirpath" not in (cfg.callbacks.get("model_checkpoint") or {}), experiment
    shipped = yaml.safe_load((CONF / "callbacks" / "model_checkpoint.yaml").read_text())
    assert "dirpath" not in shipped["model_checkpoint"]


@pytest.mark.parametrize("overrides", [
    ["+callbacks.model_checkpoint.dirpath=/scratch/ckpts"],
    ["experiment=esa_full", "+components.gru_ae.callbacks.model_checkpoint.dirpath=/scratch"],
    ["+callbacks.mine._target_=lightning.pytorch.callbacks.ModelCheckpoint",
     "+callbacks.mine.dirpath=/scratch"],
])
def test_a_checkpoint_dirpath_is_refused_naming_the_key(overrides):
    from esa_lightning.cli.overrides import compose_error

    reason = compose_error("train", overrides, check=True)
    assert reason is not None
    key = overrides[-1].lstrip("+").split("=", 1)[0]
    assert reason.startswith(f"{key}='/scratch"), reason
    assert "checkpoints/<component>" in reason and "hydra.run.dir" in reason


def test_a_checkpoint_dirpath_without_plus_is_no_key():
    from esa_lightning.cli.overrides import compose_error

    reason = compose_error("train", ["callbacks.model_checkpoint.dirpath=/scratch"], check=True)
    assert reason is not None and "dirpath" in reason


def test_an_interpolated_checkpoint_dirpath_is_refused_by_the_job(tmp_path):
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.resolved_settings import check_interpolated_settings

    cfg = composed(tmp_path, "+where=/scratch",
                   "+callbacks.model_checkpoint.dirpath=${where}/ckpts")
    with pytest.raises(ESAInputError, match=r"callbacks\.model_checkpoint\.dirpath="):
        check_interpolated_settings(cfg)


def test_a_null_dirpath_is_lightnings_default_and_allowed():
    from esa_lightning.cli.overrides import compose_error

    assert compose_error("train", ["+callbacks.model_checkpoint.dirpath=null"],
                         check=True) is None


@pytest.mark.parametrize(("given", "shown"), [
    ("tags=[baseline,q3]", "baseline,q3"),
    ("tags=baseline", "baseline"),
    ("tags=[2024,q3]", "2024,q3"),
])
def test_tags_reach_tensorboards_hparams(tmp_path, given, shown):
    from esa_lightning.jobs.run_logs import run_settings

    assert run_settings(composed(tmp_path, given))["tags"] == shown


def test_no_tags_adds_no_hparam(tmp_path):
    from esa_lightning.jobs.run_logs import run_settings

    assert "tags" not in run_settings(composed(tmp_path))


def composed(folder, *overrides):
    """train.yaml with ``overrides``, its run folder ``folder`` (as Hydra's run sets it)."""
    from esa_lightning.jobs.paths import compose_config

    cfg = compose_config("train", list(overrides))
    cfg.paths.output_dir = str(folder)
    return cfg


@pytest.mark.parametrize("given", [["~tags", "+tags={a:1}"], ["tags=[[a,b]]"],
                                   ["tags=[a,null]"]])
def test_tags_that_are_no_labels_are_refused(given):
    from esa_lightning.cli.overrides import compose_error

    reason = compose_error("train", given, check=True)
    assert reason is not None and reason.startswith("tags="), reason
    assert "list of labels" in reason


def test_a_sweeps_summary_lists_each_jobs_tags(tmp_path):
    from esa_lightning.jobs.sweep import SweepSummary

    for number, tags in enumerate((["baseline", "q3"], [], "solo")):
        job = tmp_path / str(number)
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"tags": tags, "seed": 1}))
        (job / ".hydra" / "overrides.yaml").write_text(f"- seed={number}\n")
        (job / "metrics.json").write_text(json.dumps({"val/EW_F_0.50": 0.5}))
    # each job's tags as its folder's saved config holds them (either launcher's sweep)
    assert SweepSummary().write(tmp_path) == 3

    table = pd.read_csv(tmp_path / "summary.csv", keep_default_na=False)
    assert list(table["tags"]) == ["baseline,q3", "", "solo"]
    assert list(table.columns)[-1] == "status"


def test_an_untagged_sweeps_summary_has_no_tags_column(tmp_path):
    from esa_lightning.jobs.sweep import SweepSummary

    job = tmp_path / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"tags": [], "seed": 1}))
    (job / "metrics.json").write_text(json.dumps({"val/EW_F_0.50": 0.5}))
    SweepSummary().write(tmp_path)
    assert "tags" not in (tmp_path / "summary.csv").read_text().splitlines()[0]


def test_a_sweeps_summary_shows_interpolated_tags_resolved(tmp_path):
    """Before the fix, summary.csv showed ``${x}`` as the saved (unresolved) config holds it."""
    from esa_lightning.jobs.sweep import job_tags

    saved = {
        "resolved": {"x": "q3", "tags": "${x}"},
        "listed": {"x": "q3", "y": 7, "tags": ["baseline", "${x}", "run_${y}"]},
        "unresolvable": {"tags": ["baseline", "${missing}"]},
    }
    for name, config in saved.items():
        (tmp_path / name / ".hydra").mkdir(parents=True)
        (tmp_path / name / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    assert job_tags(tmp_path / "resolved") == "q3"
    assert job_tags(tmp_path / "listed") == "baseline,q3,run_7"
    # an interpolation the saved config cannot resolve is shown as written, not a crash
    assert job_tags(tmp_path / "unresolvable") == "baseline,${missing}"


def test_summary_tags_that_call_a_resolver_are_shown_as_written(tmp_path):
    """Read from a job's folder (a cluster launcher's job), a resolver (``${hydra:...}``) would
    give the summary's value, not the job's."""
    from esa_lightning.jobs.sweep import job_tags

    config = {"name": "${hydra:job.num}", "tags": ["${name}", "${oc.env:HOME}"]}
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    assert job_tags(tmp_path) == "${name},${oc.env:HOME}"


def test_a_local_sweeps_summary_shows_tags_resolved_as_the_job_resolved_them(
        tmp_path, monkeypatch):
    """``tags=[run_${now:...}]`` was shown as written in a local sweep's summary.csv, where the
    job's TensorBoard run showed its value: the summary now takes the job's own config, whose
    ``now`` (Hydra's resolver, registered as Hydra registers it) keeps the job's value."""
    from hydra.core.utils import JobReturn, JobStatus, setup_globals
    from omegaconf import OmegaConf

    from esa_lightning.jobs import sweep

    setup_globals()  # Hydra's resolvers, as in a Hydra job
    monkeypatch.setattr(sweep, "in_local_multirun", lambda: True)
    job = tmp_path / "0"
    (job / ".hydra").mkdir(parents=True)
    written = ["run_${now:%Y-%m-%d_%H-%M-%S-%f}", "${x}"]  # microseconds: a later call differs
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"x": "q3", "tags": written}))
    (job / "metrics.json").write_text(json.dumps({"val/EW_F_0.50": 0.5}))
    cfg = OmegaConf.create({"x": "q3", "tags": written})
    in_job = cfg.tags[0]  # the job resolved it (its TensorBoard run shows this value)
    assert in_job.startswith("run_20") and in_job != OmegaConf.create({"t": written}).t[0]
    config = OmegaConf.create({"hydra": {"job": {"num": 0}, "runtime": {"output_dir": str(job)},
                                         "sweep": {"dir": str(tmp_path)}}})
    sweep.SweepSummary().on_job_end(config, JobReturn(cfg=cfg, status=JobStatus.COMPLETED))

    table = pd.read_csv(tmp_path / "summary.csv", keep_default_na=False)
    assert list(table["tags"]) == [f"{in_job},q3"]
