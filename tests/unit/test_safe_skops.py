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
