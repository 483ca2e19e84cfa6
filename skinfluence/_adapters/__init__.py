"""Adapters: everything skinfluence knows about the model libraries.

One private module per library implements the same hooks (:doc:`adding_a_library`
states their contracts):

* ``to_ensemble(model, X=None, y=None, sample_weight=None)``: the
  :class:`~skinfluence._ensemble.TreeEnsemble` of a fitted model;
* ``is_fitted(model)``: whether the model is fitted (``False`` makes the influence
  estimators clone and fit it);
* ``refit_template(model)``: an unfitted copy with the same hyperparameters and seed and
  one thread, for the methods that refit the model;
* ``default_model(regression, n_rows)``: only in the module of ``DEFAULT_LIBRARY``, the
  model fitted when the user gives none.

and optionally

* ``takes_raw_input(model)``: whether the model takes X as the user gives it (string
  or categorical columns of a numpy object array) rather than as float64.

:data:`_REGISTRY` maps the top-level module of a model's class to its adapter module,
which is imported only when a model of that library is given. The functions below peel
``FrozenEstimator`` and ``Pipeline`` wrappers and dispatch to the hooks; the rest of the
package calls only them.
"""

import contextlib
import importlib

from sklearn.exceptions import NotFittedError

from ._base import (
    UnsupportedModelError,
    estimator_is_fitted,
    import_optional,
    one_thread_clone,
)

__all__ = [
    "to_ensemble",
    "unwrap_model",
    "is_fitted",
    "takes_raw_input",
    "refit_template",
    "default_model",
    "default_model_has",
    "UnsupportedModelError",
    "SUPPORTED",
]

SUPPORTED = (
    "lightgbm: LGBMClassifier, LGBMRegressor, lightgbm.Booster; "
    "xgboost: XGBClassifier, XGBRegressor, xgboost.Booster; "
    "catboost: CatBoostClassifier, CatBoostRegressor; "
    "scikit-learn: GradientBoosting*, HistGradientBoosting*, RandomForest*, ExtraTrees*"
)

#: top-level module of a model's class -> its adapter module (relative to this package,
#: or absolute)
_REGISTRY = {
    "lightgbm": "._lightgbm",
    "xgboost": "._xgboost",
    "catboost": "._catboost",
    "sklearn": "._sklearn",
}

#: the library whose ``default_model`` hook builds the model fitted when none is given
DEFAULT_LIBRARY = "sklearn"


class _Preprocess:
    """The earlier steps of (nested) pipelines, applied to X in order.

    A plain object rather than a closure, so that an explainer holding it can be
    pickled (joblib, ``GridSearchCV(n_jobs>1)``).

    Parameters
    ----------
    heads : tuple of Pipeline
        The pipelines' steps before their last one, outermost pipeline first.
    """

    def __init__(self, heads):
        self.heads = tuple(heads)

    def __call__(self, X):
        for head in self.heads:
            X = head.transform(X)
        return X

    @property
    def n_features_in(self):
        """Number of columns the outermost pipeline takes (None if it does not say)."""
        n = getattr(self.heads[0], "n_features_in_", None)
        return None if n is None else int(n)


def unwrap_model(model):
    """Peel ``FrozenEstimator`` and ``Pipeline`` wrappers.

    Returns ``(final_model, preprocess)`` where ``preprocess`` is ``None`` or a
    picklable callable applying the pipelines' earlier steps to X (a ``_Preprocess``).
    """
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    heads = []
    while True:
        if isinstance(model, FrozenEstimator):
            model = model.estimator
        elif isinstance(model, Pipeline):
            head = model[:-1]
            model = model.steps[-1][1]
            if len(head.steps):
                heads.append(head)
            if model == "passthrough" or model is None:
                raise UnsupportedModelError("the pipeline's last step is not a model")
        else:
            return model, (_Preprocess(heads) if heads else None)


def library_of(model):
    """The registry key of an (unwrapped) model, or None for an unsupported library."""
    root = type(model).__module__.split(".")[0]
    return root if root in _REGISTRY else None


def _hooks(library):
    """The adapter module of a registered library (imported on first use)."""
    return importlib.import_module(_REGISTRY[library], __name__)


