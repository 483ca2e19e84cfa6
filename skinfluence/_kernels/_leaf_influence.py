"""Kernels of LeafInfluence and LeafRefit (:ref:`methods-leaf-influence` and the next section).

The kernels take their inputs bundled in named tuples (numba compiles them as
heterogeneous tuples, and caches them):

* :class:`TrainLeaves`, the training rows' leaves (as in ``_trees`` and ``_leaves``):
  ``leaves`` ``(n, T)`` int32 local leaf ids; ``offsets`` ``(T + 1,)`` int64, the flat
  index of leaf ``l`` of tree ``t`` is ``offsets[t] + l``; tree ``t`` is round
  ``t // K``, raw-score column ``t % K`` (``K = n_outputs``); ``indptr`` / ``order``:
  the training rows of each flat leaf (CSR of ``_leaves.group_by_leaf``); an array
  ``*_sorted`` of length ``n * T`` holds a per-(row, tree) quantity in the same order
  (``_leaves.sort_by_leaf``);
* :class:`DerivativeTerms`, the terms of the leaf derivatives: ``coef[j] = -eta_t /
  (H_j + lambda_j)`` per flat leaf, 0 for constant trees and leaves with a
  non-positive denominator (they carry no derivative); ``source[i, t] = g_i + vbar
  h_i`` and ``propagation[i, t] = w_i (h_i + vbar kappa_i)``, gradients at the scores
  before the tree's round;
* :class:`RefitInputs`, the stored trajectory that the fixed-structure refit replays.

Every parallel loop owns its output (a removed row, or a block of query columns) and
runs its inner sums sequentially, so results do not depend on the number of threads.
"""

from typing import NamedTuple

import numpy as np

from ._jit import njit, njit_parallel, prange
from ._objectives import BINARY, MULTICLASS, SQUARED_ERROR, grad_hess_row, sigmoid, softmax_into


class TrainLeaves(NamedTuple):
    """The training rows' leaves, and the rows of each leaf."""

    #: ``(n, T)`` int32 local leaf ids
    leaves: np.ndarray
    #: ``(T, n)``: ``leaves.T``, contiguous (one row per tree)
    leaves_by_tree: np.ndarray
    #: ``(T + 1,)`` int64 first flat leaf index of each tree
    offsets: np.ndarray
    #: ``(n_leaves_total + 1,)`` CSR pointers into ``order``
    indptr: np.ndarray
    #: ``(n * T,)`` training rows sorted by flat leaf
    order: np.ndarray
    #: ``K``, raw-score columns (trees per round)
    n_outputs: int


class DerivativeTerms(NamedTuple):
    """The per-leaf and per-(row, tree) terms of the leaf derivatives."""

    #: ``(n_leaves_total,)`` ``-eta_t / (H_j + lambda_j)``, 0 where no derivative
    coef: np.ndarray
    #: ``(n, T)`` source term ``g + vbar h``
    source: np.ndarray
    #: ``(n, T)`` propagation term ``w (h + vbar kappa)``
    propagation: np.ndarray
    #: ``(n * T,)`` ``source`` in leaf order (empty when unused)
    source_sorted: np.ndarray
    #: ``(n * T,)`` ``propagation`` in leaf order (empty when unused)
    propagation_sorted: np.ndarray


class RefitInputs(NamedTuple):
    """The stored trajectory the fixed-structure refit replays."""

    #: ``(n, T)``: for tree ``t = (b, k)``, ``scores_before[j, b*K + m]`` is row ``j``'s
    #: stored raw score column ``m`` before round ``b``
    scores_before: np.ndarray
    #: ``(n, T)`` stored-trajectory gradients and hessians
    gradients: np.ndarray
    hessians: np.ndarray
    #: ``(n,)`` sample weights and encoded labels
    weights: np.ndarray
    labels: np.ndarray
    #: ``(n_leaves_total,)`` weighted per-leaf gradient and hessian sums
    gradient_sums: np.ndarray
    hessian_sums: np.ndarray
    #: ``(n_leaves_total,)`` L2 regularisation and stored value of each leaf
    l2: np.ndarray
    leaf_values: np.ndarray
    #: ``(T,)`` learning rate and constant flag of each tree
    learning_rates: np.ndarray
    constant_tree: np.ndarray
    #: objective code and the objective's parameter (``TreeEnsemble.kernel_param``: the
    #: multiclass hessian factor, or a regression objective's parameter)
    objective: int
    multiclass_factor: float
    #: the leaf rule (:mod:`skinfluence._leaf_rule`): ``(T,)`` steps each tree's
    #: leaves kept (empty: one Newton step) and ``(T, k)`` their scales, whether they
    #: are gradient steps, the clamp of the unshrunk value (0: none), and
    #: ``(n_leaves_total,)`` the values the rule recomputes from all rows (shrunk)
    steps: np.ndarray
    step_scales: np.ndarray
    gradient_step: bool
    max_delta_step: float
    recomputed: np.ndarray


