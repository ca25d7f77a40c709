"""The calibrated confidence: the fraction of nominal reference scores below a score."""

from __future__ import annotations

import numpy as np

from esa_lightning.postprocessing.confidence import confidence, reference_sample, stored_reference


def test_confidence_is_the_fraction_of_reference_scores_strictly_below():
    reference = np.array([1.0, 2.0, 3.0, 4.0])
    got = confidence(np.array([0.5, 1.0, 2.5, 4.0, 9.0, np.nan]), reference)
    np.testing.assert_array_equal(got[:5], [0.0, 0.0, 0.5, 0.75, 1.0])
    assert np.isnan(got[5])


def test_without_a_reference_confidence_is_nan():
    assert np.isnan(confidence(np.array([1.0, 2.0]), None)).all()
    assert stored_reference({}) is None and stored_reference({"calibration": None}) is None


def test_reference_sample_keeps_the_distribution_in_quantiles():
    scores = np.random.default_rng(0).normal(size=100_000)
    sample = reference_sample(np.append(scores, np.nan), size=1001)
    assert len(sample) == 1001 and (np.diff(sample) >= 0).all()
    probe = np.array([-1.0, 0.0, 1.645])
    np.testing.assert_allclose(
        confidence(probe, sample), [(scores < p).mean() for p in probe], atol=2e-3
    )
    np.testing.assert_array_equal(reference_sample(np.array([3.0, 1.0])), [1.0, 3.0])


class ForecastsAfterWarmUp:
    """A forecaster's scoring: rows [0, WARM) of whatever it is handed have no forecast and
    score 0 (as a window forecaster's first rows), every later row 1 + its value's magnitude."""

    WARM = 10
    context_rows = WARM
    alignment_rows = 1

    def score_rows(self, mission):
        from esa_lightning.models.base import RowScores

        score = 1.0 + np.abs(np.asarray(mission.values, dtype=np.float32)[:, 0])
        score[: self.WARM] = 0.0
        return RowScores(score, np.zeros(len(score), dtype=np.uint8))


def test_independent_series_validation_reference_is_scored_with_its_history():
    """Each series' validation range was scored alone, so its first rows (no forecast: score 0)
    entered the nominal reference as if they were nominal scores: a fifth of the reference
    was 0 (on NASA MSL, 229 of its 1001 quantiles), and every alarm's confidence rose."""
    from esa_lightning.runtime.calibration import calibration_record
    from tests.helpers import two_series_mission

    record = calibration_record(ForecastsAfterWarmUp(), two_series_mission(), chunk_rows=0)
    assert record["source"] == "validation"
    assert record["n_rows"] == 40 + 40  # every nominal validation row of both series
    assert min(record["reference_scores"]) >= 1.0
