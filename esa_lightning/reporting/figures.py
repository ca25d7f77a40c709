"""The report's figures as PNG bytes: a timeline of alarms against labeled events, and one
figure per alarm (score trace and threshold, then the channels it alarmed in physical units).

Rows are plotted against their position and labelled with their timestamps (or ids), so that
time-indexed and sample-indexed data share one code path. Every figure is closed after saving.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from esa_lightning.data.mission import Mission
from esa_lightning.metrics.intervals import merge, runs
from esa_lightning.models.base import RowScores

ALARM_COLOUR = "#d62728"
EVENT_COLOUR = "#2ca02c"
SCORE_COLOUR = "#1f4e79"
MAX_TRACE_POINTS = 4000


@dataclass
class ScoredGrid:
    """One scored grid of a prediction (the mission's test range, or one NASA series)."""

    name: str
    part: Mission
    scores: RowScores
    timestamps: np.ndarray
    intervals: pd.DataFrame
    series: str = ""  # the independent series (NASA channel) it is, "" for a mission's grid


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:  # noqa: ANN001
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    _pyplot().close(fig)
    return buf.getvalue()


def labeled_rows(part: Mission) -> np.ndarray | None:
    """bool [T]: rows inside a labeled anomaly or rare event; None without labels."""
    if part.labels is None or not np.asarray(part.labels).size:
        return None
    return part.is_anomaly.astype(bool)


def _time_axis(ax, timestamps: np.ndarray, lo: int) -> None:  # noqa: ANN001
    """Tick labels of row positions: the rows' timestamps (or ids)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    def label(x: float, _pos: int) -> str:
        k = int(round(x)) - lo
        if not 0 <= k < len(timestamps):
            return ""
        t = timestamps[k]
        if np.issubdtype(np.asarray(timestamps).dtype, np.datetime64):
            return pd.Timestamp(t).strftime("%Y-%m-%d\n%H:%M")
        return str(t)

    ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(label))
    ax.tick_params(labelsize=7)


def shade_spans(
    mask: np.ndarray, lo: int, min_share: float = 1 / 400
) -> tuple[np.ndarray, np.ndarray]:
    """x extents ``(left, right)`` of the shading of each run of ``mask`` (row ``lo`` first):
    the run's rows +-0.5, widened about its centre to at least ``min_share`` of the plotted
    range (a short alarm stays visible on a timeline of weeks); spans that then overlap are
    merged."""
    starts, ends = runs(mask.astype(np.uint8))
    half = max(0.5, len(mask) * min_share / 2)
    centre, width = lo + (starts + ends) / 2, np.maximum((ends - starts) / 2 + 0.5, half)
    spans = merge(centre - width, centre + width)
    return spans.start, spans.end


def _shade_runs(ax, mask: np.ndarray, lo: int, colour: str, alpha: float) -> None:  # noqa: ANN001
    """Shade each run of ``mask`` over the panel's height: one collection for all of them (one
    patch per run took seconds per timeline with thousands of alarms)."""
    from matplotlib.collections import PolyCollection

    left, right = shade_spans(mask, lo)
    if not len(left):
        return
    bottom, top = np.zeros_like(left), np.ones_like(left)
    corners = [(left, bottom), (left, top), (right, top), (right, bottom)]
    verts = np.stack([np.column_stack(c) for c in corners], axis=1)  # [spans, 4, (x, y)]
    spans = PolyCollection(
        verts, facecolors=colour, alpha=alpha, linewidths=0, transform=ax.get_xaxis_transform()
    )
    ax.add_collection(spans, autolim=False)


def _trace(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most ``MAX_TRACE_POINTS`` points: the max of each bin (peaks stay visible)."""
    if len(y) <= MAX_TRACE_POINTS:
        return x, y
    edges = np.linspace(0, len(y), MAX_TRACE_POINTS + 1).astype(int)
    with np.errstate(all="ignore"):
        peaks = np.fmax.reduceat(np.asarray(y, dtype=np.float64), edges[:-1])
    return x[edges[:-1]], peaks


def _score_panel(ax, grid: ScoredGrid, lo: int, hi: int) -> None:  # noqa: ANN001
    x = np.arange(lo, hi)
    ax.plot(*_trace(x, grid.scores.score[lo:hi]), lw=0.8, color=SCORE_COLOUR, label="score")
    threshold = grid.scores.threshold
    if threshold is not None:
        ax.plot(*_trace(x, threshold[lo:hi]), lw=1.0, ls="--", color="k", label="threshold")
    ax.set_ylabel("score", fontsize=8)
    ax.tick_params(labelsize=7)


