"""The nominal reference scores of a fitted detector, for ``postprocessing.confidence``.

Scored once at the end of training (``jobs.train.record_for_api``) and kept in the artifact's
``info["calibration"]``: evenly spaced quantiles of the scores of the validation range's
nominal rows (the training range's where validation holds none). ``train.py`` scores its
validation range once (``validation_scores``), for its metrics and for this record.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from esa_lightning.data.mission import Mission, nominal_rows
from esa_lightning.models.base import RowScores
from esa_lightning.postprocessing.confidence import reference_sample
from esa_lightning.reporting.reference import nominal_reference, reference_record, reference_start
from esa_lightning.runtime.chunks import score_in_chunks
from esa_lightning.runtime.evaluation import ScoredRange, score_range

CHUNK_ROWS = 262_144


def nominal_scores(
    scorer: Any, mission: Mission, part: str, chunk_rows: int = CHUNK_ROWS
) -> np.ndarray:
    """Scores of the nominal rows of range ``part`` (``val`` or ``train``) of every grid of
    ``mission`` (scored in chunks), each range with the rows before it in its grid as context:
    a validation range continues its training rows, and scored alone its first rows would get
    no score a window or forecast can give (a forecaster's 0)."""
    out = []
    for grid in mission.grids().values():
        start, stop = (grid.val_start, grid.test_start) if part == "val" else (0, grid.val_start)
        if stop <= start:
            continue
        rs = score_in_chunks(scorer, grid.slice(0, stop), chunk_rows, keep_channel_scores="none",
                             first_row=start)
        out.append(np.asarray(rs.score)[nominal_rows(grid.slice(start, stop))])
    return np.concatenate(out) if out else np.zeros(0)


def validation_scores(
    scorer: Any, mission: Mission, chunk_rows: int = CHUNK_ROWS
) -> ScoredRange | None:
    """The validation range of a single-grid ``mission`` scored as ``train.py``'s metrics
    score it (``chunk_rows`` at a time, the rows before it as context), with the per-channel
    scores of the nominal reference's rows (``reference_start``) kept beside the per-channel
    alarms: both the metrics and ``calibration_record`` read it. None for independent series
    or an empty validation range."""
    if mission.is_multiseries or mission.test_start <= mission.val_start:
        return None
    first = reference_start(mission) - mission.val_start
    return score_range(scorer, mission.val(), chunk_rows, keep_channel_scores="none",
                       within=mission, channel_scores_from=first)


def calibration_record(
    scorer: Any,
    mission: Mission,
    chunk_rows: int = CHUNK_ROWS,
    val_scores: RowScores | None = None,
) -> dict[str, Any] | None:
    """``{"source", "n_rows", "reference_scores"}`` from the nominal validation rows (the
    training range when validation holds none), or None when neither has a nominal row. A
    single-grid mission's record also holds the per-channel spreads the alarm attribution
    reads (``reporting.reference``), so that predict.py and ``Detector.predict`` attribute and
    calibrate alarms from the same stored reference without scoring validation again.
    ``val_scores``: the validation range's scores, already computed (``validation_scores``)."""
    if not mission.is_multiseries:
        reference = nominal_reference(scorer, mission, chunk_rows, val_scores=val_scores)
        if reference is not None and len(reference.scores):
            return {
                "source": reference.source,
                "n_rows": int(reference.rows),
                "reference_scores": reference_sample(reference.scores).tolist(),
                **reference_record(reference),
            }
    for source, part in (("validation", "val"), ("training", "train")):
        scores = nominal_scores(scorer, mission, part, chunk_rows)
        scores = scores[np.isfinite(scores)]
        if len(scores):
            return {
                "source": source,
                "n_rows": int(len(scores)),
                "reference_scores": reference_sample(scores).tolist(),
            }
    return None
