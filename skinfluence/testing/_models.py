"""One factory of small unfitted models of every supported library.

The tests, the benchmarks, the demo (``python -m skinfluence``) and the hypothesis
strategies all build their models here, so that what a library needs for its leaves to
be single Newton steps, its quiet and thread settings and the names of its parameters
are written once. Optional libraries are imported only when a model of theirs is asked
for. Needs neither pytest nor hypothesis.
"""

import importlib
import importlib.util

import numpy as np

__all__ = [
    "LIBRARIES",
    "OBJECTIVES",
    "TASKS",
    "TYPICAL_SHAPES",
    "available_libraries",
    "fit_native",
    "make_data",
    "make_model",
    "native_input",
    "native_labels",
    "quantile_classes",
]

#: Task names: the kinds of target a data set can have.
TASKS = ("regression", "binary", "multiclass")

#: Library keys understood by :func:`make_model`.
LIBRARIES = (
    "sklearn_gb",
    "sklearn_hgb",
    "sklearn_rf",
    "sklearn_et",
    "lightgbm",
    "xgboost",
    "catboost",
)

#: A typical tree shape (about 31 leaves) of each boosting library, in its own names.
TYPICAL_SHAPES = {
    "sklearn_hgb": {"max_leaf_nodes": 31},
    "lightgbm": {"num_leaves": 31},
    "xgboost": {"max_depth": 5, "tree_method": "hist"},
    "catboost": {"depth": 5},
}

_FORESTS = ("sklearn_rf", "sklearn_et")
_SKLEARN = "sklearn.ensemble"

# library: (module, regressor class, classifier class)
_CLASSES = {
    "sklearn_gb": (_SKLEARN, "GradientBoostingRegressor", "GradientBoostingClassifier"),
    "sklearn_hgb": (_SKLEARN, "HistGradientBoostingRegressor", "HistGradientBoostingClassifier"),
    "sklearn_rf": (_SKLEARN, "RandomForestRegressor", "RandomForestClassifier"),
    "sklearn_et": (_SKLEARN, "ExtraTreesRegressor", "ExtraTreesClassifier"),
    "lightgbm": ("lightgbm", "LGBMRegressor", "LGBMClassifier"),
    "xgboost": ("xgboost", "XGBRegressor", "XGBClassifier"),
    "catboost": ("catboost", "CatBoostRegressor", "CatBoostClassifier"),
}

# library: names of (number of trees, learning rate, seed, threads); None: no such parameter
_NAMES = {
    "sklearn_gb": ("n_estimators", "learning_rate", "random_state", None),
    "sklearn_hgb": ("max_iter", "learning_rate", "random_state", None),
    "sklearn_rf": ("n_estimators", None, "random_state", None),
    "sklearn_et": ("n_estimators", None, "random_state", None),
    "lightgbm": ("n_estimators", "learning_rate", "random_state", "n_jobs"),
    "xgboost": ("n_estimators", "learning_rate", "random_state", "n_jobs"),
    "catboost": ("iterations", "learning_rate", "random_seed", "thread_count"),
}

# settings every model of the library gets: no early stopping, one Newton step per leaf
# (CatBoost chooses up to 10 by itself depending on the data; fixed here so that the
# factory's models do not change with the data shape; set them to None for CatBoost's
# own choice), no console or file output
_FIXED = {
    "sklearn_hgb": {"early_stopping": False},
    "lightgbm": {"verbose": -1},
    "catboost": {
        "leaf_estimation_iterations": 1,
        "leaf_estimation_method": "Newton",
        "verbose": 0,
        "allow_writing_files": False,
    },
}

_CATBOOST_LOSS = {"binary": "Logloss", "multiclass": "MultiClass"}

#: Regression objectives besides the squared error: objective -> library -> the
#: estimator's parameters selecting it (the libraries listed have it as a single
#: Newton step). ``make_model(..., regression_objective=...)`` selects one and
#: ``make_data("regression", regression_objective=...)`` draws labels for it.
OBJECTIVES = {
    "poisson": {
        "lightgbm": {"objective": "poisson"},
        "xgboost": {"objective": "count:poisson"},
        "sklearn_hgb": {"loss": "poisson"},
        "catboost": {"loss_function": "Poisson"},
    },
    "gamma": {
        "lightgbm": {"objective": "gamma"},
        "xgboost": {"objective": "reg:gamma"},
        "sklearn_hgb": {"loss": "gamma"},
    },
    "tweedie": {
        "lightgbm": {"objective": "tweedie", "tweedie_variance_power": 1.5},
        "xgboost": {"objective": "reg:tweedie", "tweedie_variance_power": 1.5},
        "catboost": {"loss_function": "Tweedie:variance_power=1.5"},
    },
    "cross_entropy": {
        "lightgbm": {"objective": "cross_entropy"},
        "xgboost": {"objective": "reg:logistic"},
    },
    "pseudo_huber": {"xgboost": {"objective": "reg:pseudohubererror", "huber_slope": 1.0}},
    "huber": {"lightgbm": {"objective": "huber", "alpha": 1.0}},
}


