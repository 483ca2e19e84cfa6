"""LeafInfluence and LeafRefit against plain oracles: a brute-force fixed-structure refit,
its finite difference, the closed forms of the spec, CatBoost's own implementation, and
the contract's properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, log_softmax, softmax
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.frozen import FrozenEstimator

try:  # public names once exported
    from skinfluence import LeafInfluence, LeafRefit
except ImportError:  # pragma: no cover - before the lead adds the exports
    from skinfluence._leaf_influence import LeafInfluence, LeafRefit
from skinfluence import LeafModelError

from . import oracles
from .models import make_data, make_model
from .reference import assert_top_k, encode_labels, grad_hess

_CACHE = {}
REMOVED = (0, 7, 33, 71)  # training rows refitted by the brute-force oracle


def fitted(lib, objective, weighted=False, n=100):
    """(X, y, w, model, Xq, yq), cached per module."""
    key = (lib, objective, weighted, n)
    if key not in _CACHE:
        X, y = make_data(objective, n=n, seed=1)
        Xq, yq = make_data(objective, n=9, seed=2)
        w = np.random.default_rng(0).uniform(0.3, 2.5, n) if weighted else None
        model = make_model(lib, objective).fit(X, y, sample_weight=w)
        _CACHE[key] = (X, y, w, model, Xq, yq)
    return _CACHE[key]


def explained(cls, lib, objective, weighted):
    """``cls`` fitted on :func:`fitted`'s data: (explainer, ensemble, training and query
    leaf ids, encoded training and query labels, weights (ones when unweighted),
    influence on the queries)."""
    X, y, w, model, Xq, yq = fitted(lib, objective, weighted)
    exp = cls(model).fit(X, y, sample_weight=w)
    ens = exp.ensemble_
    w = np.ones(len(X)) if w is None else w
    labels = encode_labels(exp, y), encode_labels(exp, yq)
    return exp, ens, ens.leaf_ids(X), ens.leaf_ids(Xq), *labels, w, exp.transform(Xq, yq)


# ------------------------------------------------------------ plain oracles
def _loss(objective, y, F):
    if objective == "squared_error":
        return 0.5 * (y - F[:, 0]) ** 2
    if objective == "binary":
        return np.logaddexp(0, np.where(y == 1, -F[:, 0], F[:, 0]))
    return -log_softmax(F, axis=1)[np.arange(len(y)), y.astype(int)]


def brute_force_refit(ens, leaves, y, w):
    """Re-run boosting with weights ``w`` and the same splits: every leaf a Newton step
    -eta G'/(H' + lambda) at the re-trained scores before its round (full softmax)."""
    n, K = len(leaves), ens.n_outputs
    F = np.tile(ens.bias, (n, 1))
    v = ens.leaf_values.copy()
    for b in range(ens.n_rounds):
        g, h = grad_hess(ens.objective, y, F, ens.multiclass_factor)
        for k in range(K):
            t = b * K + k
            if ens.constant_tree[t]:
                continue
            for leaf in range(ens.n_leaves[t]):
                j = ens.leaf_offsets[t] + leaf
                m = leaves[:, t] == leaf
                den = (w[m] * h[m, k]).sum() + ens.l2[j]
                v[j] = -ens.learning_rates[t] * (w[m] * g[m, k]).sum() / den if den else 0.0
        for k in range(K):
            t = b * K + k
            F[:, k] += v[ens.leaf_offsets[t] + leaves[:, t]]
    return v


def raw(ens, v, leaves):
    F = np.tile(ens.bias, (len(leaves), 1))
    for t in range(ens.n_trees):
        F[:, t % ens.n_outputs] += v[ens.leaf_offsets[t] + leaves[:, t]]
    return F


def forward_reference(ens, leaves, y, w, i, update_set):
    """Section 4.4 forward mode for one removed row with dense per-leaf masks.

    Returns dF(x)/dw_i as a function of leaves: the per-leaf derivatives D (flat)."""
    n, K = len(leaves), ens.n_outputs
    F = np.tile(ens.bias, (n, 1))
    J = np.zeros((n, K))
    D = np.zeros(ens.n_leaves_total)
    vbar = ens.unshrunk_values
    for b in range(ens.n_rounds):
        p = softmax(F, axis=1) if ens.objective == "multiclass" else expit(F)
        g, h = grad_hess(ens.objective, y, F, ens.multiclass_factor)
        if ens.objective == "squared_error":
            kap = np.zeros_like(F)
        else:
            kap = ens.multiclass_factor * p * (1 - p) * (1 - 2 * p)
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
                Q = h[T, k] + vbar[j] * kap[T, k]
                s = (w[T] * Q * J[T, k]).sum()
                if m[i]:
                    s += g[i, k] + vbar[j] * h[i, k]
                Dt[leaf] = -ens.learning_rates[t] * s / beta
            D[off : off + ens.n_leaves[t]] = Dt
            J[U, k] += Dt[leaves[U, t]]
        for k in range(K):
            t = b * K + k
            F[:, k] += ens.leaf_values[ens.leaf_offsets[t] + leaves[:, t]]
    return D


REFIT_CASES = [
    ("sklearn_gb", "squared_error"),
    ("lightgbm", "binary"),
    ("lightgbm", "multiclass"),
    ("xgboost", "binary"),
]


# -------------------------------------------------------------- LeafRefit
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("lib,objective", REFIT_CASES)
def test_refit_equals_brute_force_refit(lib, objective, weighted):
    exp, ens, tl, ql, ye, yqe, w, got = explained(LeafRefit, lib, objective, weighted)
    got_self = exp.self_influence()
    F = ens.raw_from_leaves(ql)
    for i in REMOVED:
        w0 = w.copy()
        w0[i] = 0.0
        v = brute_force_refit(ens, tl, ye, w0)
        expected = _loss(objective, yqe, raw(ens, v, ql)) - _loss(objective, yqe, F)
        np.testing.assert_allclose(got[:, i], expected, rtol=1e-9, atol=1e-12)
        own = _loss(objective, ye[i : i + 1], raw(ens, v, tl[i : i + 1])) - _loss(
            objective, ye[i : i + 1], ens.raw_from_leaves(tl[i : i + 1])
        )
        np.testing.assert_allclose(got_self[i], own[0], rtol=1e-9, atol=1e-12)
    assert np.abs(got).max() > 1e-4


def test_refit_update_sets():
    """update_set=0 changes only the removed row's own leaves; top-k with every leaf
    selected is the full refit."""
    X, y, w, model, Xq, yq = fitted("lightgbm", "binary")
    ens = LeafRefit(model).fit(X, y).ensemble_
    i = 7
    ql = ens.leaf_ids(Xq)
    tl = ens.leaf_ids(X)
    ye = y.astype(float)
    # single point: each of i's leaves refitted once without i, nothing propagates
    g, h, _, _ = ens.replay(tl, ye)
    v = ens.leaf_values.copy()
    for t in range(ens.n_trees):
        m = tl[:, t] == tl[i, t]
        m[i] = False
        j = ens.leaf_offsets[t] + tl[i, t]
        v[j] = -ens.learning_rates[t] * g[m, t].sum() / (h[m, t].sum() + ens.l2[j])
    # the other leaves are the float64 Newton values at the stored trajectory
    v_hat, _, _ = ens.newton_values(tl, ye)
    others = np.ones(ens.n_leaves_total, bool)
    others[ens.leaf_offsets[:-1] + tl[i]] = False
    v[others] = v_hat[others]
    F = ens.raw_from_leaves(ql)
    expected = _loss("binary", yq, raw(ens, v, ql)) - _loss("binary", yq, F)
    sp = LeafRefit(model, update_set=0).fit(X, y).transform(Xq, yq)[:, i]
    np.testing.assert_allclose(sp, expected, rtol=1e-9, atol=1e-13)
    assert np.abs(sp).max() > 1e-4
    # top-k with k >= the number of leaves selects every leaf: the full refit
    for est in (LeafRefit, LeafInfluence):
        full = est(model).fit(X, y).transform(Xq, yq)
        every = est(model, update_set=int(ens.n_leaves.max())).fit(X, y).transform(Xq, yq)
        np.testing.assert_allclose(every, full, rtol=1e-10, atol=1e-14)


# ---------------------------------------------------------- LeafInfluence
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("lib,objective", [("sklearn_gb", "squared_error"), ("lightgbm", "binary")])
def test_influence_equals_finite_difference_of_refit(lib, objective, weighted):
    _, ens, tl, ql, ye, yqe, w, got = explained(LeafInfluence, lib, objective, weighted)
    eps = 1e-5
    for i in REMOVED:
        losses = []
        for s in (-1, 1):
            w2 = w.copy()
            w2[i] *= 1 + s * eps
            losses.append(_loss(objective, yqe, raw(ens, brute_force_refit(ens, tl, ye, w2), ql)))
        fd = (losses[0] - losses[1]) / (2 * eps)
        np.testing.assert_allclose(got[:, i], fd, rtol=1e-5, atol=1e-7 * np.abs(fd).max())
    assert np.abs(got).max() > 1e-3


def test_multiclass_influence_is_approximate():
    """``multiclass="diagonal"`` ignores the cross-class terms (spec 4.4): close to, not
    equal to, the derivative (the exact default: test_leaf_influence_multiclass)."""
    X, y, w, model, Xq, yq = fitted("lightgbm", "multiclass")
    exp = LeafInfluence(model, multiclass="diagonal").fit(X, y)
    ens = exp.ensemble_
    tl, ql = ens.leaf_ids(X), ens.leaf_ids(Xq)
    got = exp.transform(Xq, yq)
    eps = 1e-5
    fd = np.zeros((len(Xq), len(REMOVED)))
    for c, i in enumerate(REMOVED):
        losses = []
        for s in (-1, 1):
            w2 = np.ones(len(X))
            w2[i] += s * eps
            losses.append(_loss("multiclass", yq, raw(ens, brute_force_refit(ens, tl, y, w2), ql)))
        fd[:, c] = (losses[0] - losses[1]) / (2 * eps)
    err = np.linalg.norm(got[:, list(REMOVED)] - fd) / np.linalg.norm(fd)
    assert 1e-4 < err < 0.3


def test_single_point_equals_closed_form():
    """Spec 4.3 with plain loops: D_{i,t} = -eta (A + w_i Q j_{i,k}) / beta (the
    diagonal multiclass form)."""
    X, y, w, model, Xq, yq = fitted("xgboost", "multiclass", weighted=True)
    exp = LeafInfluence(model, update_set=0, multiclass="diagonal").fit(X, y, sample_weight=w)
    ens = exp.ensemble_
    tl, ql = ens.leaf_ids(X), ens.leaf_ids(Xq)
    g, h, kap, _ = ens.replay(tl, y.astype(float), kappa=True)
    n, K = len(X), ens.n_outputs
    expected = np.zeros((len(Xq), n))
    gfin = softmax(ens.raw_from_leaves(ql), axis=1) - np.eye(K)[yq]
    for i in range(n):
        jv = np.zeros(K)
        for t in range(ens.n_trees):
            k = t % K
            j = ens.leaf_offsets[t] + tl[i, t]
            m = tl[:, t] == tl[i, t]
            beta = (w[m] * h[m, t]).sum() + ens.l2[j]
            vbar = ens.leaf_values[j] / ens.learning_rates[t]
            A = g[i, t] + vbar * h[i, t]
            Q = h[i, t] + vbar * kap[i, t]
            D = -ens.learning_rates[t] * (A + w[i] * Q * jv[k]) / beta
            jv[k] += D
            same = ql[:, t] == tl[i, t]
            expected[same, i] += -w[i] * gfin[same, k] * D
    np.testing.assert_allclose(exp.transform(Xq, yq), expected, rtol=1e-9, atol=1e-13)
    assert exp.derivatives_.shape == (n, ens.n_trees)
    np.testing.assert_allclose(
        exp.self_influence(), np.diag(exp.transform(X, y)), rtol=1e-9, atol=1e-14
    )


@pytest.mark.parametrize("update_set", [-1, 0, 2])
@pytest.mark.parametrize(
    "lib,objective", [("sklearn_hgb", "squared_error"), ("lightgbm", "multiclass")]
)
def test_kernels_equal_forward_reference(lib, objective, update_set):
    """Reverse sweep (-1), single point (0) and the top-k forward mode (2) against a
    dense numpy forward mode; the reverse sweep also against the package's forward mode
    (self-influence). The reference is the diagonal multiclass form."""
    X, y, w, model, Xq, yq = fitted(lib, objective, weighted=True)
    exp = LeafInfluence(model, update_set=update_set, multiclass="diagonal")
    exp.fit(X, y, sample_weight=w)
    ens = exp.ensemble_
    tl, ql = ens.leaf_ids(X), ens.leaf_ids(Xq)
    ye, yqe = encode_labels(exp, y), encode_labels(exp, yq)
    F = ens.raw_from_leaves(ql)
    g, _ = grad_hess(objective, yqe, F, 1.0)  # final query gradients
    got = exp.transform(Xq, yq)
    for i in REMOVED:
        D = forward_reference(ens, tl, ye, w, i, update_set)
        dF = raw(ens, D, ql) - raw(ens, np.zeros_like(D), ql)
        expected = -w[i] * (g * dF).sum(axis=1)
        np.testing.assert_allclose(got[:, i], expected, rtol=1e-9, atol=1e-13)


# -------------------------------------------------------------- CatBoost
@pytest.mark.parametrize("objective", ["squared_error", "binary"])
def test_catboost_get_object_importance(objective):
    """CatBoost's C++ LeafInfluence returns per query (indices, scores) sorted by score;
    scattered back, the scores are -I(i, e). Its computation leaves out the model's bias,
    so the RMSE model is trained with boost_from_average=False."""
    cb = pytest.importorskip("catboost")
    pytest.importorskip("skinfluence._adapters._catboost")
    X, y = make_data(objective, n=120, seed=1)
    Xq, yq = make_data(objective, n=6, seed=2)
    extra = {"boost_from_average": False} if objective == "squared_error" else {}
    model = make_model("catboost", objective, n_estimators=10, **extra).fit(X, y)
    for method, u in [("SinglePoint", 0), ("TopKLeaves:top=2", 2), ("AllPoints", -1)]:
        idx, scores = model.get_object_importance(
            cb.Pool(Xq, yq), cb.Pool(X, y), type="PerObject", update_method=method
        )
        theirs = np.zeros((len(Xq), len(X)))
        np.put_along_axis(theirs, np.asarray(idx), np.asarray(scores), axis=1)
        ours = LeafInfluence(model, update_set=u).fit(X, y).transform(Xq, yq)
        # CatBoost holds labels in float32: 2e-7 relative for RMSE, 1e-13 for Logloss
        np.testing.assert_allclose(-theirs, ours, rtol=0, atol=1e-5 * np.abs(ours).max())
        assert np.abs(ours).max() > 1e-3


# ------------------------------------------------------------ identities
@pytest.mark.parametrize(
    "est,params",
    [
        (LeafInfluence, {"update_set": -1}),
        (LeafInfluence, {"update_set": 0}),
        (LeafInfluence, {"update_set": 1}),
        (LeafRefit, {"update_set": -1}),
        (LeafRefit, {"update_set": 2}),
    ],
)
@pytest.mark.parametrize("lib,objective", [("catboost", "binary"), ("sklearn_gb", "multiclass")])
def test_self_global_topk_and_blocks(est, params, lib, objective):
    X, y, w, model, Xq, yq = fitted(lib, objective)
    exp = est(model, **params).fit(X, y)
    M = exp.transform(Xq, yq)
    np.testing.assert_allclose(exp.global_influence(Xq, yq), M.sum(0), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(
        exp.self_influence(), np.diag(exp.fit_transform(X, y)), rtol=1e-10, atol=1e-13
    )
    assert_top_k(exp, Xq, yq, M, k=4)
    # no cache, small blocks of removed rows and of queries: same numbers
    small = est(model, **params, chunk_memory_mb=0.05, block_size=7).fit(X, y)
    np.testing.assert_allclose(small.transform(Xq, yq), M, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(small.self_influence(), exp.self_influence(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(small.global_influence(Xq, yq), M.sum(0), rtol=1e-10, atol=1e-13)


def test_queries_follow_the_update_set_of_the_fit():
    """The single-point fit keeps only what its queries need (no leaf-ordered copies):
    changing ``update_set`` without refitting does not switch the query algorithm."""
    X, y, w, model, Xq, yq = fitted("lightgbm", "binary")
    exp = LeafInfluence(model, update_set=0).fit(X, y)
    M = exp.transform(Xq, yq)
    assert exp._update.fills_out and not hasattr(exp._update, "terms")
    exp.set_params(update_set=-1)
    np.testing.assert_array_equal(exp.transform(Xq, yq), M)
    np.testing.assert_array_equal(
        exp.global_influence(Xq, yq),
        clone(exp).set_params(update_set=0).fit(X, y).global_influence(Xq, yq),
    )
    assert not np.allclose(exp.fit(X, y).transform(Xq, yq), M)  # refit: all points


@pytest.mark.parametrize("est", [LeafInfluence, LeafRefit])
def test_label_free_queries(est):
    X, y, w, model, Xq, yq = fitted("sklearn_gb", "squared_error")
    exp = est(model).fit(X, y)
    # regression: influence on the prediction; LeafRefit: F - F' exactly
    out = exp.transform(Xq)
    if est is LeafRefit:
        ens = exp.ensemble_
        ql = ens.leaf_ids(Xq)
        v = brute_force_refit(
            ens, ens.leaf_ids(X), y.astype(float), np.where(np.arange(len(X)) == 7, 0.0, 1.0)
        )
        np.testing.assert_allclose(
            out[:, 7], (ens.raw_from_leaves(ql) - raw(ens, v, ql))[:, 0], rtol=1e-9, atol=1e-12
        )
    else:
        # d(-F)/d(-w) for squared error: the loss gradient replaced by -1
        yfar = model.predict(Xq) - 1.0  # loss gradient F - y = +1
        np.testing.assert_allclose(out, -exp.transform(Xq, yfar), rtol=1e-10, atol=1e-12)
    Xc, yc, _, clf, Xqc, _ = fitted("lightgbm", "binary")
    e2 = est(clf).fit(Xc, yc)
    np.testing.assert_allclose(e2.transform(Xqc), e2.transform(Xqc, clf.predict(Xqc)))


def test_results_do_not_depend_on_threads():
    X, y, w, model, Xq, yq = fitted("lightgbm", "multiclass")
    for est in (LeafInfluence, LeafRefit):
        a = est(model, n_jobs=1, block_size=5).fit(X, y)
        b = est(model, n_jobs=-1, block_size=5).fit(X, y)
        np.testing.assert_array_equal(a.transform(Xq, yq), b.transform(Xq, yq))
        np.testing.assert_array_equal(a.self_influence(), b.self_influence())


# ------------------------------------------------------------ properties
PROP_CASES = [("lightgbm", "binary"), ("sklearn_gb", "squared_error")]


@settings(max_examples=10)
@given(
    seed=st.integers(0, 2**16),
    case=st.sampled_from(PROP_CASES),
    est=st.sampled_from([LeafInfluence, LeafRefit]),
    update_set=st.sampled_from([-1, 0, 1, 2]),
)
def test_permuting_training_rows_permutes_columns(seed, case, est, update_set):
    X, y, w, model, Xq, yq = fitted(*case)
    perm = np.random.default_rng(seed).permutation(len(X))
    a = est(model, update_set=update_set).fit(X, y)
    b = est(FrozenEstimator(model), update_set=update_set).fit(X[perm], y[perm])
    np.testing.assert_allclose(
        b.transform(Xq, yq), a.transform(Xq, yq)[:, perm], rtol=1e-9, atol=1e-12
    )


@settings(max_examples=10)
@given(
    rows=st.lists(st.integers(0, 8), min_size=1, max_size=6),
    case=st.sampled_from(PROP_CASES),
    est=st.sampled_from([LeafInfluence, LeafRefit]),
)
def test_rows_are_independent(rows, case, est):
    X, y, w, model, Xq, yq = fitted(*case)
    exp = est(model).fit(X, y)
    rows = np.asarray(rows)
    np.testing.assert_allclose(
        exp.transform(Xq[rows], yq[rows]), exp.transform(Xq, yq)[rows], rtol=1e-12, atol=1e-14
    )


# ------------------------------------------------------------------ errors


@pytest.mark.filterwarnings("ignore:.*per-leaf counts differ:UserWarning")
@pytest.mark.parametrize("est", [LeafInfluence, LeafRefit])
def test_refusals_are_clear(est):
    X, y = make_data("binary", n=100, seed=0)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="random forest"):
        est(forest).fit(X, y)
    bagged = GradientBoostingClassifier(n_estimators=5, subsample=0.5, random_state=0).fit(X, y)
    with pytest.raises(LeafModelError, match="subsample"):
        est(bagged).fit(X, y)
    with pytest.warns(UserWarning, match="Newton"):
        est(bagged, check_leaf_model="warn").fit(X, y)
    model = make_model("lightgbm", "binary").fit(X, y)
    for bad in (-2, 1.5, "all"):
        with pytest.raises(ValueError, match="update_set"):
            est(model, update_set=bad).fit(X, y)
    with pytest.raises(ValueError, match="block_size"):
        est(model, block_size=0).fit(X, y)
