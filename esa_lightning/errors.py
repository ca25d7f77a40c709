"""The one error type users see: it names the file, the column or channel, and the reason."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike

#: the most characters of a user's value (a cell, a column name) an error message quotes
QUOTE_LIMIT = 80


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``value`` as an error message quotes it (``repr``), cut to its first ``limit``
    characters and its length (``'abc...' ... (N characters)``) when longer: one cell of a
    file can hold megabytes, which would become an error line as long."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def listed_differences(missing: list, extra: list, limit: int = 10) -> str:
    """``missing [...], extra [...]`` for two lists of names, a side with no name left out (an
    empty ``[]`` tells a user nothing) and each cut to its first ``limit`` names and a count."""
    parts = []
    for word, names in (("missing", list(missing)), ("extra", list(extra))):
        if names:
            shown = ", ".join(quoted(name) for name in names[:limit])
            more = f", ... ({len(names)} in all)" if len(names) > limit else ""
            parts.append(f"{word} [{shown}{more}]")
    return ", ".join(parts)


class ESAInputError(ValueError):
    """A user-facing failure: bad input data, a bad option, a mismatched artifact.

    The message always names where the problem is (file, column, channel or value) so that the
    entry points can print it as one line.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | PathLike | None = None,
        column: str | None = None,
        value: object = None,
    ) -> None:
        self.reason = reason
        self.path = None if path is None else str(path)
        self.column = column
        self.value = value
        where = []
        if self.path is not None:
            where.append(self.path)
        if column is not None:
            where.append(f"column {quoted(column)}")
        if value is not None:
            where.append(f"value {quoted(value)}")
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)

    def __reduce__(self) -> tuple:
        # rebuilt from its message and attributes, not by calling __init__ again: a subclass
        # with other arguments (``UnknownChannels``) still crosses process boundaries (DDP,
        # multiprocessing workers) with the same message
        return (_rebuilt_error, (type(self), self.args, self.__dict__))


def _rebuilt_error(cls: type[ESAInputError], args: tuple, state: dict) -> ESAInputError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error



class TooFewRows(ESAInputError):
    """Data with fewer rows than the detector needs to score one (the channel ensemble's pooled
    row), raised where the rows are featurised, which does not know where they came from: the
    caller that read them names them (``naming_short_data``)."""


@contextmanager
def naming_short_data(source: str | PathLike) -> Iterator[None]:
    """A ``TooFewRows`` raised without a path inside the block is raised again naming
    ``source``: the file, folder or ``DataFrame`` the rows were read from."""
    try:
        yield
    except TooFewRows as exc:
        if exc.path is not None:
            raise
        raise TooFewRows(exc.reason, path=source, column=exc.column, value=exc.value) from None


@contextmanager
def one_line_errors(debug: bool = False) -> Iterator[None]:
    """Every job's error wrapper: a user-facing error (``ESAInputError``) becomes one line on
    stderr and exit code 2 (``SystemExit(2)``); with ``debug`` the traceback is shown instead."""
    try:
        yield
    except ESAInputError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def user_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` in the function calling this one that names
    the first frame outside this package and the config libraries that call into it (Hydra's
    ``instantiate``, OmegaConf): the line that asked for it (a reader called directly, through
    ``load_mission``, a job or a datamodule built from a config, a cached read alike), not a
    line of the package or of Hydra's ``_instantiate2.py``."""
    frame, level = sys._getframe(2), 2  # the caller of the function warning: stacklevel 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_NOT_THE_USERS):
        frame, level = frame.f_back, level + 1
    return level


def _package_folder(name: str) -> str:
    """The folder of installed package ``name`` (with a trailing separator), or "" if absent."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return ""
    return os.path.abspath(list(spec.submodule_search_locations)[0]) + os.sep


# the frames user_stacklevel passes over: this package's, and those of the libraries that call
# into it on a config's behalf (a warning naming hydra/_internal/instantiate/_instantiate2.py
# tells the user nothing)
_NOT_THE_USERS = tuple(
    folder
    for folder in (os.path.dirname(os.path.abspath(__file__)) + os.sep,
                   *(_package_folder(name) for name in ("hydra", "omegaconf")))
    if folder
)
