"""What predict.py leaves for an operator: submission, intervals, figures and an HTML index."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from esa_lightning.io import atomic_path, write_error, write_text_atomic
from esa_lightning.reporting.events import alarms_to_intervals


def write_submission(ids: np.ndarray, alarm: np.ndarray, path: str | Path) -> Path:
    """``id,is_anomaly`` with 0/1 ints, one row per input row, no index (the Kaggle format)."""
    frame = pd.DataFrame({"id": np.asarray(ids).astype(np.int64), "is_anomaly": alarm.astype(int)})
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def alarm_intervals(
    timestamps: np.ndarray,
    alarm: np.ndarray,
    score: np.ndarray,
    channel_names: list[str],
    channel_scores: np.ndarray | None = None,
    channel_alarm: np.ndarray | None = None,
    top_k: int = 3,
) -> pd.DataFrame:
    """One row per alarm: start, end, channels involved, peak score, top contributing channels.

    Channels involved are those with a per-channel alarm inside the interval (all top channels
    when the detector gives no per-channel decision); top channels rank channels by their peak
    per-channel score inside the interval.
    """
    runs = alarms_to_intervals(alarm, timestamps)
    rows = []
    for run in runs.itertuples(index=False):
        lo, hi = int(run.start_index), int(run.end_index) + 1
        peak = float(np.max(score[lo:hi])) if hi > lo else float("nan")
        top: list[str] = []
        involved: list[str] = []
        if channel_scores is not None and channel_scores.shape[1]:
            peaks = np.nanmax(channel_scores[lo:hi], axis=0)
            order = np.argsort(-peaks)[:top_k]
            top = [channel_names[i] for i in order]
        if channel_alarm is not None and channel_alarm.shape[1]:
            hit = np.flatnonzero(channel_alarm[lo:hi].any(axis=0))
            involved = [channel_names[i] for i in hit]
        rows.append(
            {
                "start": run.start,
                "end": run.end,
                "channels": ";".join(involved or top),
                "score": peak,
                "top_channels": ";".join(top),
                "start_index": lo,
                "end_index": hi - 1,
            }
        )
    columns = ["start", "end", "channels", "score", "top_channels", "start_index", "end_index"]
    return pd.DataFrame(rows, columns=columns)


def write_intervals(intervals: pd.DataFrame, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        intervals[["start", "end", "channels", "score", "top_channels"]].to_csv(tmp, index=False)
    return Path(path)


def plot_alarms(
    intervals: pd.DataFrame,
    timestamps: np.ndarray,
    values: np.ndarray,
    channel_names: list[str],
    out_dir: str | Path,
    *,
    context: int = 200,
    max_channels: int = 4,
    max_figures: int = 200,
) -> list[Path]:
    """One PNG per alarm: its involved channels around it, the alarm shaded. Figures are closed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(out_dir, exc) from exc
    index = {c: i for i, c in enumerate(channel_names)}
    paths = []
    for k, row in enumerate(intervals.head(max_figures).itertuples(index=False)):
        names = [c for c in str(row.channels or row.top_channels).split(";") if c in index]
        names = names[:max_channels] or channel_names[:1]
        lo = max(0, int(row.start_index) - context)
        hi = min(len(timestamps), int(row.end_index) + context + 1)
        fig, axes = plt.subplots(
            len(names), 1, figsize=(9, 1.8 * len(names) + 0.6), sharex=True, squeeze=False
        )
        t = timestamps[lo:hi]
        for ax, name in zip(axes[:, 0], names, strict=True):
            ax.plot(t, values[lo:hi, index[name]], lw=0.8)
            ax.axvspan(
                timestamps[int(row.start_index)],
                timestamps[int(row.end_index)],
                color="red",
                alpha=0.25,
            )
            ax.set_ylabel(name, fontsize=8)
        axes[0, 0].set_title(
            f"alarm {k}: {row.start} .. {row.end} (score {row.score:.3g})", fontsize=9
        )
        fig.tight_layout()
        path = out_dir / f"alarm_{k:04d}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


def write_index_html(
    out_dir: str | Path,
    intervals: pd.DataFrame,
    figures: list[Path],
    metrics: dict[str, float] | None,
    summary: str,
) -> Path:
    """A one-page summary linking every output and every alarm figure."""
    out_dir = Path(out_dir)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>esa_lightning prediction</title>",
        "</head><body>",
        f"<h1>Prediction</h1><p>{html.escape(summary)}</p>",
        "<p><a href='submission.csv'>submission.csv</a> · <a href='intervals.csv'>intervals.csv</a>"
        " · <a href='report.csv'>report.csv</a></p>",
    ]
    if metrics:
        parts.append("<h2>Metrics</h2><table>")
        parts += [f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td></tr>" for k, v in metrics.items()]
        parts.append("</table>")
    parts.append(
        f"<h2>{len(intervals)} alarms</h2><table><tr><th>#</th><th>start</th><th>end"
        "</th><th>channels</th><th>score</th><th>figure</th></tr>"
    )
    for k, row in enumerate(intervals.itertuples(index=False)):
        fig = figures[k].name if k < len(figures) else ""
        link = f"<a href='alarms/{fig}'>{fig}</a>" if fig else ""
        parts.append(
            f"<tr><td>{k}</td><td>{html.escape(str(row.start))}</td>"
            f"<td>{html.escape(str(row.end))}</td><td>{html.escape(str(row.channels))}</td>"
            f"<td>{row.score:.3g}</td><td>{link}</td></tr>"
        )
    parts.append("</table></body></html>")
    return write_text_atomic(out_dir / "index.html", "\n".join(parts))
