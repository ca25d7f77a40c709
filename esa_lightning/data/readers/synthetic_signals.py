"""The synthetic mission's model: channel layout, telecommands, planned events and the signals
(latent drivers, per-channel mixing and noise, event effects) that ``readers.synthetic`` writes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from esa_lightning.data.readers.grid_period import period_ns

DAY_NS = 86_400 * 10**9
ORBIT_NS = 100 * 60 * 10**9

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
class Event:
    """One planned event: its effect, ESA classification, time span and channels."""

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
def plan_layout(n: int, groups: int, subsystems: int) -> pd.DataFrame:
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


def plan_telecommands(
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


def plan_events(layout: pd.DataFrame, t0: int, t1: int, rng: np.random.Generator) -> list[Event]:
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
            Event(
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
class Drivers:
    """Latent drivers shared by the channels of a group: orbit, slow drift, operating mode."""

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


def plan_split(start: str, days: float, period: str, first: int, last: int) -> str:
    """The test range's start: 60 % into the mission at midnight of the nearest whole day (day 25
    of 42). Where that leaves the reader's grid (``period`` rows from the earliest sample,
    ``first``, to the latest, ``last``: int64 ns) no row before it or none at or after it (a
    mission of a day or less), 60 % into the mission on that grid instead, a row at least on
    either side."""
    by_day = str((pd.Timestamp(start) + pd.Timedelta(days=round(0.6 * days))).date())
    p = period_ns(period)
    first_row, last_row = first // p * p, last // p * p
    if first_row < pd.Timestamp(by_day).value <= last_row or last_row <= first_row:
        return by_day  # a single row has no split: the readers' checks name what is missing
    on_grid = (first + int(0.6 * days * DAY_NS)) // p * p
    return pd.Timestamp(min(max(on_grid, first_row + p), last_row)).isoformat()


def make_drivers(
    groups: int, t0: int, t1: int, switches: dict, rng: np.random.Generator
) -> Drivers:
    """Draw every group's drivers (orbit phase, smoothed drift, mode levels)."""
    grid = np.arange(t0, t1 + 6 * 3600 * 10**9, 6 * 3600 * 10**9, dtype=np.int64)
    walk = np.cumsum(rng.normal(0, 1, (len(grid), groups)), axis=0)
    walk = lfilter([0.1], [1, -0.9], walk, axis=0)
    walk = (walk - walk.mean(0)) / (walk.std(0) + 1e-9)
    levels = np.concatenate([np.zeros((groups, 1)), rng.uniform(-1.5, 1.5, (groups, 2))], axis=1)
    return Drivers(t0, t1, rng.uniform(0, 2 * np.pi, groups), grid, walk, levels, switches)


def sample_timestamps(t0: int, t1: int, mean_s: float, rng: np.random.Generator) -> np.ndarray:
    """Irregular int64 ns sample times in [t0, t1], ``mean_s`` seconds apart on average."""
    n = int((t1 - t0) / (mean_s * 1e9) * 1.1) + 16
    steps = rng.uniform(0.5, 1.5, n) * mean_s * 1e9
    t = t0 + int(rng.uniform(0, mean_s * 1e9)) + np.cumsum(steps).astype(np.int64)
    t = t[t <= t1]
    t = t // 10**6 * 10**6
    return np.concatenate([[t0], t[t > t0]])


def channel_signal(
    row: pd.Series, t: np.ndarray, drv: Drivers, rng: np.random.Generator
) -> np.ndarray:
    """One channel's raw values at times ``t``, by its kind (counter, categorical, ...)."""
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


def apply_event(
    ev: Event, k: int, t: np.ndarray, x: np.ndarray, rng: np.random.Generator
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
