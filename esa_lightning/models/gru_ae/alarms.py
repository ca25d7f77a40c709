"""The GRU autoencoder's window -> row alarm steps, and its post-rule fit's shared scores.

``window_alarms`` and ``row_alarm`` are the steps of ``LitGRUAttentionAE._score_grid`` from
window scores to row alarms (threshold, random-forest gate, window -> rows, gap closing, stuck
channels), ``named_channels`` the channels those rows name. ``handed_alarm`` takes the same
steps on window scores the random-forest gate's fit already computed over the fit range
(``postprocessing.fit_pass.FitPass``), so that the
``gap_close`` fit reads its alarms without scoring the fit range again; ``scoring_key`` is the
digest of everything those scores are made of, which the hand-over checks before it is read.
``forecast_mae`` is the forecaster's label-free validation figure.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch

from esa_lightning.data.mission import Mission
from esa_lightning.data.transforms.windows import detrend_history
from esa_lightning.models.channel_alarms import top_channel_alarm
from esa_lightning.models.raised_by import FROZEN, rule_flags
from esa_lightning.postprocessing.fit_pass import GatedWindows
from esa_lightning.postprocessing.telemanom import TelemanomOnline


def window_alarms(
    model: Any, total: np.ndarray, targets: np.ndarray | None, series: int
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, bool alarms) of window scores ``total`` of series ``series``: the threshold
    rule's (Telemanom's dynamic threshold of the stream itself with ``telemanom``)."""
    rule = model.threshold_rule
    if isinstance(rule, TelemanomOnline):
        return rule.window_alarms(total, targets, model._value_unit(series))
    return rule.window_alarms(total, series)


