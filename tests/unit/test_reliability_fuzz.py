"""Fuzzed readers: corrupted and hostile files give an ESAInputError (or a repair with a warning).

Any other exception type, a hang (guarded by an alarm) or a partial cache entry fails the test.
Hypothesis runs derandomized with few examples so CI is reproducible and fast.
"""

from __future__ import annotations

import contextlib
import io
import signal
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esa_lightning.data.mission import Mission
from esa_lightning.data.readers.esa_adb import read_esa_mission
from esa_lightning.data.readers.esa_csv import read_esa_csv
from esa_lightning.data.readers.kaggle import read_kaggle
from esa_lightning.data.readers.nasa import read_nasa
from esa_lightning.errors import ESAInputError
from tests.helpers import (
    cache_is_clean,
    esa_frame,
    pickled_zip,
    write_esa_csv,
    write_esa_mission,
    write_kaggle,
    write_nasa,
)

FUZZ = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HOSTILE_CELLS = [
    "",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e400",
    "-1e400",
    "abc",
    "NULL",
    "1,5",
    '"',
    "1e38",
    "3.4e39",
    "99999999999999999999",
    "0x10",
    " 1 ",
    "\x00",
    "é",
]


@contextlib.contextmanager
def no_hang(seconds: int = 60):
    """Turn a hang into a failure (SIGALRM; the readers are single-threaded Python/C)."""

    def fail(*_):
        raise AssertionError(f"reader still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def read_or_refuse(read, cache: Path | None, manifest: str = "manifest.json") -> Mission | None:
    """Run ``read``: a Mission or an ESAInputError are fine; anything else fails the test."""
    with no_hang(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            mission = read()
        except ESAInputError as exc:
            assert str(exc).strip() and "\n" not in str(exc).strip()
            mission = None
    if cache is not None:
        assert cache_is_clean(cache, manifest), sorted(p.name for p in cache.rglob("*"))
    if mission is not None:
        check_mission(mission)
    return mission


def check_mission(mission: Mission) -> None:
    """What a repaired read must give: finite values, matching shapes, sorted timestamps."""
    parts = mission.series.values() if mission.is_multiseries else [mission]
    for m in parts:
        values = np.asarray(m.values)
        assert len(values) > 0
        assert np.isfinite(values).all()
        assert m.labels.shape[0] == len(values)
        ts = np.asarray(m.timestamps)
        assert len(ts) == len(values) and (ts[1:] > ts[:-1]).all()


def mutate_bytes(data: bytes, draw) -> bytes:
    """Truncate, flip bytes, splice random bytes or replace everything."""
    kind = draw(st.sampled_from(["truncate", "flip", "splice", "random", "empty"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if kind == "flip":
        out = bytearray(data)
        for i in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            out[i] ^= draw(st.integers(1, 255))
        return bytes(out)
    if kind == "splice":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:]
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=512))
    return b""


# ------------------------------------------------------------------------------ ESA CSV
def csv_variant(draw, base: pd.DataFrame) -> str:
    frame = base.copy().astype(object)
    kind = draw(
        st.sampled_from(
            [
                "cells",
                "no_header",
                "dup_column",
                "unsorted",
                "future",
                "header_only",
                "all_nan",
                "bytes",
                "label_codes",
                "bad_time",
            ]
        )
    )
    if kind == "cells":
        for _ in range(draw(st.integers(1, 6))):
            r = draw(st.integers(0, len(frame) - 1))
            c = draw(st.sampled_from(list(frame.columns)))
            frame.iloc[r, frame.columns.get_loc(c)] = draw(st.sampled_from(HOSTILE_CELLS))
    elif kind == "no_header":
        return frame.to_csv(index=False, header=False)
    elif kind == "dup_column":
        cols = list(frame.columns)
        cols[draw(st.integers(2, len(cols) - 1))] = cols[1]
        frame.columns = cols
    elif kind == "unsorted":
        i = draw(st.integers(0, len(frame) - 2))
        j = draw(st.integers(i + 1, len(frame) - 1))
        frame.iloc[[i, j]] = frame.iloc[[j, i]].to_numpy()
    elif kind == "future":
        frame.iloc[-1, 0] = draw(
            st.sampled_from(["2262-04-12 00:00:00", "9999-12-31 23:59:59", "3000-01-01 00:00:00"])
        )
    elif kind == "header_only":
        frame = frame.iloc[:0]
    elif kind == "all_nan":
        frame["channel_2"] = draw(st.sampled_from(["nan", "", "inf"]))
    elif kind == "label_codes":
        frame.iloc[draw(st.integers(0, len(frame) - 1)), 4] = draw(
            st.sampled_from(["5", "-1", "1.5", "256", "70000", "x"])
        )
    elif kind == "bad_time":
        frame.iloc[draw(st.integers(0, len(frame) - 1)), 0] = draw(
            st.sampled_from(["2000-13-01 00:00:00", "yesterday", "", "1e9", "2000-01-01"])
        )
    text = frame.to_csv(index=False)
    if kind == "bytes":
        return mutate_bytes(text.encode(), draw).decode("latin-1")
    return text


@FUZZ
@given(data=st.data())
def test_esa_csv_reader_survives_hostile_files(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("csv")
    base = pd.read_csv(write_esa_csv(tmp / "base.csv"), dtype=str)
    path = tmp / "mission.csv"
    path.write_text(csv_variant(data.draw, base), encoding="latin-1")
    read_or_refuse(lambda: read_esa_csv(path, cache_dir=tmp / "cache"), tmp / "cache")


def test_esa_csv_repairs_nonfinite_values_with_a_warning(tmp_path):
    base = pd.read_csv(write_esa_csv(tmp_path / "base.csv"), dtype=str)
    base.loc[3, "channel_1"] = "nan"
    base.loc[4, "channel_2"] = "inf"
    base.to_csv(tmp_path / "m.csv", index=False)
    with pytest.warns(UserWarning, match="repaired 2"):
        mission = read_esa_csv(tmp_path / "m.csv", cache_dir=tmp_path / "cache")
    assert np.isfinite(mission.values).all()
    assert mission.values[3, 0] == mission.values[2, 0]


# ------------------------------------------------------------------------------ Kaggle
def table_variant(draw, n: int = 40) -> pa.Table:
    ids = np.arange(n, dtype=np.int64)
    ch1 = np.sin(np.arange(n) / 3.0)
    cols: dict[str, pa.Array] = {
        "id": pa.array(ids),
        "channel_1": pa.array(ch1),
        "channel_2": pa.array(np.cos(np.arange(n) / 3.0)),
        "is_anomaly": pa.array(np.zeros(n, dtype=np.uint8)),
    }
    kind = draw(
        st.sampled_from(
            [
                "strings",
                "null_ids",
                "dup_ids",
                "unsorted",
                "float_ids",
                "no_id",
                "all_nan",
                "inf",
                "zero_rows",
                "labels",
                "huge_ids",
                "dup_names",
                "no_channels",
                "nested",
            ]
        )
    )
    if kind == "strings":
        cols["channel_2"] = pa.array([str(v) for v in ch1])
    elif kind == "null_ids":
        cols["id"] = pa.array([None if i == 3 else int(i) for i in ids], type=pa.int64())
    elif kind == "dup_ids":
        ids[5] = ids[4]
        cols["id"] = pa.array(ids)
    elif kind == "unsorted":
        cols["id"] = pa.array(ids[::-1].copy())
    elif kind == "float_ids":
        cols["id"] = pa.array(ids.astype(float))
    elif kind == "no_id":
        del cols["id"]
    elif kind == "all_nan":
        cols["channel_2"] = pa.array(np.full(n, draw(st.sampled_from([np.nan, np.inf]))))
    elif kind == "inf":
        vals = ch1.copy()
        vals[draw(st.integers(0, n - 1))] = draw(st.sampled_from([np.inf, -np.inf, np.nan, 1e300]))
        cols["channel_1"] = pa.array(vals)
    elif kind == "zero_rows":
        cols = {k: v[:0] for k, v in cols.items()}
    elif kind == "labels":
        lab = np.zeros(n, dtype=np.int64)
        lab[draw(st.integers(0, n - 1))] = draw(st.sampled_from([5, -1, 255, 1 << 40]))
        cols["is_anomaly"] = pa.array(lab)
    elif kind == "huge_ids":
        cols["id"] = pa.array(np.array([2**63 - 1 - n + i for i in range(n)], dtype=np.int64))
    elif kind == "dup_names":
        return pa.Table.from_arrays(
            [cols["id"], cols["channel_1"], cols["channel_2"], cols["is_anomaly"]],
            names=["id", "channel_1", "channel_1", "is_anomaly"],
        )
    elif kind == "no_channels":
        cols = {"id": cols["id"], "is_anomaly": cols["is_anomaly"]}
    elif kind == "nested":
        cols["channel_2"] = pa.array([[float(v)] for v in ch1])
    return pa.table(cols)


@FUZZ
@given(data=st.data())
def test_kaggle_reader_survives_hostile_tables(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("kaggle")
    path = tmp / "train.parquet"
    pq.write_table(table_variant(data.draw), path)
    read_or_refuse(lambda: read_kaggle(path, cache_dir=tmp / "cache"), tmp / "cache")


@FUZZ
@given(data=st.data())
def test_kaggle_reader_survives_corrupt_bytes(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("kaggle_bytes")
    good = write_kaggle(tmp / "good.parquet").read_bytes()
    folder = tmp / "challenge"
    folder.mkdir()
    (folder / "train.parquet").write_bytes(mutate_bytes(good, data.draw))
    write_kaggle(folder / "test.parquet", labels=False)
    read_or_refuse(lambda: read_kaggle(folder, cache_dir=tmp / "cache"), tmp / "cache")


# ------------------------------------------------------------------------------ NASA
@FUZZ
@given(data=st.data())
def test_nasa_reader_survives_hostile_files(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("nasa")
    root = write_nasa(tmp / "smap")
    target = root / data.draw(st.sampled_from(["train", "test"])) / "A-1.npy"
    kind = data.draw(st.sampled_from(["bytes", "object", "ndim", "nan", "empty", "csv", "wide"]))
    if kind == "bytes":
        target.write_bytes(mutate_bytes(target.read_bytes(), data.draw))
    elif kind == "object":
        np.save(target, np.array([{"x": 1}] * 30, dtype=object), allow_pickle=True)
    elif kind == "ndim":
        np.save(target, np.zeros(data.draw(st.sampled_from([(30,), (30, 2, 2), (0, 2), ()]))))
    elif kind == "nan":
        arr = np.load(target)
        arr[:, 0] = data.draw(st.sampled_from([np.nan, np.inf]))
        if data.draw(st.booleans()):
            arr[0, 0] = 1.0  # only a partial gap: repaired
        np.save(target, arr)
    elif kind == "empty":
        target.write_bytes(b"")
    elif kind == "wide":
        np.save(target, np.zeros((30, 5)))
    else:
        cell = data.draw(
            st.sampled_from(
                [
                    "[[5, 9",
                    "[[9, 5]]",
                    "[[0, 99]]",
                    "[[1.5, 2]]",
                    "",
                    "[]",
                    "null",
                    '[["a", 1]]',
                    "[[-1, 3]]",
                ]
            )
        )
        listing = pd.read_csv(root / "labeled_anomalies.csv", dtype=str)
        listing.loc[0, data.draw(st.sampled_from(["anomaly_sequences", "num_values", "class"]))] = (
            cell
        )
        listing.to_csv(root / "labeled_anomalies.csv", index=False)
    read_or_refuse(lambda: read_nasa(root), None)


# ------------------------------------------------------------------------------ ESA raw
def frame_variant(draw) -> bytes:
    frame = esa_frame("channel_2")
    kind = draw(
        st.sampled_from(
            [
                "bytes",
                "unsorted",
                "dup",
                "nat",
                "all_nan",
                "empty",
                "strings",
                "not_frame",
                "two_members",
                "int_index",
                "inf",
                "future",
                "tz",
            ]
        )
    )
    if kind == "bytes":
        return mutate_bytes(pickled_zip(frame), draw)
    if kind == "unsorted":
        frame = frame.iloc[::-1]
    elif kind == "dup":
        frame.index = frame.index[[0, *range(len(frame) - 1)]]
    elif kind == "nat":
        idx = frame.index.to_numpy().copy()
        idx[3] = np.datetime64("NaT")
        frame.index = pd.DatetimeIndex(idx)
    elif kind == "all_nan":
        frame["channel_2"] = draw(st.sampled_from([np.nan, np.inf]))
    elif kind == "empty":
        frame = frame.iloc[:0]
    elif kind == "strings":
        frame["channel_2"] = frame["channel_2"].astype(str)
        frame.iloc[draw(st.integers(0, len(frame) - 1)), 0] = draw(st.sampled_from(HOSTILE_CELLS))
    elif kind == "not_frame":
        return pickled_zip(draw(st.sampled_from([[1, 2], {"a": 1}, np.zeros(3), "text", None])))
    elif kind == "two_members":
        from tests.helpers import zip_bytes

        buf = io.BytesIO(zip_bytes(b"x"))
        import zipfile

        with zipfile.ZipFile(buf, "a") as zf:
            zf.writestr("second.pkl", b"y")
        return buf.getvalue()
    elif kind == "int_index":
        frame = frame.reset_index(drop=True)
    elif kind == "inf":
        frame.iloc[draw(st.integers(0, len(frame) - 1)), 0] = draw(
            st.sampled_from([np.inf, -np.inf, np.nan, 1e30])
        )
    elif kind == "future":
        idx = frame.index.to_numpy().copy()
        idx[-1] = np.datetime64(draw(st.sampled_from(["2001-06-01", "2030-01-01"])), "ns")
        frame.index = pd.DatetimeIndex(idx)
    elif kind == "tz":
        frame.index = frame.index.tz_localize("Europe/Berlin")
    return pickled_zip(frame)


@FUZZ
@given(data=st.data())
def test_esa_reader_survives_hostile_channel_zips(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("esa")
    root = write_esa_mission(
        tmp / "mission",
        {"channel_1": pickled_zip(esa_frame("channel_1")), "channel_2": frame_variant(data.draw)},
    )
    read_or_refuse(lambda: read_esa_mission(root, cache_dir=tmp / "cache"), tmp / "cache")


def test_esa_reader_values_beyond_float32(tmp_path):
    frame = esa_frame("channel_2")
    frame.iloc[0, 0] = 1e300
    root = write_esa_mission(
        tmp_path / "mission",
        {"channel_1": pickled_zip(esa_frame("channel_1")), "channel_2": pickled_zip(frame)},
    )
    mission = read_or_refuse(lambda: read_esa_mission(root, cache_dir=None), None)
    assert mission is None or np.isfinite(mission.values).all()


FAR_FUTURE = """
import numpy as np, pandas as pd, sys
from pathlib import Path
from esa_lightning.data.readers.esa_adb import read_esa_mission
from esa_lightning.errors import ESAInputError
from tests.helpers import esa_frame, pickled_zip, write_esa_mission
frame = esa_frame("channel_2")
idx = frame.index.to_numpy().copy()
idx[-1] = np.datetime64("2200-01-01", "ns")
frame.index = pd.DatetimeIndex(idx)
root = write_esa_mission(Path(sys.argv[1]), {"channel_1": pickled_zip(esa_frame("channel_1")),
                                             "channel_2": pickled_zip(frame)})
try:
    read_esa_mission(root, cache_dir=None)
except ESAInputError as exc:
    print("refused:", exc)
"""


def test_esa_reader_far_future_timestamp_is_refused(tmp_path):
    import resource
    import subprocess
    import sys

    def limit():  # 1.5 GiB of address space: the 200-year grid cannot be allocated
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))

    proc = subprocess.run(
        [sys.executable, "-c", FAR_FUTURE, str(tmp_path / "m")],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
    )
    assert proc.returncode == 0 and "refused:" in proc.stdout, proc.stderr[-500:]
