"""The objectives inside the kernels: codes, links, per-row loss, gradient and hessian.

Objective codes (the ``objective`` argument of every kernel): ``SQUARED_ERROR`` (0,
loss ``(y - f)**2 / 2``), ``BINARY`` (1, log-loss of ``sigmoid(f)``), ``MULTICLASS`` (2,
log-loss of ``softmax(f)``), ``VALUE`` (3, the label-free regression output
``psi(f) = -f``: gradient -1, hessian 0), ``POISSON`` (4, ``exp(f) - y f``), ``GAMMA``
(5, ``y exp(-f) + f``), ``TWEEDIE`` (6, ``-y exp((1-rho) f)/(1-rho) + exp((2-rho) f)/
(2-rho)``), ``CROSS_ENTROPY`` (7, log-loss of ``sigmoid(f)`` against a label in
``[0, 1]``), ``PSEUDO_HUBER`` (8, ``delta**2 (sqrt(1 + (r/delta)**2) - 1)``, ``r = f -
y``) and ``HUBER`` (9, ``r**2/2`` for ``|r| <= alpha``, else ``alpha (|r| - alpha/2)``).
Labels are floats: the target for regression, the class index for classification.
Derivatives are with respect to the raw score ``f``; probabilities are clipped to
``[PROBA_CLIP, 1 - PROBA_CLIP]`` before the log of a loss (never in a gradient).
:mod:`skinfluence._objectives` holds the same formulas for whole arrays in numpy.

Every kernel takes one float ``c``, the objective's parameter: the multiclass hessian
factor, the Tweedie variance power ``rho``, the pseudo-Huber slope ``delta``, the Huber
threshold ``alpha``, or the Poisson hessian offset ``a`` (the hessian is ``exp(f + a)``,
a safeguard of LightGBM and XGBoost; 0 for the true hessian). The hessian ``h`` is the
one the library's leaf uses; where it is not the derivative of the gradient (Poisson
with ``a > 0``; Huber, whose hessian is 1 outside ``|r| <= alpha`` too),
:func:`grad_hess_row` also gives that derivative, the *slope* ``dg/df``.

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
POISSON = 4
GAMMA = 5
TWEEDIE = 6
CROSS_ENTROPY = 7
PSEUDO_HUBER = 8
HUBER = 9

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
def _cross_entropy(y, z):
    """Log-loss of ``sigmoid(z)`` (clipped) against a label ``y`` in ``[0, 1]``;
    bit-identical to the binary log-loss for ``y`` in ``{0, 1}``."""
    p = clip_proba(sigmoid(z))
    if y == 1.0:
        return -np.log(p)
    if y == 0.0:
        return -np.log1p(-p)
    return -(y * np.log(p) + (1.0 - y) * np.log1p(-p))


@njit
def _regression_loss(objective, y, f, c):
    """Loss of the regression objectives 4-9 at the raw score ``f`` (a float)."""
    if objective == POISSON:
        return np.exp(f) - y * f
    if objective == GAMMA:
        return y * np.exp(-f) + f
    if objective == TWEEDIE:
        return -y * np.exp((1.0 - c) * f) / (1.0 - c) + np.exp((2.0 - c) * f) / (2.0 - c)
    if objective == CROSS_ENTROPY:
        return _cross_entropy(y, f)
    r = f - y
    if objective == PSEUDO_HUBER:
        return c * c * (np.sqrt(1.0 + (r / c) ** 2) - 1.0)
    if abs(r) <= c:  # HUBER
        return 0.5 * r * r
    return c * (abs(r) - 0.5 * c)


@njit
def row_loss(objective, y, f, c=0.0):
    """Loss of one row at raw score ``f`` (K,), with clipped probabilities; ``c`` is
    the objective's parameter."""
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
    if objective >= POISSON:
        return _regression_loss(objective, y, f[0], c)
    # multiclass: the true class's entry of softmax_into, without a buffer
    m = _row_max(f)
    s = 0.0
    for k in range(f.shape[0]):
        s += np.exp(f[k] - m)
    p = clip_proba(np.exp(f[int(y)] - m) / s)
    return -np.log(p)


@njit
def _regression_grad_hess(objective, y, f, c, out):
    """``out[:4] = g, h, kappa, slope`` of the regression objectives 4-9 at ``f``."""
    slope = -1.0  # -1: the slope is the hessian
    if objective == POISSON:
        e = np.exp(f)
        g = e - y
        h = np.exp(f + c) if c != 0.0 else e
        kap = h
        slope = e
    elif objective == GAMMA:
        e = y * np.exp(-f)
        g = 1.0 - e
        h = e
        kap = -e
    elif objective == TWEEDIE:
        a = y * np.exp((1.0 - c) * f)
        b = np.exp((2.0 - c) * f)
        g = b - a
        h = (2.0 - c) * b - (1.0 - c) * a
        kap = (2.0 - c) ** 2 * b - (1.0 - c) ** 2 * a
    elif objective == CROSS_ENTROPY:
        p = sigmoid(f)
        g = p - y
        h = p * (1.0 - p)
        kap = h * (1.0 - 2.0 * p)
    elif objective == PSEUDO_HUBER:
        r = f - y
        s = 1.0 + (r / c) ** 2
        q = np.sqrt(s)
        g = r / q
        h = 1.0 / (s * q)
        kap = -3.0 * r / (c * c * s * s * q)
    else:  # HUBER
        r = f - y
        h = 1.0
        kap = 0.0
        if abs(r) <= c:
            g = r
            slope = 1.0
        else:
            g = c if r > 0 else -c
            slope = 0.0
    out[0] = g
    out[1] = h
    if out.shape[0] > 2:
        out[2] = kap
    if out.shape[0] > 3:
        out[3] = h if slope < 0.0 else slope


@njit
def grad_hess_row(objective, y, f, k, c, p_buf, out):
    """Gradient and hessian of raw-score column ``k`` at ``f`` into ``out[0]``, ``out[1]``.

    ``p_buf`` holds ``softmax(f)`` (multiclass only); ``c`` is the objective's parameter
    (the multiclass hessian factor for multiclass). When ``out`` has a third entry it
    receives ``kappa``, the derivative of the hessian with respect to ``f[k]`` (0 for
    the squared error and the value); a fourth entry receives the slope, the derivative
    of the gradient (the hessian except for Poisson with an offset and Huber).
    """
    if objective >= POISSON:
        _regression_grad_hess(objective, y, f[k], c, out)
        return
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
    if out.shape[0] > 3:
        out[3] = h
