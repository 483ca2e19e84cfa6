"""TREX: kernel feature maps against dense numpy, representer reconstruction, the
influence formula and the shared properties."""

from functools import partial

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator

from skinfluence._objectives import loss
from skinfluence._trex import KERNELS, TREX

from .models import fitted_explainer
from .reference import assert_top_k, encode_labels

pytestmark = pytest.mark.usefixtures("one_thread")
fitted = partial(fitted_explainer, TREX)


# ------------------------------------------------------------ dense references
def sklearn_trees(model):
    """(decision tree, multiplier) per tree of the ensemble, in the ensemble's order."""
    if hasattr(model, "estimators_") and np.ndim(model.estimators_) == 2:  # GB
        return [(est, model.learning_rate, 0) for est in np.ravel(model.estimators_)]
    K = 1 if not hasattr(model, "classes_") or len(model.classes_) == 2 else len(model.classes_)
    return [(est, None, k) for est in model.estimators_ for k in range(K)]


def _leaf_value(model, tree, mult, k, nodes):
    v = tree.tree_.value[nodes]
    if mult is not None:
        return v[:, 0, 0] * mult
    if not hasattr(model, "classes_"):
        return v[:, 0, 0]
    frac = v[:, 0, :] / v[:, 0, :].sum(axis=1, keepdims=True)
    return frac[:, 1] if len(model.classes_) == 2 else frac[:, k]


def dense_features(model, X_train, X, kernel):
    """phi(X) as a dense matrix, from scikit-learn's own ``decision_path`` (independent
    of the adapter): one block of columns per tree (tree output, or one column per
    node of the tree, leaves and internal nodes)."""
    blocks = []
    for tree, mult, k in sklearn_trees(model):
        P_tr = tree.decision_path(X_train).toarray().astype(float)
        P = tree.decision_path(X).toarray().astype(float)
        counts = P_tr.sum(axis=0)
        inv = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
        is_leaf = tree.tree_.children_left < 0
        leaf_of = tree.apply(X)
        value = np.zeros(tree.tree_.node_count)
        value[is_leaf] = _leaf_value(model, tree, mult, k, np.flatnonzero(is_leaf))
        if kernel == "to_":
            blocks.append(value[leaf_of][:, None])
            continue
        cols = is_leaf if kernel in ("lp_", "lpw", "lo_", "low") else np.ones_like(is_leaf)
        weighted = kernel in ("lpw", "low", "fpw", "fow")
        node_w = inv if weighted else np.ones(tree.tree_.node_count)
        if kernel in ("lo_", "low", "fo_", "fow"):
            node_w = np.where(is_leaf, value * (inv if weighted else 1.0), node_w)
        blocks.append((P * node_w[None, :])[:, cols])
    return np.hstack(blocks)


def reference_influence(exp, Phi_train, Phi_query, y_query, objective):
    """I(i, e) = L(y_e, f_e - alpha_i k_ie) - L(y_e, f_e), dense (spec 5.1 step 5)."""
    alpha = exp.representer_weights_
    Kq = Phi_query @ Phi_train.T  # (m, n)
    f = Kq @ alpha  # (m, K)
    out = np.zeros(Kq.shape)
    for e in range(len(Kq)):
        F = f[e][None, :] - alpha * Kq[e][:, None]
        y = np.full(len(alpha), y_query[e])
        out[e] = loss(objective, y, F) - loss(objective, y[:1], f[e][None, :])
    return out


