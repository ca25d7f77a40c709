"""A text table's header line read with a bound, before the table is parsed."""

from __future__ import annotations

from pathlib import Path

from esa_lightning.errors import ESAInputError

#: the longest header line read (characters): some 200,000 column names of 20 characters;
#: ESA-ADB's missions have under 1,000 columns
HEADER_LIMIT = 4 << 20


def refuse_long_header(path: Path, limit: int = HEADER_LIMIT) -> None:
    """Refuse a file whose first line is longer than ``limit`` characters (4 MiB), reading at
    most that much: a file without line breaks (telemetry whose line ends were lost, a file of
    another kind) was read whole as one header line, slowly and into memory, before a
    confusing error or an empty table."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        line = f.readline(limit + 1)
    if len(line) > limit:
        raise ESAInputError(
            f"the header line is longer than {limit:,} characters (no line break in the first "
            f"{limit >> 20} MiB): not a CSV table with one header line",
            path=path,
        )
