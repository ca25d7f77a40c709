"""What predict.py leaves for an operator: submission, intervals, figures and an HTML index.

``intervals.csv`` has one row per alarm (a maximal run of alarmed rows):

    start, end        first and last alarmed timestamp (or sample id)
    channels          the channels the detector alarmed on the interval's rows (its per-channel
                      alarms, the ones the channel_* metrics score), ranked by contribution,
                      ``;``-joined (``attribution``; without per-channel alarms: the drivers)
    score             the peak row score in the interval (the detector's raw score); below
                      the alarm level where only the stuck-channel rule (``frozen``) alarmed
    top_channels      the first of ``channels`` with their contribution, ``name=4.2;other=1.3``
                      (deviation in units of the channel's own nominal spread)
    confidence        fraction of nominal validation scores below ``score`` (empty without a
                      validation range)
    threshold         the threshold the peak score was held against (the channel ensemble's
                      peaks height; empty when the detector's decision is not one threshold on
                      its score)
    gate              ``accepted`` when a random-forest gate judged the alarm, else empty
    gate_probability  the gate's highest probability of a true anomaly inside the interval
    series            the independent series (NASA channel) the alarm belongs to, else empty
    deviating_channels  the attribution over ALL channels, alarmed or not (targets preferred,
                      contribution above 0 only), as ``top_channels`` writes it
    raised_by         the rules that alarmed its rows, ``;``-joined: ``score`` (the detector's
                      own rule on its score), ``gap_close``, ``frozen``, ``forced``
                      (``models.raised_by``); empty when the detector does not record them
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from esa_lightning.data.mission import Mission, cells_in, nominal_rows
from esa_lightning.io import atomic_path, write_error
from esa_lightning.models.base import RowScores
from esa_lightning.models.raised_by import rule_names
from esa_lightning.postprocessing.confidence import confidence
from esa_lightning.reporting.attribution import (
    Attribution,
    attribute,
    contributions,
    rank_alarmed,
    ranked_text,
    secondary_channels,
)
from esa_lightning.reporting.events import alarms_to_intervals
from esa_lightning.reporting.figures import ScoredGrid, alarm_png
from esa_lightning.reporting.reference import ChannelSpread, NominalReference, channel_spread

log = logging.getLogger("esa_lightning")

INTERVAL_COLUMNS = [
    "start",
    "end",
    "channels",
    "score",
    "top_channels",
    "confidence",
    "threshold",
    "gate",
    "gate_probability",
    "series",
    "deviating_channels",
    "raised_by",
]
#: rows of the scored range a fallback spread is estimated from (no validation range)
FALLBACK_ROWS = 100_000


def write_submission(ids: np.ndarray, alarm: np.ndarray, path: str | Path) -> Path:
    """``id,is_anomaly`` with 0/1 ints, one row per input row, no index (the Kaggle format)."""
    frame = pd.DataFrame({"id": np.asarray(ids).astype(np.int64), "is_anomaly": alarm.astype(int)})
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def value_spread(part: Mission, reference: NominalReference | None) -> ChannelSpread:
    """The raw values' nominal spread: the reference's, else that of the scored range's own
    label-free rows (a sample of them): alarms are rare, so it is still mostly nominal."""
    if reference is not None:
        return reference.values
    step = max(1, len(part.values) // FALLBACK_ROWS)
    sample = np.asarray(part.values[::step])
    nominal = nominal_rows(part)[::step]
    return channel_spread(sample[nominal] if nominal.any() else sample, two_sided=True)


def interval_contributions(
    scores: RowScores,
    part: Mission,
    lo: int,
    hi: int,
    values: ChannelSpread,
    reference: NominalReference | None,
    secondary: np.ndarray,
) -> np.ndarray:
    """float64 [C]: each channel's contribution to the alarm on rows [lo, hi).

    The detector's per-channel scores against their nominal spread when it reports them (and a
    reference gives that spread), else the raw values against theirs. A secondary channel
    (``secondary``: bool [C], see ``attribution.secondary_channels``) counts only as far as its
    VALUES leave their nominal range too: a flat mode flag or a counter ticking as usual gets
    large normalised errors when the network's whole reconstruction degrades, without
    driving anything."""
    by_value = contributions(np.asarray(part.values[lo:hi]), values)
    channel = scores.channel_scores
    if channel is None or reference is None or reference.channel_scores is None:
        return by_value
    by_score = contributions(np.asarray(channel[lo:hi]), reference.channel_scores)
    k = len(by_score)
    by_score[secondary[:k]] = np.minimum(by_score, by_value[:k])[secondary[:k]]
    return by_score


def named_channels(
    scores: RowScores,
    lo: int,
    hi: int,
    contribution: np.ndarray,
    names: list[str],
    found: Attribution,
) -> tuple[str, str]:
    """(``channels``, ``top_channels``) of the interval [lo, hi): the channels alarmed on its
    rows ranked by ``contribution``, or the attribution's (``found``) where the detector has no
    per-channel alarms."""
    if scores.channel_alarm is None:
        return found.channels, found.top_channels
    alarmed = np.asarray(scores.channel_alarm[lo:hi]).any(axis=0)
    ranked = rank_alarmed(contribution, names[: len(contribution)], alarmed)
    return ";".join(name for name, _ in ranked), ranked_text(ranked)


def alarm_intervals(
    timestamps: np.ndarray,
    scores: RowScores,
    part: Mission,
    reference: NominalReference | None = None,
    series: str = "",
) -> pd.DataFrame:
    """One row per alarm of ``scores`` on ``part`` (``INTERVAL_COLUMNS`` plus start_index,
    end_index: row positions in ``part``)."""
    values = value_spread(part, reference)
    secondary = secondary_channels(part)
    names = part.channel_names
    is_secondary = np.array([n in secondary for n in names], dtype=bool)
    runs = alarms_to_intervals(scores.alarm, timestamps)
    raised = None if scores.raised_by is None else np.asarray(scores.raised_by)
    rows = []
    for run in runs.itertuples(index=False):
        lo, hi = int(run.start_index), int(run.end_index) + 1
        window = np.asarray(scores.score[lo:hi], dtype=np.float64)
        peak_at = lo + int(np.nanargmax(window)) if np.isfinite(window).any() else lo
        peak = float(scores.score[peak_at])
        contribution = interval_contributions(scores, part, lo, hi, values, reference, is_secondary)
        cells = cells_in(part.unrepresentable_cells, lo, hi)
        if cells is not None:  # a reading float32 cannot hold: its row's forced score
            cols = cells[:, 1][cells[:, 1] < len(contribution)]
            contribution[cols] = np.finfo(np.float32).max
        found = attribute(contribution, names, secondary)
        channels, top_channels = named_channels(scores, lo, hi, contribution, names, found)
        probability = None
        if scores.gate_probability is not None:
            p = np.asarray(scores.gate_probability[lo:hi], dtype=np.float64)
            probability = float(np.nanmax(p)) if np.isfinite(p).any() else None
        rows.append(
            {
                "start": run.start,
                "end": run.end,
                "channels": channels,
                "score": peak,
                "top_channels": top_channels,
                "confidence": np.nan
                if reference is None
                else float(confidence(np.array([peak]), reference.scores)[0]),
                "threshold": np.nan
                if scores.threshold is None
                else float(scores.threshold[peak_at]),
                "gate": "" if probability is None else "accepted",
                "gate_probability": np.nan if probability is None else probability,
                "series": series,
                "deviating_channels": found.top_channels,
                "raised_by": rule_names(None if raised is None else raised[lo:hi]),
                "start_index": lo,
                "end_index": hi - 1,
            }
        )
    return pd.DataFrame(rows, columns=[*INTERVAL_COLUMNS, "start_index", "end_index"])


def gate_rejections(scores: RowScores) -> int:
    """Threshold crossings the random-forest gate switched off: runs of rows the gate judged
    (finite probability) that did not alarm."""
    if scores.gate_probability is None:
        return 0
    judged = np.isfinite(np.asarray(scores.gate_probability, dtype=np.float64))
    rejected = judged & (np.asarray(scores.alarm) == 0)
    return len(alarms_to_intervals(rejected.astype(np.uint8), np.arange(len(rejected))))


def write_intervals(intervals: pd.DataFrame, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        intervals[INTERVAL_COLUMNS].to_csv(tmp, index=False)
    return Path(path)


def write_alarm_figures(
    grids: list[ScoredGrid], out_dir: str | Path, *, max_figures: int = 100
) -> list[tuple[str, int, bytes]]:
    """``alarms/alarm_NNNN.png`` for the first ``max_figures`` alarms over ``grids`` (in
    order); returns (file name, interval number over all grids, PNG bytes) of each."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(out_dir, exc) from exc
    figures, number = [], 0
    for grid in grids:
        for k in range(len(grid.intervals)):
            if len(figures) >= max_figures:
                return figures
            png = alarm_png(grid, k)
            name = f"alarm_{number:04d}.png"
            with atomic_path(out_dir / name) as tmp:
                tmp.write_bytes(png)
            figures.append((name, number, png))
            number += 1
    return figures


