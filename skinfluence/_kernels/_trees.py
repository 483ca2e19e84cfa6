"""Kernels over leaf ids: replay of the boosting trajectory and per-leaf sums.

Conventions (shared by every kernel of this module):

* ``leaves``: ``(n, T)`` int32, the local leaf index of each row in each tree;
* ``offsets``: ``(T + 1,)`` int64, flat leaf index of ``(t, l)`` is ``offsets[t] + l``;
* trees are in round-major, class-inner order: tree ``t`` is round ``t // K``,
  raw-score column ``t % K``;
* ``objective``: a code of :mod:`skinfluence._kernels._objectives` (0 squared error,
  1 binary log-loss, 2 multiclass softmax, 3 "value": psi(F) = -F, g = -1, h = 0, 4-9
  the regression objectives), ``c`` its parameter.

All loops that run in parallel write only to their own row (or their own tree), so the
results do not depend on the number of threads.
"""

import numba
import numpy as np

from ._jit import njit, njit_parallel, prange
from ._objectives import BINARY, MULTICLASS, SQUARED_ERROR, grad_hess_row, sigmoid, softmax_into


def replay(leaves, offsets, values, bias, n_outputs, objective, c, y, want_kappa):
    """Replay the boosting trajectory with the stored leaf values.

    Returns ``g, h, kappa`` of shape ``(n, T)``, evaluated for tree ``t = (b, k)`` at the
    scores before round ``b``, and the final raw scores ``(n, K)``. ``kappa`` is
    ``(0, 0)`` unless ``want_kappa``. One raw-score column without ``kappa`` over more
    than 65,536 entries takes the kernel of :func:`replay_sums` (the same values bit for
    bit).
    """
    # few rows (queries): the row-parallel kernel keeps one row on one thread; the
    # tree blocks would wake every thread for a few microseconds of work each
    if n_outputs == 1 and not want_kappa and leaves.size > 2**16:
        g, h, _, _, final = replay_sums(leaves, offsets, values, bias, objective, c, y)
        return g, h, np.empty((0, 0)), final
    return _replay(leaves, offsets, values, bias, n_outputs, objective, c, y, want_kappa)


