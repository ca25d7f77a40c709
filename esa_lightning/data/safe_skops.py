"""Load the sklearn heads of an artifact (skops files) as exactly the types each head writes.

skops refuses unknown types but trusts every scikit-learn estimator by default: a
``DummyClassifier`` saved as ``rf_gate.skops`` would load and switch every alarm off. Before
skops sees a file, ``load_head`` reads its ``schema.json`` and refuses any type outside the
head's own list (plus plain containers, strings, numbers and numpy arrays) and any loader outside
the few plain ones those types use, naming the file and the type; the object skops builds must
then be of the head's type. Whatever else goes wrong (a truncated or foreign file, a raw pickle)
is one ``ESAInputError`` naming the file. A head of the right type fitted on another feature
count (another model's) is refused by ``refuse_other_feature_count``, which each model calls
where it knows its feature count.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from esa_lightning.data.safe_pickle import refuse_zip_bomb
from esa_lightning.errors import ESAInputError
from esa_lightning.io import SETTINGS_LIMIT

PLAIN_TYPES = frozenset(
    {
        *(f"builtins.{t}" for t in ("dict", "list", "tuple", "str", "int", "float", "bool")),
        *(f"builtins.{t}" for t in ("NoneType", "bytes")),
        "numpy.ndarray",
        "numpy.dtype",
        *(f"numpy.{t}" for t in ("float64", "float32", "int64", "int32", "uint64", "uint32")),
        *(f"numpy.{t}" for t in ("uint8", "int8", "bool_", "intp", "uint16", "int16")),
        *(f"numpy.dtypes.{t}DType" for t in ("Float64", "Float32", "Int64", "Int32", "UInt8")),
    }
)
PLAIN_LOADERS = frozenset(
    {
        "ObjectNode",
        "DictNode",
        "ListNode",
        "TupleNode",
        "JsonNode",
        "TypeNode",
        "NdArrayNode",
        "DTypeNode",
        "CachedNode",
        "TreeNode",
        "LossNode",
        "RandomGeneratorNode",
    }
)
RANDOM_FOREST_TYPES = frozenset(
    {
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._tree.Tree",
    }
)
HIST_GRADIENT_BOOSTING_TYPES = frozenset(
    {
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.Interval",
        "numpy.random._generator.Generator",
    }
)


def _schema_types(node: Any, types: set[str], loaders: set[str]) -> None:
    """Every ``module.class`` and loader a skops schema names, at any depth."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__class__" in item:
                types.add(f"{item.get('__module__')}.{item['__class__']}")
            if "__loader__" in item:
                loaders.add(str(item["__loader__"]))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


#: skops stores schema.json (1x); one over ``SETTINGS_LIMIT`` may be deflated at most this much
SCHEMA_EXPANSION = 4


def _read_schema(data: bytes, source: Path | str) -> Any:
    """schema.json, refused before it is parsed when over ``SETTINGS_LIMIT`` and deflated more
    than ``SCHEMA_EXPANSION`` times: parsed, tiny JSON items take some 23 times their size
    (0.24 MiB of deflated ``[{}, ...]``, under the zip-bomb floor, took 5.8 GB and 26 s)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        refuse_zip_bomb(zf, source)
        info = zf.getinfo("schema.json")
        if info.file_size > max(SETTINGS_LIMIT, SCHEMA_EXPANSION * info.compress_size):
            raise ESAInputError(
                f"its schema.json expands from {info.compress_size:,} to {info.file_size:,} "
                f"bytes (more than {SETTINGS_LIMIT >> 20} MiB and {SCHEMA_EXPANSION} times; "
                "skops stores it as is): refused before it is parsed",
                path=source,
            )
        return json.loads(zf.read("schema.json"))


def load_head(
    data: bytes, source: Path | str, allowed: Iterable[str], expected: type | None = None
) -> Any:
    """The object a skops file (``data``, read from ``source``) holds, when every type it
    names is in ``allowed`` or plain and the result is an ``expected`` instance (exact type)."""
    allowed = frozenset(allowed)
    try:
        schema = _read_schema(data, source)
    except ESAInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a foreign, truncated or corrupt file
        raise ESAInputError(f"not a readable skops file ({_one_line(exc)})", path=source) from None
    types: set[str] = set()
    loaders: set[str] = set()
    _schema_types(schema, types, loaders)
    refused = sorted(types - allowed - PLAIN_TYPES)
    if refused:
        raise ESAInputError(
            f"refused to load type {refused[0]} (not what this head writes)", path=source
        )
    odd = sorted(loaders - PLAIN_LOADERS)
    if odd:
        raise ESAInputError(f"refused to load a skops {odd[0]}", path=source)
    import skops.io as sio

    try:
        obj = sio.loads(data, trusted=sorted(allowed))
    except Exception as exc:  # noqa: BLE001 - skops' own refusals and corrupt contents
        raise ESAInputError(f"not a readable skops file ({_one_line(exc)})", path=source) from None
    if expected is not None and type(obj) is not expected:
        raise ESAInputError(
            f"holds a {type(obj).__name__}, this head writes a {expected.__name__}", path=source
        )
    return obj


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def refuse_other_feature_count(
    head: Any, expected: int, source: Path | str, what: str, inputs: str
) -> None:
    """Refuse a fitted ``head`` (``what``: "the forest head") whose ``n_features_in_`` is not
    the ``expected`` feature count of the ``inputs`` it is given ("this model's windows"): the
    right type of head, fitted for another model (a skops file swapped, the artifact's checksums
    computed again). Unchecked, it loaded, and scoring ended in scikit-learn's ``X has N
    features`` traceback."""
    fitted_on = getattr(head, "n_features_in_", expected)
    if int(fitted_on) != int(expected):
        raise ESAInputError(
            f"{what} was fitted on {fitted_on} features, {inputs} have {expected}: "
            "it belongs to another model; restore it or retrain",
            path=source,
        )