# ------------------------------------------------------------------- kernels
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(
    "lib,objective",
    [("sklearn_gb", "binary"), ("sklearn_gb", "multiclass"), ("forest", "squared_error")],
)
def test_feature_map_matches_dense_reference(lib, objective, kernel):
    X, y, model, exp, Xq, yq = fitted(lib, objective, kernel=kernel)
    ref_t = dense_features(model, X, X, kernel)
    ref_q = dense_features(model, X, Xq, kernel)
    phi_t, phi_q = exp.kernel_features(X), exp.kernel_features(Xq)
    # same kernel; column layouts are both "per tree", so the matrices agree up to a
    # permutation of columns within trees: compare Gram matrices and sorted rows
    np.testing.assert_allclose((phi_q @ phi_t.T).toarray(), ref_q @ ref_t.T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose((phi_t @ phi_t.T).toarray(), ref_t @ ref_t.T, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        np.sort(phi_q.toarray(), axis=1)[:, -ref_q.shape[1] :],
        np.sort(ref_q, axis=1),
        rtol=1e-12,
        atol=1e-14,
    )
    # the kernel used by transform is the same
    np.testing.assert_allclose(
        exp._kernel.gram(exp.ensemble_.leaf_ids(Xq)), ref_q @ ref_t.T, rtol=1e-12, atol=1e-14
    )
    # sparse: one entry per tree (leaf kernels) or one per path node
    per_tree = np.diff(phi_q.indptr) / exp.ensemble_.n_trees
    if kernel[:2] in ("lp", "lo", "to"):
        assert np.all(per_tree == 1)
    else:
        assert np.all(per_tree >= 1) and per_tree.max() > 1


def test_lpw_kernel_is_shared_leaves_over_size_squared():
    X, y, model, exp, Xq, yq = fitted("lightgbm", "binary")
    ens = exp.ensemble_
    tl, ql = ens.leaf_ids(X), ens.leaf_ids(Xq)
    expected = np.zeros((len(Xq), len(X)))
    for t in range(ens.n_trees):
        n_leaf = np.bincount(tl[:, t], minlength=ens.n_leaves[t])
        same = ql[:, t][:, None] == tl[:, t][None, :]
        expected += same / n_leaf[tl[:, t]][None, :] ** 2
    np.testing.assert_allclose(exp._kernel.gram(ql), expected, rtol=1e-12)
    K = (exp.kernel_features(X) @ exp.kernel_features(X).T).toarray()
    np.testing.assert_allclose(K, K.T, rtol=0, atol=0)  # symmetric
    assert np.all(np.linalg.eigvalsh(K) > -1e-10)  # positive semi-definite


# ------------------------------------------------------ surrogate and alpha
RECON = [
    ("lightgbm", "squared_error", "lpw"),
    ("lightgbm", "binary", "lpw"),
    ("lightgbm", "multiclass", "lpw"),
    ("xgboost", "squared_error", "fp_"),
    ("sklearn_hgb", "binary", "lo_"),
    ("sklearn_gb", "multiclass", "fow"),
    ("catboost", "squared_error", "to_"),
    ("forest", "binary", "lpw"),
    ("forest", "squared_error", "lp_"),
]


@pytest.mark.parametrize("lib,objective,kernel", RECON)
def test_representers_reconstruct_the_surrogate(lib, objective, kernel):
    X, y, model, exp, Xq, yq = fitted(lib, objective, kernel=kernel)
    phi_t, phi_q = exp.kernel_features(X), exp.kernel_features(Xq)
    alpha = exp.representer_weights_
    for phi, Xs in ((phi_t, X), (phi_q, Xq)):
        f = exp.surrogate_decision_function(Xs)
        rec = (phi @ phi_t.T).toarray() @ alpha
        scale = max(1.0, np.abs(f).max())
        np.testing.assert_allclose(rec, f, rtol=0, atol=1e-6 * scale)
    # alpha from stationarity, without the reference's halving for regression
    f = exp.surrogate_decision_function(X)
    lmbd, n = exp.lmbd, len(X)
    y = exp._y_train  # the labels as the model holds them (LightGBM: float32)
    if objective == "squared_error":
        np.testing.assert_allclose(alpha[:, 0], (f[:, 0] - y) / (-lmbd * n), rtol=1e-12)
        halved = (phi_t @ phi_t.T).toarray() @ (alpha / 2)
        assert np.abs(halved - f).max() > 0.1 * np.abs(f).max()
    elif objective == "binary":
        np.testing.assert_allclose(alpha[:, 0], (expit(f[:, 0]) - y) / (-2 * lmbd * n), rtol=1e-12)
    else:
        Y = np.eye(alpha.shape[1])[y.astype(int)]
        np.testing.assert_allclose(alpha, (softmax(f, axis=1) - Y) / (-2 * lmbd * n), rtol=1e-12)
    # fidelity is the correlation with the model's raw scores
    raw = exp.ensemble_.raw_from_leaves(exp.ensemble_.leaf_ids(X))
    assert exp.fidelity_ == pytest.approx(np.corrcoef(f.ravel(), raw.ravel())[0, 1])
    assert exp.fidelity_ > 0.5


@pytest.mark.parametrize("objective", ["squared_error", "binary", "multiclass"])
def test_predicted_target_fits_model_outputs(objective):
    X, y, model, exp, Xq, yq = fitted("lightgbm", objective, target="predicted")
    f = exp.surrogate_decision_function(X)
    raw = exp.ensemble_.raw_from_leaves(exp.ensemble_.leaf_ids(X))
    lmbd, n = exp.lmbd, len(X)
    if objective == "squared_error":
        target = raw
        np.testing.assert_allclose(exp.representer_weights_, (f - target) / (-lmbd * n), rtol=1e-12)
    else:
        target = expit(raw) if objective == "binary" else softmax(raw, axis=1)
        p = expit(f) if objective == "binary" else softmax(f, axis=1)
        np.testing.assert_allclose(
            exp.representer_weights_, (p - target) / (-2 * lmbd * n), rtol=1e-12
        )
    phi = exp.kernel_features(X)
    np.testing.assert_allclose(
        (phi @ phi.T).toarray() @ exp.representer_weights_, f, atol=1e-6 * max(1, np.abs(f).max())
    )


def test_solver_reports_non_convergence():
    X, y, model, *_ = fitted("lightgbm", "squared_error")
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        TREX(model, kernel="lp_", max_iter=2).fit(X, y)


# ------------------------------------------------------------------ influence
CASES = RECON[:3] + [  # LightGBM's three tasks with the "lpw" kernel, then others
    ("sklearn_gb", "binary", "fpw"),
    ("xgboost", "multiclass", "to_"),
    ("forest", "multiclass", "low"),
    ("forest", "squared_error", "fo_"),
]


@pytest.mark.parametrize("lib,objective,kernel", CASES)
def test_transform_matches_dense_reference(lib, objective, kernel):
    X, y, model, exp, Xq, yq = fitted(lib, objective, kernel=kernel)
    phi_t = exp.kernel_features(X).toarray()
    phi_q = exp.kernel_features(Xq).toarray()
    got = exp.transform(Xq, yq)
    expected = reference_influence(exp, phi_t, phi_q, encode_labels(exp, yq), objective)
    assert got.shape == (len(Xq), len(X)) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-12)
    assert np.abs(got).max() > 0
    # label-free: regression gives R = alpha k (influence on the prediction),
    # classification the loss at the predicted label
    if objective == "squared_error":
        R = (phi_q @ phi_t.T) * exp.representer_weights_[:, 0][None, :]
        np.testing.assert_allclose(exp.transform(Xq), R, rtol=1e-10, atol=1e-14)
    else:
        np.testing.assert_allclose(
            exp.transform(Xq), exp.transform(Xq, model.predict(Xq)), rtol=1e-12, atol=1e-15
        )


