"""The dask.distributed path (skinfluence._distributed) against the in-memory estimators,
on a real LocalCluster of two worker processes.

BoostIn adds its per-leaf hessian sums per partition and then across partitions, in
another order than the in-memory sum over all rows: each leaf's coefficient
``eta / (H + lambda)`` then differs by a relative few ``n eps`` at most (a sum of
positive terms), and every influence value is a sum over trees of such terms, so
the results are compared with ``rtol=1e-9`` and an absolute floor of ``1e-9`` of the
largest value (for entries where the trees' terms cancel). LeafSim and TreeSim add
integer row counts, exact in float64: their results are compared bit for bit.
"""

import pickle

import dask.array as da
import dask.dataframe as dd
import distributed
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import zarr
from numpy.testing import assert_allclose, assert_array_equal

from skinfluence import TREX, BoostIn, LeafInfluence, LeafSim, TreeSim
from skinfluence._ensemble import TrainingDataMismatchError

CHUNKS = (170, 60, 230, 140)  # uneven row partitions
N = sum(CHUNKS)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as c:
        yield c


def _data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = (X[:, 0] - X[:, 1] * X[:, 2] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y


@pytest.fixture(scope="module")
def task():
    X, y = _data()
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=N)
    params = {
        "n_estimators": 12,
        "num_leaves": 6,
        "learning_rate": 0.3,
        "verbose": -1,
        "random_state": 0,
    }
    model = lgb.LGBMClassifier(**params).fit(X, y)
    weighted = lgb.LGBMClassifier(**params).fit(X, y, sample_weight=w)
    Xq, yq = _data(seed=7, n=9)
    return X, y, w, model, weighted, Xq, yq


def _dask_array(X, y, w=None):
    Xd = da.from_array(X, chunks=(CHUNKS, X.shape[1]))
    yd = da.from_array(y, chunks=(CHUNKS,))
    return Xd, yd, (None if w is None else da.from_array(w, chunks=(CHUNKS,)))


def _dask_frame(X, y):
    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    Xd = dd.from_pandas(df, npartitions=4, sort=False)
    yd = dd.from_pandas(pd.Series(y, name="y"), npartitions=4, sort=False)
    return df, Xd, yd


def _compare(dist, ref, Xq, yq, exact):
    check = assert_array_equal if exact else _close
    M = dist.transform(Xq, yq)
    assert isinstance(M, da.Array)
    assert M.shape == (len(Xq), ref.n_train_)
    check(M.compute(), ref.transform(Xq, yq))
    check(dist.transform(Xq).compute(), ref.transform(Xq))  # predicted labels
    for kind in ("helpful", "harmful"):
        i1, v1 = dist.top_k(Xq, yq, k=7, kind=kind)
        i2, v2 = ref.top_k(Xq, yq, k=7, kind=kind)
        assert_array_equal(i1, i2)
        check(v1, v2)
    g = dist.global_influence(Xq, yq)
    assert isinstance(g, da.Array)
    check(g.compute(), ref.global_influence(Xq, yq))
    check(dist.self_influence().compute(), ref.self_influence())


def _close(a, b):
    assert_allclose(a, b, rtol=1e-9, atol=1e-9 * np.abs(b).max())


def test_boostin_dask_array(client, task):
    X, y, _, model, _, Xq, yq = task
    ref = BoostIn(model).fit(X, y)
    dist = BoostIn(model).fit(*_dask_array(X, y)[:2])
    assert dist.n_train_ == N and dist.n_features_in_ == 5
    assert dist.transform(Xq, yq).chunks[1] == CHUNKS  # one column block per partition
    _compare(dist, ref, Xq, yq, exact=False)


def test_boostin_weights_scaling_dataframe(client, task):
    X, y, w, _, weighted, Xq, yq = task
    df, Xd, yd = _dask_frame(X, y)
    wd = dd.from_pandas(pd.Series(w), npartitions=4, sort=False)
    kw = {"derivative": "exact", "leaf_scaling": "inverse_size"}
    ref = BoostIn(weighted, **kw).fit(df, y, sample_weight=w)
    dist = BoostIn(weighted, **kw).fit(Xd, yd, sample_weight=wd)
    assert_array_equal(dist.feature_names_in_, df.columns)
    qf = pd.DataFrame(Xq, columns=df.columns)
    _compare(dist, ref, qf, yq, exact=False)


@pytest.mark.parametrize(
    "make", [LeafSim, lambda m: TreeSim(m, kernel="fpw", measure="cosine")], ids=["leaf", "tree"]
)
def test_similarity_dataframe_exact(client, task, make):
    X, y, _, model, _, Xq, yq = task
    df, Xd, yd = _dask_frame(X, y)
    ref = make(model).fit(df, y)
    dist = make(model).fit(Xd, yd)
    _compare(dist, ref, pd.DataFrame(Xq, columns=df.columns), yq, exact=True)


def test_transform_to_zarr(client, task, tmp_path):
    X, y, _, model, _, Xq, yq = task
    dist = LeafSim(model).fit(*_dask_array(X, y)[:2])
    dist.transform(Xq, yq).rechunk((len(Xq), 200)).to_zarr(str(tmp_path / "m.zarr"))
    assert_array_equal(
        zarr.open_array(str(tmp_path / "m.zarr"))[:], LeafSim(model).fit(X, y).transform(Xq, yq)
    )


def test_refusals(client, task):
    X, y, _, model, _, Xq, yq = task
    Xd, yd, _ = _dask_array(X, y)
    other = da.from_array(y, chunks=((100, 300, 200),))
    with pytest.raises(ValueError, match="partitioned alike"):
        BoostIn(model).fit(Xd, other)
    for method in (LeafInfluence(model, update_set=0), TREX(model)):
        with pytest.raises(NotImplementedError, match="no distributed path"):
            method.fit(Xd, yd)
    with pytest.raises(ValueError, match="fitted model"):
        BoostIn(lgb.LGBMClassifier()).fit(Xd, yd)
    dist = BoostIn(model).fit(Xd, yd)
    with pytest.raises(NotImplementedError, match="label_edit is not available"):
        dist.label_edit(Xq, yq, new_labels=0)
    with pytest.raises(NotImplementedError, match="to_zarr"):
        dist.transform(Xq, yq, out=np.empty((len(Xq), N)))
    # rows other than the model's training rows: the stored leaf counts differ
    X2, y2 = _data(seed=3)
    with pytest.raises(TrainingDataMismatchError, match="per-leaf counts"):
        BoostIn(model).fit(*_dask_array(X2, y2)[:2])
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(dist)
    # a later in-memory fit forgets the distributed state
    assert not isinstance(dist.fit(X, y).transform(Xq, yq), da.Array)
