"""The channel ensembles' record of the rows their segment features were built on in training
(``fit_rows.RecordsRows``): ``train_rows``, the training range's rows (the kernels are mined and
the features standardised on its pooled rows), and ``feature_rows``, every row featurised.

Training refuses a training range shorter than one pooled row
(``SegmentDataModule.check_training_rows``), so a loaded ``window``, ``step`` and ``pool`` whose
pooled row (``window + (pool - 1) x step`` rows) is longer than ``train_rows`` is one training
never used; a pooled row starts every ``pool_stride x step`` rows, so one longer than
``feature_rows`` was never applied in training (it made one pooled row). An edited pool_stride
of 10**9 loaded and scored one pooled row per range. 0 (an artifact written before the
records): not checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from esa_lightning.data.mission import Mission
from esa_lightning.postprocessing.fit_rows import RecordsRows
from esa_lightning.settings import check_setting

#: the segment feature sizes, checked with train.py's rules
FEATURE_SIZES = ("window", "step", "pool", "pool_stride")


class FeatureRows(RecordsRows):
    """``train_rows`` and ``feature_rows`` of a channel ensemble (a mixin of an ``nn.Module``):
    registered by ``register_feature_rows``, set from the training mission, checked at load
    (``feature_rows_problem``)."""

    ROW_RECORDS = ("train_rows", "feature_rows")

    def register_feature_rows(self: Any, sizes: Mapping[str, Any]) -> None:
        """Check ``sizes``' window, step, pool and pool_stride with train.py's rules (a step of
        -1 loaded, to end in an error naming no file once scoring began) and register the
        records at 0."""
        for key in FEATURE_SIZES:
            check_setting(f"model.{key}", sizes[key])
        for name in self.ROW_RECORDS:
            self.register_buffer(name, torch.zeros((), dtype=torch.int64))

    def record_feature_rows(self: Any, mission: Mission) -> None:
        """Record ``mission``'s (the training mission's) training range and all its rows."""
        self.train_rows.fill_(int(mission.val_start))
        self.feature_rows.fill_(len(mission.values))

    def feature_rows_problem(self: Any, sizes: Mapping[str, Any]) -> str | None:
        """A pooled row of ``sizes`` longer than the recorded training rows, or a pooled row
        stride longer than the rows featurised in training, or None."""
        from esa_lightning.data.transforms.segments import min_samples

        train, rows = int(self.train_rows), int(self.feature_rows)
        window, step, pool, stride = (int(sizes[key]) for key in FEATURE_SIZES)
        need = min_samples(window, step, pool)
        if train > 0 and need > train:
            return (f"one pooled row of window {window}, step {step} and pool {pool} needs "
                    f"{need} rows (window + (pool - 1) x step), more than the {train} training "
                    "rows it was fitted on (train_rows): training never made such a row")
        if rows > 0 and stride * step > rows:
            return (f"the pooled rows start every {stride * step} rows (pool_stride {stride} x "
                    f"step {step}), more than the {rows} rows featurised in training "
                    "(feature_rows): training never applied that stride")
        return None
