"""The GRU-attention networks: plain ``nn.Module``s, no Lightning (pure, exportable).

``GRUAttentionAE`` reconstructs (or forecasts) the value channels of a window; ``MemberMean``
averages N such networks (a deep ensemble); ``SeriesNetworks`` holds one network per
independent series (Telemanom's one model per channel). All share ``WindowNetwork``'s targets,
error and loss code.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from esa_lightning.errors import ESAInputError

OBJECTIVES = ("reconstruct", "forecast")


class AEOutput(NamedTuple):
    reconstruction: torch.Tensor  # [B, L, n_outputs]
    latent: torch.Tensor  # [B, latent_dim]
    attention: torch.Tensor  # [B, L], sums to 1 over L


class WindowErrors(NamedTuple):
    total: torch.Tensor  # [B] mean squared error over steps and channels
    per_channel: torch.Tensor  # [B, C] mean squared error over steps


class WindowNetwork(nn.Module):
    """What every window network shares: targets and errors. Subclasses set ``n_outputs``,
    ``forecast`` (with ``history`` and ``horizon``) and implement
    ``forward(x, series) -> AEOutput``."""

    n_outputs: int
    forecast: bool
    # forecasting: rows read (None: all but the last) and rows forecast after them
    history: int | None = None
    horizon: int = 1

    def history_rows(self, x: torch.Tensor) -> int:
        return x.shape[1] - 1 if self.history is None else self.history

    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """What ``forward(x).reconstruction`` is compared with: the window's value channels, or
        the rows after the history when forecasting (``horizon`` rows in a training window, the
        one row after the history in a scoring window of ``history + 1`` rows)."""
        if not self.forecast:
            return x[..., : self.n_outputs]
        start = self.history_rows(x)
        return x[:, start : start + self.horizon, : self.n_outputs]

    def prediction_pairs(self, out: AEOutput, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(prediction, target) of equal shape: a forecast is cut to the rows the window holds."""
        y = self.targets(x)
        return out.reconstruction[:, : y.shape[1]], y

    def window_errors(self, out: AEOutput, x: torch.Tensor) -> WindowErrors:
        """Per-window errors: squared reconstruction errors, or the absolute error of the
        forecast of the first row after the history (as Telemanom scores its predictions)."""
        if self.forecast:
            prediction, y = self.prediction_pairs(out, x)
            per_channel = (prediction - y).abs()[:, 0]
            return WindowErrors(per_channel.mean(dim=1), per_channel)
        return self.reconstruction_errors(out.reconstruction, self.targets(x))

    @staticmethod
    def reconstruction_errors(reconstruction: torch.Tensor, y: torch.Tensor) -> WindowErrors:
        per_channel = (reconstruction - y).pow(2).mean(dim=1)
        return WindowErrors(per_channel.mean(dim=1), per_channel)

    def training_loss(
        self, x: torch.Tensor, series: torch.Tensor | None, loss_fn: nn.Module
    ) -> torch.Tensor:
        """``loss_fn`` (reduced to a mean) of the prediction pairs of windows ``x``."""
        return loss_fn(*self.prediction_pairs(self(x, series), x))

    def errors(
        self, x: torch.Tensor, y: torch.Tensor | None = None, series: torch.Tensor | None = None
    ) -> WindowErrors:
        """Errors of windows ``x``: against targets ``y`` [B, L, n_outputs] when given (a
        reconstruction network), else against ``targets(x)``."""
        out = self(x, series)
        if y is None:
            return self.window_errors(out, x)
        return self.reconstruction_errors(out.reconstruction, y)


CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


