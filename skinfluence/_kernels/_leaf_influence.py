"""Kernels of LeafInfluence and LeafRefit (:ref:`methods-leaf-influence` and the next section).

Conventions (as in ``_trees`` and ``_leaves``):

* ``leaves``: ``(n, T)`` int32 local leaf ids; ``offsets``: ``(T + 1,)`` int64, the flat
  index of leaf ``l`` of tree ``t`` is ``offsets[t] + l``; tree ``t`` is round ``t // K``,
  raw-score column ``t % K``;
* ``indptr`` / ``order``: the training rows of each flat leaf (CSR of
  ``_leaves.group_by_leaf``); an array ``X_sorted`` of length ``n * T`` holds a
  per-(row, tree) quantity in the same order (``_leaves.sort_by_leaf``);
* ``coef[j] = -eta_t / (H_j + lambda_j)`` per flat leaf, 0 for constant trees and
  leaves with a non-positive denominator (they carry no derivative);
* ``A[i, t] = g_i + vbar h_i`` (source term) and ``wQ[i, t] = w_i (h_i + vbar kappa_i)``
  (propagation term), gradients at the scores before the tree's round.

Every parallel loop owns its output (a removed row, or a block of query columns) and
runs its inner sums sequentially, so results do not depend on the number of threads.
"""

import numpy as np

from ._jit import njit, njit_parallel, prange
from ._objectives import MULTICLASS, grad_hess_row, softmax_into


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
def single_point(leaves, offsets, coef, A, wQ, K):
    """``D[i, t] = dv_{t, leaf_t(i)} / dw_i`` with the update set ``{i}`` (Methods, single point).

    O(n T); returns ``D`` of shape ``(n, T)``.
    """
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


@njit_parallel
def forward_block(
    rows, leaves, leaves_T, offsets, indptr, order, coef, A, wQ, wQ_sorted, K, n_top, gfin_self
):
    """Forward mode for a block of removed rows (:ref:`methods-leaf-influence-algorithms`).

    For removed row ``i = rows[p]`` propagates ``J = dF / dw_i`` (``K x n``) through the
    trees with update set ``n_top`` (-1: all rows, 0: ``{i}``, k: ``{i}`` and the rows of
    the top-k leaves). Parallel over removed rows.

    Returns ``D`` of shape ``(r, n_leaves_total)`` (``D[p, j] = dv_j / dw_i``) and
    ``self_dot[p] = sum_k gfin_self[p, k] * J[k, i]`` at the end (``dF(x_i)/dw_i`` read
    on i's own leaves, projected on i's final loss gradient).
    """
    n, n_trees = leaves.shape
    r = rows.shape[0]
    n_total = offsets[n_trees]
    D = np.zeros((r, n_total))
    self_dot = np.zeros(r)
    max_L = 1
    for t in range(n_trees):
        if offsets[t + 1] - offsets[t] > max_L:
            max_L = offsets[t + 1] - offsets[t]
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
            for l in range(L):
                j = o + l
                d = Dp[j]
                if d == 0.0:
                    continue
                if n_top < 0 or selected[l]:
                    for pos in range(indptr[j], indptr[j + 1]):
                        J[k, order[pos]] += d
                elif l == li:
                    J[k, i] += d
        s = 0.0
        for c in range(K):
            s += gfin_self[p, c] * J[c, i]
        self_dot[p] = s
    return D, self_dot


@njit_parallel
def reverse_sweep(Gq, offsets, indptr, order, coef, A_sorted, wQ_sorted, K, n, n_chunks):
    """Adjoint sweep (:ref:`methods-leaf-influence-algorithms`) for ``r`` query objectives at once.

    ``Gq`` is ``(n_leaves_total, r)``: per leaf, the summed final loss gradients (column
    of the tree) of the queries in that leaf. Returns ``score`` of shape ``(n, r)``,
    ``score[i, c] = dPsi_c / dw_i``. Parallel over blocks of query columns; every column
    is computed by the same sequence of operations whatever the blocking.
    """
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


