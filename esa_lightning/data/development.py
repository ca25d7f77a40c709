"""A development copy of a NASA telemanom folder: only the rows a converted mission trains on.

Every setting must be chosen without reading a test range. To try a detector setting on real
telemetry and score it on labeled events, build a second mission whose whole extent (training,
validation and test) lies inside the first mission's training rows, and score the setting there:

    python -m esa_lightning.data.development --source NASA --mission MISSION --out DEV_SOURCE
    python -m esa_lightning.data.convert --source DEV_SOURCE --out DEV ...

``MISSION`` is a folder written by ``esa_lightning.data.convert`` from ``NASA`` (its
``mission.json`` says which rows of each recording lie before its split). ``DEV_SOURCE`` is a
telemanom folder again, holding for each of the mission's channels:

- ``train/<chan>.npy``: the NASA training file, whole (it lies before the split in every
  arrangement; a mission converted with ``--recordings test`` never read it);
- ``test/<chan>.npy``: the first rows of its test recording, those before the mission's split
  (with ``--recordings test`` its training and validation stretches; otherwise the rows up to
  the split row);
- ``labeled_anomalies.csv``: its sequences inside those rows, a sequence crossing the cut ended
  at the cut's last row, later ones left out.

A channel with fewer than 2 test rows before the split is left out, and the tool names it.
``python benchmarks/quality.py --development`` builds its twins of the benchmark's converted
missions this way (``benchmarks/DEVELOPMENT.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from esa_lightning import io
from esa_lightning.data.convert import check_output
from esa_lightning.data.readers.nasa import (
    LABELS_FILE,
    _load_array,
    _parse_classes,
    _read_listing,
    parse_sequences,
)
from esa_lightning.errors import ESAInputError

MIN_TEST_ROWS = 2


def rows_before_split(record: dict[str, Any], path: Path) -> dict[str, tuple[int, int]]:
    """(rows before the split, rows in all) of each channel's test recording, as ``record`` (a
    converted mission's ``mission.json``, read from ``path``) places it."""
    source = record.get("source")
    fmt = source.get("format") if isinstance(source, dict) else None
    if fmt != "nasa_telemanom":
        raise ESAInputError(
            "this mission was not converted from a NASA telemanom folder",
            path=path,
            column="source.format",
            value=fmt,
        )
    try:
        split = int(record["split_row"])
        out = {}
        for chan, rows in record["channels"].items():
            parts = [rows.get(k) for k in ("train_rows", "val_rows", "test_rows")]
            n = [int(p[1]) - int(p[0]) + 1 if p else 0 for p in parts]
            if record.get("recordings", "both") == "test":
                out[str(chan)] = (n[0] + n[1], sum(n))
            else:
                first = int(parts[2][0])
                out[str(chan)] = (max(0, min(split, first + n[2]) - first), n[2])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ESAInputError(
            f"not a converted NASA mission's record ({type(exc).__name__}: {exc})", path=path
        ) from None
    for chan in out:
        if chan in ("", ".", "..") or any(c in chan for c in "/\\"):
            raise ESAInputError("not a channel name", path=path, column="channels", value=chan)
    return out


def clipped_sequences(
    pairs: list[tuple[int, int]], classes: list[str | None], n_rows: int
) -> tuple[list[list[int]], list[str | None]]:
    """The sequences (inclusive row pairs) and their classes inside the first ``n_rows`` rows."""
    kept = [([a, min(b, n_rows - 1)], c) for (a, b), c in zip(pairs, classes, strict=True)]
    kept = [(p, c) for p, c in kept if p[0] < n_rows]
    return [p for p, _ in kept], [c for _, c in kept]


def development_source(
    source: str | os.PathLike, mission: str | os.PathLike, out: str | os.PathLike
) -> tuple[Path, list[str]]:
    """Write the development copy of the NASA folder ``source`` for the converted ``mission``
    into the new folder ``out`` (see the module docstring); return ``out`` and the channels
    left out (fewer than ``MIN_TEST_ROWS`` test rows before the split)."""
    source, mission, out = Path(source), Path(mission), Path(out)
    record_path = mission / "mission.json"
    try:
        record = io.read_settings_json(record_path)
    except ESAInputError:
        raise  # over the size bound, or not a file: refused naming it
    except (OSError, ValueError, RecursionError) as exc:
        raise ESAInputError(f"cannot read the mission record: {exc}", path=record_path) from None
    if not isinstance(record, dict):
        raise ESAInputError("the mission record is not a JSON object", path=record_path)
    keep_rows = rows_before_split(record, record_path)
    csv_path = source / LABELS_FILE
    listing = _read_listing(csv_path, None).set_index("chan_id")
    missing = sorted(set(keep_rows) - set(listing.index))
    if missing:
        raise ESAInputError(
            "the mission's channels are not all listed in this folder (another source?)",
            path=csv_path,
            column="chan_id",
            value=", ".join(missing[:5]),
        )
    check_output(source, out)

    left_out = []
    with io.new_folder(out) as tmp:  # check_output: new or empty
        (tmp / "train").mkdir()
        (tmp / "test").mkdir()
        rows = []
        for chan, (n_keep, n_recording) in keep_rows.items():
            test = _load_array(source / "test" / f"{chan}.npy", chan)
            if len(test) != n_recording:
                raise ESAInputError(
                    f"the mission's {chan} recording has {n_recording} rows, this folder's "
                    f"{len(test)} (another source?)",
                    path=source / "test" / f"{chan}.npy",
                )
            if n_keep < MIN_TEST_ROWS:
                left_out.append(chan)
                continue
            row = listing.loc[chan]
            pairs = parse_sequences(row["anomaly_sequences"], len(test), csv_path, chan)
            classes = _parse_classes(row["class"], len(pairs), csv_path, chan)
            pairs, classes = clipped_sequences(pairs, classes, n_keep)
            shutil.copyfile(source / "train" / f"{chan}.npy", tmp / "train" / f"{chan}.npy")
            np.save(tmp / "test" / f"{chan}.npy", test[:n_keep])
            rows.append(
                {
                    "chan_id": chan,
                    "spacecraft": row["spacecraft"],
                    "anomaly_sequences": json.dumps(pairs),
                    "class": "[" + ", ".join(map(str, classes)) + "]",
                    "num_values": n_keep,
                }
            )
        if not rows:
            raise ESAInputError(
                "no channel has test rows before the mission's split", path=record_path
            )
        pd.DataFrame(rows).to_csv(tmp / LABELS_FILE, index=False)
    return out, left_out


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; a user error is one line on stderr and exit code 2."""
    parser = argparse.ArgumentParser(
        prog="python -m esa_lightning.data.development",
        description="A NASA telemanom folder holding only the rows a converted mission trains "
        "on: convert it again to get a development mission inside that mission's training rows.",
    )
    parser.add_argument("--source", required=True, help="the NASA telemanom folder")
    parser.add_argument("--mission", required=True, help="a mission converted from --source")
    parser.add_argument("--out", required=True, help="the new folder to write")
    args = parser.parse_args(argv)
    try:
        out, left_out = development_source(args.source, args.mission, args.out)
    except ESAInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}: the rows of {args.mission} before its split, as a telemanom folder")
    if left_out:
        few = f"fewer than {MIN_TEST_ROWS} test rows before the split"
        print(f"left out ({few}): {', '.join(left_out)}")
    print(f"convert it: python -m esa_lightning.data.convert --source {out} --out <folder> ...")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
