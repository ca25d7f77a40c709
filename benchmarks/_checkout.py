"""Make a benchmark script import the ``esa_lightning`` package of its own checkout.

``python benchmarks/<x>.py`` (and the worker processes the scripts start the same way) puts only
``benchmarks/`` on ``sys.path``, so the package would come from wherever it is installed (an
editable install of another checkout), while the ``train.py`` / ``predict.py`` the benchmarks
run from the repository root use this checkout's code and ``full_scale.pipeline_code`` digests
this checkout's files. Every module in ``benchmarks/`` imports this one before the package or
any other benchmark module: it puts the repository root first on ``sys.path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def put_root_first() -> None:
    """Put the checkout's root first on ``sys.path``; refuse a package already imported from
    elsewhere (it would stay the one used)."""
    if sys.path[:1] != [str(ROOT)]:
        sys.path.insert(0, str(ROOT))
    pkg = sys.modules.get("esa_lightning")
    where = getattr(pkg, "__file__", None)
    if where is not None and ROOT not in Path(where).resolve().parents:
        raise ImportError(
            f"esa_lightning was already imported from {where}, not from this checkout ({ROOT})"
        )


put_root_first()