@njit
def _max_leaves(offsets):
    """The largest number of leaves of one tree (at least 1)."""
    max_L = 1
    for t in range(offsets.shape[0] - 1):
        if offsets[t + 1] - offsets[t] > max_L:
            max_L = offsets[t + 1] - offsets[t]
    return max_L


@njit
def _select_top_leaves(J, K, leaf_col, L, n_top, selected, sums):
    """Mark the ``n_top`` leaves of a tree with the largest
    ``sum_{j in leaf} sum_c |J[c, j]|`` (ties toward the lower leaf id; sums within a
    relative 1e-12 of each other are ties). ``leaf_col[j]`` is row ``j``'s leaf in the
    tree; rows are read in order, so each leaf's sum adds its rows by increasing index."""
    for l in range(L):
        sums[l] = 0.0
        selected[l] = False
    for row in range(leaf_col.shape[0]):
        s = 0.0
        for c in range(K):
            s += abs(J[c, row])
        sums[leaf_col[row]] += s
    for _ in range(min(n_top, L)):
        best = -1
        for l in range(L):
            # sums that differ only by rounding (the same rows added in another order)
            # count as ties, so the choice does not depend on the order of the rows
            if not selected[l] and (
                best < 0 or sums[l] > sums[best] + 1e-12 * max(sums[l], sums[best])
            ):
                best = l
        selected[best] = True


@njit
def single_point(train, terms):
    """``D[i, t] = dv_{t, leaf_t(i)} / dw_i`` with the update set ``{i}`` (Methods, single point).

    O(n T); returns ``D`` of shape ``(n, T)``.
    """
    leaves, offsets, K = train.leaves, train.offsets, train.n_outputs
    coef, A, wQ = terms.coef, terms.source, terms.propagation
    n, n_trees = leaves.shape
    D = np.zeros((n, n_trees))
    jv = np.zeros(K)
    for i in range(n):
        for c in range(K):
            jv[c] = 0.0
        for t in range(n_trees):
            cf = coef[offsets[t] + leaves[i, t]]
            if cf == 0.0:
                continue
            k = t % K
            d = cf * (A[i, t] + wQ[i, t] * jv[k])
            D[i, t] = d
            jv[k] += d
    return D


@njit
def _block_sum(a, lo, n):
    """numpy's sum of ``n <= 128`` contiguous values: a plain loop below 8, else eight
    running sums combined pairwise, then the tail."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = lo + 8
    end = lo + n - n % 8
    while i < end:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < lo + n:
        res += a[i]
        i += 1
    return res


@njit
def _left_half(n):
    """Where numpy's pairwise sum splits ``n > 128`` values: half, down to a multiple of 8."""
    n2 = n // 2
    return n2 - n2 % 8


@njit
def numpy_sum(a, lo, n):
    """``a[lo:lo + n].sum()`` rounded as numpy sums a contiguous float64 run: its
    pairwise summation (blocks of at most 128 values, halves above; checked against
    numpy 2.4 in ``tests/test_leaf_influence_top.py``). The halving runs on an explicit
    stack (numba's cache does not keep recursive functions)."""
    if n <= 128:
        return _block_sum(a, lo, n)
    node_lo = np.empty(64, dtype=np.int64)
    node_n = np.empty(64, dtype=np.int64)
    state = np.zeros(64, dtype=np.int64)  # 1: left half pending, 2: right half pending
    left = np.empty(64)
    top = 0
    node_lo[0] = lo
    node_n[0] = n
    while True:
        m = node_n[top]
        if m > 128:  # descend into the left half
            state[top] = 1
            node_lo[top + 1] = node_lo[top]
            node_n[top + 1] = _left_half(m)
            top += 1
            continue
        res = _block_sum(a, node_lo[top], m)
        top -= 1
        while top >= 0 and state[top] == 2:  # both halves done: add them
            res = left[top] + res
            top -= 1
        if top < 0:
            return res
        left[top] = res  # the left half done: the right half next
        state[top] = 2
        m2 = _left_half(node_n[top])
        node_lo[top + 1] = node_lo[top] + m2
        node_n[top + 1] = node_n[top] - m2
        top += 1


