"""Layout writers of a resampled ``Mission``: the Kaggle challenge layout (train/test parquet)
and the ESA-ADB preprocessed CSV, which the synthetic generator (``kaggle``, ``csv``) and
``data.convert`` write."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from esa_lightning import io
from esa_lightning.data.mission import Mission

_WRITE_ROWS = 1 << 20


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """``frame`` as a CSV file at ``path``, without its index, written atomically."""
    with io.atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_kaggle_layout(
    mission: Mission, out_dir: str | os.PathLike, *, test_labels: bool = False
) -> Path:
    """Kaggle challenge layout of a resampled mission: train/test parquet + target_channels.csv.

    Train = rows before ``test_start`` (with ``is_anomaly``), test = the rest (without it, as
    the challenge publishes it; with it when ``test_labels``, so that the reader scores the test
    range); ``id`` is the row number, so test ids continue the train ids.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    is_anomaly = mission.is_anomaly
    parts = [("train.parquet", 0, mission.test_start, True)]
    if mission.test_start < mission.n_rows:
        parts.append(("test.parquet", mission.test_start, mission.n_rows, test_labels))
    for fname, a, b, labeled in parts:
        names = ["id", *mission.channel_names, *mission.telecommand_names]
        types = [pa.int64()] + [pa.float32()] * (len(names) - 1)
        if labeled:
            names.append("is_anomaly")
            types.append(pa.uint8())
        schema = pa.schema(list(zip(names, types, strict=True)))
        with io.atomic_path(out / fname) as tmp, pq.ParquetWriter(tmp, schema) as writer:
            for lo in range(a, b, _WRITE_ROWS):
                hi = min(b, lo + _WRITE_ROWS)
                cols = [pa.array(np.arange(lo, hi, dtype=np.int64))]
                cols += [
                    pa.array(np.ascontiguousarray(mission.values[lo:hi, i]))
                    for i in range(mission.values.shape[1])
                ]
                cols += [
                    pa.array(np.ascontiguousarray(mission.telecommands[lo:hi, i]))
                    for i in range(mission.telecommands.shape[1])
                ]
                if labeled:
                    cols.append(pa.array(is_anomaly[lo:hi]))
                writer.write_table(pa.Table.from_arrays(cols, schema=schema))
    write_csv(
        out / "target_channels.csv", pd.DataFrame({"target_channels": mission.target_channels})
    )
    return out


def write_esa_csv(mission: Mission, path: str | os.PathLike) -> Path:
    """ESA-ADB preprocessed CSV: timestamp, channels, telecommands, one is_anomaly_<col> each."""
    path = Path(path)
    chans, tcs = mission.channel_names, mission.telecommand_names
    header = ["timestamp", *chans, *tcs, *[f"is_anomaly_{c}" for c in [*chans, *tcs]]]
    n = mission.n_rows
    labels = mission.labels if mission.labels is not None else np.zeros((n, len(chans)), np.uint8)
    with io.atomic_path(path) as tmp:
        for lo in range(0, max(n, 1), _WRITE_ROWS):
            hi = min(n, lo + _WRITE_ROWS)
            block = {
                "timestamp": pd.DatetimeIndex(mission.timestamps[lo:hi]).strftime(
                    "%Y-%m-%d %H:%M:%S"
                )
            }
            for i, c in enumerate(chans):
                block[c] = mission.values[lo:hi, i]
            for i, c in enumerate(tcs):
                block[c] = mission.telecommands[lo:hi, i]
            for i, c in enumerate(chans):
                block[f"is_anomaly_{c}"] = labels[lo:hi, i]
            for c in tcs:
                block[f"is_anomaly_{c}"] = np.zeros(hi - lo, dtype=np.uint8)
            pd.DataFrame(block, columns=header).to_csv(
                tmp, mode="w" if lo == 0 else "a", header=lo == 0, index=False
            )
    return path
