"""A ``train.py`` resume (``ckpt_path=last``) refused in the earlier run's folder (settings the
checkpoint was not trained with) leaves that folder's ``.hydra/`` as the earlier run wrote it:
Hydra writes the refused run's config there before the job compares the settings. Its log keeps
the earlier run's lines and ends in the refusal."""

from __future__ import annotations

from tests.integration.test_reliability_cli import assert_one_line_error, run_entry
from tests.integration.test_run_folder_reuse import FAST, snapshot


def test_a_refused_resume_leaves_the_earlier_run_s_config(small_mission_dir, tmp_path):
    """It rewrote ``.hydra/overrides.yaml`` and ``config.yaml`` with the refused run's
    ``model.quantile=99.0 ckpt_path=last`` beside the checkpoints trained with 99.9."""
    run = [*FAST, f"data.root={small_mission_dir}"]
    done = run_entry("train.py", run, tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    folder = tmp_path / "run"
    before = snapshot(folder)
    log_before = (folder / "train.log").read_text()
    assert ".hydra/overrides.yaml" in before and "metrics.json" in before

    refused = run_entry("train.py", [*run, "model.quantile=99.0", "ckpt_path=last"], tmp_path)
    line = assert_one_line_error(refused, "model.quantile=99.0")
    after = snapshot(folder)
    assert {k: v for k, v in after.items() if k != "train.log"} == {
        k: v for k, v in before.items() if k != "train.log"}
    log_after = (folder / "train.log").read_text()
    assert log_after.startswith(log_before)
    assert log_after.rstrip().endswith(line)
