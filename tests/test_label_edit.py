"""Label-edit influence (``label_edit``) of every method against its oracle (numpy
recomputations of the relabelled leaves, fixed-structure refits and their finite
differences, retraining); refusals of the methods and objectives that have none."""

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingClassifier

import skinfluence as sk

from . import model_table, oracles

lgb = pytest.importorskip("lightgbm")
xgb = pytest.importorskip("xgboost")

CASES = {
    "lightgbm-regression": (lambda: lgb.LGBMRegressor(n_estimators=8, verbose=-1), "regression"),
    "lightgbm-binary": (lambda: lgb.LGBMClassifier(n_estimators=8, verbose=-1), "binary"),
    "lightgbm-multiclass": (lambda: lgb.LGBMClassifier(n_estimators=6, verbose=-1), "multiclass"),
    # the hessian y exp(-F) depends on the label
    "lightgbm-gamma": (
        lambda: lgb.LGBMRegressor(n_estimators=8, objective="gamma", verbose=-1),
        "positive",
    ),
    "xgboost-binary-clamped": (
        lambda: xgb.XGBClassifier(n_estimators=8, max_delta_step=1.0, learning_rate=0.5),
        "binary",
    ),
}


def _new_labels(task, y, rng):
    if task in ("binary", "multiclass"):
        k = len(np.unique(y))
        return (y + rng.integers(1, k, len(y))) % k
    return y * rng.uniform(0.5, 1.5, len(y))


def _gradients(ens, y, F):
    """Query-loss gradients ``(m, K)`` at raw scores ``F`` ``(m, K)``."""
    if ens.n_outputs > 1:
        P = softmax(F, axis=1)
        P[np.arange(len(y)), y.astype(int)] -= 1.0
        return P
    return oracles.grad_hess(ens, y, F[:, 0])[0][:, None]


def _leaf_change(ens, leaves, y, new, w, F, i, t):
    """Exact change of row ``i``'s leaf in tree ``t`` when it alone takes label
    ``new[i]`` (the other rows' gradients at the stored scores ``F`` before the tree)."""
    K, k = ens.n_outputs, t % ens.n_outputs
    rows = leaves[:, t] == leaves[i, t]
    if K > 1:
        P = softmax(F[rows], axis=1)
        Y = np.eye(K)[y[rows].astype(int)]
        g, h = P[:, k] - Y[:, k], ens.multiclass_factor * P[:, k] * (1 - P[:, k])
        p_i = softmax(F[i])[k]
        g_i, h_i = p_i - float(new[i] == k), ens.multiclass_factor * p_i * (1 - p_i)
    else:
        g, h = oracles.grad_hess(ens, y[rows], F[rows, 0])
        g_i, h_i = oracles.grad_hess(ens, new[i : i + 1], F[i : i + 1, 0])
    j = np.flatnonzero(np.flatnonzero(rows) == i)[0]
    lam = ens.l2[ens.leaf_offsets[t] + leaves[i, t]]

    def value(G, H):
        step = -G / (H + lam)
        if ens.max_delta_step > 0:
            step = np.clip(step, -ens.max_delta_step, ens.max_delta_step)
        return ens.learning_rates[t] * step

    G, H = (w[rows] * g).sum(), (w[rows] * h).sum()
    G_new = G + w[i] * (g_i[0] - g[j]) if K == 1 else G + w[i] * (g_i - g[j])
    H_new = H + w[i] * (h_i[0] - h[j]) if K == 1 else H + w[i] * (h_i - h[j])
    return value(G_new, H_new) - value(G, H)


@pytest.mark.parametrize("case", sorted(CASES))
def test_boostin_label_edit_is_the_relabelled_leaf_change(case):
    make, task = CASES[case]
    X, y = model_table.data(task)
    model = make().fit(X, y)
    est = sk.BoostIn(model).fit(X, y)
    ens = est.ensemble_  # built from the training data (LightGBM's initial score)
    leaves = ens.leaf_ids(X)
    yy = y.astype(float)
    new = _new_labels(task, y, np.random.default_rng(1))
    if ens.label_dtype is not None:  # the labels as the library holds them
        yy, new = (a.astype(ens.label_dtype).astype(float) for a in (yy, new))
    got = est.label_edit(X[:4], y[:4], new_labels=new)
    assert got.shape == (4, len(y))
    K = ens.n_outputs
    stored = ens.leaf_values[ens.flat_leaves(leaves)]
    w = np.ones(len(y))
    for i in (0, 5, 77):
        expected = np.zeros(4)
        for b in range(ens.n_rounds):
            F = ens.bias + stored[:, : b * K].reshape(len(y), b, K).sum(axis=1)
            gq = _gradients(ens, yy[:4], F[:4])
            for k in range(K):
                t = b * K + k
                same = leaves[:4, t] == leaves[i, t]
                d = _leaf_change(ens, leaves, yy, new.astype(float), w, F, i, t)
                expected += same * gq[:, k] * d
        np.testing.assert_allclose(got[:, i], expected, rtol=1e-9, atol=1e-12)


