"""Retraining methods (LOO, SubSample, DataShapley) against brute-force oracles."""

import itertools
import math
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator

from skinfluence._retrain import LOO, DataShapley, SubSample, _fit_rows

from .models import make_data, make_model

CLIP = 1e-5


def _gbr(**kw):
    return GradientBoostingRegressor(n_estimators=3, max_depth=2, random_state=0, **kw)


def _sq(model, X, y):
    return 0.5 * (y - model.predict(X)) ** 2


def _logloss(model, X, y):
    p = model.predict_proba(X)[np.arange(len(y)), np.searchsorted(model.classes_, y)]
    return -np.log(np.clip(p, CLIP, 1 - CLIP))


def _brute_force_loo(model, X, y, Xq, yq, loss):
    """I(i, e) = loss of the refit without i - loss of the model, written plainly."""
    base = loss(model, Xq, yq)
    out = np.empty((len(Xq), len(X)))
    for i in range(len(X)):
        keep = np.delete(np.arange(len(X)), i)
        refit = clone(model).fit(X[keep], y[keep])
        out[:, i] = loss(refit, Xq, yq) - base
    return out


# ---------------------------------------------------------------------------- LOO
@pytest.mark.parametrize("kind", ["regression", "binary", "forest"])
def test_loo_equals_brute_force(kind):
    if kind == "regression":
        X, y = make_data("squared_error", n=24, seed=0)
        model, loss = _gbr().fit(X, y), _sq
    else:
        X, y = make_data("binary", n=24, seed=0)
        cls = GradientBoostingClassifier if kind == "binary" else RandomForestClassifier
        model = cls(n_estimators=3, max_depth=2, random_state=0).fit(X, y)
        loss = _logloss
    Xq, yq = X[:4] + 0.1, y[:4]
    expected = _brute_force_loo(model, X, y, Xq, yq, loss)
    exp = LOO(model).fit(X, y)
    assert exp.models_ is not None and len(exp.models_) == len(X)
    np.testing.assert_allclose(exp.transform(Xq, yq), expected, rtol=0, atol=1e-12)
    self_expected = np.diag(_brute_force_loo(model, X, y, X, y, loss))
    np.testing.assert_allclose(exp.self_influence(), self_expected, rtol=0, atol=1e-12)
    # refitting per call instead of keeping the models gives the same numbers
    lazy = LOO(model, keep_models=False).fit(X, y)
    assert lazy.models_ is None
    np.testing.assert_array_equal(lazy.transform(Xq, yq), exp.transform(Xq, yq))
    np.testing.assert_allclose(lazy.global_influence(Xq, yq), expected.sum(axis=0), atol=1e-12)
    np.testing.assert_allclose(exp.global_influence(Xq, yq), expected.sum(axis=0), atol=1e-12)
    idx, val = exp.top_k(Xq, yq, k=3)
    np.testing.assert_allclose(val, -np.sort(-expected, axis=1)[:, :3], atol=1e-12)


def test_loo_label_free_regression_is_prediction_change():
    X, y = make_data("squared_error", n=16, seed=3)
    model = _gbr().fit(X, y)
    exp = LOO(model).fit(X, y)
    pred = lambda m, Xe, _y: -m.predict(Xe)  # noqa: E731  (loss psi(F) = -F)
    expected = _brute_force_loo(model, X, y, X[:3], y[:3], pred)
    np.testing.assert_allclose(exp.transform(X[:3]), expected, atol=1e-12)


def test_loo_frozen_and_pipeline_models_are_refit():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_data("squared_error", n=16, seed=4)
    model = _gbr().fit(X, y)
    direct = LOO(model).fit(X, y).transform(X[:3], y[:3])
    frozen = LOO(FrozenEstimator(model)).fit(X, y).transform(X[:3], y[:3])
    np.testing.assert_array_equal(frozen, direct)
    pipe = make_pipeline(StandardScaler(), _gbr()).fit(X, y)
    expected = _brute_force_loo(pipe, X, y, X[:3], y[:3], _sq)
    np.testing.assert_allclose(LOO(pipe).fit(X, y).transform(X[:3], y[:3]), expected, atol=1e-12)


