"""Leaf co-occurrence kernels: training rows grouped by leaf (CSR) and sparse products.

Layout: ``order`` has ``n_trees * n`` entries; the training rows of flat leaf ``j`` (tree
``t``) are ``order[indptr[j]:indptr[j + 1]]``, a sub-range of tree ``t``'s block
``[t * n, (t + 1) * n)``. A per-(row, tree) quantity ``D`` (shape ``(n, T)``) is stored
in the same order as ``D_sorted[r] = D[order[r], t]``, so that a leaf's entries are
contiguous.
"""

import numpy as np

from ._jit import njit, njit_parallel, prange
from ._lanes import add_scaled_lanes, load_lanes


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

TILE = 1024  # training rows per tile: a group's buffer is TILE x GROUP floats (64 KiB)
GROUP = 8  # queries computed together: one vector operation per (training row, leaf)
GROUP_WINDOW = 64  # at most this many candidates searched for each group's members
GROUP_MEMORY = 16 * 2**20  # bytes of group coefficients held at once


def tiled(leaves, offsets, values, tile=TILE):
    """``(ptr, local, values_tiled, finite)``: the tiled layout of ``leaves`` (n, T) and
    of a per-(row, tree) array ``values`` (n, T), ready for ``tiled_product``;
    ``finite`` tells whether every value is finite."""
    if tile > 2**16:
        raise ValueError("tile must be at most 2**16 rows (uint16 local indices)")
    values = np.ascontiguousarray(values, dtype=np.float64)
    ptr, local = tile_by_leaf(leaves, offsets, tile)
    return ptr, local, tile_values(values, local, tile), bool(np.isfinite(values).all())


#
# The training rows are cut into tiles of ``tile`` consecutive rows. Tile ``b`` (rows
# ``lo = b * tile`` to ``hi``, ``nb = hi - lo`` of them) owns positions
# ``[lo * T, hi * T)``; inside, tree ``t`` owns ``[lo * T + t * nb, lo * T + (t + 1) * nb)``
# with the tile's rows sorted by their leaf in tree ``t``. ``ptr[b, offsets[t] + l]`` is
# where leaf ``l`` of tree ``t`` starts in tile ``b`` (the next entry is where it ends,
# also across trees: the regions are contiguous) and ``local[r]`` is the row's index
# inside its tile (< 2**16). A product accumulates a group of queries over one tile in
# a small buffer that stays in the core's caches, and reads the tile's leaf segments,
# which stay in the shared cache while all groups pass over them.


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


def derivatives_tiled(leaves, offsets, w, g, h, values, per_leaf, tile=TILE):
    """BoostIn's derivatives, their tiled layout and the self-influence products in
    one pass over the rows.

    ``delta[i, t] = w[i] * (g[i, t] + values[j] * h[i, t]) * per_leaf[j]`` with
    ``j = offsets[t] + leaves[i, t]``, rounded as that numpy expression is. Returns
    ``(delta, (ptr, local, delta_tiled, finite))``, the second item the arrays
    :func:`tiled` of ``delta`` returns, and overwrites ``g`` (C-contiguous float64)
    with ``g * delta``.

    Parallel over tiles. A tile's entries are computed row by row (a streaming pass),
    then sorted by leaf one tree at a time from the tile's rows just written, which
    are still in the core's cache: the separate kernels (``boostin_derivatives``,
    :func:`tile_by_leaf`, :func:`tile_values`) read them again from memory. The
    outputs are allocated by numpy, whose large arrays get huge pages where the
    system allows (about half the cost of first touching numba's allocations).
    """
    if tile > 2**16:
        raise ValueError("tile must be at most 2**16 rows (uint16 local indices)")
    delta, ptr, local, d_tiled, finite = _derivatives_tiled(
        leaves, offsets, w, g, h, values, per_leaf, tile
    )
    return delta, (ptr, local, d_tiled, bool(finite.all()))


