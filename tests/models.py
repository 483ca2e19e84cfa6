"""Tiny models of every supported library and the data the tests train them on.

The models come from the shared factory :func:`skinfluence.testing.make_model`; a test
of a library that is not installed is skipped.
"""

import pytest

from skinfluence.testing import make_data as _make_data
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
    """:func:`skinfluence.testing.make_data` named by objective (``"squared_error"``)."""
    task = "regression" if objective == "squared_error" else objective
    return _make_data(task, n=n, d=d, seed=seed, n_classes=n_classes)


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


def xgboost_task(objective):
    """The task an XGBoost objective string names before its colon (``reg``, ``binary``,
    ``multi``); any other objective (``"count:poisson"``) counts as binary, as the
    tests give it to the classifier wrapper."""
    return {"reg": "regression", "multi": "multiclass"}.get(objective.split(":")[0], "binary")


def adapter_model(lib, task, **params):
    """An unfitted single-threaded model of ``lib`` from the shared factory for the
    adapter tests, which give the hyperparameters they vary in the library's own names:
    the library's own learning rate and seed unless given.

    ``task`` is ``"regression"``, ``"binary"``, ``"multiclass"`` or, for XGBoost, an
    objective string such as ``"binary:logitraw"`` (passed on as ``objective``).
    """
    if ":" in task:
        params["objective"] = task
        task = xgboost_task(task)
    return _make_model(lib, task, **{"learning_rate": None, "random_state": None, **params})


def hgb_classifier(max_iter=10, learning_rate=None, **params):
    """A HistGradientBoostingClassifier, scikit-learn's defaults unless given."""
    return _make_model(
        "sklearn_hgb", "binary", n_estimators=max_iter, learning_rate=learning_rate, **params
    )


def hgb_regressor(max_iter=30, learning_rate=None, **params):
    """A HistGradientBoostingRegressor, scikit-learn's defaults unless given."""
    return _make_model(
        "sklearn_hgb", "regression", n_estimators=max_iter, learning_rate=learning_rate, **params
    )


def forest(objective):
    """A small unfitted random forest for ``objective``."""
    task = "regression" if objective == "squared_error" else "binary"
    return _make_model("sklearn_rf", task, n_estimators=6, max_depth=4)


_MODELS = {}
_EXPLAINERS = {}


def fitted_model(lib, objective):
    """The model of ``lib`` (or ``"forest"``) fitted on ``make_data(objective, n=150,
    seed=1)``, trained once per test process."""
    if (lib, objective) not in _MODELS:
        X, y = make_data(objective, n=150, seed=1)
        model = forest(objective) if lib == "forest" else make_model(lib, objective)
        _MODELS[lib, objective] = model.fit(X, y)
    return _MODELS[lib, objective]


def fitted_explainer(cls, lib, objective, **params):
    """(X, y, model, explainer, X_query, y_query): ``cls(**params)`` fitted on the
    training data of :func:`fitted_model`, 25 query rows; cached per test process.

    The arrays are shared between tests: do not write into them.
    """
    key = (cls, lib, objective, tuple(sorted(params.items())))
    if key not in _EXPLAINERS:
        X, y = make_data(objective, n=150, seed=1)
        Xq, yq = make_data(objective, n=25, seed=2)
        model = fitted_model(lib, objective)
        _EXPLAINERS[key] = (X, y, model, cls(model, **params).fit(X, y), Xq, yq)
    return _EXPLAINERS[key]


def gradient_cases():
    """(library, objective) pairs whose leaves a gradient method can model."""
    return [
        (lib, obj)
        for lib in LIBRARIES
        for obj in OBJECTIVES
        if not (lib == "catboost" and obj == "multiclass")
    ]
