"""The models table of ``doc/models.rst``: every library x objective x notable default,
and what each method does with it. ``tests/test_models_table.py`` backs every cell (an
oracle for "exact", the error message for "refused") and checks that the page shows
this table; ``python -m tests.model_table`` prints it.
"""

import importlib
from typing import NamedTuple

import numpy as np
from scipy.special import expit

#: the method columns; the similarity, retraining and baseline methods take every
#: model the adapters accept
GRADIENT = ("BoostIn", "LeafInfluence", "LeafRefit")


class Row(NamedTuple):
    library: str
    objective: str
    setting: str
    #: ``(module, class name, params)`` of the model; data task of ``_data``
    model: tuple
    task: str
    #: None: the gradient methods are exact; else ``(regex of the error, reason)``
    refused: tuple | None = None
    #: refused by every method, TREX included (the adapter refuses the model)
    everywhere: bool = False


def _lgb(cls, **p):
    return ("lightgbm", cls, {"n_estimators": 12, "verbose": -1, "n_jobs": 1, **p})


def _xgb(cls, **p):
    return ("xgboost", cls, {"n_estimators": 12, "n_jobs": 1, **p})


def _cb(cls, **p):
    return ("catboost", cls, {"verbose": 0, "random_seed": 0, "thread_count": 1, **p})


def _sk(cls, **p):
    return ("sklearn.ensemble", cls, {"random_state": 0, **p})


