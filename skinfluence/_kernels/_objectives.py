"""The objectives inside the kernels: codes, links, per-row loss, gradient and hessian.

Objective codes (the ``objective`` argument of every kernel): ``SQUARED_ERROR`` (0,
loss ``(y - f)**2 / 2``), ``BINARY`` (1, log-loss of ``sigmoid(f)``), ``MULTICLASS`` (2,
log-loss of ``softmax(f)``) and ``VALUE`` (3, the label-free regression output
``psi(f) = -f``: gradient -1, hessian 0). Labels are floats: the target for regression,
the class index for classification. Derivatives are with respect to the raw score
``f``; probabilities are clipped to ``[PROBA_CLIP, 1 - PROBA_CLIP]`` before the log of
a loss (never in a gradient). :mod:`skinfluence._objectives` holds the same formulas
for whole arrays in numpy.

numba's cache tracks the source file of each cached function only: after editing this
module, clear the caches of the kernels that use it (``_trees``, ``_similarity``,
``_leaf_influence``; or set ``SKINFLUENCE_NUMBA_CACHE=0``) or they keep the old code.
"""

import numpy as np

from ._jit import njit

SQUARED_ERROR = 0
BINARY = 1
MULTICLASS = 2
VALUE = 3

#: probabilities are clipped to ``[PROBA_CLIP, 1 - PROBA_CLIP]`` before the log
PROBA_CLIP = 1e-5


@njit
def sigmoid(z):
    """``1 / (1 + exp(-z))`` without overflow for either sign of ``z``."""
    if z >= 0:
        return 1.0 / (1.0 + np.exp(-z))
    e = np.exp(z)
    return e / (1.0 + e)


@njit
def _row_max(f):
    m = f[0]
    for k in range(1, f.shape[0]):
        if f[k] > m:
            m = f[k]
    return m


@njit
def softmax_into(f, out):
    """Write ``softmax(f)`` (K,) into ``out`` (max-shifted, summed in column order)."""
    m = _row_max(f)
    s = 0.0
    for k in range(f.shape[0]):
        out[k] = np.exp(f[k] - m)
        s += out[k]
    for k in range(f.shape[0]):
        out[k] /= s


@njit
def clip_proba(p):
    """``p`` clipped to ``[PROBA_CLIP, 1 - PROBA_CLIP]``."""
    if p < PROBA_CLIP:
        return PROBA_CLIP
    if p > 1.0 - PROBA_CLIP:
        return 1.0 - PROBA_CLIP
    return p


@njit
def row_loss(objective, y, f):
    """Loss of one row at raw score ``f`` (K,), with clipped probabilities."""
    if objective == SQUARED_ERROR:
        d = y - f[0]
        return 0.5 * d * d
    if objective == VALUE:
        return -f[0]
    if objective == BINARY:
        p = clip_proba(sigmoid(f[0]))
        if y == 1.0:
            return -np.log(p)
        return -np.log1p(-p)
    # multiclass: the true class's entry of softmax_into, without a buffer
    m = _row_max(f)
    s = 0.0
    for k in range(f.shape[0]):
        s += np.exp(f[k] - m)
    p = clip_proba(np.exp(f[int(y)] - m) / s)
    return -np.log(p)


@njit
def grad_hess_row(objective, y, f, k, c, p_buf, out):
    """Gradient and hessian of raw-score column ``k`` at ``f`` into ``out[0]``, ``out[1]``.

    ``p_buf`` holds ``softmax(f)`` (multiclass only); ``c`` scales the multiclass
    hessian. When ``out`` has a third entry it receives ``kappa``, the derivative of
    the hessian with respect to ``f[k]`` (0 for the squared error and the value).
    """
    if objective == SQUARED_ERROR:
        g = f[k] - y
        h = 1.0
        kap = 0.0
    elif objective == BINARY:
        p = sigmoid(f[k])
        g = p - y
        h = p * (1.0 - p)
        kap = p * (1.0 - p) * (1.0 - 2.0 * p)
    elif objective == MULTICLASS:
        p = p_buf[k]
        g = p - (1.0 if int(y) == k else 0.0)
        h = c * p * (1.0 - p)
        kap = c * p * (1.0 - p) * (1.0 - 2.0 * p)
    else:
        g = -1.0
        h = 0.0
        kap = 0.0
    out[0] = g
    out[1] = h
    if out.shape[0] > 2:
        out[2] = kap
