"""Nothing half-written: killed writers leave the previous complete file; leftovers are cleaned."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from esa_lightning.artifact import Detector
from esa_lightning.errors import ESAInputError
from esa_lightning.io import remove_stale_temporaries
from tests.conftest import compose_config
from tests.helpers import checkout_env, dead_pid, owned_name, write_esa_csv

REPO = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    from esa_lightning.io import save_npy_atomic, write_json_atomic
    from esa_lightning.models.zscore.model import RobustZScore
    from esa_lightning.artifact import Detector

    out = Path(sys.argv[1])
    k = 0
    while True:
        save_npy_atomic(out / "big.npy", np.full(2_000_000, k, dtype=np.float64))
        write_json_atomic(out / "state.json", {"k": k, "pad": [k] * 200_000})
        model = RobustZScore(n_channels=64, quantile=99.0)
        model.threshold.fill_(float(k))
        schema = {"channels": [f"c{i}" for i in range(64)], "telecommands": [], "period": None}
        Detector({"z": model}, schema).save(out / "detector")
        if k == 0:
            print("ready", flush=True)
        k += 1
    """
)


def assert_complete(out: Path) -> None:
    big = np.load(out / "big.npy")
    assert big.shape == (2_000_000,) and (big == big[0]).all()
    state = json.loads((out / "state.json").read_text())
    assert state["pad"] == [state["k"]] * 200_000
    det = Detector.load(out / "detector")
    assert det.components["z"].threshold.numel() == 1


def test_killed_writer_leaves_complete_files(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    out = tmp_path / "out"
    for sig, delay in ((signal.SIGKILL, 0.05), (signal.SIGTERM, 0.23), (signal.SIGKILL, 0.41)):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True,
            env=checkout_env(),
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        proc.stdout.close()
        assert_complete(out)
        remove_stale_temporaries(out)
        leftovers = [p.name for p in out.rglob("*") if p.name.startswith((".tmp-", ".old-"))]
        assert leftovers == []
        assert_complete(out)


def test_half_replaced_detector_is_restored(tmp_path):
    pid = dead_pid()
    det_dir = tmp_path / "detector"
    det_dir.mkdir()
    (det_dir / "detector.json").write_text("{}")
    # killed between "rename the old one away" and "rename the new one in"
    det_dir.rename(tmp_path / owned_name(".old-", pid, "detector"))
    (tmp_path / owned_name(".tmp-", pid, "detector.x1") / "components").mkdir(parents=True)
    assert remove_stale_temporaries(tmp_path) == 2
    assert (det_dir / "detector.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["detector"]


def test_reader_cleans_its_cache_dir(tmp_path):
    from esa_lightning.data.readers.esa_csv import read_esa_csv

    cache = tmp_path / "cache"
    stale = cache / owned_name(".tmp-", dead_pid(), "deadbeef.1")
    stale.mkdir(parents=True)
    (stale / "values.npy").write_bytes(b"torn")
    read_esa_csv(write_esa_csv(tmp_path / "m.csv"), cache_dir=cache)
    names = sorted(p.name for p in cache.iterdir() if p.is_dir())
    assert len(names) == 1 and not names[0].startswith(".")
    assert (cache / names[0] / "manifest.json").is_file()


def test_predict_removes_leftovers_in_its_output_folder(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    pid = dead_pid()
    (out / owned_name(".tmp-", pid, "submission.csv.x1")).write_text("torn")
    (out / owned_name(".tmp-", pid, "prediction.x2")).mkdir()
    (out / "submission.csv").write_text("id,is_anomaly\n")  # an earlier prediction's
    (out / ".esa_lightning-outputs.json").write_text('{"files": ["submission.csv"]}')
    from esa_lightning.jobs.predict import predict

    cfg = compose_config(
        "predict", [f"ckpt={tmp_path / 'missing'}", "data=esa_csv", f"data.root={tmp_path}"], out
    )
    with pytest.raises(ESAInputError, match="detector.json"):
        predict(cfg)
    assert [p.name for p in out.rglob(".tmp-*")] == []
    assert (out / "submission.csv").read_text() == "id,is_anomaly\n"
