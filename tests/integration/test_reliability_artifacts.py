"""Files a user hands us that carry code or structure (channel pickles, detector artifacts,
checkpoints, merge configs) end in correct output or one ``ESAInputError`` line: none runs
code, aborts the interpreter or takes memory out of proportion to its size. Grouped by entry
point; the cases that could abort the interpreter run in a child process with a bounded
address space (``RLIMIT_AS``)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import json_parse_sizes, manifest_of, write_manifest
from tests.integration.test_reliability_cli import assert_one_line_error, run_entry

REPO = Path(__file__).resolve().parents[2]


def run_bounded(
    code: str, budget_mib: int = 256, preload: str = "esa_lightning.data.safe_pickle"
) -> subprocess.CompletedProcess:
    """Run ``code`` in a child whose address space may grow ``budget_mib`` beyond what its
    imports (``preload``) took; it prints ``ok`` or ``ESAInputError: <message>``."""
    prologue = textwrap.dedent(
        f"""\
        import resource
        import {preload}
        from esa_lightning.errors import ESAInputError
        from esa_lightning.data.safe_pickle import read_pickled_frame
        vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1])
        limit = vm * 1024 + {budget_mib} * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        """
    )
    body = textwrap.indent(textwrap.dedent(code).strip() + '\nprint("ok")', "    ")
    refused = "except ESAInputError as exc:\n    print('ESAInputError:', exc)\n"
    child = f"{prologue}try:\n{body}\n{refused}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=120, env=env
    )


def assert_refused(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ESAInputError: "), proc.stdout + proc.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


# --------------------------------------------------- train.py / predict.py: channel pickles
def _frame_pickle() -> bytes:
    index = pd.date_range("2020-01-01", periods=5, freq="s")
    return pickle.dumps(pd.DataFrame({"channel_1": np.arange(5.0)}, index=index), protocol=5)


def _with_label_end_offset(end: int) -> bytes:
    """A frame pickle whose column-name string array claims its label ends at byte ``end``
    (pandas 3 pickles column labels as a pyarrow large_string array: offsets 0 and 9)."""
    honest = b"\x00" * 8 + (9).to_bytes(8, "little")
    data = _frame_pickle()
    assert data.count(honest) == 1
    return data.replace(honest, b"\x00" * 8 + end.to_bytes(8, "little"))


@pytest.mark.parametrize("end", [2**40, 12, 40, 64])
def test_channel_pickle_with_string_offsets_beyond_the_buffer(tmp_path, end):
    """2^40 aborted the interpreter (SIGSEGV/SIGABRT); 12-64 read bytes past the buffer."""
    path = tmp_path / "channel_1.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("channel_1", _with_label_end_offset(end))
    proc = run_bounded(f"print(read_pickled_frame({str(path)!r}).columns.tolist())")
    assert_refused(proc, str(path), "offsets")


def test_channel_pickle_with_a_non_string_arrow_array(tmp_path):
    data = _frame_pickle().replace(b"\x8c\x0clarge_string", b"\x8c\x0clarge_binary")
    path = tmp_path / "c.pkl"
    path.write_bytes(data)
    proc = run_bounded(f"read_pickled_frame({str(path)!r})")
    assert_refused(proc, str(path))


def test_channel_zip_bomb_is_refused_before_it_is_read(tmp_path):
    """384 MiB of zeros in a ~0.4 MB zip: refused from its header, within 256 MiB of memory
    (it used to be read whole, then parsed twice)."""
    path = tmp_path / "channel_1.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("channel_1", "w", force_zip64=True) as member:
            block = bytes(2**24)
            for _ in range(24):
                member.write(block)
    proc = run_bounded(f"read_pickled_frame({str(path)!r})", budget_mib=256)
    assert_refused(proc, str(path), "zip bomb")


def test_pickle_claiming_a_huge_byte_array_allocates_nothing(tmp_path):
    """BYTEARRAY8 claiming 1 GiB in a 40-byte file: refused before the allocation."""
    data = b"\x80\x05\x96" + (2**30).to_bytes(8, "little") + b"\x00" * 16 + b"."
    path = tmp_path / "c.pkl"
    path.write_bytes(data)
    proc = run_bounded(f"read_pickled_frame({str(path)!r})", budget_mib=256)
    assert_refused(proc, str(path), "byte array")


def test_channel_zip_with_corrupt_deflate_data(tmp_path):
    """A damaged deflate stream raised zlib.error, past the reader's error handling."""
    from esa_lightning.data.safe_pickle import read_pickled_frame
    from esa_lightning.errors import ESAInputError

    path = tmp_path / "channel_1.zip"
    noise = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes() * 30
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("channel_1", noise)
    data = bytearray(path.read_bytes())
    for i in range(45, 400, 7):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(ESAInputError, match="channel_1.zip: a damaged or encrypted zip"):
        read_pickled_frame(path)


