"""AXIL: the weights reproduce the model's predictions on every library, the kernels
equal a dense forward recursion in numpy, and the refusals name their reason.

Tolerances: the weights are computed in float64 from the stored trees. scikit-learn's
GradientBoostingRegressor keeps float64 leaves and residuals, so the weighted targets
reproduce its prediction to float64 rounding. The other libraries round in float32
(LightGBM and XGBoost store float32 leaf values or thresholds on the margin,
HistGradientBoosting's gradients and CatBoost's labels are float32): there the gap to
the library's own prediction is a few float32 roundings of the prediction (measured
below 1e-6 on targets of size about 3), and the test allows 1e-5 times the largest
target.
"""

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from skinfluence import AXIL, LeafModelError, UnsupportedModelError, to_ensemble
from skinfluence._kernels import _axil

from . import model_table
from .models import LIBRARIES, make_data, make_model

_FLOAT64_LEAVES = ("sklearn_gb",)


def _data():
    X, y = make_data("squared_error", n=150)
    Xq, _ = make_data("squared_error", n=30, seed=5)
    w = np.random.default_rng(1).uniform(0.2, 2.0, len(y))
    return X, y, Xq, w


def _tol(lib, y):
    return (1e-12 if lib in _FLOAT64_LEAVES else 1e-5) * np.abs(y).max()


# ------------------------------------------------------------ the dense reference
def _forward_reference(train_leaves, q_leaves, a, offsets, const, bias_a, bias_const):
    """AXIL weights by the forward recursion with dense matrices.

    ``P[j]`` holds the weights of the targets (and, last column, of the constant 1) in
    the score of training row ``j``; each leaf's value is
    ``V_l = sum_{j in l} a[j, t] (e_j - P[j]) + const_l e_1``; every row (training and
    query) adds the value of the leaf it reaches.
    """
    n, T = train_leaves.shape
    start = np.concatenate([bias_a, [bias_const]])
    P = np.tile(start, (n, 1))
    Q = np.tile(start, (len(q_leaves), 1))
    E = np.eye(n, n + 1)
    for t in range(T):
        n_leaves = offsets[t + 1] - offsets[t]
        V = np.zeros((n_leaves, n + 1))
        V[:, n] = const[offsets[t] : offsets[t + 1]]
        np.add.at(V, train_leaves[:, t], a[:, t][:, None] * (E - P))
        P = P + V[train_leaves[:, t]]
        Q = Q + V[q_leaves[:, t]]
    return Q[:, :n], Q[:, n]


