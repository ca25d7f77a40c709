"""What to do when the checkpoint a run resumes from cannot be read (``check_resume_checkpoint``).

A damaged ``last.ckpt`` or a detector's ``components/<name>/lightning.ckpt`` was refused with
torch's reason alone (``(101)``, ``[Errno 22] Invalid argument``), which says nothing of the way
out. ``unreadable_advice`` names another checkpoint of the same run that reads (the run's
``last.ckpt``, its best epoch's ``epoch_NNN.ckpt``, its detector's ``lightning.ckpt``) to resume
from instead, or says to start a new run where none does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from esa_lightning.errors import ESAInputError


def other_checkpoints(path: str | Path) -> list[Path]:
    """The run's other checkpoints of the component ``path`` resumes, most recent first: its
    folder's ``last.ckpt`` then its epoch checkpoints (newest first); for a file in a run's
    ``checkpoints/<name>/``, then its detector's ``components/<name>/lightning.ckpt``; for a
    detector's ``components/<name>/lightning.ckpt``, the run's ``checkpoints/<name>/`` ones."""
    path = Path(path)
    folders = [path.parent]
    name = path.parent.name
    if path.parent.parent.name == "components":  # <run>/<detector>/components/<name>/
        folders.append(path.parents[3] / "checkpoints" / name)
    found: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            found += [folder / "last.ckpt"]
            found += sorted(folder.glob("epoch_*.ckpt"), reverse=True)
            found += [folder / "lightning.ckpt"]
    if path.parent.parent.name == "checkpoints":  # <run>/checkpoints/<name>/
        run = path.parents[2]
        found += sorted(run.glob(f"*/components/{name}/lightning.ckpt"))
    same = path.resolve()
    return [p for p in dict.fromkeys(found) if p.is_file() and p.resolve() != same]


def unreadable_advice(
    path: str | Path, run_dir_setting: str, read_checkpoint: Callable[[Path], Any]
) -> str:
    """What to do instead of resuming from ``path``, which cannot be read: resume from the
    first of ``other_checkpoints`` that ``read_checkpoint`` reads (an ``ESAInputError`` where
    it cannot; a single checkpoint with ``ckpt_path=``; in a folder of several components,
    resumed with ``ckpt_path=last``, by putting a copy of it in place of the damaged
    ``last.ckpt``), or start a new run (``run_dir_setting``: the setting that names its
    folder)."""
    new_run = f"start a new run (another {run_dir_setting}, no ckpt_path)"
    for other in other_checkpoints(path):
        try:
            read_checkpoint(other)
        except ESAInputError:
            continue
        path = Path(path)
        components = path.parent.parent
        several = (path.name == "last.ckpt" and components.name == "checkpoints"
                   and sum(p.is_dir() for p in components.iterdir()) > 1)
        if several:  # ckpt_path=last resumes each component from its own last.ckpt
            return (f"resume from another checkpoint of this run: put a copy of {other} in its "
                    f"place (keep the damaged file elsewhere) and resume again with "
                    f"ckpt_path=last, or {new_run}")
        return f"resume from another checkpoint of this run: ckpt_path={other}, or {new_run}"
    return f"no other checkpoint of this run reads: {new_run}"
