"""Load ESA-ADB channel pickles without running arbitrary code.

ESA-ADB ships every channel as a zip holding one pickled pandas DataFrame. ``pd.read_pickle``
would execute whatever the pickle names; this module resolves only the pandas/numpy internals a
DataFrame with a DatetimeIndex and numeric columns needs (pandas 1.x to 3.x pickles) and refuses
everything else with an ``ESAInputError`` naming the file and the refused ``module.name``.

Allowed: the DataFrame/BlockManager/Index/DatetimeArray reconstruction helpers, numpy array and
dtype reconstruction, pandas' nullable arrays (Int64, Float64, boolean columns: a values array
and a mask, checked to match before the frame is returned), time zones (datetime, zoneinfo,
pytz, dateutil), date offsets (``freq``), and the pyarrow string arrays that pandas 3 uses for
column labels. ``builtins.getattr``
(which pickles of ``zoneinfo`` zones use) is replaced by a version that only fetches
``ZoneInfo._unpickle``; pyarrow's ``_restore_array`` (which builds an array from raw buffers
without looking at them: an offset beyond its buffer aborts the interpreter or reads foreign
memory) by ``_checked_string_array``, which accepts a string array only and validates every
offset and byte before pandas touches it.

Memory stays in proportion to the file: a zip member whose size exceeds ``MAX_EXPANSION`` times
its compressed size (with a floor of ``MIN_EXPANSION_BYTES``) is refused before anything is
read (``refuse_zip_bomb`` applies the same bound to all the members of a detector's zip parts
together), a byte array claiming more than the file holds is refused before it is allocated,
and the payload is parsed once.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from esa_lightning.errors import ESAInputError, quoted

# pandas' nullable columns (Int64, UInt8, Float64, boolean): plain data containers, a values
# array and a boolean mask set as attributes; built without running anything but pandas'
# own constructors on the objects this allow-list already lets a pickle make.
_NULLABLE_ARRAYS = {"IntegerArray", "FloatingArray", "BooleanArray"}
_NULLABLE_DTYPES = {
    *(f"{kind}{bits}Dtype" for kind in ("Int", "UInt") for bits in (8, 16, 32, 64)),
    "Float32Dtype",
    "Float64Dtype",
    "BooleanDtype",
}
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
        *_NULLABLE_DTYPES,
    },
    "pandas.arrays": {"DatetimeArray", "StringArray", "ArrowStringArray", *_NULLABLE_ARRAYS},
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
    # pandas < 3 names the nullable classes by the modules defining them
    "pandas.core.arrays.integer": {"IntegerArray", *_NULLABLE_DTYPES},
    "pandas.core.arrays.floating": {"FloatingArray", *_NULLABLE_DTYPES},
    "pandas.core.arrays.boolean": {"BooleanArray", "BooleanDtype"},
    "pandas.core.dtypes.dtypes": {"DatetimeTZDtype"},
    "pandas._libs.tslibs.timestamps": {"_unpickle_timestamp", "Timestamp"},
    "pandas._libs.tslibs.timedeltas": {"_timedelta_unpickle", "Timedelta"},
    "pandas._libs.tslibs.nattype": {"__nat_unpickle", "_nat_unpickle"},
    "pyarrow.lib": {"py_buffer"},
}
# A member may expand to this many times its compressed size (real channel pickles: a few
# times; deflate's ceiling: about 1000), and to at least MIN_EXPANSION_BYTES.
MAX_EXPANSION = 100
MIN_EXPANSION_BYTES = 256 * 2**20
_STRING_ALIASES = {"string", "str", "utf8", "large_string", "large_str", "large_utf8"}
# ``freq`` of a DatetimeIndex pickles as a date-offset class (Second, Minute, Day, ...).
_OFFSET_MODULES = ("pandas._libs.tslibs.offsets", "pandas.tseries.offsets")


def _safe_getattr(obj: Any, name: str) -> Any:
    """``getattr`` restricted to what time-zone pickles need."""
    import zoneinfo

    if obj is zoneinfo.ZoneInfo and name == "_unpickle":
        return zoneinfo.ZoneInfo._unpickle
    raise _Unsafe(f"refused getattr({obj!r}, {name!r})")


def _string_type_for_alias(alias: object) -> Any:
    """``pyarrow.lib.type_for_alias`` for the string types only."""
    import pyarrow as pa

    if alias not in _STRING_ALIASES:
        raise _Unsafe(f"refused pyarrow type {alias!r}")
    return pa.lib.type_for_alias(alias)


def _checked_string_array(state: Any) -> Any:
    """``pyarrow.lib._restore_array`` for a flat string array, fully validated: its offsets
    must lie inside its buffers and its bytes must be UTF-8, else ``UnpicklingError``."""
    import pyarrow as pa

    try:
        arrow_type, length, null_count, offset, buffers, children, dictionary = state
    except (TypeError, ValueError):
        raise _Unsafe("malformed pyarrow array") from None
    if not (
        isinstance(arrow_type, pa.DataType)
        and (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))
        and not children
        and dictionary is None
        and isinstance(buffers, list)
        and len(buffers) == 3
        and all(b is None or isinstance(b, pa.Buffer) for b in buffers)
        and all(type(n) is int and n >= 0 for n in (length, offset))
        and type(null_count) is int
    ):
        raise _Unsafe("refused pyarrow array: only flat string arrays load")
    try:
        array = pa.Array.from_buffers(arrow_type, length, buffers, null_count, offset)
        array.validate(full=True)
    except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
        raise _Unsafe(f"invalid pyarrow string array ({exc})") from None
    return array


_REPLACED = {
    ("pyarrow.lib", "_restore_array"): _checked_string_array,
    ("pyarrow.lib", "type_for_alias"): _string_type_for_alias,
}


def _is_allowed(module: str, name: str) -> bool:
    if name in _ALLOWED.get(module, ()):
        return True
    if module in _OFFSET_MODULES and name.isidentifier() and not name.startswith("_"):
        from pandas._libs.tslibs.offsets import BaseOffset

        obj = getattr(pd.offsets, name, None)
        return isinstance(obj, type) and issubclass(obj, BaseOffset)
    return False


#: a pickled Series, as pandas names its class (refused: only frames are unpickled)
SERIES = ("pandas.Series", "pandas.core.series.Series")


class _Unsafe(pickle.UnpicklingError):
    """A pickle this module's checks refuse (a getattr, a pyarrow array, a byte array larger
    than the file): its words name what was refused, so the message keeps them."""


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
    if (module, name) in _REPLACED:
        return _REPLACED[module, name]
    if not _is_allowed(module, name):
        raise _Refused(f"{module}.{name}")
    return resolve(module, name)


def _unpickler(fh: io.BytesIO) -> pickle.Unpickler:
    """pandas' compatibility unpickler (it also reads pandas 1.x pickles) behind the allow-list,
    refusing a byte array longer than the whole payload (the pure-Python unpickler zero-fills
    the claimed length before reading it)."""
    from pandas.compat.pickle_compat import Unpickler

    payload_bytes = len(fh.getbuffer())

    class _SafeCompat(Unpickler):
        dispatch = Unpickler.dispatch.copy()

        def find_class(self, module: str, name: str) -> Any:
            return _checked_find_class(module, name, super().find_class)

        def load_bytearray8(self) -> None:
            (size,) = struct.unpack("<Q", self.read(8))
            if size > payload_bytes:
                raise _Unsafe(f"a byte array of {size} bytes in a smaller file")
            self.append(bytearray(self.read(size)))

        dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    return _SafeCompat(fh)


def expansion_limit(compressed_bytes: int) -> int:
    """The most bytes a zip member of ``compressed_bytes`` may expand to."""
    return max(MIN_EXPANSION_BYTES, MAX_EXPANSION * compressed_bytes)


def refuse_zip_bomb(zf: zipfile.ZipFile | Path | bytes, source: Path | str) -> None:
    """Refuse, from its directory alone (nothing decompressed), a zip (open, or a file or bytes
    that may be one: anything else is left to its reader) whose members together declare more
    bytes than ``expansion_limit`` of their compressed bytes: every member under the floor is
    not enough (many members of 250 MB of zeros, a few hundred kB each)."""
    if not isinstance(zf, zipfile.ZipFile):
        try:
            with zipfile.ZipFile(io.BytesIO(zf) if isinstance(zf, bytes) else zf) as opened:
                members = opened.infolist()
        except (OSError, zipfile.BadZipFile, ValueError):
            return
    else:
        members = zf.infolist()
    declared = sum(m.file_size for m in members)
    limit = expansion_limit(sum(m.compress_size for m in members))
    if declared > limit:
        raise ESAInputError(
            f"its {len(members)} zip member(s) expand to {declared} bytes, more than {limit} "
            f"(a zip bomb?); refused",
            path=source,
        )


def _read_payload(path: Path) -> io.BytesIO:
    """The pickle's bytes: the zip's single member (refused before reading when it would
    expand beyond ``expansion_limit``) or the file."""
    if not zipfile.is_zipfile(path):
        return io.BytesIO(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) != 1:
            raise ESAInputError(_not_one_member(members, path), path=path)
        (member,) = members
        refuse_zip_bomb(zf, path)
        payload = io.BytesIO()
        with zf.open(member) as raw:  # never yields more than the header's size
            while chunk := raw.read(2**20):
                payload.write(chunk)
        payload.seek(0)
        return payload


def _rewrite_hint(path: Path) -> str:
    """What to do about a channel file that cannot be read: write it again, as its reader
    expects it (a one-column DataFrame named after the channel)."""
    name = path.stem.split(".")[0]
    return f"write it again with frame[[{name!r}]].to_pickle({path.name!r})"


def _not_one_member(members: list[zipfile.ZipInfo], path: Path) -> str:
    """Why a zip of ``members`` (its files, folders left out) is not one channel's pickle."""
    if not members:
        held = "no file (only folders, or nothing)"
    else:
        names = ", ".join(quoted(m.filename) for m in members[:3])
        more = f" and {len(members) - 3} more" if len(members) > 3 else ""
        held = f"{len(members)} files ({names}{more})"
    return (f"the zip holds {held}; it must hold exactly one pickled DataFrame: "
            f"{_rewrite_hint(path)}")


