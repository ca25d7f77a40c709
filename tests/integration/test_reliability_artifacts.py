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

REPO = Path(__file__).resolve().parents[2]


def run_bounded(code: str, budget_mib: int = 256) -> subprocess.CompletedProcess:
    """Run ``code`` in a child whose address space may grow ``budget_mib`` beyond what its
    imports took; it prints ``ok`` or ``ESAInputError: <message>``."""
    prologue = textwrap.dedent(
        f"""\
        import resource
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
