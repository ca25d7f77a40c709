"""The Python API: a saved detector scores a pandas DataFrame in raw units.

    from esa_lightning import Detector
    detector = Detector.load("outputs/gru_ae/<run>/detector")
    result = detector.predict(df)   # result.rows: score, confidence, alarm; result.intervals

``predict`` repeats the training data's preprocessing recorded in the artifact
(``data.frame``), then scores and builds the intervals with the very functions ``predict.py``
uses (``jobs.predict.score_part`` / ``intervals_for``): the same data gives the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from esa_lightning import artifact
from esa_lightning.data import load_mission
from esa_lightning.data.frame import TIMEZONE_KEY, InputWarning, frame_to_mission
from esa_lightning.data.mission import Mission
from esa_lightning.postprocessing.confidence import confidence
from esa_lightning.reporting.reference import stored_nominal_reference

CHUNK_ROWS = 1_000_000  # predict.py's default chunk_rows


@dataclass
class Prediction:
    """What ``Detector.predict`` returns.

    rows: one row per grid row (index ``timestamp``) or id (index ``id``): ``score`` (the raw
    anomaly score), ``confidence`` (fraction of nominal validation scores below the score; NaN
    for a detector without a stored reference) and ``alarm`` (0/1, as ``submission.csv``).
    intervals: one row per alarm, as ``intervals.csv`` (start, end, channels: the channels it
    alarmed, score, top_channels, ..., deviating_channels, raised_by), with the rows it spans
    (start_index, end_index) and its peak's confidence.
    mission: the preprocessed input the detector scored (values on the grid, differenced
    counters), e.g. to plot an interval. warnings: the input warnings issued.
    """

    rows: pd.DataFrame
    intervals: pd.DataFrame
    mission: Mission
    warnings: list[str] = field(default_factory=list)

    @property
    def n_alarms(self) -> int:
        return len(self.intervals)


class Detector(artifact.Detector):
    """A fitted detector (``Detector.load(folder)``) that scores DataFrames in raw units."""

    def predict(
        self, frame: pd.DataFrame, *, strict: bool = False, chunk_rows: int = CHUNK_ROWS
    ) -> Prediction:
        """Score every row of ``frame`` (see ``esa_lightning.data.frame`` for the layout).

        Missing columns, wrong dtypes and unusable indexes raise ``ESAInputError`` naming the
        column; NaN gaps, grid holes and counters that look differenced the wrong way issue an
        ``InputWarning`` naming the column and the repair (``strict=True``: an error instead).
        """
        from esa_lightning.jobs.predict import intervals_for, score_part

        mission, messages = frame_to_mission(frame, self.schema, strict=strict)
        scores = score_part(self, mission, int(chunk_rows))
        reference, nominal = stored_nominal_reference(self.info)
        stamps = np.asarray(mission.timestamps)
        name = "timestamp" if stamps.dtype.kind == "M" else "id"
        timezone = mission.meta.get(TIMEZONE_KEY)
        rows = pd.DataFrame(
            {
                "score": np.asarray(scores.score, dtype=np.float32),
                "confidence": confidence(scores.score, reference),
                "alarm": np.asarray(scores.alarm).astype(int),
            },
            index=_in_zone(pd.Index(stamps, name=name), timezone),
        )
        # attributed and calibrated from the reference stored at training, as predict.py does
        intervals = intervals_for(mission, scores, nominal)
        if nominal is None:  # an artifact without per-channel spreads: confidence only
            intervals["confidence"] = confidence(intervals["score"].to_numpy(), reference)
        for column in ("start", "end") if timezone is not None else ():  # as the rows
            zoned = _in_zone(pd.DatetimeIndex(intervals[column]), timezone)
            intervals[column] = pd.Series(zoned, index=intervals.index)
        return Prediction(rows, intervals, mission, messages)


def _in_zone(index: pd.Index, timezone: object) -> pd.Index:
    """UTC times given back in ``timezone`` (the frame's); naive times and ids as they are."""
    if timezone is None or not isinstance(index, pd.DatetimeIndex) or index.tz is not None:
        return index
    return index.tz_localize("UTC").tz_convert(timezone)


__all__ = ["Detector", "InputWarning", "Prediction", "load_mission"]
