"""The one type every reader returns: a mission's telemetry on a fixed grid, with its labels.

Conventions
-----------
- ``values``: float32 [T, C], one column per channel (``channel_names``), on one grid.
- ``telecommands``: float32 [T, K] 0/1 pulses (or counts), one column per ``telecommand_names``.
- ``timestamps``: datetime64[ns] [T] for time-indexed data (ESA folder, ESA CSV, synthetic), or
  int64 [T] sample ids (Kaggle ``id``, NASA sample numbers).
- ``labels``: uint8 [T, C] per channel: 0 nominal, 1 anomaly, 2 rare event, 3 communication gap,
  4 invalid segment. ``row_labels`` aggregates them over channels (the Kaggle ``is_anomaly``
  target is ``row_labels in {1, 2}``).
- ``events``: one row per (event ID, channel, segment): ``ID, Channel, StartTime, EndTime,
  Category`` plus the other ``anomaly_types.csv`` columns when known. Times use the unit of
  ``timestamps``.
- ``unrepresentable``: uint8 [T] or None: 1 on rows where the source held a reading float32
  cannot represent (inf, or beyond float32's range). The readers replace it in ``values`` like a
  missing reading (forward fill), and scoring forces an alarm on these rows
  (``runtime.chunks.force_unrepresentable_alarms``): an unrepresentable reading is never hidden.
- ``unrepresentable_cells``: int64 [N, 2] or None: the (row, channel column) of each such
  reading, in row order; the channels an alarm forced there names. The readers give these
  cells, and ``unrepresentable`` is then made from them when not given.
- ``sent``: uint8 [T, ceil(C / 8)] or None: which channel sent a raw sample on each row, one
  bit per value column (``sent_rows``). The ESA raw layout samples its channels apart, and the
  grid holds each channel's last value between its samples; a NaN sample is no sample (the
  value before it is held over it, as over a NaN cell of a frame: ``data.frame``). The readers
  of one-grid layouts (Kaggle, ESA CSV, NASA) record none.
- ``test_start`` / ``val_start``: row indices; train = [0, val_start), validation =
  [val_start, test_start), test = [test_start, T). Validation is always the end of the training
  range in time, never a random split. A range (any ``slice``) keeps the events whose span
  meets the time after the row before it up to its last row time (``range_events``: an event
  wholly between two rows is the later row's range's, listed on that range's first row time),
  and a range ending at a split point unmarks its last row of the events that start after it
  (``edge_labels``); other slices keep the marks their rows hold in the range.
- NASA telemanom data is a set of independent series: ``series`` maps each channel to its own
  single-channel ``Mission`` and ``values`` is then a dict channel -> float32 array.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

LABEL_CODES = {0: "Nominal", 1: "Anomaly", 2: "Rare Event", 3: "Communication Gap", 4: "Invalid"}
CATEGORY_TO_CODE = {v: k for k, v in LABEL_CODES.items()}
CATEGORY_TO_CODE["Invalid Segment"] = 4
CHANNEL_TABLE_COLUMNS = ["Channel", "Subsystem", "Group", "Target", "Categorical"]
EVENT_COLUMNS = ["ID", "Channel", "StartTime", "EndTime", "Category"]
ROW_BLOCK = 262_144  # rows per block when reducing [T, C] label arrays


def empty_events(time_dtype: str = "datetime64[ns]") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ID": pd.Series([], dtype=object),
            "Channel": pd.Series([], dtype=object),
            "StartTime": pd.Series([], dtype=time_dtype),
            "EndTime": pd.Series([], dtype=time_dtype),
            "Category": pd.Series([], dtype=object),
        }
    )


def events_overlapping(events: pd.DataFrame, timestamps: np.ndarray | None) -> pd.DataFrame:
    """The rows of ``events`` whose span meets ``timestamps``' first..last time (all of them
    without timestamps, none for no rows)."""
    if timestamps is None or not len(events):
        return events
    if not len(timestamps):
        return events.iloc[:0].reset_index(drop=True)
    lo, hi = timestamps[0], timestamps[-1]
    keep = (events["EndTime"].to_numpy() >= lo) & (events["StartTime"].to_numpy() <= hi)
    return events.loc[keep].reset_index(drop=True)


def range_events(
    events: pd.DataFrame, timestamps: np.ndarray | None, start: int, stop: int
) -> pd.DataFrame:
    """The events ``Mission.slice(start, stop)`` keeps, of a grid of ``timestamps``: those
    whose span meets the time after the row before ``start`` (from the first row's time at
    ``start`` 0) up to the last row's time, ends included; all of them without timestamps,
    none for no rows. Each row owns the time since the row before it, as a sample holds from
    the first grid row at or after it: an event lying wholly between two rows, its samples
    first seen on the later row, is the later row's range's, and is listed with its span moved
    onto that range's first row time (the metrics count only events meeting the rows' time
    span). So an event is counted in exactly one of two adjacent ranges (train / validation /
    test, folds, chunks) unless its span reaches rows of both."""
    if timestamps is None or not len(events):
        return events
    if stop <= start:
        return events.iloc[:0].reset_index(drop=True)
    ts = np.asarray(timestamps)
    lo, hi = ts[start], ts[stop - 1]
    begins, ends = events["StartTime"].to_numpy(), events["EndTime"].to_numpy()
    after = ends > ts[start - 1] if start > 0 else ends >= lo
    # those wholly before the first row (after the one before it) listed on its time
    return onto_first_row(events.loc[after & (begins <= hi)].reset_index(drop=True), lo)


def onto_first_row(events: pd.DataFrame, first: Any) -> pd.DataFrame:
    """``events`` with those ending before the first row's time ``first`` (the first row's,
    as it owns the time since the row before it) moved onto it, start and end: the metrics
    count only events meeting the rows' time span. A copy where one moves. The one rule of
    ``range_events`` and of the ESA reader's first row (``readers.grid_marks.on_grid``)."""
    early = events["EndTime"].to_numpy() < first
    if not early.any():
        return events
    events = events.copy()
    events.loc[early, ["StartTime", "EndTime"]] = first
    return events


