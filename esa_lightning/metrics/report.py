"""One call for every metric of a run: what train / predict / evaluate log and write.

Keys are the user-facing metric names (docs/metrics.md): ESA-ADB metrics for {Anomaly, Rare
Event}, again for Anomaly only with the ``_anomaly`` suffix, plus ``EWraw_*``, ``AUC_PR`` and
``kaggle_F_0.50``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from esa_lightning.errors import ESAInputError, quoted
from esa_lightning.metrics.adtqc import adtqc
from esa_lightning.metrics.channel_aware import channel_aware_scores
from esa_lightning.metrics.event_wise import esa_scores, telemanom_scores
from esa_lightning.metrics.intervals import (
    Intervals,
    as_time,
    merge,
    refuse_long_cells,
    samples_to_intervals,
)
from esa_lightning.metrics.kaggle import auc_pr, kaggle_f05

SELECTIONS = {"": ["Anomaly", "Rare Event"], "_anomaly": ["Anomaly"]}
RANKING = [
    "EW_F_0.50",
    "subsystem_F_0.50",
    "channel_F_0.50",
    "alarming_precision",
    "ADTQC",
    "AFF_F_0.50",
]


def _check_time_kinds(events: pd.DataFrame, timestamps: np.ndarray) -> None:
    ts_is_time = np.issubdtype(np.asarray(timestamps).dtype, np.datetime64)
    if len(events) == 0:
        return
    ev_is_time = pd.api.types.is_datetime64_any_dtype(events["StartTime"].dtype) or (
        events["StartTime"].dtype == object
        and isinstance(events["StartTime"].iloc[0], (pd.Timestamp, str))
    )
    if ts_is_time != ev_is_time:
        raise ESAInputError(
            "event times and row timestamps differ in kind (datetimes vs sample ids)",
            column="StartTime",
        )


def _event_times(events: pd.DataFrame, categories: list[str]) -> tuple[Any, Any] | None:
    """(start, end) times of the events of ``categories``; None when there is none."""
    chosen = events[events["Category"].isin(categories)]
    if chosen.empty:
        return None
    start = as_time(chosen["StartTime"].reset_index(drop=True), what="StartTime")
    end = as_time(chosen["EndTime"].reset_index(drop=True), what="EndTime")
    return start, end


def row_labels(events: pd.DataFrame, times: np.ndarray, categories: list[str]) -> np.ndarray:
    """uint8 [T]: 1 where a row's time lies inside a segment of the given categories."""
    spans = _event_times(events, categories)
    if spans is None:
        return np.zeros(len(times), dtype=np.uint8)
    start, end = spans
    union = merge(start.astype(times.dtype), end.astype(times.dtype))
    k = np.searchsorted(union.start, times, side="right") - 1
    inside = (k >= 0) & (times <= union.end[np.maximum(k, 0)])
    return inside.astype(np.uint8)


def has_events_in(events: pd.DataFrame, categories: list[str], span: tuple[Any, Any]) -> bool:
    """Whether an event of ``categories`` overlaps ``span`` (first, last row time), ends
    included."""
    spans = _event_times(events, categories)
    if spans is None:
        return False
    (start, end), (first, last) = spans, span
    kind = np.asarray(first).dtype
    return bool(((start.astype(kind) <= last) & (end.astype(kind) >= first)).any())


