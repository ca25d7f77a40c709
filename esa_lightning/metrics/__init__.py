"""ESA-ADB metric suite: event-wise, alarming, affiliation, channel-aware, ADTQC, Kaggle, AUC-PR.

All event metrics work on sorted interval arrays (see :mod:`esa_lightning.metrics.intervals`
for how predictions map to intervals). ``full_report`` is the one call the entry points use.
"""

from esa_lightning.metrics.adtqc import adtqc
from esa_lightning.metrics.channel_aware import channel_aware_scores
from esa_lightning.metrics.event_wise import esa_scores, telemanom_scores
from esa_lightning.metrics.intervals import Intervals, samples_to_intervals
from esa_lightning.metrics.kaggle import auc_pr, kaggle_f05, kaggle_scores
from esa_lightning.metrics.report import full_report, ranking_table, score_prediction_frame

__all__ = [
    "Intervals",
    "adtqc",
    "auc_pr",
    "channel_aware_scores",
    "esa_scores",
    "full_report",
    "kaggle_f05",
    "kaggle_scores",
    "ranking_table",
    "samples_to_intervals",
    "score_prediction_frame",
    "telemanom_scores",
]