def test_failing_refit_names_the_row_and_booster_is_refused():
    X, y = make_data("binary", n=12, seed=0)
    y = np.zeros(12, dtype=int)
    y[5] = 1  # removing row 5 leaves one class: the refit fails
    model = GradientBoostingClassifier(n_estimators=2, random_state=0).fit(X, y)
    with pytest.raises(RuntimeError, match="without training row 5 failed"):
        LOO(model).fit(X, y)
    lgb = pytest.importorskip("lightgbm")
    Xr, yr = make_data("squared_error", n=40, seed=0)
    booster = make_model("lightgbm", "squared_error").fit(Xr, yr).booster_
    with pytest.raises(TypeError, match="scikit-learn wrapper"):
        LOO(booster).fit(Xr, yr)
    # the refit template runs on one thread; the explained model is not touched
    wrapped = lgb.LGBMRegressor(n_estimators=3, n_jobs=2, verbose=-1).fit(Xr, yr)
    exp = SubSample(wrapped, n_iter=2).fit(Xr, yr)
    assert exp.models_[0].get_params()["n_jobs"] == 1
    assert wrapped.get_params()["n_jobs"] == 2


# ---------------------------------------------------------------------- SubSample
def test_subsample_is_unbiased_against_closed_form():
    # a model that predicts the mean label of its subset: without query labels
    # (influence on the prediction) E[I(i)] = (y_i - mean(y_{-i})) / k exactly
    # (learning rate 0: the boosting model is its initial prediction, the mean label)
    n, k, n_iter = 10, 5, 200
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 2))
    y = rng.normal(size=n) * 3
    model = GradientBoostingRegressor(
        n_estimators=1, learning_rate=0.0, max_depth=1, random_state=0
    ).fit(X, y)
    exp = SubSample(model, n_iter=n_iter, sub_frac=k / n, random_state=0).fit(X, y)
    got = exp.transform(X[:1])[0]
    mean_others = (y.sum() - y) / (n - 1)
    closed = (y - mean_others) / k
    # the same estimator with the closed-form predictions: its spread over many draws
    sims = []
    for rep in range(400):
        r = np.random.default_rng(10_000 + rep)
        masks = np.zeros((n_iter, n), dtype=bool)
        for t in range(n_iter):
            masks[t, r.choice(n, k, replace=False)] = True
        F = masks @ y / k
        cin, cout = masks.sum(0), n_iter - masks.sum(0)
        sims.append((masks * F[:, None]).sum(0) / cin - (~masks * F[:, None]).sum(0) / cout)
    sims = np.array(sims)
    np.testing.assert_allclose(
        sims.mean(axis=0), closed, atol=4 * sims.std(axis=0).max() / math.sqrt(len(sims))
    )  # the estimator is unbiased
    assert np.all(np.abs(got - closed) <= 4 * sims.std(axis=0))  # and ours is that one
    # ours is exactly the in/out means over its own subsets, written plainly
    F = np.array([m.predict(X[:1])[0] for m in exp.models_])
    S = exp.subset_masks_
    plain = [F[S[:, i]].mean() - F[~S[:, i]].mean() for i in range(n)]
    np.testing.assert_allclose(got, plain, atol=1e-12)
    assert np.all(S.sum(axis=1) == k)


def test_subsample_failed_fits_are_skipped_and_counted():
    X, _ = make_data("binary", n=10, seed=0)
    y = np.array([0, 0, 0, 1, 0, 0, 1, 0, 0, 0])
    model = GradientBoostingClassifier(n_estimators=2, max_depth=1, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="refits failed and were skipped"):
        exp = SubSample(model, n_iter=30, sub_frac=0.3, random_state=0).fit(X, y)
    assert 0 < exp.n_failed_fits_ < 30
    assert len(exp.failed_iterations_) == exp.n_failed_fits_
    assert exp.subset_masks_.shape == (30 - exp.n_failed_fits_, 10)
    M = exp.transform(X[:3], y[:3])
    assert np.all(np.isfinite(M)) and np.all(np.isfinite(exp.self_influence()))
    np.testing.assert_allclose(np.diag(exp.transform(X, y)), exp.self_influence(), atol=1e-12)
    lazy = SubSample(model, n_iter=30, sub_frac=0.3, random_state=0, keep_models=False)
    with pytest.warns(UserWarning, match="refits failed"):
        lazy.fit(X, y)
    np.testing.assert_allclose(lazy.transform(X[:3], y[:3]), M, atol=1e-12)


