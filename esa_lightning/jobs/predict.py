"""``predict(cfg)``: a saved Detector turns telemetry into a submission and an operator's report.

Scoring runs over chunks of rows. Each chunk is scored together with ``context`` rows on both
sides (the detector's receptive field: window length, pooling span, peak buffers), and only its
own rows are kept, so chunked results equal whole-series results while memory stays bounded by
the chunk size (the readers' caches are memory-mapped).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from esa_lightning.data.frame import SOURCE
from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError, naming_short_data
from esa_lightning.jobs.common import has_labeled_events, unscored_reason
from esa_lightning.models.base import RowScores, context_start
from esa_lightning.progress import progress
from esa_lightning.reporting.events import row_ids
from esa_lightning.runtime.chunks import score_in_chunks
from esa_lightning.runtime.evaluation import has_labels, no_event_reason
from esa_lightning.settings import check_setting

log = logging.getLogger("esa_lightning")


def predict(
    cfg: Any, overrides: Sequence[str] | None = None, *, api: bool = False
) -> dict[str, float]:
    """The ``predict.py`` job; returns the metrics when the input carries labels.

    One prediction at a time in a folder; its outputs are written into a temporary folder and
    published as one set, replacing the previous prediction's (``esa_lightning.run_folder``).
    ``overrides``: the ones ``cfg`` was composed with (None: the Hydra job's, where there is
    one, else unknown), which tell whether ``data=`` was given (``refuse_default_data``). A
    config built in Python and passed without them is scored with its ``data`` as given,
    unchecked against the data the detector was trained on: a config does not record which of
    its groups were given (``data=synthetic`` chosen composes the very config no ``data=``
    does), so the default cannot be told from a choice. Pass the overrides it was composed
    with (``[]``: none) to have that check, as ``esa_lightning.predict`` does. ``api``:
    refusals about the data are worded for ``esa_lightning.predict`` (its overrides), not for
    the command line.
    """
    from hydra.core.hydra_config import HydraConfig

    from esa_lightning.jobs.resolved_settings import check_interpolated_settings
    from esa_lightning.jobs.run_guard import refuse_other_runs_folder
    from esa_lightning.jobs.sweep import hydra_task_overrides
    from esa_lightning.run_folder import (
        lock_run_folder,
        make_run_folder,
        removed_if_refused,
        staged_outputs,
    )

    keep = bool(cfg.get("debug_errors", False))  # refused, it leaves no folder it made
    # before the detector is loaded or the data read: the values interpolations resolve to
    # (``+x=-1 max_figures=${x}``) as literal ones are (Hydra's folder removed if refused)
    with removed_if_refused(cfg.paths.output_dir, keep, settles=False):
        check_interpolated_settings(cfg)
        check_setting("range", cfg.range)
    if overrides is None and HydraConfig.initialized():
        overrides = hydra_task_overrides()
    out = make_run_folder(cfg.paths.output_dir)
    with removed_if_refused(out, keep), lock_run_folder(out), staged_outputs(out) as stage:
        # after a killed run's publishing is completed, before the detector is loaded
        refuse_other_runs_folder(out, "predict")
        metrics = _predict_into(cfg, stage, overrides, api)
    print(f"outputs: {out.resolve()}")
    return metrics


def _predict_into(
    cfg: Any, out: Path, overrides: Sequence[str] | None, api: bool = False
) -> dict[str, float]:
    from esa_lightning.artifact import Detector, check_schema
    from esa_lightning.artifact.manifest import artifact_folder
    from esa_lightning.io import write_json_atomic
    from esa_lightning.jobs.common import scored_mission
    from esa_lightning.jobs.predict_data import refuse_default_data, refuse_other_layout
    from esa_lightning.runtime.evaluation import ScoredRange, report_for

    detector = Detector.load(cfg.ckpt, map_location=cfg.get("device", "cpu"))
    # before any data is generated, read or cached
    refuse_other_layout(cfg.data, detector.schema, detector.config_yaml, api)
    refuse_default_data(cfg.data, detector.config_yaml, overrides, detector.info,
                        artifact_folder(cfg.ckpt), api)
    mission = read_trained(cfg.data, detector.schema, detector.config_yaml, api)
    check_schema(detector.schema, mission, source=str(cfg.data.root))
    mission = scored_mission(mission, cfg)  # metrics.label_channels
    if mission.is_multiseries:
        return _predict_series(detector, mission, cfg, out)
    part = range_of(mission, cfg.range)
    if len(part.values) == 0:
        raise ESAInputError(nothing_to_score(cfg.range, mission, cfg.data.get("split_date")),
                            path=cfg.data.root)
    refuse_without_reading(mission, part, cfg.range, cfg.data.root)
    # the rows before the range are the context its first windows and detrending need, and
    # the validation range is scored as training scored it: without the test rows after it
    first_row = {"test": mission.test_start, "val": mission.val_start}.get(cfg.range, 0)
    source = mission.slice(0, mission.test_start) if cfg.range == "val" else mission
    context = source.slice(context_start(first_row, detector.context_rows,
                                         detector.alignment_rows), first_row)
    warn_skipped_rows(part, cfg.data.root, context, cfg.range)
    log.info("scoring %d rows of %s", len(part.values), mission.name)
    scores = score_part(detector, source, int(cfg.chunk_rows), first_row=first_row,
                        source=cfg.data.root)
    metrics: dict[str, float] = {}
    if has_labeled_events(part):
        metrics = report_for(
            ScoredRange(part, scores, np.asarray(part.timestamps), part.events), cfg.range
        )
        write_json_atomic(out / "metrics.json", metrics)
    write_outputs(out, part, scores, cfg, metrics, detector, mission)
    return metrics


def read_trained(
    data_cfg: Any, schema: dict[str, Any], config_yaml: str = "", api: bool = False
) -> Mission:
    """The mission ``data_cfg`` reads, with the detector's channels (``trained_channels``; one
    the data lack is named as such, with the data the training run read, from the detector's
    ``config_yaml``) and its telecommands in the trained order. The reader's warning about rows
    off the grid is left out: ``warn_skipped_rows`` gives it for the rows scored."""
    import warnings

    from esa_lightning.artifact import in_trained_order, missing_trained_channels
    from esa_lightning.data.readers.common import OffGridWarning
    from esa_lightning.data.selection import UnknownChannels
    from esa_lightning.jobs.common import mission_from_config
    from esa_lightning.jobs.predict_data import trained_data_hint

    read = trained_channels(data_cfg, schema)
    try:
        with warnings.catch_warnings():  # said once, for the rows scored: warn_skipped_rows
            warnings.simplefilter("ignore", OffGridWarning)
            mission = mission_from_config(read)
    except UnknownChannels as exc:
        if read is data_cfg:  # the user's own data.channels: the reader's error says so
            raise
        hint = trained_data_hint(config_yaml, data_cfg, api)
        raise missing_trained_channels(exc, hint) from None
    return in_trained_order(schema, mission)


def trained_channels(data_cfg: Any, schema: dict[str, Any]) -> Any:
    """``data_cfg`` reading the channels the detector was trained on, by name and in its order
    (as the inference container reads ``test.parquet``): a file with its columns in another
    order, or with more channels than it was trained on, is scored; one it lacks is named
    (``read_trained``). Only where ``data.channels`` is ``all`` (the default): an explicit selection
    is read as given and checked against the schema, and independent series (NASA) score any
    of their trained series."""
    from omegaconf import OmegaConf

    if schema.get("multiseries") or data_cfg.get("channels", "all") not in ("all", None):
        return data_cfg
    options = OmegaConf.to_container(data_cfg, resolve=True)
    return OmegaConf.create({**options, "channels": list(schema["channels"])})


def warn_skipped_rows(
    part: Mission, source: Any, context: Mission | None = None, name: str = ""
) -> None:
    """Warn, as ``Detector.predict`` does (``data.frame.skipped_keys``), where the rows to score
    skip ids or grid times: the readers of rows taken as given (ESA CSV, Kaggle) keep them as
    they are. A reader that resamples onto its grid (raw ESA) leaves no grid row out. Where
    only the ``context`` rows (those before the range ``name``, read for its first windows,
    not scored) and the step into the range do, the warning says so."""
    import warnings

    from esa_lightning.data.frame import InputWarning, skipped_keys
    from esa_lightning.data.preprocessing import PREPROCESSING_KEY, Preprocessing

    prep = Preprocessing.from_dict(part.meta.get(PREPROCESSING_KEY))
    if prep is None or prep.resample != "none" or part.timestamps is None:
        return
    keys = np.asarray(part.timestamps)
    message = skipped_keys(keys, prep)
    if message is None and context is not None and len(context.values):
        before = np.concatenate([np.asarray(context.timestamps), keys[:1]])
        message = skipped_keys(before, prep, f"only in the {len(context.values)} row(s) of "
                               f"the context read before the {name} range, not scored; they "
                               "are read as given")
    if message:
        warnings.warn(f"{source}: {message}", InputWarning, stacklevel=2)


def refuse_without_reading(mission: Mission, part: Mission, name: str, source: Any) -> None:
    """Refuse to score the range ``name`` (its rows ``part``) where a channel the detector
    needs holds no finite reading in it (a dead sensor), as ``Detector.predict`` refuses such a
    frame: the readers of rows taken as given would score it as a reading from outside the
    range, held (``readers.common.WITHOUT_READING``). Raw ESA samples are held on the grid by design
    (a channel sampled on change has no sample while it holds its value): never refused here."""
    import pandas as pd

    from esa_lightning.data.readers.common import WITHOUT_READING

    dead = (mission.meta.get(WITHOUT_READING) or {}).get(name) or []
    if not dead:
        return
    keys = np.asarray(part.timestamps if part.timestamps is not None else row_ids(part))
    first, last = (pd.Timestamp(k) if keys.dtype.kind == "M" else k for k in keys[[0, -1]])
    others = ", ".join(repr(c) for c in dead[1:6]) + (" ..." if len(dead) > 6 else "")
    raise ESAInputError(
        f"channel holds no finite value in the {name} range ({first} to {last})"
        + (f", nor do {others}" if others else "")
        + ": the detector needs every channel it was trained on, and a dead sensor would be "
        "scored as a reading from outside the range, held; fill the column, or score a range "
        "it has readings in",
        path=source,
        column=dead[0],
    )


def nothing_to_score(name: str, mission: Mission | None = None, split_date: Any = None) -> str:
    """Why ``range=name`` found no row, and how to score the data all the same: for the test
    range of ``mission`` read with a ``split_date`` after its last row, that date and row."""
    import pandas as pd

    stamps = None if mission is None else mission.timestamps
    if name == "test" and split_date is not None and stamps is not None and len(stamps):
        last, split = pd.Timestamp(stamps[-1]), pd.Timestamp(str(split_date))
        if split.tzinfo is not None:  # read as UTC, as the readers read it
            split = split.tz_convert("UTC").tz_localize(None)
        if last < split:
            return (f"no rows to score: the data has no test range (data.split_date="
                    f"{split_date} is after its last row, {last}); range=all scores every row")
    why = {
        "test": " (no test file or folder, or data.split_date unset or after its last row: "
        "a single ESA CSV file is split there)",
        "val": " (data.val_days / data.val_fraction leave none)",
    }.get(name, "")
    return f"no rows to score: the data has no {name} range{why}; range=all scores every row"


def range_of(mission: Mission, name: str) -> Mission:
    """The rows ``range=name`` scores (``settings.RANGES``)."""
    return {"test": mission.test, "val": mission.val}.get(name, lambda: mission)()


def score_part(
    detector: Any, mission: Mission, chunk_rows: int, first_row: int = 0,
    source: str | PathLike = "",
) -> RowScores:
    """Scores of the rows of ``mission`` from ``first_row`` on, the rows before it serving as
    context; per-channel scores kept on alarmed rows (what the interval report reads).
    predict.py and the Python API (``Detector.predict``) both score this way. Rows too few for
    the detector are refused naming ``source``, where they were read from (the API: its
    ``DataFrame``)."""
    with naming_short_data(source or SOURCE):
        return score_in_chunks(
            detector, mission, chunk_rows, keep_channel_scores="alarmed", first_row=first_row
        )


def write_outputs(
    out: Path,
    part: Mission,
    scores: RowScores,
    cfg: Any,
    metrics: dict[str, float],
    detector: Any,
    mission: Mission,
) -> None:
    """submission.csv, intervals.csv, report.csv, alarms/*.png and index.html."""
    from esa_lightning.reporting.events import window_report, write_window_report
    from esa_lightning.reporting.outputs import write_submission

    ids = row_ids(part)
    write_submission(ids, scores.alarm, out / "submission.csv")
    write_window_report(
        window_report(scores.alarm, ids, block=int(cfg.report_block)), out / "report.csv"
    )
    grid, reference = _scored_grid(detector, mission, part, scores, cfg)
    intervals = _write_report(out, detector, mission, [grid], [reference], cfg, metrics)
    summary = (
        f"{len(ids)} rows scored, {int(scores.alarm.sum())} alarmed rows in "
        f"{len(intervals)} intervals"
    )
    print(summary)
    print_metrics(metrics, cfg.range, ("EW_F_0.50", "EW_precision", "EW_recall", "AFF_F_0.50"),
                  unscored_reason(part))


def _predict_series(detector: Any, mission: Mission, cfg: Any, out: Path) -> dict[str, float]:
    """Independent series (NASA): one submission with a channel column, metrics pooled."""
    import pandas as pd

    from esa_lightning.io import atomic_path, write_json_atomic
    from esa_lightning.runtime.evaluation import concatenate_series, report_for

    parts = {name: range_of(sub, cfg.range) for name, sub in mission.series.items()}
    if not any(len(part.values) for part in parts.values()):  # as for one grid
        raise ESAInputError(nothing_to_score(cfg.range), path=cfg.data.root)
    for name, part in parts.items():
        refuse_without_reading(mission.series[name], part, cfg.range, cfg.data.root)
    pieces = []
    for name, part in progress(parts.items(), description="scoring series", total=len(parts)):
        # each recording alone (the Telemanom protocol); unrepresentable readings alarm
        pieces.append((name, part, score_in_chunks(detector, part, 0)))
    frames = [
        pd.DataFrame({"channel": name, "id": row_ids(part), "is_anomaly": rs.alarm})
        for name, part, rs in pieces
    ]
    with atomic_path(out / "submission.csv") as tmp:
        pd.concat(frames, ignore_index=True).astype({"is_anomaly": int}).to_csv(tmp, index=False)
    metrics: dict[str, float] = {}
    if any(has_labeled_events(part) for _, part, _ in pieces):  # else no keys, never 0.0
        metrics = report_for(concatenate_series(mission, pieces), cfg.range)
        write_json_atomic(out / "metrics.json", metrics)
    _write_series_block_report(out, pieces, int(cfg.report_block))
    scored = [
        _scored_grid(detector, mission.series[name], part, rs, cfg, series=name)
        for name, part, rs in pieces
    ]
    grids, references = [g for g, _ in scored], [r for _, r in scored]
    _write_report(out, detector, mission, grids, references, cfg, metrics)
    # any series' labels count (unscored_reason's NO_LABELED_EVENT over the labeled series)
    labeled = [part for _, part, _ in pieces if part.n_rows and has_labels(part)]
    reason = no_event_reason(labeled) if labeled else "no labels"
    print_metrics(metrics, cfg.range, ("EWraw_F_0.50", "EW_F_0.50"), reason)
    return metrics


def print_metrics(
    metrics: dict[str, float], prefix: str, names: tuple[str, ...], reason: str | None
) -> None:
    """The headline ``<prefix>/<name>`` metrics, or that the range was not scored and why
    (``reason``, ``unscored_reason``'s)."""
    for name in names:
        key = f"{prefix}/{name}"
        if key in metrics:
            print(f"  {key:<22} {metrics[key]:.4f}")
    if not metrics:
        print(f"  {prefix}: not scored ({reason or 'no labels'})")


def _scored_grid(
    detector: Any, whole: Mission, part: Mission, scores: RowScores, cfg: Any, series: str = ""
) -> tuple[Any, Any]:
    """(the report's ``ScoredGrid`` of one scored grid, its nominal reference): the reference
    scores the validation range of ``whole``, the single-grid mission ``part`` comes from."""
    from esa_lightning.reporting.figures import ScoredGrid
    from esa_lightning.reporting.reference import reference_for

    timestamps = np.asarray(part.timestamps) if part.timestamps is not None else row_ids(part)
    reference = reference_for(detector, whole, int(cfg.chunk_rows), detector.info)
    intervals = intervals_for(part, scores, reference, series)
    grid = ScoredGrid(series or whole.name, part, scores, timestamps, intervals, series)
    return grid, reference


def intervals_for(part: Mission, scores: RowScores, reference: Any = None, series: str = "") -> Any:
    """The alarm intervals of ``scores`` on ``part`` (intervals.csv), attributed and calibrated
    against ``reference`` (``reporting.reference``; None: attribution by raw values against the
    range's own spread, no confidence)."""
    from esa_lightning.reporting.outputs import alarm_intervals

    timestamps = np.asarray(part.timestamps) if part.timestamps is not None else row_ids(part)
    return alarm_intervals(timestamps, scores, part, reference, series=series)


def _write_report(
    out: Path,
    detector: Any,
    mission: Mission,
    grids: list[Any],
    references: list[Any],
    cfg: Any,
    metrics: dict[str, float],
) -> Any:
    """intervals.csv, alarms/*.png and index.html (``reporting.outputs.write_report``)."""
    from esa_lightning.reporting.outputs import run_summary, write_report

    info = detector.info or {}
    name = str(info.get("experiment") or "detector")
    classes = ", ".join(type(m).__name__ for m in detector.components.values())
    if detector.combiner is not None:
        describe = getattr(detector.combiner, "describe", None)  # a user's combiner may lack it
        classes += " + " + (describe() if callable(describe) else type(detector.combiner).__name__)
    source = f"{cfg.range} range of {cfg.data.root}"
    detector_name = f"{name} ({classes})"
    summary = run_summary(detector_name, str(cfg.ckpt), mission.name, grids, references, source)
    return write_report(out, grids, summary, metrics or None, max_figures=int(cfg.max_figures))


def _write_series_block_report(out: Path, pieces: list[Any], block: int) -> None:
    """report.csv of independent series: each series' blocks, with a leading channel column
    (as submission.csv has)."""
    import pandas as pd

    from esa_lightning.io import atomic_path
    from esa_lightning.reporting.events import REPORT_COLUMNS, window_report

    frames = [
        window_report(rs.alarm, row_ids(part), block=block).assign(channel=name)
        for name, part, rs in pieces
    ]
    with atomic_path(out / "report.csv") as tmp:
        pd.concat(frames, ignore_index=True)[["channel", *REPORT_COLUMNS]].to_csv(tmp, index=False)