def full_report(
    events: pd.DataFrame,
    timestamps: np.ndarray,
    alarm: np.ndarray,
    *,
    score: np.ndarray | None = None,
    channel_alarm: np.ndarray | None = None,
    channel_names: Sequence[str] | None = None,
    channels_table: pd.DataFrame | None = None,
    betas: float | Sequence[float] = 0.5,
    segments: Sequence[tuple[Any, Any]] | None = None,
) -> dict[str, float]:
    """Every metric over the evaluated rows, as one flat dict of floats. ``segments``: the
    (first, last) timestamps of independent series laid end to end (``one_timeline``): the
    affiliation zones and ADTQC's previous events stay inside each series.

    events: ``Mission.events`` (ID, Channel, StartTime, EndTime, Category, ...); only events
    overlapping the rows' time span count, clipped to it. timestamps: datetime64 or int ids of
    the evaluated rows; alarm: uint8 [T]; score: float [T] for AUC_PR; channel_alarm: uint8
    [T, C] with ``channel_names`` for the channel/subsystem-aware scores.
    """
    if "Category" not in events.columns:
        raise ESAInputError("events table lacks the Category column", column="Category")
    _check_time_kinds(events, np.asarray(timestamps))
    times = as_time(timestamps)
    alarm = np.asarray(alarm).ravel()
    if times.size == 0:
        raise ESAInputError("no rows to evaluate")
    if alarm.shape[0] != times.shape[0]:
        raise ESAInputError(f"{alarm.shape[0]} alarms for {times.shape[0]} timestamps")
    order = None
    if np.any(times[1:] < times[:-1]):
        order = np.argsort(times, kind="stable")
        times, alarm = times[order], alarm[order]
    full_range = (times[0], times[-1])
    pred = series_intervals(times, alarm, segments)

    channel_preds = None
    if channel_alarm is not None:
        ca = np.asarray(channel_alarm)
        if ca.ndim != 2 or ca.shape[0] != times.shape[0]:
            raise ESAInputError(f"channel_alarm must be [T, C] with T={times.shape[0]}")
        names = list(channel_names) if channel_names is not None else None
        if names is None or len(names) != ca.shape[1]:
            raise ESAInputError("channel_alarm needs one channel name per column")
        if order is not None:
            ca = ca[order]
        channel_preds = {n: series_intervals(times, ca[:, i], segments)
                         for i, n in enumerate(names)}

    out: dict[str, float] = {}
    for suffix, categories in SELECTIONS.items():
        if suffix and not has_events_in(events, categories, full_range):
            # a selection without an event in range has no keys, never 0.0 or NaN (interfaces:
            # metric names): e.g. the Anomaly-only keys of a range holding only rare events
            continue
        select = {"Category": categories}
        part = esa_scores(events, pred, betas=betas, select_labels=select, full_range=full_range,
                          segments=segments)
        if channel_preds is not None:
            part.update(
                channel_aware_scores(
                    events,
                    channel_preds,
                    channels_table,
                    betas=betas,
                    select_labels=select,
                    full_range=full_range,
                )
            )
        part.update(
            adtqc(events, pred, select_labels=select, full_range=full_range, segments=segments)
        )
        out.update({f"{k}{suffix}": float(v) for k, v in part.items()})

    main = {"Category": SELECTIONS[""]}
    raw = telemanom_scores(events, pred, betas=betas, select_labels=main, full_range=full_range)
    out.update({k: float(v) for k, v in raw.items()})
    labels = row_labels(events, times, SELECTIONS[""])
    if score is not None:
        s = np.asarray(score, dtype=np.float64).ravel()
        if s.shape[0] != times.shape[0]:
            raise ESAInputError(f"{s.shape[0]} scores for {times.shape[0]} timestamps")
        out["AUC_PR"] = auc_pr(labels, s if order is None else s[order])
    out["kaggle_F_0.50"] = float(kaggle_f05(labels, alarm != 0))
    return out


def series_intervals(times: np.ndarray, alarm: np.ndarray, segments: Any) -> Any:
    """The runs of 1 of sorted rows as intervals; with ``segments`` (independent series laid
    end to end) a run never spans two series: it ends at its series' last row."""
    if segments is None:
        return samples_to_intervals(times, alarm, assume_sorted=True)
    pieces = []
    for first, last in segments:
        inside = (times >= first) & (times <= last)
        pieces.append(samples_to_intervals(times[inside], alarm[inside], assume_sorted=True))
    return Intervals(np.concatenate([p.start for p in pieces]),
                     np.concatenate([p.end for p in pieces]))