@pytest.mark.parametrize("lib,objective,kernel", CASES)
def test_self_global_topk_consistent(lib, objective, kernel):
    X, y, model, exp, Xq, yq = fitted(lib, objective, kernel=kernel)
    # fit rounds regression labels to the library's precision (LightGBM, CatBoost:
    # float32); the diagonal identity holds for the labels as fit holds them
    y_fit = exp._y_train if objective == "squared_error" else y
    full = exp.transform(X, y_fit)
    np.testing.assert_allclose(np.diag(full), exp.self_influence(), rtol=1e-9, atol=1e-13)
    M = exp.transform(Xq, yq)
    np.testing.assert_allclose(exp.global_influence(Xq, yq), M.sum(0), rtol=1e-9, atol=1e-12)
    assert_top_k(exp, Xq, yq, M, k=5)


def test_errors_are_clear():
    X, y, model, *_ = fitted("lightgbm", "binary")
    with pytest.raises(ValueError, match="kernel must be one of"):
        TREX(model, kernel="rbf").fit(X, y)
    with pytest.raises(ValueError, match="target must be"):
        TREX(model, target="labels").fit(X, y)
    with pytest.raises(ValueError, match="lmbd"):
        TREX(model, lmbd=0).fit(X, y)


# ------------------------------------------------------------------ properties
PROP_CASES = [
    ("lightgbm", "binary", "lpw"),
    ("sklearn_hgb", "squared_error", "lpw"),
    ("sklearn_gb", "multiclass", "fp_"),
]


@given(seed=st.integers(0, 2**16), case=st.sampled_from(PROP_CASES))
def test_permuting_training_rows_permutes_columns(seed, case):
    X, y, model, exp, Xq, yq = fitted(*case[:2], kernel=case[2])
    perm = np.random.default_rng(seed).permutation(len(X))
    exp_p = TREX(FrozenEstimator(model), kernel=case[2]).fit(X[perm], y[perm])
    full = exp.transform(Xq, yq)
    # the surrogate is unique; both solutions are accurate to the solver's precision
    np.testing.assert_allclose(
        exp_p.transform(Xq, yq), full[:, perm], rtol=1e-4, atol=1e-5 * np.abs(full).max()
    )


@given(rows=st.lists(st.integers(0, 24), min_size=1, max_size=8), case=st.sampled_from(PROP_CASES))
def test_rows_are_independent(rows, case):
    X, y, model, exp, Xq, yq = fitted(*case[:2], kernel=case[2])
    full = exp.transform(Xq, yq)
    rows = np.asarray(rows)
    np.testing.assert_allclose(
        exp.transform(Xq[rows], yq[rows]),
        full[rows],
        rtol=0,
        atol=1e-12 * max(1.0, np.abs(full).max()),
    )


def test_results_do_not_depend_on_threads():
    X, y, model, exp, Xq, yq = fitted("lightgbm", "multiclass", kernel="lpw")
    one = TREX(model, n_jobs=1).fit(X, y)
    np.testing.assert_array_equal(one.transform(Xq, yq), exp.transform(Xq, yq))
    np.testing.assert_array_equal(one.self_influence(), exp.self_influence())
