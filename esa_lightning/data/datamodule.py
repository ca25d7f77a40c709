"""What every datamodule hands the runtime: its mission, the model's dimensions, its kind."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import lightning as L

from esa_lightning.data.mission import Mission


class MissionDataModule(L.LightningDataModule, ABC):
    """A LightningDataModule over one ``Mission``.

    ``DATAMODULE_KIND`` is the ``conf/datamodule`` option it is (a model names the kind it trains
    on); ``dims`` are the keyword arguments its model is built with; ``feature_names`` name the
    model's input columns (kept in the artifact's schema). Fitted preprocessing (scaler,
    kernels) is exposed by each kind and handed to the model by ``set_preprocessing``.
    """

    DATAMODULE_KIND: ClassVar[str]
    #: the mission it serves (set by the subclass's constructor)
    mission: Mission

    @property
    @abstractmethod
    def dims(self) -> dict[str, Any]:
        """Keyword arguments of the model built on this datamodule."""

    @property
    def feature_names(self) -> list[str]:
        """Names of the model's input columns (empty when they are the mission's channels)."""
        return []

    def label_fit_end(self) -> int:
        """Rows of the mission before this row may have had their labels read by the model's
        training (its in-sample rows); 0 when training reads no label. A stacked model
        (``esa_full``'s combiner) fits on the rows from here on, never on another model's
        in-sample scores."""
        return 0
