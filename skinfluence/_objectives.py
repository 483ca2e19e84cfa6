"""Objectives in numpy: names and codes, links, loss, gradient, and model losses.

Derivatives are with respect to the raw score (margin) ``F`` of shape ``(n, K)``.
Labels are floats for regression and class indices ``0..K-1`` (binary: ``{0, 1}``) for
classification. Probabilities are clipped to ``[PROBA_CLIP, 1 - PROBA_CLIP]`` before
the log of a loss, as in the JMLR 2023 paper's evaluation; the squared loss keeps its
factor 1/2. ``objective="value"`` is the label-free regression output
``psi(F) = -F``. The kernels use the same codes and formulas, one row at a time, from
:mod:`skinfluence._kernels._objectives`.
"""

import numpy as np
from scipy.special import expit, log_softmax, softmax

from ._kernels._objectives import BINARY, MULTICLASS, PROBA_CLIP, SQUARED_ERROR, VALUE

__all__ = [
    "OBJECTIVES",
    "OBJECTIVE_CODE",
    "PROBA_CLIP",
    "clipped_true_proba",
    "gradient",
    "loss",
    "model_loss",
    "model_prediction",
    "model_proba",
    "predict_from_raw",
    "proba_from_raw",
    "squared_loss",
    "unclipped_loss",
    "uninformed_loss",
]

OBJECTIVES = ("squared_error", "binary", "multiclass")
OBJECTIVE_CODE = {
    "squared_error": SQUARED_ERROR,
    "binary": BINARY,
    "multiclass": MULTICLASS,
    "value": VALUE,
}


# ------------------------------------------------------------------ pieces of losses
def squared_loss(y, pred):
    """``0.5 (y - pred)**2`` per row."""
    return 0.5 * (np.asarray(y, dtype=np.float64) - pred) ** 2


def clipped_true_proba(P, y_idx):
    """Probability ``P[i, y_idx[i]]`` of each row's true class, clipped to
    ``[PROBA_CLIP, 1 - PROBA_CLIP]`` (its negative log is the clipped log-loss)."""
    return np.clip(P[np.arange(len(P)), y_idx], PROBA_CLIP, 1 - PROBA_CLIP)


# ------------------------------------------------------------------ raw scores
def loss(objective, y, F):
    """Per-row loss ``(n,)`` at raw scores ``F`` ``(n, K)``.

    ``objective="value"`` is the label-free regression output ``psi(F) = -F``.
    """
    F = np.asarray(F, dtype=np.float64)
    if objective == "squared_error":
        return squared_loss(y, F[:, 0])
    if objective == "value":
        return -F[:, 0]
    y = np.asarray(y).astype(np.intp)
    if objective == "binary":
        p = np.clip(expit(F[:, 0]), PROBA_CLIP, 1 - PROBA_CLIP)
        return -np.where(y == 1, np.log(p), np.log1p(-p))
    if objective == "multiclass":
        return -np.log(clipped_true_proba(softmax(F, axis=1), y))
    raise ValueError(f"unknown objective {objective!r}")


def gradient(objective, y, F):
    """Gradient ``(n, K)`` of the (unclipped) loss with respect to ``F``."""
    F = np.asarray(F, dtype=np.float64)
    if objective == "squared_error":
        return F - np.asarray(y, dtype=np.float64).reshape(-1, 1)
    if objective == "value":
        return -np.ones_like(F)
    y = np.asarray(y).astype(np.intp)
    if objective == "binary":
        return expit(F) - y.reshape(-1, 1)
    if objective == "multiclass":
        g = softmax(F, axis=1)
        g[np.arange(len(y)), y] -= 1.0
        return g
    raise ValueError(f"unknown objective {objective!r}")


def unclipped_loss(objective, y, F):
    """Exact loss without probability clipping (stable log-sigmoid / log-softmax)."""
    F = np.asarray(F, dtype=np.float64)
    if objective in ("squared_error", "value"):
        return loss(objective, y, F)
    y = np.asarray(y).astype(np.intp)
    if objective == "binary":
        z = F[:, 0]
        return np.logaddexp(0.0, np.where(y == 1, -z, z))
    return -log_softmax(F, axis=1)[np.arange(len(y)), y]


def predict_from_raw(objective, F):
    """Predicted label (classification) or value (regression) from raw scores."""
    F = np.asarray(F, dtype=np.float64)
    if objective == "binary":
        return (F[:, 0] > 0).astype(np.intp)
    if objective == "multiclass":
        return np.argmax(F, axis=1)
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


def model_loss(model, X, y, objective, classes):
    """Per-row loss of a fitted model's own predictions on ``(X, y)``.

    Classification (``y`` class indices into ``classes``): the clipped log-loss of
    ``predict_proba``; regression: ``0.5 (y - predict)**2``; ``objective="value"``: the
    negated prediction. ``model=None`` is the uninformed model (:func:`uninformed_loss`).
    """
    if model is None:
        return np.full(len(y), uninformed_loss(objective, classes))
    if objective in ("binary", "multiclass"):
        P = model_proba(model, X, classes)
        return -np.log(clipped_true_proba(P, np.asarray(y).astype(np.intp)))
    pred = model_prediction(model, X)
    if objective == "value":
        return -pred
    return squared_loss(y, pred)
