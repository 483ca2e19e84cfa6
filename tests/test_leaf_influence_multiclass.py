"""Exact multiclass LeafInfluence (``multiclass="exact"``, the cross-class terms of the
softmax propagate) against plain numpy oracles: finite differences of a brute-force
fixed-structure refit, dense forward and reverse references of every update set, and
the kernels of ``_kernels._leaf_influence_cross`` one by one."""

import copy

import numpy as np
import pytest
from scipy.special import softmax

from skinfluence import LeafInfluence
from skinfluence._kernels import _leaf_influence_cross as _cross

from . import oracles
from .models import make_data, make_model
from .reference import grad_hess
from .test_leaf_influence import _loss, brute_force_refit, raw

REMOVED = (0, 7, 33, 71)
_CACHE = {}


def fitted(lib, weighted=False, n_classes=3):
    """(X, y, w (ones when unweighted), model, Xq, yq) of a small multiclass model."""
    key = (lib, weighted, n_classes)
    if key not in _CACHE:
        X, y = make_data("multiclass", n=100, seed=1, n_classes=n_classes)
        Xq, yq = make_data("multiclass", n=9, seed=2, n_classes=n_classes)
        w = np.random.default_rng(0).uniform(0.3, 2.5, len(X)) if weighted else None
        model = make_model(lib, "multiclass").fit(X, y, sample_weight=w)
        w = np.ones(len(X)) if w is None else w
        _CACHE[key] = (X, y, w, model, Xq, yq)
    return _CACHE[key]


def explainer(lib, weighted=False, n_classes=3, **params):
    X, y, w, model, Xq, yq = fitted(lib, weighted, n_classes)
    return LeafInfluence(model, **params).fit(X, y, sample_weight=w)


# ------------------------------------------------------------ plain oracles
def _cross_Q(ens, p, vbar, k):
    """``Q[j, m] = (1 + c vbar_j (1 - 2 p_jk)) p_jk (1[m = k] - p_jm)``: dg_k/dF_m +
    vbar dh_k/dF_m for the library hessian ``h_k = c p_k (1 - p_k)``."""
    K = p.shape[1]
    pk = p[:, k]
    scale = (1 + ens.multiclass_factor * vbar * (1 - 2 * pk)) * pk
    return scale[:, None] * (np.eye(K)[k][None, :] - p)


def forward_reference(ens, leaves, y, w, i, update_set=-1):
    """Dense forward mode with the cross-class terms for removed row ``i``: the flat
    per-leaf derivatives ``D = dv/dw_i``. Every tree of round ``b`` reads ``J`` as it
    stood after round ``b - 1``; the top-k leaves are chosen from ``J`` as updated by
    every earlier tree (ties toward the lower leaf id)."""
    n, K = len(leaves), ens.n_outputs
    F = np.tile(ens.bias, (n, 1))
    J = np.zeros((n, K))
    D = np.zeros(ens.n_leaves_total)
    vbar_all = ens.unshrunk_values
    for b in range(ens.n_rounds):
        p = softmax(F, axis=1)
        g, h = grad_hess("multiclass", y, F, ens.multiclass_factor)
        J_before = J.copy()
        for k in range(K):
            t = b * K + k
            off = ens.leaf_offsets[t]
            U = oracles.update_rows(J, leaves, t, ens.n_leaves[t], i, update_set)
            if ens.constant_tree[t]:
                continue
            Dt = np.zeros(ens.n_leaves[t])
            for leaf in range(ens.n_leaves[t]):
                j = off + leaf
                m = leaves[:, t] == leaf
                beta = (w[m] * h[m, k]).sum() + ens.l2[j]
                T = m & U
                Q = _cross_Q(ens, p[T], vbar_all[j], k)
                s = (w[T, None] * Q * J_before[T]).sum()
                if m[i]:
                    s += g[i, k] + vbar_all[j] * h[i, k]
                Dt[leaf] = -ens.learning_rates[t] * s / beta
            D[off : off + ens.n_leaves[t]] = Dt
            J[U, k] += Dt[leaves[U, t]]
        for k in range(K):
            t = b * K + k
            F[:, k] += ens.leaf_values[ens.leaf_offsets[t] + leaves[:, t]]
    return D


