"""The dask.distributed path (skinfluence._distributed) against the in-memory estimators,
on a real LocalCluster of two worker processes.

BoostIn and LeafInfluence(update_set=0) add their per-leaf hessian sums per partition
and then across partitions, in another order than the in-memory sum over all rows:
each leaf's coefficient ``eta / (H + lambda)`` then differs by a relative few ``n eps``
at most (a sum of positive terms), and every influence value is a sum over trees of
such terms, so the results are compared with ``rtol=1e-9`` and an absolute floor of
``1e-9`` of the largest value (for entries where the trees' terms cancel). LeafSim
and TreeSim add integer row counts, exact in float64: their results are compared bit
for bit.

TREX solves its surrogate with the in-memory solver, the objective's sums over rows
added per partition: the solver's path differs by rounding and it stops at another
point within its tolerance (the largest gradient entry at most ``tol`` times its value
at 0). Three checks: the weights of both solutions satisfy the stopping rule and lie
within the strong-convexity bound of each other (the objective's hessian is at least
``2 lmbd``, so ``||W1 - W2|| <= (||g1|| + ||g2||) / (2 lmbd)``); with the in-memory
solver replaced by the distributed solution, the in-memory TREX gives the distributed
values to ``rtol=1e-9`` (everything after the solve is per row, or a sum over rows,
``Phi^T alpha``, in another order); and the distributed values are within ``1e-6`` of
the largest in-memory value (measured: about 1e-12 on these models).
"""

import pickle

import catboost
import dask.array as da
import dask.dataframe as dd
import distributed
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import zarr
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

import skinfluence._distributed as distributed_module
import skinfluence._trex as trex_module
from skinfluence import TREX, BoostIn, LeafInfluence, LeafRefit, LeafSim, TreeSim
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


def _compare(dist, ref, Xq, yq, exact, check=None):
    check = check or (assert_array_equal if exact else _close)
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
    with pytest.raises(NotImplementedError, match="LeafRefit has no distributed path yet"):
        LeafRefit(model, update_set=0).fit(Xd, yd)
    for u in (-1, 2):
        with pytest.raises(NotImplementedError, match="supports update_set=0 only"):
            LeafInfluence(model, update_set=u).fit(Xd, yd)
    steps = catboost.CatBoostClassifier(
        iterations=3,
        depth=2,
        leaf_estimation_iterations=2,
        verbose=0,
        thread_count=1,
        allow_writing_files=False,
        random_seed=0,
    ).fit(X, y)
    for method in (LeafInfluence(steps, update_set=0), BoostIn(steps)):
        with pytest.raises(NotImplementedError, match="needs one Newton step per leaf"):
            method.fit(Xd, yd)
    with pytest.raises(ValueError, match="lmbd must be a positive number"):
        TREX(model, lmbd=0.0).fit(Xd, yd)
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


# ---------------------------------------------------------- LeafInfluence(update_set=0)
@pytest.fixture(scope="module")
def multiclass():
    X, _ = _data()
    y = np.digitize(X[:, 0] - X[:, 1] * X[:, 2], [-0.5, 0.5])
    params = {"n_estimators": 5, "num_leaves": 5, "verbose": -1, "random_state": 0}
    return X, y, lgb.LGBMClassifier(**params).fit(X, y)


def test_leaf_influence_single_point_dask_array(client, task):
    X, y, _, model, _, Xq, yq = task
    ref = LeafInfluence(model, update_set=0).fit(X, y)
    dist = LeafInfluence(model, update_set=0).fit(*_dask_array(X, y)[:2])
    assert dist.transform(Xq, yq).chunks[1] == CHUNKS
    _compare(dist, ref, Xq, yq, exact=False)


def test_leaf_influence_single_point_weighted_dataframe(client, task):
    X, y, w, _, weighted, Xq, yq = task
    df, Xd, yd = _dask_frame(X, y)
    wd = dd.from_pandas(pd.Series(w), npartitions=4, sort=False)
    ref = LeafInfluence(weighted, update_set=0).fit(df, y, sample_weight=w)
    dist = LeafInfluence(weighted, update_set=0).fit(Xd, yd, sample_weight=wd)
    _compare(dist, ref, pd.DataFrame(Xq, columns=df.columns), yq, exact=False)


@pytest.mark.parametrize("form", ["exact", "diagonal"])
def test_leaf_influence_single_point_multiclass(client, multiclass, form):
    X, y, model = multiclass
    ref = LeafInfluence(model, update_set=0, multiclass=form).fit(X, y)
    dist = LeafInfluence(model, update_set=0, multiclass=form).fit(*_dask_array(X, y)[:2])
    _compare(dist, ref, X[:7], y[:7], exact=False)