class GRUAttentionAE(WindowNetwork):
    """Encoder GRU → attention pooling → latent → GRU decoder (ESA-ADB reference pipeline B).

    With ``n_series > 1`` a learned series embedding is appended to every input step, so one
    network serves many independent series (NASA telemanom channels). ``cell="lstm"`` swaps both
    recurrent layers for LSTMs (Telemanom's cell). Forecasting reads the first ``history`` rows
    of a window (None: all but the last) and predicts the ``horizon`` rows after them
    (Telemanom trains on 10 and scores the first).
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        hidden_size: int = 64,
        latent_dim: int = 32,
        num_layers: int = 1,
        dropout: float = 0.0,
        n_series: int = 1,
        series_embedding_dim: int = 4,
        forecast: bool = False,
        history: int | None = None,
        horizon: int = 1,
        cell: str = "gru",
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ESAInputError(f"cell must be one of {tuple(CELLS)}", column="cell", value=cell)
        if horizon < 1 or (horizon > 1 and not forecast):
            raise ESAInputError(
                "horizon must be >= 1, and above 1 only when forecasting",
                column="horizon",
                value=horizon,
            )
        self.n_outputs = n_outputs
        self.forecast = bool(forecast)
        self.history = None if history is None else int(history)
        self.horizon = int(horizon)
        self.embedding = nn.Embedding(n_series, series_embedding_dim) if n_series > 1 else None
        extra = series_embedding_dim if self.embedding is not None else 0
        gru_dropout = dropout if num_layers > 1 else 0.0
        rnn = CELLS[cell]
        self.encoder = rnn(
            n_inputs + extra, hidden_size, num_layers, batch_first=True, dropout=gru_dropout
        )
        self.attention = nn.Linear(hidden_size, 1)
        self.to_latent = nn.Linear(hidden_size, latent_dim)
        self.from_latent = nn.Linear(latent_dim, hidden_size)
        self.decoder = rnn(
            hidden_size, hidden_size, num_layers, batch_first=True, dropout=gru_dropout
        )
        self.output = nn.Linear(hidden_size, n_outputs)
        # forecasting: the next rows' outputs from the last encoder step and the latent
        self.next_step = (
            nn.Linear(hidden_size + latent_dim, n_outputs * self.horizon) if forecast else None
        )

    def forward(self, x: torch.Tensor, series: torch.Tensor | None = None) -> AEOutput:
        """x: [B, L, n_inputs]; series: [B] series indices (only with a series embedding).

        Reconstruction: ``reconstruction`` is [B, L, n_outputs]. Forecasting: the encoder reads
        the first ``history`` rows (None: L - 1) and ``reconstruction`` is the forecast of the
        ``horizon`` rows after them, [B, horizon, n_outputs]; latent and attention then cover
        the history rows.
        """
        if self.forecast:
            x = x[:, : self.history_rows(x)]
        if self.embedding is not None:
            if series is None:
                raise ValueError("this network was built for several series: pass `series`")
            emb = self.embedding(series.to(x.device))[:, None, :].expand(-1, x.shape[1], -1)
            x = torch.cat([x, emb], dim=-1)
        steps, _ = self.encoder(x)  # [B, L, H]
        attention = torch.softmax(self.attention(steps).squeeze(-1), dim=1)  # [B, L]
        context = torch.einsum("bl,blh->bh", attention, steps)
        latent = self.to_latent(context)
        if self.forecast:
            forecast = self.next_step(torch.cat([steps[:, -1], latent], dim=-1))
            return AEOutput(forecast.view(len(x), self.horizon, self.n_outputs), latent, attention)
        h = self.from_latent(latent)  # [B, H]
        h0 = h.unsqueeze(0).repeat(self.decoder.num_layers, 1, 1)
        state = (h0, torch.zeros_like(h0)) if isinstance(self.decoder, nn.LSTM) else h0
        decoded, _ = self.decoder(h.unsqueeze(1).expand(-1, x.shape[1], -1).contiguous(), state)
        return AEOutput(self.output(decoded), latent, attention)


class MemberMean(WindowNetwork):
    """Networks of one shape, each trained on its own loss from its own initialisation, that
    score with the mean of their outputs: a deep ensemble (Lakshminarayanan et al. 2017). Its
    forecast varies less from one training to the next than a single network's. Latent and
    attention are the first member's (the members' latent spaces differ)."""

    def __init__(self, members: list[WindowNetwork]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        first = members[0]
        self.n_outputs, self.forecast = first.n_outputs, first.forecast
        self.history, self.horizon = first.history, first.horizon

    def forward(self, x: torch.Tensor, series: torch.Tensor | None = None) -> AEOutput:
        outs = [m(x, series) for m in self.members]
        mean = torch.stack([o.reconstruction for o in outs]).mean(dim=0)
        return AEOutput(mean, outs[0].latent, outs[0].attention)

    def training_loss(
        self, x: torch.Tensor, series: torch.Tensor | None, loss_fn: nn.Module
    ) -> torch.Tensor:
        """The mean of the members' own losses: each member learns apart from the others."""
        return torch.stack([m.training_loss(x, series, loss_fn) for m in self.members]).mean()


def members_of(net: nn.Module) -> list[nn.Module]:
    """The networks a ``MemberMean`` averages, or ``[net]``."""
    return list(net.members) if isinstance(net, MemberMean) else [net]


class SeriesNetworks(WindowNetwork):
    """One network per series, as Telemanom trains one model per channel, behind the shared
    network's interface. A batch may mix series: each window goes through its own series'
    network (a batch of one series, as ``WindowDataModule(series_batches=True)`` makes them,
    costs one call)."""

    def __init__(self, nets: list[WindowNetwork]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)
        self.n_outputs = nets[0].n_outputs
        self.forecast = nets[0].forecast
        self.history, self.horizon = nets[0].history, nets[0].horizon

    @staticmethod
    def _routes(x: torch.Tensor, series: torch.Tensor | None) -> list[tuple[int, torch.Tensor]]:
        """(series index, its rows of the batch) for each series present in ``series``."""
        if series is None:
            raise ValueError("one network per series: pass `series`")
        series = series.to(x.device)
        return [
            (s, torch.nonzero(series == s, as_tuple=True)[0])
            for s in torch.unique(series).tolist()
        ]

    def forward(self, x: torch.Tensor, series: torch.Tensor | None = None) -> AEOutput:
        routes = self._routes(x, series)
        if len(routes) == 1:
            return self.nets[routes[0][0]](x)
        parts = [(rows, self.nets[s](x[rows])) for s, rows in routes]
        merged = []
        for field in zip(*(out for _, out in parts), strict=True):
            full = field[0].new_empty((len(x), *field[0].shape[1:]))
            for (rows, _), value in zip(parts, field, strict=True):
                full[rows] = value
            merged.append(full)
        return AEOutput(*merged)

    def training_loss(
        self, x: torch.Tensor, series: torch.Tensor | None, loss_fn: nn.Module
    ) -> torch.Tensor:
        """Each series' windows scored by its own network's ``training_loss``, weighted by
        their share of the batch (the mean over the batch, as one network would give)."""
        routes = self._routes(x, series)
        if len(routes) == 1:
            return self.nets[routes[0][0]].training_loss(x, None, loss_fn)
        total = x.new_zeros(())
        for s, rows in routes:
            total = total + self.nets[s].training_loss(x[rows], None, loss_fn) * len(rows)
        return total / len(x)