@njit_parallel
def _derivatives_tiled(leaves, offsets, w, g, h, values, per_leaf, tile):
    n, n_trees = leaves.shape
    n_tiles = (n + tile - 1) // tile
    n_leaves_total = offsets[n_trees]
    delta = np.empty((n, n_trees))
    ptr = np.empty((n_tiles, n_leaves_total + 1), dtype=np.int64)
    local = np.empty(n * n_trees, dtype=np.uint16)
    d_tiled = np.empty(n * n_trees)
    finite = np.empty(n_tiles, dtype=np.bool_)
    max_leaves = 0
    for t in range(n_trees):
        max_leaves = max(max_leaves, offsets[t + 1] - offsets[t])
    for b in prange(n_tiles):
        lo = b * tile
        hi = min(n, lo + tile)
        nb = hi - lo
        fin = True
        for i in range(lo, hi):
            wi = w[i]
            for t in range(n_trees):
                j = offsets[t] + leaves[i, t]
                d = wi * (g[i, t] + values[j] * h[i, t]) * per_leaf[j]
                delta[i, t] = d
                g[i, t] = g[i, t] * d
                if not np.isfinite(d):
                    fin = False
        finite[b] = fin
        # counting sort of the tile's rows by leaf, tree by tree (as tile_by_leaf)
        pos = np.empty(max_leaves + 1, dtype=np.int64)
        for t in range(n_trees):
            o = offsets[t]
            n_leaves = offsets[t + 1] - o
            pos[: n_leaves + 1] = 0
            for i in range(lo, hi):
                pos[leaves[i, t] + 1] += 1
            s = lo * n_trees + t * nb
            for l in range(n_leaves):
                s += pos[l]
                pos[l] = s
                ptr[b, o + l] = s
            for i in range(lo, hi):
                l = leaves[i, t]
                r = pos[l]
                pos[l] = r + 1
                local[r] = i - lo
                d_tiled[r] = delta[i, t]
        ptr[b, n_leaves_total] = hi * n_trees
    return delta, ptr, local, d_tiled, finite


