"""Leaves computed by several steps: their values and exact first derivatives.

Some libraries compute a leaf by ``k`` steps instead of one (CatBoost's
``leaf_estimation_iterations``): with ``u_0 = 0`` and, for ``m = 1 .. k``, the rows of
the leaf at the scores ``F_j + u_{m-1}``,

    s_m = -G_m / (D_m + lambda),    u_m = u_{m-1} + s_m,    v = eta * u_k,

where ``G_m = sum_j w_j g_j`` and ``D_m = sum_j w_j d_j`` with ``d_j = h_j`` for a
Newton step and ``d_j = 1`` for a gradient step. The value is a smooth function of the
row weights and of the rows' scores before the tree; its derivatives follow by the
chain rule through the steps. With ``c_m = ds_m / du_{m-1} = -(sum w h + s_m sum w
d') / (D_m + lambda)`` (``d' = kappa`` for Newton, 0 for gradient steps) and the
per-leaf factors ``rho_k = 1``, ``rho_{m-1} = rho_m (1 + c_m)``:

    du_k / dw_j = -sum_m rho_m (g_j + s_m d_j) / (D_m + lambda)
    du_k / dF_j = -w_j sum_m rho_m (h_j + s_m d'_j) / (D_m + lambda)

(all row terms at the scores of step ``m``). The kernel returns them scaled by
``beta = D_1 + lambda``, so that they enter the single-step formulas in place of the
source ``g + vbar h`` and the propagation ``w (h + vbar kappa)`` with the same
coefficient ``-eta / beta``. One raw-score column (``K = 1``) only.

Parallel over trees; each tree owns its leaves and its column of the outputs and sums
its rows in order, so results do not depend on the number of threads.
"""

import numpy as np

from ._jit import njit, njit_parallel, prange
from ._objectives import grad_hess_row


@njit
def _tree_steps(t, leaves, o, L, scores, y, w, code, c, l2, n_steps, gradient_step):
    """Forward pass of tree ``t``: per step and leaf, the step, its denominator, the
    derivative of the step in the leaf's score shift, and the shift before the step.

    Returns ``(steps, dens, slopes, shifts)``, each ``(n_steps, L)``.
    """
    n = leaves.shape[0]
    steps = np.zeros((n_steps, L))
    dens = np.zeros((n_steps, L))
    slopes = np.zeros((n_steps, L))
    shifts = np.zeros((n_steps, L))
    u = np.zeros(L)
    G, D, Ht, Dp = np.zeros(L), np.zeros(L), np.zeros(L), np.zeros(L)
    f, p, out = np.empty(1), np.empty(1), np.empty(3)
    for m in range(n_steps):
        G[:] = 0.0
        D[:] = 0.0
        Ht[:] = 0.0
        Dp[:] = 0.0
        for j in range(n):
            l = leaves[j, t]
            f[0] = scores[j, t] + u[l]
            grad_hess_row(code, y[j], f, 0, c, p, out)
            G[l] += w[j] * out[0]
            Ht[l] += w[j] * out[1]
            if gradient_step:
                D[l] += w[j]
            else:
                D[l] += w[j] * out[1]
                Dp[l] += w[j] * out[2]
        for l in range(L):
            den = D[l] + l2[o + l]
            shifts[m, l] = u[l]
            dens[m, l] = den
            if den != 0.0:
                steps[m, l] = -G[l] / den
                slopes[m, l] = -(Ht[l] + steps[m, l] * Dp[l]) / den
            u[l] += steps[m, l]
    return steps, dens, slopes, shifts


@njit
def _steps_taken(steps, shifts, stored, o, eta):
    """The number of steps whose result is closest to the stored values of the tree
    (largest on ties): a library that stops when a step no longer lowers the loss
    took fewer than its maximum."""
    n_steps, L = steps.shape
    best, best_gap = n_steps, np.inf
    for m in range(n_steps, 0, -1):
        gap = 0.0
        for l in range(L):
            d = abs(eta * (shifts[m - 1, l] + steps[m - 1, l]) - stored[o + l])
            if d > gap:
                gap = d
        if gap < best_gap:
            best, best_gap = m, gap
    return best