def test_honest_channel_pickle_still_loads(tmp_path):
    path = tmp_path / "channel_1.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("channel_1", _frame_pickle())
    proc = run_bounded(
        f"""
        frame = read_pickled_frame({str(path)!r})
        assert frame.columns.tolist() == ["channel_1"] and frame.shape == (5, 1)
        """
    )
    assert proc.stdout.strip() == "ok", proc.stdout + proc.stderr


# ----------------------------------------------------- predict.py / merge.py: Detector.load
@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    """Saved detectors: a z-score one, two z-scores under a combiner, a GRU with a random-forest
    gate (its ``rf_gate.skops``)."""
    import torch

    from esa_lightning.artifact import Detector, mission_schema
    from esa_lightning.runtime.combiner import HybridCombiner
    from tests.helpers import fitted_zscore, make_mission
    from tests.integration.test_rf_head import fit
    from tests.integration.test_rf_head import make_mission as rf_mission

    root = tmp_path_factory.mktemp("artifacts")
    mission = make_mission()
    out = {"zscore": root / "zscore", "combined": root / "combined", "gru": root / "gru"}
    Detector({"zscore": fitted_zscore(mission)}, mission_schema(mission)).save(out["zscore"])
    components = {"a": fitted_zscore(mission), "b": fitted_zscore(mission)}
    combiner = HybridCombiner(neighbourhood=2).fit(components, mission.fit_range())
    Detector(components, mission_schema(mission), combiner).save(out["combined"])
    torch.set_num_threads(1)
    gru_mission = rf_mission()
    model, _ = fit(gru_mission, root / "fit", n_estimators=5, gate_factor=0.5)
    assert model.gate is not None
    Detector({"gru": model}, mission_schema(gru_mission)).save(out["gru"])
    return out


@pytest.fixture
def copy_of(artifacts, tmp_path):
    """A fresh copy of one of the saved ``artifacts`` (by name), to damage."""
    import shutil

    def copy(name: str) -> Path:
        return Path(shutil.copytree(artifacts[name], tmp_path / name, symlinks=True))

    return copy


def reseal(folder: Path) -> None:
    """Record the current parts' checksums: a deliberate, consistent edit of the artifact."""
    from esa_lightning.artifact import part_checksums

    manifest = manifest_of(folder)
    manifest["files"] = part_checksums(folder)
    write_manifest(folder, manifest)


def load_refused(folder: Path, *needles: str) -> str:
    from esa_lightning.artifact import Detector
    from esa_lightning.errors import ESAInputError

    with pytest.raises(ESAInputError) as info:
        Detector.load(folder)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_the_manifest_lists_every_part_with_its_checksum(artifacts):
    from esa_lightning.artifact import sha256_of

    folder = artifacts["gru"]
    files = manifest_of(folder)["files"]
    on_disk = {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name not in ("detector.json", "config.yaml")
    }
    assert set(files) == on_disk
    assert "components/gru/rf_gate.skops" in files and "components/gru/weights.pt" in files
    assert all(sha256_of(folder / name) == digest for name, digest in files.items())


