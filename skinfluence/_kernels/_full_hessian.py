"""Kernels of the full-hessian (K x K Newton step) leaf model: CatBoost ``MultiClass``.

In such a model the K trees of one boosting round share their routing (one library tree
holding a K-vector per leaf), and the leaf vector of round ``b`` and leaf ``l`` is

    u_l = -eta (sum_{j in l} w_j H_j + lambda I)^{-1} G_l,
    G_l = sum_{j in l} w_j (p_j - e_{y_j}),   H_j = diag(p_j) - p_j p_j^T,

with ``p_j`` the softmax of row ``j``'s scores before the round (:ref:`methods-full-hessian`).

Layout (besides :class:`~skinfluence._kernels._leaf_influence.TrainLeaves`): the leaves
of round ``b`` are the leaves of its trees ``b*K .. b*K + K - 1``, which all have the
same number ``L`` of leaves, so ``offsets[b*K + k] = offsets[b*K] + k*L`` and the
*round leaf* ``(b, l)`` has the index ``offsets[b*K] // K + l`` (``n_round_leaves =
n_leaves_total // K`` in all). Rows of round leaf ``(b, l)`` are those of flat leaf
``offsets[b*K] + l`` in ``indptr`` / ``order``.

The derivative of ``u_l`` with respect to the weight of row ``i`` and to the scores of
the rows of the leaf uses, with ``ubar = u / eta`` the unshrunk stored leaf vector,

* ``A_i = g_i + H_i ubar`` (the source term; ``d u_l / d w_i = C_l A_i``),
* ``Q_j = d(g_j + H_j ubar)/dF_j = diag(1 + ubar - s_j) H_j - p_j (H_j ubar)^T`` with
  ``s_j = p_j . ubar`` (the propagation matrix, applied in O(K) without forming it),
* ``C_l = -eta M_l^{-1}``, ``M_l = sum w H + lambda I`` (symmetric).

Every parallel loop owns its output (a removed row, a training row or a block of query
columns) and runs its inner sums sequentially, so results do not depend on the number
of threads.
"""

from typing import NamedTuple

import numpy as np

from ._jit import njit, njit_parallel, prange
from ._leaf_influence import _max_leaves, _select_top_leaves
from ._objectives import softmax_into


class FullTerms(NamedTuple):
    """The terms of the full-hessian leaf derivatives."""

    #: ``(n_round_leaves, K, K)`` ``C_l = -eta M_l^{-1}``, zero where no derivative
    coef: np.ndarray
    #: ``(n_round_leaves,)`` whether the round leaf carries a derivative
    live: np.ndarray
    #: ``(n_round_leaves, K)`` unshrunk stored leaf vectors ``ubar``
    ubar: np.ndarray
    #: ``(n, R, K)`` softmax of each row's scores before each round
    proba: np.ndarray
    #: ``(n, R, K)`` source terms ``A = g + H ubar`` (of the row's own leaf)
    source: np.ndarray
    #: ``(n,)`` sample weights
    weights: np.ndarray


class FullRefit(NamedTuple):
    """The stored trajectory the full-hessian fixed-structure refit replays."""

    #: ``(n, R, K)`` stored raw scores before each round, and their softmax
    scores_before: np.ndarray
    proba: np.ndarray
    #: ``(n,)`` sample weights and class indices
    weights: np.ndarray
    labels: np.ndarray
    #: ``(n_round_leaves, K)`` weighted gradient sums; ``(.., K, K)`` ``M`` (lambda in)
    gradient_sums: np.ndarray
    hessian_sums: np.ndarray
    #: ``(n_round_leaves, K)`` the float64 Newton step of the unperturbed leaf
    newton_values: np.ndarray
    #: ``(n_round_leaves,)`` whether the round leaf is refitted (not a constant tree)
    live: np.ndarray
    #: ``(n_leaves_total,)`` stored leaf values; ``(R,)`` learning rate of each round
    leaf_values: np.ndarray
    learning_rates: np.ndarray


