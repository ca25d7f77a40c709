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


@pytest.mark.parametrize("value", ["a" * 50_000, ["b" * 100] * 1_000, b"c" * 50_000])
def test_a_long_value_is_quoted_by_a_short_prefix_and_its_length(value):
    """An error quoting a user's value (a cell of a file) put the whole value in its message:
    a cell of several MB gave a line of several MB. ``quoted`` keeps a prefix of at most
    ``QUOTE_LIMIT`` characters and the length, and ESAInputError quotes its value and column
    through it."""
    from esa_lightning.errors import QUOTE_LIMIT, quoted

    text = quoted(value)
    assert len(text) <= QUOTE_LIMIT + 40, text
    assert text.startswith(repr(value)[:QUOTE_LIMIT])
    length = len(value) if isinstance(value, (str, bytes)) else len(repr(value))
    assert text.endswith(f"... ({length} characters)"), text
    assert quoted("short") == "'short'" and quoted(3) == "3"  # short values as before
    message = str(ESAInputError("bad cell", path="f.csv", column="c" * 10_000, value=value))
    assert len(message) < 2 * QUOTE_LIMIT + 120, message
    assert message.startswith("f.csv: column 'ccc") and message.endswith(": bad cell")


LONG = "9" * 10_000  # a user-typed override value (or API argument) of unbounded length


def _channel_ensemble(value: str) -> None:
    from esa_lightning.models.channel_ensemble.model import LitChannelEnsemble

    LitChannelEnsemble(n_channels=1, n_features=1, group_index=[0], channel_scores=value)


def _callback(key: str):
    def build(value: str) -> None:
        from esa_lightning.callbacks import ESAValidationMetrics

        ESAValidationMetrics(**{key: value})

    return build


def _api_overrides(value: str) -> None:
    from esa_lightning.api.training import compose_job

    compose_job("train", value)


def _setting(key: str):
    def check(value: str) -> None:
        from esa_lightning.settings import check_setting

        check_setting(key, value)

    return check


@pytest.mark.parametrize(
    "refuse",
    [_channel_ensemble, _callback("every_n_epochs"), _callback("provisional_percentile"),
     _api_overrides, _setting("model.window"), _setting("range")],
    ids=["channel_scores", "every_n_epochs", "provisional_percentile", "api overrides",
         "train.py's rule (model.window=)", "predict.py's range="],
)
def test_a_long_override_value_gives_a_bounded_message(refuse):
    """``model.channel_scores=<10 KB>`` (a Hydra override), a callback's setting, a string
    given as the API's overrides, a setting refused by its rule (``settings.check_setting``,
    every job's check of its config): the refusal repeated the whole value (``!r``)."""
    from esa_lightning.errors import QUOTE_LIMIT

    with pytest.raises((ESAInputError, ValueError)) as refused:
        refuse(LONG)
    message = str(refused.value)
    assert len(message) < QUOTE_LIMIT + 200, message[:300]
    assert f"({len(LONG)} characters)" in message
