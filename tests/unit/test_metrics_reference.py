"""esa_scores against values of the ESA-ADB reference implementation (kplabs-pl/ESA-ADB).

The cases file (random multi-channel events of both categories, change-point predictions,
with and without the Anomaly selection) lives in the shared data folder beside the repo; the
tests skip when it is absent.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from esa_lightning.metrics import esa_scores

CASES_FILE = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "esa-adb-reference"
    / "metric_cases.json"
)
AFF_KEYS = ("AFF_precision", "AFF_recall", "AFF_F_0.50")
EW_KEYS = ("EW_precision", "EW_recall", "EW_F_0.50", "alarming_precision")


def _cases() -> list:
    if not CASES_FILE.is_file():
        return []
    return json.loads(CASES_FILE.read_text())["cases"]


CASES = _cases()


def score_case(case: dict) -> dict[str, float]:
    events = pd.DataFrame(case["events"])
    prediction = [(pd.Timestamp(t), v) for t, v in case["prediction"]]
    return esa_scores(events, prediction, betas=0.5, select_labels=case["select_labels"])


AFF_TOL = 1e-9
EW_TOL = 1e-9


def same(got: float, want: float | None, tol: float = EW_TOL) -> bool:
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return math.isnan(got)
    return not math.isnan(got) and abs(got - want) <= tol


@pytest.mark.skipif(not CASES, reason=f"reference cases absent ({CASES_FILE.name})")
@pytest.mark.parametrize("index", range(len(CASES) or 1))
def test_matches_esa_adb_reference(index: int):
    case = CASES[index]
    got = score_case(case)
    want = case["expected"]
    wrong = {k: (got[k], want[k]) for k in EW_KEYS if not same(got[k], want[k])}
    wrong |= {k: (got[k], want[k]) for k in AFF_KEYS if not same(got[k], want[k], AFF_TOL)}
    assert not wrong, wrong
