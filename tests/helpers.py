"""Builders shared by the tests: small hand-built missions, and small hand-made files in each
reader's layout (no generator involved)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from esa_lightning.data.mission import Mission, default_channel_table, empty_events
from esa_lightning.data.readers.common import events_from_labels
from esa_lightning.data.segment_datamodule import SegmentDataModule


def make_mission(
    n_rows: int = 2000,
    n_channels: int = 3,
    *,
    anomalies: tuple[tuple[int, int], ...] = ((1200, 1230), (1700, 1720)),
    val_start: int = 1000,
    test_start: int = 1500,
    seed: int = 0,
) -> Mission:
    """Sine channels with noise on a 30 s grid; each anomaly is a +8 offset on channel 0."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows)
    values = np.stack(
        [np.sin(2 * np.pi * t / (50 + 7 * c)) + 0.1 * rng.standard_normal(n_rows)
         for c in range(n_channels)], axis=1
    ).astype(np.float32)
    labels = np.zeros((n_rows, n_channels), dtype=np.uint8)
    stamps = np.datetime64("2000-01-01T00:00:00", "ns") + t * np.timedelta64(30, "s")
    names = [f"channel_{c + 1}" for c in range(n_channels)]
    rows = []
    for k, (a, b) in enumerate(anomalies):
        values[a:b + 1, 0] += 8.0
        labels[a:b + 1, 0] = 1
        rows.append({"ID": f"id_{k}", "Channel": names[0], "StartTime": stamps[a],
                     "EndTime": stamps[b], "Category": "Anomaly"})
    events = pd.DataFrame(rows, columns=["ID", "Channel", "StartTime", "EndTime", "Category"])
    return Mission(
        name="hand-made",
        values=values,
        timestamps=stamps,
        channels=default_channel_table(names),
        labels=labels,
        events=events,
        telecommands=np.zeros((n_rows, 1), dtype=np.float32),
        telecommand_names=["telecommand_1"],
        period=pd.Timedelta("30s"),
        val_start=val_start,
        test_start=test_start,
    )


def toy_mission(
    values: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    val_start: int,
    test_start: int,
    telecommands: np.ndarray | None = None,
    channel_names: list[str] | None = None,
    name: str = "toy",
) -> Mission:
    """A Mission of the given [T, C] ``values`` (and labels, telecommands) on a 30 s grid, no
    events; channels ``channel_<i>`` and telecommands ``telecommand_<i>`` unless named."""
    n_rows, n_channels = values.shape
    labels = np.zeros((n_rows, n_channels), np.uint8) if labels is None else labels
    extra = {}
    if telecommands is not None:
        extra = dict(
            telecommands=telecommands,
            telecommand_names=[f"telecommand_{i}" for i in range(telecommands.shape[1])],
        )
    return Mission(
        name,
        values,
        pd.date_range("2000-01-01", periods=n_rows, freq="30s").to_numpy(),
        default_channel_table(channel_names or [f"channel_{i}" for i in range(n_channels)]),
        labels,
        empty_events(),
        val_start=val_start,
        test_start=test_start,
        **extra,
    )


def with_events(m: Mission) -> Mission:
    """``m`` with the event table its labels describe (for what scores event-wise F0.5)."""
    events = events_from_labels(m.labels, m.timestamps, m.channel_names)
    return dataclasses.replace(m, events=events)


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


def write_msl_channels(
    root: Path, channels: list[tuple], values: Callable[[int], np.ndarray]
) -> Path:
    """``write_nasa`` of MSL channels given as (chan_id, n_train, n_test, sequences, classes),
    the sequences a list of [first, last] rows."""
    return write_nasa(
        root,
        n_train={chan: n_train for chan, n_train, *_ in channels},
        rows=[(chan, "MSL", json.dumps(seqs), classes, n_test)
              for chan, _, n_test, seqs, classes in channels],
        values=values,
    )


