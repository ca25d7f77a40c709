"""A ``-m`` sweep whose jobs would train in one folder is refused before it starts.

Hydra's basic launcher puts job ``N`` in ``<hydra.sweep.dir>/<hydra.sweep.subdir>``, the subdir
resolved in the job's own config (``${hydra.job.num}`` by default). A subdir that does not tell
the jobs apart put several in one folder: each after the first was refused only once it ran,
after Hydra had rewritten the first job's ``.hydra/`` (its config then not the detector's).
``refuse_shared_subdir`` refuses a subdir of one fixed name from the command line alone;
``refuse_job_subdirs`` resolves any other (the command line's, or one an experiment or another
config file sets, which was not checked) in each job's config, as the launcher does, and refuses
the first job whose folder is not inside the sweep folder (it was refused only as it ran, and
only where an earlier run had trained there) and the first two jobs that share a folder, naming
the keys it is built from.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from esa_lightning.jobs.paths import ConfigFolders

SUBDIR_KEY = "hydra.sweep.subdir"
#: a subdir holding one of these differs from job to job
JOB_NUMBERS = ("${hydra.job.num}", "${hydra.job.id}")
#: ``${key}``: a plain interpolation of a config key (not a resolver's ``${name:...}``)
PLAIN_KEY = re.compile(r"\$\{([A-Za-z_][\w.\-\[\]]*)\}")
ADVICE = ("give each its own (leave hydra.sweep.subdir at ${hydra.job.num}, or name a swept key "
          "in it)")
INSIDE_ADVICE = ("give it a relative hydra.sweep.subdir without '..' (leave it at "
                 "${hydra.job.num}, or name a swept key in it), or move the whole sweep "
                 "with hydra.sweep.dir")


def refuse_shared_subdir(parsed: list[Any], jobs: int) -> None:
    """A ``hydra.sweep.subdir`` of one fixed name (no ``${...}``, not swept) puts every job of a
    sweep of several in one folder: one ``error:`` line and exit code 2 before the sweep
    starts. An interpolated or swept subdir is resolved per job (``refuse_job_subdirs``)."""
    for override in parsed:
        if override.get_key_element() != SUBDIR_KEY or override.is_sweep_override():
            continue
        value = str(override.value())
        if jobs > 1 and "${" not in value:
            _refuse(f"{override.input_line}: each of the {jobs} jobs of this sweep would train "
                    f"in the same folder <hydra.sweep.dir>/{value}: {ADVICE}")


def refuse_job_subdirs(config_name: str, parsed: list[Any], jobs: Sequence[Sequence[str]],
                       expressions: Sequence[Any], folders: ConfigFolders | None = None) -> None:
    """Where a job's ``hydra.sweep.subdir`` (``expressions``: each job's, as its composed config
    gives it, unresolved: the command line's, an experiment's or another config file's) is not
    the job's number, resolve it in each job's config as Hydra's basic launcher does (its
    ``hydra.job.num``, the sweep's ``${now:}``). One ``error:`` line and exit code 2, before the
    sweep starts, for the first job whose folder is not one of its own inside the sweep folder
    (``../other/${seed}``, an absolute path, the sweep folder itself), and for the first two jobs
    with one folder, naming them, the folder and the keys it is built from (those no job
    changes, or those the two share). A subdir that cannot be resolved before the job runs
    (``${hydra:...}``) is left to the jobs. ``folders``: the command line's ``-cp``/``-cd``."""
    if all(str(e) in JOB_NUMBERS for e in expressions):  # the default: the job's number
        return
    given = [o for o in parsed if o.get_key_element() == SUBDIR_KEY]
    subdirs = job_subdirs(config_name, jobs, folders)
    if subdirs is None:
        return

    def named(number: int) -> str:  # as the user wrote it
        if given:
            return given[-1].input_line
        return f"{SUBDIR_KEY}={expressions[number]} (set by the config, not the command line)"

    for number, subdir in enumerate(subdirs):
        where = leads_out(subdir)
        if where:
            _refuse(f"{named(number)}: job {number} of this sweep would train in "
                    f"<hydra.sweep.dir>/{subdir}, {where}: each job trains in a folder of its "
                    "own inside the sweep folder, where the sweep's checks, its summary.csv and "
                    f"a resume find it: {INSIDE_ADVICE}")
    seen: dict[str, int] = {}
    for number, subdir in enumerate(subdirs):
        if subdir not in seen:
            seen[subdir] = number
            continue
        first = seen[subdir]
        expression = str(expressions[number])
        why = (_why(expression, jobs, first, number)
               if str(expressions[first]) == expression else "")
        _refuse(f"{named(number)}: jobs {first} and {number} of this sweep would train in the "
                f"same folder <hydra.sweep.dir>/{subdir}{why}: {ADVICE}")


def leads_out(subdir: str) -> str | None:
    """Where job folder ``<hydra.sweep.dir>/<subdir>`` is when it is not a folder inside the
    sweep folder (``outside the sweep folder``, ``the sweep folder itself``); None when it
    is."""
    if os.path.isabs(subdir):
        return "outside the sweep folder"
    normal = os.path.normpath(subdir)
    if normal == ".":
        return "the sweep folder itself"
    return "outside the sweep folder" if normal.split(os.sep)[0] == ".." else None


def _why(expression: str, jobs: Sequence[Sequence[str]], first: int, second: int) -> str:
    """``, as it is built from KEY, which ...``: the keys of the subdir's expression that no job
    changes, or else those the two jobs give one value."""
    keys = list(dict.fromkeys(PLAIN_KEY.findall(expression)))
    if not keys:
        return ""
    swept = {_key(o) for job in jobs for o in job}
    unchanged = [k for k in keys if k not in swept]
    if unchanged:
        return (f", as it is built from {', '.join(unchanged)}, which no job of this sweep "
                "changes")
    return f", as it is built from {', '.join(keys)}, which is the same in both"


def _key(override: str) -> str:
    return override.split("=", 1)[0].strip().lstrip("+~")


def job_subdirs(config_name: str, jobs: Sequence[Sequence[str]],
                folders: ConfigFolders | None = None) -> list[str] | None:
    """Each job's ``hydra.sweep.subdir``, resolved in its config as the launcher resolves it
    (the package's configs, or the command line's ``-cp``/``-cd``: ``folders``); None where a
    job's subdir cannot be resolved here."""
    from hydra import compose
    from hydra.core.utils import setup_globals
    from omegaconf import OmegaConf, open_dict

    from esa_lightning.jobs.paths import hydra_initialized

    setup_globals()  # ${now:...}, as Hydra registers it before a sweep
    first: Any = None
    subdirs: list[str] = []
    try:
        with hydra_initialized(folders=folders):
            for number, job in enumerate(jobs):
                cfg = compose(config_name=config_name, overrides=list(job),
                              return_hydra_config=True)
                with open_dict(cfg):
                    cfg.hydra.job.num = number
                    cfg.hydra.job.id = str(number)
                if first is None:
                    first = cfg
                else:  # the launcher hands the sweep's resolver cache to each job
                    OmegaConf.copy_cache(from_config=first, to_config=cfg)
                subdirs.append(str(OmegaConf.select(cfg, SUBDIR_KEY,
                                                    throw_on_resolution_failure=True)))
    except Exception:  # noqa: BLE001 - resolved only as the job runs: the jobs check it then
        return None
    return subdirs


def _refuse(line: str) -> None:
    print(f"error: {line}", file=sys.stderr)
    raise SystemExit(2)