def _threshold_text(grids: list[ScoredGrid]) -> str:
    values = [g.scores.threshold for g in grids]
    if any(v is None for v in values) or not grids:
        return ("none on the score: the detector decides otherwise (with an online threshold, "
                "or on its components' alarms) or does not report it")
    finite = np.concatenate([np.asarray(v, dtype=np.float64) for v in values])
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return "not fitted"
    lo, hi = float(finite.min()), float(finite.max())
    return f"{lo:.6g}" if lo == hi else f"{lo:.6g} .. {hi:.6g} (per series)"


def _time_range(grids: list[ScoredGrid]) -> str:
    stamps = [g.timestamps for g in grids if len(g.timestamps)]
    if not stamps:
        return "no rows"
    first, last = min(s[0] for s in stamps), max(s[-1] for s in stamps)
    if np.issubdtype(np.asarray(stamps[0]).dtype, np.datetime64):
        return f"{pd.Timestamp(first)} .. {pd.Timestamp(last)}"
    return f"samples {first} .. {last}"


def run_summary(
    detector_name: str,
    detector_path: str,
    data_name: str,
    grids: list[ScoredGrid],
    references: list[NominalReference | None],
    data_source: str = "",
) -> dict[str, str]:
    """The "what ran" fields of the report, in the order shown (``Data source`` only when
    given)."""
    rows = sum(len(g.scores.score) for g in grids)
    alarmed = sum(int(np.count_nonzero(g.scores.alarm)) for g in grids)
    n_alarms = sum(len(g.intervals) for g in grids)
    gated = [g for g in grids if g.scores.gate_probability is not None]
    rejected = sum(gate_rejections(g.scores) for g in gated)
    reference_rows = sum(r.rows for r in references if r is not None)
    summary = {
        "Detector": detector_name,
        "Detector folder": detector_path,
        "Data": data_name,
        "Data source": data_source,
        "Time range": _time_range(grids),
        "Rows scored": f"{rows}" + (f" in {len(grids)} series" if len(grids) > 1 else ""),
        "Threshold": _threshold_text(grids),
        "Alarms": str(n_alarms),
        "Alarmed rows": str(alarmed),
        "Random-forest gate": f"{rejected} threshold crossings rejected" if gated else "none",
        "Confidence reference": f"{reference_rows} label-free validation rows"
        if reference_rows
        else "none (no label-free validation rows): confidence not given",
    }
    return {k: v for k, v in summary.items() if v}