def test_unchanged_labels_give_zero_and_scalar_broadcasts():
    X, y = model_table.data("binary")
    est = sk.BoostIn(lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)).fit(X, y)
    np.testing.assert_array_equal(est.label_edit(X[:3], y[:3], new_labels=y), 0.0)
    ones = est.label_edit(X[:3], y[:3], new_labels=1)
    np.testing.assert_array_equal(ones[:, y == 1], 0.0)
    assert np.any(ones[:, y == 0] != 0.0)
    with pytest.raises(ValueError, match="never saw"):
        est.label_edit(X[:3], y[:3], new_labels=7)
    with pytest.raises(ValueError, match="new_labels has 3 entries"):
        est.label_edit(X[:3], y[:3], new_labels=[0, 1, 0])


TREX_CASES = {
    "lightgbm-regression-lpw": (
        lambda: lgb.LGBMRegressor(n_estimators=8, verbose=-1),
        "regression",
        "lpw",
    ),
    "lightgbm-regression-lp_": (
        lambda: lgb.LGBMRegressor(n_estimators=8, verbose=-1),
        "regression",
        "lp_",
    ),
    "lightgbm-binary-lpw": (
        lambda: lgb.LGBMClassifier(n_estimators=8, verbose=-1),
        "binary",
        "lpw",
    ),
    "lightgbm-multiclass-lpw": (
        lambda: lgb.LGBMClassifier(n_estimators=5, verbose=-1),
        "multiclass",
        "lpw",
    ),
    "xgboost-poisson-fpw": (
        lambda: xgb.XGBRegressor(n_estimators=8, max_depth=3, objective="count:poisson"),
        "count",
        "fpw",
    ),
}


def _surrogate_outputs(est, leaves, Y, rows):
    """Raw outputs at ``rows`` of the surrogate refitted to targets ``Y``: L-BFGS, then
    Newton iterations with a hessian from central differences of the objective's
    gradient (independent of the package's hessian), to a gradient at rounding level."""
    from skinfluence._trex import _surrogate_loss_grad, fit_surrogate

    ens = est.ensemble_
    Phi = est._kernel.features(leaves)
    args = (ens.objective, Phi, Y, est.lmbd)
    W = fit_surrogate(*args, 1e-10, 5000, ens.objective_param)[0].ravel()
    fun = _surrogate_loss_grad(ens.objective, Phi, Phi.T.tocsr(), Y, est.lmbd, ens.objective_param)
    if not hasattr(est, "_test_hessian"):  # once per model: Newton converges with it
        h = 1e-6
        H = np.array([(fun(W + h * e)[1] - fun(W - h * e)[1]) / (2 * h) for e in np.eye(W.size)])
        est._test_hessian = (H + H.T) / 2
    H = est._test_hessian
    for _ in range(8):
        W = W - np.linalg.solve(H, fun(W)[1])
    return Phi[rows] @ W.reshape(-1, Y.shape[1])


@pytest.mark.parametrize("case", sorted(TREX_CASES))
def test_trex_label_edit_is_the_surrogates_newton_step(case):
    """Squared error: equal to the surrogate refitted with the row relabelled (its
    objective is quadratic). Other losses: the surrogate output moves by the derivative
    of the refitted surrogate in a soft move of the label (central differences)."""
    from skinfluence._objectives import loss
    from skinfluence._trex import _surrogate_targets

    make, task, kernel = TREX_CASES[case]
    X, y = model_table.data(task)
    est = sk.TREX(make().fit(X, y), kernel=kernel, tol=1e-13).fit(X, y)
    ens, obj = est.ensemble_, est.ensemble_.objective
    leaves = ens.leaf_ids(X)
    yy = est._y_train
    new = _new_labels(task, y, np.random.default_rng(5)).astype(float)
    if ens.label_dtype is not None:
        new = new.astype(ens.label_dtype).astype(float)
    got = est.label_edit(X[:4], y[:4], new_labels=new)
    Y = _surrogate_targets(ens, leaves, yy, "actual")
    f0 = _surrogate_outputs(est, leaves, Y, slice(0, 4))
    base = loss(obj, yy[:4], f0)
    rows = [i for i in (0, 5, 77, 100) if new[i] != yy[i]][:2]
    for i in rows:
        edited = _surrogate_targets(
            ens, leaves, np.where(np.arange(len(yy)) == i, new, yy), "actual"
        )
        if obj == "squared_error":
            expected = (
                loss(obj, yy[:4], _surrogate_outputs(est, leaves, edited, slice(0, 4))) - base
            )
            # the solvers' tolerance 1e-13 relative: the change agrees to ~1e-11
            np.testing.assert_allclose(
                got[:, i], expected, rtol=1e-8, atol=1e-10 * np.abs(got).max()
            )
            continue

        def moved(tau, i=i, edited=edited):
            return _surrogate_outputs(est, leaves, Y + tau * (edited - Y), slice(0, 4))

        def central(eps):
            return (moved(eps) - moved(-eps)) / (2 * eps)

        # Richardson-extrapolated central differences: truncation O(eps^4) ~ 1e-9
        # relative, the refits converged to rounding
        d = (4 * central(0.01) - central(0.02)) / 3
        expected = loss(obj, yy[:4], f0 + d) - base
        np.testing.assert_allclose(got[:, i], expected, rtol=1e-6, atol=1e-8 * np.abs(got).max())
    np.testing.assert_array_equal(est.label_edit(X[:2], y[:2], new_labels=y), 0.0)