def tiled_product(q_leaves, q_values, offsets, ptr, local, d_tiled, finite, n, tile, out):
    """``out[e, i] = sum_t 1[leaf_t(e) = leaf_t(i)] * q_values[e, t] * D[i, t]``.

    ``D`` in the tiled layout (``tiled``; ``finite``: all its values are finite).
    ``out`` (m, n) is overwritten.

    Queries are computed in groups of ``GROUP`` (fewer for fewer queries) that share
    many leaves (``group_queries``). For each tree, a group visits the training rows of
    each distinct leaf of its members once and updates all members with one vector
    operation: the members in that leaf add their value times the row's entry, the
    others add zero. Every entry is summed over trees in tree order whatever the
    grouping and the number of threads, so the result is the same bit for bit (up to
    the sign of a NaN: IEEE addition does not fix which operand's NaN it returns).
    Besides ``out``, it holds at most ``GROUP_MEMORY`` bytes of group coefficients.
    """
    q_leaves = np.ascontiguousarray(q_leaves, dtype=np.int32)
    q_values = np.ascontiguousarray(q_values, dtype=np.float64)
    if len(q_leaves) == 1:  # one query: no groups to form, scalar updates
        _single_product(q_leaves[0], q_values[0], offsets, ptr, local, d_tiled, n, tile, out[0])
        return out
    width = min(GROUP, 1 << max(len(q_leaves) - 1, 0).bit_length())
    # the search costs O(window T) per query: worth it where the product is large
    window = min(GROUP_WINDOW, max(8, n // 1024))
    groups = group_queries(q_leaves, width, window)
    # a group's coefficients take at most T x width x width floats: batches of groups
    # keep them within GROUP_MEMORY bytes (each group is independent of the others)
    step = max(16, GROUP_MEMORY // (8 * width * width * max(q_leaves.shape[1], 1)))
    for g0 in range(0, len(groups), step):
        batch = groups[g0 : g0 + step]
        gptr, gleaf, gvec = group_leaves(q_leaves, q_values, batch)
        _grouped_product(
            batch,
            gptr,
            gleaf,
            gvec,
            (0.0,) * width,
            offsets,
            ptr,
            local,
            d_tiled,
            finite,
            n,
            tile,
            out,
        )
    return out


@njit_parallel
def _single_product(q_leaves, q_values, offsets, ptr, local, d_tiled, n, tile, out):
    """``tiled_product`` of one query (``q_leaves``, ``q_values``: its ``(T,)`` rows;
    ``out``: its ``(n,)`` output row), parallel over tiles.

    The same sums as a group of one: trees in order, those where the query's value is
    zero skipped, every entry of the query's leaf added (no finiteness test: with one
    query there is no other member for ``0 * inf`` to reach). Without the group
    machinery (search, coefficient vectors, one-lane intrinsics, buffer copy) the
    kernel takes about 10% less time.
    """
    n_trees = offsets.shape[0] - 1
    for b in prange(ptr.shape[0]):
        lo = b * tile
        hi = min(n, lo + tile)
        buf = np.zeros(hi - lo)
        for t in range(n_trees):
            c = q_values[t]
            if c == 0.0:
                continue
            j = offsets[t] + q_leaves[t]
            for r in range(ptr[b, j], ptr[b, j + 1]):
                buf[local[r]] += c * d_tiled[r]
        out[lo:hi] = buf


@njit
def group_queries(q_leaves, width, window):
    """Groups of ``width`` queries (``(n_groups, width)``, -1 pads the last) whose
    members share many leaves.

    Queries are sorted by their leaves in the first three trees; each query not yet
    grouped then opens a group and adds, one at a time, the candidate among the next
    ``window`` ungrouped queries that shares a leaf with some member in the most
    trees (O(m window T)).
    """
    m, n_trees = q_leaves.shape
    window = max(window, width - 1)  # every group but the last is full
    start = np.arange(m)
    for t in range(min(3, n_trees) - 1, -1, -1):  # lexicographic: stable sorts
        start = start[np.argsort(q_leaves[start, t], kind="mergesort")]
    used = np.zeros(m, dtype=np.bool_)
    groups = np.full(((m + width - 1) // width, width), -1, dtype=np.int64)
    cand = np.empty(window, dtype=np.int64)
    covered = np.zeros((window, n_trees), dtype=np.bool_)
    score = np.zeros(window, dtype=np.int64)
    k = 0
    for a in range(m):
        i = start[a]
        if used[i]:
            continue
        used[i] = True
        groups[k, 0] = i
        n_cand = 0
        for c in range(a + 1, m):
            if n_cand == window:
                break
            if not used[start[c]]:
                cand[n_cand] = start[c]
                covered[n_cand, :] = False
                score[n_cand] = 0
                n_cand += 1
        last = i
        for slot in range(1, width):
            best = -1
            for c in range(n_cand):
                j = cand[c]
                if used[j]:
                    continue
                for t in range(n_trees):  # trees where j meets the newest member
                    if not covered[c, t] and q_leaves[j, t] == q_leaves[last, t]:
                        covered[c, t] = True
                        score[c] += 1
                if best < 0 or score[c] > score[best]:
                    best = c
            if best < 0:
                break
            last = cand[best]
            used[last] = True
            groups[k, slot] = last
        k += 1
    return groups


@njit
def group_leaves(q_leaves, q_values, groups):
    """For every (group, tree), the distinct leaves of the members with a nonzero value
    and their coefficient vectors: ``gleaf[u]``, ``gvec[u * width:(u + 1) * width]`` for
    ``u`` in ``gptr[g * T + t]:gptr[g * T + t + 1]``. ``gvec`` holds a member's value
    in its lane if the member is in that leaf, zero otherwise."""
    n_groups, width = groups.shape
    n_trees = q_leaves.shape[1]
    gptr = np.zeros(n_groups * n_trees + 1, dtype=np.int64)
    seen = np.empty(width, dtype=np.int32)
    for pass_ in range(2):  # count, then fill
        if pass_ == 1:
            gleaf = np.empty(gptr[-1], dtype=np.int32)
            gvec = np.zeros(gptr[-1] * width)
        u = 0
        for g in range(n_groups):
            for t in range(n_trees):
                n_seen = 0
                for a in range(width):
                    e = groups[g, a]
                    if e < 0 or q_values[e, t] == 0.0:
                        continue
                    leaf = q_leaves[e, t]
                    s = 0
                    while s < n_seen and seen[s] != leaf:
                        s += 1
                    if s == n_seen:
                        seen[s] = leaf
                        n_seen += 1
                    if pass_ == 1:
                        gleaf[u + s] = leaf
                        gvec[(u + s) * width + a] = q_values[e, t]
                u += n_seen
                if pass_ == 0:
                    gptr[g * n_trees + t + 1] = u
    return gptr, gleaf, gvec


@njit_parallel
def _grouped_product(
    groups, gptr, gleaf, gvec, like, offsets, ptr, local, d_tiled, finite, n, tile, out
):
    """``tiled_product`` over query groups (``group_queries``, ``group_leaves``).

    The work is split into (tile, block of groups) items. A group's tile is accumulated
    in ``buf`` (row-major: a training row's ``width`` lanes are contiguous), then copied
    into the members' output rows. If some training entries are not finite
    (``finite`` false), each entry is checked and a non-finite one is added lane by
    lane, to the members in its leaf only: ``0 * inf`` would be NaN.
    """
    n_groups, width = groups.shape
    if len(like) != width:
        raise ValueError("like must have one entry per group member")
    n_trees = offsets.shape[0] - 1
    n_tiles = ptr.shape[0]
    # enough items for the threads when there are few tiles
    n_gb = min(max(n_groups, 1), max(1, (16 + n_tiles - 1) // max(n_tiles, 1)))
    g_size = (n_groups + n_gb - 1) // n_gb
    w = np.uint64(width)
    for k in prange(n_tiles * n_gb):
        b = k // n_gb
        g0 = (k % n_gb) * g_size
        lo = b * tile
        hi = min(n, lo + tile)
        nb = hi - lo
        buf = np.empty(nb * width)
        for grp in range(g0, min(n_groups, g0 + g_size)):
            buf[:] = 0.0
            for t in range(n_trees):
                for u in range(gptr[grp * n_trees + t], gptr[grp * n_trees + t + 1]):
                    j = offsets[t] + gleaf[u]
                    coef = load_lanes(gvec, u * width, like)
                    # unsigned indices: no negative-index wrap-around test per entry
                    r = np.uint64(ptr[b, j])
                    r_end = np.uint64(ptr[b, j + 1])
                    if finite:
                        while r < r_end:
                            add_scaled_lanes(buf, np.uint64(local[r]) * w, coef, d_tiled[r])
                            r += np.uint64(1)
                        continue
                    while r < r_end:
                        x = d_tiled[r]
                        s = np.uint64(local[r]) * w
                        if np.isfinite(x):
                            add_scaled_lanes(buf, s, coef, x)
                        else:
                            for a in range(width):
                                c = gvec[u * width + a]
                                if c != 0.0:
                                    buf[s + np.uint64(a)] += c * x
                        r += np.uint64(1)
            _copy_out(buf, groups[grp], out, lo, hi)


@njit(inline="always")
def _copy_out(buf, members, out, lo, hi):
    """``out[members[a], lo:hi] = buf[a::width]`` for the members that are not -1.

    A full group of eight is copied row by row of ``buf``, writing eight output rows
    side by side: about twice as fast as one member at a time, whose reads of ``buf``
    stride over a cache line each.
    """
    width = members.shape[0]
    if width == 8 and members.min() >= 0:
        r0 = out[members[0], lo:hi]
        r1 = out[members[1], lo:hi]
        r2 = out[members[2], lo:hi]
        r3 = out[members[3], lo:hi]
        r4 = out[members[4], lo:hi]
        r5 = out[members[5], lo:hi]
        r6 = out[members[6], lo:hi]
        r7 = out[members[7], lo:hi]
        for i in range(hi - lo):
            s = 8 * i
            r0[i] = buf[s]
            r1[i] = buf[s + 1]
            r2[i] = buf[s + 2]
            r3[i] = buf[s + 3]
            r4[i] = buf[s + 4]
            r5[i] = buf[s + 5]
            r6[i] = buf[s + 6]
            r7[i] = buf[s + 7]
        return
    for a in range(width):
        if members[a] >= 0:
            row = out[members[a], lo:hi]
            for i in range(hi - lo):
                row[i] = buf[i * width + a]
