"""Small builders shared by the reliability tests (hand-made files, no generator involved)."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def esa_frame(name: str, n: int = 50, start: str = "2000-01-01", step_s: int = 30) -> pd.DataFrame:
    t = pd.date_range(start, periods=n, freq=f"{step_s}s")
    return pd.DataFrame({name: np.sin(np.arange(n) / 5.0)}, index=t)


def zip_bytes(payload: bytes, member: str = "data.pkl") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(member, payload)
    return buf.getvalue()


def write_esa_mission(root: Path, payloads: dict[str, bytes]) -> Path:
    """A raw ESA-ADB folder: channels.csv and ``channels/<name>.zip`` holding ``payloads``."""
    (root / "channels").mkdir(parents=True, exist_ok=True)
    names = list(payloads)
    pd.DataFrame(
        {
            "Channel": names,
            "Subsystem": "s1",
            "Group": [f"g{i}" for i in range(len(names))],
            "Target": "YES",
            "Categorical": "NO",
        }
    ).to_csv(root / "channels.csv", index=False)
    for name, payload in payloads.items():
        (root / "channels" / f"{name}.zip").write_bytes(payload)
    return root


def pickled_zip(frame: object) -> bytes:
    return zip_bytes(pickle.dumps(frame, protocol=4))


def write_kaggle(path: Path, n: int = 40, labels: bool = True) -> Path:
    """A small Kaggle-layout parquet file: id, two channels, one telecommand, is_anomaly."""
    cols = {
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "channel_1": pa.array(np.sin(np.arange(n) / 3.0)),
        "channel_2": pa.array(np.cos(np.arange(n) / 3.0)),
        "telecommand_1": pa.array(np.zeros(n)),
    }
    if labels:
        cols["is_anomaly"] = pa.array((np.arange(n) % 17 == 0).astype(np.uint8))
    pq.write_table(pa.table(cols), path)
    return path


def write_esa_csv(path: Path, n: int = 30) -> Path:
    """A small ESA-ADB preprocessed CSV: timestamp, two channels, one telecommand, labels."""
    t = pd.date_range("2000-01-01", periods=n, freq="30s").strftime("%Y-%m-%d %H:%M:%S")
    frame = pd.DataFrame(
        {
            "timestamp": t,
            "channel_1": np.sin(np.arange(n) / 3.0),
            "channel_2": np.cos(np.arange(n) / 3.0),
            "telecommand_1": 0.0,
            "is_anomaly_channel_1": 0,
            "is_anomaly_channel_2": 0,
        }
    )
    frame.to_csv(path, index=False)
    return path


def write_nasa(root: Path, n_train: int = 40, n_test: int = 30) -> Path:
    """A telemanom folder with one channel ``A-1`` and one labeled sequence."""
    for part, n in (("train", n_train), ("test", n_test)):
        (root / part).mkdir(parents=True, exist_ok=True)
        arr = np.column_stack([np.sin(np.arange(n) / 3.0), np.zeros(n)])
        np.save(root / part / "A-1.npy", arr)
    pd.DataFrame(
        {
            "chan_id": ["A-1"],
            "spacecraft": ["SMAP"],
            "anomaly_sequences": ["[[5, 9]]"],
            "class": ["[point]"],
            "num_values": [n_test],
        }
    ).to_csv(root / "labeled_anomalies.csv", index=False)
    return root


def cache_is_clean(cache_dir: Path, manifest: str) -> bool:
    """Only complete entries (folders holding ``manifest``) and no temporaries under the cache."""
    if not cache_dir.exists():
        return True
    for p in cache_dir.iterdir():
        if p.name.startswith((".tmp-", ".old-")):
            return False
        if p.is_dir() and not (p / manifest).is_file():
            return False
    return not any(q.name.startswith(".tmp-") for q in cache_dir.rglob("*"))
