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


@njit_parallel
def query_weights(q_leaves, leaves_t, a_t, offsets, const, bias_a, bias_const, out, intercept):
    """AXIL weights of query rows: ``out[e]`` the weight of each training target in the
    prediction of query ``e``, ``intercept[e]`` the part of it that no target carries.

    ``bias_a`` is ``(n,)``: the weights of the targets in the initial score (``w / W``
    when it is their weighted mean, else zeros); ``bias_const`` its unattributed value.
    """
    m = q_leaves.shape[0]
    n_total = offsets[-1]
    for e in prange(m):
        seed = np.zeros(n_total)
        for t in range(q_leaves.shape[1]):
            seed[offsets[t] + q_leaves[e, t]] = 1.0
        rho = out[e]
        rho[:] = 0.0
        total, constant = backward(seed, leaves_t, a_t, offsets, const, rho)
        intercept[e] = finish(rho, total, constant, 1.0, bias_a, bias_const)


@njit
def finish(rho, total, constant, seed_bias, bias_a, bias_const):
    """Add the initial score's part to ``rho``; return the unattributed part."""
    beta0 = seed_bias - total  # d output / d initial score
    for j in range(rho.shape[0]):
        rho[j] += beta0 * bias_a[j]
    return constant + beta0 * bias_const


@njit_parallel
def self_weights(leaves_t, a_t, offsets, const, bias_a, bias_const, start, stop, buf):
    """``k_i(x_i)`` for training rows ``start .. stop - 1``, using the ``(m, n)`` buffer
    ``buf`` for ``m`` rows at a time (each in a full backward pass)."""
    out = np.empty(stop - start)
    m = buf.shape[0]
    n_total = offsets[-1]
    for first in range(start, stop, m):
        last = min(stop, first + m)
        for r in prange(last - first):
            i = first + r
            seed = np.zeros(n_total)
            for t in range(leaves_t.shape[0]):
                seed[offsets[t] + leaves_t[t, i]] = 1.0
            rho = buf[r]
            rho[:] = 0.0
            total, constant = backward(seed, leaves_t, a_t, offsets, const, rho)
            finish(rho, total, constant, 1.0, bias_a, bias_const)
            out[i - start] = rho[i]
    return out
