"""Tiny models of every supported library and the data the tests train them on.

The models come from the shared factory :func:`skinfluence.testing.make_model`; a test
of a library that is not installed is skipped.
"""

import numpy as np
import pytest

from skinfluence.testing import make_model as _make_model

LIBRARIES = ("sklearn_gb", "sklearn_hgb", "lightgbm", "xgboost", "catboost")
OBJECTIVES = ("squared_error", "binary", "multiclass")

# each library's tree shape in the tests: about eight leaves, some L2 regularization
_TINY = {
    "sklearn_gb": {"max_depth": 3},
    "sklearn_hgb": {"max_leaf_nodes": 8, "l2_regularization": 0.5},
    "lightgbm": {"num_leaves": 8, "min_child_samples": 5, "reg_lambda": 0.5},
    "xgboost": {"max_depth": 3, "reg_lambda": 0.5},
    "catboost": {"depth": 3},
}


def make_data(objective, n=120, d=4, seed=0, n_classes=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    z = X[:, 0] + 0.5 * X[:, 1] ** 2 - X[:, 2] + 0.3 * rng.normal(size=n)
    if objective == "squared_error":
        y = 3 * z + 1
    elif objective == "binary":
        y = (z > np.median(z)).astype(int)
    else:
        y = np.digitize(z, np.quantile(z, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y


def make_model(lib, objective, n_estimators=8, learning_rate=0.3, **extra):
    """An unfitted model of ``lib`` for ``objective`` whose leaves are Newton steps."""
    if lib not in _TINY:
        raise ValueError(lib)
    if not lib.startswith("sklearn"):
        pytest.importorskip(lib)
    task = "regression" if objective == "squared_error" else objective
    return _make_model(
        lib,
        task,
        n_estimators=n_estimators,
        learning_rate=learning_rate,
        **{**_TINY[lib], **extra},
    )


def hgb_classifier(max_iter=10, **params):
    """A HistGradientBoostingClassifier of scikit-learn's default shape."""
    return _make_model("sklearn_hgb", "binary", n_estimators=max_iter, learning_rate=None, **params)


def hgb_regressor(max_iter=30, **params):
    """A HistGradientBoostingRegressor of scikit-learn's default shape."""
    return _make_model(
        "sklearn_hgb", "regression", n_estimators=max_iter, learning_rate=None, **params
    )


def gradient_cases():
    """(library, objective) pairs whose leaves a gradient method can model."""
    return [
        (lib, obj)
        for lib in LIBRARIES
        for obj in OBJECTIVES
        if not (lib == "catboost" and obj == "multiclass")
    ]