# -------------------------------------------------------------------- DataShapley
def _exact_shapley(model, X, y, Xq, yq):
    """Shapley values by enumerating every subset, with the TMC utility conventions:
    U(S) = -loss of the refit on S, and the uninformed loss 0 while |S| < 2."""
    n = len(X)
    U = {}
    for r in range(n + 1):
        for S in itertools.combinations(range(n), r):
            rows = list(S)
            U[S] = np.zeros(len(Xq)) if r < 2 else -_sq(clone(model).fit(X[rows], y[rows]), Xq, yq)
    phi = np.zeros((len(Xq), n))
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for r in range(n):
            w = math.factorial(r) * math.factorial(n - r - 1) / math.factorial(n)
            for S in itertools.combinations(others, r):
                phi[:, i] += w * (U[tuple(sorted((*S, i)))] - U[S])
    return phi, U[tuple(range(n))]


def test_tmc_converges_to_exact_shapley_and_is_efficient():
    X, y = make_data("squared_error", n=6, seed=5)
    model = GradientBoostingRegressor(n_estimators=2, max_depth=1, random_state=0).fit(X, y)
    Xq, yq = X[:2] + 0.05, y[:2]
    exact, u_all = _exact_shapley(model, X, y, Xq, yq)
    # efficiency of the exact values: U(all) - U(none)
    np.testing.assert_allclose(exact.sum(axis=1), u_all - 0.0, atol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        exp = DataShapley(
            model, trunc_frac=1.0, check_every=75, max_iter=150, tol=1e-9, random_state=0
        ).fit(X, y)
    assert exp.n_permutations_ == 150 and not exp.converged_
    values, stderr = exp.transform_with_stderr(Xq, yq)
    assert np.all(stderr > 0) and np.all(np.isfinite(stderr))
    assert np.all(np.abs(values - exact) <= 4 * stderr + 1e-12)
    assert np.abs(values - exact).max() < 0.2 * np.abs(exact).max()
    # TMC efficiency: with trunc_frac=1 every permutation telescopes exactly
    full = clone(model).fit(X, y)
    np.testing.assert_allclose(values.sum(axis=1), 0.0 - _sq(full, Xq, yq), atol=1e-10)
    assert exp.stderr_.shape == (6,) and np.all(np.isfinite(exp.stderr_))


def test_tmc_truncation_validity_and_convergence_rule():
    X, y = make_data("binary", n=12, seed=2)
    model = GradientBoostingClassifier(n_estimators=2, max_depth=1, random_state=0).fit(X, y)
    params = {"trunc_frac": 0.5, "check_every": 5, "max_iter": 40, "tol": 0.5, "random_state": 3}
    exp = DataShapley(model, **params).fit(X, y)
    assert exp.converged_ and exp.convergence_error_ < 0.5
    assert exp.n_permutations_ % 5 == 0 and exp.n_permutations_ <= 40
    M, se = exp.transform_with_stderr(X[:3], y[:3])
    np.testing.assert_array_equal(exp.transform(X[:3], y[:3]), M)
    assert np.all(np.isfinite(M)) and np.all(np.isfinite(se))
    np.testing.assert_allclose(exp.global_influence(X[:3], y[:3]), M.sum(axis=0), atol=1e-12)
    np.testing.assert_allclose(np.diag(exp.transform(X, y)), exp.self_influence(), atol=1e-12)
    # keep_models=False refits the same permutations: same numbers
    lazy = DataShapley(model, **params, keep_models=False).fit(X, y)
    assert lazy.models_ is None and lazy.n_permutations_ == exp.n_permutations_
    np.testing.assert_array_equal(lazy.transform(X[:3], y[:3]), M)
    # each permutation: rows before the prefix has both classes get 0, the rest of
    # the first half is fitted, the second half is truncated (0)
    for t, models in enumerate(exp.models_):
        perm = np.random.default_rng(3 + t).permutation(12)[:6]
        first_valid = next(k for k in range(1, 7) if len(set(y[perm[:k]])) == 2)
        assert [m is None for m in models] == [k < first_valid for k in range(1, 7)]


def test_tmc_prefix_with_one_target_is_the_constant_model():
    # CatBoost refuses to fit rows whose targets are all equal; such a prefix is the
    # model that predicts that target (what any regressor fitted on it predicts)
    X, y = make_data("squared_error", n=12, seed=4)
    y = (y > np.median(y)).astype(np.float64) * 2.0 + 1.0  # two target values, 1 and 3
    model = make_model("catboost", "squared_error", n_estimators=3).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        exp = DataShapley(model, trunc_frac=1.0, check_every=6, max_iter=6, random_state=0)
        exp.fit(X, y)
    constant = 0
    for t, models in enumerate(exp.models_):
        perm = np.random.default_rng(t).permutation(12)
        for k, m in enumerate(models, start=1):
            targets = set(y[perm[:k]].tolist())
            if k >= 2 and len(targets) == 1:
                constant += 1
                np.testing.assert_array_equal(m.predict(X[:3]), y[perm[0]])
            elif k >= 2:
                assert type(m) is type(model)
    assert constant > 0
    M = exp.transform(X[:3], y[:3])
    # TMC efficiency (no truncation): each permutation telescopes to U(all) - U(none)
    full = clone(model).fit(X, y)
    np.testing.assert_allclose(M.sum(axis=1), -_sq(full, X[:3], y[:3]), atol=1e-9)
    # a failure on rows with several targets is still an error
    with pytest.raises(Exception):
        _fit_rows(model, X[:, :0], y, None, np.arange(12), {"objective": "squared_error"})


# ------------------------------------------------------------ parallel / distributed
def _three(model):
    return [
        LOO(model, keep_models=False),
        SubSample(model, n_iter=12, sub_frac=0.5, keep_models=False),
        DataShapley(model, trunc_frac=0.5, check_every=4, max_iter=4, keep_models=False),
    ]


def _results(est, X, y, Xq, yq):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return est.transform(Xq, yq), est.self_influence(), est.global_influence(Xq, yq)


@pytest.fixture(scope="module")
def small_problem():
    X, y = make_data("binary", n=16, seed=7)
    model = GradientBoostingClassifier(n_estimators=3, max_depth=2, random_state=0).fit(X, y)
    seq = [_results(e, X, y, X[:3], y[:3]) for e in _three(model)]
    return X, y, model, seq


def test_n_jobs_2_equals_sequential(small_problem):
    X, y, model, seq = small_problem
    for est, ref in zip(_three(model), seq):
        got = _results(est.set_params(n_jobs=2), X, y, X[:3], y[:3])
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b)


def test_dask_local_cluster_equals_sequential(small_problem):
    pytest.importorskip("distributed")
    import joblib
    from distributed import Client, LocalCluster

    X, y, model, seq = small_problem
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        assert len(client.scheduler_info()["workers"]) == 2
        with joblib.parallel_config(backend="dask"):
            for est, ref in zip(_three(model), seq):
                got = _results(est, X, y, X[:3], y[:3])
                for a, b in zip(got, ref):
                    np.testing.assert_array_equal(a, b)


def test_progress_bar(small_problem, capsys):
    pytest.importorskip("tqdm")
    X, y, model, seq = small_problem
    got = _results(LOO(model, keep_models=False, verbose=1), X, y, X[:3], y[:3])
    np.testing.assert_array_equal(got[0], seq[0][0])
    assert "LOO refits" in capsys.readouterr().err