def reverse_reference(ens, leaves, y, w, Gq):
    """Dense adjoint sweep with the cross-class terms: ``score[i] = dPsi/dw_i`` for
    ``Psi = sum_leaves Gq * D``; the trees of a round all read ``z`` from before it."""
    n, K = len(leaves), ens.n_outputs
    g_all, h_all = np.zeros((n, ens.n_trees)), np.zeros((n, ens.n_trees))
    p_all = np.zeros((n, ens.n_rounds, K))
    F = np.tile(ens.bias, (n, 1))
    for b in range(ens.n_rounds):
        p_all[:, b] = softmax(F, axis=1)
        g, h = grad_hess("multiclass", y, F, ens.multiclass_factor)
        g_all[:, b * K : b * K + K], h_all[:, b * K : b * K + K] = g, h
        for k in range(K):
            F[:, k] += ens.leaf_values[ens.leaf_offsets[b * K + k] + leaves[:, b * K + k]]
    vbar = ens.unshrunk_values
    z = np.zeros((n, K))
    score = np.zeros(n)
    for b in range(ens.n_rounds - 1, -1, -1):
        dz = np.zeros((n, K))
        for k in range(K):
            t = b * K + k
            if ens.constant_tree[t]:
                continue
            for leaf in range(ens.n_leaves[t]):
                j = ens.leaf_offsets[t] + leaf
                m = leaves[:, t] == leaf
                beta = (w[m] * h_all[m, t]).sum() + ens.l2[j]
                if beta <= 0:
                    continue
                a = -ens.learning_rates[t] * (Gq[j] + z[m, k].sum()) / beta
                score[m] += a * (g_all[m, t] + vbar[j] * h_all[m, t])
                dz[m] += a * w[m, None] * _cross_Q(ens, p_all[m, b], vbar[j], k)
        z += dz
    return score


def _query_gradients(ens, ql, yq):
    K = ens.n_outputs
    return softmax(ens.raw_from_leaves(ql), axis=1) - np.eye(K)[yq]


def _influence_of(ens, D, ql, gq, w_i):
    dF = raw(ens, D, ql) - raw(ens, np.zeros_like(D), ql)
    return -w_i * (gq * dF).sum(axis=1)


def _finite_difference(ens, tl, ql, y, yq, w, i, eps=1e-5):
    losses = []
    for s in (-1, 1):
        w2 = w.copy()
        w2[i] *= 1 + s * eps
        losses.append(_loss("multiclass", yq, raw(ens, brute_force_refit(ens, tl, y, w2), ql)))
    return (losses[0] - losses[1]) / (2 * eps)


# ------------------------------------------------- exact against the refit
FD_CASES = [
    ("lightgbm", 3),
    ("lightgbm", 4),
    ("xgboost", 3),
    ("sklearn_hgb", 3),
    ("sklearn_gb", 4),
]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("lib,n_classes", FD_CASES)
def test_exact_equals_finite_difference_of_refit(lib, n_classes, weighted):
    """The package's default multiclass values against the central finite difference
    of a brute-force fixed-structure refit."""
    X, y, w, model, Xq, yq = fitted(lib, weighted, n_classes)
    exp = explainer(lib, weighted, n_classes)
    ens = exp.ensemble_
    tl, ql = ens.leaf_ids(X), ens.leaf_ids(Xq)
    got = exp.transform(Xq, yq)
    diagonal = explainer(lib, weighted, n_classes, multiclass="diagonal").transform(Xq, yq)
    fd = np.column_stack([_finite_difference(ens, tl, ql, y, yq, w, i) for i in REMOVED])
    scale = np.abs(fd).max()
    # the derivative is taken on the stored trajectory, the refit recomputes every leaf
    # in float64: for float32 libraries the leaves differ by ~1e-8 relative, which moves
    # the derivative by ~3e-8 relative (measured); the formula itself is checked at
    # 1e-9 in test_reference_is_the_derivative_of_the_refit
    np.testing.assert_allclose(got[:, list(REMOVED)], fd, rtol=0, atol=1e-6 * scale)
    # the diagonal form misses the cross-class terms by far more
    assert np.abs(diagonal[:, list(REMOVED)] - fd).max() > 1e-3 * scale
    assert scale > 1e-3


@pytest.mark.parametrize("lib", ["lightgbm", "sklearn_gb"])
def test_reference_is_the_derivative_of_the_refit(lib):
    """The dense reference, linearised on the float64 refit trajectory itself, is the
    derivative of the refit to the rounding of the finite difference: losses of about 1
    carry ~1e-15 of rounding, divided by 2 eps = 2e-5 that is ~5e-11 absolute (measured
    1e-11 to 8e-11 on values up to 0.17 for LightGBM, XGBoost and both scikit-learn
    boosters, 3 and 4 classes, with sample weights)."""
    X, y, w, model, Xq, yq = fitted(lib, True, 4)
    ens = copy.copy(explainer(lib, True, 4).ensemble_)
    tl, ql = ens.leaf_ids(X), ens.leaf_ids(Xq)
    ens.leaf_values = brute_force_refit(ens, tl, y, w)
    gq = _query_gradients(ens, ql, yq)
    for i in REMOVED[:2]:
        got = _influence_of(ens, forward_reference(ens, tl, y, w, i), ql, gq, w[i])
        fd = _finite_difference(ens, tl, ql, y, yq, w, i)
        np.testing.assert_allclose(got, fd, rtol=0, atol=2e-10)
        assert np.abs(fd).max() > 1e-3