_ROWS = [
    # ------------------------------------------------------------------ LightGBM
    Row("LightGBM", "regression (L2)", "defaults", _lgb("LGBMRegressor"), "regression"),
    Row("LightGBM", "binary", "defaults", _lgb("LGBMClassifier"), "binary"),
    Row("LightGBM", "multiclass", "defaults", _lgb("LGBMClassifier"), "multiclass"),
    Row(
        "LightGBM",
        "regression (L2)",
        "binding max_delta_step (clamped leaves: derivative 0)",
        _lgb("LGBMRegressor", max_delta_step=1.0),
        "regression",
    ),
    Row(
        "LightGBM",
        "binary",
        "bagging (bagging_fraction < 1)",
        _lgb("LGBMClassifier", subsample=0.5, subsample_freq=1),
        "binary",
        ("bagging_fraction", "row subsampling: leaves fitted on unknown rows"),
    ),
    Row(
        "LightGBM",
        "binary",
        "GOSS",
        _lgb("LGBMClassifier", data_sample_strategy="goss"),
        "binary",
        ("goss", "gradient-based row sampling and reweighting"),
    ),
    Row(
        "LightGBM",
        "regression (L2)",
        "DART",
        _lgb("LGBMRegressor", boosting_type="dart"),
        "regression",
        ("dart", "trees rescaled after they were fitted"),
    ),
    Row(
        "LightGBM",
        "regression (L2)",
        "L1 leaf penalty (lambda_l1 > 0)",
        _lgb("LGBMRegressor", reg_alpha=5.0),
        "regression",
        ("lambda_l1", "soft-thresholded leaves"),
    ),
    Row(
        "LightGBM",
        "poisson",
        "defaults (hessian offset 0.7)",
        _lgb("LGBMRegressor", objective="poisson"),
        "count",
    ),
    Row("LightGBM", "gamma", "defaults", _lgb("LGBMRegressor", objective="gamma"), "positive"),
    Row(
        "LightGBM",
        "tweedie",
        "defaults (power 1.5)",
        _lgb("LGBMRegressor", objective="tweedie"),
        "tweedie",
    ),
    Row(
        "LightGBM",
        "cross_entropy",
        "labels in [0, 1]",
        _lgb("LGBMRegressor", objective="cross_entropy"),
        "proba",
    ),
    Row("LightGBM", "huber", "defaults", _lgb("LGBMRegressor", objective="huber"), "regression"),
    Row(
        "LightGBM",
        "regression_l1, quantile, mape, fair",
        "L1-type leaves",
        _lgb("LGBMRegressor", objective="regression_l1"),
        "regression",
        ("not supported", "leaves are medians or quantiles, not Newton steps"),
        everywhere=True,
    ),
    Row(
        "LightGBM",
        "binary",
        "pandas categorical column (native categorical splits)",
        _lgb("LGBMClassifier"),
        "binary_cat",
    ),
    # ------------------------------------------------------------------ XGBoost
    Row("XGBoost", "reg:squarederror", "defaults", _xgb("XGBRegressor"), "regression"),
    Row("XGBoost", "binary:logistic", "defaults", _xgb("XGBClassifier"), "binary"),
    Row("XGBoost", "multi:softprob", "defaults", _xgb("XGBClassifier"), "multiclass"),
    Row(
        "XGBoost",
        "binary:logistic",
        "binding max_delta_step (clamped leaves: derivative 0)",
        _xgb("XGBClassifier", max_delta_step=1.0, learning_rate=0.5),
        "binary",
    ),
    Row(
        "XGBoost",
        "reg:squarederror",
        "subsample < 1",
        _xgb("XGBRegressor", subsample=0.5),
        "regression",
        ("subsample", "row subsampling: leaves fitted on unknown rows"),
    ),
    Row(
        "XGBoost",
        "count:poisson",
        "defaults (hessian offset and leaf clamp 0.7)",
        _xgb("XGBRegressor", objective="count:poisson"),
        "count",
    ),
    Row(
        "XGBoost", "reg:gamma", "defaults", _xgb("XGBRegressor", objective="reg:gamma"), "positive"
    ),
    Row(
        "XGBoost",
        "reg:tweedie",
        "defaults (power 1.5)",
        _xgb("XGBRegressor", objective="reg:tweedie"),
        "tweedie",
    ),
    Row(
        "XGBoost",
        "reg:logistic",
        "labels in [0, 1]",
        _xgb("XGBRegressor", objective="reg:logistic"),
        "proba",
    ),
    Row(
        "XGBoost",
        "reg:pseudohubererror",
        "defaults (slope 1)",
        _xgb("XGBRegressor", objective="reg:pseudohubererror"),
        "regression",
    ),
    Row(
        "XGBoost",
        "reg:absoluteerror",
        "L1 leaves",
        _xgb("XGBRegressor", objective="reg:absoluteerror"),
        "regression",
        ("not supported", "leaves are medians, not Newton steps"),
        everywhere=True,
    ),
    Row(
        "XGBoost",
        "binary:logistic",
        "enable_categorical=True (pandas categorical column)",
        _xgb("XGBClassifier", enable_categorical=True, tree_method="hist"),
        "binary_cat",
    ),
    # ------------------------------------------------------------------ CatBoost
    Row("CatBoost", "RMSE", "defaults", _cb("CatBoostRegressor", iterations=60), "regression"),
    Row(
        "CatBoost",
        "Logloss",
        "defaults: 10 Newton steps per leaf, backtracking, MVS",
        _cb("CatBoostClassifier", iterations=60),
        "binary30",
    ),
    Row(
        "CatBoost",
        "Logloss",
        "leaf_estimation_method='Gradient'",
        _cb("CatBoostClassifier", iterations=20, leaf_estimation_method="Gradient"),
        "binary",
    ),
    Row(
        "CatBoost",
        "MultiClass",
        "defaults: K x K Newton leaf",
        _cb("CatBoostClassifier", iterations=30, loss_function="MultiClass"),
        "multiclass",
    ),
    Row(
        "CatBoost",
        "MultiClass",
        "leaf_estimation_iterations > 1",
        _cb(
            "CatBoostClassifier",
            iterations=10,
            loss_function="MultiClass",
            leaf_estimation_iterations=3,
        ),
        "multiclass",
        ("leaf_estimation_iterations", "several K x K steps: not modelled"),
    ),
    Row(
        "CatBoost",
        "RMSE",
        "model_shrink_rate > 0",
        _cb("CatBoostRegressor", iterations=20, model_shrink_rate=0.2),
        "regression",
        ("model_shrink_rate", "earlier trees shrunk after they were fitted"),
    ),
    Row(
        "CatBoost",
        "Poisson",
        "defaults",
        _cb("CatBoostRegressor", iterations=30, loss_function="Poisson"),
        "count",
    ),
    Row(
        "CatBoost",
        "Tweedie",
        "variance_power=1.5",
        _cb("CatBoostRegressor", iterations=30, loss_function="Tweedie:variance_power=1.5"),
        "tweedie",
    ),
    Row(
        "CatBoost",
        "CrossEntropy",
        "labels in [0, 1]",
        _cb("CatBoost", iterations=30, loss_function="CrossEntropy"),
        "proba",
    ),
    Row(
        "CatBoost",
        "MAE, Quantile, MAPE",
        "L1-type leaves",
        _cb("CatBoostRegressor", iterations=10, loss_function="MAE"),
        "regression",
        ("not support", "leaves are medians or quantiles, not Newton steps"),
        everywhere=True,
    ),
    Row(
        "CatBoost",
        "Logloss",
        "categorical feature, one-hot (one_hot_max_size >= its categories)",
        _cb("CatBoostClassifier", iterations=30, cat_features=["c"], one_hot_max_size=255),
        "binary_cat_str",
    ),
    Row(
        "CatBoost",
        "Logloss",
        "categorical feature encoded by CTRs (CatBoost's default)",
        _cb("CatBoostClassifier", iterations=30, cat_features=["c"]),
        "binary_cat_str",
        ("CTR", "CTR values fitted on other rows than the final routing"),
    ),
    # ------------------------------------------------------------------ scikit-learn
    Row(
        "scikit-learn",
        "squared_error",
        "GradientBoostingRegressor defaults",
        _sk("GradientBoostingRegressor", n_estimators=15),
        "regression",
    ),
    Row(
        "scikit-learn",
        "log_loss",
        "GradientBoostingClassifier, 3 classes",
        _sk("GradientBoostingClassifier", n_estimators=10),
        "multiclass",
    ),
    Row(
        "scikit-learn",
        "log_loss",
        "HistGradientBoostingClassifier with early stopping (default above 10,000 rows)",
        _sk("HistGradientBoostingClassifier", max_iter=15, early_stopping=True),
        "binary",
    ),
    Row(
        "scikit-learn",
        "poisson",
        "HistGradientBoostingRegressor(loss='poisson')",
        _sk("HistGradientBoostingRegressor", max_iter=15, loss="poisson"),
        "count",
    ),
    Row(
        "scikit-learn",
        "gamma",
        "HistGradientBoostingRegressor(loss='gamma')",
        _sk("HistGradientBoostingRegressor", max_iter=15, loss="gamma"),
        "positive",
    ),
    Row(
        "scikit-learn",
        "log_loss",
        "HistGradientBoostingClassifier, categorical column (categorical_features='from_dtype')",
        _sk("HistGradientBoostingClassifier", max_iter=15, early_stopping=False),
        "binary_cat",
    ),
    Row(
        "scikit-learn",
        "squared_error",
        "GradientBoosting subsample < 1",
        _sk("GradientBoostingRegressor", n_estimators=10, subsample=0.5),
        "regression",
        ("subsample", "row subsampling: leaves fitted on unknown rows"),
    ),
    Row(
        "scikit-learn",
        "huber",
        "GradientBoostingRegressor(loss='huber')",
        _sk("GradientBoostingRegressor", n_estimators=10, loss="huber"),
        "regression",
        ("huber", "quantile leaf update, not a Newton step"),
        everywhere=True,
    ),
    Row(
        "scikit-learn",
        "squared_error",
        "RandomForestRegressor",
        _sk("RandomForestRegressor", n_estimators=10),
        "regression",
        ("random forest", "no boosting trajectory to differentiate"),
    ),
]