# ------------------------------------------------------------------ small algebra
@njit
def _q_apply(p, u, x, out):
    """``out = Q x`` with ``Q = diag(1 + u - s) H - p (H u)^T``, ``H = diag(p) - p p^T``,
    ``s = p . u`` (O(K))."""
    K = p.shape[0]
    s = 0.0
    px = 0.0
    for k in range(K):
        s += p[k] * u[k]
        px += p[k] * x[k]
    hux = 0.0
    for k in range(K):
        hux += p[k] * (u[k] - s) * x[k]
    for k in range(K):
        out[k] = (1.0 + u[k] - s) * (p[k] * x[k] - p[k] * px) - p[k] * hux


@njit
def _qt_apply(p, u, a, out):
    """``out = Q^T a = H ((1 + u - s) a) - (H u) (p . a)`` (O(K))."""
    K = p.shape[0]
    s = 0.0
    pa = 0.0
    for k in range(K):
        s += p[k] * u[k]
        pa += p[k] * a[k]
    pxs = 0.0
    for k in range(K):
        pxs += p[k] * (1.0 + u[k] - s) * a[k]
    for k in range(K):
        out[k] = p[k] * (1.0 + u[k] - s) * a[k] - p[k] * pxs - p[k] * (u[k] - s) * pa


@njit
def solve_small(M, rhs, x, work):
    """Solve ``M x = rhs`` (K x K) by Gauss elimination with partial pivoting.

    ``work`` is ``(K, K + 1)`` scratch. Returns False (``x`` untouched) when a pivot is
    exactly zero (a singular system).
    """
    K = rhs.shape[0]
    for r in range(K):
        for c in range(K):
            work[r, c] = M[r, c]
        work[r, K] = rhs[r]
    for c in range(K):
        piv = c
        best = abs(work[c, c])
        for r in range(c + 1, K):
            if abs(work[r, c]) > best:
                best = abs(work[r, c])
                piv = r
        if best == 0.0:
            return False
        if piv != c:
            for cc in range(c, K + 1):
                tmp = work[c, cc]
                work[c, cc] = work[piv, cc]
                work[piv, cc] = tmp
        for r in range(c + 1, K):
            f = work[r, c] / work[c, c]
            if f != 0.0:
                for cc in range(c, K + 1):
                    work[r, cc] -= f * work[c, cc]
    for r in range(K - 1, -1, -1):
        s = work[r, K]
        for c in range(r + 1, K):
            s -= work[r, c] * x[c]
        x[r] = s / work[r, r]
    return True


# --------------------------------------------------------------------- fit-time
@njit_parallel
def trajectory(leaves, offsets, values, bias, K):
    """Raw scores before each round and their softmax: two ``(n, R, K)`` arrays
    (the scores summed round by round from the bias, as the replay does)."""
    n, n_trees = leaves.shape
    R = n_trees // K
    scores = np.empty((n, R, K))
    proba = np.empty((n, R, K))
    for i in prange(n):
        f = bias.copy()
        for b in range(R):
            for k in range(K):
                scores[i, b, k] = f[k]
            softmax_into(f, proba[i, b])
            for k in range(K):
                t = b * K + k
                f[k] += values[offsets[t] + leaves[i, t]]
    return scores, proba


@njit_parallel
def round_leaf_sums(leaves, offsets, K, proba, labels, weights):
    """Per round leaf ``G_l = sum w (p - e_y)`` ``(n_round_leaves, K)`` and
    ``sum w H`` ``(n_round_leaves, K, K)`` (no lambda); parallel over rounds, rows
    added in order."""
    n, n_trees = leaves.shape
    R = n_trees // K
    n_rl = offsets[n_trees] // K
    G = np.zeros((n_rl, K))
    M = np.zeros((n_rl, K, K))
    for b in prange(R):
        base = offsets[b * K] // K
        for j in range(n):
            r = base + leaves[j, b * K]
            w = weights[j]
            p = proba[j, b]
            y = int(labels[j])
            for k in range(K):
                G[r, k] += w * (p[k] - (1.0 if k == y else 0.0))
                for m in range(K):
                    M[r, k, m] += w * ((p[k] if k == m else 0.0) - p[k] * p[m])
    return G, M