# --------------------------------------------------- kernels against numpy
def test_cross_terms_kernel():
    X, y, w, model, Xq, yq = fitted("xgboost", True)
    ens = explainer("xgboost", True).ensemble_
    tl = ens.leaf_ids(X)
    K = ens.n_outputs
    proba, cross = _cross.cross_terms(
        tl, ens.leaf_offsets, ens.leaf_values, ens.unshrunk_values, ens.bias, K,
        float(ens.multiclass_factor), w,
    )  # fmt: skip
    F = np.tile(ens.bias, (len(X), 1))
    for b in range(ens.n_rounds):
        p = softmax(F, axis=1)
        for k in range(K):
            t = b * K + k
            vbar = ens.unshrunk_values[ens.leaf_offsets[t] + tl[:, t]]
            np.testing.assert_allclose(proba[t], p[:, k], rtol=1e-13, atol=1e-16)
            expected = w * p[:, k] * (1 + ens.multiclass_factor * vbar * (1 - 2 * p[:, k]))
            np.testing.assert_allclose(cross[t], expected, rtol=1e-12, atol=1e-16)
            F[:, k] += ens.leaf_values[ens.leaf_offsets[t] + tl[:, t]]


@pytest.mark.parametrize("update_set", [-1, 0, 2])
def test_kernels_equal_forward_reference(update_set):
    """Reverse sweep (-1), single point (0, ``single_point_cross``) and the top-k
    forward mode (2, ``forward_block_cross``) against the dense forward reference,
    self-influence included."""
    X, y, w, model, Xq, yq = fitted("lightgbm", True, 4)
    exp = explainer("lightgbm", True, 4, update_set=update_set)
    ens = exp.ensemble_
    tl, ql = ens.leaf_ids(X), ens.leaf_ids(Xq)
    got = exp.transform(Xq, yq)
    got_self = exp.self_influence()
    gq, gself = _query_gradients(ens, ql, yq), _query_gradients(ens, tl, y)
    for i in REMOVED:
        D = forward_reference(ens, tl, y, w, i, update_set)
        np.testing.assert_allclose(
            got[:, i], _influence_of(ens, D, ql, gq, w[i]), rtol=1e-9, atol=1e-13
        )
        own = _influence_of(ens, D, tl[i : i + 1], gself[i : i + 1], w[i])[0]
        np.testing.assert_allclose(got_self[i], own, rtol=1e-9, atol=1e-13)
        if update_set == 0:
            own_leaves = ens.leaf_offsets[:-1] + tl[i]
            np.testing.assert_allclose(exp.derivatives_[i], D[own_leaves], rtol=1e-10, atol=1e-15)
    assert np.abs(got).max() > 1e-3


def test_forward_block_kernel_all_rows():
    """``forward_block_cross`` with every row (the self-influence path) against the
    dense reference, leaf by leaf; with the update set ``{i}`` against
    ``single_point_cross``."""
    X, y, w, model, Xq, yq = fitted("sklearn_hgb", True)
    exp = explainer("sklearn_hgb", True)
    ens = exp.ensemble_
    tl = ens.leaf_ids(X)
    upd = exp._update
    rows = np.asarray(REMOVED, dtype=np.int64)
    D, _ = _cross.forward_block_cross(
        rows, upd.train, upd.terms, upd.proba, -1, np.ascontiguousarray(upd.final_gradients[rows])
    )
    for p, i in enumerate(REMOVED):
        expected = forward_reference(ens, tl, y, w, i)
        np.testing.assert_allclose(D[p], expected, rtol=1e-9, atol=1e-14 * np.abs(expected).max())
    # the forward kernel with the update set {i} is the single-point kernel
    gfin = np.ascontiguousarray(upd.final_gradients[rows])
    D0, _ = _cross.forward_block_cross(rows, upd.train, upd.terms, upd.proba, 0, gfin)
    single = _cross.single_point_cross(upd.train, upd.terms, upd.proba)
    own_leaves = ens.leaf_offsets[:-1] + tl[rows]
    np.testing.assert_allclose(
        np.take_along_axis(D0, own_leaves, axis=1), single[rows], rtol=1e-12, atol=1e-16
    )


def test_reverse_sweep_equals_reverse_reference():
    X, y, w, model, Xq, yq = fitted("xgboost", True)
    exp = explainer("xgboost", True)
    ens = exp.ensemble_
    tl, ql = ens.leaf_ids(X), ens.leaf_ids(Xq)
    got = exp.transform(Xq, yq)
    gq = _query_gradients(ens, ql, yq)
    for e in range(len(Xq)):
        Gq = np.zeros(ens.n_leaves_total)
        np.add.at(Gq, ens.leaf_offsets[:-1] + ql[e], gq[e, ens.tree_column])
        expected = -w * reverse_reference(ens, tl, y, w, Gq)
        np.testing.assert_allclose(got[e], expected, rtol=1e-9, atol=1e-14)