def replay_sums(leaves, offsets, values, bias, objective, c, y, weights=None, sums=False):
    """:func:`replay` of one raw-score column (no ``kappa``) and, with ``sums``, the
    per-leaf sums of the weighted gradients and hessians.

    Returns ``g, h`` ``(n, T)``, ``G, H`` ``(n_leaves_total,)`` (empty unless
    ``sums``) and the final scores ``(n, 1)``. ``G`` equals :func:`leaf_sums` of
    ``g * weights[:, None]`` (of ``g`` when ``weights`` is None) bit for bit: each
    product rounded, then summed over the leaf's rows in row order. Parallel over one
    block of consecutive trees per thread: each block first sums the scores of the
    trees before it (from the bias, in tree order, as the replay does), then replays
    its trees and owns their leaves' sums. The score is a scalar (no per-row buffers)
    and the binary and squared-error gradients are inlined: at 100,000 rows x 100
    trees this is 2x faster than the general replay, sums included.
    """
    n, n_trees = leaves.shape
    if n_trees == 0:
        empty = np.empty((n, 0))
        return empty, empty, np.zeros(0), np.zeros(0), np.full((n, 1), bias[0])
    block = -(-n_trees // numba.get_num_threads())
    weighted = weights is not None
    w = np.ascontiguousarray(weights, dtype=np.float64) if weighted else np.empty(0)
    return _replay_sums_blocked(
        leaves, offsets, values, bias, objective, c, y, w, weighted, bool(sums), block
    )


@njit(inline="always")
def _grad_hess_scalar(objective, yi, f, c, fbuf, out):
    """``(g, h)`` of one column at score ``f``: :func:`grad_hess_row` (its formulas for
    the binary log-loss and the squared error, inlined)."""
    if objective == BINARY:
        p = sigmoid(f)
        return p - yi, p * (1.0 - p)
    if objective == SQUARED_ERROR:
        return f - yi, 1.0
    fbuf[0] = f
    grad_hess_row(objective, yi, fbuf, 0, c, fbuf, out)
    return out[0], out[1]


@njit_parallel
def _replay_sums_blocked(leaves, offsets, values, bias, objective, c, y, w, weighted, sums, block):
    n, n_trees = leaves.shape
    g = np.empty((n, n_trees))
    h = np.empty((n, n_trees))
    G = np.zeros(offsets[n_trees] if sums else 0)
    H = np.zeros(offsets[n_trees] if sums else 0)
    final = np.empty((n, 1))
    n_blocks = (n_trees + block - 1) // block
    for b in prange(n_blocks):
        t0 = b * block
        t1 = min(n_trees, t0 + block)
        fbuf = np.empty(1)
        out = np.empty(2)
        for i in range(n):
            f = bias[0]
            for t in range(t0):
                f += values[offsets[t] + leaves[i, t]]
            yi = y[i]
            for t in range(t0, t1):
                gi, hi = _grad_hess_scalar(objective, yi, f, c, fbuf, out)
                g[i, t] = gi
                h[i, t] = hi
                j = offsets[t] + leaves[i, t]
                if sums:
                    if weighted:
                        G[j] += gi * w[i]
                        H[j] += hi * w[i]
                    else:
                        G[j] += gi
                        H[j] += hi
                f += values[j]
            if t1 == n_trees:
                final[i, 0] = f
    return g, h, G, H, final


@njit_parallel
def _replay(leaves, offsets, values, bias, n_outputs, objective, c, y, want_kappa):
    n, n_trees = leaves.shape
    K = n_outputs
    n_rounds = n_trees // K
    g = np.empty((n, n_trees))
    h = np.empty((n, n_trees))
    if want_kappa:
        kap = np.empty((n, n_trees))
    else:
        kap = np.empty((0, 0))
    final = np.empty((n, K))
    for i in prange(n):
        f = bias.copy()
        p = np.empty(K)
        out = np.empty(3)
        for b in range(n_rounds):
            if objective == MULTICLASS:
                softmax_into(f, p)
            for k in range(K):
                t = b * K + k
                grad_hess_row(objective, y[i], f, k, c, p, out)
                g[i, t] = out[0]
                h[i, t] = out[1]
                if want_kappa:
                    kap[i, t] = out[2]
            for k in range(K):
                t = b * K + k
                f[k] += values[offsets[t] + leaves[i, t]]
        for k in range(K):
            final[i, k] = f[k]
    return g, h, kap, final


@njit_parallel
def replay_slopes(leaves, offsets, values, bias, objective, c, y):
    """Slopes ``dg/dF`` ``(n, T)`` of a one-column objective along the stored
    trajectory (as :func:`replay`; the objectives whose hessian is not the derivative
    of their gradient)."""
    n, n_trees = leaves.shape
    slope = np.empty((n, n_trees))
    for i in prange(n):
        f = bias.copy()
        out = np.empty(4)
        for t in range(n_trees):
            grad_hess_row(objective, y[i], f, 0, c, f, out)
            slope[i, t] = out[3]
            f[0] += values[offsets[t] + leaves[i, t]]
    return slope


@njit_parallel
def raw_scores(leaves, offsets, values, bias, n_outputs):
    """Bias plus the sum of the reached leaf values: ``(n, K)``."""
    n, n_trees = leaves.shape
    K = n_outputs
    out = np.empty((n, K))
    for i in prange(n):
        for k in range(K):
            out[i, k] = bias[k]
        for t in range(n_trees):
            out[i, t % K] += values[offsets[t] + leaves[i, t]]
    return out


def leaf_sums(leaves, offsets, weights):
    """Per-leaf sums ``S[offsets[t] + l] = sum_{i in leaf l of t} weights[i, t]``.

    ``weights`` is ``(n, T)``; parallel over one block of consecutive trees per thread
    (each block owns its leaves; a pass over the rows reads each row's part of the
    block at once, where one tree at a time reads a cache line per value: 2x faster
    at 100,000 rows x 100 trees on two threads), every leaf summed over its rows in
    row order, so the sums do not depend on the number of threads.
    """
    threads = numba.get_num_threads()
    block = max(1, -(-leaves.shape[1] // threads))
    return _leaf_sums_blocked(leaves, offsets, weights, block)


@njit_parallel
def _leaf_sums_blocked(leaves, offsets, weights, block):
    n, n_trees = leaves.shape
    out = np.zeros(offsets[n_trees])
    n_blocks = (n_trees + block - 1) // block
    for b in prange(n_blocks):
        t0 = b * block
        t1 = min(n_trees, t0 + block)
        for i in range(n):
            for t in range(t0, t1):
                out[offsets[t] + leaves[i, t]] += weights[i, t]
    return out


@njit_parallel
def boostin_derivatives(leaves, offsets, w, g, h, values, per_leaf):
    """``delta[i, t] = w[i] * (g[i, t] + values[j] * h[i, t]) * per_leaf[j]`` with
    ``j = offsets[t] + leaves[i, t]`` (``values``: the leaf value in the numerator),
    rounded as the same numpy expression is."""
    n, n_trees = leaves.shape
    out = np.empty((n, n_trees))
    for i in prange(n):
        wi = w[i]
        for t in range(n_trees):
            j = offsets[t] + leaves[i, t]
            out[i, t] = wi * (g[i, t] + values[j] * h[i, t]) * per_leaf[j]
    return out


def covering_rows(leaves, offsets):
    """Rows that reach every (tree, leaf) pair any row reaches: for each reached leaf
    the first row (in row order) that reaches it, sorted, without repeats.

    This is the greedy cover that takes the rows in order and keeps a row when it
    reaches a leaf no kept row reaches; it has at most ``offsets[-1]`` rows. Parallel
    over one block of consecutive trees per thread (each block stops scanning rows once
    all its leaves are reached), so the result does not depend on the number of threads.
    """
    threads = numba.get_num_threads()
    block = max(1, -(-leaves.shape[1] // threads))
    first = _first_rows_blocked(leaves, offsets, block)
    return np.unique(first[first >= 0])


@njit_parallel
def _first_rows_blocked(leaves, offsets, block):
    n, n_trees = leaves.shape
    first = np.full(offsets[n_trees], -1, dtype=np.int64)
    n_blocks = (n_trees + block - 1) // block
    for b in prange(n_blocks):
        t0 = b * block
        t1 = min(n_trees, t0 + block)
        todo = offsets[t1] - offsets[t0]
        for i in range(n):
            if todo == 0:
                break
            for t in range(t0, t1):
                j = offsets[t] + leaves[i, t]
                if first[j] < 0:
                    first[j] = i
                    todo -= 1
    return first


@njit_parallel
def count_out_of_range(leaves, n_leaves):
    """Number of entries with ``leaves[i, t]`` outside ``0 .. n_leaves[t] - 1``."""
    n, n_trees = leaves.shape
    bad = 0
    for i in prange(n):
        for t in range(n_trees):
            v = leaves[i, t]
            if v < 0 or v >= n_leaves[t]:
                bad += 1
    return bad


def leaf_counts(leaves, offsets, row_weight):
    """Per-leaf sums of a per-row weight (counts when ``row_weight`` is all ones).

    :func:`leaf_sums` of the weight broadcast over the trees (no ``(n, T)`` copy).
    """
    weights = np.broadcast_to(np.asarray(row_weight, dtype=np.float64)[:, None], leaves.shape)
    return leaf_sums(leaves, offsets, weights)


@njit_parallel
def remap_ids(raw, flat_map, map_offsets):
    """``out[i, t] = flat_map[map_offsets[t] + raw[i, t]]`` (int32), and the number of
    entries whose id is outside tree ``t``'s map or maps to -1 (those get -1).
    ``raw`` holds integers, or floats holding integers (a NaN counts as outside)."""
    n, n_trees = raw.shape
    out = np.empty((n, n_trees), dtype=np.int32)
    bad = 0
    for i in prange(n):
        for t in range(n_trees):
            r = raw[i, t]
            if not (r >= 0 and r < map_offsets[t + 1] - map_offsets[t]):
                out[i, t] = -1
                bad += 1
                continue
            v = flat_map[map_offsets[t] + np.int64(r)]
            out[i, t] = v
            if v < 0:
                bad += 1
    return out, bad
