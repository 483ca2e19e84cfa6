"""Objectives: loss value, gradient and hessian with respect to the raw score.

All derivatives are with respect to the raw score (margin) ``F`` of shape ``(n, K)``.
Labels are floats for regression and class indices ``0..K-1`` (binary: ``{0, 1}``) for
classification. Probabilities are clipped to ``[1e-5, 1 - 1e-5]`` before the log, as in
the JMLR 2023 paper's evaluation; the squared loss keeps its factor 1/2.
"""

import numpy as np
from scipy.special import expit, log_softmax, softmax

from ._kernels._trees import BINARY, MULTICLASS, SQUARED_ERROR, VALUE

OBJECTIVES = ("squared_error", "binary", "multiclass")
OBJECTIVE_CODE = {
    "squared_error": SQUARED_ERROR,
    "binary": BINARY,
    "multiclass": MULTICLASS,
    "value": VALUE,
}
PROBA_CLIP = 1e-5


def loss(objective, y, F):
    """Per-row loss ``(n,)`` at raw scores ``F`` ``(n, K)``.

    ``objective="value"`` is the label-free regression output ``psi(F) = -F``.
    """
    F = np.asarray(F, dtype=np.float64)
    if objective == "squared_error":
        return 0.5 * (np.asarray(y, dtype=np.float64) - F[:, 0]) ** 2
    if objective == "value":
        return -F[:, 0]
    y = np.asarray(y).astype(np.intp)
    if objective == "binary":
        p = np.clip(expit(F[:, 0]), PROBA_CLIP, 1 - PROBA_CLIP)
        return -np.where(y == 1, np.log(p), np.log1p(-p))
    if objective == "multiclass":
        p = np.clip(softmax(F, axis=1), PROBA_CLIP, 1 - PROBA_CLIP)
        return -np.log(p[np.arange(len(y)), y])
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
    """Class probabilities ``(n, n_classes)`` from raw scores."""
    F = np.asarray(F, dtype=np.float64)
    if objective == "binary":
        p = expit(F[:, 0])
        return np.column_stack([1 - p, p])
    if objective == "multiclass":
        return softmax(F, axis=1)
    raise ValueError("probabilities are only defined for classification")