def write_nasa(
    root: Path,
    n_train: int | dict[str, int] = 40,
    n_test: int = 30,
    rows: list[tuple] | None = None,
    values: Callable[[int], np.ndarray] | None = None,
) -> Path:
    """A telemanom folder with one channel ``A-1`` and one labeled sequence; or, given ``rows``
    (chan_id, spacecraft, anomaly_sequences, class, num_values), that csv verbatim and files of
    ``n_train`` (one number, or one per channel) / ``num_values`` rows for every channel it
    lists (a repeated channel: its first row's ``num_values``). ``values(n)``: a file's array
    of ``n`` rows, called channel by channel, training file first (default: a sine and zeros)."""
    if rows is None:
        rows = [("A-1", "SMAP", "[[5, 9]]", "[point]", n_test)]
    lengths: dict[str, int] = {}
    for row in rows:
        lengths.setdefault(str(row[0]).strip(), int(row[4]))
    for chan, n_rows in lengths.items():
        train_rows = n_train[chan] if isinstance(n_train, dict) else n_train
        for part, n in (("train", train_rows), ("test", n_rows)):
            (root / part).mkdir(parents=True, exist_ok=True)
            arr = (np.column_stack([np.sin(np.arange(n) / 3.0), np.zeros(n)]) if values is None
                   else values(n))
            np.save(root / part / f"{chan}.npy", arr)
    cols = ["chan_id", "spacecraft", "anomaly_sequences", "class", "num_values"]
    pd.DataFrame(rows, columns=cols).to_csv(root / "labeled_anomalies.csv", index=False)
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


TINY = dict(
    window=20,
    step=5,
    pool=20,
    pool_stride=4,
    n_kernels=2,
    min_kernel_len=10,
    max_kernel_len=16,
    shapelet_options=dict(max_candidates=200, nominal_segments=50),
    batch_rows=128,
)


def make_tiny_mission(
    n: int = 12000, n_channels: int = 4, n_events: int = 16, seed: int = 0
) -> Mission:
    """Sines with noise; events add a ramped level shift to every channel of one of two groups.
    Train [0, 8000), validation [8000, 10000), test [10000, n)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = np.stack(
        [
            np.sin(2 * np.pi * t / (50 + 7 * c)) + 0.1 * rng.standard_normal(n)
            for c in range(n_channels)
        ],
        axis=1,
    ).astype(np.float32)
    labels = np.zeros((n, n_channels), dtype=np.uint8)
    slots = np.arange(300, n - 400, (n - 700) // n_events)
    for k, start in enumerate(slots[:n_events] + rng.integers(0, 100, n_events)):
        length = int(rng.integers(60, 150))
        for c in range(k % 2, n_channels, 2):
            values[start : start + length, c] += 2.0 + np.linspace(0, 1, length)
            labels[start : start + length, c] = 1 if k % 3 else 2
    channels = default_channel_table([f"channel_{c + 1}" for c in range(n_channels)])
    channels["Group"] = [f"g{c % 2}" for c in range(n_channels)]
    stamps = np.datetime64("2000-01-01", "ns") + (t * 30).astype("timedelta64[s]")
    events = pd.DataFrame(columns=["ID", "Channel", "StartTime", "EndTime", "Category"])
    return Mission(
        name="tiny",
        values=values,
        timestamps=stamps.astype("datetime64[ns]"),
        channels=channels,
        labels=labels,
        events=events,
        val_start=8000,
        test_start=10000,
    )


def tiny_datamodule(mission: Mission | None = None, **overrides) -> SegmentDataModule:
    dm = SegmentDataModule(mission or make_tiny_mission(), **{**TINY, **overrides})
    dm.setup("fit")
    return dm


def sine_mission(T=600, C=3, K=2, val_start=380, test_start=480, seed=0, name="toy"):
    """Sines with noise on C channels, K random telecommand pulses, three labeled bumps on
    channel 0 (training, validation and test range)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    values = (np.sin(t / (4 + np.arange(C))) + 0.05 * rng.standard_normal((T, C))).astype(
        np.float32
    )
    labels = np.zeros((T, C), np.uint8)
    for s in (100, 420, 520):
        values[s : s + 8, 0] += 4
        labels[s : s + 8, 0] = 1
    tc = (rng.random((T, K)) < 0.03).astype(np.float32)
    return toy_mission(values, labels, val_start=val_start, test_start=test_start,
                       telecommands=tc, name=name)


