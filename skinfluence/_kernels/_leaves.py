"""Leaf co-occurrence kernels: training rows grouped by leaf (CSR) and sparse products.

Layout: ``order`` has ``n_trees * n`` entries; the training rows of flat leaf ``j`` (tree
``t``) are ``order[indptr[j]:indptr[j + 1]]``, a sub-range of tree ``t``'s block
``[t * n, (t + 1) * n)``. A per-(row, tree) quantity ``D`` (shape ``(n, T)``) is stored
in the same order as ``D_sorted[r] = D[order[r], t]``, so that a leaf's entries are
contiguous.
"""

import numpy as np

from ._jit import njit, njit_parallel, prange


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


# --- tiled layout for leaf co-occurrence products ------------------------------------

TILE = 2048  # training rows per tile: 16 KiB of a query's output row
# A leaf holding at least this share of its tile's rows is also stored densely: adding a
# contiguous masked row (vectorised, about 0.25 ns per entry and thread on the benchmark
# machine) then costs less than scattering its entries (about 1 ns per entry and thread).
DENSE_SHARE = 0.25


def tiled(leaves, offsets, values, tile=TILE, dense_share=DENSE_SHARE):
    """``(ptr, local, values_tiled, dense_leaf, dense_at, dense)``: the tiled layout of
    ``leaves`` (n, T) and of a per-(row, tree) array ``values`` (n, T), ready for
    ``tiled_product``.

    A (tile, tree) whose largest leaf holds at least ``dense_share`` of the tile's rows
    also stores that leaf densely (see ``dense_leaves``); ``dense_share > 1`` stores none.
    """
    if tile > 2**16:
        raise ValueError("tile must be at most 2**16 rows (uint16 local indices)")
    values = np.ascontiguousarray(values, dtype=np.float64)
    ptr, local = tile_by_leaf(leaves, offsets, tile)
    values_tiled = tile_values(values, local, tile)
    dense = dense_leaves(ptr, local, values_tiled, offsets, len(leaves), tile, float(dense_share))
    return (ptr, local, values_tiled, *dense)


#
# The training rows are cut into tiles of ``tile`` consecutive rows. Tile ``b`` (rows
# ``lo = b * tile`` to ``hi``, ``nb = hi - lo`` of them) owns positions
# ``[lo * T, hi * T)``; inside, tree ``t`` owns ``[lo * T + t * nb, lo * T + (t + 1) * nb)``
# with the tile's rows sorted by their leaf in tree ``t``. ``ptr[b, offsets[t] + l]`` is
# where leaf ``l`` of tree ``t`` starts in tile ``b`` (the next entry is where it ends,
# also across trees: the regions are contiguous) and ``local[r]`` is the row's index
# inside its tile (< 2**16). A product then scatters into ``tile`` consecutive output
# entries of one query row, which stay in the first-level cache, and reads the tile's
# leaf segments, which stay in the second-level cache while all queries pass over them.


@njit_parallel
def tile_by_leaf(leaves, offsets, tile):
    """Counting sort of the rows of every (tile, tree) by leaf: ``(ptr, local)``."""
    n, n_trees = leaves.shape
    n_tiles = (n + tile - 1) // tile
    n_leaves_total = offsets[n_trees]
    ptr = np.empty((n_tiles, n_leaves_total + 1), dtype=np.int64)
    local = np.empty(n * n_trees, dtype=np.uint16)
    for b in prange(n_tiles):
        lo = b * tile
        hi = min(n, lo + tile)
        nb = hi - lo
        for t in range(n_trees):
            o = offsets[t]
            L = offsets[t + 1] - o
            counts = np.zeros(L + 1, dtype=np.int64)
            for i in range(lo, hi):
                counts[leaves[i, t] + 1] += 1
            for l in range(L):
                counts[l + 1] += counts[l]
            s = lo * n_trees + t * nb
            for l in range(L):
                ptr[b, o + l] = s + counts[l]
            for i in range(lo, hi):
                l = leaves[i, t]
                local[s + counts[l]] = i - lo
                counts[l] += 1
        ptr[b, n_leaves_total] = hi * n_trees
    return ptr, local


@njit_parallel
def tile_values(values, local, tile):
    """A per-(row, tree) array ``values`` (n, T) in the tiled leaf order of ``local``."""
    n, n_trees = values.shape
    n_tiles = (n + tile - 1) // tile
    out = np.empty(n * n_trees)
    for b in prange(n_tiles):
        lo = b * tile
        nb = min(n, lo + tile) - lo
        for t in range(n_trees):
            s = lo * n_trees + t * nb
            for r in range(s, s + nb):
                out[r] = values[lo + local[r], t]
    return out


