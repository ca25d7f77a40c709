"""Inference container entrypoint: /data/test.parquet + /artifacts -> /data/submission.csv.

The Kaggle challenge's reference container reads the test file from ``/data``, finds the model
under ``/artifacts`` and writes ``/data/submission.csv``. Folders can be changed with
``--data`` / ``--artifacts`` (or ``ESA_DATA_DIR`` / ``ESA_ARTIFACTS``) so that the same script is
tested outside a container.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from esa_lightning.errors import ESAInputError, naming_short_data
from esa_lightning.jobs.common import one_line_errors


def find_detector(artifacts: Path) -> Path:
    """The artifact folder itself, or the single ``detector`` folder somewhere below it (the
    leftovers of an interrupted atomic write, ``.tmp-*`` / ``.old-*`` folders, aside)."""
    from esa_lightning.io import OLD_PREFIX, TMP_PREFIX

    if (artifacts / "detector.json").is_file():
        return artifacts
    found = sorted(
        p.parent
        for p in artifacts.rglob("detector.json")
        if not any(
            part.startswith((TMP_PREFIX, OLD_PREFIX))
            for part in p.parent.relative_to(artifacts).parts
        )
    )
    if len(found) != 1:
        names = [p.relative_to(artifacts).as_posix() for p in found[:5]]
        named = f": {', '.join(names)}{', ...' if len(found) > 5 else ''}" if found else ""
        raise ESAInputError(
            f"expected one detector artifact, found {len(found)}{named}", path=artifacts
        )
    return found[0]


def run(data_dir: Path, artifacts: Path, chunk_rows: int = 1_000_000) -> Path:
    from esa_lightning.artifact import (
        Detector,
        check_schema,
        in_trained_order,
        missing_trained_channels,
    )
    from esa_lightning.data.readers.kaggle import read_kaggle
    from esa_lightning.data.selection import UnknownChannels
    from esa_lightning.jobs.predict import warn_skipped_rows
    from esa_lightning.reporting.events import row_ids
    from esa_lightning.reporting.outputs import write_submission
    from esa_lightning.runtime.chunks import score_in_chunks
    from esa_lightning.settings import RULES

    ok, requirement = RULES["chunk_rows"]  # predict.py's chunk_rows rule, named by the flag
    if not ok(chunk_rows):
        raise ESAInputError(f"--chunk-rows {chunk_rows}: {requirement}")
    test_file = data_dir / "test.parquet"
    if not test_file.is_file():
        raise ESAInputError("test file not found", path=test_file)
    detector = Detector.load(find_detector(artifacts))
    # the channels it was trained on (a target or lightweight subset of the file's columns, in
    # the training order); a channel the file lacks is named. Telecommands are read by name too
    channels = list(detector.schema["channels"])
    try:
        mission = read_kaggle(test_file, channels=channels, use_cache=False)
    except UnknownChannels as exc:
        raise missing_trained_channels(exc) from None
    mission = in_trained_order(detector.schema, mission)
    check_schema(detector.schema, mission, source=str(test_file))
    warn_skipped_rows(mission, test_file)  # ids skipped: scored as given, said as predict.py does
    with naming_short_data(test_file):
        scores = score_in_chunks(detector, mission, chunk_rows, keep_channel_scores="none")
    return write_submission(row_ids(mission), scores.alarm, data_dir / "submission.csv")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("ESA_DATA_DIR", "/data"))
    parser.add_argument("--artifacts", default=os.environ.get("ESA_ARTIFACTS", "/artifacts"))
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    try:
        with one_line_errors():
            out = run(Path(args.data), Path(args.artifacts), args.chunk_rows)
    except SystemExit as exc:  # the one-line error was printed; the entry point's exit code
        return int(exc.code)
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