def test_trex_label_edit_refuses_the_predicted_target():
    X, y = model_table.data("binary")
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    est = sk.TREX(model, target="predicted").fit(X, y)
    with pytest.raises(NotImplementedError, match="do not involve the training labels"):
        est.label_edit(X[:2], y[:2], new_labels=1 - y)


LEAF_INFLUENCE_CASES = {
    "lightgbm-regression": (lambda: lgb.LGBMRegressor(n_estimators=8, verbose=-1), "regression"),
    "lightgbm-binary": (lambda: lgb.LGBMClassifier(n_estimators=8, verbose=-1), "binary"),
    "lightgbm-gamma": (
        lambda: lgb.LGBMRegressor(n_estimators=8, objective="gamma", verbose=-1),
        "positive",
    ),
    "xgboost-poisson": (
        lambda: xgb.XGBRegressor(n_estimators=8, objective="count:poisson"),
        "count",
    ),
    "lightgbm-multiclass": (lambda: lgb.LGBMClassifier(n_estimators=6, verbose=-1), "multiclass"),
}


def _soft(ens, y, new, i, tau):
    """Labels with row ``i`` moved by ``tau`` toward its new label (soft one-hot rows
    for multiclass)."""
    if ens.n_outputs > 1:
        Y = np.eye(ens.n_outputs)[y.astype(int)]
        Y[i] += tau * (np.eye(ens.n_outputs)[int(new[i])] - Y[i])
        return Y
    out = y.copy()
    out[i] += tau * (new[i] - y[i])
    return out


@pytest.mark.parametrize(
    "case,multiclass",
    [(c, "exact") for c in sorted(LEAF_INFLUENCE_CASES)] + [("lightgbm-multiclass", "diagonal")],
)
def test_leaf_influence_label_edit_is_the_soft_label_derivative(case, multiclass):
    """First order in a soft move of the label: central differences of a fixed-structure
    refit with ``y_i + tau (y*_i - y_i)`` (exact for multiclass with the exact form)."""
    make, task = LEAF_INFLUENCE_CASES[case]
    X, y = model_table.data(task)
    est = sk.LeafInfluence(make().fit(X, y), multiclass=multiclass).fit(X, y)
    ens = est.ensemble_
    leaves = ens.leaf_ids(X)
    yy = y.astype(float)
    new = _new_labels(task, y, np.random.default_rng(2)).astype(float)
    if ens.label_dtype is not None:
        yy, new = (a.astype(ens.label_dtype).astype(float) for a in (yy, new))
    got = est.label_edit(X[:4], y[:4], new_labels=new)
    w, eps, scale = np.ones(len(y)), 1e-5, np.abs(got).max()
    for i in (0, 5, 77):
        up = oracles.refit(ens, leaves, _soft(ens, yy, new, i, eps), w)
        down = oracles.refit(ens, leaves, _soft(ens, yy, new, i, -eps), w)
        fd = (
            oracles.loss(ens, yy[:4], oracles.scores(ens, up, leaves[:4]))
            - oracles.loss(ens, yy[:4], oracles.scores(ens, down, leaves[:4]))
        ) / (2 * eps)
        if multiclass == "diagonal":  # the paper's form drops the cross-class terms
            assert np.corrcoef(got[:, i], fd)[0, 1] > 0.9
        else:
            np.testing.assert_allclose(got[:, i], fd, rtol=1e-4, atol=1e-6 * scale)


UPDATE_SET_CASES = {
    "lightgbm-binary": (
        lambda: lgb.LGBMClassifier(n_estimators=8, verbose=-1, n_jobs=1),
        "binary",
        False,
    ),
    "lightgbm-gamma": (
        lambda: lgb.LGBMRegressor(n_estimators=8, objective="gamma", verbose=-1, n_jobs=1),
        "positive",
        False,
    ),
    "lightgbm-multiclass": (
        lambda: lgb.LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1),
        "multiclass",
        False,
    ),
    "xgboost-binary-weighted": (
        lambda: xgb.XGBClassifier(n_estimators=8, max_depth=3, n_jobs=1),
        "binary",
        True,
    ),
    "xgboost-poisson": (
        lambda: xgb.XGBRegressor(n_estimators=8, max_depth=3, objective="count:poisson", n_jobs=1),
        "count",
        False,
    ),
    "sklearn-hgb-binary": (
        lambda: HistGradientBoostingClassifier(max_iter=8),
        "binary",
        False,
    ),
    # CatBoost with one Newton step per leaf (cb: imported with the CatBoost cases)
    "catboost-binary-one-step": (
        lambda: cb.CatBoostClassifier(leaf_estimation_iterations=1, learning_rate=0.3, **CB),
        "binary",
        True,
    ),
    "sklearn-gb-regression-weighted": (
        lambda: GradientBoostingRegressor(n_estimators=8, max_depth=3, random_state=0),
        "regression",
        True,
    ),
}


