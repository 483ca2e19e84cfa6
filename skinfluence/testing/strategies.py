"""Hypothesis strategies: small data sets and fitted tree models of every library.

For property tests of pipelines built on skinfluence (and of skinfluence itself). Every
strategy draws a seed and a few sizes and builds the arrays with NumPy, so examples are
fast and shrink well. Libraries that are not installed are skipped. Given ``method=`` (an
influence estimator), :func:`models` and :func:`fitted_models` draw only models that
method accepts, as the method itself decides.

Needs ``hypothesis`` (``pip install hypothesis``); ``import skinfluence`` never imports
it.

Examples
--------
A property of your own pipeline, checked on tiny models of every installed library:

>>> from hypothesis import given, settings
>>> import skinfluence
>>> from skinfluence.testing.strategies import fitted_models
>>> @settings(max_examples=5, deadline=None)
... @given(fitted_models(task="binary"))
... def test_reconstruction(case):
...     skinfluence.to_ensemble(case.model, case.X, case.y).check_reconstruction(case.X)
>>> test_reconstruction()
"""

import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from hypothesis import reject
from hypothesis import strategies as st
from sklearn.base import clone

from .._adapters import UnsupportedModelError
from .._ensemble import LeafModelError, TrainingDataMismatchError
from ..base import BaseInfluence
from ._models import (
    LIBRARIES,
    OBJECTIVES,
    TASKS,
    _objective_labels,
    available_libraries,
    make_model,
)

__all__ = [
    "LIBRARIES",
    "OBJECTIVES",
    "TASKS",
    "Dataset",
    "FittedModel",
    "available_libraries",
    "datasets",
    "fitted_models",
    "models",
]

# libraries whose models take NaN / pandas categorical columns
_NAN_OK = {"sklearn_hgb", "sklearn_rf", "sklearn_et", "lightgbm", "xgboost", "catboost"}
_CAT_OK = {"sklearn_hgb", "lightgbm", "xgboost", "catboost"}


class Dataset(NamedTuple):
    """A drawn data set.

    Attributes
    ----------
    X : ndarray or pandas.DataFrame of shape (n_samples, n_features)
        Features; a DataFrame when it has categorical columns or ``as_frame=True``.
    y : ndarray of shape (n_samples,)
        Float targets (regression) or integer classes ``0 .. n_classes - 1``, every
        class present at least twice.
    task : str
        ``"regression"``, ``"binary"`` or ``"multiclass"``.
    categorical : tuple of str
        Names of the categorical columns (pandas ``category`` dtype).
    has_nan : bool
        Whether some numeric column holds NaN.
    objective : str or None
        The regression objective the labels are drawn for (a key of
        :data:`OBJECTIVES`); ``None``: the squared error (or classification).
    """

    X: Any
    y: np.ndarray
    task: str
    categorical: tuple = ()
    has_nan: bool = False
    objective: str | None = None


class FittedModel(NamedTuple):
    """A model fitted on a drawn data set.

    Attributes
    ----------
    model : estimator
        The fitted model.
    X, y : the training data (as in :class:`Dataset`)
    task : str
    library : str
        One of :data:`LIBRARIES`.
    """

    model: Any
    X: Any
    y: np.ndarray
    task: str
    library: str


def _choice(value, allowed, name):
    """A strategy for a parameter given as None (any), one value or a sequence."""
    if value is None:
        values = tuple(allowed)
    elif isinstance(value, str):
        values = (value,)
    elif isinstance(value, Sequence):
        values = tuple(value)
    else:
        raise TypeError(f"{name} must be None, a string or a sequence, got {value!r}")
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValueError(f"{name} must be among {tuple(allowed)}, got {bad or values}")
    return st.sampled_from(values)


def _flag(value):
    if value is None:
        return st.booleans()
    return st.just(bool(value))