# ------------------------------------------------------------------------------ TREX
def _surrogate_gradient(ref, W):
    """The in-memory surrogate objective's gradient at ``W`` (flat)."""
    ens = ref.ensemble_
    Phi = ref._kernel.features(ref._train_leaves)
    Y = trex_module._surrogate_targets(ens, ref._train_leaves, ref._y_train, ref.target)
    fun = trex_module._surrogate_loss_grad(
        ens.objective, Phi, Phi.T.tocsr(), Y, float(ref.lmbd), ens.objective_param
    )
    return fun(W.ravel())[1], fun(np.zeros(W.size))[1]


def _check_trex(dist, ref, fit_ref, Xq, yq, monkeypatch, converged=True):
    """The three checks of the module docstring; ``fit_ref()`` fits the in-memory TREX."""
    W_d, W_m = dist.surrogate_coef_, ref.surrogate_coef_
    g_d, g0 = _surrogate_gradient(ref, W_d)
    g_m, _ = _surrogate_gradient(ref, W_m)
    g0 = np.abs(g0).max()
    if converged:
        assert np.abs(g_d).max() <= 2 * ref.tol * g0
        assert np.abs(g_m).max() <= 2 * ref.tol * g0
    bound = (np.linalg.norm(g_d) + np.linalg.norm(g_m)) / (2 * ref.lmbd)
    assert np.linalg.norm(W_d - W_m) <= bound
    assert abs(dist.fidelity_ - ref.fidelity_) <= 1e-6
    # in-memory TREX from the distributed solution: the same values to rounding
    monkeypatch.setattr(trex_module, "fit_surrogate", lambda *a, **k: (W_d, dist.n_iter_, 0.0, 1.0))
    oracle = fit_ref()
    monkeypatch.undo()
    assert_allclose(oracle.fidelity_, dist.fidelity_, rtol=1e-12)
    _compare(dist, oracle, Xq, yq, exact=False)
    # and the in-memory TREX itself, to the solve's accuracy
    _compare(dist, ref, Xq, yq, exact=False, check=_solver_close)


def _solver_close(a, b):
    assert_allclose(a, b, rtol=0, atol=1e-6 * np.abs(b).max())


def test_trex_dask_array(client, task, monkeypatch):
    X, y, _, model, _, Xq, yq = task
    ref = TREX(model).fit(X, y)
    dist = TREX(model).fit(*_dask_array(X, y)[:2])
    assert dist.transform(Xq, yq).chunks[1] == CHUNKS
    assert_array_equal(dist.kernel_features(Xq).toarray(), ref.kernel_features(Xq).toarray())
    _check_trex(dist, ref, lambda: TREX(model).fit(X, y), Xq, yq, monkeypatch)


def test_trex_path_kernel_dataframe(client, task, monkeypatch):
    X, y, _, model, _, Xq, yq = task
    df, Xd, yd = _dask_frame(X, y)
    kw = {"kernel": "fpw", "target": "predicted"}
    ref = TREX(model, **kw).fit(df, y)
    # the weights sent once to every worker (as when larger than 1 MB)
    monkeypatch.setattr(distributed_module, "_INLINE_BYTES", 0)
    dist = TREX(model, **kw).fit(Xd, yd)
    qf = pd.DataFrame(Xq, columns=df.columns)
    _check_trex(dist, ref, lambda: TREX(model, **kw).fit(df, y), qf, yq, monkeypatch)


def test_trex_squared_error_conjugate_gradients(client, monkeypatch):
    # a regression stopped after 3 L-BFGS iterations, above tol: conjugate gradients on
    # the normal equations continue (their hessian products summed over partitions),
    # and the solver's warning names the caller's line in both paths
    X, _ = _data()
    y = X[:, 0] - X[:, 1] * X[:, 2] + 0.5 * np.random.default_rng(0).normal(size=N)
    params = {"n_estimators": 6, "num_leaves": 6, "learning_rate": 0.3, "verbose": -1}
    model = lgb.LGBMRegressor(**params, random_state=0).fit(X, y)
    calls = []
    solver = trex_module.cg

    def spy(*args, **kwargs):
        calls.append(1)
        return solver(*args, **kwargs)

    monkeypatch.setattr(trex_module, "cg", spy)
    with pytest.warns(ConvergenceWarning, match="did not converge") as record:
        dist = TREX(model, max_iter=3).fit(*_dask_array(X, y)[:2])
    assert calls and record[0].filename == __file__
    monkeypatch.undo()
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        ref = TREX(model, max_iter=3).fit(X, y)
    assert dist.n_iter_ == ref.n_iter_ == 3

    def fit_ref():
        return TREX(model, max_iter=3).fit(X, y)

    _check_trex(dist, ref, fit_ref, X[:7], y[:7], monkeypatch, converged=False)
