"""``merge.py`` reads each source's component checkpoints (``lightning.ckpt``) for the rows
they were trained on (``refuse_other_split``). One that cannot be read was refused with torch's
reason alone and no way out; the refusal now says what to do."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.merge import refuse_other_split
from tests.helpers import make_mission


def test_an_unreadable_source_checkpoint_says_what_to_do(tmp_path):
    path = tmp_path / "a" / "components" / "gru_ae" / "lightning.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {}}, path)
    path.write_bytes(path.read_bytes()[:100])
    sources = [str(tmp_path / "a"), str(tmp_path / "b")]
    detectors = [SimpleNamespace(checkpoints={"gru_ae": path}), SimpleNamespace(checkpoints={})]
    with pytest.raises(ESAInputError) as info:
        refuse_other_split(detectors, sources, make_mission(n_rows=200, anomalies=(),
                                                            val_start=100, test_start=150))
    message = str(info.value)
    assert message.startswith(f"{path}: cannot be read as a checkpoint: ") and "\n" not in message
    assert message.endswith(f"; retrain {sources[0]} (train.py) and merge the new detector"), \
        message
