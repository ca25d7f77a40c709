"""What every benchmark script shares: its timing, the machine line and its section of
RESULTS.md."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _checkout  # noqa: F401

from esa_lightning.io import write_text_atomic

RESULTS = Path(__file__).with_name("RESULTS.md")


def best_of(repeats: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """(the fewest seconds of ``repeats`` calls of ``fn``, the last call's result)."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def machine() -> str:
    """CPU count and model, RAM, Python, and the load average (other jobs skew wall times)."""
    cpu, ram = "unknown CPU", "unknown RAM"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB RAM"
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs (nproc), {cpu}, {ram}, Python {platform.python_version()}, "
        f"load average (1/5/15 min) {load}"
    )


def write_section(text: str) -> None:
    """Replace the section whose ``## `` header is ``text``'s first line (or append it)."""
    header = text.splitlines()[0]
    old = RESULTS.read_text() if RESULTS.is_file() else "# Benchmark results\n"
    lines = old.splitlines()
    new = text.rstrip("\n").splitlines()
    if header in lines:
        a = lines.index(header)
        b = next((j for j in range(a + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        lines = lines[:a] + new + [""] + lines[b:]
    else:
        lines = lines + [""] + new
    write_text_atomic(RESULTS, "\n".join(lines).rstrip("\n") + "\n")


def replace_section(header: str, body: str) -> None:
    """``write_section`` for a header and a body given apart."""
    write_section(f"{header}\n\n{body.strip(chr(10))}\n")


def tree_rss_kib(pid: int) -> int:
    """Sum of VmRSS (KiB) over ``pid`` and its descendants (worker processes included)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def _stamp(folder: Path) -> Path:
    """Where ``stamp_scratch`` records what made ``folder``: ``<folder>.params.json``."""
    return folder.with_name(folder.name + ".params.json")


def reusable_scratch(folder: Path, params: dict[str, Any]) -> bool:
    """Whether the benchmark's scratch ``folder`` (a generated mission, a parquet file) may be
    reused: True when its stamp ``<folder>.params.json`` records these ``params`` (include the
    generator's code digest where it made the data); False when it does not exist (make it, then
    ``stamp_scratch``). One made with other params, or without a stamp (an older benchmark), is
    refused naming both: it is never reused nor removed."""
    stamp = _stamp(folder)
    if not folder.exists():
        return False
    recorded = json.loads(stamp.read_text()) if stamp.is_file() else None
    if recorded != json.loads(json.dumps(params)):
        raise SystemExit(f"{folder}: made with {recorded or 'unrecorded parameters'}, this run "
                         f"needs {params}: delete it or choose another --workdir")
    return True


def stamp_scratch(folder: Path, params: dict[str, Any]) -> None:
    """Record what made ``folder`` (``reusable_scratch`` checks it on reuse)."""
    write_text_atomic(_stamp(folder), json.dumps(params))


def scratch_params(folder: Path) -> dict[str, Any]:
    """The params ``folder`` was stamped with (``stamp_scratch``), for the params of what is
    derived from it (a mission's Kaggle copy): a folder with no stamp is refused."""
    stamp = _stamp(folder)
    if not stamp.is_file():
        raise SystemExit(f"{folder}: no record of the parameters that made it ({stamp.name}): "
                         "delete it or choose another --workdir")
    return json.loads(stamp.read_text())
