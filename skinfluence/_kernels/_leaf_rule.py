"""Leaves computed by several steps: their values and exact first derivatives.

Some libraries compute a leaf by up to ``k`` steps instead of one (CatBoost's
``leaf_estimation_iterations``): with ``u_0 = 0`` and, for each kept step ``m``, the
rows of the leaf at the scores ``F_j + u_{m-1}``,

    s_m = -G_m / (D_m + lambda),    u_m = u_{m-1} + a_m s_m,    v = eta * u_M,

where ``G_m = sum_j w_j g_j`` and ``D_m = sum_j w_j d_j`` with ``d_j = h_j`` for a
Newton step and ``d_j = 1`` for a gradient step, and ``a_m`` is 1, or a power of 1/2
when the library halved a step that did not lower the loss (backtracking, which also
uses up attempts, so ``M <= k``). The scales are locally constant, so the value is a
smooth function of the row weights and of the rows' scores before the tree; its
derivatives follow by the chain rule through the steps. With
``c_m = ds_m / du_{m-1} = -(sum w g' + s_m sum w d') / (D_m + lambda)`` (``g'`` the
gradient's own derivative, the hessian but for Poisson with a hessian offset and Huber;
``d' = kappa`` for Newton, 0 for gradient steps) and the per-leaf factors ``rho_M = 1``,
``rho_{m-1} = rho_m (1 + a_m c_m)``:

    du_M / dw_j = -sum_m a_m rho_m (g_j + s_m d_j) / (D_m + lambda)
    du_M / dF_j = -w_j sum_m a_m rho_m (g'_j + s_m d'_j) / (D_m + lambda)

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
def _step_at(t, leaves, o, L, scores, u, y, w, code, c, l2, gradient_step, out):
    """One step of every leaf of tree ``t`` at the score shifts ``u`` (L,): writes the
    steps, their denominators and their derivatives in the shift into the rows of
    ``out`` ``(3, L)``."""
    n = leaves.shape[0]
    G, D, Ht, Dp = np.zeros(L), np.zeros(L), np.zeros(L), np.zeros(L)
    f, p, gh = np.empty(1), np.empty(1), np.empty(4)
    for j in range(n):
        l = leaves[j, t]
        f[0] = scores[j, t] + u[l]
        grad_hess_row(code, y[j], f, 0, c, p, gh)
        G[l] += w[j] * gh[0]
        Ht[l] += w[j] * gh[3]  # the gradient's own derivative (the slope)
        if gradient_step:
            D[l] += w[j]
        else:
            D[l] += w[j] * gh[1]
            Dp[l] += w[j] * gh[2]
    for l in range(L):
        den = D[l] + l2[o + l]
        out[0, l] = 0.0
        out[1, l] = den
        out[2, l] = 0.0
        if den != 0.0:
            out[0, l] = -G[l] / den
            out[2, l] = -(Ht[l] + out[0, l] * Dp[l]) / den


@njit
def _walk(t, leaves, o, L, scores, y, w, code, c, l2, n_steps, gradient_step):
    """``n_steps`` full steps of every leaf of tree ``t``: ``record[m]`` ``(4, L)`` holds
    step ``m``, its denominator, its slope and the shift before it."""
    record = np.zeros((n_steps, 4, L))
    u = np.zeros(L)
    for m in range(n_steps):
        _step_at(t, leaves, o, L, scores, u, y, w, code, c, l2, gradient_step, record[m])
        record[m, 3, :] = u
        u += record[m, 0, :]
    return record


@njit
def _gap(u, o, L, stored, eta):
    """Largest gap between the stored values and ``eta * u``, and the largest stored
    value."""
    gap, size = 0.0, 0.0
    for l in range(L):
        gap = max(gap, abs(eta * u[l] - stored[o + l]))
        size = max(size, abs(stored[o + l]))
    return gap, size


#: most steps computed per tree when searching the kept steps of a backtracking walk
MAX_SEARCH = 1024


@njit
def _kept_steps(t, leaves, o, L, scores, y, w, code, c, l2, n_steps, gradient_step, stored, eta):
    """The steps a backtracking library kept, found by matching the stored values.

    CatBoost's ``AnyImprovement`` keeps a step only if it lowers a loss that it
    evaluates on the bootstrap-weighted rows (so its decisions cannot be recomputed);
    otherwise it halves the step and tries again, each attempt using one of the
    ``n_steps``. A walk is thus a sequence of kept steps, step ``m`` halved ``r_m``
    times, with ``sum(r_m + 1) <= n_steps``. Depth-first search over these sequences,
    full steps first, stopping at the first whose values equal the stored ones to
    rounding (at most :data:`MAX_SEARCH` steps computed); the closest is returned and
    the leaf check verifies it.

    Returns ``(record, scales, kept)`` as :func:`_walk` and the scale of each kept step.
    """
    us = np.zeros((n_steps + 1, L))
    rec = np.zeros((n_steps, 4, L))
    used = np.zeros(n_steps + 1, dtype=np.int64)
    halvings = np.full(n_steps + 1, -1, dtype=np.int64)
    best_rec = np.zeros((n_steps, 4, L))
    best_scales = np.zeros(n_steps)
    best_kept, best_gap = 0, np.inf
    depth, computed = 0, 0
    while depth >= 0:
        if halvings[depth] < 0:  # first visit: the walk may stop here
            gap, size = _gap(us[depth], o, L, stored, eta)
            if gap < best_gap:
                best_gap, best_kept = gap, depth
                best_rec[:depth] = rec[:depth]
                for m in range(depth):
                    best_scales[m] = 0.5 ** halvings[m]
                best_scales[depth:] = 0.0
            if gap <= 1e-15 + 1e-9 * size:
                break
            if used[depth] >= n_steps or computed >= MAX_SEARCH:
                depth -= 1
                continue
            _step_at(
                t, leaves, o, L, scores, us[depth], y, w, code, c, l2, gradient_step, rec[depth]
            )
            rec[depth, 3, :] = us[depth]
            computed += 1
            halvings[depth] = 0
        else:
            halvings[depth] += 1
        if used[depth] + halvings[depth] + 1 > n_steps:
            halvings[depth] = -1
            depth -= 1
            continue
        scale = 0.5 ** halvings[depth]
        for l in range(L):
            us[depth + 1, l] = us[depth, l] + scale * rec[depth, 0, l]
        used[depth + 1] = used[depth] + halvings[depth] + 1
        halvings[depth + 1] = -1
        depth += 1
    return best_rec, best_scales, best_kept


@njit
def _tree_terms(t, leaves, o, L, scores, y, w, code, c, l2, n_steps, gradient_step, out_terms):
    """Fill ``out_terms`` (values, beta, source, propagation, kept steps, their scales,
    stored values, learning rates, backtracking) for tree ``t``."""
    values, beta, source, propagation, taken, step_scales, stored, eta, backtrack = out_terms
    if backtrack:
        record, scales, kept = _kept_steps(
            t, leaves, o, L, scores, y, w, code, c, l2, n_steps, gradient_step, stored, eta[t]
        )
    else:
        record = _walk(t, leaves, o, L, scores, y, w, code, c, l2, n_steps, gradient_step)
        kept, scales = n_steps, np.ones(n_steps)
    taken[t] = kept
    step_scales[t, :] = scales
    for l in range(L):
        beta[o + l] = record[0, 1, l]
        if kept > 0:
            values[o + l] = record[kept - 1, 3, l] + scales[kept - 1] * record[kept - 1, 0, l]
    # rho[m]: the derivative of the final value in the shift after kept step m
    rho = np.ones((max(kept, 1), L))
    for m in range(kept - 1, 0, -1):
        for l in range(L):
            rho[m - 1, l] = rho[m, l] * (1.0 + scales[m] * record[m, 2, l])
    n = leaves.shape[0]
    f, p, gh = np.empty(1), np.empty(1), np.empty(4)
    for m in range(kept):
        for j in range(n):
            l = leaves[j, t]
            den = record[m, 1, l]
            if den == 0.0:
                continue
            f[0] = scores[j, t] + record[m, 3, l]
            grad_hess_row(code, y[j], f, 0, c, p, gh)
            scale = scales[m] * rho[m, l] * record[0, 1, l] / den
            s = record[m, 0, l]
            if gradient_step:
                source[j, t] += scale * (gh[0] + s)
                propagation[j, t] += w[j] * scale * gh[3]
            else:
                source[j, t] += scale * (gh[0] + s * gh[1])
                propagation[j, t] += w[j] * scale * (gh[3] + s * gh[2])


@njit_parallel
def multi_step_terms(
    leaves, offsets, scores, y, w, code, c, l2, n_steps, gradient_step, skip, stored, eta, backtrack
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
    backtrack : bool
        The library keeps a step only if it lowers a loss, halving it otherwise
        (:func:`_kept_steps`): the kept steps are found by matching the stored values,
        and the leaf check verifies them.

    Returns
    -------
    values : (n_leaves_total,) the unshrunk leaf values
    beta : (n_leaves_total,) ``D_1 + lambda``
    source, propagation : (n, T) the derivative terms scaled by ``beta`` (module doc)
    taken : (T,) int64 the steps each tree kept
    step_scales : (T, n_steps) their scales (0 after the last kept step)
    """
    n, n_trees = leaves.shape
    total = offsets[n_trees]
    values = np.zeros(total)
    beta = np.zeros(total)
    source = np.zeros((n, n_trees))
    propagation = np.zeros((n, n_trees))
    taken = np.zeros(n_trees, dtype=np.int64)
    step_scales = np.zeros((n_trees, n_steps))
    for t in prange(n_trees):
        if skip[t]:
            continue
        o = offsets[t]
        _tree_terms(
            t,
            leaves,
            o,
            offsets[t + 1] - o,
            scores,
            y,
            w,
            code,
            c,
            l2,
            n_steps,
            gradient_step,
            (values, beta, source, propagation, taken, step_scales, stored, eta, backtrack),
        )
    return values, beta, source, propagation, taken, step_scales