#: ``Mission.meta`` key of the event table the labels were marked from, where ``events`` is
#: not it (``metrics.label_channels=target`` drops segments from ``events``, not labels)
LABEL_EVENTS = "label_events"

#: ``Mission.meta`` key of the label segments ``metrics.label_channels=target`` set aside (those
#: of the events without a target-channel segment; ``data.label_channels``): a slice keeps those
#: of its range by ``range_events``, as it does its events
SET_ASIDE = "label_channels_set_aside"


def mark_rows(
    codes: np.ndarray, cols: np.ndarray, first: np.ndarray, last: np.ndarray, shape: tuple
) -> np.ndarray:
    """uint8 ``shape`` [rows, C]: each event (label code, column) marks the rows ``first`` ..
    ``last`` (both included, clipped to the rows; its start floored, its end ceiled onto the
    grid: ESA-ADB's rule), and where events of one column overlap the lowest (most important)
    code wins. The one marking rule of ``readers.grid_marks.label_mask`` and ``edge_labels``."""
    mask = np.zeros(shape, dtype=np.uint8)
    for i in np.argsort(-np.asarray(codes), kind="stable"):  # lower codes overwrite
        a, b = max(int(first[i]), 0), min(int(last[i]), shape[0] - 1)
        if a <= b:
            mask[a : b + 1, int(cols[i])] = codes[i]
    return mask