def test_deleted_forest_head_is_refused(copy_of):
    """It loaded silently and alarms rose (27 to 123 intervals in the adversarial pass)."""
    folder = copy_of("gru")
    (folder / "components/gru/rf_gate.skops").unlink()
    load_refused(folder, "rf_gate.skops", "missing")


@pytest.mark.parametrize("kind", ["folder", "named pipe"])
@pytest.mark.parametrize("name", ["rf_gate.skops", "weights.pt"])
def test_a_part_that_is_not_a_regular_file_is_named_as_such(copy_of, name, kind):
    """A folder or a FIFO in place of a listed part was refused as ``missing (listed in
    detector.json)``, though it is there; the FIFO is never opened (reading it would wait for
    a writer)."""
    import signal

    folder = copy_of("gru")
    part = folder / "components/gru" / name
    part.unlink()
    part.mkdir() if kind == "folder" else os.mkfifo(part)
    signal.alarm(60)  # a read of the FIFO would hang: fail instead
    try:
        message = load_refused(folder, f"{part}: a {kind}, not a regular file (listed in ")
    finally:
        signal.alarm(0)
    assert "missing" not in message, message


@pytest.mark.parametrize("part", ["components/gru/rf_gate.skops", "components/gru/weights.pt"])
def test_changed_part_is_refused(copy_of, part):
    folder = copy_of("gru")
    with open(folder / part, "ab") as fh:
        fh.write(b"\0")
    load_refused(folder, part, "changed")


def test_unlisted_file_among_the_parts_is_refused(copy_of):
    folder = copy_of("zscore")
    (folder / "components/zscore/rf_gate.skops").write_bytes(b"PK")
    load_refused(folder, "rf_gate.skops", "not part of the artifact")


def _skops_bytes(obj) -> bytes:
    import skops.io as sio

    return sio.dumps(obj)


def _dummy_classifier():
    from sklearn.dummy import DummyClassifier

    return DummyClassifier(strategy="constant", constant=0).fit(np.zeros((4, 2)), [0, 1, 0, 1])


@pytest.mark.parametrize(
    "content, needle",
    [
        ("dummy", "DummyClassifier"),  # switched every alarm off
        ("os.system", ".system"),  # posix.system
        ("raw pickle", "skops"),
        ("truncated", "skops"),
    ],
)
def test_forged_forest_head_is_refused(copy_of, content, needle):
    """Even with the manifest's checksums updated to match, a head loads only as the exact
    types a random forest is made of."""
    folder = copy_of("gru")
    head = folder / "components/gru/rf_gate.skops"
    if content == "dummy":
        head.write_bytes(_skops_bytes(_dummy_classifier()))
    elif content == "os.system":
        head.write_bytes(_skops_bytes(os.system))
    elif content == "raw pickle":
        head.write_bytes(pickle.dumps({"a": 1}))
    else:
        head.write_bytes(head.read_bytes()[:300])
    reseal(folder)
    load_refused(folder, str(head), needle)


def test_forest_head_in_a_checkpoint_is_checked_too():
    from esa_lightning.errors import ESAInputError
    from esa_lightning.postprocessing.random_forest import forest_from_bytes

    with pytest.raises(ESAInputError, match="DummyClassifier"):
        forest_from_bytes(_skops_bytes(_dummy_classifier()))


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda m: m.pop("schema"), "schema"),
        (lambda m: m.update(schema=["channel_1"]), "schema"),
        (lambda m: m.update(components={}), "no components"),
        (lambda m: m.pop("files"), "files"),
        (lambda m: m.update(format_version="1"), "format '1'; this version reads formats 3 and 4"),
        (lambda m: m.update(format_version=9), "newer"),
    ],
)
def test_malformed_manifest_is_refused(copy_of, edit, needle):
    folder = copy_of("zscore")
    manifest = manifest_of(folder)
    edit(manifest)
    write_manifest(folder, manifest)
    load_refused(folder, "detector.json", needle)