def trainer(**kw) -> L.Trainer:
    """A quiet CPU trainer of two epochs, no logger, checkpoints or progress bar."""
    base = dict(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return L.Trainer(**{**base, **kw})


def two_series_mission() -> Mission:
    """A multi-series mission of two one-channel series ``A-1`` and ``B-2`` (NASA style), no
    labels before each one's test range."""
    a = sine_mission(T=300, C=1, K=3, val_start=160, test_start=200, seed=1, name="A-1")
    b = sine_mission(T=260, C=1, K=3, val_start=140, test_start=180, seed=2, name="B-2")
    b.values *= 50.0
    for s in (a, b):
        s.labels[: s.test_start] = 0
    return Mission("nasa", {"A-1": a.values, "B-2": b.values}, None,
                   default_channel_table(["A-1", "B-2"]), None, empty_events(),
                   series={"A-1": a, "B-2": b})


def checkout_env() -> dict[str, str]:
    """The environment with this checkout first on PYTHONPATH, for a script run by path (its own
    folder comes first on sys.path, so it would import whichever esa_lightning is installed)."""
    repo = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (repo, os.environ.get("PYTHONPATH")) if p)}


def counter_mission(spike_channel: str = "target_b", spike: float = 8.0, seed: int = 0) -> Mission:
    """Two smooth target channels, a noisy differenced counter (non-target, listed in
    ``meta["counters"]``) and a flat categorical channel, with physical units; one labeled
    spike of ``spike`` on ``spike_channel`` at test rows [1300, 1320). Train [0, 800),
    validation [800, 1200), test [1200, 1600)."""
    rng = np.random.default_rng(seed)
    n = 1600
    t = np.arange(n)
    values = np.stack(
        [
            np.sin(t / 20.0) + 0.05 * rng.standard_normal(n),
            np.cos(t / 30.0) + 0.05 * rng.standard_normal(n),
            rng.poisson(50, n).astype(float),  # a counter's increments: large and noisy
            np.zeros(n),
        ],
        axis=1,
    ).astype(np.float32)
    names = ["target_a", "target_b", "counter_c", "mode_d"]
    labels = np.zeros((n, 4), np.uint8)
    col = names.index(spike_channel)
    values[1300:1320, col] += spike
    labels[1300:1320, col] = 1
    stamps = pd.date_range("2000-01-01", periods=n, freq="30s").to_numpy()
    events = pd.DataFrame({"ID": ["id_0"], "Channel": [spike_channel], "StartTime": [stamps[1300]],
                           "EndTime": [stamps[1319]], "Category": ["Anomaly"]})
    table = default_channel_table(names)
    table["Target"] = [True, True, False, False]
    table["Categorical"] = [False, False, False, True]
    table["Physical Unit"] = ["V", "degC", "count", "-"]
    return Mission("counter-mission", values, stamps, table, labels, events,
                   period=pd.Timedelta("30s"), val_start=800, test_start=1200,
                   meta={"counters": ["counter_c"]})


class RawErrorScorer:
    """A detector stand-in whose per-channel scores are raw absolute deviations from the
    training median (a counter's dwarf the others', as an unnormalised error does), alarming
    where ``alarm_channel``'s deviation exceeds ``threshold``; ``channel_scores=False``: it
    reports no per-channel scores."""

    context_rows = 0
    alignment_rows = 1

    def __init__(self, mission: Mission, alarm_channel: str, threshold: float = 3.0,
                 channel_scores: bool = True) -> None:
        self.median = np.median(mission.values[: mission.val_start], axis=0)
        self.column = mission.channel_names.index(alarm_channel)
        self.threshold, self.channel_scores = threshold, channel_scores

    def score_rows(self, mission: Mission):
        from esa_lightning.models.base import RowScores

        dev = np.abs(np.asarray(mission.values) - self.median).astype(np.float32)
        score = dev[:, self.column]
        return RowScores(
            score=score,
            alarm=(score > self.threshold).astype(np.uint8),
            channel_scores=dev if self.channel_scores else None,
            threshold=np.full(len(score), self.threshold, np.float32),
        )


