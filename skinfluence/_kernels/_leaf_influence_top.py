"""The forward mode of the top-k update set, several removed rows at once, and its
sparse result.

:func:`~skinfluence._kernels._leaf_influence.forward_block` propagates one removed row
at a time; with ``n_top = k >= 1`` most of its time goes into choosing the top-k
leaves of each tree, a pass over every training row. :func:`top_leaves_forward`
propagates ``LANES`` removed rows together: the score derivatives are stored
row-major, ``J[c, j * LANES + lane]``, so the pass over the training rows adds one
vector of ``LANES`` absolute values per row, and the leaves any lane selected are
summed and moved for all lanes at once (lanes that did not select a leaf add zero).
Each lane computes exactly the operations of ``forward_block`` in the same order (the
vector intrinsics round every product and sum as the scalar code does), so the values
are the same bits whatever the number of lanes and threads.

Of the ``n_leaves_total`` leaf derivatives of a removed row, only the top-k leaves of
each tree and the row's own leaf are written; the result is kept as ``slots``:
``slot_leaf[p, t, s]`` (local leaf id, -1 past the last) and ``slot_value[p, t, s]``,
``s < min(k, max leaves) + 1``, in increasing leaf order (12 bytes per slot instead of 8
per leaf: 1/20 of the dense derivatives of a 64-leaf tree with k = 2).
"""

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._jit import njit, njit_parallel, prange
from ._lanes import add_scaled_lanes, load_lanes
from ._leaf_influence import _max_leaves

#: removed rows propagated together (one AVX-512 vector of float64)
LANES = 8


@intrinsic
def _add_abs_lanes(typingctx, buf, start, src, src_start, like):
    """``buf[start:start + G] += |src[src_start:src_start + G]|`` as one vector
    operation (``G = len(like)``; no bounds check)."""
    if not (
        isinstance(buf, types.Array)
        and isinstance(src, types.Array)
        and buf.dtype == types.float64
        and src.dtype == types.float64
        and isinstance(like, types.UniTuple)
    ):
        return None
    width = like.count

    def codegen(context, builder, sig, args):
        vec_t = ir.VectorType(ir.DoubleType(), width)
        fabs = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec_t, [vec_t]), f"llvm.fabs.v{width}f64"
        )
        b = context.make_array(sig.args[0])(context, builder, value=args[0])
        s = context.make_array(sig.args[2])(context, builder, value=args[2])
        i0 = context.cast(builder, args[1], sig.args[1], types.intp)
        i1 = context.cast(builder, args[3], sig.args[3], types.intp)
        pb = builder.bitcast(builder.gep(b.data, [i0]), vec_t.as_pointer())
        ps = builder.bitcast(builder.gep(s.data, [i1]), vec_t.as_pointer())
        x = builder.call(fabs, [builder.load(ps, align=8)])
        builder.store(builder.fadd(builder.load(pb, align=8), x), pb, align=8)
        return context.get_dummy_value()

    return types.void(buf, start, src, src_start, like), codegen


@intrinsic
def _add_lanes(typingctx, buf, start, src, src_start, like):
    """``buf[start:start + G] += src[src_start:src_start + G]`` as one vector operation."""
    if not (
        isinstance(buf, types.Array)
        and isinstance(src, types.Array)
        and buf.dtype == types.float64
        and src.dtype == types.float64
        and isinstance(like, types.UniTuple)
    ):
        return None
    width = like.count

    def codegen(context, builder, sig, args):
        vec_t = ir.VectorType(ir.DoubleType(), width)
        b = context.make_array(sig.args[0])(context, builder, value=args[0])
        s = context.make_array(sig.args[2])(context, builder, value=args[2])
        i0 = context.cast(builder, args[1], sig.args[1], types.intp)
        i1 = context.cast(builder, args[3], sig.args[3], types.intp)
        pb = builder.bitcast(builder.gep(b.data, [i0]), vec_t.as_pointer())
        ps = builder.bitcast(builder.gep(s.data, [i1]), vec_t.as_pointer())
        builder.store(
            builder.fadd(builder.load(pb, align=8), builder.load(ps, align=8)), pb, align=8
        )
        return context.get_dummy_value()

    return types.void(buf, start, src, src_start, like), codegen


