"""A synthetic spacecraft mission written in the exact ESA-ADB raw layout, plus layout writers.

Why: the real ESA-ADB missions are several GB and not reachable from every machine, so tests,
``python train.py`` and the benchmarks use a generated mission that goes through the very same
reader. The generator is deterministic by ``seed`` and works channel by channel, so a
Mission1-sized set (76 channels, 14 years) takes minutes and bounded memory.

What it models
--------------
- Channels in groups (and groups in subsystems) share latent drivers: an orbital periodicity
  (100 min, with a harmonic), a slow drift (smoothed random walk plus a yearly season) and an
  operating mode that switches when the group's priority-3 telecommand executes. Each channel
  mixes them with its own weights, lag, scale, offset and AR(1) noise.
- Kinds: continuous, quantised (rounded to a step), categorical (eclipse flag or mode state) and
  monotonic counters (listed in ``mission.json``; the reader differences them).
- Irregular timestamps at a per-channel mean rate (60 s to 300 s between samples).
- Events of every ESA kind, spread evenly over the whole time range (so both the training and the
  test range hold every kind): point and subsequence, global and local, univariate and
  multivariate (several channels of one group) anomalies, rare events, and communication gaps
  (no samples for a subsystem). Magnitudes are a few channel standard deviations: visible, but
  not trivially separable from mode switches and noise.

Files: ``channels/channel_N.zip``, ``telecommands/telecommand_N.zip``, ``channels.csv``,
``telecommands.csv``, ``labels.csv`` (UTC times with an offset), ``anomaly_types.csv`` and
``mission.json`` (counters, recommended split date, lightweight subset, generator arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.signal import lfilter

from esa_lightning import io
from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError

DAY_NS = 86_400 * 10**9
ORBIT_NS = 100 * 60 * 10**9
_ZIP = {"method": "zip", "compresslevel": 1}
_WRITE_ROWS = 1 << 20

# (effect, category, class, subclass, locality, length, multivariate)
_CATALOGUE = [
    ("spike", "Anomaly", "spike", "outlier", "Global", "Point", False),
    ("spike", "Anomaly", "spike", "outlier", "Global", "Point", True),
    ("mirror", "Anomaly", "contextual", "phase_outlier", "Local", "Point", False),
    ("shift", "Anomaly", "level_shift", "offset", "Global", "Subsequence", False),
    ("shift", "Anomaly", "level_shift", "offset", "Global", "Subsequence", True),
    ("noise", "Anomaly", "noise_burst", "variance", "Local", "Subsequence", False),
    ("noise", "Anomaly", "noise_burst", "variance", "Local", "Subsequence", True),
    ("stuck", "Anomaly", "frozen", "stuck_value", "Local", "Subsequence", False),
    ("drift", "Anomaly", "drift", "ramp", "Global", "Subsequence", True),
    ("damp", "Anomaly", "shape", "amplitude_drop", "Local", "Subsequence", True),
    ("bump", "Rare Event", "manoeuvre", "transient", "Global", "Subsequence", True),
    ("pulse", "Rare Event", "calibration", "step_pulse", "Local", "Subsequence", False),
    ("gap", "Communication Gap", "gap", "no_data", "Global", "Subsequence", True),
]


@dataclass
class _Event:
    id: str
    effect: str
    category: str
    cls: str
    subclass: str
    locality: str
    length: str
    start: int  # ns since epoch
    end: int
    channels: list[int]
    sign: list[float] = field(default_factory=list)
    size: float = 1.0


# --------------------------------------------------------------------------- layout
def _layout(n: int, groups: int, subsystems: int) -> pd.DataFrame:
    """Channel table plus internal columns: kind (continuous/quantised/categorical/counter)."""
    groups = max(1, min(groups, n))
    group_of = np.minimum(np.arange(n) * groups // n, groups - 1)
    n_counters = 0 if n < 4 else max(1, round(0.08 * n))
    kinds = []
    for c in range(n):
        g = group_of[c]
        members = np.flatnonzero(group_of == g)
        if 1 <= c <= n_counters:
            kinds.append("counter")
        elif len(members) >= 3 and c == members[-1] and g != groups - 1:
            kinds.append("categorical")
        elif c % 4 == 2:
            kinds.append("quantised")
        else:
            kinds.append("continuous")
    kinds_arr = np.array(kinds)
    units = {"continuous": "V", "quantised": "degC", "categorical": "-", "counter": "count"}
    target = ~np.isin(kinds_arr, ["counter", "categorical"])
    target[0] = n == 1  # like ESA: a few non-target housekeeping channels
    return pd.DataFrame(
        {
            "Channel": [f"channel_{c + 1}" for c in range(n)],
            "Subsystem": [f"subsystem_{g % subsystems + 1}" for g in group_of],
            "Physical Unit": [units[k] for k in kinds],
            "Group": [f"group_{g + 1}" for g in group_of],
            "Target": np.where(target, "YES", "NO"),
            "Categorical": np.where(kinds_arr == "categorical", "YES", "NO"),
            "kind": kinds,
            "group_index": group_of,
        }
    )


def _telecommands(
    k: int, groups: int, t0: int, t1: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, list[np.ndarray], dict[int, np.ndarray]]:
    """(table, execution times per telecommand, mode-switch times per group)."""
    n_p3 = 0 if k == 0 else min(k, max(2, k // 4))
    prio = np.concatenate([np.full(n_p3, 3), rng.integers(0, 3, k - n_p3)]).astype(int)
    order = rng.permutation(k)
    prio = prio[order]
    p3 = [i for i in range(k) if prio[i] == 3]
    span = t1 - t0
    times = []
    for i in range(k):
        per_day = rng.uniform(0.2, 0.5) if prio[i] == 3 else rng.uniform(0.5, 8)
        count = max(1, rng.poisson(per_day * span / DAY_NS))
        t = np.sort(rng.integers(t0, t1, count))
        t = np.unique(t // 10**6 * 10**6)  # millisecond resolution, strictly increasing
        times.append(t)
    # every group but the last ("lightweight", no telecommands) switches mode on one p3 command
    switches = {g: times[p3[g % len(p3)]] for g in range(groups - 1)} if p3 else {}
    table = pd.DataFrame({"Telecommand": [f"telecommand_{i + 1}" for i in range(k)]})
    table["Priority"] = prio
    return table, times, switches


def _plan_events(layout: pd.DataFrame, t0: int, t1: int, rng: np.random.Generator) -> list[_Event]:
    """Events evenly spread over [t0, t1]: one per bin, kinds cycling through the catalogue."""
    days = (t1 - t0) / DAY_NS
    n = int(np.clip(round(days * 0.6), 2 * len(_CATALOGUE), 240))
    bin_ns = (t1 - t0) // (n + 1)
    eligible = {
        g: list(np.flatnonzero((layout["group_index"] == g) & (layout["Target"] == "YES")))
        for g in sorted(layout["group_index"].unique())
    }
    eligible = {g: v for g, v in eligible.items() if v}
    subsystems = layout["Subsystem"].to_numpy()
    order: list[int] = []
    while len(order) < n:
        order.extend(rng.permutation(len(_CATALOGUE)).tolist())
    events = []
    for i in range(n):
        effect, cat, cls, sub, loc, length, multi = _CATALOGUE[order[i]]
        lo = t0 + (i + 1) * bin_ns - bin_ns // 2
        if length == "Point":
            dur = 0
        else:
            hi_min = min(12 * 60, bin_ns / 60e9 / 3)
            dur = int(np.exp(rng.uniform(np.log(20), np.log(max(hi_min, 21)))) * 60e9)
            if effect == "gap":
                dur = int(min(rng.uniform(60, 360), bin_ns / 60e9 / 3) * 60e9)
        start = lo + int(rng.integers(0, max(1, bin_ns // 2 - dur)))
        if effect == "gap":
            sub_name = subsystems[rng.integers(len(subsystems))]
            chans = list(np.flatnonzero(subsystems == sub_name))
        elif eligible:
            g = list(eligible)[rng.integers(len(eligible))]
            pool = eligible[g]
            if multi and len(pool) >= 2:
                size = int(rng.integers(2, min(4, len(pool)) + 1))
                chans = sorted(rng.choice(pool, size, replace=False).tolist())
            else:
                chans = [int(rng.choice(pool))]
        else:
            continue
        events.append(
            _Event(
                id=f"id_{len(events) + 1}",
                effect=effect,
                category=cat,
                cls=cls,
                subclass=sub,
                locality=loc,
                length=length,
                start=start,
                end=start + dur,
                channels=[int(c) for c in chans],
                sign=rng.choice([-1.0, 1.0], len(chans)).tolist(),
                size=float(rng.uniform(0.8, 1.2)),
            )
        )
    return events


# --------------------------------------------------------------------------- signals
@dataclass
class _Drivers:
    t0: int
    t1: int
    orbit_phase: np.ndarray  # per group
    drift_grid: np.ndarray  # coarse times (ns)
    drift: np.ndarray  # [n_grid, groups]
    mode_levels: np.ndarray  # [groups, 3]
    switches: dict[int, np.ndarray]

    def orbit(self, t: np.ndarray, g: int, lag: float) -> np.ndarray:
        x = 2 * np.pi * ((t - self.t0) / ORBIT_NS) + self.orbit_phase[g] + lag
        return np.sin(x) + 0.3 * np.sin(2 * x + 1.0)

    def slow(self, t: np.ndarray, g: int) -> np.ndarray:
        season = 0.5 * np.sin(2 * np.pi * (t - self.t0) / (365.25 * DAY_NS) + g)
        return np.interp(t, self.drift_grid, self.drift[:, g]) + season

    def mode(self, t: np.ndarray, g: int) -> np.ndarray:
        sw = self.switches.get(g)
        if sw is None or not len(sw):
            return np.zeros(len(t), dtype=np.int64)
        return np.searchsorted(sw, t, side="right") % self.mode_levels.shape[1]


def _drivers(groups: int, t0: int, t1: int, switches: dict, rng: np.random.Generator) -> _Drivers:
    grid = np.arange(t0, t1 + 6 * 3600 * 10**9, 6 * 3600 * 10**9, dtype=np.int64)
    walk = np.cumsum(rng.normal(0, 1, (len(grid), groups)), axis=0)
    walk = lfilter([0.1], [1, -0.9], walk, axis=0)
    walk = (walk - walk.mean(0)) / (walk.std(0) + 1e-9)
    levels = np.concatenate([np.zeros((groups, 1)), rng.uniform(-1.5, 1.5, (groups, 2))], axis=1)
    return _Drivers(t0, t1, rng.uniform(0, 2 * np.pi, groups), grid, walk, levels, switches)


def _timestamps(t0: int, t1: int, mean_s: float, rng: np.random.Generator) -> np.ndarray:
    n = int((t1 - t0) / (mean_s * 1e9) * 1.1) + 16
    steps = rng.uniform(0.5, 1.5, n) * mean_s * 1e9
    t = t0 + int(rng.uniform(0, mean_s * 1e9)) + np.cumsum(steps).astype(np.int64)
    t = t[t <= t1]
    t = t // 10**6 * 10**6
    return np.concatenate([[t0], t[t > t0]])


def _channel_signal(
    row: pd.Series, t: np.ndarray, drv: _Drivers, rng: np.random.Generator
) -> np.ndarray:
    g = int(row["group_index"])
    kind = row["kind"]
    mode = drv.mode(t, g)
    if kind == "counter":
        rate = rng.uniform(0.5, 3.0) * (1 + 0.5 * mode)  # events per minute
        dt = np.diff(t, prepend=t[0]) / 60e9
        return np.floor(
            rng.uniform(1e5, 1e6) + np.cumsum(rate * dt * rng.uniform(0.8, 1.2, len(t)))
        )
    if kind == "categorical":
        if g % 2:
            return (drv.orbit(t, g, 0.0) < -0.6).astype(np.float64)  # eclipse flag
        return mode.astype(np.float64)
    w = rng.uniform([0.3, 0.0, 0.3], [1.0, 0.8, 1.2])
    sigma = rng.uniform(0.05, 0.2)
    noise = lfilter([1.0], [1, -0.6], rng.normal(0, sigma, len(t)))
    x = (
        w[0] * drv.orbit(t, g, rng.uniform(-0.5, 0.5))
        + w[1] * drv.slow(t, g)
        + w[2] * drv.mode_levels[g][mode]
        + noise
    )
    scale, offset = 10 ** rng.uniform(-1, 2), rng.uniform(-50, 50)
    x = offset + scale * x
    if kind == "quantised":
        step = scale * 0.1
        x = np.round(x / step) * step
    return x


def _apply_event(
    ev: _Event, k: int, t: np.ndarray, x: np.ndarray, rng: np.random.Generator
) -> tuple[int, int] | None:
    """Change x in place for event ``ev`` on its k-th channel; return the labeled (start, end)."""
    if ev.effect == "gap":
        return ev.start, ev.end
    a = int(np.searchsorted(t, ev.start, side="left"))
    b = int(np.searchsorted(t, ev.end, side="right"))
    if ev.length == "Point":
        if a >= len(t):
            return None
        b = min(len(t), a + 1 + int(ev.sign[k] > 0))  # one or two samples
    if b <= a:
        return None
    seg = slice(a, b)
    std = float(np.std(x)) or 1.0
    s = ev.sign[k] * ev.size
    n = b - a
    if ev.effect == "spike":
        x[seg] += s * 4.0 * std
    elif ev.effect == "mirror":
        med = float(np.median(x))
        x[seg] = np.clip(2 * med - x[seg] + s * 0.5 * std, x.min(), x.max())
    elif ev.effect == "shift":
        x[seg] += s * 1.5 * std
    elif ev.effect == "noise":
        x[seg] += rng.normal(0, 0.6 * std * ev.size, n)
    elif ev.effect == "stuck":
        x[seg] = x[a]
    elif ev.effect == "drift":
        x[seg] += s * 2.5 * std * np.linspace(0, 1, n)
    elif ev.effect == "damp":
        local = float(np.mean(x[seg]))
        x[seg] = local + 0.25 * (x[seg] - local)
    elif ev.effect == "bump":
        x[seg] += s * 3.0 * std * np.sin(np.linspace(0, np.pi, n)) ** 2
    elif ev.effect == "pulse":
        x[seg] += s * 1.0 * std
    return int(t[a]), int(t[b - 1])


# --------------------------------------------------------------------------- generator
def generate_mission(
    out: str | os.PathLike,
    *,
    channels: int = 16,
    groups: int = 4,
    subsystems: int | None = None,
    days: float = 42,
    start: str = "2000-01-01",
    period: str = "30s",
    seed: int = 0,
    n_telecommands: int = 12,
    kaggle: bool = False,
    csv: bool = False,
    split_date: str | None = None,
) -> Path:
    """Write a synthetic mission in the ESA-ADB raw layout into ``out``; return ``out``."""
    if channels < 1 or groups < 1 or days <= 0 or n_telecommands < 0:
        raise ESAInputError(
            "need channels >= 1, groups >= 1, days > 0, n_telecommands >= 0",
            value={"channels": channels, "groups": groups, "days": days},
        )
    args = {
        "channels": channels,
        "groups": groups,
        "subsystems": subsystems,
        "days": days,
        "start": start,
        "period": period,
        "seed": seed,
        "n_telecommands": n_telecommands,
        "split_date": split_date,
    }
    out = Path(out)
    (out / "channels").mkdir(parents=True, exist_ok=True)
    groups = min(groups, channels)
    subsystems = subsystems or max(1, min(4, (groups + 1) // 2))
    t0 = int(pd.Timestamp(start).as_unit("ns").value)
    t1 = t0 + int(days * DAY_NS)
    root_rng = np.random.default_rng(seed)
    layout = _layout(channels, groups, subsystems)
    tc_table, tc_times, switches = _telecommands(n_telecommands, groups, t0, t1, root_rng)
    drv = _drivers(groups, t0, t1, switches, root_rng)
    events = _plan_events(layout, t0, t1, root_rng)
    gaps = [e for e in events if e.effect == "gap"]
    by_channel: dict[int, list[tuple[_Event, int]]] = {}
    for ev in events:
        for k, c in enumerate(ev.channels):
            by_channel.setdefault(c, []).append((ev, k))

    label_rows = []
    for c, row in layout.iterrows():
        rng = np.random.default_rng([seed, 1, int(c)])
        mean_s = float(np.exp(rng.uniform(np.log(60), np.log(300))))
        t = _timestamps(t0, t1, mean_s, rng)
        for ev in gaps:
            if c in ev.channels:
                t = t[(t < ev.start) | (t > ev.end)]
        x = _channel_signal(row, t, drv, rng)
        for ev, k in by_channel.get(int(c), []):
            span = _apply_event(ev, k, t, x, rng)
            if span is not None:
                label_rows.append((ev.id, row["Channel"], span[0], span[1]))
        _write_series(out / "channels" / f"{row['Channel']}.zip", row["Channel"], t, x)
        del t, x

    if n_telecommands:
        (out / "telecommands").mkdir(exist_ok=True)
    for name, t in zip(tc_table["Telecommand"], tc_times, strict=True):
        _write_series(out / "telecommands" / f"{name}.zip", name, t, np.ones(len(t)))
    _write_tables(out, layout, tc_table, events, label_rows)

    split = split_date or str((pd.Timestamp(start) + pd.Timedelta(days=round(0.6 * days))).date())
    counters = list(layout.loc[layout["kind"] == "counter", "Channel"])
    lightweight = list(layout.loc[layout["group_index"] == groups - 1, "Channel"])
    info = {
        "counters": counters,
        "split_date": split,
        "lightweight": lightweight,
        "period": period,
        "generator": args,
    }
    io.write_json_atomic(out / "mission.json", info)
    if kaggle or csv:
        from esa_lightning.data.readers.esa_adb import read_esa_mission

        mission = read_esa_mission(
            out,
            period=period,
            counters=counters,
            split_date=split,
            lightweight=lightweight,
            use_cache=False,
        )
        if kaggle:
            write_kaggle_layout(mission, out / "kaggle")
        if csv:
            (out / "csv").mkdir(exist_ok=True)
            shutil.copyfile(out / "channels.csv", out / "csv" / "channels.csv")
            write_esa_csv(mission.slice(0, mission.test_start), out / "csv" / "synthetic.train.csv")
            if mission.test_start < mission.n_rows:
                test = mission.slice(mission.test_start, mission.n_rows)
                write_esa_csv(test, out / "csv" / "synthetic.test.csv")
    return out


def _write_series(path: Path, name: str, t: np.ndarray, x: np.ndarray) -> None:
    frame = pd.DataFrame(
        {name: np.asarray(x, dtype=np.float64)},
        index=pd.DatetimeIndex(np.asarray(t, dtype=np.int64).view("datetime64[ns]")),
    )
    with io.atomic_path(path) as tmp:
        frame.to_pickle(tmp, compression=_ZIP)


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat()


def _write_tables(
    out: Path,
    layout: pd.DataFrame,
    tc_table: pd.DataFrame,
    events: list[_Event],
    label_rows: list[tuple[str, str, int, int]],
) -> None:
    public = ["Channel", "Subsystem", "Physical Unit", "Group", "Target", "Categorical"]
    _write_csv(out / "channels.csv", layout[public])
    _write_csv(out / "telecommands.csv", tc_table)
    labels = pd.DataFrame(
        {
            "ID": [r[0] for r in label_rows],
            "Channel": [r[1] for r in label_rows],
            "StartTime": [_iso(r[2]) for r in label_rows],
            "EndTime": [_iso(r[3]) for r in label_rows],
        }
    )
    used = set(labels["ID"])
    order = {e.id: i for i, e in enumerate(events)}
    labels = labels.sort_values("ID", key=lambda s: s.map(order), kind="stable")
    _write_csv(out / "labels.csv", labels)
    types = pd.DataFrame(
        [
            {
                "ID": e.id,
                "Class": e.cls,
                "Subclass": e.subclass,
                "Category": e.category,
                "Dimensionality": "Multivariate" if len(e.channels) > 1 else "Univariate",
                "Locality": e.locality,
                "Length": e.length,
            }
            for e in events
            if e.id in used
        ],
        columns=["ID", "Class", "Subclass", "Category", "Dimensionality", "Locality", "Length"],
    )
    _write_csv(out / "anomaly_types.csv", types)


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    with io.atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


# --------------------------------------------------------------------------- other layouts
def write_kaggle_layout(mission: Mission, out_dir: str | os.PathLike) -> Path:
    """Kaggle challenge layout of a resampled mission: train/test parquet + target_channels.csv.

    Train = rows before ``test_start`` (with ``is_anomaly``), test = the rest (without it);
    ``id`` is the row number, so test ids continue the train ids.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    is_anomaly = mission.is_anomaly
    parts = [("train.parquet", 0, mission.test_start, True)]
    if mission.test_start < mission.n_rows:
        parts.append(("test.parquet", mission.test_start, mission.n_rows, False))
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
    _write_csv(
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


# --------------------------------------------------------------------------- load / CLI
def load_synthetic(
    root: str | os.PathLike, *, generate: dict[str, Any] | None = None, **read_options: Any
) -> Mission:
    """Read the synthetic mission at ``root``, generating it there first if it is missing.

    Generation happens in a temporary folder renamed onto ``root``, so an interrupted run never
    leaves a half-written mission. ``counters``, ``split_date`` and ``lightweight`` default to
    the values the generator recorded in ``mission.json``.
    """
    from esa_lightning.data.readers.esa_adb import read_esa_mission

    root = Path(root)
    gen = dict(generate or {})
    if not (root / "channels.csv").is_file():
        if root.exists() and any(root.iterdir()):
            raise ESAInputError("folder exists but holds no mission (no channels.csv)", path=root)
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=io.TMP_PREFIX + root.name + ".", dir=root.parent))
        try:
            generate_mission(tmp, **gen)
            if root.exists():
                root.rmdir()
            os.rename(tmp, root)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    info = _mission_info(root)
    recorded = info.get("generator", {})
    differs = {k: v for k, v in gen.items() if k in recorded and recorded[k] != v}
    if differs:
        warnings.warn(
            f"{root}: reusing the existing synthetic mission generated with {recorded}; "
            f"requested {differs}. Delete the folder to regenerate.",
            stacklevel=2,
        )
    options = dict(read_options)
    for key in ("counters", "lightweight"):
        if options.get(key) is None and key in info:
            options[key] = info[key]
    if options.get("split_date") is None:
        options["split_date"] = info.get("split_date")
    return read_esa_mission(root, **options)


