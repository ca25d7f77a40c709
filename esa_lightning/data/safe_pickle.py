"""Load ESA-ADB channel pickles without running arbitrary code.

ESA-ADB ships every channel as a zip holding one pickled pandas DataFrame. ``pd.read_pickle``
would execute whatever the pickle names; this module resolves only the pandas/numpy internals a
DataFrame with a DatetimeIndex and numeric columns needs (pandas 1.x to 3.x pickles) and refuses
everything else with an ``ESAInputError`` naming the file and the refused ``module.name``.

Allowed: the DataFrame/BlockManager/Index/DatetimeArray reconstruction helpers, numpy array and
dtype reconstruction, time zones (datetime, zoneinfo, pytz, dateutil), date offsets (``freq``),
and the pyarrow array restore that pandas 3 uses for string column labels. ``builtins.getattr``
(which pickles of ``zoneinfo`` zones use) is replaced by a version that only fetches
``ZoneInfo._unpickle``.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from esa_lightning.errors import ESAInputError

_ALLOWED: dict[str, set[str]] = {
    "builtins": {"slice", "bytearray", "object", "complex", "frozenset", "set"},
    "__builtin__": {"slice", "bytearray", "object", "complex", "frozenset", "set"},
    "copyreg": {"_reconstructor"},
    "copy_reg": {"_reconstructor"},
    "_codecs": {"encode"},
    "datetime": {"datetime", "date", "time", "timedelta", "timezone"},
    "zoneinfo": {"ZoneInfo"},
    "pytz": {"_UTC", "_p", "UTC", "utc"},
    "dateutil.tz.tz": {"tzutc", "tzoffset", "tzlocal", "tzfile"},
    "numpy": {"dtype", "ndarray", "bool_", "float64", "float32", "int64", "int32"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.core.numeric": {"_frombuffer"},
    "numpy._core.numeric": {"_frombuffer"},
    "pandas": {
        "DataFrame",
        "Index",
        "DatetimeIndex",
        "RangeIndex",
        "DatetimeTZDtype",
        "StringDtype",
        "Timestamp",
        "Timedelta",
    },
    "pandas.arrays": {"DatetimeArray", "StringArray", "ArrowStringArray"},
    "pandas.core.frame": {"DataFrame"},
    "pandas.core.series": {"Series"},
    "pandas.core.indexes.base": {"_new_Index", "Index"},
    "pandas.core.indexes.datetimes": {"_new_DatetimeIndex", "DatetimeIndex"},
    "pandas.core.indexes.range": {"RangeIndex"},
    "pandas.core.indexes.numeric": {"Int64Index", "UInt64Index", "Float64Index"},
    "pandas.core.internals.managers": {"BlockManager", "SingleBlockManager"},
    "pandas.core.internals.blocks": {
        "new_block",
        "Block",
        "FloatBlock",
        "IntBlock",
        "NumericBlock",
        "ObjectBlock",
        "DatetimeBlock",
        "DatetimeTZBlock",
        "DatetimeLikeBlock",
    },
    "pandas._libs.internals": {"_unpickle_block"},
    "pandas._libs.arrays": {"__pyx_unpickle_NDArrayBacked"},
    "pandas.core.arrays.datetimes": {"DatetimeArray"},
    "pandas.core.arrays.string_": {"StringArray", "StringDtype"},
    "pandas.core.arrays.string_arrow": {"ArrowStringArray"},
    "pandas.core.dtypes.dtypes": {"DatetimeTZDtype"},
    "pandas._libs.tslibs.timestamps": {"_unpickle_timestamp", "Timestamp"},
    "pandas._libs.tslibs.timedeltas": {"_timedelta_unpickle", "Timedelta"},
    "pandas._libs.tslibs.nattype": {"__nat_unpickle", "_nat_unpickle"},
    "pyarrow.lib": {"_restore_array", "py_buffer", "type_for_alias"},
}
# ``freq`` of a DatetimeIndex pickles as a date-offset class (Second, Minute, Day, ...).
_OFFSET_MODULES = ("pandas._libs.tslibs.offsets", "pandas.tseries.offsets")


def _safe_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to what time-zone pickles need."""
    import zoneinfo

    if obj is zoneinfo.ZoneInfo and name == "_unpickle":
        return zoneinfo.ZoneInfo._unpickle
    raise pickle.UnpicklingError(f"refused getattr({obj!r}, {name!r})")


def _is_allowed(module: str, name: str) -> bool:
    if name in _ALLOWED.get(module, ()):
        return True
    if module in _OFFSET_MODULES and name.isidentifier() and not name.startswith("_"):
        from pandas._libs.tslibs.offsets import BaseOffset

        obj = getattr(pd.offsets, name, None)
        return isinstance(obj, type) and issubclass(obj, BaseOffset)
    return False


class _Refused(pickle.UnpicklingError):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _checked_find_class(module: str, name: str, resolve: Any) -> Any:
    if module in ("builtins", "__builtin__") and name == "getattr":
        return _safe_getattr
    if (module, name) == ("zoneinfo", "ZoneInfo._unpickle"):
        import zoneinfo

        return zoneinfo.ZoneInfo._unpickle
    if not _is_allowed(module, name):
        raise _Refused(f"{module}.{name}")
    return resolve(module, name)


class _SafeUnpickler(pickle.Unpickler):
    """The fast (C) unpickler with an allow-list ``find_class``."""

    def find_class(self, module: str, name: str) -> Any:
        from pandas.compat.pickle_compat import _class_locations_map

        def resolve(m: str, n: str) -> Any:
            m, n = _class_locations_map.get((m, n), (m, n))
            return super(_SafeUnpickler, self).find_class(m, n)

        return _checked_find_class(module, name, resolve)


def _compat_unpickler(fh: io.BufferedIOBase) -> pickle.Unpickler:
    """pandas' compatibility unpickler (old pickles) behind the same allow-list."""
    from pandas.compat.pickle_compat import Unpickler

    class _SafeCompat(Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            return _checked_find_class(module, name, super().find_class)

    return _SafeCompat(fh)


def _open_payload(path: Path) -> bytes:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if len(members) != 1:
                raise ESAInputError(
                    f"expected exactly one pickled DataFrame in the zip, found {len(members)}",
                    path=path,
                )
            return zf.read(members[0])
    return path.read_bytes()


_FAILED = object()


def read_pickled_frame(path: str | os.PathLike) -> pd.DataFrame:
    """Read one pickled DataFrame from a ``.zip`` (single member) or a plain ``.pkl`` safely."""
    path = Path(path)
    if not path.is_file():
        raise ESAInputError("file not found", path=path)
    try:
        payload = _open_payload(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ESAInputError(f"cannot read: {exc}", path=path) from None
    obj: Any = _FAILED
    error: Exception | None = None
    for make in (_SafeUnpickler, _compat_unpickler):
        try:
            obj = make(io.BytesIO(payload)).load()
            break
        except _Refused as exc:
            raise ESAInputError(f"refused to unpickle {exc.what}", path=path) from None
        except Exception as exc:  # corrupt or legacy pickle: retry with pandas' compat loader
            error = exc
    if obj is _FAILED:
        raise ESAInputError(f"not a readable pickled DataFrame: {error}", path=path)
    if not isinstance(obj, pd.DataFrame):
        raise ESAInputError(f"expected a pickled DataFrame, got {type(obj).__name__}", path=path)
    return obj
