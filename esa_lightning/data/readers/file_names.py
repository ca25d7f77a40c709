"""Names in a data folder's tables that name files: none may lead out of the folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from esa_lightning.errors import ESAInputError


def refuse_path_names(names: pd.Series, path: Path | str, column: str, files: str) -> None:
    """Refuse a name of ``column`` (in the table ``path``) holding a path separator (``/``, or
    ``\\`` where the system has it): it names files (``files``, e.g. ``channels/<name>.zip``)
    that would lie outside their folder, and so would what a converter writes under it."""
    seps = [sep for sep in (os.sep, os.altsep, "/") if sep]
    pathlike = np.flatnonzero(names.map(lambda n: any(sep in n for sep in seps)).to_numpy())
    if len(pathlike):
        raise ESAInputError(
            f"a name holding a path separator, in row {pathlike[0] + 1} after the header (a "
            f"{column} names its files {files})",
            path=path,
            column=column,
            value=names.iloc[pathlike[0]],
        )
