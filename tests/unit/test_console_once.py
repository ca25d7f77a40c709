"""Each of Lightning's log messages reaches the console once, through the root logger's
handlers (Hydra's console and log file), when Hydra's logging is set up."""

from __future__ import annotations

import io
import logging

import pytest

from esa_lightning.jobs.common import silence_uninformative_output

OWN = ("lightning", "lightning.pytorch", "lightning.fabric")


@pytest.fixture
def console():
    """One console stream for the root's handler and Lightning's own; restored afterwards."""
    import lightning  # noqa: F401 - its import adds its console handler

    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in OWN}
    # Lightning's loggers as `import lightning` leaves them where the root already has a
    # handler (Hydra's), whatever an earlier test in this process did to them: a console on
    # "lightning", the others propagating to it
    stream = io.StringIO()
    for name in OWN:
        own = logging.getLogger(name)
        own.handlers[:] = [logging.StreamHandler(stream)] if name == "lightning" else []
        own.propagate = True
    yield stream
    root.handlers[:] = saved_root[0]
    root.setLevel(saved_root[1])
    for name, (handlers, propagate) in saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate


def root_console(stream: io.StringIO) -> None:
    """A root handler with a format of its own, as Hydra's job logging sets up."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def test_a_lightning_message_is_printed_once_beside_a_root_console(console):
    root_console(console)

    silence_uninformative_output()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False")

    assert console.getvalue().splitlines() == [
        "[lightning.pytorch.utilities.rank_zero] GPU available: False"
    ]


def test_lightning_imported_before_the_root_handler_still_logs_through_it(console):
    # lightning.pytorch imported while the root had no handler: a plain console of its own,
    # nothing propagated (so nothing reached Hydra's log file)
    own = logging.getLogger("lightning.pytorch")
    own.addHandler(logging.StreamHandler(console))
    own.propagate = False
    root_console(console)

    silence_uninformative_output()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False")

    assert console.getvalue().splitlines() == [
        "[lightning.pytorch.utilities.rank_zero] GPU available: False"
    ]


def test_without_a_root_handler_lightning_keeps_its_own_console(console):
    logging.getLogger().handlers[:] = []  # a notebook without logging set up

    silence_uninformative_output()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False")

    assert console.getvalue().count("GPU available: False") == 1, console.getvalue()


@pytest.mark.parametrize("rank", [None, "1"], ids=["rank0", "rank1"])
def test_a_ddp_rank_s_own_info_lines_are_printed_by_rank_zero_only(console, tmp_path, rank,
                                                                   monkeypatch):
    # every rank fits the post-processing alike: a 2-process DDP run printed each "threshold",
    # "gate fitted", "mission:" line twice. Rank 1 keeps them in its log file, and its warnings
    # (one may be its own: a repeated validation item) on the console.
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        monkeypatch.delenv(name, raising=False)
    if rank:
        monkeypatch.setenv("LOCAL_RANK", rank)
    root_console(console)
    log_file = logging.FileHandler(tmp_path / "train_ddp_process_1.log")
    logging.getLogger().addHandler(log_file)

    silence_uninformative_output()
    own = logging.getLogger("esa_lightning.postprocessing.thresholds")
    own.info("f05 threshold 4.9")
    own.warning("series A-1: no labeled event")
    logging.getLogger("someone_else").info("a line of the user's own")
    log_file.close()

    shown = console.getvalue().splitlines()
    threshold = "[esa_lightning.postprocessing.thresholds] f05 threshold 4.9"
    assert (threshold in shown) == (rank is None), shown
    assert "[esa_lightning.postprocessing.thresholds] series A-1: no labeled event" in shown
    assert "[someone_else] a line of the user's own" in shown
    assert "f05 threshold 4.9" in (tmp_path / "train_ddp_process_1.log").read_text()


@pytest.mark.parametrize(("trainable", "total", "shown"), [
    (0, 0, "model: 0 trainable parameters of 0 (0.00 MB)"),
    (5, 999, "model: 5 trainable parameters of 999 (0.00 MB)"),
    (46_600, 46_600, "model: 46.6 K trainable parameters of 46.6 K (0.19 MB)"),
])
def test_the_one_line_model_summary_has_no_padding(caplog, trainable, total, shown):
    """Lightning pads a count below 1000 for its table's unit column ("0  "): the z-score's line
    read "model: 0   trainable parameters of 0   (0.00 MB)"."""
    from esa_lightning.callbacks import CompactModelSummary

    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        CompactModelSummary.summarize([], total, trainable, round(total * 4 / 1e6, 2), {}, 0)
    assert [r.getMessage() for r in caplog.records] == [shown]
