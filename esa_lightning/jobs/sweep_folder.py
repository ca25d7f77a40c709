"""``sweep.py`` never writes into another study's trial folders.

Every study numbers its trials from 0 and runs trial ``n`` in ``<sweep-dir>/<n>``: a new study
(another ``--study-name`` or ``--storage``) into a folder an earlier study's trials ran in opened
its trial 0's ``console.log`` for writing, and rewrote the earlier ``trials.csv``, before
``train.py`` refused the reused run folder. ``refuse_other_study`` refuses such a start before
the study is created or anything written: the folder's trial folders must be trials of the study
being started or resumed (their ``run_dir`` in its storage). ``refuse_used_trial_folder`` is the
last guard, before each trial's ``console.log`` is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from esa_lightning.errors import ESAInputError, quoted

SHOWN = 5  # folders named in the error


def trial_folders(sweep_dir: Path) -> list[Path]:
    """The folders of ``sweep_dir`` named by a trial number that hold anything."""
    if not sweep_dir.is_dir():
        return []
    found = [p for p in sweep_dir.iterdir() if p.name.isdigit() and p.is_dir() and any(p.iterdir())]
    return sorted(found, key=lambda p: int(p.name))


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite storage URL; None for another database or in memory."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def studies_in(url: str, optuna: Any) -> dict[str, set[Path]]:
    """The studies of storage ``url``, each with its trials' run folders (resolved); none for an
    SQLite file that does not exist (nothing is created, nothing written)."""
    file = sqlite_file(url)
    if file is not None and not file.is_file():
        return {}
    storage = optuna.storages.RDBStorage(url)
    try:
        return {
            study.study_name: {
                Path(t.user_attrs["run_dir"]).resolve()
                for t in storage.get_all_trials(
                    storage.get_study_id_from_name(study.study_name), deepcopy=False
                )
                if "run_dir" in t.user_attrs
            }
            for study in storage.get_all_studies()
        }
    finally:
        storage.engine.dispose()


def refuse_other_study(sweep_dir: Path, study_name: str, storage: str, optuna: Any) -> None:
    """Refuse to start study ``study_name`` of ``storage`` in ``sweep_dir`` when the folder holds
    trial folders that are none of its trials' (or, for a study not begun, an earlier
    ``trials.csv``), naming them and the ways out. A resume of the study goes on."""
    folders = trial_folders(sweep_dir)
    if not folders and not (sweep_dir / "trials.csv").is_file():
        return
    ours = studies_in(storage, optuna).get(study_name)
    others = [p for p in folders if p.resolve() not in (ours or set())]
    if not others and ours is not None:
        return
    shown = ", ".join(p.name for p in others[:SHOWN]) + (", ..." if len(others) > SHOWN else "")
    what = f"trial folders of another study ({shown})" if others else "another study's trials.csv"
    own = f"sqlite:///{sweep_dir / 'optuna.db'}"  # the folder's own storage, sweep.py's default
    earlier = [n for n in studies_in(own, optuna) if n != study_name or storage != own]
    named = f" (its optuna.db holds study {', '.join(map(quoted, earlier))})" if earlier else ""
    raise ESAInputError(
        f"holds {what}, not trials of study {quoted(study_name)} in {storage}: start this study in "
        f"another folder (--sweep-dir), or resume the earlier study with the --study-name and "
        f"--storage it was started with{named} (docs/sweeps.md)",
        path=sweep_dir,
    )


def refuse_used_trial_folder(run_dir: Path) -> None:
    """Refuse a trial whose folder already holds files (another study's trial): nothing there
    is written."""
    if run_dir.is_dir() and any(run_dir.iterdir()):
        found = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in run_dir.iterdir()))
        raise ESAInputError(
            f"holds an earlier trial's {found}: a new trial writes into an empty folder only; "
            "start the study in another folder (--sweep-dir)",
            path=run_dir,
        )
