"""A run refused in an earlier run's folder (predict.py into an earlier prediction's, evaluate.py
into an earlier evaluation's) leaves that folder's ``.hydra/`` as the earlier run wrote it: Hydra
writes the refused run's config there before the job reads anything."""

from __future__ import annotations

from esa_lightning.data.readers.esa_csv import read_esa_csv
from tests.helpers import write_esa_csv
from tests.integration.test_python_api import zscore_detector
from tests.integration.test_reliability_cli import assert_one_line_error, run_entry
from tests.integration.test_run_folder_reuse import snapshot


def test_a_refused_prediction_leaves_the_earlier_prediction_s_config(tmp_path):
    """It rewrote ``.hydra/overrides.yaml`` and ``config.yaml`` with the refused run's
    ``data.root`` beside the earlier prediction's submission, report and figures."""
    data = write_esa_csv(tmp_path / "new.csv", n=300)
    zscore_detector(read_esa_csv(data, cache_dir=tmp_path / "c"), tmp_path / "det", 4.0)
    args = [f"ckpt={tmp_path / 'det'}", "data=esa_csv", "range=all", "max_figures=0"]
    done = run_entry("predict.py", [*args, f"data.root={data}"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    folder = tmp_path / "run"
    before = {k: v for k, v in snapshot(folder).items() if not k.endswith(".log")}
    assert ".hydra/overrides.yaml" in before and "submission.csv" in before

    refused = run_entry("predict.py", [*args, f"data.root={tmp_path / 'gone.csv'}"], tmp_path)
    assert_one_line_error(refused, "gone.csv")
    after = {k: v for k, v in snapshot(folder).items() if not k.endswith(".log")}
    assert after == before