def _leaf_influence_edit_oracle(est, X, y, w, new, rows, update_set):
    """The oracle of ``label_edit`` for ``rows``: the queries' final loss gradients
    times central differences of the update set's fixed-structure refit with each
    row's label moved toward its new label (:func:`oracles.label_edit_derivative`)."""
    ens = est.ensemble_
    leaves = ens.leaf_ids(X)
    yy, nn = y.astype(float), new.astype(float)
    if ens.label_dtype is not None:  # the labels as the library holds them
        yy, nn = (a.astype(ens.label_dtype).astype(float) for a in (yy, nn))
    ww = np.ones(len(y)) if w is None else w
    scales = oracles.kept_scales(ens, leaves, yy, ww) if ens.n_outputs == 1 else None
    F = oracles.scores(ens, ens.leaf_values, leaves[:4]).reshape(4, -1)
    gq = _gradients(ens, yy[:4], F)
    out = {}
    for i in rows:
        D = oracles.label_edit_derivative(ens, leaves, yy, ww, i, nn[i], update_set, scales)
        out[i] = oracles.query_edit(ens, D, leaves[:4], gq)
    return out


@pytest.mark.parametrize("update_set", [-1, 0, 2])
@pytest.mark.parametrize("case", sorted(UPDATE_SET_CASES))
def test_leaf_influence_label_edit_update_sets(case, update_set):
    """``update_set=-1`` (every row), ``0`` (only the row's own leaves move) and ``2``
    (the row and the rows of the two leaves of each tree that moved most): the
    derivative of the refit that updates exactly these rows, by central differences
    (step 1e-5 of the move: truncation ~1e-10 and rounding ~1e-11 relative). Tolerance
    1e-6 relative and 1e-8 of the largest value: the derivative reads the stored
    (float32) leaf values where the refit has its own float64 ones (measured at most
    4.4e-9 of the largest value, XGBoost)."""
    make, task, weighted = UPDATE_SET_CASES[case]
    X, y = model_table.data(task)
    w = None
    if weighted:
        w = np.random.default_rng(8).uniform(0.5, 2.0, len(y)).astype(np.float32).astype(float)
    model = make().fit(X, y, sample_weight=w)
    new = _new_labels(task, y, np.random.default_rng(12))
    est = sk.LeafInfluence(model, update_set=update_set).fit(X, y, sample_weight=w)
    got = est.label_edit(X[:4], y[:4], new_labels=new)
    scale = np.abs(got).max()
    for i, want in _leaf_influence_edit_oracle(est, X, y, w, new, (0, 5, 77), update_set).items():
        np.testing.assert_allclose(got[:, i], want, rtol=1e-6, atol=1e-8 * scale)
    same = np.where(np.arange(len(y)) % 3 == 0, y, new)  # every third row keeps its label
    kept = est.label_edit(X[:4], y[:4], new_labels=same)
    np.testing.assert_array_equal(kept[:, ::3], 0.0)
    np.testing.assert_array_equal(kept[:, 1::3], got[:, 1::3])  # each row's edit alone
    if update_set != -1:  # the update set matters
        every = sk.LeafInfluence(model).fit(X, y, sample_weight=w)
        assert np.abs(got - every.label_edit(X[:4], y[:4], new_labels=new)).max() > 1e-4 * scale


def test_leaf_influence_label_edit_top_k_with_every_leaf_is_all_points():
    X, y = model_table.data("multiclass")
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1).fit(X, y)
    new = _new_labels("multiclass", y, np.random.default_rng(13))
    full = sk.LeafInfluence(model).fit(X, y).label_edit(X[:4], y[:4], new_labels=new)
    est = sk.LeafInfluence(model, update_set=64).fit(X, y)
    assert est.ensemble_.n_leaves.max() <= 64
    np.testing.assert_allclose(
        est.label_edit(X[:4], y[:4], new_labels=new), full, rtol=1e-10, atol=1e-14
    )


@pytest.mark.parametrize("update_set", [-1, 0, 2])
def test_leaf_influence_label_edit_keeps_the_fit_and_threads(update_set):
    """A label edit leaves the fitted explainer as it was (its transform and
    self-influence unchanged, bit for bit) and does not depend on the threads."""
    X, y = model_table.data("binary")
    model = lgb.LGBMClassifier(n_estimators=6, verbose=-1, n_jobs=1).fit(X, y)
    one = sk.LeafInfluence(model, update_set=update_set, n_jobs=1, block_size=7).fit(X, y)
    two = sk.LeafInfluence(model, update_set=update_set, n_jobs=2).fit(X, y)
    before = one.transform(X[:5], y[:5]), one.self_influence()
    edit = one.label_edit(X[:5], y[:5], new_labels=1 - y)
    np.testing.assert_array_equal(edit, two.label_edit(X[:5], y[:5], new_labels=1 - y))
    np.testing.assert_array_equal(one.transform(X[:5], y[:5]), before[0])
    np.testing.assert_array_equal(one.self_influence(), before[1])


