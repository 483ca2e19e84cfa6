"""skinfluence's own routing of LightGBM trees with numeric splits.

The kernel must give the leaves of ``Booster.predict(X, pred_leaf=True)`` on every input
LightGBM reads as a dense numeric matrix: NaN, zeros, values within LightGBM's zero
threshold (1e-35f) of zero, infinities, values equal to (and one ulp either side of) the
thresholds, for each missing type (None, Zero, NaN), float32 / float64 / integer / bool
inputs and pandas frames. It is also checked against a plain numpy implementation of the
decision rule, and the fit-time comparison with the library is shown to catch a routing
that differs.
"""

import pickle
import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skinfluence import BoostIn
from skinfluence._adapters import _lightgbm as adapter
from skinfluence._adapters import to_ensemble
from skinfluence._adapters._lightgbm_routing import (
    ZERO_THRESHOLD,
    dense_numeric,
    lgb_apply,
    numeric_trees,
)

MISSING = {"nan": {}, "zero": {"zero_as_missing": True}, "none": {"use_missing": False}}


def numpy_route(X, trees):
    """The decision rule in plain numpy, all rows at once, one tree after another."""
    X = np.asarray(X, dtype=np.float64)
    n, T = len(X), len(trees.node_offsets) - 1
    out = np.zeros((n, T), dtype=np.int64)
    rows = np.arange(n)
    left, right = trees.children[0::2], trees.children[1::2]
    for t in range(T):
        base = trees.node_offsets[t]
        if trees.node_offsets[t + 1] == base:
            continue
        node = np.zeros(n, dtype=np.int64)
        active = node >= 0
        while active.any():
            k = base + node[active]
            x = X[rows[active], trees.feature[k]].copy()
            dt = trees.decision_type[k]
            missing = (dt >> 2) & 3
            nan = np.isnan(x)
            x[nan & (missing != 2)] = 0.0
            x[~nan & (np.abs(x) <= ZERO_THRESHOLD)] = 0.0
            default = ((missing == 1) & (x > -ZERO_THRESHOLD) & (x <= ZERO_THRESHOLD)) | (
                (missing == 2) & np.isnan(x)
            )
            go_left = np.where(default, (dt & 2) > 0, x <= trees.threshold[k])
            node[active] = np.where(go_left, left[k], right[k])
            active = node >= 0
        out[:, t] = ~node
    return out


def _data(seed, n=300, p=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X[rng.random((n, p)) < 0.15] = 0.0
    X[rng.random((n, p)) < 0.1] = np.nan
    X[rng.random((n, p)) < 0.05] = 1e-36
    y = np.nan_to_num(X) @ rng.normal(size=p) + 0.3 * rng.normal(size=n)
    return X, y


def _queries(X, trees, seed):
    """Rows at the thresholds (and one ulp either side), tiny values, infinities."""
    rng = np.random.default_rng(seed)
    base = np.nan_to_num(X[rng.integers(0, len(X), size=3 * len(trees.threshold))])
    for j, (f, t) in enumerate(zip(trees.feature, trees.threshold)):
        base[3 * j, f] = t
        base[3 * j + 1, f] = np.nextafter(t, np.inf)
        base[3 * j + 2, f] = np.nextafter(t, -np.inf)
    odd = X[rng.integers(0, len(X), size=200)].copy()
    specials = np.array([np.nan, 0.0, -0.0, 1e-36, -1e-36, ZERO_THRESHOLD, -ZERO_THRESHOLD])
    specials = np.concatenate([specials, [np.inf, -np.inf, 2e-35, -2e-35]])
    mask = rng.random(odd.shape) < 0.3
    odd[mask] = rng.choice(specials, size=int(mask.sum()))
    return np.vstack([base, odd])


def _model(X, y, missing, n_estimators=20, num_leaves=12, seed=0):
    return lgb.LGBMRegressor(
        n_estimators=n_estimators,
        num_leaves=num_leaves,
        min_child_samples=3,
        random_state=seed,
        verbose=-1,
        **MISSING[missing],
    ).fit(X, y)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    missing=st.sampled_from(sorted(MISSING)),
    n_estimators=st.integers(1, 15),
    num_leaves=st.integers(2, 20),
)
def test_kernel_equals_library_and_numpy_reference(seed, missing, n_estimators, num_leaves):
    X, y = _data(seed)
    model = _model(X, y, missing, n_estimators, num_leaves, seed)
    booster = model.booster_
    _, arrays = adapter._parse_trees(booster.model_to_string())
    trees = numeric_trees(arrays, booster.num_feature())
    assert trees is not None
    Q = _queries(X, trees, seed)
    theirs = booster.predict(Q, pred_leaf=True).astype(np.int64)
    np.testing.assert_array_equal(lgb_apply(np.ascontiguousarray(Q), trees), theirs)
    np.testing.assert_array_equal(numpy_route(Q, trees), theirs)
    for m in range(7):  # blocks of four rows and the rest
        np.testing.assert_array_equal(
            lgb_apply(np.ascontiguousarray(Q[m : 2 * m]), trees), theirs[m : 2 * m]
        )
    # float32 input: LightGBM reads each value as float and widens it
    Q32 = Q.astype(np.float32)
    np.testing.assert_array_equal(
        lgb_apply(dense_numeric(Q32, Q.shape[1]), trees),
        booster.predict(Q32, pred_leaf=True),
    )


