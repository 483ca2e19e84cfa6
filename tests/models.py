"""Tiny models of every supported library, trained once per test module."""

import numpy as np
import pytest

LIBRARIES = ("sklearn_gb", "sklearn_hgb", "lightgbm", "xgboost", "catboost")
OBJECTIVES = ("squared_error", "binary", "multiclass")


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
    clf = objective != "squared_error"
    if lib == "sklearn_gb":
        from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

        cls = GradientBoostingClassifier if clf else GradientBoostingRegressor
        return cls(
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            max_depth=3,
            random_state=0,
            **extra,
        )
    if lib == "sklearn_hgb":
        from sklearn.ensemble import (
            HistGradientBoostingClassifier,
            HistGradientBoostingRegressor,
        )

        cls = HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor
        return cls(
            max_iter=n_estimators,
            learning_rate=learning_rate,
            max_leaf_nodes=8,
            l2_regularization=0.5,
            early_stopping=False,
            random_state=0,
            **extra,
        )
    if lib == "lightgbm":
        lgb = pytest.importorskip("lightgbm")
        cls = lgb.LGBMClassifier if clf else lgb.LGBMRegressor
        return cls(
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            num_leaves=8,
            min_child_samples=5,
            reg_lambda=0.5,
            verbose=-1,
            n_jobs=1,
            random_state=0,
            **extra,
        )
    if lib == "xgboost":
        xgb = pytest.importorskip("xgboost")
        cls = xgb.XGBClassifier if clf else xgb.XGBRegressor
        return cls(
            n_estimators=n_estimators,
            learning_rate=learning_rate,
            max_depth=3,
            reg_lambda=0.5,
            n_jobs=1,
            random_state=0,
            **extra,
        )
    if lib == "catboost":
        cb = pytest.importorskip("catboost")
        if clf:
            return cb.CatBoostClassifier(
                iterations=n_estimators,
                learning_rate=learning_rate,
                depth=3,
                loss_function="Logloss" if objective == "binary" else "MultiClass",
                leaf_estimation_iterations=1,
                leaf_estimation_method="Newton",
                thread_count=1,
                verbose=0,
                allow_writing_files=False,
                random_seed=0,
                **extra,
            )
        return cb.CatBoostRegressor(
            iterations=n_estimators,
            learning_rate=learning_rate,
            depth=3,
            thread_count=1,
            verbose=0,
            allow_writing_files=False,
            random_seed=0,
            **extra,
        )
    raise ValueError(lib)


def gradient_cases():
    """(library, objective) pairs whose leaves a gradient method can model."""
    return [
        (lib, obj)
        for lib in LIBRARIES
        for obj in OBJECTIVES
        if not (lib == "catboost" and obj == "multiclass")
    ]
