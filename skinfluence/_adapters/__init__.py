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


def unwrap_model(model):
    """Peel ``FrozenEstimator`` and ``Pipeline`` wrappers.

    Returns ``(final_model, preprocess)`` where ``preprocess`` is ``None`` or a callable
    applying the pipeline's earlier steps to X.
    """
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    preprocess = None
    while True:
        if isinstance(model, FrozenEstimator):
            model = model.estimator
        elif isinstance(model, Pipeline):
            head = model[:-1]
            model = model.steps[-1][1]
            if len(head.steps):
                if preprocess is None:
                    preprocess = head.transform
                else:
                    outer = preprocess
                    preprocess = lambda X, _o=outer, _h=head: _h.transform(_o(X))  # noqa: E731
            if model == "passthrough" or model is None:
                raise UnsupportedModelError("the pipeline's last step is not a model")
        else:
            return model, preprocess


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