@intrinsic
def _row_step(typingctx, J, j0, change, c0, sums, acc, s0, wq, like):
    """One training row of a pass, for ``G = len(like)`` lanes as vector operations:
    ``v = J[j0:j0 + G] + change[c0:c0 + G]`` is stored back into ``J``, then
    ``sums[s0:s0 + G] += |v|`` and ``acc[s0:s0 + G] += v * wq`` (no bounds check)."""
    arrays = (J, change, sums, acc)
    if not (
        all(isinstance(x, types.Array) and x.dtype == types.float64 for x in arrays)
        and isinstance(like, types.UniTuple)
        and wq == types.float64
    ):
        return None
    width = like.count

    def codegen(context, builder, sig, args):
        vec_t = ir.VectorType(ir.DoubleType(), width)
        fabs = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec_t, [vec_t]), f"llvm.fabs.v{width}f64"
        )

        def ptr(k, idx):
            ary = context.make_array(sig.args[k])(context, builder, value=args[k])
            i = context.cast(builder, args[idx], sig.args[idx], types.intp)
            return builder.bitcast(builder.gep(ary.data, [i]), vec_t.as_pointer())

        pj, pc, ps, pa = ptr(0, 1), ptr(2, 3), ptr(4, 6), ptr(5, 6)
        v = builder.fadd(builder.load(pj, align=8), builder.load(pc, align=8))
        builder.store(v, pj, align=8)
        builder.store(builder.fadd(builder.load(ps, align=8), builder.call(fabs, [v])), ps, align=8)
        w = ir.Constant(vec_t, ir.Undefined)
        for g in range(width):
            w = builder.insert_element(w, args[7], ir.Constant(ir.IntType(32), g))
        builder.store(builder.fadd(builder.load(pa, align=8), builder.fmul(v, w)), pa, align=8)
        return context.get_dummy_value()

    return types.void(J, j0, change, c0, sums, acc, s0, wq, like), codegen


def slot_count(n_top, offsets):
    """Slots per (removed row, tree): the top-k leaves and the row's own leaf."""
    widths = np.diff(np.asarray(offsets))
    return int(min(n_top, max(1, int(widths.max(initial=1)))) + 1)


def top_leaves_forward(rows, train, terms, by_tree, n_top, gfin_self):
    """Forward mode with the top-``n_top`` update set (``n_top >= 1``) for the removed
    rows ``rows``, ``LANES`` at a time; parallel over groups of lanes.

    ``by_tree`` is ``terms.propagation`` stored by tree, ``(T, n)``. Returns
    ``(slot_leaf, slot_value, self_dot)``: the written leaf derivatives (module
    docstring) and ``self_dot`` as :func:`forward_block` returns it.
    """
    S = slot_count(n_top, train.offsets)
    like = (0.0,) * LANES
    return _top_leaves_forward(rows, train, terms, by_tree, n_top, gfin_self, S, like)


@njit
def _select_lanes(sums, L, W, n_top, selected, any_selected):
    """The top-``n_top`` leaves of each lane (``sums[l * W + lane]``; ties toward the
    lower leaf id, as ``_select_top_leaves``)."""
    for l in range(L):
        any_selected[l] = False
        for a in range(W):
            selected[l, a] = False
    for a in range(W):
        for _ in range(min(n_top, L)):
            best = -1
            for l in range(L):
                # sums within rounding of each other are ties (lower leaf id)
                sl = sums[l * W + a]
                if not selected[l, a] and (
                    best < 0 or sl > sums[best * W + a] + 1e-12 * max(sl, sums[best * W + a])
                ):
                    best = l
            selected[best, a] = True
            any_selected[best] = True


@njit
def _pass_over_rows(J, k, leaf_col, wq_col, prev_col, prev_k, change, sums, acc, row_sum, like):
    """One pass over the training rows in order: move every row by the pending change
    of its leaf in the previous tree (``prev_k`` its column, -1: none), then add its
    ``sum_c |J[c]|`` to its leaf's ``sums`` and ``wq_col[row] * J[k]`` to its leaf's
    ``acc`` (each leaf adds its rows by increasing index, as the one-row kernel)."""
    K = J.shape[0]
    W = len(like)
    n = leaf_col.shape[0]
    Jk = J[k]
    if K == 1:  # the pending change is zero where no leaf moved
        for row in range(n):
            s = leaf_col[row] * W
            _row_step(Jk, row * W, change, prev_col[row] * W, sums, acc, s, wq_col[row], like)
        return
    for row in range(n):
        if prev_k >= 0:
            _add_lanes(J[prev_k], row * W, change, prev_col[row] * W, like)
        s = leaf_col[row] * W
        if K == 1:
            _add_abs_lanes(sums, s, Jk, row * W, like)
        else:
            row_sum[:] = 0.0
            for c in range(K):
                _add_abs_lanes(row_sum, 0, J[c], row * W, like)
            _add_lanes(sums, s, row_sum, 0, like)
        add_scaled_lanes(acc, s, load_lanes(Jk, row * W, like), wq_col[row])


