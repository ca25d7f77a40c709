"""Sliding windows over one scaled [T, C] array: the data side of the GRU-attention autoencoder.

Why it looks like this
----------------------
Reference pipeline B materialises every window ([N, L, C], ten copies of the data for L = 10).
Here the data is scaled once into ONE float32 [T, C] array and a window is a slice of it; a batch
is gathered straight from that array, so memory stays O(T·C) whatever the window length.

- Drift (``detrend``, optional): telemetry drifts over a mission (seasons, ageing, orbit
  changes), so a scaler fitted on the training range leaves later nominal data far from anything
  the network saw. With ``detrend=N`` every value column first has its trailing (causal) mean over
  the last N rows subtracted (an expanding mean over the first rows of a range; ``detrend_stat``:
  or the mean of values clipped by the rows shortly before them, or the median); telecommand
  pulse columns are left as they are. ``model_inputs`` is the one function doing it, used by the
  datamodule and by the model's scoring alike, and ``detrend`` travels in ``dims`` into the
  model's hyper-parameters, so the two cannot disagree.
- Scaling: median / IQR per input column (RobustScaler-style), fitted on nominal training rows
  only (a row where any channel label is non-zero is left out), after detrending; IQR 0
  becomes 1 (with ``detrend``: also where the raw, un-detrended IQR is 0). ``scaling="none"``
  keeps the values as they are (median 0, IQR 1), for data its publishers already scaled: a
  step-like channel's tiny IQR would otherwise blow it up ten-thousandfold.
- Inputs: value channels followed by telecommand pulses (``inputs="values+telecommands"``) or
  the value channels alone (``inputs="values"``). The reconstruction target is always the value
  channels, i.e. the first ``n_outputs`` input columns.
- Training windows: windows inside the training range (``[0, val_start)``) holding no labeled
  sample. Validation windows: the same inside ``[val_start, test_start)``. No window crosses the
  train / validation border. A forecaster trained ``horizon`` rows ahead (Telemanom: 10) gets
  training / validation windows of ``window + horizon - 1`` rows (``span``); scoring windows
  stay ``window`` rows, the history and the one row forecast from it.
- A batch is the pair ``(x [B, L, n_inputs], series [B])``; ``series`` is the index of the series
  each window comes from (always 0 for a single-grid mission).

NASA telemanom data (``mission.is_multiseries``)
------------------------------------------------
Every series is scaled with its own median / IQR, its windows are concatenated with the other
series' windows (a window never crosses a series border) and each window comes with its series
index. The model either shares one network over all series, which learns a series embedding
(``model.per_series=false``), or keeps one network per series, as Telemanom trains one model per
channel (``model.per_series=true``, best with ``series_batches=True``: training batches of one
series each, ``SeriesBatchSampler``). The series order (``dims["series"]``) fixes the embedding
rows or networks; the model scores one series with
``model.score_rows(mission.series[name].test())`` (the series is recognised by name) or all
series at once with ``model.score_series(mission)``. Series must agree on the number of value
channels; telecommand columns are zero-padded to the widest series.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

from esa_lightning.data.datamodule import MissionDataModule
from esa_lightning.data.mission import Mission
from esa_lightning.data.transforms.windows import (
    INPUT_MODES,
    SCALINGS,
    RobustStats,
    check_detrend_stat,
    labeled_window_mask,
    mission_inputs,
    model_inputs,
    n_windows,
    nominal_rows,
    scale,
)
from esa_lightning.errors import ESAInputError
from esa_lightning.settings import check_setting


# ---------------------------------------------------------------------------------- dataset
def _passthrough(batch):
    """collate_fn: ``WindowDataset.__getitems__`` already returns a whole batch."""
    return batch


class WindowDataset(Dataset):
    """Windows ``data[s : s + window]`` for every start ``s`` in ``starts`` of one [T, C] tensor.

    ``series_offsets`` (sorted first rows of each series in ``data``) maps a start to its series.
    """

    def __init__(
        self,
        data: torch.Tensor,
        starts: np.ndarray,
        window: int,
        series_offsets: Sequence[int] = (0,),
    ) -> None:
        self.data = data
        self.starts = np.asarray(starts, dtype=np.int64)
        self.window = window
        self.series_offsets = np.asarray(series_offsets, dtype=np.int64)
        self._steps = torch.arange(window)

    def __len__(self) -> int:
        return len(self.starts)

    def _series(self, starts: np.ndarray) -> torch.Tensor:
        idx = np.searchsorted(self.series_offsets, starts, side="right") - 1
        return torch.from_numpy(idx.astype(np.int64))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = int(self.starts[i])
        return self.data[s : s + self.window], self._series(np.array([s]))[0]

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """One gather per batch (what makes this as fast as indexing a materialised array)."""
        starts = self.starts[np.asarray(indices, dtype=np.int64)]
        rows = torch.from_numpy(starts)[:, None] + self._steps
        return self.data[rows], self._series(starts)


class SeriesBatchSampler(BatchSampler):
    """Batches of windows of one series: ``sampler``'s indices grouped by series (in the
    sampler's order within a series), cut into batches of ``batch_size``, the batches in the
    order their first window came from ``sampler``.

    For one network per series (``SeriesNetworks``), where a mixed batch costs one network call
    per series in it. It holds as many batches as a plain ``BatchSampler`` (only a batch across
    a series border mixes series), so under DDP every rank gets the same number; Lightning gives
    it each rank's ``DistributedSampler`` as ``sampler``.
    """

    def __init__(
        self, sampler: Sampler[int], batch_size: int, drop_last: bool, series: np.ndarray
    ) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.series = np.asarray(series)

    def __iter__(self) -> Iterator[list[int]]:
        order = np.fromiter(iter(self.sampler), dtype=np.int64)
        grouped = np.argsort(self.series[order], kind="stable")  # positions in `order`
        size = self.batch_size
        batches = [grouped[i : i + size] for i in range(0, len(grouped), size)]
        if self.drop_last and batches and len(batches[-1]) < size:
            batches.pop()
        # a batch's first position is its earliest draw (the sort is stable)
        for positions in sorted(batches, key=lambda b: int(b[0])):
            yield order[positions].tolist()


# ------------------------------------------------------------------------------- datamodule
class WindowDataModule(MissionDataModule):
    """Scaled sliding windows of a mission for reconstruction models (see the module docstring)."""

    DATAMODULE_KIND = "windows"

    def __init__(
        self,
        mission: Mission,
        window: int = 10,
        stride: int = 1,
        batch_size: int = 256,
        inputs: str = "values+telecommands",
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        shuffle: bool = True,
        detrend: int | None = None,
        detrend_stat: str = "mean",
        scaling: str = "robust",
        series_batches: bool = False,
        horizon: int = 1,
    ) -> None:
        super().__init__()
        self.series_batches = bool(series_batches)
        if horizon < 1:
            raise ESAInputError("horizon must be >= 1 rows", column="horizon", value=horizon)
        self.horizon = int(horizon)
        if scaling not in SCALINGS:
            raise ESAInputError(f"choose one of {SCALINGS}", column="scaling", value=scaling)
        self.scaling = scaling
        check_setting("datamodule.detrend", detrend)  # as train.py checks it: 1 to a mission's rows
        self.detrend = None if detrend is None else int(detrend)
        self.detrend_stat = check_detrend_stat(detrend_stat)
        if inputs not in INPUT_MODES:
            raise ESAInputError(f"choose one of {INPUT_MODES}", column="inputs", value=inputs)
        for name, value in (("window", window), ("stride", stride), ("batch_size", batch_size)):
            if value < 1:
                raise ESAInputError("must be >= 1", column=name, value=value)
        self.mission = mission
        self.window, self.stride, self.batch_size = window, stride, batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.inputs, self.num_workers, self.shuffle = inputs, num_workers, shuffle
        self.series_missions: dict[str, Mission] = (
            {name or mission.name: m for name, m in mission.grids().items()}
        )
        parts = list(self.series_missions.values())
        n_values = {p.values.shape[1] for p in parts}
        if len(n_values) != 1:
            raise ESAInputError(
                f"series disagree on the number of value channels: {sorted(n_values)}",
                path=mission.name,
            )
        self.n_values = n_values.pop()
        self.n_telecommands = max(p.telecommands.shape[1] for p in parts)
        self.stats: list[RobustStats] | None = None
        self._fit_data: torch.Tensor | None = None

    # ------------------------------------------------------------------ shapes the model needs
    @property
    def span(self) -> int:
        """Rows of a training / validation window: the scoring window and, for a forecaster
        trained ``horizon`` rows ahead, the ``horizon - 1`` further rows it forecasts."""
        return self.window + self.horizon - 1

    @property
    def feature_names(self) -> list[str]:
        """Input columns of every window step: value channels, then telecommand pulses."""
        first = next(iter(self.series_missions.values()))
        names = list(first.channel_names) if not self.mission.is_multiseries else ["value"]
        if self.inputs != "values":
            names += list(first.telecommand_names)
        return names

    @property
    def dims(self) -> dict:
        """Everything the model must agree on with the data: pass as ``Model(**dm.dims)``."""
        n_in = self.n_values + (self.n_telecommands if self.inputs != "values" else 0)
        series = list(self.series_missions) if self.mission.is_multiseries else []
        return dict(
            n_inputs=n_in,
            n_outputs=self.n_values,
            window=self.window,
            inputs=self.inputs,
            series=series,
            detrend=self.detrend,
            detrend_stat=self.detrend_stat,
            horizon=self.horizon,
        )

    @property
    def scaler(self) -> tuple[np.ndarray, np.ndarray]:
        """(median, iqr) float32 [S, n_inputs], one row per series (S = 1 for one grid)."""
        if self.stats is None:
            raise RuntimeError("call setup() first")
        return (
            np.stack([s.median for s in self.stats]),
            np.stack([s.iqr for s in self.stats]),
        )

    def _inputs(self, m: Mission) -> np.ndarray:
        return model_inputs(m, self.inputs, self.n_telecommands, self.detrend, self.detrend_stat)

    # -------------------------------------------------------------------------------- setup
    def setup(self, stage: str | None = None) -> None:
        if self._fit_data is not None:
            return
        stats, chunks, offsets, train_starts, val_starts = [], [], [], [], []
        offset = 0
        for name, m in self.series_missions.items():
            fit = m.fit_range()
            x = self._inputs(fit)
            nominal = nominal_rows(fit)
            if self.scaling == "none":
                width = x.shape[1]
                st = RobustStats(np.zeros(width, np.float32), np.ones(width, np.float32))
            else:
                st = RobustStats.fit(x[: fit.val_start], nominal[: fit.val_start], source=name)
            if self.detrend:
                # a status-like column (raw IQR 0) keeps the scale 1 it has without detrending:
                # its trailing mean makes a tiny IQR that would blow every step up
                raw = mission_inputs(fit.slice(0, fit.val_start), self.inputs, self.n_telecommands)
                flat = RobustStats.fit(raw, nominal[: fit.val_start], source=name).iqr == 1.0
                st.iqr[flat] = 1.0
            stats.append(st)
            fresh = not np.shares_memory(x, fit.values)  # a copy already: scale it in place
            chunks.append(scale(x, st.median, st.iqr, in_place=fresh))
            offsets.append(offset)
            for lo, hi, out in (
                (0, fit.val_start, train_starts),
                (fit.val_start, fit.test_start, val_starts),
            ):
                starts = lo + np.arange(n_windows(hi - lo, self.span, self.stride)) * self.stride
                clean = ~labeled_window_mask(~nominal, self.span, starts=starts)
                out.append(offset + starts[clean])
            if self.mission.is_multiseries and len(train_starts[-1]) == 0:
                raise ESAInputError(  # its network (or embedding) would score untrained
                    f"no label-free training window of {self.span} rows in its "
                    f"{fit.val_start} training rows: leave the series out (data.channels) or "
                    "use a shorter datamodule.window",
                    path=self.mission.name,
                    column=name,
                )
            offset += len(x)
        self.stats = stats
        data = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        self._fit_data = torch.from_numpy(data)
        self._offsets = np.asarray(offsets)
        self.train_set = WindowDataset(
            self._fit_data, np.concatenate(train_starts), self.span, self._offsets
        )
        self.val_set = WindowDataset(
            self._fit_data, np.concatenate(val_starts), self.span, self._offsets
        )
        if len(self.train_set) == 0:
            raise ESAInputError(
                f"no label-free training window of {self.span} rows", path=self.mission.name
            )

    # ---------------------------------------------------------------------------- loaders
    def _loader(
        self,
        ds: WindowDataset,
        batch_size: int,
        shuffle: bool,
        by_series: bool = False,
        sampler: Sampler[int] | None = None,
    ) -> DataLoader:
        """Batches of ``ds``; ``by_series``: each of one series (``SeriesBatchSampler``);
        ``sampler``: of the items (a ``validation_sampler``)."""
        if by_series:
            order = RandomSampler(ds) if shuffle else SequentialSampler(ds)
            series = ds._series(ds.starts).numpy()
            batching = dict(batch_sampler=SeriesBatchSampler(order, batch_size, False, series))
        else:
            batching = dict(batch_size=batch_size, shuffle=shuffle, sampler=sampler)
        return DataLoader(
            ds,
            **batching,
            num_workers=self.num_workers,
            collate_fn=_passthrough,
            # not persistent: each epoch's loader then draws its workers' seed from torch's
            # global generator as a loader without workers does, so the later epochs' batch
            # order (drawn from it after) does not depend on num_workers
            persistent_workers=False,
        )

    def train_dataloader(self) -> DataLoader:
        by_series = self.series_batches and self.mission.is_multiseries
        return self._loader(self.train_set, self.batch_size, self.shuffle, by_series)

    def val_dataloader(self) -> DataLoader | list:
        if len(self.val_set) == 0:
            return []
        sampler = self.validation_sampler(self.val_set)
        return self._loader(self.val_set, self.eval_batch_size, False, sampler=sampler)
