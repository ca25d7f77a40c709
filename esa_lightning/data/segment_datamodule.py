"""Pooled segment features for the channel ensemble (reference pipeline A, §4.1-§4.4).

Per channel: window features (24) and shapelet responses (2K, kernels mined on the training range
only) are pooled over ``pool`` windows (max and min of each) into rows. Every channel shares the
mission grid, so pooled row r covers the same samples for every channel and the rows stack into
X [C, R, F]. Standardisation statistics come from training rows only; fold masks are built per
channel from that channel's own count of training rows (§4.4, avoiding the reference defect of
computing masks from one channel and applying them to all).

Row splits follow the mission: a pooled row is *train* when its last sample lies before
``val_start``, *val* when it lies wholly in [val_start, test_start), *test* when it starts at or
after ``test_start``; rows straddling a split point belong to none (split -1) and are never
trained on. Each range's rows carry that range's labels (``split_row_labels``): the mission's own
mark the last row before a split point for an event of the next range lying between the two
rows, which the range ending there does not (``mission.edge_labels``).

Per-channel work (shapelet mining, featurisation) runs in ``n_jobs`` joblib processes; the
results come back in channel order, so the features do not depend on ``n_jobs``. Under DDP every
rank builds the same full feature set (no sharding of the extraction): the post-training heads
need all rows on every rank, and the distributed sampler shards only the training batches.

Final folds (§4.4 ``mask1``): one datamodule serves one final fold (``fold``); train one model
per fold and combine their outputs with ``esa_lightning.postprocessing.peaks.max_over_folds``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from torch.utils.data import DataLoader, Dataset

from esa_lightning.data import folds
from esa_lightning.data.array_store import release_pages
from esa_lightning.data.datamodule import MissionDataModule, true_runs
from esa_lightning.data.mission import Mission, edge_labels
from esa_lightning.data.transforms import shapelets
from esa_lightning.data.transforms.segments import (
    SPLIT_TEST,
    SPLIT_TRAIN,
    SPLIT_VAL,
    featurise_channel,
    featurise_values,
    min_samples,
    n_pooled_features,
    pad_kernels,
    pooled_feature_names,
    pooled_labels,
    pooled_spans,
    row_splits,
    run_ids,
)
from esa_lightning.errors import ESAInputError
from esa_lightning.progress import progress
from esa_lightning.settings import check_setting


def split_row_labels(mission: Mission) -> dict[int, np.ndarray]:
    """uint8 [C] per row: the codes the last row before each split point (``val_start``,
    ``test_start``) holds in the range ending there, where they differ from the mission's own
    (an event of the next range between the two rows marks it in the mission's labels only)."""
    n, out = len(mission.values), {}
    for split in sorted({mission.val_start, mission.test_start}):
        if mission.labels is not None and 0 < split < n:
            row = np.asarray(edge_labels(mission, split - 1, split))[0]
            if not np.array_equal(row, mission.labels[split - 1]):
                out[split - 1] = row
    return out


def _range_column(mission: Mission, ch: int, fixes: dict[int, np.ndarray]) -> np.ndarray:
    """Channel ``ch``'s labels, each range's rows as that range holds them (``fixes``)."""
    column = mission.labels[:, ch]
    if any(column[row] != codes[ch] for row, codes in fixes.items()):
        column = np.array(column)
        for row, codes in fixes.items():
            column[row] = codes[ch]
    return column


def _fit_channel(x, labels, val_start, *, n_kernels, min_len, max_len, seed, opts, mining):
    """Mine kernels on the training range of one channel, then featurise its whole series.

    ``labels``: the channel's label codes (anomaly = 1 or 2). ``mining``: extra
    ``mine_shapelets`` options (e.g. ``max_candidates``, ``nominal_segments``).
    """
    anomaly = np.isin(labels[:val_start], (1, 2))  # the training range's
    kernels: list[np.ndarray] = []
    if n_kernels > 0 and anomaly.any():
        kernels = shapelets.mine_shapelets(
            x[:val_start],
            anomaly,
            None,
            n_kernels=n_kernels,
            min_len=min_len,
            max_len=max_len,
            seed=seed,
            **mining,
        )
    kernels = [np.asarray(k, dtype=np.float32).ravel() for k in list(kernels)[:n_kernels]]
    return kernels, featurise_channel(x, kernels, n_kernels=n_kernels, **opts)


# ------------------------------------------------------------------------------ data loading
class _RowIndex(Dataset):
    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> int:
        return int(self.rows[i])


class _GatherRows:
    """Collate a list of row indices into one batch dict of tensors sliced on the row axis."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors

    def __call__(self, rows: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(sorted(rows), dtype=torch.long)
        out = {
            k: v.index_select(1 if k == "x" else v.dim() - 1, idx) for k, v in self.tensors.items()
        }
        out["rows"] = idx
        return out


class SegmentDataModule(MissionDataModule):
    """Pooled per-channel rows of one mission, fold masks and fitted kernels / scaler.

    After ``setup()``: ``X`` float32 [C, R, F] (standardised), ``y`` [C, R] (channel labels:
    anomaly or rare event), ``y_event`` [R] (any channel), ``split`` [R], ``train_mask``
    bool [C, E, I, R] (rows of each internal learner), ``eval2_mask`` [C, E, R] (meta rows),
    ``eval1_mask`` [C, R] (the final fold's held-out rows), ``event_rows`` [R] (rows every channel
    holds out: where the event head trains), ``event_id`` [R], ``spans`` [R, 2], ``kernels``
    (per channel list), ``feat_mean`` / ``feat_std`` [C, F].
    """

    DATAMODULE_KIND = "segments"

    def __init__(
        self,
        mission: Mission,
        *,
        window: int = 50,
        step: int = 10,
        pool: int = 200,
        pool_stride: int = 20,
        n_kernels: int = 10,
        min_kernel_len: int = 30,
        max_kernel_len: int = 40,
        shapelet_options: dict[str, Any] | None = None,
        n_final: int = 2,
        fold: int = 0,
        n_external: int = 3,
        n_internal: int = 5,
        batch_rows: int = 512,
        seed: int = 0,
        n_jobs: int = 1,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if mission.is_multiseries:
            raise ESAInputError(
                "the channel ensemble needs one shared grid; this mission holds independent "
                "series (e.g. NASA): use a per-series model",
                value=mission.name,
            )
        if mission.labels is None:
            raise ESAInputError(
                "the channel ensemble trains on labels; none loaded", value=mission.name
            )
        for name, count in dict(n_final=n_final, n_external=n_external, n_internal=n_internal,
                                fold=fold).items():
            check_setting(name, count)  # a zero count crashed the model's constructor
        if not fold < n_final:
            raise ESAInputError(f"fold must be in [0, {n_final})", column="fold", value=fold)
        if n_kernels > 0 and not 1 <= min_kernel_len <= max_kernel_len <= window:
            raise ESAInputError(  # refused here, not by the mining once training began
                f"datamodule.min_kernel_len={min_kernel_len}, datamodule.max_kernel_len="
                f"{max_kernel_len}, datamodule.window={window}: the shapelet kernels need 1 <= "
                "min_kernel_len <= max_kernel_len <= window (each is matched inside one window)"
            )
        self.mission = mission
        self.window, self.step, self.pool, self.pool_stride = window, step, pool, pool_stride
        self.n_kernels, self.min_kernel_len, self.max_kernel_len = (
            n_kernels,
            min_kernel_len,
            max_kernel_len,
        )
        self.shapelet_options = dict(shapelet_options or {})
        self.n_final, self.fold = n_final, fold
        self.n_external, self.n_internal = n_external, n_internal
        self.batch_rows, self.seed, self.n_jobs, self.num_workers = (
            batch_rows,
            seed,
            n_jobs,
            num_workers,
        )
        groups = mission.channels["Group"].astype(str).fillna("none").to_numpy()
        codes, uniques = pd.factorize(groups, sort=True)
        self.group_index = codes.astype(np.int64)
        self.group_names = [str(u) for u in uniques]
        self._fitted = False

    # ------------------------------------------------------------------ fitted state
    @property
    def feature_options(self) -> dict[str, int]:
        return dict(
            window=self.window, step=self.step, pool=self.pool, pool_stride=self.pool_stride
        )

    @property
    def feature_names(self) -> list[str]:
        """Per-channel pooled feature names (the same for every channel)."""
        return pooled_feature_names(self.n_kernels)

    @property
    def dims(self) -> dict[str, Any]:
        """Constructor arguments the ensemble models need (plain Python types)."""
        return dict(
            n_channels=len(self.mission.channel_names),
            n_features=n_pooled_features(self.n_kernels),
            group_index=[int(g) for g in self.group_index],
            n_external=self.n_external,
            n_internal=self.n_internal,
            channel_names=list(self.mission.channel_names),
            n_kernels=self.n_kernels,
            max_kernel_len=self.max_kernel_len,
            **self.feature_options,
        )

    def prepare_data(self) -> None:  # data arrive in memory: nothing to download
        pass

    def check_training_rows(self, key: str = "datamodule") -> None:
        """Refuse a training range shorter than one pooled row; ``key``: where the options
        live in the run's config (``components.<name>.datamodule`` in ``esa_full``)."""
        need = min_samples(self.window, self.step, self.pool)
        if self.mission.val_start < need:
            raise ESAInputError(
                f"the training range has {self.mission.val_start} samples; one pooled row needs "
                f"{need} ((pool - 1) x step + window: {key}.pool={self.pool}, "
                f"{key}.step={self.step}, {key}.window={self.window}); lower them",
                column=f"{key}.pool",
                value=self.pool,
            )

    def setup(self, stage: str | None = None) -> None:
        if self._fitted:
            return
        m = self.mission
        values = np.asarray(m.values, dtype=np.float32)
        t, c = values.shape
        self.check_training_rows()
        opts = self.feature_options
        fixes = split_row_labels(m)  # each range's rows: that range's labels
        jobs = Parallel(n_jobs=self.n_jobs, return_as="generator")(
            delayed(_fit_channel)(
                values[:, ch],
                _range_column(m, ch, fixes),
                m.val_start,
                n_kernels=self.n_kernels,
                min_len=self.min_kernel_len,
                max_len=self.max_kernel_len,
                seed=self.seed,
                opts=opts,
                mining=self.shapelet_options,
            )
            for ch in range(c)
        )
        # one [C, R, F] float32 array filled channel by channel and standardised in place: no
        # list of per-channel arrays beside it, no float64 or whole-array temporaries
        self.kernels, self._rows_per_channel, raw = [], [], None
        for ch, (kernels, feats) in enumerate(progress(jobs, "shapelets + segment features",
                                                       total=c)):
            if raw is None:
                raw = np.empty((c, *feats.shape), dtype=np.float32)
            self.kernels.append(kernels)
            self._rows_per_channel.append(len(feats))
            if feats.shape != raw.shape[1:]:
                raise ESAInputError(
                    f"channels gave different pooled row counts {feats.shape[0]} and "
                    f"{raw.shape[1]}",
                    value=m.name,
                )
            raw[ch] = feats
        release_pages(values)  # a memory-mapped mission's pages: read once, not needed now
        self.spans = np.asarray(pooled_spans(t, **self._span_opts()), dtype=np.int64)
        self.split = row_splits(self.spans, m.val_start, m.test_start)
        train_rows = self.split == SPLIT_TRAIN
        self.feat_mean = np.empty((c, raw.shape[2]), dtype=np.float32)
        self.feat_std = np.empty((c, raw.shape[2]), dtype=np.float32)
        for ch in range(c):
            fit = raw[ch, train_rows].astype(np.float64)
            std = fit.std(axis=0)
            self.feat_mean[ch] = fit.mean(axis=0)
            self.feat_std[ch] = np.where(std > 1e-8, std, 1.0)
            raw[ch] -= self.feat_mean[ch]
            raw[ch] /= self.feat_std[ch]
        self.X = torch.from_numpy(raw)

        y = np.stack([pooled_labels(np.isin(_range_column(m, ch, fixes), (1, 2)), **opts)
                      for ch in range(c)])
        anomalous = m.is_anomaly
        for row, codes in fixes.items():
            anomalous[row] = np.isin(codes, (1, 2)).any()
        y_event = pooled_labels(anomalous, **opts)
        self.y = torch.from_numpy(y)
        self.y_event = torch.from_numpy(y_event)
        self.event_id = torch.from_numpy(run_ids(y_event))
        self._build_masks(c, train_rows)
        self._fitted = True

    def _span_opts(self) -> dict[str, int]:
        return dict(window=self.window, step=self.step, pool=self.pool, stride=self.pool_stride)

    def _build_masks(self, n_channels: int, train_rows: np.ndarray) -> None:
        """Fold masks per channel from that channel's own count of training rows (§4.4)."""
        r, e_n, i_n, f = len(train_rows), self.n_external, self.n_internal, self.fold
        train = np.zeros((n_channels, e_n, i_n, r), dtype=bool)
        eval2 = np.zeros((n_channels, e_n, r), dtype=bool)
        eval1 = np.zeros((n_channels, r), dtype=bool)
        rows = np.flatnonzero(train_rows)
        events = self.y_event.numpy()[rows] > 0.5
        for ch in range(n_channels):
            n_ch = int(train_rows[: self._rows_per_channel[ch]].sum())  # this channel's own count
            fm = folds.fold_masks(
                n_ch,
                n_final=self.n_final,
                n_external=e_n,
                n_internal=i_n,
                seed=self.seed,
                labels=events[:n_ch],  # held-out rows with both classes (folds.outer_end)
            )
            eval1[ch, rows] = fm.mask1[f]
            for e in range(e_n):
                eval2[ch, e, rows] = fm.eval2[f][e]
                for i in range(i_n):
                    train[ch, e, i, rows] = fm.train(f, e, i)
        self.train_mask = torch.from_numpy(train)
        self.eval2_mask = torch.from_numpy(eval2)
        self.eval1_mask = torch.from_numpy(eval1)
        self.event_rows = torch.from_numpy(eval1.all(axis=0))

    def label_fit_end(self) -> int:
        """The end of the last pooled training row outside the final fold's held-out rows:
        every learner but the event head read the labels before it (the held-out fold, the
        last rows of the training range, and the validation range are out of sample)."""
        self.setup()
        in_sample = self._in_sample_rows()
        if not in_sample.any():
            return 0
        return int(self.spans[in_sample, 1].max()) + 1

    def _in_sample_rows(self) -> np.ndarray:
        return (self.split == SPLIT_TRAIN) & ~self.event_rows.numpy()

    def label_free_ranges(self) -> list[tuple[int, int]]:
        """The samples of the training and validation ranges that no in-sample pooled row
        covers: the final fold's held-out block (wherever ``folds.outer_end`` put it) and what
        follows the last in-sample row."""
        self.setup()
        n = int(self.mission.test_start)
        read = np.zeros(n + 1, dtype=np.int64)
        for a, b in self.spans[self._in_sample_rows()]:
            read[min(a, n)] += 1
            read[min(b + 1, n)] -= 1
        return true_runs(np.cumsum(read[:n]) == 0)

    # ---------------------------------------------------------------- featurise new data
    def featurise(self, mission: Mission) -> tuple[np.ndarray, np.ndarray]:
        """(X float32 [C, R, F], spans [R, 2]) of any mission range, fitted kernels and stats."""
        self.setup()
        values = np.asarray(mission.values, dtype=np.float32)
        x = featurise_values(
            values,
            self.kernels,
            self.feat_mean,
            self.feat_std,
            n_kernels=self.n_kernels,
            n_jobs=self.n_jobs,
            **self.feature_options,
        )
        return x, self.pooled_spans(len(values))

    def pooled_spans(self, n_samples: int) -> np.ndarray:
        """int64 [R, 2]: first and last sample (inclusive) of every pooled row."""
        return np.asarray(pooled_spans(n_samples, **self._span_opts()), dtype=np.int64)

    def kernel_buffers(self) -> tuple[np.ndarray, np.ndarray]:
        """Kernels as (float32 [C, K, max_len], int64 lengths [C, K]) for model buffers."""
        self.setup()
        return pad_kernels(self.kernels, self.n_kernels, self.max_kernel_len)

    # ------------------------------------------------------------------------ loaders
    def batch_tensors(self) -> dict[str, torch.Tensor]:
        """Every per-row tensor; the row axis is last except for ``x`` [C, R, F]."""
        self.setup()
        return dict(
            x=self.X,
            y=self.y,
            y_event=self.y_event,
            train_w=self.train_mask.float(),
            eval2_w=self.eval2_mask.float(),
            event_w=self.event_rows.float(),
            event_id=self.event_id,
        )

    def rows_of(self, split: int) -> np.ndarray:
        self.setup()
        return np.flatnonzero(self.split == split)

    def _loader(self, rows: np.ndarray, shuffle: bool, validation: bool = False) -> DataLoader:
        """Batches of ``rows``; ``validation``: this process's share of them under DDP."""
        items = _RowIndex(rows)
        return DataLoader(
            items,
            batch_size=self.batch_rows,
            shuffle=shuffle,
            sampler=self.validation_sampler(items) if validation else None,
            collate_fn=_GatherRows(self.batch_tensors()),
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.rows_of(SPLIT_TRAIN), shuffle=True)

    def monitor_rows(self) -> np.ndarray:
        """Rows the validation loss (the checkpoint and early-stopping monitor) is computed on:
        the validation range, or, where its pooled rows hold one class only (a loss over one
        class rewards a constant output, and the untrained epoch 0 wins), the validation range
        and the training rows every channel's learners hold out (the final fold), the other
        rows no learner trains on."""
        self.setup()
        val = self.split == SPLIT_VAL
        if folds.both_classes(self.y_event.numpy()[val] > 0.5):
            return np.flatnonzero(val)
        held_out = self.event_rows.numpy() & (self.split == SPLIT_TRAIN)
        return np.flatnonzero(held_out | val)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.monitor_rows(), shuffle=False, validation=True)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.rows_of(SPLIT_TEST), shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(np.arange(len(self.split)), shuffle=False)
