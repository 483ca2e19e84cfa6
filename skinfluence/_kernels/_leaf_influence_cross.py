"""Kernels of the exact multiclass LeafInfluence (:ref:`methods-leaf-influence-multiclass`).

With a softmax objective a leaf of tree ``t = (b, k)`` depends on every raw-score
column of its rows: ``dg_k/dF_m = p_k (1[m = k] - p_m)`` and ``dh_k/dF_m = c (1 - 2 p_k)
dg_k/dF_m`` for the library's diagonal hessian ``h_k = c p_k (1 - p_k)``. The
propagation term of row ``j`` in tree ``t`` is therefore

    sum_m w_j Q^(k)_{j,m} J[m, j] = cross[t, j] * (J[k, j] - sum_m p_{j,m} J[m, j])

with ``cross[t, j] = w_j p_{j,k} (1 + c vbar_t (1 - 2 p_{j,k}))`` and ``p`` the softmax
at the scores before round ``b``. Every tree of a round reads ``J`` as it stood before
the round: the kernels keep the per-row projection ``u_j = sum_m p_{j,m} J[m, j]`` of
the round start (forward) or apply the projection after all trees of the round
(reverse). No ``n x T x K`` array is formed: ``proba`` and ``cross`` are ``(T, n)``.

The kernels take :class:`~skinfluence._kernels._leaf_influence.TrainLeaves` and
:class:`~skinfluence._kernels._leaf_influence.DerivativeTerms` whose ``source`` and
``propagation`` are stored **by tree**, ``(T, n)`` (``source[t, j] = g + vbar h``,
``propagation[t, j] = cross[t, j]``; the reverse sweep reads them round by round over
all rows), ``propagation_sorted`` the leaf-ordered copy of ``cross`` (``source_sorted``
is unused), plus ``proba`` ``(T, n)``. Every parallel loop owns its output (a removed
row or a block of query columns) and runs its inner sums sequentially, so results do
not depend on the number of threads.
"""

import numpy as np

from ._jit import njit, njit_parallel, prange
from ._leaf_influence import _max_leaves, _select_top_leaves, gather_changes
from ._objectives import softmax_into