# ------------------------------------------------------------- LeafInfluence
@njit_parallel
def single_point(train, terms):
    """``D[i, b*K + k]``: column ``k`` of ``d u_{b, leaf_b(i)} / d w_i`` with the update
    set ``{i}`` (only the removed row's own scores move). O(n R K^2); ``(n, T)``."""
    leaves, offsets, K = train.leaves, train.offsets, train.n_outputs
    coef, live, ubar, proba, A, w = (
        terms.coef,
        terms.live,
        terms.ubar,
        terms.proba,
        terms.source,
        terms.weights,
    )
    n, n_trees = leaves.shape
    R = n_trees // K
    D = np.zeros((n, n_trees))
    for i in prange(n):
        J = np.zeros(K)
        s = np.empty(K)
        tmp = np.empty(K)
        for b in range(R):
            t0 = b * K
            r = offsets[t0] // K + leaves[i, t0]
            if not live[r]:
                continue
            _q_apply(proba[i, b], ubar[r], J, tmp)
            for k in range(K):
                s[k] = w[i] * tmp[k] + A[i, b, k]
            for k in range(K):
                d = 0.0
                for m in range(K):
                    d += coef[r, k, m] * s[m]
                D[i, t0 + k] = d
            for k in range(K):
                J[k] += D[i, t0 + k]
    return D


@njit
def _leaf_source(i, b, l, li, rl, full, o, train, terms, J, jr, tmp, s):
    """``s = sum_{j in update set of leaf} w_j Q_j J_j (+ A_i if i is in the leaf)``;
    returns False when the leaf takes no part."""
    indptr, order, K = train.indptr, train.order, train.n_outputs
    proba, ubar, w = terms.proba, terms.ubar, terms.weights
    for k in range(K):
        s[k] = 0.0
    if full:
        for pos in range(indptr[o + l], indptr[o + l + 1]):
            j = order[pos]
            for k in range(K):
                jr[k] = J[k, j]
            _q_apply(proba[j, b], ubar[rl], jr, tmp)
            for k in range(K):
                s[k] += w[j] * tmp[k]
    elif l == li:
        for k in range(K):
            jr[k] = J[k, i]
        _q_apply(proba[i, b], ubar[rl], jr, tmp)
        for k in range(K):
            s[k] += w[i] * tmp[k]
    else:
        return False
    if l == li:
        for k in range(K):
            s[k] += terms.source[i, b, k]
    return True


@njit_parallel
def forward_block(rows, train, terms, n_top, gfin_self):
    """Forward mode for a block of removed rows.

    For removed row ``i = rows[p]`` propagates ``J = dF / dw_i`` (``K x n``) through the
    rounds with update set ``n_top`` (-1: all rows, 0: ``{i}``, k: ``{i}`` and the rows
    of the top-k leaves of the round, chosen before the round by the sums of ``|J|``
    over the leaf's rows and all K columns). Parallel over removed rows.

    Returns ``D`` ``(r, n_leaves_total)`` (``D[p, j] = dv_j / dw_i``) and ``self_dot[p]
    = gfin_self[p] . J[:, i]`` at the end.
    """
    leaves, leaves_T, offsets = train.leaves, train.leaves_by_tree, train.offsets
    indptr, order, K = train.indptr, train.order, train.n_outputs
    coef, live = terms.coef, terms.live
    n, n_trees = leaves.shape
    R = n_trees // K
    r = rows.shape[0]
    D = np.zeros((r, offsets[n_trees]))
    self_dot = np.zeros(r)
    max_L = _max_leaves(offsets)
    for p in prange(r):
        i = rows[p]
        J = np.zeros((K, n))
        selected = np.zeros(max_L, dtype=np.bool_)
        sums = np.zeros(max_L)
        s = np.empty(K)
        jr = np.empty(K)
        tmp = np.empty(K)
        Dp = D[p]
        for b in range(R):
            t0 = b * K
            o = offsets[t0]
            L = offsets[t0 + 1] - o
            li = leaves[i, t0]
            if n_top > 0:
                _select_top_leaves(J, K, leaves_T[t0], L, n_top, selected, sums)
            for l in range(L):
                rl = o // K + l
                full = n_top < 0 or (n_top > 0 and selected[l])
                if not live[rl] or (n_top == 0 and l != li):
                    continue
                if not _leaf_source(i, b, l, li, rl, full, o, train, terms, J, jr, tmp, s):
                    continue
                for k in range(K):
                    d = 0.0
                    for m in range(K):
                        d += coef[rl, k, m] * s[m]
                    Dp[o + k * L + l] = d
            # J gathers D (after all leaves of the round are computed)
            for l in range(L):
                rl = o // K + l
                if not live[rl]:
                    continue
                if n_top < 0 or (n_top > 0 and selected[l]):
                    for pos in range(indptr[o + l], indptr[o + l + 1]):
                        j = order[pos]
                        for k in range(K):
                            J[k, j] += Dp[o + k * L + l]
                elif l == li:
                    for k in range(K):
                        J[k, i] += Dp[o + k * L + l]
        dot = 0.0
        for c in range(K):
            dot += gfin_self[p, c] * J[c, i]
        self_dot[p] = dot
    return D, self_dot