@njit_parallel
def dense_leaves(ptr, local, values_tiled, offsets, n, tile, share):
    """The largest leaf of every (tile, tree), stored densely where it holds at least
    ``share`` of the tile's rows: ``(dense_leaf, dense_at, dense)``, read off the tiled
    layout (its leaf sizes are differences of ``ptr``).

    ``dense_leaf[b, t]`` is the leaf (or -1) and ``dense[dense_at[b, t]:][:nb]`` holds
    ``values[i, t]`` for the tile's rows ``i`` in that leaf and zero for the others,
    in row order.
    """
    n_tiles = ptr.shape[0]
    n_trees = offsets.shape[0] - 1
    dense_leaf = np.full((n_tiles, n_trees), -1, dtype=np.int32)
    for b in prange(n_tiles):
        nb = min(n, (b + 1) * tile) - b * tile
        for t in range(n_trees):
            o = offsets[t]
            sizes = ptr[b, o + 1 : offsets[t + 1] + 1] - ptr[b, o : offsets[t + 1]]
            k = np.argmax(sizes)
            if sizes[k] >= share * nb:
                dense_leaf[b, t] = k
    dense_at = np.full((n_tiles, n_trees), -1, dtype=np.int64)
    total = 0
    for b in range(n_tiles):
        nb = min(n, (b + 1) * tile) - b * tile
        for t in range(n_trees):
            if dense_leaf[b, t] >= 0:
                dense_at[b, t] = total
                total += nb
    dense = np.zeros(total)
    for b in prange(n_tiles):
        for t in range(n_trees):
            k = dense_leaf[b, t]
            if k >= 0:
                s = dense_at[b, t]
                j = offsets[t] + k
                for r in range(ptr[b, j], ptr[b, j + 1]):
                    dense[s + local[r]] = values_tiled[r]
    return dense_leaf, dense_at, dense


PAIR_WINDOW = 64  # candidates searched for each query's partner


def tiled_product(
    q_leaves, q_values, offsets, ptr, local, d_tiled, dense_leaf, dense_at, dense, n, tile, out
):
    """``out[e, i] = sum_t 1[leaf_t(e) = leaf_t(i)] * q_values[e, t] * D[i, t]``.

    ``D`` in the tiled layout (``tiled``). ``out`` (m, n) is overwritten. Queries are
    processed in pairs that share many leaves (``pair_queries``): where the two share
    a tree's leaf, its entries are read once for both. Every entry is summed over trees
    in tree order whatever the pairing and the number of threads, so the result is the
    same bit for bit.
    """
    q_leaves = np.ascontiguousarray(q_leaves, dtype=np.int32)
    order = pair_queries(q_leaves, PAIR_WINDOW)
    _paired_product(
        q_leaves,
        q_values,
        order,
        offsets,
        ptr,
        local,
        d_tiled,
        dense_leaf,
        dense_at,
        dense,
        n,
        tile,
        out,
    )
    return out


@njit
def pair_queries(q_leaves, window):
    """A permutation of the queries whose consecutive pairs share many leaves.

    Queries are sorted by their leaves in the first three trees; each query not yet
    paired then takes, among the next ``window`` unpaired ones, the one sharing the
    most leaves (O(m window T)).
    """
    m, n_trees = q_leaves.shape
    start = np.arange(m)
    for t in range(min(3, n_trees) - 1, -1, -1):  # lexicographic: stable sorts
        start = start[np.argsort(q_leaves[start, t], kind="mergesort")]
    used = np.zeros(m, dtype=np.bool_)
    order = np.empty(m, dtype=np.int64)
    k = 0
    for a in range(m):
        i = start[a]
        if used[i]:
            continue
        used[i] = True
        order[k] = i
        k += 1
        best, best_shared, seen = -1, -1, 0
        for c in range(a + 1, m):
            j = start[c]
            if used[j]:
                continue
            shared = 0
            for t in range(n_trees):
                shared += q_leaves[i, t] == q_leaves[j, t]
            if shared > best_shared:
                best, best_shared = j, shared
            seen += 1
            if seen >= window:
                break
        if best >= 0:
            used[best] = True
            order[k] = best
            k += 1
    return order


