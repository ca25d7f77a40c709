"""The registry finds a detector family wherever its package defines the model class."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import esa_lightning.models as models_package
from esa_lightning.models.registry import detector_families

FAMILY = "scratch_family_for_the_registry_test"
MODEL = '''
from esa_lightning.models.base import DetectorModule


class ScratchDetector(DetectorModule):
    datamodule_kind = "rows"

    def score_rows(self, mission):
        raise NotImplementedError

    @property
    def context_rows(self):
        return 0
'''


@contextmanager
def family_without_imports(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A family package beside the shipped ones whose ``__init__.py`` imports nothing: its model
    class lives in ``model.py`` alone. Gone again afterwards (its modules, and so its class),
    so that no other test in this process sees it. Yields the class path."""
    package = folder / FAMILY
    package.mkdir()
    (package / "__init__.py").write_text('"""A family whose __init__ imports nothing."""\n')
    (package / "model.py").write_text(MODEL)
    with monkeypatch.context() as patch:
        patch.setattr(models_package, "__path__", [*models_package.__path__, str(folder)])
        try:
            yield f"{models_package.__name__}.{FAMILY}.model.ScratchDetector"
        finally:
            prefix = f"{models_package.__name__}.{FAMILY}"
            for name in [n for n in sys.modules if n.startswith(prefix)]:
                del sys.modules[name]
            if hasattr(models_package, FAMILY):  # importing a subpackage sets it on its parent
                delattr(models_package, FAMILY)
            gc.collect()  # DetectorModule.__subclasses__() holds its subclasses weakly


def test_a_family_whose_init_imports_nothing_is_registered(tmp_path, monkeypatch):
    """Its artifact was refused at load ('the artifact names a class that is not allowed')
    although the run had trained it: the registry imported each family's ``__init__`` only."""
    with family_without_imports(tmp_path, monkeypatch) as path:
        assert path in detector_families()
    assert not any(FAMILY in found for found in detector_families())