def dead_pid() -> int:
    """The pid of a process of this machine that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def owned_name(kind: str, pid: int, name: str) -> str:
    """The name an atomic writer of process ``pid`` gives its temporary (``kind`` ``.tmp-``)
    or its backup (``.old-``) of ``name``."""
    from esa_lightning import io

    return f"{kind}{io.OWNER_MARK}.{io._host()}.{pid}.{name}"


def fitted_zscore(mission: Mission):
    """A robust z-score model fitted by hand on ``mission``'s training range (threshold 4)."""
    import torch

    from esa_lightning.models.zscore.model import RobustZScore

    model = RobustZScore(n_channels=len(mission.channel_names), quantile=99.0)
    train = torch.from_numpy(np.asarray(mission.train().values))
    model.median.copy_(train.median(0).values)
    model.scale.copy_(train.std(0))
    model.threshold.fill_(4.0)
    return model


def manifest_of(folder: Path) -> dict:
    """The detector.json of the artifact in ``folder``."""
    return json.loads((folder / "detector.json").read_text())


def write_manifest(folder: Path, manifest: dict) -> None:
    """``manifest`` written as ``folder``'s detector.json, its checksum (``manifest_sha256``)
    computed again for the edit: a hostile file can recompute it, so the checks behind it
    (structure, hyper-parameters, sizes) are tested with manifests forged through this."""
    from esa_lightning.artifact.format import CHECKSUM_KEY, manifest_checksum

    stamped = {**manifest, CHECKSUM_KEY: manifest_checksum(manifest)}
    (folder / "detector.json").write_text(json.dumps(stamped))