def test_leaf_influence_label_edit_refusals():
    Xr, yr = model_table.data("regression")
    for model in (
        lgb.LGBMRegressor(n_estimators=5, objective="huber", verbose=-1, n_jobs=1).fit(Xr, yr),
        xgb.XGBRegressor(n_estimators=5, objective="reg:pseudohubererror", n_jobs=1).fit(Xr, yr),
    ):
        for u in (-1, 0, 2):
            est = sk.LeafInfluence(model, update_set=u).fit(Xr, yr)
            with pytest.raises(NotImplementedError, match="not linear in the label"):
                est.label_edit(Xr[:2], yr[:2], new_labels=yr)


@pytest.mark.parametrize("case", sorted(LEAF_INFLUENCE_CASES))
def test_leaf_refit_label_edit_is_the_relabelled_refit(case):
    """Exact: the fixed-structure refit with row i relabelled (every row updated)."""
    make, task = LEAF_INFLUENCE_CASES[case]
    X, y = model_table.data(task)
    est = sk.LeafRefit(make().fit(X, y)).fit(X, y)
    ens = est.ensemble_
    leaves = ens.leaf_ids(X)
    yy = y.astype(float)
    new = _new_labels(task, y, np.random.default_rng(3)).astype(float)
    if ens.label_dtype is not None:
        yy, new = (a.astype(ens.label_dtype).astype(float) for a in (yy, new))
    got = est.label_edit(X[:4], y[:4], new_labels=new)
    w = np.ones(len(y))
    before = oracles.loss(ens, yy[:4], oracles.scores(ens, ens.leaf_values, leaves[:4]))
    for i in (0, 5, 77):
        edited = yy.copy()
        edited[i] = new[i]
        after = oracles.scores(ens, oracles.refit(ens, leaves, edited, w), leaves[:4])
        expected = oracles.loss(ens, yy[:4], after) - before
        # the stored (float32) leaves differ from a float64 refit by ~1e-8
        np.testing.assert_allclose(got[:, i], expected, rtol=1e-5, atol=1e-6 * np.abs(got).max())
    np.testing.assert_array_equal(est.label_edit(X[:2], y[:2], new_labels=y), 0.0)


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_loo_label_edit_is_the_relabelled_retraining(task):
    from sklearn.base import clone
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    X, y = model_table.data(task)
    X, y = X[:40], y[:40]
    cls = GradientBoostingRegressor if task == "regression" else GradientBoostingClassifier
    model = cls(n_estimators=5, max_depth=2, random_state=0).fit(X, y)
    new = _new_labels(task, y, np.random.default_rng(4))
    new[::3] = y[::3]  # some rows keep their label
    got = sk.LOO(model).fit(X, y).label_edit(X[:3], y[:3], new_labels=new)

    def loss(m):
        if task == "regression":
            return 0.5 * (y[:3] - m.predict(X[:3])) ** 2
        return -np.log(np.clip(m.predict_proba(X[:3])[np.arange(3), y[:3]], 1e-5, 1 - 1e-5))

    for i in (0, 1, 7):
        edited = y.copy()
        edited[i] = new[i]
        expected = loss(clone(model).fit(X, edited)) - loss(model)
        np.testing.assert_allclose(got[:, i], expected, rtol=1e-10, atol=1e-12)


def test_targeted_edit_protocol_ranks_by_label_edit():
    """The paper's targeted-edit protocol relabels each query's top rows to its
    adversarial label; a method with a label-edit form ranks them by it."""
    from sklearn.ensemble import GradientBoostingClassifier

    from skinfluence.evaluation import single_query_curve

    X, y = model_table.data("binary")
    model = GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0)
    Xt, yt, Xq, yq = X[:120], y[:120], X[120:123], y[120:123]
    res = single_query_curve(model, Xt, yt, Xq, yq, sk.BoostIn(), edit="targeted")
    assert res.attrs["ranked_by"] == "label_edit"
    # the rows edited first are those whose relabelling raises the query's loss most
    from skinfluence.evaluation._single import _label_edit_rankings

    fitted = model.fit(Xt, yt)
    exp = sk.BoostIn(fitted).fit(Xt, yt)
    adv = 1 - yq
    R = _label_edit_rankings(exp, fitted, Xt, yt, Xq, yq, adv)
    for e in range(3):
        change = exp.label_edit(Xq[e : e + 1], yq[e : e + 1], new_labels=adv[e])[0]
        np.testing.assert_array_equal(R[e], np.argsort(-change, kind="stable"))
    for method, ranked_by in [
        (sk.TREX(), "label_edit"),
        (sk.LeafSim(), "label_edit"),
        (sk.RandomInfluence(), "removal"),
    ]:
        res = single_query_curve(model, Xt, yt, Xq, yq, method, edit="targeted")
        assert res.attrs["ranked_by"] == ranked_by


