"""No command writes into a detector artifact: ``hydra.run.dir=`` the artifact's folder or a
folder inside it (``<run>/detector/sub``) is refused before Hydra writes, naming the artifact."""

from __future__ import annotations

import pytest

from esa_lightning.errors import ESAInputError
from tests.integration.test_run_folder_reuse import an_artifact, run_job, snapshot

ARGS = {
    "train.py": ["experiment=smoke", "logger=none", "test=false"],
    "merge.py": ["detectors=[nowhere,nowhere]"],
    "predict.py": ["ckpt=nowhere"],
    "evaluate.py": ["predictions=nowhere.csv"],
}


# the artifact's own folder ("") for train.py and merge.py only: predict.py and evaluate.py
# already refused it, naming its detector.json (tests/integration/test_run_folder_reuse.py)
CASES = [(script, inside) for script in sorted(ARGS) for inside in ("sub", "components/z/sub", "")
         if inside or script in ("train.py", "merge.py")]


@pytest.mark.parametrize(("script", "inside"), CASES)
def test_a_run_folder_in_an_artifact_is_refused_naming_it(tmp_path, script, inside):
    """train.py (a whole run: checkpoints/, detector/, metrics.json) and predict.py (its
    submission, report and figures) wrote inside ``<run>/detector/sub``, exit 0; merge.py went
    on to read its sources there; train.py and merge.py wrote into ``<run>/detector`` itself."""
    artifact = tmp_path / "run" / "detector"
    before = an_artifact(artifact)
    folder = artifact / inside if inside else artifact
    proc = run_job(script, [*ARGS[script], f"hydra.run.dir={folder}"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {folder}: ") and f"artifact {artifact} " in line, line
    assert "Traceback" not in proc.stderr
    assert snapshot(artifact) == before
    assert sorted(p.relative_to(artifact).as_posix() for p in artifact.rglob("*")) == [
        "components", "components/z", "components/z/weights.pt", "detector.json"
    ]


def test_the_jobs_check_too_for_the_python_api(tmp_path):
    from esa_lightning.jobs.run_guard import (
        refuse_earlier_run,
        refuse_earlier_sweep,
        refuse_merge_folder,
        refuse_other_runs_folder,
    )

    artifact = tmp_path / "run" / "detector"
    an_artifact(artifact)
    folder = artifact / "a" / "b"
    for check in (
        lambda: refuse_earlier_run(folder, None, "output_dir="),
        lambda: refuse_earlier_run(folder, "last", "output_dir="),
        lambda: refuse_earlier_sweep(folder, None),
        lambda: refuse_merge_folder(folder),
        lambda: refuse_other_runs_folder(folder, "predict"),
    ):
        with pytest.raises(ESAInputError, match=f"artifact {artifact} "):
            check()
    refuse_merge_folder(tmp_path / "run" / "elsewhere")  # beside it: a folder of its own
    refuse_earlier_run(tmp_path / "run" / "detector.json.d", None, "output_dir=")
