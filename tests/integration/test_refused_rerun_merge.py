"""A ``merge.py`` refused in a folder it may write into that holds an earlier run's files (a
training run stopped before its detector: checkpoints only) leaves that folder's ``.hydra/``
as the earlier run wrote it: Hydra writes the merge's config there before the merge reads its
detectors. Its ``merge.log`` holds the refusal only."""

from __future__ import annotations

from tests.integration.test_reliability_cli import assert_one_line_error, run_entry
from tests.integration.test_run_folder_reuse import snapshot


def test_a_refused_merge_leaves_an_interrupted_run_s_config(tmp_path):
    """It rewrote the stopped run's ``.hydra/overrides.yaml`` (its resume command) with
    ``detectors=[...]``."""
    folder = tmp_path / "run"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text("experiment_name: smoke\nseed: 7\n")
    (folder / ".hydra" / "hydra.yaml").write_text("hydra:\n  job:\n    name: train\n")
    (folder / ".hydra" / "overrides.yaml").write_text("- experiment=smoke\n- seed=7\n")
    (folder / "checkpoints" / "smoke").mkdir(parents=True)
    (folder / "checkpoints" / "smoke" / "last.ckpt").write_bytes(b"weights")
    (folder / "train.log").write_text("[train] epoch 0\n")
    before = snapshot(folder)

    gone = [tmp_path / "a" / "detector", tmp_path / "b" / "detector"]
    refused = run_entry("merge.py", [f"detectors=[{gone[0]},{gone[1]}]"], tmp_path)
    line = assert_one_line_error(refused, str(gone[0]))
    after = snapshot(folder)
    assert {k: v for k, v in after.items() if k != "merge.log"} == before
    assert (folder / "merge.log").read_text().rstrip().endswith(line)