@njit(inline="always")
def _add_leaf(row, qv, b, t, leaf, offsets, ptr, local, d_tiled, dense_leaf, dense_at, dense):
    """``row += qv * D[tile rows, t] * 1[leaf_t(row) = leaf]`` for one tile.

    A non-finite ``qv`` takes the sparse path: ``inf * 0`` would put NaN outside the leaf.
    """
    if leaf == dense_leaf[b, t] and np.isfinite(qv):
        s = dense_at[b, t]
        seg = dense[s : s + row.shape[0]]
        for i in range(row.shape[0]):
            row[i] += qv * seg[i]
        return
    j = offsets[t] + leaf
    # unsigned indices: no negative-index wrap-around test per entry
    r = np.uint64(ptr[b, j])
    r_end = np.uint64(ptr[b, j + 1])
    while r < r_end:
        row[np.uint64(local[r])] += qv * d_tiled[r]
        r += np.uint64(1)


@njit(inline="always")
def _add_leaf2(
    row1, row2, q1, q2, b, t, leaf, offsets, ptr, local, d_tiled, dense_leaf, dense_at, dense
):
    """``_add_leaf`` for two queries in the same leaf: each entry read once."""
    if leaf == dense_leaf[b, t] and np.isfinite(q1) and np.isfinite(q2):
        s = dense_at[b, t]
        seg = dense[s : s + row1.shape[0]]
        for i in range(row1.shape[0]):
            v = seg[i]
            row1[i] += q1 * v
            row2[i] += q2 * v
        return
    j = offsets[t] + leaf
    r = np.uint64(ptr[b, j])
    r_end = np.uint64(ptr[b, j + 1])
    while r < r_end:
        ix = np.uint64(local[r])
        v = d_tiled[r]
        row1[ix] += q1 * v
        row2[ix] += q2 * v
        r += np.uint64(1)


@njit_parallel
def _paired_product(
    q_leaves,
    q_values,
    order,
    offsets,
    ptr,
    local,
    d_tiled,
    dense_leaf,
    dense_at,
    dense,
    n,
    tile,
    out,
):
    """``tiled_product`` over the query pairs ``order[2p], order[2p + 1]``.

    The work is split into (tile, block of pairs) items. A query in a densely stored
    leaf adds the leaf's masked row (zeros for the rows outside the leaf) instead of
    scattering the leaf's entries: the same sum, as adding zero leaves an entry as it is.
    """
    m, n_trees = q_leaves.shape
    n_tiles = ptr.shape[0]
    n_pairs = (m + 1) // 2
    # enough items for the threads when there are few tiles
    n_pb = min(max(n_pairs, 1), max(1, (16 + n_tiles - 1) // max(n_tiles, 1)))
    p_size = (n_pairs + n_pb - 1) // n_pb
    for k in prange(n_tiles * n_pb):
        b = k // n_pb
        p0 = (k % n_pb) * p_size
        lo = b * tile
        hi = min(n, lo + tile)
        for p in range(p0, min(n_pairs, p0 + p_size)):
            e1 = order[2 * p]
            row1 = out[e1, lo:hi]
            row1[:] = 0.0
            if 2 * p + 1 == m:  # an odd query out
                for t in range(n_trees):
                    if q_values[e1, t] != 0.0:
                        _add_leaf(
                            row1,
                            q_values[e1, t],
                            b,
                            t,
                            q_leaves[e1, t],
                            offsets,
                            ptr,
                            local,
                            d_tiled,
                            dense_leaf,
                            dense_at,
                            dense,
                        )
                continue
            e2 = order[2 * p + 1]
            row2 = out[e2, lo:hi]
            row2[:] = 0.0
            for t in range(n_trees):
                q1 = q_values[e1, t]
                q2 = q_values[e2, t]
                leaf1 = q_leaves[e1, t]
                leaf2 = q_leaves[e2, t]
                if leaf1 == leaf2 and q1 != 0.0 and q2 != 0.0:
                    _add_leaf2(
                        row1,
                        row2,
                        q1,
                        q2,
                        b,
                        t,
                        leaf1,
                        offsets,
                        ptr,
                        local,
                        d_tiled,
                        dense_leaf,
                        dense_at,
                        dense,
                    )
                    continue
                if q1 != 0.0:
                    _add_leaf(
                        row1,
                        q1,
                        b,
                        t,
                        leaf1,
                        offsets,
                        ptr,
                        local,
                        d_tiled,
                        dense_leaf,
                        dense_at,
                        dense,
                    )
                if q2 != 0.0:
                    _add_leaf(
                        row2,
                        q2,
                        b,
                        t,
                        leaf2,
                        offsets,
                        ptr,
                        local,
                        d_tiled,
                        dense_leaf,
                        dense_at,
                        dense,
                    )