def calibration(n: int) -> dict:
    spread = {"centre": [0.0] * n, "spread": [1.0] * n, "two_sided": True}
    return {"source": "validation", "n_rows": 10, "reference_scores": [0.1, 0.5, 2.0],
            "values": spread, "channel_scores": {**spread, "two_sided": False}}


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda c, n: 5, "must be an object"),
        (lambda c, n: {**c, "reference_scores": "x"}, "reference_scores"),
        (lambda c, n: {**c, "n_rows": -1}, "n_rows"),
        (lambda c, n: {**c, "values": {**c["values"], "spread": [1.0] * (n - 1)}}, "values"),
        (lambda c, n: {**c, "channel_scores": {**c["channel_scores"], "centre": ["abc"] * n}},
         "channel_scores"),
    ],
)
def test_an_edited_calibration_is_refused_at_load(copy_of, edit, needle):
    """detector.json's nominal reference (predict.py reads it instead of scoring validation):
    edited, it raised AttributeError / ValueError tracebacks in predict.py."""
    from esa_lightning.artifact import Detector

    folder = copy_of("zscore")
    manifest = manifest_of(folder)
    n = len(manifest["schema"]["channels"])
    manifest["info"]["calibration"] = calibration(n)
    write_manifest(folder, manifest)
    assert Detector.load(folder).info["calibration"]["n_rows"] == 10  # a whole record loads
    manifest["info"]["calibration"] = edit(calibration(n), n)
    write_manifest(folder, manifest)
    load_refused(folder, "detector.json", "info.calibration: ", needle)


def test_two_components_without_a_combiner_are_refused(copy_of):
    folder = copy_of("combined")
    manifest = manifest_of(folder)
    manifest["combiner"] = None
    write_manifest(folder, manifest)
    load_refused(folder, "detector.json", "no combiner")


def test_hyper_parameters_bigger_than_the_weights_allocate_nothing(copy_of):
    """``n_channels=1e12`` tried to allocate 4 TB: the model is built on the meta device first
    and compared with its weights (here 8 GB asked, in a child with 512 MiB to spare)."""
    folder = copy_of("zscore")
    manifest = manifest_of(folder)
    manifest["components"]["zscore"]["hparams"]["n_channels"] = 2 * 10**9
    write_manifest(folder, manifest)
    code = f"from esa_lightning.artifact import Detector; Detector.load({str(folder)!r})"
    proc = run_bounded(code, budget_mib=512, preload="esa_lightning.artifact")
    assert_refused(proc, str(folder / "components/zscore/weights.pt"), "do not belong together")


@pytest.mark.parametrize("n_channels", [1e12, -3, "3"])
def test_hyper_parameters_that_cannot_build_the_model(copy_of, n_channels):
    folder = copy_of("zscore")
    manifest = manifest_of(folder)
    manifest["components"]["zscore"]["hparams"]["n_channels"] = n_channels
    write_manifest(folder, manifest)
    load_refused(folder, str(folder))


