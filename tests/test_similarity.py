"""TreeSim, LeafSim, InputSim: dense numpy references, sign rule, shared properties."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.frozen import FrozenEstimator

from skinfluence._similarity import InputSim, LeafSim, TreeSim

from .models import fitted_explainer, make_model
from .reference import assert_top_k
from .test_trex import dense_features

BIG = np.finfo(np.float64).max * 2.0**-32  # the zero-distance value
pytestmark = pytest.mark.usefixtures("one_thread")


def fitted_with_twin(cls, lib, objective, **params):
    """:func:`fitted_explainer` whose first query duplicates training row 3."""
    X, y, model, exp, Xq, yq = fitted_explainer(cls, lib, objective, **params)
    Xq, yq = Xq.copy(), yq.copy()
    Xq[0], yq[0] = X[3], y[3]
    return X, y, model, exp, Xq, yq


def sign_reference(objective, y_train, y_query, p_query):
    """Spec 5.2 by plain loops."""
    s = np.zeros((len(y_query), len(y_train)))
    for e in range(len(y_query)):
        for i in range(len(y_train)):
            if objective != "squared_error":
                s[e, i] = 1 if y_train[i] == y_query[e] else -1
            else:
                se = 1 if p_query[e] >= y_query[e] else -1
                si = 1 if y_train[i] >= p_query[e] else -1
                s[e, i] = 1 if si != se else -1
    return s


def similarity_reference(A, B, measure):
    """(m, n) similarity of rows of A (queries) and B (training) by plain numpy."""
    if measure == "dot_prod":
        return A @ B.T
    if measure == "cosine":
        na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
        den = na[:, None] * nb[None, :]
        return np.divide(A @ B.T, den, out=np.zeros_like(den), where=den > 0)
    d = np.sqrt(((A[:, None, :] - B[None, :, :]) ** 2).sum(-1))
    return np.where(d == 0, BIG, 1 / np.where(d > 0, d, 1))


def _prediction(model, Xq):
    return model.predict(Xq).astype(float)


TREE_CASES = [
    ("sklearn_gb", "binary", "lpw", "dot_prod"),
    ("sklearn_gb", "squared_error", "fpw", "cosine"),
    ("forest", "multiclass", "lo_", "euclidean"),
    ("forest", "squared_error", "to_", "dot_prod"),
    ("sklearn_gb", "multiclass", "fow", "euclidean"),
]


@pytest.mark.parametrize("lib,objective,kernel,measure", TREE_CASES)
def test_treesim_matches_dense_reference(lib, objective, kernel, measure):
    X, y, model, exp, Xq, yq = fitted_with_twin(
        TreeSim, lib, objective, kernel=kernel, measure=measure
    )
    A, B = dense_features(model, X, Xq, kernel), dense_features(model, X, X, kernel)
    sim = similarity_reference(A, B, measure)
    sign = sign_reference(objective, y, yq, _prediction(model, Xq))
    got = exp.transform(Xq, yq)
    np.testing.assert_allclose(got, sim * sign, rtol=1e-9, atol=1e-12)
    if measure == "euclidean":
        assert got[0, 3] == BIG  # the duplicated row
    # self-influence: sim(i, i) s(i, i)
    self_ref = np.diag(similarity_reference(B, B, measure)) * np.diag(
        sign_reference(objective, y, y, _prediction(model, X))
    )
    np.testing.assert_allclose(exp.self_influence(), self_ref, rtol=1e-9)


@pytest.mark.parametrize(
    "lib,objective",
    [
        ("lightgbm", "binary"),
        ("xgboost", "multiclass"),
        ("catboost", "squared_error"),
        ("forest", "binary"),
    ],
)
def test_leafsim_is_shared_leaves_over_size_squared(lib, objective):
    X, y, model, exp, Xq, yq = fitted_with_twin(LeafSim, lib, objective)
    ens = exp.ensemble_
    tl, ql = ens.leaf_ids(X), ens.leaf_ids(Xq)
    sim = np.zeros((len(Xq), len(X)))
    for t in range(ens.n_trees):
        n_leaf = np.bincount(tl[:, t], minlength=ens.n_leaves[t])
        sim += (ql[:, t][:, None] == tl[:, t][None, :]) / n_leaf[tl[:, t]][None, :] ** 2
    sign = sign_reference(objective, y, yq, _prediction(model, Xq))
    np.testing.assert_allclose(exp.transform(Xq, yq), sim * sign, rtol=1e-12, atol=1e-15)
    tree = TreeSim(model, kernel="lpw").fit(X, y)
    np.testing.assert_allclose(exp.transform(Xq, yq), tree.transform(Xq, yq), rtol=1e-14)
    if objective == "squared_error":  # label-free: +1 if y_i > prediction
        p = _prediction(model, Xq)
        np.testing.assert_allclose(
            exp.transform(Xq),
            sim * np.where(y[None, :] > p[:, None], 1, -1),
            rtol=1e-12,
            atol=1e-15,
        )
    else:
        np.testing.assert_allclose(exp.transform(Xq), exp.transform(Xq, model.predict(Xq)))


@pytest.mark.parametrize("measure", ["euclidean", "dot_prod", "cosine"])
@pytest.mark.parametrize("objective", ["binary", "squared_error"])
def test_inputsim_matches_dense_reference(objective, measure):
    X, y, model, exp, Xq, yq = fitted_with_twin(InputSim, "lightgbm", objective, measure=measure)
    sim = similarity_reference(Xq, X, measure)
    sign = sign_reference(objective, y, yq, _prediction(model, Xq))
    np.testing.assert_allclose(exp.transform(Xq, yq), sim * sign, rtol=1e-10, atol=1e-12)


CASES = [
    (TreeSim, "lightgbm", "multiclass", {}),
    (TreeSim, "sklearn_gb", "squared_error", {"kernel": "fp_", "measure": "cosine"}),
    (LeafSim, "forest", "multiclass", {}),
    (LeafSim, "lightgbm", "squared_error", {}),
    (InputSim, "forest", "binary", {"measure": "cosine"}),
]


@pytest.mark.parametrize("cls,lib,objective,params", CASES)
def test_self_global_topk_consistent(cls, lib, objective, params):
    X, y, model, exp, Xq, yq = fitted_with_twin(cls, lib, objective, **params)
    y_fit = exp._y_train if objective == "squared_error" else y
    full = exp.transform(X, y_fit)
    np.testing.assert_allclose(np.diag(full), exp.self_influence(), rtol=1e-12)
    M = exp.transform(Xq, yq)
    np.testing.assert_allclose(
        exp.global_influence(Xq, yq), M.sum(0), rtol=1e-9, atol=1e-12 * np.abs(M).max()
    )
    assert_top_k(exp, Xq, yq, M, k=5)


def test_euclidean_self_influence_is_the_zero_distance_value():
    X, y, model, exp, Xq, yq = fitted_with_twin(InputSim, "lightgbm", "binary", measure="euclidean")
    assert np.all(exp.self_influence() == BIG)
    out = InputSim(model, dtype=np.float32).fit(X, y).transform(Xq[:1], yq[:1])
    assert out[0, 3] == np.finfo(np.float32).max * 2.0**-32  # in the output dtype


def test_kernel_symmetry():
    X, y, model, exp, Xq, yq = fitted_with_twin(
        TreeSim, "sklearn_gb", "binary", kernel="fow", measure="dot_prod"
    )
    sim = np.abs(exp.transform(X, y))
    np.testing.assert_allclose(sim, sim.T, rtol=1e-12)


def test_errors_are_clear():
    X, y, model, *_ = fitted_with_twin(LeafSim, "lightgbm", "binary")
    with pytest.raises(ValueError, match="measure"):
        TreeSim(model, measure="manhattan").fit(X, y)
    with pytest.raises(ValueError, match="kernel"):
        TreeSim(model, kernel="rbf").fit(X, y)
    with pytest.raises(ValueError, match="measure"):
        InputSim(model, measure="l1").fit(X, y)
    # missing features: a distance is undefined (the trees route NaN, InputSim cannot)
    X_nan = np.array(X, dtype=np.float64, copy=True)
    X_nan[[3, 7], 0] = np.nan
    msg = "2 row\\(s\\) have missing or infinite features.*impute them first"
    nan_model = make_model("lightgbm", "binary").fit(X_nan, y)  # the trees route NaN
    with pytest.raises(ValueError, match=msg):
        InputSim(nan_model).fit(X_nan, y)
    fitted = InputSim(model).fit(X, y)
    with pytest.raises(ValueError, match="1 row\\(s\\) have missing"):
        fitted.transform(X_nan[3:4], y[3:4])
    assert np.isnan(X_nan[3, 0])  # the input is left as given


PROP_CASES = [
    (LeafSim, "lightgbm", "binary", ()),
    (TreeSim, "forest", "squared_error", (("kernel", "fpw"),)),
    (InputSim, "sklearn_hgb", "multiclass", ()),
]


@given(seed=st.integers(0, 2**16), case=st.sampled_from(PROP_CASES))
def test_permuting_training_rows_permutes_columns(seed, case):
    cls, lib, objective, params = case
    X, y, model, exp, Xq, yq = fitted_with_twin(cls, lib, objective, **dict(params))
    perm = np.random.default_rng(seed).permutation(len(X))
    exp_p = cls(FrozenEstimator(model), **dict(params)).fit(X[perm], y[perm])
    np.testing.assert_allclose(
        exp_p.transform(Xq, yq), exp.transform(Xq, yq)[:, perm], rtol=1e-12, atol=1e-15
    )


@given(rows=st.lists(st.integers(0, 24), min_size=1, max_size=8), case=st.sampled_from(PROP_CASES))
def test_rows_are_independent(rows, case):
    cls, lib, objective, params = case
    X, y, model, exp, Xq, yq = fitted_with_twin(cls, lib, objective, **dict(params))
    rows = np.asarray(rows)
    np.testing.assert_array_equal(exp.transform(Xq[rows], yq[rows]), exp.transform(Xq, yq)[rows])