@njit_parallel
def refit_block(
    rows,
    leaves,
    leaves_T,
    offsets,
    indptr,
    order,
    F_before,
    g,
    h,
    w,
    y,
    G,
    H,
    l2,
    values,
    eta,
    constant,
    K,
    objective,
    c,
    n_top,
):
    """Fixed-structure Newton refit without each removed row (:ref:`methods-leaf-refit`).

    ``F_before`` is ``(n, T)``: for tree ``t = (b, k)``, ``F_before[j, b*K + m]`` is row
    ``j``'s stored raw score column ``m`` before round ``b``; ``g``, ``h`` ``(n, T)`` the
    stored-trajectory gradients; ``G``, ``H`` the weighted per-leaf sums; ``values`` the
    stored leaf values. Parallel over removed rows.

    Returns ``dv`` ``(r, n_leaves_total)``, ``dv[p, j] = v'_j - v_j`` of the refit without
    ``rows[p]``, and ``dself`` ``(r, K)``, the change of the removed row's own raw score.
    """
    n, n_trees = leaves.shape
    r = rows.shape[0]
    n_total = offsets[n_trees]
    n_rounds = n_trees // K
    dv = np.zeros((r, n_total))
    dself = np.zeros((r, K))
    max_L = 1
    for t in range(n_trees):
        if offsets[t + 1] - offsets[t] > max_L:
            max_L = offsets[t + 1] - offsets[t]
    for p in prange(r):
        i = rows[p]
        delta = np.zeros((K, n))
        sel = np.zeros((K, n)) if n_top > 0 else np.zeros((K, 0))
        dg = np.zeros((K, n))
        dh = np.zeros((K, n))
        changed = np.zeros(n, dtype=np.bool_)
        selected = np.zeros(max_L, dtype=np.bool_)
        sums = np.zeros(max_L)
        f = np.empty(K)
        pb = np.empty(K)
        out = np.empty(2)
        dvp = dv[p]
        for b in range(n_rounds):
            # gradients at the re-trained scores before the round (once per round)
            for j in range(n):
                if not changed[j]:
                    continue
                for m in range(K):
                    f[m] = F_before[j, b * K + m] + delta[m, j]
                if objective == MULTICLASS:
                    softmax_into(f, pb)
                for m in range(K):
                    t = b * K + m
                    grad_hess_row(objective, y[j], f, m, c, pb, out)
                    dg[m, j] = w[j] * (out[0] - g[j, t])
                    dh[m, j] = w[j] * (out[1] - h[j, t])
            for k in range(K):
                t = b * K + k
                if constant[t]:
                    continue
                o = offsets[t]
                L = offsets[t + 1] - o
                li = leaves[i, t]
                if n_top > 0:
                    _select_top_leaves(sel, K, leaves_T[t], L, n_top, selected, sums)
                for l in range(L):
                    j = o + l
                    full = n_top < 0 or (n_top > 0 and selected[l])
                    Gp = G[j]
                    Hp = H[j]
                    if full:
                        for pos in range(indptr[j], indptr[j + 1]):
                            row = order[pos]
                            if row != i:
                                Gp += dg[k, row]
                                Hp += dh[k, row]
                    if l == li:
                        Gp -= w[i] * g[i, t]
                        Hp -= w[i] * h[i, t]
                    den = Hp + l2[j]
                    # a leaf left without rows and without regularisation: v' = 0
                    vnew = -eta[t] * Gp / den if den != 0.0 else 0.0
                    d = vnew - values[j]
                    dvp[j] = d
                    if l == li:
                        dself[p, k] += d
                    if full and d != 0.0:
                        # the top-k selection reads the change against the float64 Newton
                        # step of the unperturbed leaf: a leaf whose rows did not change
                        # moves by exactly 0 there, so the rounding gap to the library's
                        # stored value (~1e-8 for float32 libraries) cannot decide ties
                        ds = 0.0
                        if n_top > 0:
                            den0 = H[j] + l2[j]
                            v0 = -eta[t] * G[j] / den0 if den0 != 0.0 else values[j]
                            ds = vnew - v0
                            # changes at rounding level (noise carried through the
                            # gradients of rows whose score moved by rounding only) are
                            # not changes: they must not break ties either
                            if abs(ds) <= 1e-10 * max(abs(vnew), abs(v0)):
                                ds = 0.0
                        for pos in range(indptr[j], indptr[j + 1]):
                            row = order[pos]
                            if row != i:
                                delta[k, row] += d
                                changed[row] = True
                                if n_top > 0:
                                    sel[k, row] += ds
    return dv, dself