def rows():
    """The table's rows whose library is installed."""
    out = []
    for row in _ROWS:
        try:
            importlib.import_module(row.model[0])
        except ImportError:
            continue
        out.append(row)
    return out


def make(row):
    """The unfitted model of a row."""
    module, cls, params = row.model
    factory = getattr(importlib.import_module(module), cls)
    return factory(params) if cls == "CatBoost" else factory(**params)  # CatBoost(params)


def data(task, seed=0):
    """Training data of a row's task: ``(X, y)``."""
    rng = np.random.default_rng(seed)
    n, d = (160, 30) if task == "binary30" else (160, 5)
    X = rng.normal(size=(n, d))
    z = X[:, 0] + 0.5 * X[:, 1] - 0.3 * X[:, 2] + 0.5 * rng.normal(size=n)
    if task.startswith("binary_cat"):
        import pandas as pd

        codes = rng.integers(0, 6, n)
        y = ((z + 0.8 * (codes % 3 == 0)) > 0.3).astype(int)
        labels = np.array(list("abcdef"))[codes]
        frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(d)])
        frame["c"] = labels if task.endswith("_str") else pd.Categorical(labels)
        return frame, y
    if task == "regression":
        return X, 3 * z
    if task == "count":
        return X, rng.poisson(np.exp(0.5 * z)).astype(float)
    if task == "positive":
        return X, rng.gamma(2.0, np.exp(0.5 * z) / 2.0)
    if task == "tweedie":
        counts = rng.poisson(np.exp(0.3 * z))
        return X, np.array([rng.gamma(2.0, 1.0, c).sum() for c in counts])
    if task == "proba":
        return X, expit(z)
    if task == "multiclass":
        return X, np.digitize(z, np.quantile(z, [1 / 3, 2 / 3]))
    return X, (z > 0).astype(int)


def _cell(row, method):
    if method == "TREX" and not row.everywhere:
        return "yes"
    return "exact" if row.refused is None else f"refused: {row.refused[1]}"


def rst():
    """The table as an RST ``list-table`` (all rows, installed or not)."""
    head = ["Library", "Objective", "Setting", *GRADIENT, "TREX"]
    lines = [
        ".. list-table:: What each method does with each model (generated from "
        "``tests/model_table.py``; every cell is tested)",
        "   :header-rows: 1",
        "",
    ]
    for cells in [head] + [
        [r.library, r.objective, r.setting, *(_cell(r, m) for m in (*GRADIENT, "TREX"))]
        for r in _ROWS
    ]:
        lines.append(f"   * - {cells[0]}")
        lines.extend(f"     - {c}" for c in cells[1:])
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(rst())