def row_alarm(
    model: Any, mission: Mission, series: int, alarm_w: np.ndarray, pad: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(uint8 [T] row alarms, bool [T, value columns] stuck channels or None, uint8 [T] the
    rules that raised each row: ``RowScores.raised_by``) of a single-grid ``mission`` from its
    window alarms ``alarm_w`` (after the gate): a row alarms when a window covering it does, or
    in a gap the ``gap_close`` rule closes, or on a stuck channel."""
    n = len(mission.values) + pad
    alarm = model.window_to_rows(alarm_w.astype(np.float32), n)[pad:]
    decided = alarm = (alarm > 0).astype(np.uint8)
    if model.gap_rule is not None:
        alarm = model.gap_rule.apply(alarm)
    stuck = None if model.frozen_rule is None else model.frozen_rule.alarms(mission, series)
    raised = rule_flags(decided, alarm, stuck)
    if stuck is not None:
        alarm = alarm | stuck.any(axis=1).astype(np.uint8)
    return alarm, stuck, raised


def named_channels(
    model: Any, channel: np.ndarray, stuck: np.ndarray | None, raised: np.ndarray
) -> np.ndarray:
    """uint8 [T, C]: the channels each alarmed row names (``RowScores.channel_alarm``), from
    the rows' per-channel (normalised) errors ``channel``, the stuck channels ``stuck`` and the
    rules that raised the rows ``raised`` (``row_alarm``). A row the threshold or gap closing
    alarmed names its ``top_channels`` channels of highest error among those its score is made
    of (the ``channel_norm`` rule's scored channels); a stuck channel is named on its rows. A
    row only the stuck-channel rule alarmed names its stuck channel(s) alone, as the channel
    ensemble's does: its errors did not alarm it, so its highest ones point at nothing; a row
    both alarmed names both."""
    own = (np.asarray(raised, dtype=np.uint8) & ~np.uint8(FROZEN)) != 0
    norm = model.channel_norm  # names only the channels its total is made of
    scored = None if norm is None else norm.scored_mask()
    named = top_channel_alarm(own, channel, model.hparams.top_channels, scored)
    return named if stuck is None else named | stuck[:, : named.shape[1]].astype(np.uint8)


def handed_alarm(
    model: Any, grid: Mission, name: str | None, scored: GatedWindows
) -> np.ndarray | None:
    """uint8 [T]: the row alarms ``_score_grid`` gives the single-grid ``grid`` (a fit range
    scored whole), from ``scored``: its window scores and the features of the windows above the
    gate that the gate's fit kept. None where they do not suffice: ``telemanom`` (its alarms
    read the forecast targets), a range shorter than a window, or a window that alarms now
    without its features kept (below the gate's cut: a ``gate_factor`` above 1, or a negative
    threshold)."""
    if model.is_online or len(grid.values) < model.hparams.window:
        return None
    s = model.series_index(grid, name)
    # a window threshold's alarms (``window_alarms``) of the scores the gate's fit smoothed
    alarm_w = model.threshold_rule.window_alarms(scored.total, s, scored.smoothed)[1]
    gate = model.gate
    if gate is not None:
        if (alarm_w & ~scored.gate).any():
            return None
        alarm_w = gate.judge_features(scored.features[alarm_w[scored.gate]], alarm_w)[0]
    return row_alarm(model, grid, s, alarm_w, 0)[0]


def scoring_key(model: Any) -> str:
    """A digest of what ``window_outputs`` reads beside the mission: the network's weights, the
    scaler, the fitted ``channel_norm`` and the hyper-parameters (post-processing settings
    aside). Two equal keys score every window alike."""
    digest = hashlib.blake2b(digest_size=16)
    hp = {k: v for k, v in model.hparams.items() if k != "post_processing"}
    digest.update(json.dumps(hp, sort_keys=True, default=str).encode())
    norm = model.channel_norm
    tensors = [*model.net.state_dict().items(), ("scaler_median", model.scaler_median),
               ("scaler_iqr", model.scaler_iqr)]
    if norm is not None:
        tensors += [(f"channel_norm.{k}", v) for k, v in norm.state_dict().items()]
        digest.update(f"{norm.aggregate}".encode())
    for key, tensor in tensors:
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def forecast_mae(model: Any, mission: Mission) -> float | None:
    """Mean absolute forecast error over the validation rows, in the data's own units.

    Every validation row is forecast from the rows before it (the training range's last
    rows included) as scoring sees them: detrended with the same ``detrend`` rows of history,
    so its errors are the scoring pass's. Forecasters with different window lengths are
    compared on the same rows; errors are unscaled with each output's IQR. A label-free
    figure to choose forecasters by. None for a reconstruction network or without
    validation rows. Only the validation windows go through the network.
    """
    hp = model.hparams
    if hp.get("objective", "reconstruct") != "forecast":
        return None
    total, count = 0.0, 0
    for name, m in mission.grids().items():
        if m.test_start <= m.val_start:
            continue
        first = max(0, m.val_start - (hp.window - 1))  # the first validation window's start
        # the rows its trailing means reach back to (detrend_columns: the row, span - 1)
        lo = max(0, first - detrend_history(hp.get("detrend"), hp.get("detrend_stat", "mean")))
        part = m.slice(lo, m.test_start)
        wo = model.window_outputs(part, series=name, raw=True, history=first - lo)
        rows = first + np.arange(len(wo.total)) + hp.window - 1 - wo.pad
        iqr = model.scaler_iqr[model.series_index(part, name), : hp.n_outputs].cpu().numpy()
        err = wo.per_channel[rows >= m.val_start]
        total, count = total + raw_error_sum(err, iqr), count + err.size
    return total / count if count else None


def raw_error_sum(errors: np.ndarray, iqr: np.ndarray) -> float:
    """The sum of float32 ``errors`` [N, C] (scaled units) x ``iqr`` [C] (the data's units), in
    float64: the float32 products summed as before, bit for bit, except a product beyond
    float32's range (an IQR near float32's largest, 3.4e38), which overflowed to inf and made
    the figure inf; it counts as its float64 product (finite, above every finite float32
    product, so a larger error still gives a larger figure)."""
    with np.errstate(over="ignore"):
        products = errors * iqr
    over = np.isinf(products) & np.isfinite(errors)
    if not over.any():
        return float(products.sum(dtype=np.float64))
    unit = np.broadcast_to(np.asarray(iqr, dtype=np.float64), errors.shape)[over]
    wide = errors[over].astype(np.float64) * unit  # below 1.2e77: finite
    products[over] = 0.0
    return float(products.sum(dtype=np.float64)) + float(wide.sum())