def read_pickled_frame(path: str | os.PathLike) -> pd.DataFrame:
    """Read one pickled DataFrame from a ``.zip`` (single member) or a plain ``.pkl`` safely."""
    path = Path(path)
    if not path.is_file():
        raise ESAInputError("file not found", path=path)
    try:
        payload = _read_payload(path)
    except ESAInputError:
        raise
    except Exception as exc:  # a corrupt, encrypted or foreign zip (BadZipFile, zlib.error...)
        # the library's words (zlib's "Error -3 while decompressing", a bare CRC) tell a user
        # nothing: they stay in the chained traceback (--debug)
        raise ESAInputError(
            f"a damaged or encrypted zip, its member cannot be read: {_rewrite_hint(path)}",
            path=path,
        ) from exc
    try:
        obj = _unpickler(payload).load()
    except _Refused as exc:
        if exc.what in SERIES:  # a user's slip, not a hostile file: say what to write
            raise ESAInputError(
                "expected a pickled DataFrame, got a Series: write a one-column DataFrame "
                f"named after the channel, frame[[{path.stem.split('.')[0]!r}]].to_pickle(...)",
                path=path,
            ) from None
        raise ESAInputError(f"refused to unpickle {exc.what}", path=path) from None
    except _Unsafe as exc:
        raise ESAInputError(f"not a readable pickled DataFrame: {exc}", path=path) from None
    except Exception as exc:  # corrupt pickle: whatever the unpickler or a constructor raised
        # its words ("110", "EOFError", "Memo value not found") are the unpickler's internals:
        # they stay in the chained traceback (--debug)
        raise ESAInputError(
            "not a readable pickled DataFrame (the file is damaged, cut short, or holds "
            f"something else): {_rewrite_hint(path)}",
            path=path,
        ) from exc
    finally:
        payload.close()
    if not isinstance(obj, pd.DataFrame):
        raise ESAInputError(f"expected a pickled DataFrame, got {type(obj).__name__}", path=path)
    _check_nullable_columns(obj, path)
    return obj


def _check_nullable_columns(frame: pd.DataFrame, path: Path) -> None:
    """A nullable column's values and mask are set straight from the pickle: they must be 1-D
    arrays of one length, the mask boolean, the values of the column's dtype; a mask of another
    length or dtype would otherwise mark the wrong cells missing, without a word."""
    from pandas.core.arrays.masked import BaseMaskedArray

    for j in range(frame.shape[1]):
        array = frame.iloc[:, j].array
        if not isinstance(array, BaseMaskedArray):
            continue
        data, mask = getattr(array, "_data", None), getattr(array, "_mask", None)
        try:
            numpy_dtype = array.dtype.numpy_dtype
        except (AttributeError, TypeError):
            numpy_dtype = None
        if not (
            isinstance(data, np.ndarray)
            and isinstance(mask, np.ndarray)
            and data.ndim == 1
            and data.shape == mask.shape
            and mask.dtype == np.bool_
            and data.dtype == numpy_dtype
        ):
            raise ESAInputError(
                "malformed nullable column (its values and mask do not match)",
                path=path,
                column=str(frame.columns[j]),
            )