def edge_labels(mission: Mission, start: int, stop: int) -> np.ndarray:
    """``mission.labels[start:stop]`` (shared, or a copy where a row changes), its last row
    marked only by the events that start at or before that row's time where the slice ends at
    a split point (``val_start`` or ``test_start``, with rows after it): the events starting
    later (ceiled onto the next range's first row, floored onto this row) are the next range's
    (``range_events``), as a named range keeps only its own events. Any other slice (a fold, a
    prediction chunk, a window) keeps the marks its rows hold in the range it lies in: only a
    split point moves an event to another range. An event on row times (the readers that
    build events from row codes) never starts between two rows: those slices share the labels
    as they are."""
    part = mission.labels[start:stop]
    n = len(mission.values)
    events = mission.meta.get(LABEL_EVENTS, mission.events)
    if (mission.timestamps is None or not start < stop < n or not len(events)
            or not part.shape[1] or stop not in (mission.val_start, mission.test_start)):
        return part
    ts = np.asarray(mission.timestamps)
    row = stop - 1
    begins = events["StartTime"].to_numpy().astype(ts.dtype)
    ends = events["EndTime"].to_numpy().astype(ts.dtype)
    first = np.searchsorted(ts, begins, side="right") - 1  # start floored
    last = np.where(ends < ts[0], -1, np.searchsorted(ts, ends, side="left"))  # end ceiled
    col = {c: i for i, c in enumerate(mission.channel_names)}
    cols = events["Channel"].map(col).to_numpy(dtype=float, na_value=np.nan)
    codes = events["Category"].map(CATEGORY_TO_CODE).to_numpy(dtype=float, na_value=np.nan)
    marks = (first <= row) & (last >= row) & ~np.isnan(cols) & ~np.isnan(codes)
    later = begins > ts[row]  # the next range's
    touched = np.unique(cols[marks & later]).astype(int)
    if not len(touched):
        return part
    own = marks & ~later
    kept = mark_rows(codes[own].astype(np.uint8), cols[own], first[own] - row, last[own] - row,
                     (1, part.shape[1]))[0, touched]
    if np.array_equal(np.asarray(part[-1, touched]), kept):
        return part
    out = np.array(part)  # the mission's rows keep theirs
    out[-1, touched] = kept
    return out


#: rows of labels ``nominal_rows`` reads at a time
NOMINAL_PIECE_ROWS = 1 << 20


def nominal_rows(mission: Mission) -> np.ndarray:
    """bool [T]: rows where no channel carries any label (anomaly, rare event, gap, invalid)
    and every reading is representable (``unrepresentable``: an anomaly by itself, its value a
    repair, its score forced: never a row to fit on or measure nominal scores against). The
    labels are read ``NOMINAL_PIECE_ROWS`` rows at a time (a [T, C] mask of a long mission's
    labels was GBs)."""
    if mission.labels is None or mission.labels.shape[1] == 0:
        nominal = np.ones(len(mission.values), dtype=bool)
    else:
        nominal = np.empty(len(mission.labels), dtype=bool)
        for lo in range(0, len(nominal), NOMINAL_PIECE_ROWS):
            piece = np.asarray(mission.labels[lo:lo + NOMINAL_PIECE_ROWS])
            nominal[lo:lo + NOMINAL_PIECE_ROWS] = ~(piece != 0).any(axis=1)
    if mission.unrepresentable is not None:
        nominal &= np.asarray(mission.unrepresentable) == 0
    return nominal


def cells_in(cells: np.ndarray | None, start: int, stop: int) -> np.ndarray | None:
    """The (row, column) ``cells`` [N, 2] (in row order) of rows [start, stop), their rows
    counted from ``start``."""
    if cells is None:
        return None
    cells = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
    lo, hi = np.searchsorted(cells[:, 0], [start, stop])
    return cells[lo:hi] - np.array([start, 0], dtype=np.int64)


def forced_alarm(alarm: np.ndarray, unrepresentable: np.ndarray | None) -> np.ndarray:
    """uint8 [T]: row ``alarm`` with every row of ``unrepresentable`` (``Mission.unrepresentable``
    of the same rows) alarmed, as scoring forces it (``runtime.chunks``); what a fit reading
    a model's alarms must add to score the alarms the evaluation scores."""
    out = np.array(alarm, dtype=np.uint8)  # a copy
    if unrepresentable is not None:
        out[np.asarray(unrepresentable, dtype=bool)] = 1
    return out


