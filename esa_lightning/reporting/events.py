"""Row alarms → intervals and the block report (``report.csv``: range,status,indices).

Report indices are ORIGINAL sample numbers (Kaggle ids, or the row number in the full mission),
never positions in a filtered or sliced array: reference pipeline B got this wrong.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from esa_lightning.data.mission import Mission
from esa_lightning.io import atomic_path
from esa_lightning.metrics.intervals import runs

REPORT_COLUMNS = ["range", "status", "indices"]


def alarms_to_intervals(alarm: np.ndarray, timestamps: np.ndarray) -> pd.DataFrame:
    """One row per maximal run of alarms: start, end (timestamps, inclusive), start/end_index."""
    timestamps = np.asarray(timestamps)
    if len(timestamps) != len(alarm):
        raise ValueError(f"{len(alarm)} alarms but {len(timestamps)} timestamps")
    lo, hi = runs(alarm)
    return pd.DataFrame(
        {"start": timestamps[lo], "end": timestamps[hi], "start_index": lo, "end_index": hi}
    )


def row_ids(mission: Mission) -> np.ndarray:
    """int64 [T]: each row's original sample number (submission id): its id when the mission
    is id-indexed (Kaggle, NASA), else its row number in the full mission
    (``meta["row_offset"]`` + position)."""
    ts = mission.timestamps
    if ts is not None and np.issubdtype(np.asarray(ts).dtype, np.integer):
        return np.asarray(ts, dtype=np.int64)
    return mission.meta.get("row_offset", 0) + np.arange(len(mission.values), dtype=np.int64)


def window_report(alarm: np.ndarray, sample_numbers: np.ndarray, block: int = 1000) -> pd.DataFrame:
    """One row per block of ``block`` sample numbers that holds at least one sample.

    Blocks are aligned on multiples of ``block`` of the original numbers (``1000-1999``);
    ``status`` is ANOMALY when any sample of the block alarms, and ``indices`` lists the alarmed
    sample numbers joined by ``;`` (empty when OK).
    """
    numbers = np.asarray(sample_numbers, dtype=np.int64)
    alarm = np.asarray(alarm) != 0
    if len(numbers) != len(alarm):
        raise ValueError(f"{len(alarm)} alarms but {len(numbers)} sample numbers")
    if len(numbers) == 0:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in REPORT_COLUMNS})
    blocks = numbers // block
    present = np.unique(blocks)
    hit = pd.Series(numbers[alarm].astype(str)).groupby(blocks[alarm]).agg(";".join)
    indices = hit.reindex(present, fill_value="")
    status = np.where(indices.to_numpy() != "", "ANOMALY", "OK")
    ranges = [f"{int(b) * block}-{int(b) * block + block - 1}" for b in present]  # no int64 wrap
    return pd.DataFrame({"range": ranges, "status": status, "indices": indices.to_numpy()})


def write_window_report(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``report.csv`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        df[REPORT_COLUMNS].to_csv(tmp, index=False)
    return Path(path)