def test_each_class_stacks_the_single_label_edits():
    X, y = model_table.data("multiclass")
    est = sk.BoostIn(lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)).fit(X, y)
    each = est.label_edit(X[:3], y[:3], new_labels="each")
    assert each.shape == (3, len(y), 3)
    for c in range(3):
        np.testing.assert_array_equal(each[:, :, c], est.label_edit(X[:3], y[:3], new_labels=c))
        np.testing.assert_array_equal(each[:, y == c, c], 0.0)
    Xr, yr = model_table.data("regression")
    reg = sk.BoostIn(lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(Xr, yr)).fit(Xr, yr)
    with pytest.raises(ValueError, match="needs a classifier"):
        reg.label_edit(Xr[:2], yr[:2], new_labels="each")


def _gb(task, n=40):
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    X, y = model_table.data(task)
    cls = GradientBoostingRegressor if task == "regression" else GradientBoostingClassifier
    return X[:n], y[:n], cls(n_estimators=5, max_depth=2, random_state=0)


def _query_loss(task, model, Xq, yq):
    if task == "regression":
        return 0.5 * (yq - model.predict(Xq)) ** 2
    p = model.predict_proba(Xq)[np.arange(len(yq)), yq]
    return -np.log(np.clip(p, 1e-5, 1 - 1e-5))


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_subsample_label_edit_replays_relabelled_subsets(task):
    """Each subset refit with its edited rows relabelled (probability relabel_frac,
    seeded), against the subset with its labels: per row, the mean change where it was
    relabelled minus the mean where it kept its label. Replayed with clone().fit."""
    from sklearn.base import clone

    X, y, template = _gb(task)
    model = clone(template).fit(X, y)
    new = _new_labels(task, y, np.random.default_rng(6))
    new[::4] = y[::4]
    est = sk.SubSample(model, n_iter=10, sub_frac=0.6, relabel_frac=0.4, random_state=3)
    with pytest.warns(UserWarning, match="never in, or never out"):  # 10 subsets
        est.fit(X, y)
    with pytest.warns(UserWarning, match="never relabelled"):  # 10 subsets: some rows
        got = est.label_edit(X[:3], y[:3], new_labels=new)
    n, edited = len(y), new != y
    D, moved, inside = [], [], []
    for t in range(10):
        rows = np.sort(np.random.default_rng(3 + t).choice(n, 24, replace=False))
        relabel = np.zeros(n, bool)
        relabel[rows] = (np.random.default_rng([3 + t, 2]).random(n)[rows] < 0.4) & edited[rows]
        y_t = np.where(relabel, new, y)
        after = _query_loss(task, clone(template).fit(X[rows], y_t[rows]), X[:3], y[:3])
        before = _query_loss(task, clone(template).fit(X[rows], y[rows]), X[:3], y[:3])
        D.append(after - before)
        moved.append(relabel)
        inside.append(np.isin(np.arange(n), rows) & ~relabel & edited)
    D, moved, inside = np.array(D), np.array(moved), np.array(inside)
    for i in range(n):
        if not edited[i] or not moved[:, i].any() or not inside[:, i].any():
            np.testing.assert_array_equal(got[:, i], 0.0)
            continue
        expected = D[moved[:, i]].mean(axis=0) - D[inside[:, i]].mean(axis=0)
        np.testing.assert_allclose(got[:, i], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_data_shapley_label_edit_is_the_difference_of_shapley_values(task):
    """Along the same permutations: relabelling row i changes the query's loss by its
    Shapley value with its label minus its value with the new label (the other rows'
    labels fixed), i.e. DataShapley on the original rows minus DataShapley on the rows
    with i relabelled, column i (both computed by clone().fit refits)."""
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning

    X, y, template = _gb(task, n=24)
    model = clone(template).fit(X, y)
    new = _new_labels(task, y, np.random.default_rng(7))
    kw = {"trunc_frac": 0.5, "check_every": 4, "max_iter": 4, "random_state": 2}
    kw["keep_models"] = False
    with pytest.warns(ConvergenceWarning):  # 4 permutations do not converge
        est = sk.DataShapley(model, **kw).fit(X, y)
    got = est.label_edit(X[:3], y[:3], new_labels=new)
    base = est.transform(X[:3], y[:3])
    for i in (0, 3, 11):
        edited = y.copy()
        edited[i] = new[i]
        with pytest.warns(ConvergenceWarning):
            other = sk.DataShapley(clone(template).fit(X, edited), **kw).fit(X, edited)
        expected = base[:, i] - other.transform(X[:3], y[:3])[:, i]
        np.testing.assert_allclose(got[:, i], expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(est.label_edit(X[:2], y[:2], new_labels=y), 0.0)


# ------------------------------------------------------- CatBoost: steps and K x K
cb = pytest.importorskip("catboost")
CB = {"random_seed": 0, "verbose": 0, "thread_count": 1, "iterations": 5, "depth": 2}
CB["allow_writing_files"] = False
CATBOOST_CASES = {
    "logloss-newton-steps-weighted": ("binary", {"leaf_estimation_iterations": 10}, True),
    "logloss-gradient-steps": (
        "binary",
        {"leaf_estimation_method": "Gradient", "leaf_estimation_iterations": 4},
        False,
    ),
    "rmse-newton-steps": ("regression", {"leaf_estimation_iterations": 3}, False),
    "multiclass-full-hessian": ("multiclass", {"loss_function": "MultiClass"}, True),
}


@pytest.fixture(scope="module", params=sorted(CATBOOST_CASES))
def catboost_case(request):
    task, params, weighted = CATBOOST_CASES[request.param]
    X, y = model_table.data(task)
    X, y = X[:90], y[:90]
    w = None
    if weighted:  # CatBoost holds weights in float32
        w = np.random.default_rng(8).uniform(0.5, 2.0, len(y)).astype(np.float32).astype(float)
    cls = cb.CatBoostRegressor if task == "regression" else cb.CatBoostClassifier
    model = cls(learning_rate=0.3, **CB, **params).fit(X, y, sample_weight=w)
    new = _new_labels(task, y, np.random.default_rng(9))
    return task, model, X, y, w, new


def _relabelled_leaves(ens, leaves, y, new, w, i, b, F, scales):
    """The K leaf values of row ``i`` in round ``b``, recomputed by the model's rule
    (kept steps and scales, or the K x K Newton system) at the stored scores ``F``
    before the round, with labels ``y`` and with row ``i`` relabelled: (before, after)."""
    K = ens.n_outputs
    out = []
    for labels in (y, np.where(np.arange(len(y)) == i, new, y)):
        if K > 1:
            vals = ens.leaf_values.copy()
            oracles._multiclass_round(ens, leaves, np.eye(K)[labels.astype(int)], w, F, b, vals)
            out.append(vals[ens.flat_leaves(leaves[i : i + 1])[0, b * K : (b + 1) * K]])
        else:
            sc = None if scales is None else scales[b]
            v = oracles.tree_values(ens, leaves[:, b], labels, w, F[:, 0], b, sc)
            out.append(v[leaves[i, b]])
    return out


def test_boostin_label_edit_on_catboost_leaves(catboost_case):
    """Leaves of several (backtracked) Newton or gradient steps, and K x K Newton
    leaves: equal to each relabelled leaf recomputed by the model's rule in numpy."""
    task, model, X, y, w, new = catboost_case
    est = sk.BoostIn(model).fit(X, y, sample_weight=w)
    ens = est.ensemble_
    leaves = ens.leaf_ids(X)
    yy, nn = (a.astype(np.float32).astype(float) for a in (y, new))
    ww = np.ones(len(y)) if w is None else w
    got = est.label_edit(X[:4], y[:4], new_labels=new)
    scales = oracles.kept_scales(ens, leaves, yy, ww) if ens.n_outputs == 1 else None
    K = ens.n_outputs
    stored = ens.leaf_values[ens.flat_leaves(leaves)]
    for i in (0, 5, 77):
        expected = np.zeros(4)
        for b in range(ens.n_rounds):
            F = ens.bias + stored[:, : b * K].reshape(len(y), b, K).sum(axis=1)
            if ens.constant_tree[b * K]:
                continue
            before, after = _relabelled_leaves(ens, leaves, yy, nn, ww, i, b, F, scales)
            same = leaves[:4, b * K] == leaves[i, b * K]
            gq = _gradients(ens, yy[:4], F[:4])
            expected += same * (gq * np.atleast_1d(after - before)).sum(axis=1)
        # float64 recomputations of the same rule on both sides
        np.testing.assert_allclose(got[:, i], expected, rtol=1e-9, atol=1e-12)


def test_leaf_refit_label_edit_on_catboost_leaves(catboost_case):
    """The fixed-structure refit with the row relabelled, every leaf recomputed by the
    model's rule (kept steps and scales, or the K x K system) in numpy."""
    task, model, X, y, w, new = catboost_case
    est = sk.LeafRefit(model).fit(X, y, sample_weight=w)
    ens = est.ensemble_
    leaves = ens.leaf_ids(X)
    yy, nn = (a.astype(np.float32).astype(float) for a in (y, new))
    ww = np.ones(len(y)) if w is None else w
    got = est.label_edit(X[:4], y[:4], new_labels=new)
    scales = oracles.kept_scales(ens, leaves, yy, ww) if ens.n_outputs == 1 else None
    before = oracles.loss(ens, yy[:4], oracles.scores(ens, ens.leaf_values, leaves[:4]))
    for i in (0, 5, 77):
        edited = np.where(np.arange(len(y)) == i, nn, yy)
        values = oracles.refit(ens, leaves, edited, ww, scales)
        expected = oracles.loss(ens, yy[:4], oracles.scores(ens, values, leaves[:4])) - before
        # the stored (float32) leaves differ from a float64 refit by ~1e-8
        np.testing.assert_allclose(got[:, i], expected, rtol=1e-5, atol=1e-6 * np.abs(got).max())


SIMILARITY_CASES = {
    "leafsim-binary": (lambda: sk.LeafSim(), "binary", True),
    "treesim-multiclass-cosine": (lambda: sk.TreeSim(measure="cosine"), "multiclass", True),
    "treesim-regression": (lambda: sk.TreeSim(kernel="fpw"), "regression", True),
    "inputsim-regression-unlabelled": (lambda: sk.InputSim(), "regression", False),
}


@pytest.mark.parametrize("case", sorted(SIMILARITY_CASES))
def test_similarity_label_edit_is_the_signed_similarity_change(case):
    """sim(i, e) (s(y_i) - s(y*_i)): the row's influence minus the influence the same
    method gives the row relabelled (an explainer fit on the relabelled rows)."""
    make, task, labelled = SIMILARITY_CASES[case]
    X, y = model_table.data(task)
    model = (lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier)(
        n_estimators=5, verbose=-1
    ).fit(X, y)
    new = _new_labels(task, y, np.random.default_rng(10))
    est = make().set_params(estimator=model).fit(X, y)
    yq = y[:4] if labelled else None
    got = est.label_edit(X[:4], yq, new_labels=new)
    base = est.transform(X[:4], yq)
    # X[3] is a training row: InputSim's zero distance, clipped to the zero-distance value
    for i in (0, 3, 5, 77):
        edited = np.where(np.arange(len(y)) == i, new, y)
        with sk.config_context(check_training_rows="warn"):
            other = make().set_params(estimator=model).fit(X, edited)
        with np.errstate(over="ignore"):
            expected = base[:, i] - other.transform(X[:4], yq)[:, i]
        big = np.finfo(float).max * 2.0**-32  # the zero-distance value
        expected = np.clip(expected, -big, big)
        np.testing.assert_array_equal(got[:, i], expected)
    np.testing.assert_array_equal(est.label_edit(X[:2], None, new_labels=y), 0.0)


def test_baselines_say_why_they_have_no_label_edit():
    X, y = model_table.data("binary")
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    for cls in (sk.RandomInfluence, sk.TargetInfluence, sk.MinorityInfluence):
        with pytest.raises(NotImplementedError, match="random ranking baseline"):
            cls(model).fit(X, y).label_edit(X[:2], y[:2], new_labels=1 - y)
    with pytest.raises(NotImplementedError, match="LossInfluence has no local influence"):
        sk.LossInfluence(model).fit(X, y).label_edit(X[:2], y[:2], new_labels=1 - y)


@pytest.mark.parametrize(
    "make",
    [
        lambda: lgb.LGBMRegressor(n_estimators=8, boost_from_average=False, verbose=-1),
        lambda: xgb.XGBRegressor(n_estimators=8, max_depth=3, base_score=0.0),
    ],
    ids=["lightgbm", "xgboost"],
)
def test_axil_label_edit_is_the_relabelled_refit(make):
    """The prediction is linear in the targets: relabelling moves it by
    k_i(x) (y*_i - y_i), the fixed-structure refit with the row relabelled (a model
    whose initial score does not depend on the targets)."""
    X, y = model_table.data("regression")
    est = sk.AXIL(make().fit(X, y)).fit(X, y)
    ens = est.ensemble_
    leaves = ens.leaf_ids(X)
    yy = y.astype(np.float32).astype(float)
    new = _new_labels("regression", y, np.random.default_rng(11)).astype(np.float32)
    got = est.label_edit(X[:4], y[:4], new_labels=new)
    free = est.label_edit(X[:4], None, new_labels=new)
    w = np.ones(len(y))
    before = oracles.scores(ens, ens.leaf_values, leaves[:4])
    for i in (0, 5, 77):
        edited = yy.copy()
        edited[i] = new[i]
        after = oracles.scores(ens, oracles.refit(ens, leaves, edited, w), leaves[:4])
        expected = oracles.loss(ens, yy[:4], after) - oracles.loss(ens, yy[:4], before)
        # float32 stored leaves against a float64 refit: ~1e-7 of the prediction
        np.testing.assert_allclose(got[:, i], expected, rtol=1e-4, atol=1e-5 * np.abs(got).max())
        np.testing.assert_allclose(free[:, i], before - after, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("update_set", [-1, 0, 2])
def test_leaf_influence_label_edit_on_catboost_leaves(catboost_case, update_set):
    """Leaves of several (backtracked) Newton or gradient steps and K x K Newton leaves,
    every update set: the derivative of the update set's refit, each leaf recomputed by
    the model's rule (the kept steps and their scales, or the K x K system), by central
    differences as for the per-column models (measured at most 1.1e-10 of the largest
    value)."""
    task, model, X, y, w, new = catboost_case
    est = sk.LeafInfluence(model, update_set=update_set).fit(X, y, sample_weight=w)
    got = est.label_edit(X[:4], y[:4], new_labels=new)
    scale = np.abs(got).max()
    assert scale > 1e-3
    for i, want in _leaf_influence_edit_oracle(est, X, y, w, new, (0, 5, 77), update_set).items():
        np.testing.assert_allclose(got[:, i], want, rtol=1e-6, atol=1e-8 * scale)