def timeline_png(grids: list[ScoredGrid]) -> bytes:
    """One panel per grid: its score and threshold over the whole scored range, alarms in red,
    labeled anomalies and rare events in green."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(grids), 1, figsize=(10, 1.0 + 1.6 * len(grids)), squeeze=False)
    for ax, grid in zip(axes[:, 0], grids, strict=True):
        n = len(grid.scores.score)
        _score_panel(ax, grid, 0, n)
        truth = labeled_rows(grid.part)
        if truth is not None:
            _shade_runs(ax, truth, 0, EVENT_COLOUR, 0.35)
        _shade_runs(ax, grid.scores.alarm != 0, 0, ALARM_COLOUR, 0.35)
        _time_axis(ax, grid.timestamps, 0)
        ax.set_xlim(-0.5, n - 0.5)
        if len(grids) > 1 or grid.series:  # a NASA series is named, even alone
            ax.set_title(grid.name, fontsize=8, loc="left", parse_math=False)
    handles = [
        plt.Line2D([], [], color=SCORE_COLOUR, lw=1, label="score"),
        plt.Line2D([], [], color="k", ls="--", lw=1, label="threshold"),
        plt.Rectangle((0, 0), 1, 1, color=ALARM_COLOUR, alpha=0.35, label="alarm"),
        plt.Rectangle((0, 0), 1, 1, color=EVENT_COLOUR, alpha=0.35, label="labeled event"),
    ]
    axes[0, 0].legend(handles=handles, fontsize=7, ncol=4, loc="upper left")
    fig.tight_layout()
    return _png(fig)


def channel_units(part: Mission) -> dict[str, str]:
    """Channel -> physical unit from the channel table's ``Physical Unit`` column, if any."""
    table = part.channels
    if "Physical Unit" not in table.columns:
        return {}
    units = table["Physical Unit"].fillna("").astype(str).str.strip()
    return {c: u for c, u in zip(table["Channel"], units, strict=True) if u and u != "nan"}


def alarm_png(grid: ScoredGrid, k: int, *, context: int = 200, max_channels: int = 4) -> bytes:
    """Alarm ``k`` of ``grid``: the score and threshold around it, then the first of its
    ``channels`` (the channels it alarmed, ranked) in physical units; the alarm shaded red,
    labeled rows green."""
    plt = _pyplot()
    row = grid.intervals.iloc[k]
    index = {c: i for i, c in enumerate(grid.part.channel_names)}
    names = [c for c in str(row["channels"] or "").split(";") if c in index][:max_channels]
    units = channel_units(grid.part)
    a, b = int(row["start_index"]), int(row["end_index"])
    lo, hi = max(0, a - context), min(len(grid.scores.score), b + context + 1)
    fig, axes = plt.subplots(
        1 + len(names), 1, figsize=(9, 1.9 * (1 + len(names)) + 0.5), sharex=True, squeeze=False
    )
    axes = axes[:, 0]
    _score_panel(axes[0], grid, lo, hi)
    axes[0].legend(fontsize=7, loc="upper left")
    values = grid.part.values
    x = np.arange(lo, hi)
    for ax, name in zip(axes[1:], names, strict=True):
        ax.plot(x, np.asarray(values[lo:hi, index[name]]), lw=0.8, color="#444444")
        unit = units.get(name)
        ax.set_ylabel(f"{name}\n[{unit}]" if unit else name, fontsize=8, parse_math=False)
        ax.tick_params(labelsize=7)
    truth = labeled_rows(grid.part)
    # the alarm over its rows, widened to 1/100 of the plotted ones: a one-row alarm shaded
    # over its row alone was too thin to see, the more so over a labeled event's green
    alarmed = np.zeros(hi - lo, dtype=bool)
    alarmed[a - lo : b - lo + 1] = True
    (left,), (right,) = shade_spans(alarmed, lo, min_share=1 / 100)
    for ax in axes:
        if truth is not None:
            _shade_runs(ax, truth[lo:hi], lo, EVENT_COLOUR, 0.25)
        ax.axvspan(left, right, color=ALARM_COLOUR, alpha=0.25, lw=0)
    _time_axis(axes[-1], grid.timestamps[lo:hi], lo)
    confidence = row.get("confidence", np.nan)
    shown = "" if pd.isna(confidence) else f", confidence {confidence:.3f}"
    axes[0].set_title(
        f"alarm {k}: {row['start']} .. {row['end']} (score {row['score']:.3g}{shown})",
        fontsize=9,
        parse_math=False,
    )
    fig.tight_layout()
    return _png(fig)
