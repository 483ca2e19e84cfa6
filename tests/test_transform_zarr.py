"""``transform(X, y, out=zarr_array)``: the influence written block by block into a zarr
array (in memory and on disk), equal to the in-memory result, in float64 and float32."""

import numpy as np
import pytest
import zarr
from sklearn.ensemble import HistGradientBoostingClassifier

import skinfluence as sk

from . import model_table


@pytest.fixture(scope="module")
def data():
    X, y = model_table.data("binary")
    model = HistGradientBoostingClassifier(max_iter=8, random_state=0).fit(X, y)
    return model, X, y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", [sk.BoostIn, sk.LeafSim])
def test_zarr_out_equals_transform(data, method, dtype, tmp_path):
    model, X, y = data
    # a budget of about one query row per block: many blocks, across zarr chunks
    est = method(model, dtype=dtype, chunk_memory_mb=0.01).fit(X, y)
    expected = est.transform(X[:25], y[:25])
    for store in (zarr.storage.MemoryStore(), str(tmp_path / f"m_{np.dtype(dtype)}.zarr")):
        out = zarr.create_array(store, shape=(25, len(y)), chunks=(4, 64), dtype=dtype)
        got = est.transform(X[:25], y[:25], out=out)
        assert got is out
        np.testing.assert_array_equal(out[:], expected)
        assert out.dtype == np.dtype(dtype)
    reopened = zarr.open_array(str(tmp_path / f"m_{np.dtype(dtype)}.zarr"), mode="r")
    np.testing.assert_array_equal(reopened[:], expected)


def test_zarr_out_of_the_wrong_shape_is_refused(data):
    model, X, y = data
    est = sk.BoostIn(model).fit(X, y)
    out = zarr.create_array(zarr.storage.MemoryStore(), shape=(3, 10), dtype="float64")
    with pytest.raises(ValueError, match=r"out must have shape \(3, 160\)"):
        est.transform(X[:3], y[:3], out=out)