def write_report(
    out: str | Path,
    grids: list[ScoredGrid],
    summary: dict[str, str],
    metrics: dict[str, float] | None,
    *,
    max_figures: int = 100,
    max_timeline_series: int = 12,
) -> pd.DataFrame:
    """intervals.csv, alarms/*.png and index.html of scored ``grids`` (and events.csv when
    ``metrics`` says the range is labeled: ``reporting.caught``); returns the intervals."""
    from esa_lightning.reporting.caught import grids_outcomes
    from esa_lightning.reporting.figures import timeline_png
    from esa_lightning.reporting.page import write_page

    out = Path(out)
    frames = [g.intervals for g in grids if len(g.intervals)]
    intervals = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=[*INTERVAL_COLUMNS, "start_index", "end_index"])
    )
    write_intervals(intervals, out / "intervals.csv")
    events = None
    if metrics:
        events = grids_outcomes(grids)
        with atomic_path(out / "events.csv") as tmp:
            events.to_csv(tmp, index=False)
    figures = write_alarm_figures(grids, out / "alarms", max_figures=max_figures)
    # a series with labeled events but no alarm keeps its panel: its missed events show
    shown = [g for g in grids if len(g.intervals) or len(g.part.events)] or grids
    timeline = timeline_png(shown[:max_timeline_series]) if shown else None
    write_page(out, summary, timeline, intervals, figures, metrics, events)
    return intervals