def one_timeline(parts: list[Mission]) -> tuple[np.ndarray, pd.DataFrame | None, list[int]]:
    """Independent series' ranges laid end to end on one shifted timeline (a one-sample gap
    between them), so event counts add up over series and no prediction can match another
    series' event: (int64 timestamps, their events shifted alike or None without any, the
    indices of the non-empty ``parts`` the timestamps come from, in order)."""
    stamps, events, kept, offset = [], [], [], 0
    for i, part in enumerate(parts):
        ts = np.asarray(part.timestamps, dtype=np.int64)
        if not len(ts):
            continue
        shift = offset - int(ts[0])
        stamps.append(ts + shift)
        kept.append(i)
        ev = part.events.copy()
        if len(ev):
            ev["StartTime"] = ev["StartTime"].astype(np.int64) + shift
            ev["EndTime"] = ev["EndTime"].astype(np.int64) + shift
            events.append(ev)
        offset = int(stamps[-1][-1]) + 2
    joined = np.concatenate(stamps) if stamps else np.zeros(0, dtype=np.int64)
    return joined, pd.concat(events, ignore_index=True) if events else None, kept


def series_spans(stamps: np.ndarray, lengths: list[int]) -> list[tuple[int, int]]:
    """(first, last) timestamp of each series on ``one_timeline``'s ``stamps``, from the row
    counts of its non-empty parts in order: the ``segments`` the metrics keep series apart by."""
    bounds = np.cumsum([0, *lengths])
    return [(int(stamps[a]), int(stamps[b - 1])) for a, b in pairwise(bounds)]


def default_channel_table(names: list[str]) -> pd.DataFrame:
    """A channel table for sources that carry none: every channel its own group, all targets."""
    return pd.DataFrame(
        {
            "Channel": list(names),
            "Subsystem": ["subsystem_0"] * len(names),
            "Group": [f"group_{i}" for i in range(len(names))],
            "Target": [True] * len(names),
            "Categorical": [False] * len(names),
        }
    )