def _random_problem(rng, n, m, n_leaves):
    offsets = np.concatenate([[0], np.cumsum(n_leaves)]).astype(np.int64)
    leaves = np.stack([rng.integers(0, L, n) for L in n_leaves], axis=1).astype(np.int32)
    q_leaves = np.stack([rng.integers(0, L, m) for L in n_leaves], axis=1).astype(np.int32)
    a = rng.uniform(0.0, 0.3, (n, len(n_leaves)))
    const = np.where(rng.random(offsets[-1]) < 0.2, rng.normal(size=offsets[-1]), 0.0)
    const_leaf = const != 0
    a[const_leaf[leaves + offsets[:-1]]] = 0.0  # rows of constant leaves carry nothing
    return leaves, q_leaves, a, offsets, const


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 30),
    m=st.integers(1, 8),
    n_leaves=st.lists(st.integers(1, 6), min_size=1, max_size=6),
    attributed=st.booleans(),
    group=st.sampled_from([1, 3, 16]),
)
def test_kernels_equal_the_dense_forward_recursion(seed, n, m, n_leaves, attributed, group):
    rng = np.random.default_rng(seed)
    leaves, q_leaves, a, offsets, const = _random_problem(rng, n, m, n_leaves)
    bias_a = rng.dirichlet(np.ones(n)) if attributed else np.zeros(n)
    bias_const = 0.0 if attributed else float(rng.normal())
    K_ref, c_ref = _forward_reference(leaves, q_leaves, a, offsets, const, bias_a, bias_const)
    leaves_t, a_t = np.ascontiguousarray(leaves.T), np.ascontiguousarray(a.T)
    out, c = np.full((m, n), np.nan), np.full(m, np.nan)
    _axil.query_weights(q_leaves, leaves_t, a_t, offsets, const, bias_a, bias_const, group, out, c)
    np.testing.assert_allclose(out, K_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c, c_ref, rtol=1e-10, atol=1e-12)
    # bit for bit the single-query pass seeded with the query's leaves, for any group
    for e in range(m):
        one_hot = np.zeros(offsets[-1])
        one_hot[q_leaves[e] + offsets[:-1]] = 1.0
        rho = np.zeros(n)
        total, constant = _axil.backward(one_hot, leaves_t, a_t, offsets, const, rho)
        c_e = _axil.finish(rho, total, constant, 1.0, bias_a, bias_const)
        np.testing.assert_array_equal(out[e], rho)
        assert c[e] == c_e
    # the diagonal, in buffers of 1 and 3 rows
    K_train, _ = _forward_reference(leaves, leaves, a, offsets, const, bias_a, bias_const)
    for rows in (1, 3, 16):
        diag = _axil.self_weights(leaves_t, a_t, offsets, const, bias_a, bias_const, rows)
        np.testing.assert_allclose(diag, np.diag(K_train), rtol=1e-10, atol=1e-12)
    # one pass with weighted seeds = the weighted sum of the queries' weights
    s = rng.normal(size=m)
    seed_vec = np.zeros(offsets[-1])
    np.add.at(seed_vec, (q_leaves + offsets[:-1]).ravel(), np.repeat(s, len(n_leaves)))
    rho = np.zeros(n)
    total, constant = _axil.backward(seed_vec, leaves_t, a_t, offsets, const, rho)
    cs = _axil.finish(rho, total, constant, s.sum(), bias_a, bias_const)
    np.testing.assert_allclose(rho, s @ K_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cs, s @ c_ref, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ exactness
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("lib", LIBRARIES)
def test_weights_reproduce_the_predictions(lib, weighted):
    X, y, Xq, w = _data()
    w = w if weighted else None
    model = make_model(lib, "squared_error").fit(X, y, sample_weight=w)
    axil = AXIL(model).fit(X, y, sample_weight=w)
    assert axil.bias_attributed_  # every library starts from the weighted mean
    K = axil.transform(Xq)
    np.testing.assert_array_equal(axil.intercept(Xq), 0.0)
    np.testing.assert_allclose(K @ y, model.predict(Xq), rtol=0, atol=_tol(lib, y))
    np.testing.assert_allclose(K.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    # the weights equal the dense recursion from the library's own leaf rule
    ens = axil.ensemble_
    leaves, q_leaves = ens.leaf_ids(X), ens.leaf_ids(Xq)
    ww = np.ones(len(y)) if w is None else w
    if ens.label_dtype is not None:
        ww = ww.astype(ens.label_dtype).astype(np.float64)
    flat = ens.flat_leaves(leaves)
    W = np.bincount(flat.ravel(), np.repeat(ww, ens.n_trees), ens.n_leaves_total)
    eta = np.repeat(ens.learning_rates, ens.n_leaves)
    a = eta[flat] * ww[:, None] / (W + ens.l2)[flat]
    zero = np.zeros(ens.n_leaves_total)
    K_ref, _ = _forward_reference(leaves, q_leaves, a, ens.leaf_offsets, zero, ww / ww.sum(), 0)
    np.testing.assert_allclose(K, K_ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(axil.target_derivatives_, a, rtol=1e-12)


@pytest.mark.parametrize(
    ("lib", "params"),
    [
        ("xgboost", {"base_score": 1.0}),  # an initial score that is not the mean
        ("lightgbm", {"boost_from_average": False}),  # initial score 0
        ("sklearn_gb", {"init": "zero"}),
        ("lightgbm", {"max_delta_step": 0.2}),  # clamped leaves: constants
        ("xgboost", {"max_delta_step": 0.2}),
        ("catboost", {"leaf_estimation_iterations": 3}),  # three Newton steps per leaf
        ("catboost", {"leaf_estimation_method": "Gradient"}),
        ("lightgbm", {"n_estimators": 5, "min_child_samples": 100}),  # constant trees
    ],
)
def test_intercept_carries_the_unattributed_part(lib, params):
    X, y, Xq, w = _data()
    model = make_model(lib, "squared_error", **params).fit(X, y, sample_weight=w)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        axil = AXIL(model).fit(X, y, sample_weight=w)
    K, c = axil.transform(Xq), axil.intercept(Xq)
    np.testing.assert_allclose(K @ y + c, model.predict(Xq), rtol=0, atol=_tol(lib, y))
    if not axil.bias_attributed_ and not axil._const.any():
        # shifting every target and the initial score shifts the prediction: the
        # unattributed part is the initial score times the weight left over
        np.testing.assert_allclose(c, axil.bias_ * (1 - K.sum(axis=1)), atol=1e-12)


def test_bias_kept_constant_on_request():
    X, y, Xq, _ = _data()
    model = make_model("lightgbm", "squared_error").fit(X, y)
    auto = AXIL(model).fit(X, y)
    const = AXIL(model, bias="constant").fit(X, y)
    assert auto.bias_attributed_ and not const.bias_attributed_
    Kc, c = const.transform(Xq), const.intercept(Xq)
    np.testing.assert_allclose(c, const.bias_ * (1 - Kc.sum(axis=1)), atol=1e-12)
    np.testing.assert_allclose(Kc @ y + c, auto.transform(Xq) @ y, atol=1e-10)


# ------------------------------------------------------------- the other outputs
def test_labels_self_and_global_outputs():
    X, y, Xq, w = _data()
    model = make_model("sklearn_hgb", "squared_error").fit(X, y, sample_weight=w)
    axil = AXIL(model).fit(X, y, sample_weight=w)
    yq = model.predict(Xq) + np.linspace(-1, 1, len(Xq))
    K, f = axil.transform(Xq), axil.ensemble_.raw_predict(Xq)[:, 0]
    expected = K * (y[None, :] - f[:, None]) * (yq - f)[:, None]
    np.testing.assert_allclose(axil.transform(Xq, yq), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(axil.global_influence(Xq), K.sum(axis=0), atol=1e-12)
    np.testing.assert_allclose(axil.global_influence(Xq, yq), expected.sum(axis=0), atol=1e-12)
    full = axil.fit_transform(X, y, sample_weight=w)
    np.testing.assert_allclose(axil.self_influence(), np.diag(full), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(axil.self_weights(), np.diag(axil.transform(X)), atol=1e-14)
    small = clone(axil).set_params(chunk_memory_mb=0.01).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(small.self_weights(), axil.self_weights())
    np.testing.assert_array_equal(small.transform(Xq), K)
    single = clone(axil).set_params(dtype=np.float32).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(single.transform(Xq), K.astype(np.float32))
    idx, _ = axil.top_k(Xq, yq, k=3)
    np.testing.assert_array_equal(idx, np.argsort(-expected, axis=1, kind="stable")[:, :3])


def test_fitted_explainer_pickles():
    X, y, Xq, _ = _data()
    axil = AXIL(make_model("lightgbm", "squared_error")).fit(X, y)
    again = pickle.loads(pickle.dumps(axil))
    np.testing.assert_array_equal(again.transform(Xq), axil.transform(Xq))


def test_default_model_is_a_regressor():
    X, y = make_data("binary", n=80)  # integer targets: still a regression
    axil = AXIL().fit(X, y)
    K = axil.transform(X[:5])
    np.testing.assert_allclose(K @ y, axil.estimator_.predict(X[:5]), atol=1e-6)


# ----------------------------------------------------------------- refusals
def test_classifiers_are_refused():
    X, y = make_data("binary", n=80)
    with pytest.raises(ValueError, match="AXIL needs a model trained with the squared error"):
        AXIL(make_model("lightgbm", "binary")).fit(X, y)


@pytest.mark.parametrize(
    ("lib", "params"),
    [
        ("lightgbm", {"subsample": 0.5, "subsample_freq": 1}),  # bagging
        ("sklearn_gb", {"subsample": 0.5}),
        ("lightgbm", {"reg_alpha": 1.0}),  # L1: soft-thresholded leaves
    ],
)
def test_leaves_that_are_not_newton_steps_are_refused(lib, params):
    X, y, _, _ = _data()
    model = make_model(lib, "squared_error", **params).fit(X, y)
    with pytest.raises(LeafModelError, match="are not one Newton step"):
        AXIL(model).fit(X, y)
    with pytest.warns(UserWarning, match="are not one Newton step"):
        AXIL(model, check_leaf_model="warn").fit(X, y)


def test_bad_bias_parameter():
    X, y, _, _ = _data()
    with pytest.raises(ValueError, match="bias must be one of"):
        AXIL(make_model("lightgbm", "squared_error"), bias="mean").fit(X, y)


# ----------------------------------------------------------------- forests
def _forests():
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

    return [
        ExtraTreesRegressor(n_estimators=4, min_samples_leaf=3, random_state=0),
        RandomForestRegressor(n_estimators=4, bootstrap=False, max_features=0.5, random_state=0),
    ]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("forest", _forests(), ids=lambda m: type(m).__name__)
def test_forest_weights_are_leaf_shares(forest, weighted):
    X, y, Xq, w = _data()
    w = w if weighted else None
    model = clone(forest).fit(X, y, sample_weight=w)
    axil = AXIL(model).fit(X, y, sample_weight=w)
    K = axil.transform(Xq)
    np.testing.assert_allclose(K @ y, model.predict(Xq), rtol=0, atol=1e-12 * np.abs(y).max())
    np.testing.assert_array_equal(axil.intercept(Xq), 0.0)
    # the reference: the row's share of each tree's leaf mean, averaged over the trees
    ww = np.ones(len(y)) if w is None else w
    leaves, q_leaves = axil.ensemble_.leaf_ids(X), axil.ensemble_.leaf_ids(Xq)
    same = leaves[None, :, :] == q_leaves[:, None, :]  # (m, n, T)
    W = (same * ww[None, :, None]).sum(axis=1, keepdims=True)
    K_ref = (same * ww[None, :, None] / W).mean(axis=2)
    np.testing.assert_allclose(K, K_ref, rtol=1e-12, atol=1e-15)
    yq = model.predict(Xq) + 0.5
    np.testing.assert_allclose(axil.self_weights(), np.diag(axil.transform(X)), atol=1e-15)
    np.testing.assert_allclose(
        axil.global_influence(Xq, yq), axil.transform(Xq, yq).sum(0), atol=1e-12
    )


def test_bootstrap_forests_are_refused():
    from sklearn.ensemble import RandomForestRegressor

    X, y, _, _ = _data()
    model = RandomForestRegressor(n_estimators=3, random_state=0).fit(X, y)
    with pytest.raises(LeafModelError, match="not the weighted means of the training targets"):
        AXIL(model).fit(X, y)


# ------------------------------------------------ every regression model of the table
_TABLE = [r for r in model_table.rows() if r.task == "regression"]


@pytest.mark.parametrize(
    "row", _TABLE, ids=[f"{r.library}-{r.objective}-{r.setting}" for r in _TABLE]
)
def test_models_table_regression_rows(row):
    """AXIL on each regression model of ``doc/models.rst``: the weights reproduce the
    prediction where the gradient methods are exact, and the same check refuses the
    model where they are refused (a bootstrap forest: AXIL's own forest check)."""
    X, y = model_table.data(row.task)
    model = model_table.make(row).fit(X, y)
    if row.refused is not None:
        reason = row.refused[0]
        if row.model[1] == "RandomForestRegressor":  # bootstrap: refused by AXIL's check
            reason = "not the weighted means of the training targets"
        with pytest.raises((ValueError, UnsupportedModelError), match=reason):
            AXIL(model).fit(X, y)
        return
    if to_ensemble(model).objective != "squared_error":  # e.g. Huber
        with pytest.raises(ValueError, match="needs a model trained with the squared error"):
            AXIL(model).fit(X, y)
        return
    axil = AXIL(model).fit(X, y)
    got = axil.transform(X[:20]) @ y + axil.intercept(X[:20])
    np.testing.assert_allclose(got, model.predict(X[:20]), rtol=0, atol=1e-5 * np.abs(y).max())


def test_rows_held_out_by_early_stopping_get_weight_zero():
    from sklearn.ensemble import HistGradientBoostingRegressor

    X, y = make_data("squared_error", n=300)
    model = HistGradientBoostingRegressor(
        max_iter=30, early_stopping=True, validation_fraction=0.2, n_iter_no_change=50
    ).fit(X, y)
    axil = AXIL(model).fit(X, y)
    K = axil.transform(X[:20])
    assert len(axil.validation_indices_) == 60 and axil.bias_attributed_
    np.testing.assert_array_equal(K[:, axil.validation_indices_], 0.0)
    np.testing.assert_allclose(K @ y, model.predict(X[:20]), rtol=0, atol=1e-5 * np.abs(y).max())
