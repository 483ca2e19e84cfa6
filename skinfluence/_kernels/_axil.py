"""AXIL weights by the backward pass over the trees (:ref:`methods-axil`).

Conventions: ``leaves_t`` is ``(T, n)`` int32, the local leaf of each training row in
each tree (tree-major, so that one tree's rows are contiguous); ``a_t`` is ``(T, n)``
float64, the derivative of the (shrunk) value of the leaf row ``j`` reaches in tree
``t`` with respect to ``y_j`` (0 in constant leaves); ``offsets`` is ``(T + 1,)``
int64; ``const`` is ``(n_leaves_total,)`` float64, the value of each leaf that does not
depend on the targets (constant trees, clamped leaves) and 0 for the others.

Each query row is computed by one thread and its row of the output is written by that
thread only, in a fixed order: the results do not depend on the number of threads.
"""

import numpy as np

from ._jit import njit, njit_parallel, prange


@njit
def backward(seed, leaves_t, a_t, offsets, const, rho):
    """One backward pass: ``rho`` (zeroed by the caller) receives the weight of every
    training target in ``sum_l seed[l] v_l`` (the leaf values, not the initial score).

    Returns ``(total, constant)``: ``sum_j rho_j`` and the part of the output carried by
    the constant leaves.
    """
    n_trees, n = leaves_t.shape
    width = 0
    for t in range(n_trees):
        width = max(width, offsets[t + 1] - offsets[t])
    sums = np.zeros(width)
    beta = np.empty(width)
    constant = 0.0
    for t in range(n_trees - 1, -1, -1):
        off = offsets[t]
        n_leaves = offsets[t + 1] - off
        for leaf in range(n_leaves):
            beta[leaf] = seed[off + leaf] - sums[leaf]
            constant += beta[leaf] * const[off + leaf]
        sums[:] = 0.0
        # add this tree's direct part, and sum rho over the leaves of the tree before
        prev = leaves_t[t - 1] if t > 0 else leaves_t[t]
        row_leaves = leaves_t[t]
        row_a = a_t[t]
        for j in range(n):
            rho[j] += row_a[j] * beta[row_leaves[j]]
            sums[prev[j]] += rho[j]
    total = 0.0
    for j in range(n):
        total += rho[j]
    return total, constant


#: the most queries that share one read of the training rows per tree
GROUP = 16


@njit_parallel
def query_weights(
    q_leaves, leaves_t, a_t, offsets, const, bias_a, bias_const, group, out, intercept
):
    """AXIL weights of query rows: ``out[e]`` the weight of each training target in the
    prediction of query ``e``, ``intercept[e]`` the part of it that no target carries.

    ``bias_a`` is ``(n,)``: the weights of the targets in the initial score (``w / W``
    when it is their weighted mean, else zeros); ``bias_const`` its unattributed value.
    Queries run in groups of ``group`` (at most :data:`GROUP`), one group per thread,
    with ``8 * group * n`` bytes of accumulators: each tree's rows are read once for
    the group. Every query's arithmetic is that of :func:`backward` in the same order,
    so the results do not depend on the grouping.
    """
    m = q_leaves.shape[0]
    group = max(1, min(GROUP, group))
    n_groups = (m + group - 1) // group
    for grp in prange(n_groups):
        lo = grp * group
        hi = min(m, lo + group)
        rows = out[lo:hi]
        totals, constants = _group_backward(q_leaves[lo:hi], leaves_t, a_t, offsets, const, rows)
        for r in range(hi - lo):
            intercept[lo + r] = finish(rows[r], totals[r], constants[r], 1.0, bias_a, bias_const)


@njit
def _group_backward(q_leaves, leaves_t, a_t, offsets, const, out):
    """:func:`backward` for a group of ``g`` queries seeded by their own leaves, into
    their rows ``out`` ``(g, n)``; returns the ``(g,)`` totals and constants. The
    accumulators are held row-major by training row (``(n, g)``), so that the inner
    loop over the group is contiguous."""
    n_trees, n = leaves_t.shape
    g = q_leaves.shape[0]
    width = 0
    for t in range(n_trees):
        width = max(width, offsets[t + 1] - offsets[t])
    rho = np.zeros((n, g))
    sums = np.zeros((width, g))
    beta = np.empty((width, g))
    constants = np.zeros(g)
    for t in range(n_trees - 1, -1, -1):
        off = offsets[t]
        n_leaves = offsets[t + 1] - off
        for leaf in range(n_leaves):
            for r in range(g):
                seed = 1.0 if q_leaves[r, t] == leaf else 0.0
                beta[leaf, r] = seed - sums[leaf, r]
                constants[r] += beta[leaf, r] * const[off + leaf]
        sums[:] = 0.0
        prev = leaves_t[t - 1] if t > 0 else leaves_t[t]
        row_leaves = leaves_t[t]
        row_a = a_t[t]
        for j in range(n):
            lj = row_leaves[j]
            aj = row_a[j]
            pj = prev[j]
            for r in range(g):
                rho[j, r] += aj * beta[lj, r]
                sums[pj, r] += rho[j, r]
    totals = np.zeros(g)
    for j in range(n):
        for r in range(g):
            out[r, j] = rho[j, r]
            totals[r] += rho[j, r]
    return totals, constants


@njit
def finish(rho, total, constant, seed_bias, bias_a, bias_const):
    """Add the initial score's part to ``rho``; return the unattributed part."""
    beta0 = seed_bias - total  # d output / d initial score
    for j in range(rho.shape[0]):
        rho[j] += beta0 * bias_a[j]
    return constant + beta0 * bias_const


@njit_parallel
def self_weights(leaves_t, a_t, offsets, const, bias_a, bias_const, group):
    """``k_i(x_i)`` for every training row: a backward pass per row, in groups of
    ``group`` rows (one per thread, ``16 * group * n`` bytes each)."""
    n = leaves_t.shape[1]
    out = np.empty(n)
    group = max(1, min(GROUP, group))
    n_groups = (n + group - 1) // group
    for grp in prange(n_groups):
        lo = grp * group
        hi = min(n, lo + group)
        q_leaves = np.ascontiguousarray(leaves_t[:, lo:hi].T)
        rows = np.empty((hi - lo, n))
        totals, constants = _group_backward(q_leaves, leaves_t, a_t, offsets, const, rows)
        for r in range(hi - lo):
            finish(rows[r], totals[r], constants[r], 1.0, bias_a, bias_const)
            out[lo + r] = rows[r, lo + r]
    return out
