"""sklearn heads load as exactly the types each head writes (``safe_skops.load_head``)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from esa_lightning.data.safe_skops import (
    HIST_GRADIENT_BOOSTING_TYPES,
    RANDOM_FOREST_TYPES,
    load_head,
)
from esa_lightning.errors import ESAInputError
from tests.helpers import json_parse_sizes


def data(n: int = 200):
    rng = np.random.default_rng(0)
    x = rng.random((n, 3))
    return x, (x[:, 0] > 0.6).astype(np.int64)


def test_each_head_loads_what_it_writes():
    x, y = data()
    forest = RandomForestClassifier(n_estimators=3, class_weight="balanced").fit(x, y)
    boosted = HistGradientBoostingClassifier(max_iter=3).fit(x, y)
    back = load_head(sio.dumps(forest), "rf.skops", RANDOM_FOREST_TYPES, RandomForestClassifier)
    np.testing.assert_array_equal(back.predict(x), forest.predict(x))
    trees = {"keys": [[0, 0, 0]], "trees": [boosted, 0.25]}
    blob = load_head(sio.dumps(trees), "trees.skops", HIST_GRADIENT_BOOSTING_TYPES, dict)
    np.testing.assert_array_equal(blob["trees"][0].predict(x), boosted.predict(x))


def test_another_estimator_is_refused_although_skops_trusts_it():
    x, y = data()
    other = LogisticRegression().fit(x, y)
    with pytest.raises(
        ESAInputError, match=r"rf\.skops: refused to load type .*LogisticRegression"
    ):
        load_head(sio.dumps(other), "rf.skops", RANDOM_FOREST_TYPES, RandomForestClassifier)


def test_the_exact_type_is_required():
    x, y = data()
    boosted = HistGradientBoostingClassifier(max_iter=2).fit(x, y)
    with pytest.raises(ESAInputError, match="holds a dict"):
        load_head(
            sio.dumps({"model": boosted}),
            "c.skops",
            HIST_GRADIENT_BOOSTING_TYPES,
            HistGradientBoostingClassifier,
        )


def test_a_member_that_expands_too_far_is_refused_before_reading():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("schema.json", b" " * (300 * 2**20))
    with pytest.raises(ESAInputError, match=r"expand to \d+ bytes, more than \d+ \(a zip bomb\?\)"):
        load_head(buffer.getvalue(), "x.skops", RANDOM_FOREST_TYPES)


def padded_schema(forest: RandomForestClassifier, compression: int) -> bytes:
    """``forest`` as skops writes it, its schema.json padded with spaces to 17 MiB (valid
    JSON, over the 16 MiB bound), every member written with ``compression``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(sio.dumps(forest))) as src, zipfile.ZipFile(
        buffer, "w", compression
    ) as out:
        for info in src.infolist():
            body = src.read(info)
            out.writestr(info.filename, body + b" " * (17 * 2**20) if info.filename ==
                         "schema.json" else body)
    return buffer.getvalue()


def test_a_large_deflated_schema_is_refused_before_it_is_parsed(monkeypatch):
    """skops writes schema.json stored (1x); one over 16 MiB deflated more than 4x is refused
    before json parses it: 0.24 MiB of deflated ``[{}, {}, ...]`` (250 MiB, under the zip-bomb
    floor of 256 MiB) took 26 s and 5.8 GB to parse. Padded here with spaces, so that the
    forest loaded before."""

    x, y = data()
    forest = RandomForestClassifier(n_estimators=2).fit(x, y)
    head = padded_schema(forest, zipfile.ZIP_DEFLATED)
    parsed = json_parse_sizes(monkeypatch)
    with pytest.raises(ESAInputError, match=r"rf\.skops: its schema\.json .*16 MiB"):
        load_head(head, "rf.skops", RANDOM_FOREST_TYPES, RandomForestClassifier)
    assert not [n for n in parsed if n > 16 * 2**20]


def test_a_large_stored_schema_still_loads():
    """A schema.json over 16 MiB stored as skops writes it (a GBDT of many iterations: 6 MB
    for 100) is read."""
    x, y = data()
    forest = RandomForestClassifier(n_estimators=2).fit(x, y)
    head = padded_schema(forest, zipfile.ZIP_STORED)
    back = load_head(head, "rf.skops", RANDOM_FOREST_TYPES, RandomForestClassifier)
    np.testing.assert_array_equal(back.predict(x), forest.predict(x))
