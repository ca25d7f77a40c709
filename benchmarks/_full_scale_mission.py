"""full_scale.py's Mission1-shaped mission: its length, its Mission1-style split, the tag of a
size, and the overrides its ``train.py`` runs are given (its data, its bounded training)."""

from __future__ import annotations

import json
from pathlib import Path

MISSION1_DAYS = 5114  # 2000-01-01 .. 2014-01-01
START = "2000-01-01"


def split_for(days: float) -> tuple[str, int]:
    """Mission1-style split: test = second half; validation = last min(90, 20 %) train days."""
    import pandas as pd

    split = (pd.Timestamp(START) + pd.Timedelta(days=round(days / 2))).date()
    return str(split), int(min(90, max(1, round(0.2 * days / 2))))


def bounded_overrides(gru_batches: int, ensemble_epochs: int) -> list[str]:
    """What is bounded: GRU 1 epoch of N batches (of 256 windows), ensemble a fixed epoch count."""
    return [
        "components.gru_ae.trainer.max_epochs=1",
        f"+components.gru_ae.trainer.limit_train_batches={gru_batches}",
        f"components.channel_ensemble.trainer.max_epochs={ensemble_epochs}",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar",
        "~callbacks.lr_monitor",
    ]


def data_overrides(mission: Path, days: float, cache: Path) -> list[str]:
    info = json.loads((mission / "mission.json").read_text())
    split, val_days = split_for(days)
    return [
        "data=esa",
        f"data.root={mission}",
        f"data.split_date={split}",
        f"data.val_days={val_days}",
        "data.counters=[" + ",".join(info["counters"]) + "]",
        f"data.cache_dir={cache}",
    ]


def size_tag(days: float, channels: int = 76) -> str:
    return f"d{int(days)}" + ("" if channels == 76 else f"_c{channels}")
