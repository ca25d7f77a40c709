"""The DataFrame path of Detector.predict (data.frame): id keys beyond int64."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.frame import frame_to_mission
from esa_lightning.errors import ESAInputError

SCHEMA = {"channels": ["channel_1"], "telecommands": [], "preprocessing": {"index": "id"}}


@pytest.mark.parametrize("where", ["column", "index"])
def test_uint64_ids_beyond_int64_are_refused(where):
    """uint64 ids above 2**63-1 were cast to int64 and wrapped to negative ids: the prediction's
    rows carried ids the frame never held. The error names the id, as the Kaggle reader does."""
    ids = np.uint64(2**63) + np.arange(5, dtype=np.uint64)
    frame = pd.DataFrame({"channel_1": np.arange(5.0)})
    frame = frame.assign(id=ids) if where == "column" else frame.set_index(pd.Index(ids))
    with pytest.raises(ESAInputError, match=r"9223372036854775808: id beyond the int64 range"):
        frame_to_mission(frame, SCHEMA)
    small = pd.DataFrame({"id": np.arange(5, dtype=np.uint64), "channel_1": np.arange(5.0)})
    mission, _ = frame_to_mission(small, SCHEMA)  # uint64 within int64's range: read as is
    np.testing.assert_array_equal(mission.timestamps, np.arange(5))
