"""Each of Lightning's log messages reaches the console once when Hydra's logging is set up."""

from __future__ import annotations

import io
import logging

import pytest

from esa_lightning.jobs.common import silence_uninformative_output


@pytest.fixture
def console():
    """One console stream for the root's handler and Lightning's own; restored afterwards."""
    import lightning  # noqa: F401 - its import adds its console handler

    root, own = logging.getLogger(), logging.getLogger("lightning")
    saved = (list(root.handlers), root.level, list(own.handlers))
    streams = [(h, h.stream) for h in own.handlers if isinstance(h, logging.StreamHandler)]
    stream = io.StringIO()
    for handler, _ in streams:
        handler.setStream(stream)
    yield stream
    for handler, old in streams:
        handler.setStream(old)
    root.handlers[:], own.handlers[:] = saved[0], saved[2]
    root.setLevel(saved[1])


def test_a_lightning_message_is_printed_once_beside_a_root_console(console):
    root = logging.getLogger()
    root.handlers[:] = [logging.StreamHandler(console)]  # as Hydra's job logging sets up
    root.setLevel(logging.INFO)

    silence_uninformative_output()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False")

    assert console.getvalue().count("GPU available: False") == 1, console.getvalue()


def test_without_a_root_handler_lightning_keeps_its_own_console(console):
    logging.getLogger().handlers[:] = []  # a notebook without logging set up

    silence_uninformative_output()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False")

    assert console.getvalue().count("GPU available: False") == 1, console.getvalue()