@njit_parallel
def cross_terms(leaves, offsets, values, unshrunk, bias, n_outputs, c, weights):
    """The per-(row, tree) softmax probabilities and cross-class propagation weights.

    Replays the stored trajectory (``bias`` plus the stored leaf ``values``) and returns
    ``proba[t, j] = p_k(F_{b-1}(x_j))`` for ``t = (b, k)`` and ``cross[t, j] = w_j
    proba[t, j] (1 + c vbar (1 - 2 proba[t, j]))``, ``vbar = unshrunk[leaf of j in t]``;
    both ``(T, n)``.
    """
    n, n_trees = leaves.shape
    K = n_outputs
    proba = np.empty((n_trees, n))
    cross = np.empty((n_trees, n))
    for j in prange(n):
        f = bias.copy()
        p = np.empty(K)
        for b in range(n_trees // K):
            softmax_into(f, p)
            for k in range(K):
                t = b * K + k
                vbar = unshrunk[offsets[t] + leaves[j, t]]
                proba[t, j] = p[k]
                cross[t, j] = weights[j] * p[k] * (1.0 + c * vbar * (1.0 - 2.0 * p[k]))
            for k in range(K):
                t = b * K + k
                f[k] += values[offsets[t] + leaves[j, t]]
    return proba, cross


@njit
def _round_projection(J, proba, b, K, u):
    """``u[j] = sum_m proba[b*K + m, j] * J[m, j]`` for every row (summed in column
    order)."""
    for j in range(u.shape[0]):
        u[j] = 0.0
    for m in range(K):
        pm, Jm = proba[b * K + m], J[m]
        for j in range(u.shape[0]):
            u[j] += pm[j] * Jm[j]


@njit_parallel
def single_point_cross(train, terms, proba):
    """``D[i, t] = dv_{t, leaf_t(i)} / dw_i`` with the update set ``{i}`` and the
    cross-class terms of row ``i``'s own scores. Parallel over rows; returns ``(n, T)``."""
    leaves, offsets, K = train.leaves, train.offsets, train.n_outputs
    coef, A, S = terms.coef, terms.source, terms.propagation
    n, n_trees = leaves.shape
    D = np.zeros((n, n_trees))
    for i in prange(n):
        jv = np.zeros(K)
        for b in range(n_trees // K):
            u = 0.0
            for m in range(K):
                u += proba[b * K + m, i] * jv[m]
            for k in range(K):
                t = b * K + k
                cf = coef[offsets[t] + leaves[i, t]]
                if cf == 0.0:
                    continue
                # jv[k] is only changed by this tree within the round: its value
                # before the round
                d = cf * (A[t, i] + S[t, i] * (jv[k] - u))
                D[i, t] = d
                jv[k] += d
    return D


@njit_parallel
def forward_block_cross(rows, train, terms, proba, n_top, gfin_self):
    """Forward mode with the cross-class terms for a block of removed rows.

    As :func:`~skinfluence._kernels._leaf_influence.forward_block` (``n_top``: -1 all
    rows, 0 the removed row only, k >= 1 the removed row and the rows of the top-k
    leaves, selected from ``J`` as updated by every earlier tree), with row ``j``'s
    propagation term ``cross[t, j] (J[k, j] - u_j)``, ``u_j`` the softmax projection of
    ``J[:, j]`` at the start of the round. Parallel over removed rows.

    Returns ``D`` ``(r, n_leaves_total)`` and ``self_dot`` ``(r,)``.
    """
    # one function: the per-row scratch arrays live inside the parallel loop
    leaves, leaves_T, offsets = train.leaves, train.leaves_by_tree, train.offsets
    indptr, order, K = train.indptr, train.order, train.n_outputs
    coef, A, S, S_sorted = terms.coef, terms.source, terms.propagation, terms.propagation_sorted
    n, n_trees = leaves.shape
    r = rows.shape[0]
    D = np.zeros((r, offsets[n_trees]))
    self_dot = np.zeros(r)
    max_L = _max_leaves(offsets)
    for p in prange(r):
        i = rows[p]
        J = np.zeros((K, n))
        u = np.zeros(n)
        selected = np.zeros(max_L, dtype=np.bool_)
        sums = np.zeros(max_L)
        Dp = D[p]
        for t in range(n_trees):
            k = t % K
            if k == 0:
                _round_projection(J, proba, t // K, K, u)
            o = offsets[t]
            L = offsets[t + 1] - o
            li = leaves[i, t]
            if n_top > 0:
                _select_top_leaves(J, K, leaves_T[t], L, n_top, selected, sums)
            Jk = J[k]
            for l in range(L):
                j = o + l
                cf = coef[j]
                if cf == 0.0:
                    continue
                s = 0.0
                if n_top < 0 or selected[l]:
                    for pos in range(indptr[j], indptr[j + 1]):
                        row = order[pos]
                        s += S_sorted[pos] * (Jk[row] - u[row])
                elif l == li:
                    s = S[t, i] * (Jk[i] - u[i])
                else:
                    continue
                if l == li:
                    s += A[t, i]
                Dp[j] = cf * s
            # J gathers D (after all leaves of the tree are computed)
            gather_changes(Dp, o, L, Jk, train, n_top, selected, li, i)
        s = 0.0
        for c in range(K):
            s += gfin_self[p, c] * J[c, i]
        self_dot[p] = s
    return D, self_dot


@njit
def _max_round_leaves(offsets, K):
    """The largest number of leaves of one round's ``K`` trees."""
    out = 1
    for t0 in range(0, offsets.shape[0] - 1, K):
        if offsets[t0 + K] - offsets[t0] > out:
            out = offsets[t0 + K] - offsets[t0]
    return out


@njit_parallel
def reverse_sweep_cross(Gq, train, terms, proba, n_chunks):
    """Adjoint sweep with the cross-class terms for ``r`` query objectives at once.

    ``Gq`` ``(n_leaves_total, r)`` as in
    :func:`~skinfluence._kernels._leaf_influence.reverse_sweep`. Rounds in reverse
    order; the ``K`` trees of a round compute ``a_l = coef_l (Gq_l + sum_{j in l}
    z[j, k])`` from ``z`` as it stood before the round; then, row by row, with
    ``e_k = a_{(b,k), leaf of j} cross_{j,(b,k)}``: ``score_j += sum_k a A_{j,(b,k)}``
    and ``z[j, m] += e_m - p_{j,(b,m)} sum_k e_k``.
    Returns ``score`` ``(n, r)``. Parallel over blocks of query columns.
    """
    # one function: the per-chunk scratch arrays live inside the parallel loop
    offsets, indptr, order, K = train.offsets, train.indptr, train.order, train.n_outputs
    leaves_T, coef, A, S = train.leaves_by_tree, terms.coef, terms.source, terms.propagation
    n = train.leaves.shape[0]
    n_trees = offsets.shape[0] - 1
    r = Gq.shape[1]
    score = np.zeros((n, r))
    n_chunks = max(1, min(n_chunks, r))
    step = (r + n_chunks - 1) // n_chunks
    max_R = _max_round_leaves(offsets, K)
    for ch in prange(n_chunks):
        c0 = ch * step
        c1 = min(r, c0 + step)
        w = c1 - c0
        if w <= 0:
            continue
        z = np.zeros((n, K, w))
        sc = np.zeros((n, w))
        rsum = np.zeros(w)
        e = np.zeros((K, w))
        a = np.zeros((max_R, w))
        for b in range(n_trees // K - 1, -1, -1):
            o0 = offsets[b * K]
            # the round's leaf adjoints, all from z before the round
            for t in range(b * K, b * K + K):
                k = t % K
                for j in range(offsets[t], offsets[t + 1]):
                    cf = coef[j]
                    if cf == 0.0:
                        continue
                    jj = j - o0
                    for c in range(w):
                        a[jj, c] = Gq[j, c0 + c]
                    for pos in range(indptr[j], indptr[j + 1]):
                        row = order[pos]
                        for c in range(w):
                            a[jj, c] += z[row, k, c]
                    for c in range(w):
                        a[jj, c] *= cf
            # row by row: the score, and z moved by the round's changes projected on
            # the softmax (z[j, m] += e_m - p_m sum_k e_k, e_k = a_k cross_{j,(b,k)})
            for row in range(n):
                for c in range(w):
                    rsum[c] = 0.0
                for k in range(K):
                    t = b * K + k
                    j = offsets[t] + leaves_T[t, row]
                    if coef[j] == 0.0:
                        for c in range(w):
                            e[k, c] = 0.0
                        continue
                    jj = j - o0
                    ai = A[t, row]
                    q = S[t, row]
                    for c in range(w):
                        av = a[jj, c]
                        sc[row, c] += av * ai
                        ev = av * q
                        e[k, c] = ev
                        rsum[c] += ev
                for m in range(K):
                    pm = proba[b * K + m, row]
                    for c in range(w):
                        z[row, m, c] += e[m, c] - pm * rsum[c]
        for i in range(n):
            for c in range(w):
                score[i, c0 + c] = sc[i, c]
    return score
