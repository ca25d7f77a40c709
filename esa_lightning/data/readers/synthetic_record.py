"""What made a generated synthetic mission, as its ``mission.json`` records it, and what a later
read says when the folder is reused (read as it is) though this code or these settings would
make another mission. The folder is never regenerated over nor removed: the user decides.

- ``GENERATOR_CODE``: a digest of the generator's modules (``generator_code_digest``), written
  by ``generate_mission``. A mission read whose digest differs, or that records none (made by an
  older version), is warned about, naming the folder and how to regenerate it.
- ``FIRST_USE``: true in a mission ``load_synthetic`` generated from its ``generate`` settings
  (``data.generate``): there, every setting that differs from the record is warned about, the
  generator's default too (a plain ``train.py`` on a folder once generated with
  ``data.generate.seed=1``). A mission generated otherwise (the command line, a user's own) is
  warned about only for the settings asked for: the config always passes the defaults.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from esa_lightning.data.readers import digests

log = logging.getLogger(__name__)

#: ``mission.json``'s digest of the generator's code (``generator_code_digest``)
GENERATOR_CODE = "generator_code"
#: ``mission.json``: true where ``load_synthetic`` generated the mission on first use
FIRST_USE = "generated_on_first_use"
#: the modules whose code makes a generated mission's files: the generator, its signals, the
#: layout writers and the grid period the signals are laid on (``grid_period``, not the ESA-ADB
#: reader's grid code in ``esa_adb_grid``: a change to a reader is no other generator)
GENERATOR_MODULES = ("synthetic.py", "synthetic_signals.py", "layout_writers.py", "grid_period.py")
_READERS = Path(__file__).resolve().parent


def generator_code_digest(folder: str | os.PathLike | None = None) -> str:
    """A digest of the contents of ``GENERATOR_MODULES`` in ``folder`` (default: this package's
    readers), by file name, so the same code gives the same digest in any checkout."""
    where = Path(folder) if folder is not None else _READERS
    files = [[name, digests.content_digest(where / name)]
             for name in GENERATOR_MODULES if (where / name).is_file()]
    return digests.cache_key(files)


def warn_other_code(root: Path, info: dict[str, Any]) -> None:
    """A WARNING when the generated mission at ``root`` (its ``mission.json``: ``info``) was made
    by another version of the generator than this one."""
    recorded, current = info.get(GENERATOR_CODE), generator_code_digest()
    if recorded == current:
        return
    made = ("an older version of the generator (mission.json records no generator code)"
            if recorded is None else
            f"another version of the generator (mission.json: generator code {recorded}; "
            f"this code: {current})")
    log.warning("%s: the synthetic mission there was made by %s; it is read as it is and may "
                "differ from the mission this code generates: to regenerate it, delete the "
                "folder, or give another data.root", root, made)


def settings_that_differ(
    info: dict[str, Any], recorded: dict[str, Any], asked: dict[str, Any],
    resolved: dict[str, Any], defaults: dict[str, Any],
) -> dict[str, Any]:
    """The settings of ``asked`` (``generate``; ``resolved``: as the generator resolves them,
    ``groups`` None its count) that the mission's record (``recorded``) does not meet: all of
    them in a mission generated on first use (``FIRST_USE``), else only those asked for (not at
    the generator's default)."""
    first_use = info.get(FIRST_USE) is True
    return {
        k: v
        for k, v in asked.items()
        if k in recorded and recorded[k] != resolved.get(k, v)
        and (first_use or k not in defaults or defaults[k] != v)
    }
