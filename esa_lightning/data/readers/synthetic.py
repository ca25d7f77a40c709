"""A synthetic spacecraft mission written in the exact ESA-ADB raw layout (with Kaggle and ESA
CSV copies on request: ``layout_writers``).

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
import inspect
import json
import logging
import os
import shutil
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from esa_lightning import io
from esa_lightning.data.mission import Mission
from esa_lightning.data.readers.common import other_layout_hint
from esa_lightning.data.readers.layout_writers import write_csv, write_esa_csv, write_kaggle_layout
from esa_lightning.data.readers.synthetic_record import (
    FIRST_USE,
    GENERATOR_CODE,
    generator_code_digest,
    settings_that_differ,
    warn_other_code,
)
from esa_lightning.data.readers.synthetic_signals import (
    DAY_NS,
    Event,
    apply_event,
    channel_signal,
    make_drivers,
    plan_events,
    plan_layout,
    plan_split,
    plan_telecommands,
    sample_timestamps,
)
from esa_lightning.data.selection import VAL_DAYS_NULL, select_channels, split_points_by_time
from esa_lightning.errors import ESAInputError, user_stacklevel

log = logging.getLogger(__name__)

_ZIP = {"method": "zip", "compresslevel": 1}
#: validation without a ``val_days``: this share of the mission (7 of the default 42 days)
VAL_SHARE = 1 / 6
#: ``mission.json``'s record of the settings the mission was generated with; the mission read
#: (``Mission.meta``) and a detector trained on it (``Detector.info``) keep it under this key
GENERATOR = "generator"


# --------------------------------------------------------------------------- generator
def generate_mission(
    out: str | os.PathLike,
    *,
    channels: int = 16,
    groups: int | None = None,
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
    """Write a synthetic mission in the ESA-ADB raw layout into ``out``; return ``out``.
    ``groups`` None: 4, or ``channels`` when fewer."""
    args = generator_settings({
        "channels": channels, "groups": groups, "subsystems": subsystems, "days": days,
        "start": start, "period": period, "seed": seed, "n_telecommands": n_telecommands,
        "split_date": split_date,
    })
    groups = args["groups"]
    checks = [
        ("channels", channels, channels >= 1, ">= 1"),
        ("groups", groups, groups >= 1, ">= 1"),
        # each group holds a channel, each subsystem a group: never fewer than mission.json says
        ("groups", groups, groups <= channels, f"at most the channels ({channels})"),
        ("subsystems", subsystems, subsystems is None or 1 <= subsystems <= groups,
         f">= 1 and at most the groups ({groups})"),
        ("days", days, days > 0, "> 0"),
        ("telecommands", n_telecommands, n_telecommands >= 0, ">= 0"),
    ]
    for name, value, ok, requirement in checks:
        if not ok:
            raise ESAInputError(f"{name}={value}: must be {requirement}")
    _check_times(start, period, split_date)
    if Path(out).exists() and not Path(out).is_dir():
        raise ESAInputError("exists and is not a folder", path=out)
    out = Path(out)
    (out / "channels").mkdir(parents=True, exist_ok=True)
    subsystems = subsystems or max(1, min(4, (groups + 1) // 2))
    t0 = int(pd.Timestamp(start).as_unit("ns").value)
    t1 = t0 + int(days * DAY_NS)
    root_rng = np.random.default_rng(seed)
    layout = plan_layout(channels, groups, subsystems)
    tc_table, tc_times, switches = plan_telecommands(n_telecommands, groups, t0, t1, root_rng)
    drv = make_drivers(groups, t0, t1, switches, root_rng)
    events = plan_events(layout, t0, t1, root_rng)
    gaps = [e for e in events if e.effect == "gap"]
    by_channel: dict[int, list[tuple[Event, int]]] = {}
    for ev in events:
        for k, c in enumerate(ev.channels):
            by_channel.setdefault(c, []).append((ev, k))

    label_rows = []
    first, last = t1, t0  # the earliest and the latest sample: the reader's grid spans them
    for c, row in layout.iterrows():
        rng = np.random.default_rng([seed, 1, int(c)])
        mean_s = float(np.exp(rng.uniform(np.log(60), np.log(300))))
        t = sample_timestamps(t0, t1, mean_s, rng)
        for ev in gaps:
            if c in ev.channels:
                t = t[(t < ev.start) | (t > ev.end)]
        if len(t):
            first, last = min(first, int(t[0])), max(last, int(t[-1]))
        x = channel_signal(row, t, drv, rng)
        for ev, k in by_channel.get(int(c), []):
            span = apply_event(ev, k, t, x, rng)
            if span is not None:
                label_rows.append((ev.id, row["Channel"], span[0], span[1]))
        _write_series(out / "channels" / f"{row['Channel']}.zip", row["Channel"], t, x)
        del t, x

    if n_telecommands:
        (out / "telecommands").mkdir(exist_ok=True)
    for name, t in zip(tc_table["Telecommand"], tc_times, strict=True):
        _write_series(out / "telecommands" / f"{name}.zip", name, t, np.ones(len(t)))
    _write_tables(out, layout, tc_table, events, label_rows)

    split = split_date or plan_split(start, days, period, first, last)
    counters = list(layout.loc[layout["kind"] == "counter", "Channel"])
    lightweight = list(layout.loc[layout["group_index"] == groups - 1, "Channel"])
    info = {
        "counters": counters,
        "split_date": split,
        "lightweight": lightweight,
        "period": period,
        GENERATOR: args,
        GENERATOR_CODE: generator_code_digest(),
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


def generator_settings(generate: dict[str, Any] | None) -> dict[str, Any]:
    """The settings ``generate_mission(**generate)`` uses, as ``mission.json`` records them
    (``generator``): those not given at their defaults, ``groups`` None as it resolves it."""
    params = inspect.signature(generate_mission).parameters
    settings = {k: p.default for k, p in params.items() if k not in ("out", "kaggle", "csv")}
    settings.update(generate or {})
    if settings["groups"] is None and isinstance(settings["channels"], int | float):
        settings["groups"] = min(4, settings["channels"])
    return settings


def _check_times(start: str, period: str, split_date: str | None) -> None:
    """Refuse a start or split date that is no date, or a period that is no positive duration,
    before anything is written."""
    for name, value in (("start", start), ("split_date", split_date)):
        if name == "split_date" and value is None:
            continue
        try:
            ok = not pd.isna(pd.Timestamp(value))
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise ESAInputError(f"{name}={value}: not a date/time (e.g. 2000-01-01)")
    try:
        ok = pd.Timedelta(period) > pd.Timedelta(0)
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise ESAInputError(f"period={period}: not a positive time period (e.g. 30s)")


def _write_series(path: Path, name: str, t: np.ndarray, x: np.ndarray) -> None:
    frame = pd.DataFrame(
        {name: np.asarray(x, dtype=np.float64)},
        index=pd.DatetimeIndex(np.asarray(t, dtype=np.int64).view("datetime64[ns]")),
    )
    with io.atomic_path(path) as tmp:  # the member named after the file, not the temporary name
        frame.to_pickle(tmp, compression={**_ZIP, "archive_name": path.stem})


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat()


def _write_tables(
    out: Path,
    layout: pd.DataFrame,
    tc_table: pd.DataFrame,
    events: list[Event],
    label_rows: list[tuple[str, str, int, int]],
) -> None:
    public = ["Channel", "Subsystem", "Physical Unit", "Group", "Target", "Categorical"]
    write_csv(out / "channels.csv", layout[public])
    write_csv(out / "telecommands.csv", tc_table)
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
    write_csv(out / "labels.csv", labels)
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
    write_csv(out / "anomaly_types.csv", types)



# --------------------------------------------------------------------------- load / CLI
def load_synthetic(
    root: str | os.PathLike, *, generate: dict[str, Any] | None = None, **read_options: Any
) -> Mission:
    """Read the synthetic mission at ``root``, generating it there first if it is missing.

    ``val_days`` None: validation is the last ``VAL_SHARE`` of the mission's days (the
    generator's ``days``, else the mission's span): the default 42-day mission's 7 days, a
    4-day mission's 16 hours. A ``val_days`` given is used as given.

    Generation happens in a temporary folder renamed onto ``root``, so an interrupted run never
    leaves a half-written mission, and of two runs generating it at once the second reads the
    first one's. ``counters``, ``split_date`` and ``lightweight`` default to
    the values the generator recorded in ``mission.json``; ``meta[GENERATOR]`` is its record of
    the settings the mission was generated with ({} without one), which may differ from
    ``generate`` (an existing mission is read as it was generated, with a warning).
    """
    from esa_lightning.data.readers.esa_adb import read_esa_mission

    root = Path(root)
    gen = dict(generate or {})
    if not (root / "channels.csv").is_file():
        if root.is_file() or root.is_dir() and any(root.iterdir()):  # else: generated there
            what = ("folder exists but holds no mission (no channels.csv)" if root.is_dir()
                    else "a file, not a mission folder")
            raise ESAInputError(what + other_layout_hint(root, reads="esa"), path=root)
        _refuse_channels_it_would_lack(gen, read_options.get("channels"), root)
        # said, as a mistyped data.root gets a mission too
        log.info("%s: no mission there: generating the synthetic mission (%s)", root,
                 ", ".join(f"{k}={v}" for k, v in gen.items()) or "the generator's defaults")
        tmp = io.make_temporary_folder(root)
        try:
            generate_mission(tmp, **gen)
            # a folder generated from these settings: a later read with others says so
            io.write_json_atomic(tmp / "mission.json", {**_mission_info(tmp), FIRST_USE: True})
            try:
                if root.exists():
                    root.rmdir()
                os.rename(tmp, root)
            except OSError:
                # another run on first use (a parallel sweep, a second shell) finished first
                if not (root / "channels.csv").is_file():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    info = _mission_info(root)
    recorded = info.get(GENERATOR, {})
    if GENERATOR in info:  # a generated mission: made by this generator's code?
        warn_other_code(root, info)
    defaults = {k: p.default for k, p in inspect.signature(generate_mission).parameters.items()}
    differs = settings_that_differ(info, recorded, gen, generator_settings(gen), defaults)
    if differs:
        warnings.warn(
            f"{root}: reusing the existing synthetic mission generated with {recorded}; "
            f"requested {differs}. Delete the folder (or give another data.root) to regenerate.",
            stacklevel=user_stacklevel(),
        )
    options = dict(read_options)
    for key in ("counters", "lightweight"):
        if options.get(key) is None and key in info:
            options[key] = info[key]
    if options.get("split_date") is None:
        options["split_date"] = info.get("split_date")
    if options.get("val_days") is None and recorded.get("days") is not None:
        options["val_days"] = float(recorded["days"]) * VAL_SHARE
    mission = read_esa_mission(root, **options)
    if options.get("val_days") is None and mission.n_rows > 1:  # no generator record: its span
        ts = mission.timestamps
        days = float((ts[-1] - ts[0]) / np.timedelta64(1, "D"))
        val_start, _ = split_points_by_time(
            ts, options["split_date"], days * VAL_SHARE, options.get("val_fraction")
        )
        mission = replace(mission, val_start=val_start)
    # what set the share: the recorded days (the config's only where they agree), else the span
    rec_days = recorded.get("days")
    set_by = (
        "the mission's span: mission.json records no generator" if rec_days is None
        else f"data.generate.days={rec_days}" if gen.get("days") == rec_days
        else f"days={rec_days} in the generator record of {root / 'mission.json'}"
    )
    share = {"share": "a sixth of the mission", "set_by": set_by}
    return replace(mission, meta={**mission.meta, VAL_DAYS_NULL: share, GENERATOR: recorded})


def _refuse_channels_it_would_lack(gen: dict[str, Any], channels: Any, root: Path) -> None:
    """Channels asked for by name that the mission about to be generated would lack (predict.py
    reading a detector's channels from the default data) are refused, as the reader would
    refuse them (``UnknownChannels``), before it is generated for nothing."""
    if channels is None or channels in ("all", "target", "lightweight"):
        return
    n = gen.get("channels", inspect.signature(generate_mission).parameters["channels"].default)
    if isinstance(n, int) and n >= 1:  # else generate_mission names the bad value
        names = plan_layout(n, 1, 1)["Channel"]  # the names follow from the count alone
        select_channels(pd.DataFrame({"Channel": names}), channels, source=str(root))


def _mission_info(root: Path) -> dict[str, Any]:
    from esa_lightning.data.readers.esa_adb import read_mission_record

    return read_mission_record(root)


def main(argv: list[str] | None = None) -> None:
    from esa_lightning.errors import one_line_errors

    parser = argparse.ArgumentParser(description="Write a synthetic mission in ESA-ADB layout.")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--groups", type=int, default=None,
                        help="channel groups sharing latent drivers: at most --channels "
                             "(default: 4, or --channels when fewer)")
    parser.add_argument("--subsystems", type=int, default=None,
                        help="subsystems the groups are spread over: at most --groups "
                             "(default: about half the groups, at most 4)")
    parser.add_argument("--days", type=float, default=42)
    parser.add_argument("--start", default="2000-01-01")
    parser.add_argument("--period", default="30s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--telecommands", type=int, default=12, dest="n_telecommands")
    parser.add_argument("--split-date", default=None)
    parser.add_argument("--kaggle", action="store_true", help="also write out/kaggle/")
    parser.add_argument("--csv", action="store_true", help="also write out/csv/ (ESA CSV)")
    a = parser.parse_args(argv)
    with one_line_errors():
        out = _generate_from_arguments(a)
    info = json.loads((out / "mission.json").read_text())
    n_events = len(pd.read_csv(out / "anomaly_types.csv"))
    print(
        f"wrote {out}: {a.channels} channels, {a.days} days, {n_events} events, "
        f"split {info['split_date']}"
    )


def _generate_from_arguments(a: argparse.Namespace) -> Path:
    """The command line's mission, into a new or empty ``--out`` folder (never over files),
    written whole into a temporary folder first (``io.new_folder``): a run stopped half-way
    leaves no half-written mission, and the next run removes a killed one's temporary."""
    out = Path(a.out)
    if out.is_dir() and any(out.iterdir()):
        raise ESAInputError("--out: the folder exists and is not empty; choose a new one", path=out)
    if out.exists() and not out.is_dir():
        raise ESAInputError("exists and is not a folder", path=out)
    with io.new_folder(out) as tmp:
        generate_mission(
            tmp,
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
    return out


if __name__ == "__main__":
    main()
