"""evaluate.py on a NASA-style submission (``channel,id,is_anomaly[,score]``): every refusal
names the file it read, the column and the row or value. A missing column, an is_anomaly that
is no 0/1, ids that are not the series' test rows, a score that is no number and a file of
only a header were refused naming neither the file nor the row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from esa_lightning.jobs.evaluate import evaluate_predictions
from tests.conftest import compose_config
from tests.helpers import set_cell, write_nasa
from tests.integration.test_evaluate_single_grid import refusal
from tests.integration.test_reliability_cli import assert_one_line_error, run_entry

N = 30  # test rows per series


def submission() -> pd.DataFrame:
    alarm = np.isin(np.arange(N), np.arange(5, 10)).astype(int)  # P-1's event only
    return pd.DataFrame({"channel": ["P-1"] * N + ["A-1"] * N, "id": [*range(N)] * 2,
                         "is_anomaly": [*alarm, *np.zeros(N, int)],
                         "score": np.linspace(0, 1, 2 * N)})


# how the submission is spoiled, and what the refusal names beside the file
CASES = {
    "no is_anomaly": (lambda f: f.drop(columns="is_anomaly"),
                      ["column 'is_anomaly'", "missing column"]),
    "is_anomaly not 0/1": (set_cell(6, "is_anomaly", "yes"),
                           ["column 'is_anomaly'", "value 'yes'", "row 7 after the header"]),
    "is_anomaly 2": (set_cell(40, "is_anomaly", 2),
                     ["column 'is_anomaly'", "value 2", "row 41 after the header"]),
    "id not a number": (set_cell(3, "id", "abc"),
                        ["column 'id'", "value 'abc'", "row 4 after the header"]),
    "id listed twice": (set_cell(35, "id", 4),
                        ["column 'id'", "channel A-1: id 4 listed twice", "row 36"]),
    "id not a test row": (set_cell(45, "id", 99),
                          ["column 'id'", "channel A-1: id 99 in row 46", "ids 0..29"]),
    "a test row missing": (lambda f: f.drop(index=59),
                           ["column 'id'", "channel A-1: 1 test row(s) have no prediction "
                            "(the first: id 29)"]),
    "score not a number": (set_cell(2, "score", "abc"), ["column 'score'", "value 'abc'"]),
    "only a header": (lambda f: f.iloc[:0], ["no prediction rows"]),
}


@pytest.fixture
def nasa(tmp_path: Path) -> list[str]:
    rows = [("P-1", "MSL", "[[5, 9]]", "[point]", N), ("A-1", "MSL", "[[2, 4]]", "[point]", N)]
    return ["data=nasa", f"data.root={write_nasa(tmp_path / 'nasa', rows=rows)}"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_evaluate_names_the_submission_it_refuses(tmp_path, nasa, case):
    spoil, needles = CASES[case]
    message = refusal(tmp_path, nasa, spoil(submission()))
    for needle in needles:
        assert needle in message, message


def test_the_unspoiled_submission_is_scored(tmp_path, nasa):
    path = tmp_path / "sub.csv"
    submission().to_csv(path, index=False)
    cfg = compose_config("evaluate", [f"predictions={path}", *nasa], tmp_path / "e")
    assert evaluate_predictions(cfg)["EW_recall"] == pytest.approx(0.5)


def test_evaluate_py_names_the_file_in_one_line(tmp_path, nasa):
    """Through the command line, as a user meets it."""
    path = tmp_path / "spoiled.csv"
    set_cell(40, "is_anomaly", 2)(submission()).to_csv(path, index=False)
    proc = run_entry("evaluate.py", [f"predictions={path}", *nasa], tmp_path)
    assert_one_line_error(proc, str(path), "row 41 after the header", "is_anomaly")


@pytest.mark.parametrize("moved", [lambda s: 1e6 + s, lambda s: s * 1e45],
                         ids=["offset beyond float32 steps", "beyond float32 range"])
def test_a_score_column_ranks_the_rows_as_written(tmp_path, nasa, moved):
    """AUC_PR ranks the rows by the file's scores: a NASA submission's were rounded to float32
    (1e6 + 0.01 became 1e6, 1e40 became inf), so scores ranking the rows alike got another
    AUC_PR; a single-grid file's are read as float64."""
    scored = {}
    for name, change in (("as is", lambda s: s), ("moved", moved)):
        path = tmp_path / f"{name}.csv"
        sub = submission()
        sub.assign(score=change(sub["score"] * 0.05)).to_csv(path, index=False)
        cfg = compose_config("evaluate", [f"predictions={path}", *nasa], tmp_path / name)
        scored[name] = evaluate_predictions(cfg)["AUC_PR"]
    assert scored["moved"] == pytest.approx(scored["as is"])