@njit_parallel
def _top_leaves_forward(rows, train, terms, by_tree, n_top, gfin_self, S, like):
    """:func:`top_leaves_forward`. The selected leaves of a tree move their rows in
    the next tree's pass over the rows (the pending ``change``, zero in the lanes that
    did not select the leaf); a lane's own row outside its selected leaves moves at
    once."""
    leaves, leaves_T, offsets = train.leaves, train.leaves_by_tree, train.offsets
    K = train.n_outputs
    coef, A, wQ = terms.coef, terms.source, terms.propagation
    n, n_trees = leaves.shape
    r = rows.shape[0]
    W = len(like)
    slot_leaf = np.full((r, n_trees, S), -1, dtype=np.int32)
    slot_value = np.zeros((r, n_trees, S))
    self_dot = np.zeros(r)
    max_L = _max_leaves(offsets)
    for g in prange((r + W - 1) // W):
        p0 = g * W
        nw = min(W, r - p0)
        lane_row = np.empty(W, dtype=np.int64)
        for a in range(W):  # idle lanes repeat the last row; their results are dropped
            lane_row[a] = rows[p0 + min(a, nw - 1)]
        J = np.zeros((K, n * W))
        sums = np.zeros(max_L * W)
        acc = np.zeros(max_L * W)
        change = np.zeros(max_L * W)
        row_sum = np.zeros(W)
        selected = np.zeros((max_L, W), dtype=np.bool_)
        any_selected = np.zeros(max_L, dtype=np.bool_)
        prev_k = -1
        for t in range(n_trees):
            o = offsets[t]
            L = offsets[t + 1] - o
            k = t % K
            sums[: L * W] = 0.0
            acc[: L * W] = 0.0
            prev_col = leaves_T[max(t - 1, 0)]
            _pass_over_rows(
                J, k, leaves_T[t], by_tree[t], prev_col, prev_k, change, sums, acc, row_sum, like
            )
            _select_lanes(sums, L, W, n_top, selected, any_selected)
            Jk = J[k]
            prev_k = -1
            for l in range(L):
                j = o + l
                cf = coef[j]
                for a in range(W):
                    change[l * W + a] = 0.0
                if cf == 0.0:
                    continue
                for a in range(nw):
                    i = lane_row[a]
                    own = leaves[i, t] == l
                    if selected[l, a]:
                        s = acc[l * W + a]
                    elif own:
                        s = wQ[i, t] * Jk[i * W + a]
                    else:
                        continue
                    if own:
                        s += A[i, t]
                    d = cf * s
                    slot = 0
                    while slot_leaf[p0 + a, t, slot] >= 0:
                        slot += 1
                    slot_leaf[p0 + a, t, slot] = l
                    slot_value[p0 + a, t, slot] = d
                    if selected[l, a]:
                        change[l * W + a] = d
                        prev_k = k
                    elif d != 0.0:
                        Jk[i * W + a] += d
        for a in range(nw):
            i = lane_row[a]
            if prev_k >= 0:  # the last tree's selected leaves
                J[prev_k, i * W + a] += change[leaves[i, n_trees - 1] * W + a]
            s = 0.0
            for c in range(K):
                s += gfin_self[p0 + a, c] * J[c, i * W + a]
            self_dot[p0 + a] = s
    return slot_leaf, slot_value, self_dot


@njit_parallel
def slot_sums(q_local, slot_leaf, slot_value, K):
    """``out[e, k, p] = sum_{t in column k} D[p, leaf_t(e)]`` from the slots: the
    change of query ``e``'s raw score column ``k`` under removed row ``p`` (as
    ``gather_leaf_sums`` of the dense derivatives, the same bits: the trees are added
    in order and the leaves without a slot hold zero). Parallel over removed rows."""
    m, n_trees = q_local.shape
    r, _, S = slot_leaf.shape
    out = np.zeros((m, K, r))
    # the queries of each (tree, leaf): CSR over (t, leaf) with leaves < max_leaf
    max_leaf = 1
    for e in range(m):
        for t in range(n_trees):
            max_leaf = max(max_leaf, q_local[e, t] + 1)
    ptr = np.zeros(n_trees * max_leaf + 1, dtype=np.int64)
    for e in range(m):
        for t in range(n_trees):
            ptr[t * max_leaf + q_local[e, t] + 1] += 1
    for u in range(n_trees * max_leaf):
        ptr[u + 1] += ptr[u]
    fill = ptr[:-1].copy()
    members = np.empty(m * n_trees, dtype=np.int64)
    for e in range(m):
        for t in range(n_trees):
            u = t * max_leaf + q_local[e, t]
            members[fill[u]] = e
            fill[u] += 1
    for p in prange(r):
        for t in range(n_trees):
            k = t % K
            for s in range(S):
                leaf = slot_leaf[p, t, s]
                if leaf < 0:
                    break
                if leaf >= max_leaf:
                    continue
                v = slot_value[p, t, s]
                u = t * max_leaf + leaf
                for pos in range(ptr[u], ptr[u + 1]):
                    out[members[pos], k, p] += v
    return out


@njit_parallel
def dense_from_slots(slot_leaf, slot_value, offsets):
    """The dense ``(r, n_leaves_total)`` leaf derivatives of the slots."""
    r, n_trees, S = slot_leaf.shape
    D = np.zeros((r, offsets[n_trees]))
    for p in prange(r):
        for t in range(n_trees):
            for s in range(S):
                leaf = slot_leaf[p, t, s]
                if leaf < 0:
                    break
                D[p, offsets[t] + leaf] = slot_value[p, t, s]
    return D