def set_cell(row: int, column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A spoiler of a predictions frame: ``value`` written into ``row`` of ``column``."""

    def spoil(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype({column: object})
        frame.loc[row, column] = value
        return frame

    return spoil


def check_fit_held_once(model, key: str, mission: Mission, folder: Path) -> None:
    """A component fitted without gradient steps whose Lightning checkpoint holds its fitted
    state under ``key`` (``on_save_checkpoint``) beside its own ``save_extra`` skops file: its
    artifact holds that state once (the skops file, not a copied lightning.ckpt); one written
    with the checkpoint copied (as before ``artifact_checkpoint``) loads and scores ``mission``
    the same, and saves again without it."""
    import pytest
    import torch

    from esa_lightning.artifact import Detector, mission_schema

    def copies(artifact: Path) -> int:
        part = artifact / "components" / "model"
        ckpts = [torch.load(p, weights_only=True) for p in part.glob("*.ckpt")]
        return len(list(part.glob("*.skops"))) + sum(key in c for c in ckpts)

    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)  # as Lightning's last.ckpt holds it
    torch.save(checkpoint, folder / "last.ckpt")
    before = model.score_rows(mission)
    detector = Detector({"model": model}, mission_schema(mission))
    detector.checkpoints = {"model": folder / "last.ckpt"}
    detector.save(folder / "new")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(model), "artifact_checkpoint", True)  # as written before
        detector.save(folder / "old")
    Detector.load(folder / "old").save(folder / "again")
    held = {name: copies(folder / name) for name in ("new", "old", "again")}
    assert held == {"new": 1, "old": 2, "again": 1}, f"copies of the fitted state: {held}"
    for name in ("new", "old", "again"):
        scores = Detector.load(folder / name).score_rows(mission)
        for field in ("score", "alarm", "channel_scores", "channel_alarm"):
            np.testing.assert_array_equal(getattr(scores, field), getattr(before, field))


def small_gru(m: Mission, post_processing: dict) -> tuple:
    """(an untrained small GRU with ``post_processing``, its set-up ``WindowDataModule`` of
    windows of 8 rows on ``m``), seeded: train it with ``trainer().fit(model, dm)``."""
    import torch

    from esa_lightning.data.windows import WindowDataModule
    from esa_lightning.models.gru_ae.model import LitGRUAttentionAE

    torch.manual_seed(0)
    dm = WindowDataModule(m, window=8, batch_size=64)
    dm.setup("fit")
    model = LitGRUAttentionAE(**dm.dims, hidden_size=12, latent_dim=6, lr=3e-3,
                              post_processing=post_processing)
    return model, dm


def json_parse_sizes(monkeypatch) -> list[int]:
    """The length of every text ``json.loads`` parses from now on in this test (patched with
    ``monkeypatch``): a file refused by its size before it is parsed leaves no long entry."""
    parsed: list[int] = []
    loads = json.loads

    def counted(text, *args, **kwargs):
        parsed.append(len(text))
        return loads(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counted)
    return parsed


@dataclasses.dataclass(frozen=True)
class StuckEnsembleCase:
    """The stuck-channel case of the two channel ensembles' tests (the surrogate's and the
    trees'): a rule whose limit (``factor`` x ``min_run`` = 450 rows) needs a longer context
    than the ensemble's own (351 rows), a target and a non-target channel held on ``stuck``
    rows of the tiny mission's test range [10000, 12000)."""

    rule: dict = dataclasses.field(default_factory=lambda: {
        "kind": "frozen", "factor": 1.5, "min_run": 300, "max_run": 10_000})
    limit: int = 450
    stuck: tuple[int, int] = (10_300, 11_200)
    target: int = 2  # a target channel
    other: int = 1  # made a non-target (never watched)

    def mission(self) -> Mission:
        """The tiny mission with channel ``other`` made a non-target."""
        m = make_tiny_mission()
        channels = m.channels.copy()
        channels.loc[self.other, "Target"] = False
        return dataclasses.replace(m, channels=channels)

    def held(self, mission: Mission) -> Mission:
        """``mission`` with the target and the non-target channel held on the ``stuck`` rows."""
        values = mission.values.copy()
        first, last = self.stuck
        for c in (self.target, self.other):
            values[first:last, c] = values[first, c]
        return dataclasses.replace(mission, values=values)


def frozen_alarms_whole_chunked_and_loaded(model, name: str, mission, chunk_rows: int,
                                           folder: Path):  # noqa: ANN001, ANN201
    """A model with the stuck-channel rule as the one component ``name`` of a detector: its
    alarms on ``mission`` whole, in chunks of ``chunk_rows`` rows and after a save and a load
    (its fitted limits travelling) must be the same, and so must the rules that raised them
    (``RowScores.raised_by``: ``frozen`` on the rows a channel is stuck on). Returns (the whole
    scoring, the loaded component)."""
    import torch

    from esa_lightning.artifact import Detector, mission_schema
    from esa_lightning.models.raised_by import FROZEN
    from esa_lightning.runtime.chunks import score_in_chunks

    det = Detector({name: model}, mission_schema(mission))
    whole = det.score_rows(mission)
    stuck = model.frozen_rule.alarms(mission, 0).any(axis=1)
    assert stuck.any() and ((whole.raised_by & FROZEN) != 0).tolist() == stuck.tolist()
    chunked = score_in_chunks(det, mission, chunk_rows=chunk_rows)
    loaded = Detector.load(det.save(folder)).components[name]
    assert torch.equal(loaded.post_rules["frozen"].limit, model.post_rules["frozen"].limit)
    again = loaded.score_rows(mission)
    for other in (chunked, again):
        for field in ("alarm", "channel_alarm", "raised_by"):
            np.testing.assert_array_equal(getattr(other, field), getattr(whole, field))
    return whole, loaded



class FixedScores:
    """A component whose ``score_rows`` gives the same ``RowScores`` on any range of
    ``n_rows`` rows (a combiner's component in unit tests)."""

    def __init__(self, rs, n_rows: int) -> None:
        self.rs, self.n_rows = rs, n_rows

    def score_rows(self, mission):
        assert len(mission.values) == self.n_rows
        return self.rs