@st.composite
def datasets(
    draw,
    task=None,
    *,
    min_rows=20,
    max_rows=80,
    min_features=1,
    max_features=5,
    max_classes=4,
    nan=False,
    categorical=False,
    as_frame=False,
    objective=None,
):
    """Strategy for small tabular data sets with a learnable target.

    Parameters
    ----------
    task : str, sequence of str or None, default=None
        ``"regression"``, ``"binary"``, ``"multiclass"``, several of them, or ``None``
        for any.
    min_rows, max_rows : int, default=20, 80
        Range of the number of rows.
    min_features, max_features : int, default=1, 5
        Range of the number of numeric columns.
    max_classes : int, default=4
        Largest number of classes of a multiclass target (at least 3).
    nan : bool or None, default=False
        Put NaN in some numeric columns (at least one per chosen column, each cell
        with a drawn probability of 5% to 30%); ``None`` lets hypothesis decide.
    categorical : bool or None, default=False
        Add one or two categorical columns (pandas ``category`` dtype with 2 to 5
        string levels, no missing values); the data set is then a DataFrame and needs
        pandas. ``None`` lets hypothesis decide.
    as_frame : bool, default=False
        Return X as a pandas DataFrame even without categorical columns.
    objective : str, sequence of str or None, default=None
        Regression objectives (keys of :data:`OBJECTIVES`, or ``"squared_error"``) to
        draw labels for: Poisson counts, Gamma and Tweedie values, probabilities for the
        cross-entropy, targets with outliers for the Huber losses (as
        :func:`~skinfluence.testing.make_data`). Implies ``task="regression"``.
        ``None``: the squared error's targets.

    Returns
    -------
    strategy of Dataset

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from skinfluence.testing.strategies import datasets
    >>> @settings(max_examples=10, deadline=None)
    ... @given(datasets(task="multiclass", nan=True))
    ... def test_rows_match(data):
    ...     assert data.X.shape[0] == len(data.y)
    ...     assert len(np.unique(data.y)) >= 3
    >>> test_rows_match()
    """
    if not 4 <= min_rows <= max_rows:
        raise ValueError(f"need 4 <= min_rows <= max_rows, got {min_rows}, {max_rows}")
    if not 1 <= min_features <= max_features:
        raise ValueError(
            f"need 1 <= min_features <= max_features, got {min_features}, {max_features}"
        )
    if max_classes < 3:
        raise ValueError(f"max_classes must be at least 3, got {max_classes}")
    if objective is not None:
        if task not in (None, "regression", ("regression",), ["regression"]):
            raise ValueError(f"objective={objective!r} needs task='regression', got {task!r}")
        task = "regression"
        objective = draw(_choice(objective, ("squared_error", *OBJECTIVES), "objective"))
        objective = None if objective == "squared_error" else objective
    task = draw(_choice(task, TASKS, "task"))
    n = draw(st.integers(min_rows, max_rows))
    d = draw(st.integers(min_features, max_features))
    seed = draw(st.integers(0, 2**32 - 1))
    with_nan = draw(_flag(nan))
    n_cat = draw(st.integers(1, 2)) if draw(_flag(categorical)) else 0
    n_classes = {"regression": 0, "binary": 2}.get(task)
    if n_classes is None:
        n_classes = draw(st.integers(3, max(3, min(max_classes, n // 2))))
    rng = np.random.default_rng(seed)

    X = rng.normal(size=(n, d))
    weights = rng.normal(size=d)
    signal = X @ weights + 0.5 * np.sin(2 * X[:, 0])
    cats = []
    for j in range(n_cat):
        levels = [f"{chr(97 + j)}{i}" for i in range(int(rng.integers(2, 6)))]
        codes = rng.integers(0, len(levels), size=n)
        signal = signal + rng.normal(size=len(levels))[codes]
        cats.append((f"cat{j}", levels, codes))
    signal = signal + 0.3 * rng.normal(size=n)
    if with_nan:
        prob = draw(st.floats(0.05, 0.3))
        cols = rng.permutation(d)[: max(1, d // 2)]
        for j in cols:
            mask = rng.random(n) < prob
            mask[rng.integers(n)] = True  # at least one NaN per chosen column
            X[mask, j] = np.nan

    if objective is not None:
        z = (signal - signal.mean()) / max(float(signal.std()), 1e-12)
        y = _objective_labels(objective, z, rng)
    elif task == "regression":
        y = 10.0 * signal + 5.0
    else:
        # balanced classes by rank: every class has at least n // n_classes >= 2 rows
        ranks = np.argsort(np.argsort(signal, kind="stable"), kind="stable")
        y = (ranks * n_classes // n).astype(np.int64)

    names = tuple(c[0] for c in cats)
    if n_cat or as_frame:
        import pandas as pd

        frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(d)])
        for name, levels, codes in cats:
            frame[name] = pd.Categorical.from_codes(codes, categories=levels)
        X = frame
    return Dataset(X, y, task, names, with_nan, objective)


# each library's tree shape for a drawn depth, besides the depth itself
_SHAPE = {
    "sklearn_hgb": {"min_samples_leaf": 3},
    "lightgbm": {"min_child_samples": 3, "min_data_per_group": 3, "cat_smooth": 1.0},
    "xgboost": {"tree_method": "hist"},
}


def _estimator(library, task, data, *, n_estimators, depth, learning_rate, seed):
    """An unfitted model of ``library`` for ``task`` suited to ``data`` (and to its
    regression objective)."""
    shape = {"depth" if library == "catboost" else "max_depth": depth, **_SHAPE.get(library, {})}
    if library == "lightgbm":
        shape["num_leaves"] = 2**depth
    return make_model(
        library,
        task,
        n_estimators=n_estimators,
        learning_rate=learning_rate,
        random_state=seed,
        categorical=data.categorical,
        regression_objective=data.objective,
        **shape,
    )


def _compatible(library, data):
    if data.objective is not None and library not in OBJECTIVES[data.objective]:
        return False
    if data.has_nan and library not in _NAN_OK:
        return False
    if data.categorical and library not in _CAT_OK:
        return False
    if library == "sklearn_gb" and data.categorical:
        return False
    return True


# what an influence estimator raises for a model it does not explain
_REFUSALS = (UnsupportedModelError, LeafModelError, TrainingDataMismatchError)


def _method(method, forests):
    """An unfitted instance of the influence estimator ``method`` (class or instance;
    ``None`` for none) and whether random forests may be drawn for it."""
    if method is None:
        return None, forests
    if isinstance(method, type) and issubclass(method, BaseInfluence):
        method = method()
    elif isinstance(method, BaseInfluence):
        method = clone(method)
    else:
        raise TypeError(
            "method must be a skinfluence influence estimator (a class such as BoostIn or an "
            f"instance of one), got {method!r}"
        )
    return method, forests and method._accepts_forests


def _accepts(method, model, data):
    """Whether the influence estimator ``method`` (unfitted) explains the fitted ``model``
    trained on ``data``: fit it and see whether it refuses the model."""
    probe = clone(method).set_params(estimator=model)
    setup = getattr(probe, "_setup", None)
    if not probe._explains_trained_rows and setup is not None:
        # a retraining method (LOO, SubSample, DataShapley) refuses models in the checks
        # every method shares and in the setup of its refits (the model's refit
        # template): stop after that setup, skip the refits themselves
        probe._fit_influence = lambda X, leaves, y_enc, sample_weight: setup(
            X, y_enc, sample_weight
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the user's own fit shows them
            probe.fit(data.X, data.y)
    except _REFUSALS:
        return False
    return True


@st.composite
def _candidates(draw, data, libraries, forests, max_estimators, max_depth):
    """``(library, unfitted estimator)`` for ``data``, before any method's check."""
    installed = available_libraries(forests=forests)
    if libraries is None:
        pool = installed
    else:
        wanted = (libraries,) if isinstance(libraries, str) else tuple(libraries)
        bad = [lib for lib in wanted if lib not in LIBRARIES]
        if bad:
            raise ValueError(f"unknown libraries {bad}; choose from {LIBRARIES}")
        pool = tuple(lib for lib in wanted if lib in installed)
    pool = tuple(lib for lib in pool if _compatible(lib, data))
    if not pool:
        reject()  # no installed library can take this data set
    library = draw(st.sampled_from(pool))
    params = {
        "n_estimators": draw(st.integers(1, max_estimators)),
        "depth": draw(st.integers(1, max_depth)),
        "learning_rate": draw(st.sampled_from([0.1, 0.3, 1.0])),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }
    return library, _estimator(library, data.task, data, **params)


@st.composite
def models(draw, data, *, libraries=None, forests=True, max_estimators=8, max_depth=4, method=None):
    """Strategy for unfitted models suited to a given data set.

    Parameters
    ----------
    data : Dataset
        The data the model is for (its task, NaN and categorical columns decide the
        library's settings and which libraries qualify).
    libraries : str, sequence of str or None, default=None
        Keys of :data:`LIBRARIES` to draw from; ``None``: every installed one.
        Libraries that are not installed, or cannot take NaN or categorical columns
        when the data has them, are left out.
    forests : bool, default=True
        Allow random forests and extra trees (left out anyway when ``method`` does not
        explain forests).
    max_estimators, max_depth : int, default=8, 4
        Upper bounds of the number of trees (rounds) and of their depth.
    method : influence estimator class or instance, default=None
        Draw only models this skinfluence method (e.g. ``BoostIn`` or
        ``LeafInfluence(derivative="exact")``, whose settings count; its ``estimator``
        is ignored) accepts once fitted on ``data``. The method decides: libraries it
        refuses by kind (random forests for the gradient methods) are left out before
        drawing, and each drawn model is fitted on ``data`` (a copy: the returned
        estimator stays unfitted) and given to the method's ``fit``; the models it
        refuses (:class:`~skinfluence.UnsupportedModelError`,
        :class:`~skinfluence.LeafModelError`,
        :class:`~skinfluence.TrainingDataMismatchError`) are rejected, so hypothesis
        draws another. What is drawn thus follows what the installed skinfluence
        supports. The retraining methods (LOO, SubSample, DataShapley) are checked
        up to their refits, which are skipped. ``None``: any model.

    Returns
    -------
    strategy of (library, estimator)
        ``library`` is the key of :data:`LIBRARIES`, ``estimator`` unfitted.

    Raises
    ------
    TypeError
        If ``method`` is not a skinfluence influence estimator.

    Notes
    -----
    Rejections are rare with the default options (random forests are not drawn for
    methods that refuse them; CatBoost ``MultiClass`` models are explained by every
    method since their leaves are modelled as K x K Newton steps). If the method
    refuses every model the options allow, hypothesis fails its health check
    (``filter_too_much``) or reports the test as unsatisfiable.

    Examples
    --------
    >>> from hypothesis import given, settings, strategies as st
    >>> from skinfluence.testing.strategies import datasets, models
    >>> @settings(max_examples=5, deadline=None)
    ... @given(st.data())
    ... def test_fit_predict(draw):
    ...     data = draw.draw(datasets(task="regression"))
    ...     library, model = draw.draw(models(data, libraries=["sklearn_hgb"]))
    ...     assert model.fit(data.X, data.y).predict(data.X).shape == (len(data.y),)
    >>> test_fit_predict()

    Only models LeafInfluence explains (no forests, for one):

    >>> from skinfluence import LeafInfluence
    >>> @settings(max_examples=5, deadline=None)
    ... @given(st.data())
    ... def test_no_forests(draw):
    ...     data = draw.draw(datasets(task="binary", max_rows=30))
    ...     library, model = draw.draw(models(data, max_estimators=3, method=LeafInfluence))
    ...     assert library not in ("sklearn_rf", "sklearn_et")
    >>> test_no_forests()
    """
    probe, forests = _method(method, forests)
    library, model = draw(_candidates(data, libraries, forests, max_estimators, max_depth))
    if probe is not None and not _accepts(probe, clone(model).fit(data.X, data.y), data):
        reject()
    return library, model


@st.composite
def fitted_models(
    draw,
    data=None,
    *,
    task=None,
    libraries=None,
    forests=True,
    max_estimators=8,
    max_depth=4,
    nan=False,
    categorical=False,
    objective=None,
    method=None,
):
    """Strategy for tiny fitted models of every installed library, with their data.

    Parameters
    ----------
    data : strategy of Dataset, default=None
        Where the training data comes from; ``None``: ``datasets(task, nan=nan,
        categorical=categorical)``.
    task : str, sequence of str or None, default=None
        Task of the default data strategy (ignored when ``data`` is given).
    libraries, forests, max_estimators, max_depth
        As in :func:`models`.
    nan, categorical : bool or None, default=False
        Options of the default data strategy (see :func:`datasets`).
    objective : str, sequence of str or None, default=None
        Regression objectives of the default data strategy (see :func:`datasets`);
        only the libraries that have the drawn objective are drawn.
    method : influence estimator class or instance, default=None
        Draw only models this skinfluence method accepts, for which
        ``method(case.model).fit(case.X, case.y)`` does not refuse the model; checked
        as in :func:`models` (whose Notes say what is rejected, and which raises the
        same TypeError for anything else than an influence estimator).

    Returns
    -------
    strategy of FittedModel

    Notes
    -----
    Each example trains one model (a few milliseconds; CatBoost about a tenth of a
    second): keep ``max_examples`` modest (10 to 50) in tests. With ``method``, each
    example also fits that method once (without the refits of a retraining method).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from skinfluence import BoostIn
    >>> from skinfluence.testing.strategies import fitted_models
    >>> @settings(max_examples=5, deadline=None)
    ... @given(fitted_models(task="regression", forests=False,
    ...                      libraries=["sklearn_gb", "sklearn_hgb", "lightgbm"]))
    ... def test_self_influence_shape(case):
    ...     explainer = BoostIn(case.model).fit(case.X, case.y)
    ...     assert explainer.self_influence().shape == (len(case.y),)
    >>> test_self_influence_shape()

    Any library and task, but only the models BoostIn explains:

    >>> @settings(max_examples=5, deadline=None)
    ... @given(fitted_models(max_estimators=3, method=BoostIn))
    ... def test_boostin_fits(case):
    ...     BoostIn(case.model).fit(case.X, case.y)
    >>> test_boostin_fits()
    """
    if data is None:
        data = datasets(task, nan=nan, categorical=categorical, objective=objective)
    probe, forests = _method(method, forests)
    ds = draw(data)
    library, model = draw(_candidates(ds, libraries, forests, max_estimators, max_depth))
    model.fit(ds.X, ds.y)
    if probe is not None and not _accepts(probe, model, ds):
        reject()
    return FittedModel(model, ds.X, ds.y, ds.task, library)
