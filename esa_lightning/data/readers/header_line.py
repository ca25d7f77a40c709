"""A text table's header line, and its first data row, read with a bound before the table is
parsed."""

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
        _checked_header(f.readline(limit + 1), limit, path)


def _checked_header(line: str, limit: int, path: Path) -> str:
    if len(line) > limit:
        raise ESAInputError(
            f"the header line is longer than {limit:,} characters (no line break in the first "
            f"{limit >> 20} MiB): not a CSV table with one header line",
            path=path,
        )
    return line


def long_row(limit: int) -> str:
    """Why a data row longer than ``limit`` characters (the CSV reader's block) is refused."""
    return (
        f"a data row is longer than {limit:,} characters (no line break within "
        f"{limit >> 20} MiB): not a CSV table of one row per line"
    )


def first_lines(path: Path, limit: int, header_limit: int = HEADER_LIMIT) -> tuple[str, str]:
    """The header line (``refuse_long_header``'s refusal over ``header_limit``) and the first
    line after it that is not blank (``""``: none), reading at most ``limit`` characters of it,
    in one pass: a row longer than ``limit`` is refused (``long_row``). Rows whose line ends
    were lost, after a fine header, were parsed whole by the csv module (2.5 s and 380 MiB of
    Python strings for 50 MB)."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        header = _checked_header(f.readline(header_limit + 1), header_limit, path)
        while line := f.readline(limit + 1):
            if len(line) > limit and line[-1] not in "\r\n":
                raise ESAInputError(long_row(limit), path=path)
            if line.strip():
                return header, line
    return header, ""


def first_data_line(path: Path, limit: int, header_limit: int = HEADER_LIMIT) -> str:
    """The first line after the header that is not blank (``first_lines``)."""
    return first_lines(path, limit, header_limit)[1]
