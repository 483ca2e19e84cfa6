"""Adapters: a fitted model of any supported library -> :class:`TreeEnsemble`.

One private module per library; :func:`to_ensemble` is the single entry point. Optional
libraries are imported only when a model of theirs is given.
"""

import importlib

from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from ._base import UnsupportedModelError, import_optional

__all__ = ["to_ensemble", "unwrap_model", "UnsupportedModelError", "SUPPORTED"]

SUPPORTED = (
    "lightgbm: LGBMClassifier, LGBMRegressor, lightgbm.Booster; "
    "xgboost: XGBClassifier, XGBRegressor, xgboost.Booster; "
    "catboost: CatBoostClassifier, CatBoostRegressor; "
    "scikit-learn: GradientBoosting*, HistGradientBoosting*, RandomForest*, ExtraTrees*"
)

_ADAPTER_MODULE = {
    "lightgbm": "._lightgbm",
    "xgboost": "._xgboost",
    "catboost": "._catboost",
    "sklearn": "._sklearn",
}


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
    root = type(model).__module__.split(".")[0]
    return root if root in _ADAPTER_MODULE else None


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
    lib = library_of(final)
    if lib is None:
        raise UnsupportedModelError(
            f"models of type {type(final).__module__}.{type(final).__name__} are not "
            f"supported. Supported: {SUPPORTED}."
        )
    if isinstance(final, BaseEstimator) and lib != "sklearn":
        pass  # each adapter checks fittedness in the library's own way
    Xm = X if (X is None or preprocess is None) else preprocess(X)
    module = importlib.import_module(_ADAPTER_MODULE[lib], __name__)
    ens = module.to_ensemble(final, X=Xm, y=y, sample_weight=sample_weight)
    ens.preprocess = preprocess
    return ens


def check_fitted_model(model):
    """Raise NotFittedError for an unfitted scikit-learn-style model."""
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise NotFittedError(
            f"the {type(model).__name__} given as estimator is not fitted: fit it first, "
            "or pass it unfitted to an influence estimator so that fit trains it"
        ) from exc


_ = import_optional  # re-exported for adapters
