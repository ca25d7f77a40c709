"""``predict(cfg)``: a saved Detector turns telemetry into a submission and an operator's report.

Scoring runs over chunks of rows. Each chunk is scored together with ``context`` rows on both
sides (the detector's receptive field: window length, pooling span, peak buffers), and only its
own rows are kept, so chunked results equal whole-series results while memory stays bounded by
the chunk size (the readers' caches are memory-mapped).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.common import has_labeled_events
from esa_lightning.models.base import RowScores
from esa_lightning.progress import progress
from esa_lightning.reporting.events import row_ids
from esa_lightning.runtime.chunks import score_in_chunks

log = logging.getLogger("esa_lightning")


def predict(cfg: Any) -> dict[str, float]:
    """The ``predict.py`` job; returns the metrics when the input carries labels."""
    from esa_lightning.artifact import Detector, check_schema
    from esa_lightning.io import make_output_folder, remove_stale_temporaries, write_json_atomic
    from esa_lightning.jobs.common import mission_from_config
    from esa_lightning.runtime.evaluation import ScoredRange, report_for

    out = make_output_folder(cfg.paths.output_dir)
    remove_stale_temporaries(out)
    detector = Detector.load(cfg.ckpt, map_location=cfg.get("device", "cpu"))
    mission = mission_from_config(cfg.data)
    check_schema(detector.schema, mission, source=str(cfg.data.root))
    if cfg.range not in ("test", "all"):
        raise ESAInputError("range must be 'test' or 'all'", column="range", value=cfg.range)
    if mission.is_multiseries:
        return _predict_series(detector, mission, cfg, out)
    part = mission.test() if cfg.range == "test" else mission
    if len(part.values) == 0:
        raise ESAInputError("no rows to score (is the test range empty?)", path=cfg.data.root)
    log.info("scoring %d rows of %s", len(part.values), mission.name)
    # the rows before the test range are the context its first windows and detrending need
    first_row = mission.test_start if cfg.range == "test" else 0
    scores = score_in_chunks(
        detector, mission, int(cfg.chunk_rows), keep_channel_scores="alarmed", first_row=first_row
    )
    metrics: dict[str, float] = {}
    if has_labeled_events(part):
        metrics = report_for(
            ScoredRange(part, scores, np.asarray(part.timestamps), part.events), "test"
        )
        write_json_atomic(out / "metrics.json", metrics)
    write_outputs(out, part, scores, cfg, metrics)
    return metrics


def write_outputs(
    out: Path, part: Mission, scores: RowScores, cfg: Any, metrics: dict[str, float]
) -> None:
    """submission.csv, intervals.csv, report.csv, alarms/*.png and index.html."""
    from esa_lightning.reporting.events import window_report, write_window_report
    from esa_lightning.reporting.outputs import (
        alarm_intervals,
        plot_alarms,
        write_index_html,
        write_intervals,
        write_submission,
    )

    ids = row_ids(part)
    write_submission(ids, scores.alarm, out / "submission.csv")
    timestamps = np.asarray(part.timestamps) if part.timestamps is not None else ids
    intervals = alarm_intervals(
        timestamps,
        scores.alarm,
        scores.score,
        part.channel_names,
        scores.channel_scores,
        scores.channel_alarm,
    )
    write_intervals(intervals, out / "intervals.csv")
    write_window_report(
        window_report(scores.alarm, ids, block=int(cfg.report_block)), out / "report.csv"
    )
    figures = plot_alarms(
        intervals,
        timestamps,
        np.asarray(part.values),
        part.channel_names,
        out / "alarms",
        max_figures=int(cfg.max_figures),
    )
    summary = (
        f"{len(ids)} rows scored, {int(scores.alarm.sum())} alarmed rows in "
        f"{len(intervals)} intervals"
    )
    write_index_html(out, intervals, figures, metrics, summary)
    print(summary)
    for key in ("test/EW_F_0.50", "test/EW_precision", "test/EW_recall", "test/AFF_F_0.50"):
        if key in metrics:
            print(f"  {key:<22} {metrics[key]:.4f}")
    print(f"outputs: {out.resolve()}")


def _predict_series(detector: Any, mission: Mission, cfg: Any, out: Path) -> dict[str, float]:
    """Independent series (NASA): one submission with a channel column, metrics pooled."""
    import pandas as pd

    from esa_lightning.io import atomic_path, write_json_atomic
    from esa_lightning.runtime.evaluation import concatenate_series, report_for

    pieces = []
    for name, sub in progress(
        mission.series.items(), description="scoring series", total=len(mission.series)
    ):
        part = sub.test() if cfg.range == "test" else sub
        # each recording alone (the Telemanom protocol); unrepresentable readings alarm
        pieces.append((name, part, score_in_chunks(detector, part, 0)))
    frames = [
        pd.DataFrame({"channel": name, "id": row_ids(part), "is_anomaly": rs.alarm})
        for name, part, rs in pieces
    ]
    with atomic_path(out / "submission.csv") as tmp:
        pd.concat(frames, ignore_index=True).astype({"is_anomaly": int}).to_csv(tmp, index=False)
    metrics = report_for(concatenate_series(mission, pieces), "test")
    write_json_atomic(out / "metrics.json", metrics)
    for key in ("test/EWraw_F_0.50", "test/EW_F_0.50"):
        print(f"  {key:<22} {metrics.get(key, float('nan')):.4f}")
    print(f"outputs: {out.resolve()}")
    return metrics
