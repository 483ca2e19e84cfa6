"""Objectives in numpy: names and codes, links, loss, gradient, and model losses.

Derivatives are with respect to the raw score (margin) ``F`` of shape ``(n, K)``.
Labels are floats for regression and class indices ``0..K-1`` (binary: ``{0, 1}``) for
classification. Probabilities are clipped to ``[PROBA_CLIP, 1 - PROBA_CLIP]`` before
the log of a loss, as in the JMLR 2023 paper's evaluation; the squared loss keeps its
factor 1/2. ``objective="value"`` is the label-free regression output
``psi(F) = -F``. The kernels use the same codes and formulas, one row at a time, from
:mod:`skinfluence._kernels._objectives`.

The regression objectives (:data:`REGRESSION_OBJECTIVES`: float labels, prediction =
inverse link of the raw score) besides the squared error are ``"poisson"``,
``"gamma"`` and ``"tweedie"`` (log link), ``"cross_entropy"`` (logit link, labels in
``[0, 1]``), ``"pseudo_huber"`` and ``"huber"`` (identity link); ``param`` is the
objective's parameter (Tweedie variance power, pseudo-Huber slope, Huber threshold;
unused by the losses otherwise).
"""

import numpy as np
from scipy.special import expit, log_softmax, softmax

from ._kernels._objectives import (
    BINARY,
    CROSS_ENTROPY,
    GAMMA,
    HUBER,
    MULTICLASS,
    POISSON,
    PROBA_CLIP,
    PSEUDO_HUBER,
    SQUARED_ERROR,
    TWEEDIE,
    VALUE,
)

__all__ = [
    "OBJECTIVES",
    "OBJECTIVE_CODE",
    "PROBA_CLIP",
    "REGRESSION_OBJECTIVES",
    "is_regression",
    "clipped_true_proba",
    "gradient",
    "loss",
    "model_loss",
    "model_prediction",
    "model_proba",
    "predict_from_raw",
    "proba_from_raw",
    "raw_from_prediction",
    "regression_hessian",
    "squared_loss",
    "unclipped_loss",
    "uninformed_loss",
]

#: objectives with float labels whose prediction is the inverse link of the raw score
REGRESSION_OBJECTIVES = (
    "squared_error",
    "poisson",
    "gamma",
    "tweedie",
    "cross_entropy",
    "pseudo_huber",
    "huber",
)
OBJECTIVES = (*REGRESSION_OBJECTIVES, "binary", "multiclass")
OBJECTIVE_CODE = {
    "squared_error": SQUARED_ERROR,
    "binary": BINARY,
    "multiclass": MULTICLASS,
    "value": VALUE,
    "poisson": POISSON,
    "gamma": GAMMA,
    "tweedie": TWEEDIE,
    "cross_entropy": CROSS_ENTROPY,
    "pseudo_huber": PSEUDO_HUBER,
    "huber": HUBER,
}
_LOG_LINK = ("poisson", "gamma", "tweedie")


def is_regression(objective):
    """Whether ``objective`` takes float labels (and ``"value"``, the label-free
    regression output) rather than class indices."""
    return objective in REGRESSION_OBJECTIVES or objective == "value"


def _regression_loss(objective, y, z, param, clip=True):
    """Loss of the regression objectives other than the squared error at raw scores
    ``z`` ``(n,)``."""
    y = np.asarray(y, dtype=np.float64)
    if objective == "poisson":
        return np.exp(z) - y * z
    if objective == "gamma":
        return y * np.exp(-z) + z
    if objective == "tweedie":
        rho = param
        return -y * np.exp((1 - rho) * z) / (1 - rho) + np.exp((2 - rho) * z) / (2 - rho)
    if objective == "cross_entropy":
        if not clip:
            return y * np.logaddexp(0.0, -z) + (1 - y) * np.logaddexp(0.0, z)
        p = np.clip(expit(z), PROBA_CLIP, 1 - PROBA_CLIP)
        return -(y * np.log(p) + (1 - y) * np.log1p(-p))
    r = z - y
    if objective == "pseudo_huber":
        return param**2 * (np.sqrt(1 + (r / param) ** 2) - 1)
    if objective == "huber":
        a = np.abs(r)
        return np.where(a <= param, 0.5 * r * r, param * (a - 0.5 * param))
    raise ValueError(f"unknown objective {objective!r}")