@njit
def _tree_terms(t, leaves, o, L, scores, y, w, code, c, l2, n_steps, gradient_step, out_terms):
    """Fill ``out_terms`` (values, beta, source, propagation, steps taken, stored values,
    learning rates, stop early) for tree ``t``."""
    values, beta, source, propagation, taken, stored, eta, early = out_terms
    steps, dens, slopes, shifts = _tree_steps(
        t, leaves, o, L, scores, y, w, code, c, l2, n_steps, gradient_step
    )
    if early:
        n_steps = _steps_taken(steps, shifts, stored, o, eta[t])
    taken[t] = n_steps
    rho = np.ones((n_steps, L))
    for m in range(n_steps - 1, 0, -1):
        for l in range(L):
            rho[m - 1, l] = rho[m, l] * (1.0 + slopes[m, l])
    for l in range(L):
        values[o + l] = shifts[n_steps - 1, l] + steps[n_steps - 1, l]
        beta[o + l] = dens[0, l]
    n = leaves.shape[0]
    f, p, out = np.empty(1), np.empty(1), np.empty(3)
    for m in range(n_steps):
        for j in range(n):
            l = leaves[j, t]
            if dens[m, l] == 0.0:
                continue
            f[0] = scores[j, t] + shifts[m, l]
            grad_hess_row(code, y[j], f, 0, c, p, out)
            scale = rho[m, l] * dens[0, l] / dens[m, l]
            s = steps[m, l]
            if gradient_step:
                source[j, t] += scale * (out[0] + s)
                propagation[j, t] += w[j] * scale * out[1]
            else:
                source[j, t] += scale * (out[0] + s * out[1])
                propagation[j, t] += w[j] * scale * (out[1] + s * out[2])


@njit_parallel
def multi_step_terms(
    leaves, offsets, scores, y, w, code, c, l2, n_steps, gradient_step, skip, stored, eta, early
):
    """Unshrunk leaf values and derivative terms of leaves computed by ``n_steps`` steps.

    Parameters
    ----------
    leaves : (n, T) int32
    offsets : (T + 1,) int64
    scores : (n, T) float64
        Each row's raw score before tree ``t``.
    y, w : (n,) float64
        Labels (class indices for classifiers) and sample weights.
    code : int
        Objective code (:mod:`skinfluence._kernels._objectives`); ``c`` its hessian factor.
    l2 : (n_leaves_total,) float64
    n_steps : int
    gradient_step : bool
        Gradient steps (denominator: the sum of the weights) instead of Newton steps.
    skip : (T,) bool
        Trees to leave at zero (constant trees).
    stored : (n_leaves_total,) float64
        The stored (shrunk) leaf values; ``eta`` ``(T,)`` the learning rates.
    early : bool
        The library may have stopped before ``n_steps`` (a step that did not lower the
        loss was dropped): take, per tree, the number of steps whose result is closest
        to the stored values; the leaf check then verifies them.

    Returns
    -------
    values : (n_leaves_total,) the unshrunk leaf values ``u_k``
    beta : (n_leaves_total,) ``D_1 + lambda``
    source, propagation : (n, T) the derivative terms scaled by ``beta`` (module doc)
    taken : (T,) int64 the steps of each tree
    """
    n, n_trees = leaves.shape
    total = offsets[n_trees]
    values = np.zeros(total)
    beta = np.zeros(total)
    source = np.zeros((n, n_trees))
    propagation = np.zeros((n, n_trees))
    taken = np.zeros(n_trees, dtype=np.int64)
    for t in prange(n_trees):
        if skip[t]:
            continue
        o = offsets[t]
        L = offsets[t + 1] - o
        _tree_terms(
            t,
            leaves,
            o,
            L,
            scores,
            y,
            w,
            code,
            c,
            l2,
            n_steps,
            gradient_step,
            (values, beta, source, propagation, taken, stored, eta, early),
        )
    return values, beta, source, propagation, taken
