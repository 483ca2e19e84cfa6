"""Leaves computed by several steps (CatBoost's leaf_estimation_iterations) and clamped
leaves (max_delta_step): the gradient methods against brute-force oracles.

The oracles replay the library's leaf computation in plain numpy: every leaf of every
tree recomputed from its rows at their (re-trained) scores before the tree, by the
model's steps. LeafInfluence must equal central finite differences of that refit in
a row's weight, LeafRefit the refit without the row, and BoostIn's exact form the
finite difference of one leaf with the other rows' scores held.
"""

import numpy as np
import pytest
from scipy.special import expit

import skinfluence as sk
from skinfluence._adapters import to_ensemble

cb = pytest.importorskip("catboost")
xgb = pytest.importorskip("xgboost")


# ------------------------------------------------------------------ oracle (numpy)
def _grad_hess(objective, y, F):
    if objective == "binary":
        p = expit(F)
        return p - y, p * (1 - p)
    return F - y, np.ones_like(F)


def _loss(objective, y, F):
    if objective == "binary":
        return np.logaddexp(0.0, np.where(y == 1, -F, F))
    return 0.5 * (F - y) ** 2


def _leaf_value(ens, y, w, F, idx, j, eta, n_steps=None):
    """The rule's value of one leaf from the rows ``idx`` at scores ``F``."""
    u = 0.0
    for _ in range(ens.leaf_steps if n_steps is None else n_steps):
        g, h = _grad_hess(ens.objective, y[idx], F[idx] + u)
        d = np.ones_like(h) if ens.leaf_step_method == "gradient" else h
        den = (w[idx] * d).sum() + ens.l2[j]
        if den != 0:
            step = -(w[idx] * g).sum() / den
            if ens.max_delta_step > 0:
                step = np.clip(step, -ens.max_delta_step, ens.max_delta_step)
            u += step
    return eta * u


def _tree_values(ens, leaves, y, w, F, t, n_steps):
    o = ens.leaf_offsets[t]
    return np.array(
        [
            _leaf_value(
                ens,
                y,
                w,
                F,
                np.flatnonzero(leaves[:, t] == l),
                o + l,
                ens.learning_rates[t],
                n_steps,
            )
            for l in range(ens.n_leaves[t])
        ]
    )


def steps_taken(ens, leaves, y, w):
    """Per tree, the number of steps (at most ``leaf_steps``) whose leaves are closest
    to the stored ones on the stored trajectory: CatBoost's backtracking drops a step
    that no longer lowers its float32 loss, which happens once the steps converged."""
    F = np.full(len(y), ens.bias[0])
    taken = []
    for t in range(ens.n_trees):
        stored = ens.leaf_values[ens.leaf_offsets[t] : ens.leaf_offsets[t + 1]]
        gaps = [
            np.abs(_tree_values(ens, leaves, y, w, F, t, m) - stored).max()
            for m in range(1, ens.leaf_steps + 1)
        ]
        taken.append(ens.leaf_steps - int(np.argmin(gaps[::-1])))
        F = F + stored[leaves[:, t]]
    return taken


def refit(ens, leaves, y, w, taken=None):
    """Every leaf recomputed tree by tree with row weights ``w`` (flat values), tree
    ``t`` by ``taken[t]`` steps (default: all of them)."""
    F = np.full(len(y), ens.bias[0])
    values = np.zeros(ens.n_leaves_total)
    for t in range(ens.n_trees):
        o = ens.leaf_offsets[t]
        n_steps = None if taken is None else taken[t]
        values[o : ens.leaf_offsets[t + 1]] = _tree_values(ens, leaves, y, w, F, t, n_steps)
        F = F + values[o + leaves[:, t]]
    return values


def scores(ens, values, leaves):
    return ens.bias[0] + values[ens.flat_leaves(leaves)].sum(axis=1)


# ------------------------------------------------------------------ models
def _data(task, n=90, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    if task == "binary":
        y = (X[:, 0] + 0.7 * rng.normal(size=n) > 0).astype(float)
    else:
        y = X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n)
    return X, y, rng.uniform(0.5, 2.0, n)


