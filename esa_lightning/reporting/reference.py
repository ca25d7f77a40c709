"""What nominal telemetry looks like to a fitted detector: the yardstick of the report.

An alarm's score, and each channel's part in it, mean little on their own: a raw error of 1.25
may be ordinary for one detector and extreme for another, and a differenced counter's error is
a hundred times a smooth channel's. The report therefore measures both against the detector's
own output on label-free rows it was not scored on at test time: the end of the VALIDATION range
(never the test range). ``NominalReference`` holds

- ``scores``: the detector's row scores there (``postprocessing.confidence`` turns a score into
  the fraction of them it exceeds);
- per channel, a centre and a spread of the detector's per-channel scores there (when the
  detector reports them), and of the raw values over the whole fit range (training and
  validation): see ``attribution``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from esa_lightning.data.mission import Mission, nominal_rows
from esa_lightning.models.base import RowScores, Scorer, context_start
from esa_lightning.postprocessing.confidence import CALIBRATION_KEY
from esa_lightning.runtime.chunks import score_in_chunks

log = logging.getLogger("esa_lightning")

#: at most this many rows (the end of the validation range) make the reference
MAX_REFERENCE_ROWS = 100_000
#: the spread of a channel is this quantile of its deviation from its median
SPREAD_QUANTILE = 0.99


@dataclass
class ChannelSpread:
    """Per-channel centre (median) and spread (``SPREAD_QUANTILE`` of the deviation from the
    median) of nominal rows; ``two_sided``: deviations below the centre count too (raw values),
    else only excess above it (scores, where higher is more anomalous)."""

    centre: np.ndarray
    spread: np.ndarray
    two_sided: bool

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """float64 [N, C]: deviation of ``x`` [N, C] from the centre in units of the spread."""
        dev = np.asarray(x, dtype=np.float64) - self.centre[: x.shape[1]]
        dev = np.abs(dev) if self.two_sided else dev
        return dev / self.spread[: x.shape[1]]


def channel_spread(x: np.ndarray, two_sided: bool) -> ChannelSpread:
    """``ChannelSpread`` of nominal rows ``x`` [N, C] (NaN ignored).

    The spread is the 99th percentile of the deviation from the median: a channel with rare
    large nominal excursions (a counter, a mode flag) gets a wide spread, a smooth one a narrow
    spread. Where that is 0 (a channel nearly constant in nominal data) the standard deviation
    of the deviation stands in, and a floor keeps a constant channel finite.
    """
    x = np.asarray(x, dtype=np.float64)
    centre = np.nan_to_num(np.nanmedian(x, axis=0)) if len(x) else np.zeros(x.shape[1])
    dev = x - centre
    dev = np.abs(dev) if two_sided else np.maximum(dev, 0.0)
    if len(x):
        # between two +inf deviations numpy's quantile is inf - inf (NaN, a RuntimeWarning):
        # the deviation there is +inf, the highest (nan_to_num: the largest float); the std of
        # deviations that large (a channel whose median score is inf) overflows to inf alike
        with np.errstate(invalid="ignore", over="ignore"):
            spread = np.nanquantile(dev, SPREAD_QUANTILE, axis=0)
            fallback = np.nan_to_num(np.nanstd(np.where(np.isinf(dev), np.nan, dev), axis=0))
        spread = np.nan_to_num(np.where(np.isnan(spread) & np.isposinf(dev).any(axis=0),
                                        np.inf, spread))
    else:
        spread = fallback = np.zeros(x.shape[1])
    spread = np.where(spread > 0, spread, fallback)
    floor = 1e-6 * np.maximum(1.0, np.abs(centre))
    return ChannelSpread(centre, np.maximum(spread, floor), two_sided)


def _sorted_finite(x: np.ndarray) -> np.ndarray:
    return np.sort(x[np.isfinite(x)])


@dataclass
class NominalReference:
    """A detector's output on nominal rows of one grid (see the module docstring); ``scores``
    sorted and finite, as ``postprocessing.confidence`` reads them."""

    scores: np.ndarray
    channel_scores: ChannelSpread | None
    values: ChannelSpread
    rows: int
    source: str


def reference_start(mission: Mission, max_rows: int = MAX_REFERENCE_ROWS) -> int:
    """The first row of the reference of a single-grid ``mission``: the last ``max_rows``
    rows of its validation range."""
    return max(mission.val_start, mission.test_start - max_rows)


def nominal_reference(
    scorer: Scorer,
    mission: Mission,
    chunk_rows: int = 0,
    max_rows: int = MAX_REFERENCE_ROWS,
    val_scores: RowScores | None = None,
) -> NominalReference | None:
    """The reference of a single-grid ``mission`` (the whole mission, not its test part): the
    last ``max_rows`` rows of its validation range, scored with the detector's context before
    them, label-free rows only. None when the validation range is empty or wholly labeled.

    ``val_scores``: the detector's scores of the whole validation range, per-channel scores
    from ``reference_start`` on at least (``train.py`` scores that range once, for its metrics
    and this reference); None: the reference rows are scored here."""
    lo = reference_start(mission, max_rows)
    stop = mission.test_start
    if stop <= lo:
        log.info("no validation rows: the report gives no confidence")
        return None
    if val_scores is None:
        begin = context_start(lo, int(scorer.context_rows), max(1, int(scorer.alignment_rows)))
        part = mission.slice(begin, stop)
        scored = score_in_chunks(scorer, part, chunk_rows, keep_channel_scores="all")
    else:
        begin, scored = mission.val_start, val_scores
    keep = slice(lo - begin, None)
    nominal = nominal_rows(mission.slice(lo, stop))
    if not nominal.any():
        log.info("no label-free validation row: the report gives no confidence")
        return None
    channel = scored.channel_scores
    return NominalReference(
        scores=_sorted_finite(np.asarray(scored.score[keep], dtype=np.float64)[nominal]),
        channel_scores=None
        if channel is None
        else channel_spread(np.asarray(channel[keep])[nominal], two_sided=False),
        values=fit_range_values(mission, max_rows),
        rows=int(nominal.sum()),
        source="validation",
    )


def fit_range_values(mission: Mission, max_rows: int = MAX_REFERENCE_ROWS) -> ChannelSpread:
    """The raw values' spread over label-free rows of the whole fit range (training and
    validation; an even sample of at most ``max_rows`` rows). Values need no scoring, so they
    take the longer range: a mode flag's nominal states may all occur in training and only one
    of them in a week of validation."""
    fit = mission.fit_range()
    step = max(1, len(fit.values) // max_rows)
    sample = np.asarray(fit.values[::step])
    nominal = nominal_rows(fit)[::step]
    return channel_spread(sample[nominal] if nominal.any() else sample, two_sided=True)




def spread_record(spread: ChannelSpread | None) -> dict | None:
    """A JSON-ready ``ChannelSpread`` (for an artifact's ``info``)."""
    if spread is None:
        return None
    return {
        "centre": spread.centre.tolist(),
        "spread": spread.spread.tolist(),
        "two_sided": spread.two_sided,
    }


def reference_record(reference: NominalReference) -> dict:
    """The per-channel parts of ``reference``, JSON-ready, to keep beside the reference
    scores in an artifact's ``info["calibration"]`` (then predict.py and the Python API
    attribute alarms without scoring validation data again)."""
    return {
        "channel_scores": spread_record(reference.channel_scores),
        "values": spread_record(reference.values),
    }


def _spread_from(record: dict | None) -> ChannelSpread | None:
    if not record:
        return None
    return ChannelSpread(
        np.asarray(record["centre"], dtype=np.float64),
        np.asarray(record["spread"], dtype=np.float64),
        bool(record["two_sided"]),
    )


def stored_nominal_reference(
    info: dict | None,
) -> tuple[np.ndarray | None, NominalReference | None]:
    """(the nominal reference scores an artifact's ``info`` holds, the whole reference when
    it also holds the per-channel spreads (``reference_record``)); None for what it lacks."""
    record = (info or {}).get(CALIBRATION_KEY) or {}
    scores = record.get("reference_scores")
    scores = None if not scores else np.asarray(scores, dtype=np.float64)
    values = _spread_from(record.get("values"))
    if scores is None or values is None:
        return scores, None
    whole = NominalReference(
        scores=scores,
        channel_scores=_spread_from(record.get("channel_scores")),
        values=values,
        rows=int(record.get("n_rows", len(scores))),
        source=str(record.get("source", "validation")),
    )
    return scores, whole


def reference_for(
    scorer: Scorer, mission: Mission, chunk_rows: int = 0, info: dict | None = None
) -> NominalReference | None:
    """The reference of a single-grid ``mission``: the artifact's (``info``) when it holds a
    whole one, else ``nominal_reference`` with the artifact's reference scores (when it holds
    them) in place of the re-scored ones, so that predict.py's confidence equals the Python
    API's, which reads the artifact's."""
    scores, whole = stored_nominal_reference(info)
    if whole is not None:
        return whole
    reference = nominal_reference(scorer, mission, chunk_rows)
    if reference is not None and scores is not None:
        reference.scores = scores
    return reference