@pytest.mark.parametrize(
    "path, value, needle",
    [
        (("window",), -5, "window"),
        (("post_processing", "threshold", "q"), float("nan"), "threshold.q = nan, not a finite"),
    ],
)
def test_invalid_gru_hyper_parameters_are_refused(copy_of, path, value, needle):
    folder = copy_of("gru")
    manifest = manifest_of(folder)
    node = manifest["components"]["gru"]["hparams"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    write_manifest(folder, manifest)
    load_refused(folder, "detector.json", needle)


def test_weights_as_text_are_refused(copy_of):
    folder = copy_of("zscore")
    (folder / "components/zscore/weights.pt").write_text("just some text\n" * 100)
    reseal(folder)
    load_refused(folder, "weights.pt", "cannot read weights")


def test_weights_linked_to_a_system_file_are_refused(copy_of):
    folder = copy_of("zscore")
    weights = folder / "components/zscore/weights.pt"
    weights.unlink()
    weights.symlink_to("/etc/passwd")
    load_refused(folder, "weights.pt", "outside the artifact")


@pytest.mark.parametrize("damage", ["deleted", "truncated", "a list", "wrong length"])
def test_damaged_combiner_is_refused(copy_of, damage):
    import json

    folder = copy_of("combined")
    path = folder / "combiner/combiner.json"
    if damage == "deleted":
        path.unlink()
    else:
        if damage == "truncated":
            path.write_text(path.read_text()[:40])
        elif damage == "a list":
            path.write_text("[1, 2, 3]")
        else:
            d = json.loads(path.read_text())
            d["coef"] = d["coef"][:-1]
            path.write_text(json.dumps(d))
        reseal(folder)
    load_refused(folder, "combiner.json")


def test_the_manifest_path_is_accepted_as_the_artifact(artifacts):
    from esa_lightning.artifact import Detector

    detector = Detector.load(artifacts["combined"] / "detector.json")
    assert set(detector.components) == {"a", "b"} and detector.combiner is not None


def test_another_file_as_the_artifact_names_what_to_pass(artifacts):
    load_refused(artifacts["zscore"] / "config.yaml", "config.yaml", "folder that holds")


# ------------------------------------------------------------- train.py: resume checkpoints
class Payload:
    """Unpickling this creates ``marker``: the proof that foreign code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


GRU_FAST = [
    "experiment=gru_ae",
    "data.val_days=2",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "model.hidden_size=16",
    "model.post_processing.rf_gate=null",
    "trainer.enable_progress_bar=false",
    "test=false",
]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> tuple[Path, Path]:
    """(mission root, run folder) of a finished tiny GRU run with its ``last.ckpt``."""
    from esa_lightning.data.readers.synthetic import generate_mission
    from esa_lightning.jobs.train import train
    from tests.conftest import compose_config

    root = tmp_path_factory.mktemp("resume")
    mission = root / "mission"
    generate_mission(mission, channels=4, groups=2, days=8, seed=3)
    run = root / "run"
    train(compose_config("train", [*GRU_FAST, f"data.root={mission}"], run))
    assert (run / "checkpoints/gru_ae/last.ckpt").is_file()
    return mission, run


def resume_refused(mission: Path, ckpt: Path, tmp_path: Path, *extra: str) -> str:
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.train import train
    from tests.conftest import compose_config

    overrides = [*GRU_FAST, f"data.root={mission}", f"ckpt_path={ckpt}", *extra]
    with pytest.raises(ESAInputError) as info:
        train(compose_config("train", overrides, tmp_path / "again"))
    assert "\n" not in str(info.value) and str(ckpt) in str(info.value)
    return str(info.value)


def test_resume_from_a_crafted_checkpoint_never_runs_it(trained_run, tmp_path, monkeypatch):
    """With TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 Lightning's own load unpickled everything."""
    import torch

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "epoch": Payload(str(marker))}, evil)
    resume_refused(trained_run[0], evil, tmp_path)
    assert not marker.exists()


def test_truncated_checkpoint_is_refused(trained_run, tmp_path):
    ckpt = tmp_path / "last.ckpt"
    data = (trained_run[1] / "checkpoints/gru_ae/last.ckpt").read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    message = resume_refused(trained_run[0], ckpt, tmp_path)
    # a damaged file, not only a hostile one ("not a checkpoint this version can resume from
    # safely" read as a security refusal)
    assert "the file is damaged, cut short, or not a checkpoint" in message


def test_checkpoint_of_another_model_size_is_refused(trained_run, tmp_path):
    ckpt = trained_run[1] / "checkpoints/gru_ae/last.ckpt"
    message = resume_refused(trained_run[0], ckpt, tmp_path, "model.hidden_size=8")
    assert "hidden_size" in message