CASES = {
    # what CatBoostClassifier chooses itself on many data sets (e.g. 30 features)
    "logloss-newton-steps": ("binary", {"leaf_estimation_iterations": 10}, False),
    "logloss-newton-steps-weighted": ("binary", {"leaf_estimation_iterations": 10}, True),
    "logloss-gradient-steps": (
        "binary",
        {"leaf_estimation_method": "Gradient", "leaf_estimation_iterations": 4},
        True,
    ),
    "rmse-newton-steps": ("regression", {"leaf_estimation_iterations": 3}, False),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    task, params, weighted = CASES[request.param]
    X, y, w = _data(task)
    w = w.astype(np.float32).astype(np.float64) if weighted else None
    cls = cb.CatBoostClassifier if task == "binary" else cb.CatBoostRegressor
    model = cls(iterations=5, depth=2, learning_rate=0.3, random_seed=0, verbose=0, **params)
    model.fit(X, y, sample_weight=w)
    ens = to_ensemble(model, sample_weight=w)
    yy = y.astype(np.float32).astype(np.float64)
    return model, ens, X, yy, np.ones(len(y)) if w is None else w, w


def test_model_takes_several_steps(case):
    _, ens, X, y, w, _ = case
    assert ens.leaf_steps > 1
    assert max(steps_taken(ens, ens.leaf_ids(X), y, w)) > 1
    assert not any("leaf_estimation_iterations" in s for s in ens.breaking_settings)


def test_leaf_check_replays_the_steps(case):
    _, ens, X, y, w, _ = case
    leaves = ens.leaf_ids(X)
    taken = steps_taken(ens, leaves, y, w)
    assert np.allclose(refit(ens, leaves, y, w, taken), ens.leaf_values, rtol=1e-9, atol=1e-12)
    assert ens.check_leaf_model(leaves, y, w) == 0.0


def _finite_difference(ens, leaves, y, w, i, q_leaves, yq, eps=1e-5, taken=None):
    up, down = w.copy(), w.copy()
    up[i] *= 1 + eps
    down[i] *= 1 - eps
    Lu = _loss(ens.objective, yq, scores(ens, refit(ens, leaves, y, up, taken), q_leaves))
    Ld = _loss(ens.objective, yq, scores(ens, refit(ens, leaves, y, down, taken), q_leaves))
    return (Ld - Lu) / (2 * eps)


def test_leaf_influence_equals_finite_differences(case):
    model, ens, X, y, w, sw = case
    leaves = ens.leaf_ids(X)
    values = sk.LeafInfluence(model).fit(X, y, sample_weight=sw).transform(X[:4], y[:4])
    scale = np.abs(values).max()
    taken = steps_taken(ens, leaves, y, w)
    for i in (0, 7, 31):
        fd = _finite_difference(ens, leaves, y, w, i, leaves[:4], y[:4], taken=taken)
        np.testing.assert_allclose(values[:, i], fd, atol=1e-7 * scale + 1e-10, rtol=1e-5)


def test_leaf_refit_equals_brute_force_refit(case):
    model, ens, X, y, w, sw = case
    leaves = ens.leaf_ids(X)
    values = sk.LeafRefit(model).fit(X, y, sample_weight=sw).transform(X[:4], y[:4])
    before = _loss(ens.objective, y[:4], scores(ens, ens.leaf_values, leaves[:4]))
    taken = steps_taken(ens, leaves, y, w)
    for i in (0, 7, 31):
        w0 = w.copy()
        w0[i] = 0.0
        new = refit(ens, leaves, y, w0, taken)
        after = _loss(ens.objective, y[:4], scores(ens, new, leaves[:4]))
        np.testing.assert_allclose(values[:, i], after - before, rtol=1e-7, atol=1e-10)


def test_boostin_exact_is_the_leaf_derivative(case):
    model, ens, X, y, w, sw = case
    leaves = ens.leaf_ids(X)
    est = sk.BoostIn(model, derivative="exact").fit(X, y, sample_weight=sw)
    F = np.full(len(y), ens.bias[0])
    taken = steps_taken(ens, leaves, y, w)
    eps = 1e-6
    for t in range(ens.n_trees):
        o = ens.leaf_offsets[t]
        for i in (0, 7, 31):
            l = leaves[i, t]
            idx = np.flatnonzero(leaves[:, t] == l)
            up, down = w.copy(), w.copy()
            up[i] *= 1 + eps
            down[i] *= 1 - eps
            eta = ens.learning_rates[t]
            fd = (
                _leaf_value(ens, y, down, F, idx, o + l, eta, taken[t])
                - _leaf_value(ens, y, up, F, idx, o + l, eta, taken[t])
            ) / (2 * eps)
            assert est.derivatives_[i, t] == pytest.approx(fd, rel=1e-5, abs=1e-10)
        F = F + ens.leaf_values[o + leaves[:, t]]


def test_boostin_published_is_the_reference_formula(case):
    """The published form keeps the paper's formula on the stored leaves."""
    model, ens, X, y, w, sw = case
    leaves = ens.leaf_ids(X)
    est = sk.BoostIn(model).fit(X, y, sample_weight=sw)
    g, h, _, _ = ens.replay(leaves, y)
    flat = ens.flat_leaves(leaves)
    d = np.ones_like(h) if ens.leaf_step_method == "gradient" else h
    beta = np.bincount(flat.ravel(), (w[:, None] * d).ravel(), ens.n_leaves_total) + ens.l2
    eta = np.repeat(ens.learning_rates, ens.n_leaves)
    expected = w[:, None] * (g + ens.leaf_values[flat] * h) * (eta / beta)[flat]
    np.testing.assert_allclose(est.derivatives_, expected, rtol=1e-12, atol=1e-15)


def test_self_influence_matches_transform_diagonal(case):
    model, _, X, y, _, sw = case
    for est in (sk.LeafInfluence(model), sk.LeafRefit(model)):
        est.fit(X, y, sample_weight=sw)
        np.testing.assert_allclose(
            est.self_influence(), np.diag(est.transform(X, y)), rtol=1e-9, atol=1e-12
        )


def test_library_defaults_work_out_of_the_box():
    """``CatBoostClassifier()`` with nothing set (1000 iterations; on 30 features it
    chooses 10 Newton steps per leaf)."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:80], y[:80]
    model = cb.CatBoostClassifier(verbose=0, random_seed=0, thread_count=1).fit(X, y)
    assert model.get_all_params()["leaf_estimation_iterations"] > 1
    for est in (sk.BoostIn(model), sk.LeafInfluence(model), sk.TREX(model)):
        values = est.fit(X, y).transform(X[:2], y[:2])
        assert values.shape == (2, 80) and np.isfinite(values).all()


def test_failed_check_names_backtracking():
    """If a replayed step misses the stored leaf, the message names the backtracking
    CatBoost may have applied."""
    X, y, w = _data("binary")
    model = cb.CatBoostClassifier(
        iterations=4, depth=2, random_seed=0, verbose=0, leaf_estimation_iterations=3
    ).fit(X, y)
    ens = to_ensemble(model)
    leaves = ens.leaf_ids(X)
    with pytest.raises(sk.LeafModelError, match="leaf_estimation_backtracking"):
        ens.check_leaf_model(leaves, y.astype(float), w)  # other weights than trained


# ------------------------------------------------------------------ the clamp
@pytest.fixture(scope="module")
def clamped():
    X, y, _ = _data("binary", n=120, seed=1)
    model = xgb.XGBClassifier(
        n_estimators=6, max_depth=2, learning_rate=0.5, max_delta_step=0.3, n_jobs=1
    ).fit(X, y)
    ens = to_ensemble(model)
    leaves = ens.leaf_ids(X)
    unshrunk = np.abs(ens.leaf_values) / np.repeat(ens.learning_rates, ens.n_leaves)
    at_bound = np.isclose(unshrunk, 0.3, rtol=1e-5)
    assert at_bound.any() and not at_bound.all()  # the clamp binds on some leaves
    return model, ens, X, y.astype(float), leaves, at_bound


def test_clamped_leaves_pass_the_check(clamped):
    _, ens, X, y, leaves, _ = clamped
    assert ens.check_leaf_model(leaves, y) == 0.0
    np.testing.assert_allclose(refit(ens, leaves, y, np.ones(len(y))), ens.leaf_values, atol=2e-7)


def test_clamped_leaves_have_zero_derivative(clamped):
    model, ens, X, y, leaves, at_bound = clamped
    est = sk.BoostIn(model, derivative="exact").fit(X, y)
    flat = ens.flat_leaves(leaves)
    assert np.all(est.derivatives_[at_bound[flat]] == 0.0)
    assert np.any(est.derivatives_[~at_bound[flat]] != 0.0)


def test_clamped_leaf_influence_and_refit(clamped):
    model, ens, X, y, leaves, _ = clamped
    w = np.ones(len(y))
    li = sk.LeafInfluence(model).fit(X, y).transform(X[:3], y[:3])
    lr = sk.LeafRefit(model).fit(X, y).transform(X[:3], y[:3])
    before = _loss("binary", y[:3], scores(ens, refit(ens, leaves, y, w), leaves[:3]))
    for i in (2, 40):
        fd = _finite_difference(ens, leaves, y, w, i, leaves[:3], y[:3])
        np.testing.assert_allclose(li[:, i], fd, atol=1e-8, rtol=1e-5)
        w0 = w.copy()
        w0[i] = 0.0
        after = _loss("binary", y[:3], scores(ens, refit(ens, leaves, y, w0), leaves[:3]))
        # the stored model's float32 leaves differ from the float64 refit by ~1e-8
        np.testing.assert_allclose(lr[:, i], after - before, atol=1e-6)


def test_backtracking_stop_is_replayed():
    """CatBoost dropped the last steps of some trees of the weighted model (its float32
    loss stopped improving): the trees take fewer steps and the check still passes."""
    task, params, _ = CASES["logloss-newton-steps-weighted"]
    X, y, w = _data(task)
    w = w.astype(np.float32).astype(np.float64)
    model = cb.CatBoostClassifier(
        iterations=5, depth=2, learning_rate=0.3, random_seed=0, verbose=0, **params
    ).fit(X, y, sample_weight=w)
    ens = to_ensemble(model, sample_weight=w)
    leaves = ens.leaf_ids(X)
    taken = steps_taken(ens, leaves, y.astype(float), w)
    assert min(taken) < ens.leaf_steps
    assert ens.check_leaf_model(leaves, y.astype(float), w) == 0.0
    assert not np.allclose(refit(ens, leaves, y.astype(float), w), ens.leaf_values, rtol=1e-6)


def test_binding_lightgbm_clamp_is_exact():
    lgb = pytest.importorskip("lightgbm")
    X, y, _ = _data("regression", n=150, seed=2)
    model = lgb.LGBMRegressor(
        n_estimators=6, num_leaves=4, learning_rate=0.5, max_delta_step=0.2, verbose=-1
    ).fit(X, y * 3)
    ens = to_ensemble(model)
    leaves = ens.leaf_ids(X)
    unshrunk = np.abs(ens.leaf_values) / np.repeat(ens.learning_rates, ens.n_leaves)
    assert np.isclose(unshrunk, 0.2, rtol=1e-5).any()
    assert ens.check_leaf_model(leaves, y * 3) == 0.0
    li = sk.LeafInfluence(model).fit(X, y * 3).transform(X[:3], y[:3] * 3)
    w = np.ones(len(y))
    for i in (1, 60):
        fd = _finite_difference(ens, leaves, y * 3, w, i, leaves[:3], y[:3] * 3)
        np.testing.assert_allclose(li[:, i], fd, atol=1e-7, rtol=1e-5)