def _regression_gradient(objective, y, z, param):
    y = np.asarray(y, dtype=np.float64)
    if objective == "poisson":
        return np.exp(z) - y
    if objective == "gamma":
        return 1 - y * np.exp(-z)
    if objective == "tweedie":
        return np.exp((2 - param) * z) - y * np.exp((1 - param) * z)
    if objective == "cross_entropy":
        return expit(z) - y
    r = z - y
    if objective == "pseudo_huber":
        return r / np.sqrt(1 + (r / param) ** 2)
    if objective == "huber":
        return np.clip(r, -param, param)
    raise ValueError(f"unknown objective {objective!r}")


# ------------------------------------------------------------------ pieces of losses
def squared_loss(y, pred):
    """``0.5 (y - pred)**2`` per row."""
    return 0.5 * (np.asarray(y, dtype=np.float64) - pred) ** 2


def clipped_true_proba(P, y_idx):
    """Probability ``P[i, y_idx[i]]`` of each row's true class, clipped to
    ``[PROBA_CLIP, 1 - PROBA_CLIP]`` (its negative log is the clipped log-loss)."""
    return np.clip(P[np.arange(len(P)), y_idx], PROBA_CLIP, 1 - PROBA_CLIP)


# ------------------------------------------------------------------ raw scores
def loss(objective, y, F, param=0.0):
    """Per-row loss ``(n,)`` at raw scores ``F`` ``(n, K)``.

    ``objective="value"`` is the label-free regression output ``psi(F) = -F``.
    """
    F = np.asarray(F, dtype=np.float64)
    if objective == "squared_error":
        return squared_loss(y, F[:, 0])
    if objective == "value":
        return -F[:, 0]
    if objective in REGRESSION_OBJECTIVES:
        return _regression_loss(objective, y, F[:, 0], param)
    y = np.asarray(y).astype(np.intp)
    if objective == "binary":
        p = np.clip(expit(F[:, 0]), PROBA_CLIP, 1 - PROBA_CLIP)
        return -np.where(y == 1, np.log(p), np.log1p(-p))
    if objective == "multiclass":
        return -np.log(clipped_true_proba(softmax(F, axis=1), y))
    raise ValueError(f"unknown objective {objective!r}")


def gradient(objective, y, F, param=0.0):
    """Gradient ``(n, K)`` of the (unclipped) loss with respect to ``F``."""
    F = np.asarray(F, dtype=np.float64)
    if objective == "squared_error":
        return F - np.asarray(y, dtype=np.float64).reshape(-1, 1)
    if objective == "value":
        return -np.ones_like(F)
    if objective in REGRESSION_OBJECTIVES:
        return _regression_gradient(objective, y, F[:, 0], param).reshape(-1, 1)
    y = np.asarray(y).astype(np.intp)
    if objective == "binary":
        return expit(F) - y.reshape(-1, 1)
    if objective == "multiclass":
        g = softmax(F, axis=1)
        g[np.arange(len(y)), y] -= 1.0
        return g
    raise ValueError(f"unknown objective {objective!r}")


def regression_hessian(objective, y, F, param=0.0):
    """Hessian ``(n, 1)`` of a regression objective as the libraries' leaves use it
    (Poisson: ``exp(F + param)``, ``param`` the hessian offset; Huber: 1)."""
    z = np.asarray(F, dtype=np.float64)[:, 0]
    y = np.asarray(y, dtype=np.float64)
    if objective in ("squared_error", "huber"):
        h = np.ones_like(z)
    elif objective == "poisson":
        h = np.exp(z + param)
    elif objective == "gamma":
        h = y * np.exp(-z)
    elif objective == "tweedie":
        h = (2 - param) * np.exp((2 - param) * z) - (1 - param) * y * np.exp((1 - param) * z)
    elif objective == "cross_entropy":
        p = expit(z)
        h = p * (1 - p)
    elif objective == "pseudo_huber":
        h = (1 + ((z - y) / param) ** 2) ** -1.5
    else:
        raise ValueError(f"{objective!r} is not a regression objective")
    return h.reshape(-1, 1)


