"""The regression objectives besides the squared error (Poisson, Gamma, Tweedie,
cross-entropy on probabilities, pseudo-Huber, Huber) in every library that has them as a
single Newton step, against numpy oracles written here from the libraries' documented
gradients and hessians: the stored leaves are one Newton step each; LeafInfluence is
the central finite difference of a brute-force fixed-structure refit; LeafRefit is that
refit without the row; BoostIn's exact derivative is the finite difference of the
recomputed leaf; LOO scores a refit by the objective's own loss; every other method
runs. Refusals of the L1/quantile/MAPE leaves are tested by their messages.

Tolerances: the oracles replay in float64 what the kernels replay in float64, so the
refit agrees to rounding (1e-9); the central differences (step 1e-5 relative) agree to
their truncation error, ~1e-10 relative, checked at 1e-5 as in ``test_leaf_influence``;
the leaf-model check compares with the libraries' float32 leaves (1e-5).
"""

import numpy as np
import pytest
from scipy.special import expit

from skinfluence import (
    LOO,
    TREX,
    BoostIn,
    InputSim,
    LeafInfluence,
    LeafRefit,
    LeafSim,
    LossInfluence,
    MinorityInfluence,
    TargetInfluence,
    TreeSim,
    UnsupportedModelError,
)
from skinfluence.testing import make_data, make_model

N, NQ = 60, 6
REMOVED = (0, 5, 31)