def _hooks_of(model):
    """The adapter module of an (unwrapped) model, or UnsupportedModelError."""
    library = library_of(model)
    if library is None:
        raise UnsupportedModelError(
            f"models of type {type(model).__module__}.{type(model).__name__} are not "
            f"supported. Supported: {SUPPORTED}."
        )
    return _hooks(library)


@contextlib.contextmanager
def _registered(library, module):
    """Register an adapter module for the duration of a ``with`` block (for tests).

    Parameters
    ----------
    library : str
        Top-level module name of the model classes to route to the adapter.
    module : str
        Absolute name of an importable module implementing the hooks.
    """
    previous = _REGISTRY.get(library)
    _REGISTRY[library] = module
    try:
        yield
    finally:
        if previous is None:
            del _REGISTRY[library]
        else:
            _REGISTRY[library] = previous


def to_ensemble(model, X=None, y=None, sample_weight=None):
    """Build the :class:`~skinfluence._ensemble.TreeEnsemble` of a fitted model.

    Parameters
    ----------
    model : fitted model, ``FrozenEstimator`` or ``Pipeline`` ending in one
    X, y, sample_weight : optional
        The training data; some libraries do not store everything the ensemble needs
        (LightGBM's initial score is recomputed from ``y`` and ``sample_weight``).

    Raises
    ------
    UnsupportedModelError
        For a library, model class or objective that is not supported.
    sklearn.exceptions.NotFittedError
        For an unfitted model.
    """
    final, preprocess = unwrap_model(model)
    hooks = _hooks_of(final)
    if not hooks.is_fitted(final):
        raise NotFittedError(
            f"this {type(final).__name__} is not fitted: call fit on it first, or pass "
            "it unfitted to an influence estimator so that its fit trains it"
        )
    Xm = X if (X is None or preprocess is None) else preprocess(X)
    ens = hooks.to_ensemble(final, X=Xm, y=y, sample_weight=sample_weight)
    ens.preprocess = preprocess
    return ens


def takes_raw_input(model):
    """Whether X must reach ``model`` (possibly wrapped) with its own dtypes.

    True for a ``Pipeline`` with steps before its model (they get X as given) and for
    a model whose adapter's optional ``takes_raw_input`` hook says so (CatBoost with
    categorical features); False otherwise, and then arrays are converted to float64.
    """
    final, preprocess = unwrap_model(model)
    if preprocess is not None:
        return True
    library = library_of(final)
    hook = None if library is None else getattr(_hooks(library), "takes_raw_input", None)
    return bool(hook(final)) if hook is not None else False


def is_fitted(model):
    """Whether a model (possibly wrapped) is already fitted.

    A model of an unsupported library is asked as any scikit-learn estimator is.
    """
    final, _ = unwrap_model(model)
    library = library_of(final)
    if library is not None:
        return bool(_hooks(library).is_fitted(final))
    return estimator_is_fitted(model)


def refit_template(model):
    """An unfitted copy of ``model`` to refit: same hyperparameters and seed, one thread.

    ``FrozenEstimator`` is unwrapped (a frozen model cannot be refit); in a ``Pipeline``
    the final model is replaced by its refit template and the other steps are cloned as
    usual (so they are refit on each subset too, unless frozen). A model of an
    unsupported library is cloned with its thread-count parameters set to 1.
    """
    from sklearn.base import clone
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    if isinstance(model, FrozenEstimator):
        return refit_template(model.estimator)
    if isinstance(model, Pipeline):
        pipe = clone(model)
        name, last = model.steps[-1]
        pipe.steps[-1] = (name, refit_template(last))
        return pipe
    library = library_of(model)
    if library is None:
        return one_thread_clone(model)
    return _hooks(library).refit_template(model)


def default_model(y):
    """The unfitted model fitted when the user gives none, for the task of ``y``."""
    from sklearn.utils.multiclass import type_of_target

    regression = type_of_target(y) in ("continuous", "continuous-multioutput")
    return _hooks(DEFAULT_LIBRARY).default_model(regression, len(y))


def default_model_has(attr):
    """Whether the default model's class has ``attr`` for either task."""
    hooks = _hooks(DEFAULT_LIBRARY)
    return any(hasattr(type(hooks.default_model(r, 0)), attr) for r in (False, True))


_ = import_optional  # re-exported for adapters