@pytest.mark.parametrize("missing", sorted(MISSING))
def test_ensemble_routes_itself_and_agrees_with_pred_leaf(missing):
    X, y = _data(1, n=2500)
    model = _model(X, y, missing)
    ens = to_ensemble(model, X, y)
    assert ens.library_router is not None
    Q = _queries(X, numeric_trees(adapter._parse_trees(model.booster_.model_to_string())[1], 4), 1)
    for Xin in (Q, pd.DataFrame(Q, columns=[f"c{i}" for i in range(4)])):
        np.testing.assert_array_equal(ens.leaf_ids(Xin), model.booster_.predict(Q, pred_leaf=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        leaves = ens.check_reconstruction(X)
    np.testing.assert_array_equal(leaves, model.booster_.predict(X, pred_leaf=True))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifiers_and_early_stopping(n_classes):
    # multiclass trees are interleaved by class; early stopping keeps the best
    # iteration's trees: the same columns as pred_leaf in both cases
    X, y = _data(6, n=1200)
    labels = np.digitize(y, np.quantile(y, np.linspace(0, 1, n_classes + 1)[1:-1]))
    model = lgb.LGBMClassifier(
        n_estimators=200, learning_rate=0.5, num_leaves=31, min_child_samples=2, verbose=-1
    )
    model.fit(
        X[:1000],
        labels[:1000],
        eval_X=(X[1000:],),
        eval_y=(labels[1000:],),
        callbacks=[lgb.early_stopping(3, verbose=False)],
    )
    assert 0 < model.booster_.best_iteration < 200
    ens = to_ensemble(model)
    assert ens.library_router is not None
    theirs = model.booster_.predict(X, pred_leaf=True, num_iteration=model.booster_.best_iteration)
    np.testing.assert_array_equal(ens.leaf_ids(X), theirs)


@pytest.mark.parametrize(
    "make",
    [
        lambda X: (X > 0).astype(np.int64),
        lambda X: X > 0,
        lambda X: pd.DataFrame({"a": (X[:, 0] > 0).astype(np.int32), "b": X[:, 1]}),
    ],
    ids=["int64", "bool", "pandas-int32-float64"],
)
def test_integer_bool_and_mixed_pandas_inputs(make):
    X, y = _data(2, p=2)
    X = np.nan_to_num(X)
    Xin = make(X)
    model = _model(np.asarray(Xin, dtype=np.float64), y, "nan")
    ens = to_ensemble(model, Xin, y)
    assert dense_numeric(Xin, 2) is not None
    np.testing.assert_array_equal(ens.leaf_ids(Xin), model.booster_.predict(Xin, pred_leaf=True))


def test_categorical_and_other_inputs_use_the_library():
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"c": pd.Categorical(rng.integers(0, 5, 400)), "x": rng.normal(size=400)})
    y = X["c"].cat.codes.to_numpy() + X["x"].to_numpy()
    model = lgb.LGBMRegressor(n_estimators=10, num_leaves=6, min_child_samples=3, verbose=-1)
    model.fit(X, y)
    ens = to_ensemble(model, X, y)
    assert ens.library_router is None  # a categorical split: LightGBM routes
    np.testing.assert_array_equal(ens.leaf_ids(X), model.booster_.predict(X, pred_leaf=True))
    # a frame with a category column, a list and a sparse matrix are not read here
    assert dense_numeric(X, 2) is None
    assert dense_numeric([[0.0, 1.0]], 2) is None
    assert dense_numeric(np.zeros((3, 3)), 2) is None


def test_a_routing_that_differs_is_caught_and_replaced_by_the_library():
    X, y = _data(4, n=2500)
    model = _model(X, y, "nan")
    ens = to_ensemble(model, X, y)
    good = ens.router

    def wrong(Z):
        leaves = good(Z)
        leaves[::7, 0] = 0 if leaves[0, 0] else 1  # leaf 0/1 of tree 0 on every 7th row
        return leaves

    ens.router = wrong
    with pytest.warns(RuntimeWarning, match="differs from the library's on .* checked rows"):
        leaves = ens.check_reconstruction(X)
    truth = model.booster_.predict(X, pred_leaf=True)
    np.testing.assert_array_equal(leaves, truth)
    assert ens.library_router is None
    np.testing.assert_array_equal(ens.leaf_ids(X[:50]), truth[:50])


def test_boostin_fit_pickles_and_matches_the_library_routing(monkeypatch):
    X, y = _data(5, n=1500)
    model = _model(X, y, "nan")
    est = BoostIn(model).fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.transform(X[:20]), est.transform(X[:20]))
    # the same influence, bit for bit, as with LightGBM routing every row
    monkeypatch.setattr(adapter._BoosterCalls, "leaf_ids", adapter._BoosterCalls.library_leaf_ids)
    ref = BoostIn(model).fit(X, y)
    np.testing.assert_array_equal(ref.transform(X[:20]), est.transform(X[:20]))
    np.testing.assert_array_equal(ref.self_influence(), est.self_influence())