@njit_parallel
def reverse_sweep(Gq, train, terms, n_chunks):
    """Adjoint sweep for ``r`` query objectives at once (the transpose of
    :func:`forward_block` with all rows).

    ``Gq`` ``(n_leaves_total, r)``: per flat leaf, the summed final loss gradients (the
    tree's column) of the queries in it. Per round, backwards, and leaf ``l``:
    ``dbar_l = Gq_l + sum_{j in l} z_j``, ``a_l = C_l^T dbar_l``; then ``score_j +=
    A_j . a_l`` and ``z_j += w_j Q_j^T a_l`` for the rows of the leaf. Returns ``score``
    ``(n, r)``, ``score[i, c] = dPsi_c / dw_i``. Parallel over blocks of query columns.
    """
    offsets, indptr, order, K = train.offsets, train.indptr, train.order, train.n_outputs
    coef, live, ubar, proba, A, wts = (
        terms.coef,
        terms.live,
        terms.ubar,
        terms.proba,
        terms.source,
        terms.weights,
    )
    n, n_trees = train.leaves.shape
    R = n_trees // K
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
        z = np.zeros((n, K, w))
        sc = np.zeros((n, w))
        dbar = np.empty((K, w))
        a = np.empty((K, w))
        av = np.empty(K)
        qa = np.empty(K)
        for b in range(R - 1, -1, -1):
            t0 = b * K
            o = offsets[t0]
            L = offsets[t0 + 1] - o
            for l in range(L):
                rl = o // K + l
                if not live[rl]:
                    continue
                for k in range(K):
                    for c in range(w):
                        dbar[k, c] = Gq[o + k * L + l, c0 + c]
                for pos in range(indptr[o + l], indptr[o + l + 1]):
                    zr = z[order[pos]]
                    for k in range(K):
                        for c in range(w):
                            dbar[k, c] += zr[k, c]
                for k in range(K):
                    for c in range(w):
                        acc = 0.0
                        for m in range(K):
                            acc += coef[rl, m, k] * dbar[m, c]
                        a[k, c] = acc
                for pos in range(indptr[o + l], indptr[o + l + 1]):
                    j = order[pos]
                    for c in range(w):
                        acc = 0.0
                        for k in range(K):
                            av[k] = a[k, c]
                            acc += A[j, b, k] * av[k]
                        sc[j, c] += acc
                        _qt_apply(proba[j, b], ubar[rl], av, qa)
                        for k in range(K):
                            z[j, k, c] += wts[j] * qa[k]
        for i in range(n):
            for c in range(w):
                score[i, c0 + c] = sc[i, c]
    return score


