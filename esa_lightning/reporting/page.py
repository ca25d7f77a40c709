"""``index.html``: one self-contained page (inline CSS, figures as base64 PNG data URIs).

Order: what ran (detector, data, time range, threshold, alarm count), the timeline of alarms
against labeled events, the alarm table, one figure per alarm, then (when the range has labels)
the labeled events caught and missed (``reporting.caught``) and the metrics, counts printed as
counts and ratios as ratios. docs/report.md explains how to read it.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from esa_lightning.install import command
from esa_lightning.io import write_text_atomic

#: metrics that count events (printed as integers); the ``_anomaly`` variants too
COUNT_METRICS = ("ADTQC_before", "ADTQC_after")
ANOMALY_SUFFIX = "_anomaly"
#: labeled events listed on the page (events.csv lists every one)
MAX_EVENT_ROWS = 200

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 0;
       color: #1d2733; background: #f4f6f9; }
header { background: #1f4e79; color: white; padding: 18px 32px; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0 0; opacity: 0.85; }
main { padding: 8px 32px 40px; max-width: 1100px; }
section { background: white; border-radius: 6px; padding: 12px 20px; margin: 16px 0;
          box-shadow: 0 1px 3px rgba(0, 0, 0, 0.12); }
h2 { font-size: 17px; margin: 6px 0 10px; color: #1f4e79; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e3e7ee; text-align: left;
         vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table#summary th { color: #55606e; font-weight: 600; width: 170px; }
img { max-width: 100%; display: block; margin: 6px 0; }
figure { margin: 14px 0; }
figcaption { font-size: 13px; color: #55606e; }
.muted { color: #7a8594; }
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def format_metric(key: str, value: float) -> str:
    """A count as an integer, a ratio with four decimals, a missing value as ``n/a``."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    base = key.rsplit("/", 1)[-1].removesuffix(ANOMALY_SUFFIX)
    if base in COUNT_METRICS:
        return str(int(round(float(value))))
    return f"{float(value):.4f}"


def metric_rows(metrics: Mapping[str, float]) -> list[tuple[str, str, str]]:
    """(metric, value over anomalies and rare events, value over anomalies only) per metric;
    ``-`` where a variant does not exist."""
    rows: dict[str, dict[str, str]] = {}
    for key, value in metrics.items():
        prefix, _, name = key.rpartition("/")
        only = name.endswith(ANOMALY_SUFFIX)
        base = name.removesuffix(ANOMALY_SUFFIX)
        label = f"{prefix}/{base}" if prefix else base
        rows.setdefault(label, {})["anomaly" if only else "all"] = format_metric(key, value)
    return [(k, v.get("all", "-"), v.get("anomaly", "-")) for k, v in rows.items()]


def _cell(value: object, numeric: bool = False, digits: str = ".4g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        text = "–"
    elif isinstance(value, float):
        text = format(value, digits)
    else:
        text = str(value)
    cls = " class='num'" if numeric else ""
    return f"<td{cls}>{html.escape(text)}</td>"


def _alarm_table(intervals: pd.DataFrame, figures: Sequence[tuple[str, int, bytes]]) -> str:
    shown = {number for _, number, _ in figures}
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "#",
            "start",
            "end",
            "alarmed channels",
            "score",
            "threshold",
            "confidence",
            "gate",
            "gate probability",
            "raised by",
        )
    )
    lines = [f"<table id='alarms'><tr>{head}</tr>"]
    for k, row in enumerate(intervals.itertuples(index=False)):
        number = f"<a href='#alarm-{k}'>{k}</a>" if k in shown else str(k)
        channels = str(row.channels).replace(";", ", ")
        channels = f"{row.series}: {channels}" if row.series else channels
        lines.append(
            f"<tr><td>{number}</td>{_cell(str(row.start))}{_cell(str(row.end))}"
            f"{_cell(channels)}{_cell(row.score, True)}{_cell(row.threshold, True)}"
            f"{_cell(row.confidence, True, '.3f')}{_cell(row.gate)}"
            f"{_cell(row.gate_probability, True, '.3f')}"
            f"{_cell(str(getattr(row, 'raised_by', '')).replace(';', ', '))}</tr>"
        )
    lines.append("</table>")
    return "\n".join(lines)


