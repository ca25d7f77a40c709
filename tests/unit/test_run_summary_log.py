"""The closing summary of ``train.py`` (and ``merge.py``): the console's lines are in the run
folder's log too. They were printed only, so ``train.log`` read later had no ``results:``,
no ``not scored`` reason, no ``note:`` line and no ``outputs:`` folder."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from esa_lightning.jobs.run_logs import print_summary


class NeverAlarms:
    def summary_note(self) -> str:
        return "the rule watches no channel"


@pytest.fixture
def job_logs(tmp_path):
    """A job's log file on the root logger, as Hydra's ``job_logging`` sets it, and a user's
    file handler that keeps warnings only."""
    root = logging.getLogger()
    handlers = [logging.FileHandler(tmp_path / "train.log"),
                logging.FileHandler(tmp_path / "warnings.log")]
    handlers[1].setLevel(logging.WARNING)
    for handler in handlers:
        root.addHandler(handler)
    yield tmp_path
    for handler in handlers:
        root.removeHandler(handler)
        handler.close()


def test_train_log_holds_the_summary_the_console_shows(job_logs, capsys):
    print_summary({"val/EW_F_0.50": 0.75, "test/AUC_PR": 0.5}, {"test": "no labels"},
                  job_logs / "run", {"gru_ae": SimpleNamespace(post_rules={"f": NeverAlarms()})})
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == "results:" and shown[-1].startswith("outputs: ")
    assert "  note: gru_ae: the rule watches no channel" in shown
    assert "  test: not scored (no labels)" in shown
    logged = (job_logs / "train.log").read_text().splitlines()
    assert logged == shown
    assert (job_logs / "warnings.log").read_text() == ""  # info lines, below its level