def available_libraries(forests=True):
    """The keys of :data:`LIBRARIES` whose package is installed.

    Parameters
    ----------
    forests : bool, default=True
        Include the scikit-learn random forests and extra trees.

    Returns
    -------
    libraries : tuple of str

    Examples
    --------
    >>> from skinfluence.testing import available_libraries
    >>> "sklearn_hgb" in available_libraries()
    True
    """
    out = []
    for lib in LIBRARIES:
        if not forests and lib in _FORESTS:
            continue
        module = _CLASSES[lib][0]
        if module != _SKLEARN and importlib.util.find_spec(module) is None:
            continue
        out.append(lib)
    return tuple(out)


def _categorical(library, categorical):
    """The library's settings for data with (or explicitly without) categorical columns."""
    if categorical is None:
        return {}
    on = bool(categorical)
    if library == "sklearn_hgb":
        return {"categorical_features": "from_dtype" if on else None}
    if library == "xgboost":
        return {"enable_categorical": on}
    if library == "catboost":
        if not on:
            return {}
        names = {} if categorical is True else {"cat_features": list(categorical)}
        return {**names, "one_hot_max_size": 255}
    if on and library != "lightgbm":  # LightGBM reads pandas categories by itself
        raise ValueError(f"{library} cannot take categorical columns")
    return {}


def _estimator_class(library, classifier):
    module, regressor, classifier_name = _CLASSES[library]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"a {library} model needs the {module} package (pip install {module})"
        ) from exc
    return getattr(mod, classifier_name if classifier else regressor)


def make_model(
    library,
    task,
    *,
    n_estimators=8,
    learning_rate=0.3,
    random_state=0,
    n_jobs=1,
    categorical=None,
    regression_objective=None,
    **params,
):
    """An unfitted model of ``library`` for ``task`` whose leaves are Newton steps.

    The factory sets what every caller needs: the classifier or regressor class, the
    library's names for the number of trees, learning rate, seed and threads, no early
    stopping (HistGradientBoosting), one Newton step per leaf and the loss of the task
    (CatBoost), and no console or file output. The trees' shape (depth, leaves,
    regularization) is the caller's choice, passed in the library's own names.

    Parameters
    ----------
    library : str
        One of :data:`LIBRARIES`.
    task : {"regression", "binary", "multiclass"}
        The kind of target.
    n_estimators : int, default=8
        Number of boosting rounds (trees, for the forests).
    learning_rate : float or None, default=0.3
        Shrinkage; ``None`` keeps the library's default. Forests have none.
    random_state : int, default=0
        Seed of the library's randomness.
    n_jobs : int or None, default=1
        Threads of LightGBM, XGBoost and CatBoost; ``None`` keeps the library's
        default. The scikit-learn models keep theirs (limit OpenMP with threadpoolctl).
    categorical : bool, sequence of str or None, default=None
        Whether the data has pandas ``category`` columns: switches on
        (``True`` or a non-empty sequence of column names) or off (``False`` or
        empty) HistGradientBoosting's ``categorical_features="from_dtype"``, XGBoost's
        ``enable_categorical`` and CatBoost's one-hot encoding of up to 255 levels; a
        sequence also gives CatBoost its ``cat_features``. ``None`` sets nothing.
        GradientBoosting and the forests take no categorical columns.
    regression_objective : str or None, default=None
        A key of :data:`OBJECTIVES` (``task="regression"``): sets the library's
        parameters of that objective; ``None``: the squared error or the log-loss. (A
        library's own objective parameter, such as ``objective="reg:gamma"``, can also
        be passed in ``params``.)
    **params
        Further keyword arguments of the library's estimator, passed as given (they
        override the settings above).

    Returns
    -------
    estimator
        Unfitted.

    Raises
    ------
    ImportError
        If the library is not installed.
    ValueError
        If the library or the task is unknown, the library has not the objective, or
        the library cannot take categorical columns.

    Examples
    --------
    >>> from skinfluence.testing import make_model
    >>> make_model("sklearn_hgb", "binary", max_leaf_nodes=8)
    HistGradientBoostingClassifier(early_stopping=False, learning_rate=0.3, max_iter=8,
                                   max_leaf_nodes=8, random_state=0)
    """
    if library not in _CLASSES:
        raise ValueError(f"unknown library {library!r}; choose from {LIBRARIES}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {TASKS}")
    classifier = task != "regression"
    trees, rate, seed, threads = _NAMES[library]
    kwargs = {trees: n_estimators, seed: random_state, **_FIXED.get(library, {})}
    if rate is not None and learning_rate is not None:
        kwargs[rate] = learning_rate
    if threads is not None and n_jobs is not None:
        kwargs[threads] = n_jobs
    if library == "catboost" and classifier:
        kwargs["loss_function"] = _CATBOOST_LOSS[task]
    objective = regression_objective
    if objective is not None:
        if task != "regression" or library not in OBJECTIVES.get(objective, {}):
            raise ValueError(
                f"no {objective!r} objective for {library} {task}; regression objectives: "
                + ", ".join(f"{k} ({', '.join(v)})" for k, v in OBJECTIVES.items())
            )
        kwargs.update(OBJECTIVES[objective][library])
    kwargs.update(_categorical(library, categorical), **params)
    return _estimator_class(library, classifier)(**kwargs)