def _edited(ckpt: Path, out: Path, edit) -> Path:
    import torch

    data = torch.load(ckpt, map_location="cpu", weights_only=False)
    edit(data)
    torch.save(data, out)
    return out


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda d: d["state_dict"].update(median=torch_zeros(3)), "median is not the model's"),
        (lambda d: d["state_dict"].update(scaler_median=torch_zeros(1, 3)), "scaler_median"),
        (lambda d: d.pop("optimizer_states"), "save_weights_only"),
        (lambda d: d["optimizer_states"][0]["state"][0].update(exp_avg=torch_zeros(5)),
         "exp_avg of parameter 0"),
    ],
)
def test_a_checkpoint_lightning_could_not_restore_is_one_line(trained_run, tmp_path, edit,
                                                             needle):
    """A buffer resized, missing or foreign (another experiment's or mission's checkpoint) and
    a checkpoint without or with a misfit optimizer state raised tracebacks inside
    trainer.fit: only the parameters were checked."""
    ckpt = _edited(trained_run[1] / "checkpoints/gru_ae/last.ckpt", tmp_path / "e.ckpt", edit)
    assert needle in resume_refused(trained_run[0], ckpt, tmp_path)


def test_a_model_without_an_optimizer_resumes(trained_run, tmp_path):
    """zscore and the window baselines have no optimizer: their checkpoints hold an empty
    optimizer entry, which a first version of the check refused."""
    from esa_lightning.jobs.train import train
    from tests.conftest import compose_config

    run = ["experiment=smoke", f"data.root={trained_run[0]}", "data.val_days=2", "logger=none",
           "trainer.enable_progress_bar=false", "~callbacks.progress_bar"]
    train(compose_config("train", run, tmp_path / "first"))
    ckpt = tmp_path / "first/checkpoints/smoke/last.ckpt"
    train(compose_config("train", [*run, f"ckpt_path={ckpt}"], tmp_path / "again"))
    assert (tmp_path / "again/detector/detector.json").is_file()


def torch_zeros(*shape: int):
    import torch

    return torch.zeros(*shape)


def test_resume_from_an_honest_checkpoint_still_works(trained_run, tmp_path, monkeypatch):
    from esa_lightning.jobs.train import train
    from tests.conftest import compose_config

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    ckpt = trained_run[1] / "checkpoints/gru_ae/last.ckpt"
    overrides = [*GRU_FAST, f"data.root={trained_run[0]}", f"ckpt_path={ckpt}"]
    train(compose_config("train", overrides, tmp_path / "again"))
    assert (tmp_path / "again/detector/detector.json").is_file()


def test_a_checkpoint_whose_threshold_lacks_its_tensor_resumes_and_refits_it(
    trained_run, tmp_path, caplog
):
    """A post rule's tensor missing from the checkpoint (a rule that gained one since) was
    refused ("no post_rules..."); every rule is refitted at the end of a resumed run, so it now
    resumes, says so in one line, and the detector is written with the rule fitted again."""
    import logging

    from esa_lightning.jobs.train import train
    from tests.conftest import compose_config

    ckpt = _edited(trained_run[1] / "checkpoints/gru_ae/last.ckpt", tmp_path / "e.ckpt",
                   lambda d: d["state_dict"].pop("post_rules.threshold.threshold"))
    overrides = [*GRU_FAST, f"data.root={trained_run[0]}", f"ckpt_path={ckpt}"]
    with caplog.at_level(logging.INFO):
        train(compose_config("train", overrides, tmp_path / "again"))
    assert (tmp_path / "again/detector/detector.json").is_file()
    said = [r.getMessage() for r in caplog.records if "post_processing.threshold" in r.getMessage()]
    assert any(str(ckpt) in line for line in said), said