def unclipped_loss(objective, y, F, param=0.0):
    """Exact loss without probability clipping (stable log-sigmoid / log-softmax)."""
    F = np.asarray(F, dtype=np.float64)
    if objective in ("squared_error", "value"):
        return loss(objective, y, F)
    if objective in REGRESSION_OBJECTIVES:
        return _regression_loss(objective, y, F[:, 0], param, clip=False)
    y = np.asarray(y).astype(np.intp)
    if objective == "binary":
        z = F[:, 0]
        return np.logaddexp(0.0, np.where(y == 1, -z, z))
    return -log_softmax(F, axis=1)[np.arange(len(y)), y]


def predict_from_raw(objective, F):
    """Predicted label (classification) or value (regression: the inverse link of the
    raw score) from raw scores."""
    F = np.asarray(F, dtype=np.float64)
    if objective == "binary":
        return (F[:, 0] > 0).astype(np.intp)
    if objective == "multiclass":
        return np.argmax(F, axis=1)
    if objective in _LOG_LINK:
        return np.exp(F[:, 0])
    if objective == "cross_entropy":
        return expit(F[:, 0])
    return F[:, 0].copy()


def proba_from_raw(objective, F):
    """Class probabilities ``(n, n_classes)`` from raw scores (the inverse link)."""
    F = np.asarray(F, dtype=np.float64)
    if objective == "binary":
        p = expit(F[:, 0])
        return np.column_stack([1 - p, p])
    if objective == "multiclass":
        return softmax(F, axis=1)
    raise ValueError("probabilities are only defined for classification")


# ------------------------------------------------------------------ fitted models
def model_proba(model, X, classes):
    """``model.predict_proba(X)`` with its columns placed at the positions of
    ``classes`` (the full label set); a class the model never saw (a refit on a subset)
    has probability 0 (a loss then clips it)."""
    P = np.asarray(model.predict_proba(X), dtype=np.float64)
    model_classes = np.asarray(model.classes_)
    if np.array_equal(model_classes, classes):
        return P
    pos = {c: j for j, c in enumerate(np.asarray(classes).tolist())}
    full = np.zeros((len(P), len(classes)))
    for j, c in enumerate(model_classes.tolist()):
        if c in pos:
            full[:, pos[c]] = P[:, j]
    return full


def model_prediction(model, X):
    """``model.predict(X)`` as float64 ``(n,)`` (the first output of a multi-output
    model)."""
    pred = np.asarray(model.predict(X), dtype=np.float64)
    return pred.reshape(pred.shape[0], -1)[:, 0]


def uninformed_loss(objective, classes):
    """Loss of the model that has seen no data: 0 (regression), ln 2 (binary) or
    ln K (``K`` classes)."""
    if objective in ("binary", "multiclass"):
        return float(np.log(max(2, len(classes))))
    return 0.0


def raw_from_prediction(objective, pred):
    """The raw score whose inverse link is the prediction ``pred`` ``(n,)`` of a
    regression objective (log, logit or identity)."""
    pred = np.asarray(pred, dtype=np.float64)
    with np.errstate(divide="ignore"):
        if objective in _LOG_LINK:
            return np.log(pred)
        if objective == "cross_entropy":
            return np.log(pred) - np.log1p(-pred)
    return pred


def model_loss(model, X, y, objective, classes, param=0.0, link=None):
    """Per-row loss of a fitted model's own predictions on ``(X, y)``.

    Classification (``y`` class indices into ``classes``): the clipped log-loss of
    ``predict_proba``; regression: ``0.5 (y - predict)**2``, or the objective's own
    loss (parameter ``param``) at the raw score of the prediction; ``objective="value"``:
    the negated raw score. ``link``: the regression objective whose inverse link the
    prediction is (:func:`raw_from_prediction`); ``None``: the prediction is the raw
    score (the squared error; XGBoost ``binary:logitraw``).
    ``model=None`` is the uninformed model (:func:`uninformed_loss`).
    """
    if model is None:
        return np.full(len(y), uninformed_loss(objective, classes))
    if objective in ("binary", "multiclass"):
        P = model_proba(model, X, classes)
        return -np.log(clipped_true_proba(P, np.asarray(y).astype(np.intp)))
    pred = model_prediction(model, X)
    if objective == "squared_error":
        return squared_loss(y, pred)
    raw = pred if link is None else raw_from_prediction(link, pred)
    if objective == "value":
        return -raw
    return loss(objective, y, raw[:, None], param)