def native_input(library, X):
    """``X`` (a DataFrame) as ``library`` takes categorical columns, and their names.

    CatBoost takes categorical columns as strings (missing values become the string
    ``"missing"``) named in ``cat_features``; the other libraries take pandas
    ``category`` columns as they are (returned unchanged, with no names).
    """
    if library != "catboost":
        return X, []
    cats = [c for c in X.columns if str(X[c].dtype) == "category"]
    Xc = X.copy()
    for c in cats:  # missing categories become their own string
        Xc[c] = Xc[c].astype(object).where(Xc[c].notna(), "missing").astype(str)
    return Xc, cats


def native_labels(library, task, y):
    """Class labels as ``library``'s classifier takes them: XGBoost's need ``0..K-1``
    (the labels' ranks); every other library, and any regression target, as given."""
    if library == "xgboost" and task != "regression":
        return np.searchsorted(np.unique(y), y)
    return y


def fit_native(model, library, X, y):
    """Fit ``model`` of ``library`` on the DataFrame ``X`` in the form it takes
    (:func:`native_input`); returns the fitted model and that form of ``X``."""
    Xm, cats = native_input(library, X)
    if cats:
        return model.fit(Xm, y, cat_features=cats), Xm
    return model.fit(Xm, y), Xm


def make_data(task, n=120, d=4, seed=0, n_classes=3, regression_objective=None):
    """A small synthetic data set ``(X, y)`` for ``task`` (one of :data:`TASKS`).

    ``X`` is ``(n, d)`` standard normal (``d >= 3``); the signal
    ``z = x0 + x1**2 / 2 - x2 + 0.3 * noise`` gives ``y = 3 z + 1`` (regression), ``z``
    above its median (binary) or its ``n_classes`` equal-count bins (multiclass).
    ``regression_objective`` (a key of :data:`OBJECTIVES`) draws labels it takes,
    with mean ``mu = exp(z / 2)``: Poisson counts, Gamma (shape 2) values, Tweedie
    values (a Poisson number of Gamma summands, zeros included), probabilities
    ``sigmoid(z)`` (cross-entropy), or ``3 z + 1`` with every tenth row shifted by 8
    (outliers for the Huber losses).
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {TASKS}")
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    z = X[:, 0] + 0.5 * X[:, 1] ** 2 - X[:, 2] + 0.3 * rng.normal(size=n)
    objective = regression_objective
    if objective is not None:
        if task != "regression" or objective not in OBJECTIVES:
            raise ValueError(f"no {objective!r} labels for {task}; choose from {tuple(OBJECTIVES)}")
        return X, _objective_labels(objective, z, rng)
    if task == "regression":
        return X, 3 * z + 1
    if task == "binary":
        return X, (z > np.median(z)).astype(int)
    return X, quantile_classes(z, n_classes)


def _objective_labels(objective, z, rng):
    mu = np.exp(z / 2)
    if objective == "poisson":
        return rng.poisson(mu).astype(np.float64)
    if objective == "gamma":
        return rng.gamma(2.0, mu / 2.0)
    if objective == "tweedie":
        counts = rng.poisson(mu)
        return np.array([rng.gamma(2.0, 0.5, size=c).sum() for c in counts])
    if objective == "cross_entropy":
        return 1.0 / (1.0 + np.exp(-z))
    y = 3 * z + 1
    y[::10] += 8.0
    return y


def quantile_classes(z, n_classes):
    """Class labels ``0..n_classes-1``: the equal-count bins of the signal ``z``."""
    return np.digitize(z, np.quantile(z, np.linspace(0, 1, n_classes + 1)[1:-1]))