# ------------------------------------------------------------------ LeafRefit
@njit
def _refit_round_probabilities(b, refit, changed, delta, pnew, f):
    """Softmax of the changed rows at their re-trained scores before round ``b``."""
    F, K = refit.scores_before, delta.shape[0]
    for j in range(F.shape[0]):
        if not changed[j]:
            continue
        for k in range(K):
            f[k] = F[j, b, k] + delta[k, j]
        softmax_into(f, pnew[j])


@njit
def _refit_leaf_system(i, b, l, li, full, o, train, refit, changed, pnew, Gp, Mp):
    """``G'`` and ``M'`` of round leaf ``(b, l)`` without row ``i``, with the changed
    gradients and hessians of the rows of the update set."""
    indptr, order, K = train.indptr, train.order, train.n_outputs
    proba, w = refit.proba, refit.weights
    rl = o // K + l
    for k in range(K):
        Gp[k] = refit.gradient_sums[rl, k]
        for m in range(K):
            Mp[k, m] = refit.hessian_sums[rl, k, m]
    if full:
        for pos in range(indptr[o + l], indptr[o + l + 1]):
            j = order[pos]
            if j == i or not changed[j]:
                continue
            pn, po, wj = pnew[j], proba[j, b], w[j]
            for k in range(K):
                Gp[k] += wj * (pn[k] - po[k])
                for m in range(K):
                    dh = -(pn[k] * pn[m] - po[k] * po[m])
                    if k == m:
                        dh += pn[k] - po[k]
                    Mp[k, m] += wj * dh
    if l == li:
        pi, wi, y = proba[i, b], w[i], int(refit.labels[i])
        for k in range(K):
            Gp[k] -= wi * (pi[k] - (1.0 if k == y else 0.0))
            for m in range(K):
                Mp[k, m] -= wi * ((pi[k] if k == m else 0.0) - pi[k] * pi[m])


@njit
def _refit_moves(i, l, n_top, o, train, refit, vnew, d, rl, delta, sel, changed):
    """Move the scores of the leaf's rows (but ``i``) by ``d``; the top-k selection
    reads the change against the float64 Newton step of the unperturbed leaf (changes
    at rounding level count as none)."""
    indptr, order, K = train.indptr, train.order, train.n_outputs
    for pos in range(indptr[o + l], indptr[o + l + 1]):
        j = order[pos]
        if j == i:
            continue
        changed[j] = True
        for k in range(K):
            delta[k, j] += d[k]
            if n_top > 0:
                v0 = refit.newton_values[rl, k]
                ds = vnew[k] - v0
                if abs(ds) <= 1e-10 * max(abs(vnew[k]), abs(v0)):
                    ds = 0.0
                sel[k, j] += ds