def _mission_info(root: Path) -> dict[str, Any]:
    path = root / "mission.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ESAInputError(f"not valid JSON: {exc}", path=path) from None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic mission in ESA-ADB layout.")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--subsystems", type=int, default=None)
    parser.add_argument("--days", type=float, default=42)
    parser.add_argument("--start", default="2000-01-01")
    parser.add_argument("--period", default="30s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--telecommands", type=int, default=12, dest="n_telecommands")
    parser.add_argument("--split-date", default=None)
    parser.add_argument("--kaggle", action="store_true", help="also write out/kaggle/")
    parser.add_argument("--csv", action="store_true", help="also write out/csv/ (ESA CSV)")
    a = parser.parse_args(argv)
    out = generate_mission(
        a.out,
        channels=a.channels,
        groups=a.groups,
        subsystems=a.subsystems,
        days=a.days,
        start=a.start,
        period=a.period,
        seed=a.seed,
        n_telecommands=a.n_telecommands,
        kaggle=a.kaggle,
        csv=a.csv,
        split_date=a.split_date,
    )
    info = json.loads((out / "mission.json").read_text())
    n_events = len(pd.read_csv(out / "anomaly_types.csv"))
    print(
        f"wrote {out}: {a.channels} channels, {a.days} days, {n_events} events, "
        f"split {info['split_date']}"
    )


if __name__ == "__main__":
    main()
