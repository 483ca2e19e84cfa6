"""Leaf co-occurrence kernels: training rows grouped by leaf (CSR) and sparse products.

Layout: ``order`` has ``n_trees * n`` entries; the training rows of flat leaf ``j`` (tree
``t``) are ``order[indptr[j]:indptr[j + 1]]``, a sub-range of tree ``t``'s block
``[t * n, (t + 1) * n)``. A per-(row, tree) quantity ``D`` (shape ``(n, T)``) is stored
in the same order as ``D_sorted[r] = D[order[r], t]``, so that a leaf's entries are
contiguous.
"""

import numpy as np

from ._jit import njit_parallel, prange


@njit_parallel
def group_by_leaf(leaves, offsets):
    """Counting sort of the rows of every tree by leaf.

    Returns ``indptr`` (``offsets[-1] + 1``, int64) and ``order`` (``n * T``, int32).
    """
    n, n_trees = leaves.shape
    n_leaves_total = offsets[n_trees]
    indptr = np.zeros(n_leaves_total + 1, dtype=np.int64)
    order = np.empty(n * n_trees, dtype=np.int32)
    for t in prange(n_trees):
        o = offsets[t]
        L = offsets[t + 1] - o
        counts = np.zeros(L + 1, dtype=np.int64)
        for i in range(n):
            counts[leaves[i, t] + 1] += 1
        start = t * n
        for l in range(L):
            counts[l + 1] += counts[l]
        for l in range(L):
            indptr[o + l + 1] = start + counts[l + 1]
        fill = counts[:L].copy()
        for i in range(n):
            l = leaves[i, t]
            order[start + fill[l]] = i
            fill[l] += 1
    # leaf o of tree t starts where the previous tree's last leaf ended
    for t in range(n_trees):
        indptr[offsets[t]] = t * n
    return indptr, order


@njit_parallel
def sort_by_leaf(values, order, n):
    """``out[r] = values[order[r], r // n]``: a per-(row, tree) array in leaf order."""
    n_total = order.shape[0]
    out = np.empty(n_total)
    n_trees = n_total // n if n > 0 else 0
    for t in prange(n_trees):
        for r in range(t * n, (t + 1) * n):
            out[r] = values[order[r], t]
    return out


@njit_parallel
def cooccurrence_product(q_leaves, q_values, offsets, indptr, order, d_sorted, n, out):
    """``out[e, i] = sum_t 1[leaf_t(e) = leaf_t(i)] * q_values[e, t] * D[i, t]``.

    ``out`` (m, n) is overwritten. Parallel over query rows (each owns its row).
    """
    m, n_trees = q_leaves.shape
    for e in prange(m):
        row = out[e]
        for i in range(n):
            row[i] = 0.0
        for t in range(n_trees):
            qv = q_values[e, t]
            if qv == 0.0:
                continue
            j = offsets[t] + q_leaves[e, t]
            for r in range(indptr[j], indptr[j + 1]):
                row[order[r]] += qv * d_sorted[r]


@njit_parallel
def leaf_gather_sum(leaves, offsets, per_leaf, D):
    """``out[i] = sum_t D[i, t] * per_leaf[offsets[t] + leaves[i, t]]`` (parallel over
    rows)."""
    n, n_trees = leaves.shape
    out = np.zeros(n)
    for i in prange(n):
        s = 0.0
        for t in range(n_trees):
            s += D[i, t] * per_leaf[offsets[t] + leaves[i, t]]
        out[i] = s
    return out