def _events_section(events: pd.DataFrame) -> list[str]:
    """Caught and missed labeled events: per class, then one row per event (at most
    ``MAX_EVENT_ROWS``; events.csv has them all)."""
    from esa_lightning.metrics.report import SELECTIONS
    from esa_lightning.reporting.caught import caught_by_class

    caught = int(events["caught"].sum()) if len(events) else 0
    parts = [f"<section><h2>Labeled events ({caught} of {len(events)} caught)</h2>"]
    if not len(events):
        return [*parts, "<p>No labeled event in the range.</p></section>"]
    counted_categories = SELECTIONS[""]  # the categories EW_recall counts
    counted = events[events["category"].isin(counted_categories)]
    parts.append(
        f"<p>{', '.join(counted_categories)}: {int(counted['caught'].sum())} of {len(counted)} "
        "caught (the share is EW_recall).</p>"
    )
    parts.append("<table id='event-classes'><tr><th>category</th><th>class</th>"
                 "<th>events</th><th>caught</th></tr>")
    parts += [
        f"<tr>{_cell(r['category'])}{_cell(r['class'])}{_cell(str(r['events']), True)}"
        f"{_cell(str(r['caught']), True)}</tr>"
        for r in caught_by_class(events).to_dict("records")
    ]
    parts.append("</table><table id='events'><tr><th>id</th><th>category</th><th>class</th>"
                 "<th>start</th><th>end</th><th>channels</th><th>caught by alarm</th></tr>")
    for r in events.head(MAX_EVENT_ROWS).to_dict("records"):
        name = f"{r['series']}: {r['id']}" if r["series"] else str(r["id"])
        by = str(r["alarms"]).replace(";", ", ") if r["caught"] else "missed"
        parts.append(
            f"<tr>{_cell(name)}{_cell(r['category'])}{_cell(r['class'])}"
            f"{_cell(str(r['start']))}{_cell(str(r['end']))}"
            f"{_cell(str(r['channels']).replace(';', ', '))}{_cell(by)}</tr>"
        )
    parts.append("</table>")
    if len(events) > MAX_EVENT_ROWS:
        parts.append(f"<p class='muted'>The first {MAX_EVENT_ROWS} events; events.csv lists "
                     f"all {len(events)}.</p>")
    return [*parts, "</section>"]


def render_page(
    summary: Mapping[str, str],
    timeline: bytes | None,
    intervals: pd.DataFrame,
    figures: Sequence[tuple[str, int, bytes]],
    metrics: Mapping[str, float] | None,
    events: pd.DataFrame | None = None,
) -> str:
    """The whole page as a string (see the module docstring)."""
    title = f"esa_lightning report: {summary.get('Detector', '')} on {summary.get('Data', '')}"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<header><h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(summary.get('Alarms', ''))} alarms · "
        f"{html.escape(summary.get('Time range', ''))}</p></header><main>",
        "<section><h2>What ran</h2><table id='summary'>",
        *(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in summary.items()
        ),
        "</table></section>",
    ]
    if timeline is not None:
        parts.append(
            "<section><h2>Timeline</h2><img id='timeline' alt='score, threshold, alarms and "
            f"labeled events over the scored range' src='{data_uri(timeline)}'></section>"
        )
    parts.append(f"<section><h2>Alarms ({len(intervals)})</h2>")
    parts.append(_alarm_table(intervals, figures) if len(intervals) else "<p>No alarm.</p>")
    if len(figures) < len(intervals):
        n = len(figures)  # fewer than the alarms: max_figures
        said = {0: "No alarm figure", 1: "The figure of the first alarm only"}.get(
            n, f"Figures of the first {n} alarms"
        )
        parts.append(
            f"<p class='muted'>{said} ({html.escape(command('predict'))} max_figures={n}).</p>"
        )
    parts.append("</section>")
    if figures:
        parts.append("<section><h2>Alarm figures</h2>")
        for name, number, png in figures:
            row = intervals.iloc[number]
            caption = f"Alarm {number}: {row['start']} .. {row['end']}, channels {row['channels']}"
            parts.append(
                f"<figure id='alarm-{number}'><img alt='{html.escape(name)}' "
                f"src='{data_uri(png)}'><figcaption>{html.escape(caption)} "
                f"(<a href='alarms/{html.escape(name)}'>{html.escape(name)}</a>)"
                "</figcaption></figure>"
            )
        parts.append("</section>")
    if events is not None:
        parts += _events_section(events)
    parts.append("<section><h2>Metrics</h2>")
    if metrics:
        parts.append(
            "<table id='metrics'><tr><th>metric</th><th>anomalies + rare events</th>"
            "<th>anomalies only</th></tr>"
        )
        parts += [
            f"<tr><td>{html.escape(name)}</td><td class='num'>{a}</td><td class='num'>{b}</td></tr>"
            for name, a, b in metric_rows(metrics)
        ]
        parts.append("</table>")
    else:
        parts.append("<p>Not scored: the range holds no labeled anomaly or rare event, or its "
                     "labels are unknown.</p>")
    files = ["submission.csv", "intervals.csv", "report.csv"]
    files += ["events.csv"] * (events is not None) + ["metrics.json"] * bool(metrics)
    links = " · ".join(f"<a href='{name}'>{name}</a>" for name in files)
    parts.append(
        f"</section><section><h2>Files</h2><p>{links}</p></section></main></body></html>"
    )
    return "\n".join(parts)


def write_page(out_dir: str | Path, *args: object, **kwargs: object) -> Path:
    """``render_page`` written atomically to ``out_dir/index.html``."""
    return write_text_atomic(Path(out_dir) / "index.html", render_page(*args, **kwargs))
