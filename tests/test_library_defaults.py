"""Models as users train them, with the libraries' defaults: BoostIn, LeafInfluence,
LeafRefit and TREX work out of the box and are exact against the brute-force oracles
of :mod:`tests.oracles`."""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

import skinfluence as sk
from skinfluence._adapters import to_ensemble

from . import oracles

cb = pytest.importorskip("catboost")


def _breast_cancer(n=100):
    X, y = load_breast_cancer(return_X_y=True)
    return X[:n], y[:n].astype(float)


def _diabetes(n=100):
    X, y = load_diabetes(return_X_y=True)
    return X[:n], y[:n]


DEFAULT_MODELS = {
    # 1000 trees of depth 6; on 30 features CatBoost chooses 10 Newton steps per leaf,
    # with backtracking, and MVS bootstrap for the structure
    "CatBoostClassifier()": (
        lambda: cb.CatBoostClassifier(verbose=0, random_seed=0),
        _breast_cancer,
    ),
    "CatBoostRegressor()": (lambda: cb.CatBoostRegressor(verbose=0, random_seed=0), _diabetes),
}


@pytest.fixture(scope="module", params=sorted(DEFAULT_MODELS))
def default_model(request):
    make, data = DEFAULT_MODELS[request.param]
    X, y = data()
    model = make().fit(X, y)
    ens = to_ensemble(model)
    leaves = ens.leaf_ids(X)
    w = np.ones(len(y))
    y = y.astype(np.float32).astype(np.float64)  # CatBoost holds labels in float32
    return model, ens, X, y, leaves, w, oracles.kept_scales(ens, leaves, y, w)


def test_leaf_check_passes(default_model):
    _, ens, _, y, leaves, w, _ = default_model
    assert ens.check_leaf_model(leaves, y, w) == 0.0


def test_leaf_influence_is_exact(default_model):
    model, ens, X, y, leaves, w, scales = default_model
    got = sk.LeafInfluence(model).fit(X, y).transform(X[:3], y[:3])
    scale = np.abs(got).max()
    for i in (0, 41):
        fd = oracles.finite_difference(ens, leaves, y, w, i, leaves[:3], y[:3], scales)
        np.testing.assert_allclose(got[:, i], fd, atol=2e-6 * scale, rtol=1e-4)


def test_leaf_refit_is_exact(default_model):
    model, ens, X, y, leaves, w, scales = default_model
    got = sk.LeafRefit(model).fit(X, y).transform(X[:3], y[:3])
    for i in (0, 41):
        oracle = oracles.removal(ens, leaves, y, w, i, leaves[:3], y[:3], scales)
        np.testing.assert_allclose(got[:, i], oracle, rtol=1e-6, atol=1e-9 * np.abs(got).max())


@pytest.mark.parametrize("method", [sk.BoostIn, sk.TREX])
def test_other_methods_run(default_model, method):
    model, _, X, y, *_ = default_model
    est = method(model).fit(X, y)
    values = est.transform(X[:3], y[:3])
    assert values.shape == (3, len(y)) and np.isfinite(values).all()
    assert np.isfinite(est.self_influence()).all()
