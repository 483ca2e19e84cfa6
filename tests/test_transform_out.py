"""``transform(X, y, out=...)``: the influence written block by block into a given array
(a memory map here), equal to the in-memory result."""

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

import skinfluence as sk

from . import model_table


@pytest.fixture(scope="module")
def data():
    X, y = model_table.data("binary")
    model = HistGradientBoostingClassifier(max_iter=8, random_state=0).fit(X, y)
    return model, X, y


@pytest.mark.parametrize(
    "method",
    [
        sk.BoostIn,
        lambda m, **kw: sk.LeafInfluence(m, update_set=0, **kw),
        sk.LeafInfluence,
        sk.TREX,
        sk.LeafSim,
    ],
)
def test_memmap_out_equals_transform(data, method, tmp_path):
    model, X, y = data
    # a budget of about one query row per block: many blocks are written
    est = method(model, chunk_memory_mb=0.01).fit(X, y)
    expected = est.transform(X[:25], y[:25])
    out = np.memmap(tmp_path / "influence.dat", dtype=np.float64, mode="w+", shape=(25, len(y)))
    got = est.transform(X[:25], y[:25], out=out)
    assert got is out
    np.testing.assert_array_equal(np.asarray(out), expected)


def test_out_keeps_held_out_columns_at_zero():
    X, y = model_table.data("binary", seed=1)
    X, y = np.vstack([X] * 4), np.concatenate([y] * 4)
    model = HistGradientBoostingClassifier(max_iter=6, early_stopping=True, random_state=0)
    est = sk.BoostIn(model.fit(X, y)).fit(X, y)
    out = np.full((5, len(y)), np.nan)
    est.transform(X[:5], y[:5], out=out)
    np.testing.assert_array_equal(out, est.transform(X[:5], y[:5]))
    np.testing.assert_array_equal(out[:, est.validation_indices_], 0.0)


def test_out_of_the_wrong_shape_is_refused(data):
    model, X, y = data
    est = sk.BoostIn(model).fit(X, y)
    with pytest.raises(ValueError, match=r"out must have shape \(3, 160\)"):
        est.transform(X[:3], y[:3], out=np.empty((3, 10)))