@njit_parallel
def refit_block(rows, train, refit, n_top):
    """Fixed-structure full-hessian refit without each removed row.

    Per removed row and round: the softmax of the rows whose scores changed, then per
    leaf ``G'``, ``M'`` (rows of the update set, the removed row excluded), ``u' =
    -eta M'^{-1} G'`` (0 for a singular system), and the rows of the update set move
    by ``u' - u``. ``n_top``: -1 all rows, 0 the removed row's own leaves, k also the
    rows of the k leaves of each round with the largest summed absolute change so far.
    Parallel over removed rows.

    Returns ``dv`` ``(r, n_leaves_total)`` and ``dself`` ``(r, K)`` (the change of the
    removed row's own raw score).
    """
    offsets, K = train.offsets, train.n_outputs
    n, n_trees = train.leaves.shape
    R = n_trees // K
    r = rows.shape[0]
    dv = np.zeros((r, offsets[n_trees]))
    dself = np.zeros((r, K))
    max_L = _max_leaves(offsets)
    for p in prange(r):
        i = rows[p]
        delta = np.zeros((K, n))
        sel = np.zeros((K, n)) if n_top > 0 else np.zeros((K, 0))
        changed = np.zeros(n, dtype=np.bool_)
        pnew = np.zeros((n, K))
        selected = np.zeros(max_L, dtype=np.bool_)
        sums = np.zeros(max_L)
        f, Gp, x, vnew, d = np.empty(K), np.empty(K), np.empty(K), np.empty(K), np.empty(K)
        Mp = np.empty((K, K))
        work = np.empty((K, K + 1))
        for b in range(R):
            _refit_round_probabilities(b, refit, changed, delta, pnew, f)
            t0 = b * K
            o = offsets[t0]
            L = offsets[t0 + 1] - o
            li = train.leaves[i, t0]
            if n_top > 0:
                _select_top_leaves(sel, K, train.leaves_by_tree[t0], L, n_top, selected, sums)
            for l in range(L):
                rl = o // K + l
                if not refit.live[rl]:
                    continue
                full = n_top < 0 or (n_top > 0 and selected[l])
                if full or l == li:
                    _refit_leaf_system(i, b, l, li, full, o, train, refit, changed, pnew, Gp, Mp)
                    ok = solve_small(Mp, Gp, x, work)
                    for k in range(K):
                        vnew[k] = -refit.learning_rates[b] * x[k] if ok else 0.0
                else:  # untouched: the float64 Newton step of the stored sums
                    for k in range(K):
                        vnew[k] = refit.newton_values[rl, k]
                moved = False
                for k in range(K):
                    d[k] = vnew[k] - refit.leaf_values[o + k * L + l]
                    dv[p, o + k * L + l] = d[k]
                    moved = moved or d[k] != 0.0
                    if l == li:
                        dself[p, k] += d[k]
                if full and moved:
                    _refit_moves(i, l, n_top, o, train, refit, vnew, d, rl, delta, sel, changed)
    return dv, dself


@njit_parallel
def relabel_block(rows, new_labels, train, refit):
    """Fixed-structure full-hessian refit with each of ``rows`` relabelled to
    ``new_labels`` (every row updated): per round, every leaf's ``G'`` and ``M'`` from
    the rows at their re-trained scores, the relabelled row's gradient ``p - e_{y*}``
    (the softmax hessian does not depend on the label), ``u' = -eta M'^{-1} G'``, and
    the rows of each changed leaf move. Parallel over the edited rows.

    Returns ``dv`` ``(r, n_leaves_total)`` and ``dself`` ``(r, K)`` as
    :func:`refit_block`.
    """
    offsets, K = train.offsets, train.n_outputs
    n, n_trees = train.leaves.shape
    r = rows.shape[0]
    dv = np.zeros((r, offsets[n_trees]))
    dself = np.zeros((r, K))
    for p in prange(r):
        i = rows[p]
        old, new, wi = int(refit.labels[i]), int(new_labels[p]), refit.weights[i]
        delta = np.zeros((K, n))
        sel = np.zeros((K, 0))
        changed = np.zeros(n, dtype=np.bool_)
        pnew = np.zeros((n, K))
        f, Gp, x, vnew, d = np.empty(K), np.empty(K), np.empty(K), np.empty(K), np.empty(K)
        Mp = np.empty((K, K))
        work = np.empty((K, K + 1))
        for b in range(n_trees // K):
            _refit_round_probabilities(b, refit, changed, delta, pnew, f)
            o = offsets[b * K]
            L = offsets[b * K + 1] - o
            li = train.leaves[i, b * K]
            for l in range(L):
                rl = o // K + l
                if not refit.live[rl]:
                    continue
                _refit_leaf_system(-1, b, l, -1, True, o, train, refit, changed, pnew, Gp, Mp)
                if l == li:  # (p - e_new) - (p - e_old)
                    Gp[old] += wi
                    Gp[new] -= wi
                ok = solve_small(Mp, Gp, x, work)
                moved = False
                for k in range(K):
                    vnew[k] = -refit.learning_rates[b] * x[k] if ok else 0.0
                    d[k] = vnew[k] - refit.leaf_values[o + k * L + l]
                    dv[p, o + k * L + l] = d[k]
                    moved = moved or d[k] != 0.0
                    if l == li:
                        dself[p, k] += d[k]
                if moved:
                    _refit_moves(-1, l, -1, o, train, refit, vnew, d, rl, delta, sel, changed)
    return dv, dself