def test_resume_refusal_is_one_line_and_exit_2(trained_run, tmp_path):
    """Through the command line, as a user meets it."""
    import torch

    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "epoch": Payload(str(tmp_path / "pwned"))}, evil)
    args = [*GRU_FAST, f"data.root={trained_run[0]}", f"ckpt_path={evil}"]
    last = assert_one_line_error(
        run_entry("train.py", args, tmp_path, timeout=300, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    )
    assert last.startswith(f"error: {evil}")
    assert not (tmp_path / "pwned").exists()


# ------------------------------------------------------------ merge.py: the sources' config
def _merge_with_config(config_yaml: str):
    import torch

    from esa_lightning.artifact import Detector, mission_schema
    from esa_lightning.jobs.merge import merge_detectors
    from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
    from tests.helpers import make_mission

    mission = make_mission(n_channels=1)
    models = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        models.append(
            LitGRUAttentionAE(
                n_inputs=2,
                n_outputs=1,
                window=6,
                hidden_size=4,
                latent_dim=2,
                objective="forecast",
                post_processing={"threshold": {"kind": "telemanom"}},
            )
        )
    schema = mission_schema(mission)
    sources = [Detector({"gru": m}, schema, config_yaml=config_yaml) for m in models]
    return merge_detectors(sources, ["first", "second"])


@pytest.mark.parametrize(
    "config_yaml, needle",
    [
        ("model: [unclosed", "not valid YAML"),
        ("model: !!python/object:os.system {}\n", "not valid YAML"),
        ("- a\n- b\n", "not a mapping"),
    ],
)
def test_merge_refuses_a_source_config_that_is_not_yaml(config_yaml, needle):
    from esa_lightning.errors import ESAInputError

    with pytest.raises(ESAInputError) as info:
        _merge_with_config(config_yaml)
    assert "first/config.yaml" in str(info.value) and needle in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "config_yaml",
    [
        "model: ${oc.env:ESA_TEST_SECRET}\n",
        "model:\n  hidden_size: ${oc.env:ESA_TEST_SECRET}\n",
        "model: ${missing}\n",
        "x: ${unknown_resolver:1}\n",
    ],
)
def test_merge_never_resolves_a_source_config(config_yaml, monkeypatch):
    """A downloaded artifact's ``${oc.env:...}`` was resolved (and its value echoed)."""
    monkeypatch.setenv("ESA_TEST_SECRET", "s3cr3t-value")
    merged = _merge_with_config(config_yaml)
    assert "s3cr3t-value" not in merged.config_yaml
    assert "${" in merged.config_yaml


def test_merge_sets_the_member_count_in_the_config():
    import yaml

    merged = _merge_with_config("model:\n  hidden_size: 4\n  members: 1\nseed: 3\n")
    assert yaml.safe_load(merged.config_yaml) == {
        "model": {"hidden_size": 4, "members": 2},
        "seed": 3,
    }


def test_merge_refuses_detectors_that_are_not_a_list(tmp_path):
    from omegaconf import OmegaConf

    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.merge import merge

    out = tmp_path / "out"
    cfg = OmegaConf.create({"detectors": str(tmp_path / "a"), "data": {},
                            "paths": {"output_dir": str(out)}})
    with pytest.raises(ESAInputError, match=r"detectors must be a list"):
        merge(cfg)
    assert not out.exists()
    cfg = OmegaConf.create({"detectors": [], "data": {}, "paths": {"output_dir": str(out)}})
    with pytest.raises(ESAInputError, match=r"at least two detectors"):  # was an IndexError
        merge(cfg)
    assert not out.exists()


def test_merge_never_replaces_another_runs_detector(tmp_path):
    """merge.py into a source's own run folder replaced its detector and metrics.json."""
    from omegaconf import OmegaConf

    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.merge import merge

    run = tmp_path / "run"
    (run / "detector").mkdir(parents=True)
    (run / "metrics.json").write_text("{}")
    cfg = OmegaConf.create({"detectors": [str(tmp_path / "a"), str(run / "detector")],
                            "data": {}, "paths": {"output_dir": str(run)}})
    with pytest.raises(ESAInputError, match="already holds detector and metrics.json"):
        merge(cfg)
    assert sorted(p.name for p in run.iterdir()) == ["detector", "metrics.json"]


