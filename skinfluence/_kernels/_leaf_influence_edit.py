"""Kernels of LeafInfluence's label edits (:ref:`methods-label-edit`).

A label edit moves row ``i``'s label toward its new label, ``y_i + tau (y*_i - y_i)``;
LeafInfluence takes the derivative at ``tau = 0`` with the same recursion as for the
row's weight, its source term replaced by the derivative of the leaf in the label.
For leaves computed by several steps (:mod:`~skinfluence._kernels._leaf_rule`) that
source follows the steps each tree kept: with the notation there,

    du_M / dtau = -w_i sum_m a_m rho_m (Dg_i + s_m Dd_i) / (D_m + lambda),

``Dg_i = g(y*_i, f) - g(y_i, f)`` and ``Dd_i`` the same difference of the step's
denominator term (the hessian for a Newton step, 0 for a gradient step), at row
``i``'s score of step ``m``; it is the derivative for the objectives whose gradient and
hessian are linear in the label. Scaled by ``beta = D_1 + lambda`` and without the
factor ``w_i``, as the removal's source.

The single-point update set keeps its leaves in the tiled layout only
(:func:`~skinfluence._kernels._leaves.tiled`) when every row has weight 1;
:func:`leaves_from_tiles` recovers the ``(n, T)`` leaf ids from it.
"""

import numpy as np

from ._jit import njit_parallel, prange
from ._leaf_rule import _step_at
from ._objectives import grad_hess_row


@njit_parallel
def label_source_steps(
    leaves, offsets, scores, y, targets, w, code, c, l2, gradient_step, skip, taken, scales
):
    """``(n, T)`` label source of leaves computed by the kept steps (module docstring).

    Parameters
    ----------
    leaves : (n, T) int32
    offsets : (T + 1,) int64
    scores : (n, T) float64
        Each row's raw score before tree ``t``.
    y, targets, w : (n,) float64
        Labels, new labels and sample weights.
    code : int
        Objective code; ``c`` its parameter.
    l2 : (n_leaves_total,) float64
    gradient_step : bool
    skip : (T,) bool
        Trees without derivatives (constant trees).
    taken : (T,) int64
        The steps each tree kept; ``scales`` ``(T, k)`` their scales.

    Returns
    -------
    source : (n, T) float64, 0 for rows whose label does not change.
    """
    n, n_trees = leaves.shape
    source = np.zeros((n, n_trees))
    for t in prange(n_trees):
        kept = taken[t]
        if skip[t] or kept == 0:
            continue
        o = offsets[t]
        L = offsets[t + 1] - o
        # the steps of the tree, replayed with their scales: step, denominator, slope
        # in the shift, shift before the step
        record = np.zeros((kept, 4, L))
        u = np.zeros(L)
        for m in range(kept):
            _step_at(t, leaves, o, L, scores, u, y, w, code, c, l2, gradient_step, record[m])
            record[m, 3, :] = u
            for l in range(L):
                u[l] += scales[t, m] * record[m, 0, l]
        rho = np.ones((kept, L))
        for m in range(kept - 1, 0, -1):
            for l in range(L):
                rho[m - 1, l] = rho[m, l] * (1.0 + scales[t, m] * record[m, 2, l])
        f, p = np.empty(1), np.empty(1)
        old, new = np.empty(4), np.empty(4)
        for j in range(n):
            if targets[j] == y[j]:
                continue
            l = leaves[j, t]
            for m in range(kept):
                den = record[m, 1, l]
                if den == 0.0:
                    continue
                f[0] = scores[j, t] + record[m, 3, l]
                grad_hess_row(code, y[j], f, 0, c, p, old)
                grad_hess_row(code, targets[j], f, 0, c, p, new)
                change = new[0] - old[0]
                if not gradient_step:
                    change += record[m, 0, l] * (new[1] - old[1])
                source[j, t] += scales[t, m] * rho[m, l] * record[0, 1, l] / den * change
    return source


@njit_parallel
def leaves_from_tiles(ptr, local, offsets, n, tile):
    """The ``(n, T)`` int32 leaf ids of the tiled layout ``(ptr, local)``."""
    n_trees = offsets.shape[0] - 1
    leaves = np.empty((n, n_trees), dtype=np.int32)
    for b in prange(ptr.shape[0]):
        lo = b * tile
        for t in range(n_trees):
            o = offsets[t]
            for j in range(o, offsets[t + 1]):
                for r in range(ptr[b, j], ptr[b, j + 1]):
                    leaves[lo + local[r], t] = j - o
    return leaves