@dataclass
class Mission:
    name: str
    values: np.ndarray | dict[str, np.ndarray]
    timestamps: np.ndarray | None
    channels: pd.DataFrame
    labels: np.ndarray | None
    events: pd.DataFrame
    telecommands: np.ndarray | None = None
    telecommand_names: list[str] = field(default_factory=list)
    period: pd.Timedelta | None = None
    test_start: int | None = None
    val_start: int | None = None
    series: dict[str, Mission] | None = None
    meta: dict = field(default_factory=dict)
    unrepresentable: np.ndarray | None = None
    unrepresentable_cells: np.ndarray | None = None
    sent: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.series is not None:
            return
        n = len(self.values)
        if self.unrepresentable is None and self.unrepresentable_cells is not None:
            self.unrepresentable = np.zeros(n, dtype=np.uint8)
            self.unrepresentable[np.asarray(self.unrepresentable_cells)[:, 0]] = 1
        if self.test_start is None:
            self.test_start = n
        if self.val_start is None:
            self.val_start = self.test_start
        if not 0 <= self.val_start <= self.test_start <= n:
            raise ValueError(
                f"mission {self.name!r}: need 0 <= val_start <= test_start <= T, got "
                f"{self.val_start}, {self.test_start}, {n}"
            )
        if self.telecommands is None:
            self.telecommands = np.zeros((n, 0), dtype=np.float32)

    # ------------------------------------------------------------------ shape
    @property
    def is_multiseries(self) -> bool:
        return self.series is not None

    @property
    def has_channel_labels(self) -> bool:
        """Whether labels name channels (what channel-aware metrics need): not for independent
        series, nor for files that broadcast one row label to every channel (Kaggle)."""
        return self.series is None and not self.meta.get("labels_broadcast")

    def grids(self) -> dict[str | None, Mission]:
        """The single-grid missions this one is made of: each independent series by name (NASA
        data), or this mission itself under ``None``. Code that works grid by grid loops over
        this and never asks which kind of mission it got."""
        return dict(self.series) if self.series is not None else {None: self}

    @property
    def channel_names(self) -> list[str]:
        return list(self.channels["Channel"])

    @property
    def target_channels(self) -> list[str]:
        return list(self.channels.loc[self.channels["Target"].astype(bool), "Channel"])

    @property
    def scored_channels(self) -> pd.DataFrame:
        """The channel table rows whose labels and per-channel alarms the channel-aware scores
        count: every channel, or the target channels under ``metrics.label_channels=target``
        (``data.label_channels.with_label_channels``)."""
        if self.meta.get("label_channels") != "target":
            return self.channels
        return self.channels[self.channels["Target"].astype(bool)].reset_index(drop=True)

    @property
    def n_rows(self) -> int:
        if self.series is not None:
            return sum(m.n_rows for m in self.series.values())
        return len(self.values)

    @property
    def is_time_indexed(self) -> bool:
        return self.timestamps is not None and np.issubdtype(
            np.asarray(self.timestamps).dtype, np.datetime64
        )

    @property
    def row_labels(self) -> np.ndarray:
        """uint8 [T]: one code per row; anomaly (1) wins over rare event, gap and invalid."""
        rows = len(self.values) if self.labels is None else len(self.labels)
        out = np.zeros(rows, dtype=np.uint8)
        for code in (4, 3, 2, 1):  # priority: anomaly > rare event > gap > invalid
            out[self.rows_labeled(code)] = code
        return out

    def rows_labeled(self, code: int) -> np.ndarray:
        """bool [T]: the rows where any channel holds label ``code``."""
        if self.labels is None or self.labels.shape[1] == 0:
            return np.zeros(len(self.values) if self.labels is None else len(self.labels), bool)
        out = np.zeros(len(self.labels), dtype=bool)
        lab = self.labels
        if lab.strides[1] == 0:  # one label broadcast to every channel (Kaggle): its column
            lab = lab[:, :1]
        for lo in range(0, len(lab), ROW_BLOCK):  # [block, C] temporaries, not [T, C]
            out[lo : lo + ROW_BLOCK] = (lab[lo : lo + ROW_BLOCK] == code).any(axis=1)
        return out

    def sent_rows(self, column: int) -> np.ndarray | None:
        """bool [T]: the rows where value column ``column`` got a raw sample (its own reading,
        not one the grid holds from an earlier row); None where the reader records no samples."""
        if self.sent is None:
            return None
        byte = np.asarray(self.sent[:, column // 8])
        return (byte >> (7 - column % 8)) & 1 == 1

    @property
    def is_anomaly(self) -> np.ndarray:
        """uint8 [T]: the Kaggle target, 1 where any channel holds an anomaly or a rare event."""
        rl = self.row_labels
        return ((rl == 1) | (rl == 2)).astype(np.uint8)

    # ----------------------------------------------------------------- splits
    def slice(self, start: int, stop: int) -> Mission:
        """Rows [start, stop) as a new Mission sharing memory; split points are clipped. So are
        start and stop (to 0 .. rows), and stop <= start is an empty range at start, as in
        ``values[start:stop]``. It keeps the events ``range_events`` gives it (an event wholly
        between two rows is the later row's slice's), so too of the events set aside
        (``meta[SET_ASIDE]``), and its labels are the mission's rows
        except where it ends at a split point (``edge_labels``: a copy of its labels where an
        event of the next range marked its last row)."""
        if self.series is not None:
            raise TypeError("slice() applies to single-grid missions; use mission.series")
        n = len(self.values)
        start = min(max(0, start), n)
        stop = max(start, min(n, stop))  # stop < start: empty, as values[start:stop]

        def clip(i: int) -> int:
            return min(max(i - start, 0), stop - start)

        ts = None if self.timestamps is None else self.timestamps[start:stop]
        events = range_events(self.events, self.timestamps, start, stop)
        meta = {**self.meta, "row_offset": self.meta.get("row_offset", 0) + start}
        if meta.get(SET_ASIDE) is not None:  # the range's, by the events' rule
            meta[SET_ASIDE] = range_events(meta[SET_ASIDE], self.timestamps, start, stop)
        return replace(
            self,
            values=self.values[start:stop],
            timestamps=ts,
            labels=None if self.labels is None else edge_labels(self, start, stop),
            telecommands=self.telecommands[start:stop],
            unrepresentable=(
                None if self.unrepresentable is None else self.unrepresentable[start:stop]
            ),
            unrepresentable_cells=cells_in(self.unrepresentable_cells, start, stop),
            sent=None if self.sent is None else self.sent[start:stop],
            events=events,
            test_start=clip(self.test_start),
            val_start=clip(self.val_start),
            meta=meta,
        )

    def _each_series(self, part: str) -> Mission:
        """The same range of every independent series (NASA data), as a multi-series Mission."""
        series = {name: getattr(m, part)() for name, m in self.series.items()}
        events = [m.events for m in series.values() if len(m.events)]
        return replace(
            self,
            values={name: m.values for name, m in series.items()},
            series=series,
            events=pd.concat(events, ignore_index=True) if events else self.events.iloc[:0],
        )

    def train(self) -> Mission:
        if self.series is not None:
            return self._each_series("train")
        return self.slice(0, self.val_start)

    def val(self) -> Mission:
        if self.series is not None:
            return self._each_series("val")
        return self.slice(self.val_start, self.test_start)

    def fit_range(self) -> Mission:
        """Training plus validation: everything before the test range."""
        if self.series is not None:
            return self._each_series("fit_range")
        return self.slice(0, self.test_start)

    def test(self) -> Mission:
        if self.series is not None:
            return self._each_series("test")
        return self.slice(self.test_start, len(self.values))

    def summary(self) -> str:
        if self.series is not None:
            return (
                f"{self.name}: {len(self.series)} independent series, "
                f"{self.n_rows} rows in all, {len(self.events)} labeled segments"
            )
        t = len(self.values)
        return (
            f"{self.name}: {t} rows x {len(self.channel_names)} channels"
            f" + {len(self.telecommand_names)} telecommands; train {self.val_start},"
            f" val {self.test_start - self.val_start}, test {t - self.test_start};"
            f" {self.events['ID'].nunique() if len(self.events) else 0} events"
        )


def mission_record(mission: Mission) -> dict[str, Any]:
    """The data a checkpoint was trained on (``runtime.checkpoints.check_same_data``): the
    mission's name and channels, its grid's ``period`` and, per series (``""`` for a single
    grid), its ``split``: the training and validation rows (``data.val_days``,
    ``data.split_date`` and ``data.period`` set them); and ``label_channels``, the labels its
    reports and F0.5 threshold fits score (``metrics.label_channels``)."""
    record: dict[str, Any] = {
        "mission": str(mission.name), "channels": [str(c) for c in mission.channel_names],
        "label_channels": str((getattr(mission, "meta", None) or {}).get("label_channels", "all")),
    }
    if getattr(mission, "period", None) is not None:
        record["period"] = str(mission.period)
    grids = getattr(mission, "series", None) or {"": mission}
    split = {}
    for name, grid in grids.items():
        val, test = getattr(grid, "val_start", None), getattr(grid, "test_start", None)
        if val is not None and test is not None:
            split[str(name)] = [int(val), int(test) - int(val)]
    if split:
        record["split"] = split
    return record