#: (library, objective, extra parameters, objective parameter of the oracle)
CASES = [
    ("lightgbm", "poisson", {}, 0.7),  # LightGBM's poisson_max_delta_step default
    ("lightgbm", "gamma", {}, 0.0),
    ("lightgbm", "tweedie", {}, 1.5),
    ("lightgbm", "cross_entropy", {}, 0.0),
    ("lightgbm", "huber", {}, 1.0),
    ("xgboost", "poisson", {"max_delta_step": 0.0}, 0.0),
    # an explicit max_delta_step: hessian offset 2 and a leaf clamp at 2 that never binds
    ("xgboost", "poisson", {"max_delta_step": 2.0}, 2.0),
    ("xgboost", "gamma", {}, 0.0),
    ("xgboost", "tweedie", {}, 1.5),
    ("xgboost", "cross_entropy", {}, 0.0),
    ("xgboost", "cross_entropy", {"objective": "binary:logitraw"}, 0.0),
    ("xgboost", "pseudo_huber", {}, 1.0),
    ("sklearn_hgb", "poisson", {}, 0.0),
    ("sklearn_hgb", "gamma", {}, 0.0),
    ("catboost", "poisson", {}, 0.0),
    ("catboost", "tweedie", {}, 1.5),
    # CatBoost takes CrossEntropy on probabilities in its classifier only
    ("catboost", "cross_entropy", {"loss_function": "CrossEntropy"}, 0.0),
]
IDS = [f"{lib}-{obj}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for lib, obj, kw, _ in CASES]
_SHAPE = {
    "lightgbm": {"num_leaves": 4, "min_child_samples": 5},
    "xgboost": {"max_depth": 2},
    "sklearn_hgb": {"max_leaf_nodes": 4, "min_samples_leaf": 5},
    "catboost": {"depth": 2},
}
_CACHE = {}


def _lib_available(lib):
    if not lib.startswith("sklearn"):
        pytest.importorskip(lib)


def case(i):
    """(X, y, model, Xq, yq, param) of CASES[i], trained once per module."""
    if i not in _CACHE:
        lib, objective, kw, param = CASES[i]
        _lib_available(lib)
        X, y = make_data("regression", n=N, seed=1, regression_objective=objective)
        Xq, yq = make_data("regression", n=NQ, seed=2, regression_objective=objective)
        if lib == "catboost" and objective == "cross_entropy":
            model = make_model(lib, "binary", n_estimators=5, **_SHAPE[lib])
        else:
            model = make_model(
                lib, "regression", regression_objective=objective, n_estimators=5, **_SHAPE[lib]
            )
        model.set_params(**kw)  # e.g. the library's own name of another objective
        _CACHE[i] = (X, y, model.fit(X, y), Xq, yq, param)
    return _CACHE[i]


# ------------------------------------------------------------------ numpy oracles
def grad_hess(objective, y, F, a):
    """Gradient and hessian of the library's leaf (``a``: the objective's parameter)."""
    if objective == "poisson":  # LightGBM / XGBoost: exp(F + max_delta_step)
        return np.exp(F) - y, np.exp(F + a)
    if objective == "gamma":
        return 1 - y * np.exp(-F), y * np.exp(-F)
    if objective == "tweedie":
        e1, e2 = y * np.exp((1 - a) * F), np.exp((2 - a) * F)
        return e2 - e1, (2 - a) * e2 - (1 - a) * e1
    if objective == "cross_entropy":
        p = expit(F)
        return p - y, p * (1 - p)
    r = F - y
    if objective == "pseudo_huber":
        s = 1 + (r / a) ** 2
        return r / np.sqrt(s), s**-1.5
    return np.clip(r, -a, a), np.ones_like(r)  # huber: LightGBM's hessian is 1


def loss(objective, y, F, a):
    if objective == "value":
        return -F
    if objective == "poisson":
        return np.exp(F) - y * F
    if objective == "gamma":
        return y * np.exp(-F) + F
    if objective == "tweedie":
        return -y * np.exp((1 - a) * F) / (1 - a) + np.exp((2 - a) * F) / (2 - a)
    if objective == "cross_entropy":
        return y * np.logaddexp(0, -F) + (1 - y) * np.logaddexp(0, F)
    r = F - y
    if objective == "pseudo_huber":
        return a * a * (np.sqrt(1 + (r / a) ** 2) - 1)
    return np.where(np.abs(r) <= a, 0.5 * r * r, a * (np.abs(r) - 0.5 * a))


def refit(ens, leaves, y, w, a):
    """Boosting re-run with row weights ``w`` on the stored splits (one column)."""
    F = np.full(len(leaves), ens.bias[0])
    v = ens.leaf_values.copy()
    for t in range(ens.n_trees):
        if not ens.constant_tree[t]:
            g, h = grad_hess(ens.objective, y, F, a)
            for leaf in range(ens.n_leaves[t]):
                j = ens.leaf_offsets[t] + leaf
                m = leaves[:, t] == leaf
                den = (w[m] * h[m]).sum() + ens.l2[j]
                v[j] = -ens.learning_rates[t] * (w[m] * g[m]).sum() / den if den else 0.0
        F = F + v[ens.leaf_offsets[t] + leaves[:, t]]
    return v


def raw(ens, v, leaves):
    return ens.bias[0] + v[ens.leaf_offsets[:-1] + leaves].sum(axis=1)


def to_raw(model, X):
    """The library's own raw score of ``model`` at ``X``."""
    if hasattr(model, "booster_"):  # LightGBM
        return model.predict(X, raw_score=True)
    if hasattr(model, "get_booster"):  # XGBoost
        return model.predict(X, output_margin=True)
    return np.log(model.predict(X))  # HistGradientBoosting, log link


def explained(cls, i, **params):
    X, y, model, Xq, yq, a = case(i)
    exp = cls(model, **params).fit(X, y)
    ens = exp.ensemble_
    y, yq = np.asarray(y, float), np.asarray(yq, float)
    if ens.label_dtype is not None:  # CatBoost: float32 labels, rounded by the explainer
        y, yq = (v.astype(ens.label_dtype).astype(float) for v in (y, yq))
    return exp, ens, ens.leaf_ids(X), ens.leaf_ids(Xq), y, yq, a


# ------------------------------------------------------------------ the leaf model
@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_leaves_are_newton_steps(i):
    """The adapter reads the objective and its parameter, and the stored leaves are the
    oracle's Newton steps (library defaults besides the never-binding clamp)."""
    lib, objective, kw, a = CASES[i]
    exp, ens, tl, _, y, _, _ = explained(LeafRefit, i)
    assert ens.objective == objective
    np.testing.assert_allclose(ens.objective_param, a, rtol=1e-7)
    v = refit(ens, tl, y, np.ones(len(y)), a)
    np.testing.assert_allclose(v, ens.leaf_values, rtol=1e-5, atol=1e-6)
    if ens.max_delta_step:
        assert np.abs(ens.unshrunk_values).max() < ens.max_delta_step
    assert np.abs(ens.leaf_values).max() > 1e-3


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_leaf_influence_is_finite_difference_of_refit(i):
    exp, ens, tl, ql, y, yq, a = explained(LeafInfluence, i)
    objective = ens.objective
    got, free = exp.transform(case(i)[3], yq), exp.transform(case(i)[3])
    eps = 1e-5
    for r in REMOVED:
        Fs = []
        for s in (-1, 1):
            w = np.ones(len(y))
            w[r] += s * eps
            Fs.append(raw(ens, refit(ens, tl, y, w, a), ql))
        fd = (loss(objective, yq, Fs[0], a) - loss(objective, yq, Fs[1], a)) / (2 * eps)
        np.testing.assert_allclose(got[:, r], fd, rtol=1e-5, atol=1e-7 * np.abs(fd).max())
        fd_free = (Fs[1] - Fs[0]) / (2 * eps)  # psi(F) = -F
        np.testing.assert_allclose(free[:, r], fd_free, rtol=1e-5, atol=1e-7 * np.abs(fd).max())
    assert np.abs(got).max() > 1e-4


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_leaf_refit_is_refit_without_the_row(i):
    exp, ens, tl, ql, y, yq, a = explained(LeafRefit, i)
    got, own = exp.transform(case(i)[3], yq), exp.self_influence()
    F, Ft = ens.raw_from_leaves(ql)[:, 0], ens.raw_from_leaves(tl)[:, 0]
    for r in REMOVED:
        w = np.ones(len(y))
        w[r] = 0.0
        v = refit(ens, tl, y, w, a)
        expected = loss(ens.objective, yq, raw(ens, v, ql), a) - loss(ens.objective, yq, F, a)
        np.testing.assert_allclose(got[:, r], expected, rtol=1e-8, atol=1e-11)
        self_expected = loss(ens.objective, y[r], raw(ens, v, tl[r : r + 1])[0], a) - loss(
            ens.objective, y[r], Ft[r], a
        )
        np.testing.assert_allclose(own[r], self_expected, rtol=1e-8, atol=1e-11)


@pytest.mark.parametrize("derivative", ["published", "exact"])
@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_boostin(i, derivative):
    """The exact derivative is -w_i dv/dw_i of the recomputed leaf (central difference at
    the stored scores); the published one replaces the unshrunk value by the stored
    value; the influence sums derivative times the query's gradient over shared leaves."""
    exp, ens, tl, ql, y, yq, a = explained(BoostIn, i, derivative=derivative)
    n = len(y)
    F = ens.bias[0] + np.cumsum(ens.leaf_values[ens.leaf_offsets[:-1] + tl], axis=1)
    F = np.column_stack([np.full(n, ens.bias[0]), F[:, :-1]])  # scores before each tree
    g, h = grad_hess(ens.objective, y[:, None], F, a)
    D = np.zeros((n, ens.n_trees))
    eps = 1e-6
    for t in range(ens.n_trees):
        eta = ens.learning_rates[t]
        for r in range(n):
            m = tl[:, t] == tl[r, t]
            j = ens.leaf_offsets[t] + tl[r, t]
            beta = h[m, t].sum() + ens.l2[j]
            if derivative == "exact":
                vals = []
                for s in (-1, 1):
                    w = np.ones(n)
                    w[r] += s * eps
                    vals.append(
                        -eta * (w[m] * g[m, t]).sum() / ((w[m] * h[m, t]).sum() + ens.l2[j])
                    )
                D[r, t] = -(vals[1] - vals[0]) / (2 * eps)
            else:
                D[r, t] = eta * (g[r, t] + ens.leaf_values[j] * h[r, t]) / beta
    # the package's derivative reads the stored (float32 for XGBoost) leaf value where
    # the difference recomputes it in float64: an absolute gap ~1e-7 |v h| remains
    np.testing.assert_allclose(exp.derivatives_, D, rtol=1e-5, atol=1e-6 * np.abs(D).max())
    Fq = ens.bias[0] + np.cumsum(ens.leaf_values[ens.leaf_offsets[:-1] + ql], axis=1)
    Fq = np.column_stack([np.full(len(ql), ens.bias[0]), Fq[:, :-1]])
    gq, _ = grad_hess(ens.objective, yq[:, None], Fq, a)
    expected = np.einsum("ert,rt,et->er", tl[None, :, :] == ql[:, None, :], D, gq)
    np.testing.assert_allclose(
        exp.transform(case(i)[3], yq), expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max()
    )


# ------------------------------------------------------------------ the other methods
_OTHERS = [TREX, TreeSim, LeafSim, InputSim, LOO, LossInfluence, TargetInfluence, MinorityInfluence]


@pytest.mark.parametrize("i", [0, 5, 7, 9, 11, 12], ids=[IDS[i] for i in (0, 5, 7, 9, 11, 12)])
@pytest.mark.parametrize("cls", _OTHERS, ids=lambda c: c.__name__)
def test_other_methods_run(cls, i):
    X, y, model, Xq, yq, _ = case(i)
    exp = cls(model).fit(X, y)
    own = exp.self_influence()
    assert own.shape == (N,) and np.all(np.isfinite(own))
    if cls is LossInfluence:
        return
    for M in (exp.transform(Xq, yq), exp.transform(Xq)):
        assert M.shape == (NQ, N) and np.all(np.isfinite(M))


@pytest.mark.parametrize("i", [0, 2, 3, 11], ids=[IDS[i] for i in (0, 2, 3, 11)])
def test_trex_surrogate_is_the_objective_glm(i):
    """TREX fits the kernel surrogate with the objective's own loss to the model's mean
    prediction: at its optimum the representer weights are -l'(mu_i, f_i) / (2 lmbd n)
    and reproduce the surrogate (f = K alpha); the influence is the query loss change
    L(y_e, f_e - alpha_i k_ei) - L(y_e, f_e)."""
    X, y, model, Xq, yq, a = case(i)
    exp = TREX(model, tol=1e-10, max_iter=5000).fit(X, y)
    ens = exp.ensemble_
    Phi = exp.kernel_features(X)
    f = np.asarray(Phi @ exp.surrogate_coef_)[:, 0]
    K = np.asarray((Phi @ Phi.T).todense()) if hasattr(Phi, "todense") else Phi @ Phi.T
    alpha = exp.representer_weights_[:, 0]
    np.testing.assert_allclose(K @ alpha, f, rtol=1e-5, atol=1e-6 * np.abs(f).max())
    fq = np.asarray(exp.kernel_features(Xq) @ exp.surrogate_coef_)[:, 0]
    kq = exp.kernel_features(Xq) @ Phi.T
    kq = np.asarray(kq.todense()) if hasattr(kq, "todense") else kq
    fq = kq @ alpha  # the representer form the influence uses
    expected = (
        loss(ens.objective, yq[:, None], fq[:, None] - alpha[None, :] * kq, a)
        - loss(ens.objective, yq, fq, a)[:, None]
    )
    np.testing.assert_allclose(exp.transform(Xq, yq), expected, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("i", [0, 10], ids=[IDS[0], IDS[10]])
def test_loo_scores_refits_by_the_objective_loss(i):
    """LOO's query loss is the objective's own loss at the raw score of the refit's
    prediction (log link for Poisson, the margin itself for binary:logitraw); the
    label-free query is the negated raw score."""
    from sklearn.base import clone

    X, y, model, Xq, yq, a = case(i)
    exp = LOO(model).fit(X, y)
    objective, ens = exp.ensemble_.objective, exp.ensemble_

    def raw_of(m):
        return to_raw(m, Xq)

    F = raw_of(model)
    for r in REMOVED:
        keep = np.delete(np.arange(N), r)
        Fr = raw_of(clone(model).fit(X[keep], y[keep]))
        np.testing.assert_allclose(
            exp.transform(Xq, yq)[:, r],
            loss(objective, yq, Fr, a) - loss(objective, yq, F, a),
            rtol=1e-5,
            atol=1e-6,
        )
        np.testing.assert_allclose(exp.transform(Xq)[:, r], F - Fr, rtol=1e-5, atol=1e-6)
    assert ens.is_regression


# ------------------------------------------------------------------ XGBoost's clamp
def test_xgboost_default_count_poisson():
    """XGBoost's count:poisson sets max_delta_step=0.7: the hessian offset and a leaf
    clamp that binds on some leaves (a clamped leaf has derivative 0)."""
    pytest.importorskip("xgboost")
    X, y = make_data("regression", n=N, seed=1, regression_objective="poisson")
    model = make_model(
        "xgboost", "regression", regression_objective="poisson", n_estimators=10, max_depth=2
    )
    model.fit(X, y)
    exp = LeafInfluence(model).fit(X, y)
    assert exp.ensemble_.max_delta_step == pytest.approx(0.7)
    assert exp.ensemble_.objective_param == pytest.approx(0.7)


# ------------------------------------------------------------------ refusals
def _refusals():
    out = [
        ("lightgbm", {"objective": "regression_l1"}, "objective 'regression_l1' is not supported"),
        ("lightgbm", {"objective": "quantile"}, "objective 'quantile' is not supported"),
        ("lightgbm", {"objective": "mape"}, "objective 'mape' is not supported"),
        ("xgboost", {"objective": "reg:absoluteerror"}, "'reg:absoluteerror' is not supported"),
        ("xgboost", {"objective": "reg:quantileerror", "quantile_alpha": 0.5}, "quantileerror"),
        ("sklearn_hgb", {"loss": "absolute_error"}, "medians and quantiles of the residuals"),
        ("sklearn_gb", {"loss": "huber"}, "median of the leaf's residuals"),
        ("sklearn_gb", {"loss": "quantile"}, "quantiles of the residuals"),
        ("sklearn_gb", {"loss": "absolute_error"}, "medians of the residuals"),
    ]
    return out


@pytest.mark.parametrize("lib,params,match", _refusals())
def test_median_and_quantile_leaves_are_refused(lib, params, match):
    _lib_available(lib)
    X, y = make_data("regression", n=N, seed=1)
    model = make_model(lib, "regression", n_estimators=3).set_params(**params).fit(X, y)
    with pytest.raises(UnsupportedModelError, match=match):
        LeafInfluence(model).fit(X, y)


@pytest.mark.parametrize("i", [0, 10, 12], ids=[IDS[i] for i in (0, 10, 12)])
def test_evaluation_scores_refits_by_the_objective_loss(i):
    """The evaluation protocols score a (refit) regressor by the objective's own loss."""
    from skinfluence.evaluation._common import _prepare

    X, y, model, Xq, yq, a = case(i)
    _, task, _, scorer, _ = _prepare(model, X, y)
    F = to_raw(model, Xq)
    objective = CASES[i][1]
    np.testing.assert_allclose(
        scorer.evaluate(model, Xq, yq)["loss"], loss(objective, yq, F, a), rtol=1e-6
    )
    assert task == "regression"


def test_cross_entropy_with_class_labels_is_binary_and_booster_labels_decide():
    """An LGBMClassifier with cross_entropy has classes: the binary log-loss (the same
    loss on labels 0/1); a raw xgboost.Booster with binary:logistic is binary on 0/1
    labels and the cross-entropy on probabilities."""
    pytest.importorskip("lightgbm")
    xgb = pytest.importorskip("xgboost")
    X, p = make_data("regression", n=N, seed=1, regression_objective="cross_entropy")
    yb = (p > 0.5).astype(int)
    clf = make_model("lightgbm", "binary", n_estimators=3, num_leaves=4, objective="cross_entropy")
    assert LeafInfluence(clf.fit(X, yb)).fit(X, yb).ensemble_.objective == "binary"
    for labels, objective in ((yb, "binary"), (p, "cross_entropy")):
        booster = xgb.train(
            {"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
            xgb.DMatrix(X, label=labels),
            3,
        )
        exp = LeafInfluence(booster).fit(X, labels)
        assert exp.ensemble_.objective == objective
        assert np.all(np.isfinite(exp.transform(X[:3], labels[:3])))


@pytest.mark.parametrize("i", [0, 8], ids=[IDS[0], IDS[8]])
def test_weighted_leaf_influence_and_refit(i):
    """Sample weights scale each row's gradient and hessian (and enter LightGBM's
    initial score): LeafInfluence is the finite difference of the weighted refit in
    ``log w_i``, LeafRefit that refit with ``w_i = 0``."""
    lib, objective, kw, a = CASES[i]
    X, y, model, Xq, yq, _ = case(i)
    w = np.random.default_rng(0).uniform(0.3, 2.5, len(y))
    model = model.__class__(**model.get_params()).fit(X, y, sample_weight=w)
    li = LeafInfluence(model).fit(X, y, sample_weight=w)
    lr = LeafRefit(model).fit(X, y, sample_weight=w)
    ens = li.ensemble_
    tl, ql = ens.leaf_ids(X), ens.leaf_ids(Xq)
    np.testing.assert_allclose(refit(ens, tl, y, w, a), ens.leaf_values, rtol=1e-5, atol=1e-6)
    got, got_refit = li.transform(Xq, yq), lr.transform(Xq, yq)
    F = ens.raw_from_leaves(ql)[:, 0]
    eps = 1e-5
    for r in REMOVED:
        L = []
        for s in (-1, 1):
            w2 = w.copy()
            w2[r] *= 1 + s * eps
            L.append(loss(objective, yq, raw(ens, refit(ens, tl, y, w2, a), ql), a))
        fd = (L[0] - L[1]) / (2 * eps)
        np.testing.assert_allclose(got[:, r], fd, rtol=1e-5, atol=1e-7 * np.abs(fd).max())
        w0 = w.copy()
        w0[r] = 0.0
        v = refit(ens, tl, y, w0, a)
        expected = loss(objective, yq, raw(ens, v, ql), a) - loss(objective, yq, F, a)
        np.testing.assert_allclose(got_refit[:, r], expected, rtol=1e-8, atol=1e-11)


def test_single_point_uses_the_gradient_slope():
    """LeafInfluence with ``update_set=0`` on LightGBM's Poisson (hessian exp(F + 0.7)):
    the closed form of the single-point derivative, whose propagation term is the
    gradient's slope exp(F) plus vbar times kappa = exp(F + 0.7)."""
    X, y, model, Xq, yq, a = case(0)
    exp = LeafInfluence(model, update_set=0).fit(X, y)
    ens = exp.ensemble_
    tl, ql = ens.leaf_ids(X), ens.leaf_ids(Xq)
    n = len(y)
    F = ens.bias[0] + np.cumsum(ens.leaf_values[ens.leaf_offsets[:-1] + tl], axis=1)
    F = np.column_stack([np.full(n, ens.bias[0]), F[:, :-1]])
    g, h = grad_hess("poisson", y[:, None], F, a)
    slope, kap = np.exp(F), h
    gfin = np.exp(ens.raw_from_leaves(ql)[:, 0]) - yq
    expected = np.zeros((len(Xq), n))
    for i in range(n):
        jv = 0.0
        for t in range(ens.n_trees):
            j = ens.leaf_offsets[t] + tl[i, t]
            m = tl[:, t] == tl[i, t]
            beta = h[m, t].sum() + ens.l2[j]
            vbar = ens.leaf_values[j] / ens.learning_rates[t]
            A = g[i, t] + vbar * h[i, t]
            Q = slope[i, t] + vbar * kap[i, t]
            D = -ens.learning_rates[t] * (A + Q * jv) / beta
            jv += D
            same = ql[:, t] == tl[i, t]
            expected[same, i] += -gfin[same] * D
    np.testing.assert_allclose(exp.transform(Xq, yq), expected, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("objective", ["poisson", "tweedie", "huber", "cross_entropy"])
def test_lightgbm_learning_rate_schedule(objective):
    """Under a learning-rate schedule LightGBM does not store the first round's rate:
    it is recovered as stored / Newton step with the objective's gradient and hessian."""
    lgb = pytest.importorskip("lightgbm")
    X, y = make_data("regression", n=N, seed=3, regression_objective=objective)
    model = make_model("lightgbm", "regression", regression_objective=objective, num_leaves=4)
    schedule = lgb.reset_parameter(learning_rate=lambda i: 0.3 * 0.8**i)
    exp = LeafInfluence(model.fit(X, y, callbacks=[schedule])).fit(X, y)
    assert exp.ensemble_.notes["first_round_learning_rate"] == pytest.approx(0.3, rel=1e-6)


def test_strategies_draw_the_objectives():
    """``fitted_models(objective=...)`` draws labels for the objective and models of the
    libraries that have it; LeafInfluence explains every one it accepts."""
    from hypothesis import HealthCheck, given, settings

    from skinfluence.testing import OBJECTIVES
    from skinfluence.testing.strategies import fitted_models

    seen = set()

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
    @given(fitted_models(objective=tuple(OBJECTIVES), max_estimators=3, method=LeafInfluence))
    def check(case):
        exp = LeafInfluence(case.model).fit(case.X, case.y)
        assert exp.ensemble_.objective in OBJECTIVES
        assert np.all(np.isfinite(exp.self_influence()))
        seen.add(exp.ensemble_.objective)

    check()
    assert len(seen) >= 2
