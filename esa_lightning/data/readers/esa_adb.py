"""Read a raw ESA-ADB mission folder onto a fixed time grid, the way the benchmark preprocesses it.

Layout::

    channels/channel_N.zip          one pickled DataFrame per channel (irregular timestamps)
    telecommands/telecommand_N.zip  execution times of each telecommand (optional)
    channels.csv                    Channel, Subsystem, Physical Unit, Group, Target, Categorical
    telecommands.csv                Telecommand, Priority (optional)
    labels.csv                      ID, Channel, StartTime, EndTime (optional)
    anomaly_types.csv               ID, Category, Class, Subclass, ... (needed with labels)

Preprocessing
-------------
- The grid is the epoch-aligned lattice of ``period``: its first point is ``start`` (default: the
  earliest channel timestamp) floored to the period, its last point the latest lattice point at or
  before ``end`` (default: the latest channel timestamp). Both ends are included.
- Zero-order hold: the value at grid point t is the last raw value at or before t; grid points
  before a channel's first sample take its first value. Output float32 [T, C].
- ``counters`` are differenced after resampling (in float64, first row 0). ESA-ADB's
  ``channels.csv`` does not mark counters, so they are an option: ``None`` takes the list the
  folder's ``mission.json`` records (the synthetic generator writes one), else none.
  ``lightweight`` (the ``channels="lightweight"`` subset) is found the same way.
- Telecommands with ``Priority >= telecommand_priority`` become 0/1 pulses at the first grid point
  at or after each execution; executions outside the grid are dropped.
- Label start times floor to the grid and end times ceil, so every label marks at least one grid
  point; where labels of one channel overlap the lower (more important) code wins. Segments
  of one event ID on one channel that overlap or touch are read as one, their union, with a
  warning (``esa_adb_tables.read_events``). Each row owns the time since the row before it (a
  sample holds from the first grid row at or after it), so an event is read, and marks rows,
  iff its span meets the time after one period before the first grid time up to the last grid
  time (``grid_marks.on_grid``): one ending less than a period before the first grid time marks
  the first row and is listed on its time (the metrics clip events to the rows' time span);
  one starting after the last grid time marks no row. Events
  wholly outside the grid are not read, with a warning naming ``labels.csv`` and their IDs
  where they lie outside the channel files' own range too (not where ``start``/``end`` cut them).
- Timestamps that are unsorted or duplicated are an error (``ESAInputError``) rather than silently
  reordered: ESA-ADB's own files are strictly increasing, so anything else means a broken file.
  So is a channel (telecommand) file whose one value column is not named after the channel
  (telecommand): ESA-ADB's are, and its reference preprocessing reads the column by that name.
  NaN/inf values are repaired by forward fill (back fill at the start) with one warning that
  counts the repaired values per channel file, and one naming the files beyond float32's range.

Speed and memory: ``n_jobs`` threads read and resample channels (unzipping and numpy release the
GIL), each into its own float32 column; groups of up to 16 columns (at most a quarter of the
output) are then copied into the [T, C] output block by block, so the output is swept once per
group instead of once per channel. The float32 output is the only big allocation (it grows,
rarely, when a later channel extends the time range and ``start``/``end`` were not given).
The grid work lives in ``readers.esa_adb_grid``, the tables in ``readers.esa_adb_tables``
(``readers.threads`` runs the threads). Results are cached by ``readers.cache``, keyed
by the source files' identity and every option.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from esa_lightning import io
from esa_lightning.data.array_store import ArrayStore
from esa_lightning.data.mission import Mission, onto_first_row
from esa_lightning.data.preprocessing import PREPROCESSING_KEY, Preprocessing
from esa_lightning.data.readers import digests
from esa_lightning.data.readers.cache import (
    USER_CACHE_DIR,
    Layout,
    UserCacheDir,
    cache_entry,
    cache_folder,
    read_through_cache,
    rows_layout,
)
from esa_lightning.data.readers.common import (
    other_layout_hint,
)
from esa_lightning.data.readers.esa_adb_grid import (
    MAX_GRID_ROWS,
    build_arrays,
    to_ns,
)
from esa_lightning.data.readers.esa_adb_tables import (
    member_file,
    read_channel_table,
    read_events,
    read_telecommand_table,
)
from esa_lightning.data.readers.grid_marks import on_grid
from esa_lightning.data.readers.grid_period import period_ns
from esa_lightning.data.readers.threads import resolve_jobs
from esa_lightning.data.selection import (
    ChannelSpec,
    select_channels,
    split_points_by_time,
)
from esa_lightning.errors import ESAInputError, user_stacklevel

TABLES = ("channels.csv", "telecommands.csv", "labels.csv", "anomaly_types.csv")
CACHE_VERSION = "esa_adb-10"  # 2: the readers' shared cache format; 3: unrepresentable rows;
# 4: unrepresentable cells (row and channel); 5: the rows each channel sent a sample on;
# 6: a NaN sample is no sample (held over, as a NaN cell of a frame); 7: the info holds the
# range the channels' samples span (data_k_lo, data_k_hi); 8: a label off the grid's time span
# marks no edge row; 9: a channel's and a telecommand's file column checked against its name
# (a file cached before the check is read again, and refused if it is named otherwise);
# 10: a label ending less than a period before the first grid time marks the first row


# --------------------------------------------------------------------------- public entry point
def read_esa_mission(
    root: str | os.PathLike,
    *,
    channels: ChannelSpec = "all",
    period: str | pd.Timedelta = "30s",
    counters: Sequence[str] | None = (),
    telecommand_priority: int = 3,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    split_date: str | pd.Timestamp | None = None,
    val_days: float | None = None,
    val_fraction: float | None = None,
    lightweight: Sequence[str] | None = (),
    cache_dir: str | os.PathLike | UserCacheDir | None = USER_CACHE_DIR,
    use_cache: bool = True,
    n_jobs: int | None = None,
    max_rows: int = MAX_GRID_ROWS,
) -> Mission:
    """Read the ESA-ADB mission folder ``root`` into a ``Mission`` on a ``period`` grid.

    ``n_jobs`` threads read and resample channels (``None`` or -1: every usable core); the
    result does not depend on it. A channel whose time span needs more than ``max_rows`` grid
    rows (about 47 years at 30 s by default: a corrupt far-future or far-past timestamp), or
    that stretches the grid of all channels beyond it, is refused with an error naming it,
    instead of allocating an enormous grid; so is a ``start`` .. ``end`` range spanning more.

    ``counters`` / ``lightweight`` / ``split_date`` None: what the folder's ``mission.json``
    records (the synthetic generator and ``data.convert`` write one; none without it).
    Validation is the last ``val_days`` of the training range, or the
    last ``val_fraction`` of it where ``val_days`` is not given or does not fit
    (``selection.split_points_by_time``).
    """
    root = Path(root)
    jobs = resolve_jobs(n_jobs)
    if isinstance(telecommand_priority, bool) or not isinstance(telecommand_priority, int | float):
        raise ESAInputError("must be a number (the lowest telecommand priority read)",
                            column="telecommand_priority", value=telecommand_priority)
    other_layout = "" if (root / "channels").is_dir() else other_layout_hint(root, reads="esa")
    if not root.is_dir() or other_layout:
        found = "not an ESA mission folder" if root.exists() else "mission folder not found"
        raise ESAInputError(found + other_layout, path=root)
    p_ns = period_ns(period)
    # the tables read before the sources are hashed: an entry built after one changed is dropped
    read_before = digests.change_stamps([root / name for name in TABLES])
    record = read_mission_record(root)
    counters_from = "data.counters" if counters is not None else root / "mission.json"
    lightweight_given = lightweight is not None
    if counters is None or lightweight is None:
        counters = record.get("counters", []) if counters is None else counters
        lightweight = record.get("lightweight", []) if lightweight is None else lightweight
    if split_date is None:
        split_date = record.get("split_date")
    table = read_channel_table(root / "channels.csv")
    stale = [str(c) for c in lightweight if str(c) not in set(table["Channel"])]
    if channels == "lightweight" and stale:
        lightweight_from = "data.lightweight" if lightweight_given else root / "mission.json"
        raise ESAInputError(
            f"unknown lightweight channel(s) {stale} (from {lightweight_from}): "
            f"not in {root / 'channels.csv'}",
            path=root,
            column="lightweight",
        )
    chosen = select_channels(
        table, channels, lightweight=list(lightweight), source=str(root / "channels.csv")
    )
    names = list(chosen["Channel"])
    counters = [str(c) for c in counters]
    unknown = [c for c in counters if c not in set(table["Channel"])]
    if unknown:
        raise ESAInputError(
            f"unknown counter channel(s) {unknown} (from {counters_from}): "
            f"not in {root / 'channels.csv'}",
            path=root,
            column="counters",
        )
    channel_files = [member_file(root, "channels", n) for n in names]
    tc_names, tc_files, all_tc = read_telecommand_table(root, telecommand_priority)
    events = read_events(root, set(table["Channel"]) | set(all_tc))
    events = events[events["Channel"].isin(set(names))].reset_index(drop=True)

    sources = [root / "channels.csv", *channel_files, *tc_files]
    sources += [p for p in (root / "telecommands.csv", root / "labels.csv") if p.is_file()]
    sources += [p for p in (root / "anomaly_types.csv",) if p.is_file()]
    options = {
        "channels": names,
        "period_ns": p_ns,
        "counters": sorted(set(counters) & set(names)),
        "telecommands": tc_names,
        "start": None if start is None else str(to_ns(start, "start")),
        "end": None if end is None else str(to_ns(end, "end")),
    }
    memo = cache_folder(cache_dir) if use_cache else None
    key = digests.cache_key(CACHE_VERSION, digests.source_identity(sources, memo), options)

    def build(store: ArrayStore) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        # the grid is built in RAM (it grows while channels are read); the store saves it
        return build_arrays(
            names,
            channel_files,
            tc_files,
            events,
            p_ns,
            set(options["counters"]),
            start,
            end,
            n_jobs=jobs,
            max_rows=int(max_rows),
            tc_names=tc_names,
        )

    folder = cache_entry(cache_dir, key)
    layout = rows_layout(len(names), len(tc_names), finite_rows=None,
                         labels=("uint8", ("n", len(names))),
                         sent=("uint8", ("n", (len(names) + 7) // 8)))  # bit-packed
    arrays, info = read_through_cache(
        folder, use_cache, build, paths=[root, *sources], read_before=read_before,
        layout=Layout(layout, rows=("n_rows",), ints=("k_lo", "data_k_lo", "data_k_hi")),
    )
    k_lo, n = int(info["k_lo"]), int(info["n_rows"])
    if n > max_rows:  # a read cached by a call with a larger max_rows (the key omits it)
        raise ESAInputError(
            f"the chosen channels span {n} grid rows: more than max_rows={max_rows}; select a "
            "time range with data.start / data.end",
            path=root,
        )
    timestamps = ((np.arange(n, dtype=np.int64) + k_lo) * p_ns).view("datetime64[ns]")
    if n:
        keep = on_grid(events, k_lo, n, p_ns)  # the events label_mask marked rows for
        # say so where a label is off the data (a wrong zone, year), not where start / end cut
        # it out on purpose: the range the channel files span, the grid without start / end
        own_lo, own_hi = (np.datetime64(int(info[k]) * p_ns, "ns") for k in ("data_k_lo",
                                                                             "data_k_hi"))
        off = list(dict.fromkeys(events.loc[~keep & ~_overlaps(events, own_lo, own_hi), "ID"]))
        if off:
            warnings.warn(
                f"{root / 'labels.csv'}: {len(off)} event(s) lie wholly outside the grid the "
                f"channel files span, {own_lo} .. {own_hi}, and are not read: "
                f"ID(s) {off[:5]}{' ...' * (len(off) > 5)}",
                stacklevel=user_stacklevel(),
            )
        events = onto_first_row(events.loc[keep].reset_index(drop=True), timestamps[0])
    val_start, test_start = split_points_by_time(
        timestamps, split_date, val_days, val_fraction
    )
    labeled = (root / "labels.csv").is_file()
    return Mission(
        name=root.name,
        values=arrays["values"],
        timestamps=timestamps,
        channels=chosen,
        labels=arrays["labels"],
        events=events,
        telecommands=arrays["telecommands"],
        telecommand_names=tc_names,
        unrepresentable_cells=arrays["unrepresentable_cells"],
        sent=arrays["sent"],
        period=pd.Timedelta(p_ns, unit="ns"),
        test_start=test_start,
        val_start=val_start,
        meta={
            "source": "esa",
            "root": str(root),
            "cache_key": key,
            "counters": options["counters"],
            "lightweight": list(lightweight),
            # without labels.csv every row's label is unknown: "no labels", not "no event"
            "train_labeled": labeled,
            "test_labeled": labeled,
            PREPROCESSING_KEY: Preprocessing(
                index="time",
                resample="hold",
                period=str(pd.Timedelta(p_ns, unit="ns")),
                counters=options["counters"],
                telecommands="pulses",
            ).to_dict(),
        },
    )


def _overlaps(events: pd.DataFrame, lo: np.datetime64, hi: np.datetime64) -> np.ndarray:
    """Which events overlap the time span ``lo`` .. ``hi`` (both ends included)."""
    return (events["EndTime"].to_numpy() >= lo) & (events["StartTime"].to_numpy() <= hi)


def read_mission_record(root: Path) -> dict[str, Any]:
    """The folder's ``mission.json`` (counters, split date, lightweight subset, ...), or {}."""
    path = Path(root) / "mission.json"
    if not path.is_file():
        return {}
    try:
        record = io.read_settings_json(path)
    except ESAInputError:
        raise  # over the size bound: refused naming it
    except (ValueError, RecursionError) as exc:  # bad JSON or nested beyond the parser's depth
        raise ESAInputError(f"not valid JSON: {exc}", path=path) from None
    if not isinstance(record, dict):
        raise ESAInputError("expected a JSON object", path=path)
    for key in ("counters", "lightweight"):  # null: none listed, as a missing key
        names = record.get(key)
        if names is None:
            record.pop(key, None)
        elif not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ESAInputError('expected a list of channel names, e.g. ["channel_1"]',
                                path=path, column=key, value=names)
    split = record.get("split_date")
    if split is not None and not _is_date(split):  # named as the file's, not as the option's
        raise ESAInputError("expected a date such as 2000-01-03T13:19:00",
                            path=path, column="split_date", value=split)
    return record


def _is_date(text: Any) -> bool:
    """Whether ``text`` is a string that reads as a date/time in the nanosecond range."""
    try:
        return isinstance(text, str) and isinstance(to_ns(text, "split_date"), int)
    except ESAInputError:
        return False
