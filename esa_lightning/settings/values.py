"""What some settings' values must be, beyond a number's range (``settings.RULES`` names them):
a metric key as the reports write it, a checkpoint monitor a run logs while it trains, a torch
device, a time period, a channel selection."""

from __future__ import annotations

import re
from typing import Any


def f_beta_ok(name: str) -> bool:
    """Every F-score key is written ``<name>_F_<beta with two decimals>`` (``EW_F_0.50``,
    ``channel_F_0.50_anomaly``): one spelt otherwise (``EW_F_05``) is never logged."""
    return all(re.fullmatch(r"\d+\.\d\d(_anomaly)?", tail)
               for tail in name.split("_F_")[1:])


def metric_ok(value: Any) -> bool:
    """``optimized_metric``: a key of the run's metrics (``metrics.json``): ``val/...`` or
    ``test/...``, with its F-scores spelt as the reports write them."""
    return (isinstance(value, str) and value.startswith(("val/", "test/"))
            and f_beta_ok(value))


#: what the models log under ``val/`` while they train (the GRU's ``val/series_loss/<series>``
#: too); the detector's final ``val/<metric>`` numbers are logged once training has ended
VAL_LOGGED = ("val/loss", "val/threshold", "val/event_bce", "val/channel_bce")


#: the detector's final ``val/`` metrics (logged once, after training: no epoch can monitor them)
VAL_FINAL = re.compile(r"val/(ADTQC|AFF|AFFpaper|AUC|EW|EWraw|alarming|channel|kaggle|subsystem)_?")


def monitor_ok(value: Any) -> bool:
    """A ``val/`` monitor: one the built-in models log while they train, or a name of a model of
    one's own (``model._target_``); refused: the final metrics and near misses of the former."""
    import difflib

    if not isinstance(value, str):
        return False
    if value in VAL_LOGGED or value.startswith("val/series_loss/"):
        return True
    if value.startswith("val/"):
        return not (VAL_FINAL.match(value) or difflib.get_close_matches(value, VAL_LOGGED, 1, 0.8))
    return f_beta_ok(value)


def device_ok(value: Any) -> bool:
    """``predict.py device=``: a device torch can name, or a CUDA device's index (whether
    this machine has it is checked when the detector is placed there)."""
    import torch

    if isinstance(value, int) and not isinstance(value, bool):
        return value >= 0  # torch.device(0) asks for the accelerator: checked when placed
    if not isinstance(value, str):
        return False
    try:
        torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def period_ok(value: Any) -> bool:
    """``data.period``: a positive duration (``30s``, ``1min``), as the readers take it."""
    import pandas as pd

    if isinstance(value, bool):
        return False
    try:
        return pd.Timedelta(value) > pd.Timedelta(0)
    except (ValueError, TypeError):
        return False


#: ``data.channels``' words (``data.selection.select_channels``); channels by name are a list
CHANNEL_WORDS = ("all", "target", "lightweight")


def channels_ok(value: Any) -> bool:
    """``data.channels``: one of ``CHANNEL_WORDS`` or a non-empty list of channel names. A
    non-empty string of names (``data.channels=T-13``, one channel; ``a,b`` in a sweep's jobs)
    is left to the reader: the channel names are not known before the data are read, so a
    channel named like a word (``ball``, ``Target``) is read, and a misspelt word (``targt``) is
    refused there as an unknown channel, the words named beside the channels
    (``data.selection.UnknownChannels``)."""
    from omegaconf import ListConfig

    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, list | tuple | ListConfig) and len(value) > 0


#: what ``tags`` hold: labels (a number is one too, written as it reads)
TAG_TYPES = (str, int, float, bool)


def tags_ok(value: Any) -> bool:
    """``tags``: one label (``tags=baseline``) or a list of them (``tags=[baseline,q3]``); not
    a mapping, a nested list or an empty label (null)."""
    from omegaconf import ListConfig

    if isinstance(value, TAG_TYPES):
        return True
    return isinstance(value, list | tuple | ListConfig) and all(
        isinstance(v, TAG_TYPES) for v in value)


def tags_text(value: Any) -> str:
    """``tags`` as one string, its labels joined by commas (``baseline,q3``; empty: none), as
    TensorBoard's HParams tab and a sweep's ``summary.csv`` show them."""
    if value is None:
        return ""
    if isinstance(value, TAG_TYPES):
        return str(value)
    return ",".join(str(v) for v in value)