@njit
def _relabelled_steps(rows, edited, new_label, scores, t, y, w, code, c, l2j, n_kept, scales, gs):
    """The unshrunk value of one leaf (its ``rows``) by its kept steps, row ``edited``
    (if >= 0) at ``new_label``."""
    f, p, gh = np.empty(1), np.empty(1), np.empty(4)
    u = 0.0
    for m in range(n_kept):
        G = 0.0
        D = 0.0
        for j in rows:
            f[0] = scores[j, t] + u
            grad_hess_row(code, new_label if j == edited else y[j], f, 0, c, p, gh)
            G += w[j] * gh[0]
            D += w[j] * (1.0 if gs else gh[1])
        den = D + l2j
        if den != 0.0:
            u -= scales[m] * G / den
    return u


@njit_parallel
def relabelled_step_changes(
    leaves, offsets, scores, y, targets, w, code, c, l2, gradient_step, skip, taken, scales, eta
):
    """``(n, T)`` change of each row's own leaf in every tree when that row alone takes
    its label in ``targets``: the leaf recomputed by the steps the tree kept (with
    their scales), every row at its stored score before the tree. O(sum over leaves of
    (edited rows) x (rows) x steps) per tree; parallel over trees."""
    n, n_trees = leaves.shape
    out = np.zeros((n, n_trees))
    for t in prange(n_trees):
        if skip[t]:
            continue
        o = offsets[t]
        L = offsets[t + 1] - o
        # rows grouped by leaf (counting sort, in row order)
        start = np.zeros(L + 1, dtype=np.int64)
        for j in range(n):
            start[leaves[j, t] + 1] += 1
        for l in range(L):
            start[l + 1] += start[l]
        fill = start[:-1].copy()
        order = np.empty(n, dtype=np.int64)
        for j in range(n):
            l = leaves[j, t]
            order[fill[l]] = j
            fill[l] += 1
        for l in range(L):
            rows = order[start[l] : start[l + 1]]
            base = np.nan
            for i in rows:
                if targets[i] == y[i]:
                    continue
                if base != base:  # the leaf by the same steps, no row edited
                    base = _relabelled_steps(
                        rows, -1, 0.0, scores, t, y, w, code, c, l2[o + l], taken[t],
                        scales[t], gradient_step,
                    )  # fmt: skip
                u = _relabelled_steps(
                    rows, i, targets[i], scores, t, y, w, code, c, l2[o + l], taken[t],
                    scales[t], gradient_step,
                )  # fmt: skip
                out[i, t] = eta[t] * (u - base)
    return out