@njit_parallel
def tile_slots(leaves, offsets, tile):
    """The tiled layout of ``_leaves.tile_by_leaf`` (the same ``ptr`` and ``local``)
    and ``slot`` ``(n, T)`` uint16: row ``i``'s place in tree ``t``'s segment of its
    tile (the segment starts at ``lo * T + t * nb`` for the tile's first row ``lo``
    and its ``nb`` rows; rows sorted by leaf, in row order within a leaf). Reads the
    leaves row by row (two passes per tile: counts, then places)."""
    n, n_trees = leaves.shape
    n_tiles = (n + tile - 1) // tile
    n_leaves_total = offsets[n_trees]
    ptr = np.empty((n_tiles, n_leaves_total + 1), dtype=np.int64)
    local = np.empty(n * n_trees, dtype=np.uint16)
    slot = np.empty((n, n_trees), dtype=np.uint16)
    for b in prange(n_tiles):
        lo = b * tile
        hi = min(n, lo + tile)
        nb = hi - lo
        cursor = np.zeros(n_leaves_total, dtype=np.int32)
        for i in range(lo, hi):
            for t in range(n_trees):
                cursor[offsets[t] + leaves[i, t]] += 1
        for t in range(n_trees):
            s = lo * n_trees + t * nb
            at = 0  # the leaf's start within the tree's segment
            for j in range(offsets[t], offsets[t + 1]):
                ptr[b, j] = s + at
                count = cursor[j]
                cursor[j] = at
                at += count
        ptr[b, n_leaves_total] = hi * n_trees
        for i in range(lo, hi):
            for t in range(n_trees):
                j = offsets[t] + leaves[i, t]
                c = cursor[j]
                slot[i, t] = c
                local[lo * n_trees + t * nb + c] = i - lo
                cursor[j] = c + 1
    return ptr, local, slot


@njit(inline="always")
def _derivatives_at(objective, yi, f, k, c, p, out):
    """``(g, h, kappa, slope)`` of column ``k`` at ``f``: :func:`grad_hess_row` (its
    formulas for the binary log-loss and the squared error, inlined)."""
    if objective == BINARY:
        q = sigmoid(f[k])
        h = q * (1.0 - q)
        return q - yi, h, h * (1.0 - 2.0 * q), h
    if objective == SQUARED_ERROR:
        return f[k] - yi, 1.0, 0.0, 1.0
    grad_hess_row(objective, yi, f, k, c, p, out)
    return out[0], out[1], out[2], out[3]