@pytest.mark.parametrize("name", ["detector.json", "config.yaml"])
def test_text_files_linked_outside_the_artifact_are_refused(copy_of, name):
    """A link to /dev/zero would be read forever."""
    folder = copy_of("zscore")
    target = folder / name
    if name == "detector.json":
        moved = folder.parent / "elsewhere.json"
        target.rename(moved)
        target.symlink_to(moved)
    else:
        target.unlink()
        target.symlink_to("/dev/zero")
    load_refused(folder, name, "not a regular file inside the artifact")


def test_an_edited_config_yaml_still_loads(copy_of):
    """config.yaml is for people: it carries no checksum."""
    from esa_lightning.artifact import Detector

    folder = copy_of("zscore")
    (folder / "config.yaml").write_text("# notes\n")
    assert Detector.load(folder).config_yaml == "# notes\n"


def test_predict_with_a_changed_artifact_is_one_line_and_exit_2(copy_of, tmp_path):
    """Through the command line, as a user meets it."""
    folder = copy_of("zscore")
    weights = folder / "components/zscore/weights.pt"
    with open(weights, "ab") as fh:
        fh.write(b"\0")
    last = assert_one_line_error(
        run_entry("predict.py", [f"ckpt={folder / 'detector.json'}"], tmp_path, timeout=300)
    )
    assert last == (
        f"error: {weights}: changed since the artifact was written (sha256 differs from "
        "detector.json's); restore it or retrain"
    )


@pytest.mark.parametrize("key", ["members", "num_layers"])
def test_hyper_parameters_that_build_a_million_modules_are_stopped(copy_of, key):
    """Even on the meta device a million networks would take minutes and gigabytes."""
    folder = copy_of("gru")
    manifest = manifest_of(folder)
    manifest["components"]["gru"]["hparams"][key] = 10**6
    write_manifest(folder, manifest)
    load_refused(folder, "weights.pt", "do not belong together")


@pytest.mark.parametrize("listed", ["../../etc/passwd", "/etc/passwd"])
def test_a_manifest_listing_a_file_outside_names_the_manifest(copy_of, listed):
    folder = copy_of("zscore")
    manifest = manifest_of(folder)
    manifest["files"][listed] = "0" * 64
    write_manifest(folder, manifest)
    load_refused(folder, str(folder / "detector.json"), "outside the artifact", listed)


@pytest.mark.parametrize("period", ["banana", "-30s", "0s"])
def test_a_schema_period_that_is_no_duration_is_refused_at_load(copy_of, period):
    # else the detector loads and every input is refused as data off the schema's grid
    folder = copy_of("zscore")
    manifest = manifest_of(folder)
    manifest["schema"]["period"] = period
    write_manifest(folder, manifest)
    load_refused(folder, str(folder / "detector.json"), "schema.period", repr(period))


@pytest.mark.parametrize("part", ["detector.json", "combiner/combiner.json"])
def test_an_oversized_settings_file_is_refused_before_it_is_parsed(copy_of, monkeypatch, part):
    """detector.json and combiner.json hold settings (some 40 KB and 12 KB for 30 channels):
    one over 16 MiB is refused by its size, before json parses it. Parsed, a file of many tiny
    items (``[{}, {}, ...]``) takes some 23 times its size in memory (1.15 GB for 50 MiB), and
    detector.json could be 256 MiB. Padded here with spaces (valid JSON, its checksum
    unchanged), so that it loaded before."""

    limit = 16 * 2**20  # io.SETTINGS_LIMIT, as the docs state it
    folder = copy_of("combined")
    path = folder / part
    path.write_text(path.read_text() + " " * limit)
    if part != "detector.json":
        reseal(folder)
    parsed = json_parse_sizes(monkeypatch)
    message = load_refused(folder, part.split("/")[-1], "16 MiB")
    assert str(path) in message
    assert not [n for n in parsed if n > limit]  # refused before it was parsed