def ranking_table(results: dict[str, dict]) -> str:
    """Algorithms ranked as ESA-ADB ranks them (EW F0.5, then subsystem, channel F0.5,
    alarming precision, ADTQC, AFF F0.5), one line each; missing metrics rank last."""

    def key(item: tuple[str, dict]) -> tuple:
        vals = []
        for k in RANKING:
            v = item[1].get(k)
            vals.append(-np.inf if v is None or not np.isfinite(v) else float(v))
        return tuple(-v for v in vals)

    ranked = sorted(results.items(), key=key)
    width = max([len("algorithm"), *[len(n) for n in results]])
    header = f"{'rank':>4}  {'algorithm':<{width}}  " + "  ".join(f"{k:>18}" for k in RANKING)
    lines = [header, "-" * len(header)]
    for i, (name, res) in enumerate(ranked, 1):
        cells = []
        for k in RANKING:
            v = res.get(k)
            cells.append(f"{'-':>18}" if v is None else f"{float(v):>18.4f}")
        lines.append(f"{i:>4}  {name:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


#: what a file whose rows are not the mission's most often needs (evaluate.py reads the mission
#: anew, with its own data options); no command named: metrics imports nothing of the package,
#: and the predictions may come from the installed esa-predict, a clone's predict.py or Python
SAME_DATA = (
    "; read the mission with the data settings the predictions were made with "
    "(data=, data.*)"
)


def require_full_coverage(
    rows: np.ndarray, mission: Any, column: str, path: str | Path | None = None
) -> None:
    """Refuse predictions that leave rows of their range unscored: the range runs from the
    earlier of their first row and the test range's start to the mission's last row (a
    submission of the test range, or of the whole mission), or is the validation range when
    they start at its first row and end before the test range (``predict.py range=val``).
    Metrics of a partial file would count its missing rows neither as alarms nor as misses.
    ``path``: the predictions file, named in the refusal."""
    n = len(mission.timestamps)
    test_start = n if mission.test_start is None else int(mission.test_start)
    val_start = getattr(mission, "val_start", None)
    validation = (
        len(rows) > 0 and val_start is not None and int(rows.min()) == int(val_start)
        and int(rows.max()) < test_start
    )
    first = min(int(rows.min()), test_start) if len(rows) else test_start
    end = test_start if validation else n
    covered = np.zeros(end - first, dtype=bool)
    inside = rows[(rows >= first) & (rows < end)]
    covered[inside - first] = True
    n_missing = int((~covered).sum())
    if n_missing:
        example = np.asarray(mission.timestamps)[first + int(np.argmin(covered))]
        if column == "id" and mission.is_time_indexed:
            example = first + int(np.argmin(covered))
        what = (
            "the validation range" if validation
            else "the test range" if first == test_start
            else "the mission from the predictions' first row"
        )
        raise ESAInputError(
            f"the predictions cover {len(rows)} of the {end - first} rows of {what} to its "
            f"end: {n_missing} rows are missing (first missing {column} {example}){SAME_DATA}",
            path=path,
            column=column,
        )


@dataclass
class AlignedPredictions:
    """A predictions file's rows in the mission's order: what its metrics are computed on."""

    rows: np.ndarray  # the predicted rows' positions in the mission, increasing
    timestamps: np.ndarray  # the mission's timestamps (or ids) of those rows
    alarm: np.ndarray  # uint8 0/1
    score: np.ndarray | None = None  # float64, from a ``score`` column
    channel_alarm: np.ndarray | None = None  # uint8 [rows, channels], from per-channel columns
    channel_names: list[str] | None = None


def align_prediction_frame(
    pred: pd.DataFrame, mission: Any, path: str | Path | None = None
) -> AlignedPredictions:
    """Check a predictions file (``timestamp`` or ``id``, ``is_anomaly``, optional ``score``
    and per-channel 0/1 columns named like the mission's channels) against ``mission`` and put
    its rows in the mission's order. A refusal names ``path`` (the file ``pred`` was read from),
    the column and the first offending row (``row N after the header``) and value.

    ``timestamp`` values must be the mission's own timestamps; ``id`` values are the mission's
    ids for sample-indexed data and row numbers (0-based) for time-indexed data.
    """
    if getattr(mission, "is_multiseries", False):
        raise ESAInputError(
            f"prediction files are scored against single-grid missions; score each series "
            f"alone (mission {mission.name!r})",
            path=path,
        )
    found = [str(c) for c in pred.columns]
    if "is_anomaly" not in pred.columns:
        # start, end: an alarm table (predict.py's intervals.csv, of any version), not rows
        hint = ("; a table of alarms (start, end), as predict.py's intervals.csv: score its "
                "submission.csv (one row per grid row)"
                if {"start", "end"} <= set(found) else "")
        raise ESAInputError(f"predictions lack the is_anomaly column (found {quoted(found)})"
                            f"{hint}", path=path, column="is_anomaly")
    if "timestamp" in pred.columns:
        column = "timestamp"
    elif "id" in pred.columns:
        column = "id"
    else:
        raise ESAInputError(f"predictions need a timestamp or an id column (found {quoted(found)})",
                            path=path, column="timestamp")
    if pred.empty:
        raise ESAInputError("no prediction rows (only a header)", path=path)
    keys = _keys(pred, column, path)
    mission_times = as_time(mission.timestamps, what="mission timestamps")
    if column == "id" and mission.is_time_indexed:
        mission_times = np.arange(len(mission_times), dtype=np.int64)
    ids = column == "id" or not mission.is_time_indexed  # keys that are sample ids
    keys = _as_kind_of(pred, column, keys, mission_times.dtype, ids, path)
    dup = pd.Series(keys).duplicated().to_numpy()
    if dup.any():
        refuse_row(pred, column, dup, "repeated key", path)
    sorter = np.argsort(mission_times, kind="stable")
    pos = np.searchsorted(mission_times, keys, sorter=sorter)
    pos = np.minimum(pos, len(mission_times) - 1)
    rows = sorter[pos]
    missing = mission_times[rows] != keys
    if missing.any():
        shown = ", ".join(str(v) for v in pred[column][missing].head(5))
        refuse_row(pred, column, missing, f"{int(missing.sum())} key(s) are not rows of "
                    f"mission {mission.name!r}, e.g. {shown}{SAME_DATA}", path)
    alarm = zero_one(pred, "is_anomaly", path)
    require_full_coverage(rows, mission, column, path)
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    channels = [c for c in mission.channel_names if c in pred.columns]
    _warn_unread_channels(pred, mission, channels, path)
    channel_alarm = None
    if channels:
        what = "per-channel columns must hold only 0/1"
        channel_alarm = np.stack([zero_one(pred, c, path, what) for c in channels], axis=1)
        channel_alarm = channel_alarm[order]
    score = score_column(pred, path)
    return AlignedPredictions(
        rows=rows,
        timestamps=np.asarray(mission.timestamps)[rows],
        alarm=alarm[order],
        score=None if score is None else score[order],
        channel_alarm=channel_alarm,
        channel_names=channels or None,
    )


def _warn_unread_channels(
    pred: pd.DataFrame, mission: Any, channels: list[str], path: str | Path | None
) -> None:
    """Warn of columns that name no channel of ``mission`` (not read: a misspelt channel's
    alarms) and of per-channel columns that leave some of its channels out (scored as never
    alarmed, as a detector of a channel subset's are)."""
    import warnings

    where = "" if path is None else f"{path}: "
    names = [str(c) for c in mission.channel_names]
    known = {"timestamp", "id", "is_anomaly", "score", *names}  # the columns a file may hold
    other = [str(c) for c in pred.columns if c not in known]
    if other:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        warnings.warn(f"{where}column(s) {quoted(other[:5])} name no channel of mission "
                      f"{mission.name!r} ({shown}): not read", UserWarning, stacklevel=3)
    if channels and len(channels) < len(names):
        left = [c for c in names if c not in channels]
        shown = ", ".join(left[:5]) + (", ..." if len(left) > 5 else "")
        warnings.warn(f"{where}per-channel columns for {len(channels)} of the {len(names)} "
                      f"channels of mission {mission.name!r}: {shown} scored as never alarmed",
                      UserWarning, stacklevel=3)


def _keys(pred: pd.DataFrame, column: str, path: str | Path | None) -> np.ndarray:
    """The ``timestamp`` or ``id`` cells as times (``as_time``); a cell that is empty, longer
    than ``KEY_CELL_LIMIT`` characters (named by its length, not its content), no number (an
    id) or no time names its row."""
    cells = pred[column].reset_index(drop=True)
    refuse_row(pred, column, cells.isna().to_numpy(), f"every row needs its {column}", path)
    refuse_long_cells(cells, path=path, column=column, row="row {} after the header", first=1)
    if column == "id":
        numbers = pd.to_numeric(cells, errors="coerce")
        refuse_row(pred, column, numbers.isna().to_numpy(), "an id must be a number", path)
        cells = numbers
    try:
        return as_time(cells, what=f"{column} column")
    except ESAInputError as exc:
        parsed = pd.to_datetime(cells, utc=True, errors="coerce")
        refuse_row(pred, column, parsed.isna().to_numpy(), "cannot be read as a time",
                    path)
        raise ESAInputError(exc.reason, path=path, column=column) from None


#: whole-number float ids up to this size are read as the int64 ids they are (61.0 is 61)
WHOLE_ID_LIMIT = 2**62


def not_whole_ids(ids: np.ndarray) -> np.ndarray:
    """bool [n]: the ids that are no whole number within ``WHOLE_ID_LIMIT`` (NaN, inf, 61.5,
    1e30); the one rule of the readers, evaluate.py and the prediction alignment."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iu":
        return (ids > WHOLE_ID_LIMIT) | (ids < -WHOLE_ID_LIMIT)
    ids = ids.astype(np.float64, copy=False)
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(ids) | (ids % 1 != 0) | (np.abs(ids) > WHOLE_ID_LIMIT)


def _as_kind_of(pred: pd.DataFrame, column: str, keys: np.ndarray, dtype: np.dtype, ids: bool,
                path: str | Path | None) -> np.ndarray:
    """``keys`` in the mission's time ``dtype``. Whole-number float ids (61.0, as pandas writes
    an integer column once a NaN touched it) are the integer ids they are; a float with a
    fraction (61.5), or keys of another kind, name their first row."""
    if keys.dtype == dtype:
        return keys
    reason = "prediction keys and mission timestamps differ in kind"
    if ids and keys.dtype.kind == "f" and dtype.kind in "iu":
        refuse_row(pred, column, not_whole_ids(keys), reason, path)
        return keys.astype(dtype)
    bad = keys % 1 != 0  # integer keys of float ids, or the reverse
    refuse_row(pred, column, bad if bad.any() else np.ones(len(keys), dtype=bool), reason, path)
    return keys


def zero_one(pred: pd.DataFrame, column: str, path: str | Path | None,
              reason: str = "is_anomaly must hold only 0/1") -> np.ndarray:
    """A column of 0/1 cells as uint8; the first other cell names its row and value."""
    values = pd.to_numeric(pred[column], errors="coerce").to_numpy()
    refuse_row(pred, column, ~np.isin(values, (0, 1)), reason, path)
    return values.astype(np.uint8)


def refuse_row(pred: pd.DataFrame, column: str, bad: np.ndarray, reason: str,
                path: str | Path | None) -> None:
    """Raise for the first row marked ``bad``, naming its position after the header and the
    cell it holds (an empty cell as such); nothing when no row is marked."""
    if not bad.any():
        return
    row = int(np.flatnonzero(bad)[0])
    cell = pred[column].iloc[row]
    if pd.isna(cell):
        raise ESAInputError(f"empty cell in row {row + 1} after the header: {reason}",
                            path=path, column=column)
    raise ESAInputError(f"row {row + 1} after the header: {reason}", path=path, column=column,
                        value=plain(cell))


def score_column(pred: pd.DataFrame, path: str | Path | None = None) -> np.ndarray | None:
    """The predictions' optional ``score`` column (AUC_PR ranks the rows by it) as float64, or
    None without one; a cell that is no number is named (it would rank as NaN) with its row,
    and with ``path``, the file it was read from."""
    if "score" not in pred.columns:
        return None
    score = pd.to_numeric(pred["score"], errors="coerce").to_numpy(np.float64)
    refuse_row(pred, "score", np.isnan(score), "a score that is no number", path)
    return score


def plain(value: object) -> object:
    """A cell as Python shows it (5, not np.int64(5))."""
    return value.item() if isinstance(value, np.generic) else value


def score_prediction_frame(pred: pd.DataFrame, mission: Any) -> dict[str, float]:
    """Every metric of a predictions file against ``mission`` (``align_prediction_frame``)."""
    return score_aligned(align_prediction_frame(pred, mission), mission)


def scored_columns(
    channel_alarm: Any, names: Sequence[str], scored: set[str]
) -> tuple[Any, list[str]]:
    """(the columns of the per-channel alarms ``channel_alarm``, named ``names``, whose channel
    is in ``scored``, their names): the channels ``metrics.label_channels`` scores
    (``Mission.scored_channels``). All of them: as given; else a dense copy of those (chunked
    scoring keeps per-channel alarms as ``AlarmedRows``, which reads row slices only)."""
    keep = [i for i, name in enumerate(names) if name in scored]
    if len(keep) == len(names):
        return channel_alarm, list(names)
    return np.asarray(channel_alarm)[:, keep], [names[i] for i in keep]


def score_aligned(aligned: AlignedPredictions, mission: Any) -> dict[str, float]:
    """Every metric of predictions already aligned to ``mission``. The channel- and
    subsystem-aware scores need labels that name channels: a mission whose row label names
    none (Kaggle files) gets none of their keys, per-channel columns or not; they count the
    columns of the channels ``metrics.label_channels`` scores (``Mission.scored_channels``)."""
    by_channel = getattr(mission, "has_channel_labels", True)
    channel_alarm, names = aligned.channel_alarm, aligned.channel_names
    if by_channel and names:
        scored = getattr(mission, "scored_channels", mission.channels)["Channel"]
        channel_alarm, names = scored_columns(channel_alarm, names, set(scored))
    return full_report(
        mission.events,
        aligned.timestamps,
        aligned.alarm,
        score=aligned.score,
        channel_alarm=channel_alarm if by_channel and names else None,
        channel_names=names if by_channel and names else None,
        channels_table=mission.channels,
    )