@njit_parallel
def single_point_tiled(
    leaves, offsets, values, bias, objective, c, y, coef, unshrunk, w, gfin, slot, tile, keep_d
):
    """:func:`single_point` for one Newton step per leaf, straight from the stored
    trajectory into the tiled layout of ``tile_slots`` (``slot``), without ``(n, T)``
    term arrays: the terms ``g + vbar h`` and ``w (slope + vbar kappa)`` (``vbar =
    unshrunk[leaf]``) are formed per entry, rounded as the leaf rule's numpy
    expressions.

    Each row's scores are replayed from ``values`` (shrunk leaf values) and ``bias``
    as the replay does, and its gradient, hessian, third derivative and slope
    (``grad_hess_row``) are formed at each tree's round, so every entry has the bits
    of the replay's. Returns ``removal = -w D`` tiled, the self-influence ``sum_t
    gfin[i, t % K] removal[i, t]`` (summed as numpy sums a row), whether every
    removal is finite, and ``D`` ``(n, T)`` when ``keep_d`` (else empty). Parallel
    over rows.
    """
    # one function: the replay, the derivatives and the scatter share the row's state
    n, n_trees = leaves.shape
    K = bias.shape[0]
    n_rounds = n_trees // K
    d_tiled = np.empty(n * n_trees)
    self_values = np.empty(n)
    D = np.empty((n, n_trees) if keep_d else (0, 0))
    n_chunks = min(n, 64)
    bad = np.zeros(n_chunks, dtype=np.bool_)
    for ch in prange(n_chunks):
        f = np.empty(K)
        p = np.empty(K)
        jv = np.empty(K)
        out = np.empty(4)
        prod = np.empty(n_trees)
        for i in range(ch * n // n_chunks, (ch + 1) * n // n_chunks):
            lo = i - i % tile
            nb = min(n, lo + tile) - lo
            wi = w[i]
            for k in range(K):
                f[k] = bias[k]
                jv[k] = 0.0
            for r in range(n_rounds):
                if objective == MULTICLASS:
                    softmax_into(f, p)
                for k in range(K):
                    t = r * K + k
                    j = offsets[t] + leaves[i, t]
                    cf = coef[j]
                    d = 0.0
                    if cf != 0.0:
                        g, h, kap, slope = _derivatives_at(objective, y[i], f, k, c, p, out)
                        vbar = unshrunk[j]
                        q = wi * (slope + vbar * kap)
                        d = cf * ((g + vbar * h) + q * jv[k])
                        jv[k] += d
                    removal = -wi * d
                    if keep_d:
                        D[i, t] = d
                    d_tiled[lo * n_trees + t * nb + slot[i, t]] = removal
                    prod[t] = gfin[i, k] * removal
                    if not np.isfinite(removal):
                        bad[ch] = True
                for k in range(K):
                    t = r * K + k
                    f[k] += values[offsets[t] + leaves[i, t]]
            self_values[i] = numpy_sum(prod, 0, n_trees)
    return d_tiled, self_values, not bad.any(), D


@njit_parallel
def tiled_gather_sum(ptr, local, d_tiled, offsets, per_leaf, n, tile):
    """``out[i] = sum_t D[i, t] * per_leaf[offsets[t] + leaf_t(i)]`` with ``D = -d``,
    ``d`` in the tiled layout of :func:`~skinfluence._kernels._leaves.tiled` (the
    trees of each row added in order, as ``_leaves.leaf_gather_sum``); parallel over
    tiles."""
    n_trees = offsets.shape[0] - 1
    out = np.zeros(n)
    for b in prange(ptr.shape[0]):
        lo = b * tile
        for t in range(n_trees):
            for j in range(offsets[t], offsets[t + 1]):
                c = per_leaf[j]
                for r in range(ptr[b, j], ptr[b, j + 1]):
                    out[lo + local[r]] += -d_tiled[r] * c
    return out


@njit_parallel
def untiled_negative(ptr, local, d_tiled, offsets, n, tile):
    """``D = -d`` ``(n, T)`` from ``d`` in the tiled layout."""
    n_trees = offsets.shape[0] - 1
    D = np.empty((n, n_trees))
    for b in prange(ptr.shape[0]):
        lo = b * tile
        for t in range(n_trees):
            for r in range(ptr[b, offsets[t]], ptr[b, offsets[t + 1]]):
                D[lo + local[r], t] = -d_tiled[r]
    return D


@njit
def gather_changes(Dp, o, L, Jk, train, n_top, selected, li, i):
    """Add each leaf change ``Dp[o + l]`` of a tree to the score derivative ``Jk`` of
    the rows it moves: every row of the leaf when the update set takes them (all rows,
    or a selected top-k leaf), else only the removed row ``i`` in its own leaf ``li``."""
    indptr, order = train.indptr, train.order
    for l in range(L):
        j = o + l
        d = Dp[j]
        if d == 0.0:
            continue
        if n_top < 0 or selected[l]:
            for pos in range(indptr[j], indptr[j + 1]):
                Jk[order[pos]] += d
        elif l == li:
            Jk[i] += d


@njit
def _move_rows(j, i, d, ds, k, n_top, train, s):
    """Move the scores of the rows of flat leaf ``j`` (but ``i``) by its change ``d``
    (and their top-k selection change by ``ds``)."""
    for pos in range(train.indptr[j], train.indptr[j + 1]):
        row = train.order[pos]
        if row != i:
            s.score_change[k, row] += d
            s.changed[row] = True
            if n_top > 0:
                s.selection_change[k, row] += ds


@njit_parallel
def forward_block(rows, train, terms, n_top, gfin_self):
    """Forward mode for a block of removed rows (:ref:`methods-leaf-influence-algorithms`).

    For removed row ``i = rows[p]`` propagates ``J = dF / dw_i`` (``K x n``) through the
    trees with update set ``n_top`` (-1: all rows, 0: ``{i}``, k: ``{i}`` and the rows of
    the top-k leaves). Parallel over removed rows.

    Returns ``D`` of shape ``(r, n_leaves_total)`` (``D[p, j] = dv_j / dw_i``) and
    ``self_dot[p] = sum_k gfin_self[p, k] * J[k, i]`` at the end (``dF(x_i)/dw_i`` read
    on i's own leaves, projected on i's final loss gradient).
    """
    leaves, leaves_T, offsets = train.leaves, train.leaves_by_tree, train.offsets
    indptr, order, K = train.indptr, train.order, train.n_outputs
    coef, A, wQ, wQ_sorted = terms.coef, terms.source, terms.propagation, terms.propagation_sorted
    n, n_trees = leaves.shape
    r = rows.shape[0]
    n_total = offsets[n_trees]
    D = np.zeros((r, n_total))
    self_dot = np.zeros(r)
    max_L = _max_leaves(offsets)
    for p in prange(r):
        i = rows[p]
        J = np.zeros((K, n))
        selected = np.zeros(max_L, dtype=np.bool_)
        sums = np.zeros(max_L)
        Dp = D[p]
        for t in range(n_trees):
            o = offsets[t]
            L = offsets[t + 1] - o
            k = t % K
            li = leaves[i, t]
            if coef[o + li] == 0.0 and n_top == 0:
                continue
            if n_top == 0:
                d = coef[o + li] * (A[i, t] + wQ[i, t] * J[k, i])
                Dp[o + li] = d
                J[k, i] += d
                continue
            if n_top > 0:
                _select_top_leaves(J, K, leaves_T[t], L, n_top, selected, sums)
            for l in range(L):
                j = o + l
                cf = coef[j]
                if cf == 0.0:
                    continue
                full = n_top < 0 or selected[l]
                s = 0.0
                if full:
                    for pos in range(indptr[j], indptr[j + 1]):
                        s += wQ_sorted[pos] * J[k, order[pos]]
                elif l == li:
                    s = wQ[i, t] * J[k, i]
                else:
                    continue
                if l == li:
                    s += A[i, t]
                Dp[j] = cf * s
            # J gathers D (after all leaves of the tree are computed)
            gather_changes(Dp, o, L, J[k], train, n_top, selected, li, i)
        s = 0.0
        for c in range(K):
            s += gfin_self[p, c] * J[c, i]
        self_dot[p] = s
    return D, self_dot


@njit_parallel
def reverse_sweep(Gq, train, terms, n_chunks):
    """Adjoint sweep (:ref:`methods-leaf-influence-algorithms`) for ``r`` query objectives at once.

    ``Gq`` is ``(n_leaves_total, r)``: per leaf, the summed final loss gradients (column
    of the tree) of the queries in that leaf. Returns ``score`` of shape ``(n, r)``,
    ``score[i, c] = dPsi_c / dw_i``. Parallel over blocks of query columns; every column
    is computed by the same sequence of operations whatever the blocking.
    """
    offsets, indptr, order, K = train.offsets, train.indptr, train.order, train.n_outputs
    coef, A_sorted, wQ_sorted = terms.coef, terms.source_sorted, terms.propagation_sorted
    n = train.leaves.shape[0]
    n_trees = offsets.shape[0] - 1
    r = Gq.shape[1]
    score = np.zeros((n, r))
    n_chunks = max(1, min(n_chunks, r))
    step = (r + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        c0 = ch * step
        c1 = min(r, c0 + step)
        w = c1 - c0
        if w <= 0:
            continue
        z = np.zeros((K, n, w))
        sc = np.zeros((n, w))
        dbar = np.empty(w)
        for t in range(n_trees - 1, -1, -1):
            k = t % K
            zk = z[k]
            for j in range(offsets[t], offsets[t + 1]):
                cf = coef[j]
                if cf == 0.0:
                    continue
                for c in range(w):
                    dbar[c] = Gq[j, c0 + c]
                for pos in range(indptr[j], indptr[j + 1]):
                    zr = zk[order[pos]]
                    for c in range(w):
                        dbar[c] += zr[c]
                for c in range(w):
                    dbar[c] *= cf
                for pos in range(indptr[j], indptr[j + 1]):
                    row = order[pos]
                    a = A_sorted[pos]
                    q = wQ_sorted[pos]
                    zr = zk[row]
                    sr = sc[row]
                    for c in range(w):
                        sr[c] += dbar[c] * a
                        zr[c] += dbar[c] * q
        for i in range(n):
            for c in range(w):
                score[i, c0 + c] = sc[i, c]
    return score


@njit_parallel
def gather_leaf_sums(q_flat, X, K):
    """``out[e, k, p] = sum_{t in column k} X[p, q_flat[e, t]]``: the change of the
    query's raw score column ``k`` under removed row ``p`` (parallel over queries)."""
    m, n_trees = q_flat.shape
    r = X.shape[0]
    out = np.zeros((m, K, r))
    for e in prange(m):
        oe = out[e]
        for p in range(r):
            Xp = X[p]
            for t in range(n_trees):
                oe[t % K, p] += Xp[q_flat[e, t]]
    return out


class _RefitScratch(NamedTuple):
    """The working arrays of one removed row's refit."""

    #: ``(K, n)`` change of every row's raw score so far
    score_change: np.ndarray
    #: ``(K, n)`` change against the float64 Newton steps (top-k selection only)
    selection_change: np.ndarray
    #: ``(K, n)`` weighted change of every row's gradient and hessian this round
    gradient_change: np.ndarray
    hessian_change: np.ndarray
    #: ``(n,)`` rows whose score has changed
    changed: np.ndarray
    #: ``(max_L,)`` the top-k leaves of the tree and their summed changes
    selected: np.ndarray
    leaf_sums: np.ndarray
    #: ``(K,)`` scores and softmax of one row, ``(2,)`` its gradient and hessian
    scores: np.ndarray
    proba: np.ndarray
    grad_hess: np.ndarray


@njit
def _refit_scratch(K, n, max_L, n_top):
    return _RefitScratch(
        np.zeros((K, n)),
        np.zeros((K, n)) if n_top > 0 else np.zeros((K, 0)),
        np.zeros((K, n)),
        np.zeros((K, n)),
        np.zeros(n, dtype=np.bool_),
        np.zeros(max_L, dtype=np.bool_),
        np.zeros(max_L),
        np.empty(K),
        np.empty(K),
        np.empty(2),
    )


@njit
def _refit_gradients(b, K, refit, s, edited=-1, new_label=0.0):
    """Gradient and hessian changes of the changed rows at their re-trained scores
    before round ``b`` (once per round); row ``edited`` (if any) at ``new_label``."""
    F_before, g, h, w, y = (
        refit.scores_before,
        refit.gradients,
        refit.hessians,
        refit.weights,
        refit.labels,
    )
    objective, c = refit.objective, refit.multiclass_factor
    delta, dg, dh = s.score_change, s.gradient_change, s.hessian_change
    f, pb, out = s.scores, s.proba, s.grad_hess
    for j in range(F_before.shape[0]):
        if not s.changed[j] and j != edited:
            continue
        for m in range(K):
            f[m] = F_before[j, b * K + m] + delta[m, j]
        if objective == MULTICLASS:
            softmax_into(f, pb)
        yj = new_label if j == edited else y[j]
        for m in range(K):
            t = b * K + m
            grad_hess_row(objective, yj, f, m, c, pb, out)
            dg[m, j] = w[j] * (out[0] - g[j, t])
            dh[m, j] = w[j] * (out[1] - h[j, t])


@njit
def _newton_value(G, den, eta, max_delta_step):
    """``-eta G / den`` (0 when ``den == 0``), its unshrunk value clamped to
    ``+-max_delta_step`` when that is positive."""
    if den == 0.0:
        return 0.0
    if max_delta_step > 0.0:
        step = -G / den
        if step > max_delta_step:
            step = max_delta_step
        elif step < -max_delta_step:
            step = -max_delta_step
        return eta * step
    return -eta * G / den


@njit
def _steps_value(t, l, i, uses_change, train, refit, s, edited=-1, new_label=0.0):
    """Refit value of leaf ``l`` of tree ``t`` without row ``i`` by the rule's steps:
    its rows at their stored scores before the tree, moved by their score changes when
    ``uses_change``; row ``edited`` (if any) at ``new_label``."""
    j = train.offsets[t] + l
    k = t % train.n_outputs
    w, y = refit.weights, refit.labels
    f, pb, out = s.scores, s.proba, s.grad_hess
    u = 0.0
    for m in range(refit.steps[t]):
        G = 0.0
        D = 0.0
        for pos in range(train.indptr[j], train.indptr[j + 1]):
            row = train.order[pos]
            if row == i:
                continue
            f[0] = refit.scores_before[row, t] + u
            if uses_change:
                f[0] += s.score_change[k, row]
            yr = new_label if row == edited else y[row]
            grad_hess_row(refit.objective, yr, f, 0, refit.multiclass_factor, pb, out)
            G += w[row] * out[0]
            D += w[row] * (1.0 if refit.gradient_step else out[1])
        den = D + refit.l2[j]
        if den != 0.0:
            u -= refit.step_scales[t, m] * G / den
    return refit.learning_rates[t] * u


@njit
def _refit_tree_steps(t, i, train, refit, n_top, s, dvp):
    """:func:`_refit_tree` for leaves computed by several steps (one column): every
    leaf is recomputed from its rows (the update set decides whose score changes
    count); returns the change of ``i``'s own leaf."""
    k = t % train.n_outputs
    values, recomputed = refit.leaf_values, refit.recomputed
    sel, selected = s.selection_change, s.selected
    o = train.offsets[t]
    L = train.offsets[t + 1] - o
    li = train.leaves[i, t]
    own = 0.0
    if n_top > 0:
        _select_top_leaves(
            sel, train.n_outputs, train.leaves_by_tree[t], L, n_top, selected, s.leaf_sums
        )
    for l in range(L):
        j = o + l
        full = n_top < 0 or (n_top > 0 and selected[l])
        if not full and l != li:
            dvp[j] = 0.0  # no row of the leaf moved: the leaf keeps its value
            continue
        d = _steps_value(t, l, i, full, train, refit, s) - values[j]
        if abs(d + values[j] - recomputed[j]) <= 1e-12 * max(1.0, abs(recomputed[j])):
            d = 0.0  # rows moved by rounding only: the stored value stands
        dvp[j] = d
        if l == li:
            own = d
        if full and d != 0.0:
            _move_rows(j, i, d, d + values[j] - recomputed[j], k, n_top, train, s)
    return own


@njit
def _refit_tree(t, i, train, refit, n_top, s, dvp):
    """Refit the leaves of tree ``t`` without row ``i``: writes the leaf changes into
    ``dvp``, moves the scores of the rows of the leaves that changed and returns the
    change of ``i``'s own leaf."""
    indptr, order, k = train.indptr, train.order, t % train.n_outputs
    G, H, l2, values = refit.gradient_sums, refit.hessian_sums, refit.l2, refit.leaf_values
    g, h, w, eta = refit.gradients, refit.hessians, refit.weights, refit.learning_rates
    sel, selected = s.selection_change, s.selected
    o = train.offsets[t]
    L = train.offsets[t + 1] - o
    li = train.leaves[i, t]
    own = 0.0
    if n_top > 0:
        _select_top_leaves(
            sel, train.n_outputs, train.leaves_by_tree[t], L, n_top, selected, s.leaf_sums
        )
    for l in range(L):
        j = o + l
        full = n_top < 0 or (n_top > 0 and selected[l])
        Gp = G[j]
        Hp = H[j]
        if full:
            for pos in range(indptr[j], indptr[j + 1]):
                row = order[pos]
                if row != i:
                    Gp += s.gradient_change[k, row]
                    Hp += s.hessian_change[k, row]
        if l == li:
            Gp -= w[i] * g[i, t]
            Hp -= w[i] * h[i, t]
        den = Hp + l2[j]
        # a leaf left without rows and without regularisation: v' = 0
        vnew = _newton_value(Gp, den, eta[t], refit.max_delta_step)
        d = vnew - values[j]
        dvp[j] = d
        if l == li:
            own = d
        if full and d != 0.0:
            # the top-k selection reads the change against the float64 Newton
            # step of the unperturbed leaf: a leaf whose rows did not change
            # moves by exactly 0 there, so the rounding gap to the library's
            # stored value (~1e-8 for float32 libraries) cannot decide ties
            ds = 0.0
            if n_top > 0:
                den0 = H[j] + l2[j]
                v0 = values[j]
                if den0 != 0.0:
                    v0 = _newton_value(G[j], den0, eta[t], refit.max_delta_step)
                ds = vnew - v0
                # changes at rounding level (noise carried through the
                # gradients of rows whose score moved by rounding only) are
                # not changes: they must not break ties either
                if abs(ds) <= 1e-10 * max(abs(vnew), abs(v0)):
                    ds = 0.0
            _move_rows(j, i, d, ds, k, n_top, train, s)
    return own


@njit_parallel
def refit_block(rows, train, refit, n_top):
    """Fixed-structure Newton refit without each removed row (:ref:`methods-leaf-refit`).

    ``train`` holds the training rows' leaves, ``refit`` the stored trajectory
    (:class:`RefitInputs`); ``n_top`` is the update set (-1: all rows, 0: the removed
    row's own leaves, k: also the rows of the top-k leaves). Parallel over removed
    rows.

    Returns ``dv`` ``(r, n_leaves_total)``, ``dv[p, j] = v'_j - v_j`` of the refit without
    ``rows[p]``, and ``dself`` ``(r, K)``, the change of the removed row's own raw score.
    """
    offsets, K = train.offsets, train.n_outputs
    n, n_trees = train.leaves.shape
    r = rows.shape[0]
    n_rounds = n_trees // K
    dv = np.zeros((r, offsets[n_trees]))
    dself = np.zeros((r, K))
    max_L = _max_leaves(offsets)
    for p in prange(r):
        i = rows[p]
        s = _refit_scratch(K, n, max_L, n_top)
        for b in range(n_rounds):
            if refit.steps.shape[0] > 0:
                for k in range(K):
                    t = b * K + k
                    if not refit.constant_tree[t]:
                        dself[p, k] += _refit_tree_steps(t, i, train, refit, n_top, s, dv[p])
                continue
            _refit_gradients(b, K, refit, s)
            for k in range(K):
                t = b * K + k
                if not refit.constant_tree[t]:
                    dself[p, k] += _refit_tree(t, i, train, refit, n_top, s, dv[p])
    return dv, dself


@njit
def _relabel_tree(t, i, train, refit, s, dvp):
    """Refit the leaves of tree ``t`` with every row (``i`` relabelled, its gradient
    change included like every changed row's): writes the leaf changes into ``dvp``,
    moves every row of a changed leaf and returns the change of ``i``'s own leaf."""
    k = t % train.n_outputs
    o = train.offsets[t]
    own = 0.0
    for l in range(train.offsets[t + 1] - o):
        j = o + l
        Gp = refit.gradient_sums[j]
        Hp = refit.hessian_sums[j]
        for pos in range(train.indptr[j], train.indptr[j + 1]):
            row = train.order[pos]
            Gp += s.gradient_change[k, row]
            Hp += s.hessian_change[k, row]
        vnew = _newton_value(Gp, Hp + refit.l2[j], refit.learning_rates[t], refit.max_delta_step)
        d = vnew - refit.leaf_values[j]
        dvp[j] = d
        if l == train.leaves[i, t]:
            own = d
        if d != 0.0:
            _move_rows(j, -1, d, 0.0, k, -1, train, s)
    return own


@njit
def _relabel_tree_steps(t, i, new_label, train, refit, s, dvp):
    """:func:`_relabel_tree` for leaves computed by several steps: every leaf recomputed
    by the kept steps from its rows at their re-trained scores, row ``i`` at
    ``new_label``."""
    k = t % train.n_outputs
    o = train.offsets[t]
    own = 0.0
    for l in range(train.offsets[t + 1] - o):
        j = o + l
        v = _steps_value(t, l, -1, True, train, refit, s, i, new_label)
        d = v - refit.leaf_values[j]
        if abs(v - refit.recomputed[j]) <= 1e-12 * max(1.0, abs(refit.recomputed[j])):
            d = 0.0  # rows moved by rounding only: the stored value stands
        dvp[j] = d
        if l == train.leaves[i, t]:
            own = d
        if d != 0.0:
            _move_rows(j, -1, d, 0.0, k, -1, train, s)
    return own


@njit_parallel
def relabel_block(rows, new_labels, train, refit):
    """Fixed-structure Newton refit with each row of ``rows`` relabelled to
    ``new_labels`` (every row updated; :ref:`methods-label-edit`). Parallel over the
    edited rows.

    Returns ``dv`` ``(r, n_leaves_total)``, ``dv[p, j] = v'_j - v_j`` of the refit with
    ``rows[p]`` relabelled, and ``dself`` ``(r, K)``, the change of its own raw score.
    """
    offsets, K = train.offsets, train.n_outputs
    n, n_trees = train.leaves.shape
    r = rows.shape[0]
    dv = np.zeros((r, offsets[n_trees]))
    dself = np.zeros((r, K))
    max_L = _max_leaves(offsets)
    for p in prange(r):
        i = rows[p]
        s = _refit_scratch(K, n, max_L, -1)
        for b in range(n_trees // K):  # row i's gradient differs from round 0 on
            if refit.steps.shape[0] > 0:  # several steps per leaf (one column)
                if not refit.constant_tree[b]:
                    dself[p, 0] += _relabel_tree_steps(b, i, new_labels[p], train, refit, s, dv[p])
                continue
            _refit_gradients(b, K, refit, s, i, new_labels[p])
            for k in range(K):
                t = b * K + k
                if not refit.constant_tree[t]:
                    dself[p, k] += _relabel_tree(t, i, train, refit, s, dv[p])
    return dv, dself
