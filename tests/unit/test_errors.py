"""User-facing errors cross process boundaries (DDP, multiprocessing workers) intact."""

from __future__ import annotations

import pickle

import pytest

from esa_lightning.data.safe_pickle import _Refused
from esa_lightning.data.selection import UnknownChannels, select_channels
from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.sweep_failures import TrialFailed


def raised_unknown_channels() -> UnknownChannels:
    import pandas as pd

    table = pd.DataFrame({"Channel": ["a", "b"], "Target": [True, False]})
    with pytest.raises(UnknownChannels) as info:
        select_channels(table, ["a", "zz"], source="data/channels.csv")
    return info.value


@pytest.mark.parametrize(
    "make",
    [
        raised_unknown_channels,
        lambda: UnknownChannels(["x"], [f"c{i}" for i in range(9)], None),
        lambda: ESAInputError("bad value", path="f.csv", column="col", value=3),
        lambda: ESAInputError("no location"),
        lambda: _Refused("os.system"),
        lambda: TrialFailed("trial 3 failed"),
    ],
)
def test_errors_round_trip_through_pickle(make):
    error = make()
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert back.args == error.args
    assert vars(back) == vars(error)


def test_unknown_channels_keeps_the_names_across_pickle():
    back = pickle.loads(pickle.dumps(raised_unknown_channels()))
    assert back.names == ["zz"]
    assert (back.path, back.column) == ("data/channels.csv", "channels")
    assert "zz" in str(back)


def test_a_subclass_with_its_own_arguments_round_trips():
    """The base class, not each subclass, makes pickling work: a later subclass with its own
    ``__init__`` arguments needs nothing more."""

    back = pickle.loads(pickle.dumps(_Custom(7, "why")))
    assert (type(back), str(back), back.count) == (_Custom, "f.csv: 7 rows: why", 7)


class _Custom(ESAInputError):
    def __init__(self, count: int, why: str) -> None:
        self.count = count
        super().__init__(f"{count} rows: {why}", path="f.csv")