# ------------------------------------------------------------ identities
@pytest.mark.parametrize("update_set", [-1, 0, 1])
def test_reverse_equals_forward_and_blocks(update_set):
    """Self-influence (forward mode) is the diagonal of transform (reverse sweep for
    -1), global influence the column sums; small blocks, no cache and either thread
    count give the same numbers."""
    X, y, w, model, Xq, yq = fitted("sklearn_gb", True)
    exp = explainer("sklearn_gb", True, update_set=update_set)
    M = exp.transform(Xq, yq)
    np.testing.assert_allclose(
        exp.self_influence(), np.diag(exp.transform(X, y)), rtol=1e-10, atol=1e-14
    )
    np.testing.assert_allclose(exp.global_influence(Xq, yq), M.sum(0), rtol=1e-10, atol=1e-14)
    params = {"update_set": update_set, "block_size": 7, "chunk_memory_mb": 0.02}
    for n_jobs in (1, 2):
        small = explainer("sklearn_gb", True, n_jobs=n_jobs, **params)
        np.testing.assert_array_equal(small.transform(Xq, yq), M)
        np.testing.assert_allclose(
            small.self_influence(), exp.self_influence(), rtol=1e-12, atol=1e-16
        )
    one = explainer("sklearn_gb", True, n_jobs=1, **params)
    two = explainer("sklearn_gb", True, n_jobs=2, **params)
    np.testing.assert_array_equal(one.self_influence(), two.self_influence())


def test_top_k_with_every_leaf_is_all_points():
    X, y, w, model, Xq, yq = fitted("lightgbm", True)
    exp = explainer("lightgbm", True)
    n_leaves = int(exp.ensemble_.n_leaves.max())
    every = explainer("lightgbm", True, update_set=n_leaves)
    np.testing.assert_allclose(every.transform(Xq, yq), exp.transform(Xq, yq), 1e-10, 1e-15)


# --------------------------------------------------------- the parameter
@pytest.mark.parametrize("update_set", [-1, 0, 2])
def test_diagonal_is_the_previous_form(update_set):
    """``multiclass="diagonal"`` is the per-column propagation of the paper (the dense
    diagonal reference of test_leaf_influence), and the parameter does not change
    binary or regression models (bit for bit)."""
    from .test_leaf_influence import forward_reference as diagonal_reference

    X, y, w, model, Xq, yq = fitted("lightgbm", True)
    exp = explainer("lightgbm", True, update_set=update_set, multiclass="diagonal")
    ens = exp.ensemble_
    tl, ql = ens.leaf_ids(X), ens.leaf_ids(Xq)
    got = exp.transform(Xq, yq)
    gq = _query_gradients(ens, ql, yq)
    for i in REMOVED[:2]:
        D = diagonal_reference(ens, tl, y.astype(float), w, i, update_set)
        np.testing.assert_allclose(
            got[:, i], _influence_of(ens, D, ql, gq, w[i]), rtol=1e-9, atol=1e-13
        )
    for objective in ("binary", "squared_error"):
        Xb, yb = make_data(objective, n=60, seed=3)
        m = make_model("lightgbm", objective, n_estimators=4).fit(Xb, yb)
        a = LeafInfluence(m, update_set=update_set).fit(Xb, yb)
        b = LeafInfluence(m, update_set=update_set, multiclass="diagonal").fit(Xb, yb)
        np.testing.assert_array_equal(a.transform(Xb[:5], yb[:5]), b.transform(Xb[:5], yb[:5]))
        np.testing.assert_array_equal(a.self_influence(), b.self_influence())


def test_queries_follow_the_form_of_the_fit():
    X, y, w, model, Xq, yq = fitted("lightgbm")
    exp = explainer("lightgbm")
    M = exp.transform(Xq, yq)
    exp.set_params(multiclass="diagonal")
    np.testing.assert_array_equal(exp.transform(Xq, yq), M)
    assert not np.allclose(exp.fit(X, y).transform(Xq, yq), M)


@pytest.mark.parametrize("bad", ["full", "Exact", None, True, 1])
def test_multiclass_parameter_is_validated(bad):
    X, y, w, model, Xq, yq = fitted("lightgbm")
    with pytest.raises(ValueError, match=r"multiclass must be 'exact' .* or 'diagonal'"):
        LeafInfluence(model, multiclass=bad).fit(X, y)
    Xb, yb = make_data("binary", n=60, seed=3)
    binary = make_model("lightgbm", "binary", n_estimators=2).fit(Xb, yb)
    with pytest.raises(ValueError, match="multiclass must be"):
        LeafInfluence(binary, multiclass=bad).fit(Xb, yb)
