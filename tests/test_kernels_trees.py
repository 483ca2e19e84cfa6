"""Numpy references of the tree kernels: per-leaf sums, BoostIn's derivatives, the
covering rows of the reconstruction check and the one-column replay."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skinfluence._kernels import _trees


def _layout(seed, n=300, n_trees=13):
    rng = np.random.default_rng(seed)
    n_leaves = rng.integers(1, 9, n_trees)
    offsets = np.concatenate([[0], np.cumsum(n_leaves)]).astype(np.int64)
    leaves = np.column_stack([rng.integers(0, L, n) for L in n_leaves]).astype(np.int32)
    return rng, leaves, offsets


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threads", [1, 2])
def test_leaf_sums_is_bincount_per_tree(seed, threads):
    rng, leaves, offsets = _layout(seed)
    weights = rng.normal(size=leaves.shape)
    flat = leaves + offsets[:-1]
    expected = np.bincount(flat.ravel(), weights.ravel(), offsets[-1])
    old = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        got = _trees.leaf_sums(leaves, offsets, weights)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # rows are summed in row order within each leaf: the same bits for any threads
    np.testing.assert_array_equal(got, _trees.leaf_sums(leaves, offsets, weights))
    # a broadcast (non-contiguous) weight gives the row counts
    counts = _trees.leaf_counts(leaves, offsets, np.ones(len(leaves)))
    np.testing.assert_array_equal(counts, np.bincount(flat.ravel(), minlength=offsets[-1]))


@pytest.mark.parametrize("seed", [0, 1])
def test_boostin_derivatives_is_the_numpy_expression(seed):
    rng, leaves, offsets = _layout(seed)
    n_total = offsets[-1]
    w, g, h = (
        rng.uniform(0.5, 2, len(leaves)),
        rng.normal(size=leaves.shape),
        rng.random(leaves.shape),
    )
    values, per_leaf = rng.normal(size=n_total), rng.random(n_total)
    flat = leaves.astype(np.int64) + offsets[:-1]
    expected = w[:, None] * (g + values[flat] * h) * per_leaf[flat]
    got = _trees.boostin_derivatives(leaves, offsets, w, g, h, values, per_leaf)
    np.testing.assert_array_equal(got, expected)


# --------------------------------------------------------- covering rows, fused replay


@st.composite
def _leaf_matrices(draw):
    """A random ``(n, T)`` leaf-id matrix (some leaves unreached) and its offsets."""
    n_trees = draw(st.integers(0, 6))
    n_leaves = draw(st.lists(st.integers(1, 7), min_size=n_trees, max_size=n_trees))
    n = draw(st.integers(0, 40))
    cols = [draw(st.lists(st.integers(0, L - 1), min_size=n, max_size=n)) for L in n_leaves]
    leaves = np.array(cols, dtype=np.int32).T.reshape(n, n_trees)
    offsets = np.concatenate([[0], np.cumsum(n_leaves)]).astype(np.int64)
    return np.ascontiguousarray(leaves), offsets


@settings(max_examples=150, deadline=None)
@given(_leaf_matrices(), st.sampled_from([1, 2]))
def test_covering_rows_reach_every_reached_leaf(case, threads):
    leaves, offsets = case
    old = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        rows = _trees.covering_rows(leaves, offsets)
    finally:
        numba.set_num_threads(old)
    flat = leaves.astype(np.int64) + offsets[:-1]
    reached = np.unique(flat)
    # sorted distinct rows, at most one per reached leaf
    assert np.all(np.diff(rows) > 0) and len(rows) <= len(reached) <= offsets[-1]
    np.testing.assert_array_equal(np.unique(flat[rows]), reached)
    # the numpy reference of the greedy cover: the first row reaching each leaf
    first = {}
    for i, j in zip(np.repeat(np.arange(len(flat)), flat.shape[1]), flat.ravel()):
        first.setdefault(int(j), int(i))
    np.testing.assert_array_equal(rows, np.unique(list(first.values())).astype(np.int64))


def test_count_out_of_range():
    _, leaves, offsets = _layout(3)
    n_leaves = np.diff(offsets)
    assert _trees.count_out_of_range(leaves, n_leaves) == 0
    bad = leaves.copy()
    bad[5, 2], bad[7, 0] = n_leaves[2], -1
    assert _trees.count_out_of_range(bad, n_leaves) == 2


# every one-column objective (code, parameter, labels)
_ONE_COLUMN = [
    (0, 0.0, "normal"),  # squared error
    (1, 0.0, "binary"),
    (3, 0.0, "normal"),  # value
    (4, 0.0, "count"),  # Poisson
    (4, 0.7, "count"),  # Poisson with a hessian offset
    (5, 0.0, "positive"),  # gamma
    (6, 1.5, "positive"),  # Tweedie
    (7, 0.0, "unit"),  # cross-entropy
    (8, 1.3, "normal"),  # pseudo-Huber
    (9, 0.8, "normal"),  # Huber
]


@pytest.mark.parametrize("objective,c,labels", _ONE_COLUMN)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_replay_sums_is_the_general_replay_and_leaf_sums(objective, c, labels, weighted, threads):
    rng, leaves, offsets = _layout(objective)
    values = 0.3 * rng.normal(size=offsets[-1])
    bias = np.array([0.2])
    y = {
        "normal": rng.normal(size=len(leaves)),
        "binary": rng.integers(0, 2, len(leaves)).astype(float),
        "count": rng.poisson(2.0, len(leaves)).astype(float),
        "positive": rng.gamma(2.0, 1.0, len(leaves)),
        "unit": rng.random(len(leaves)),
    }[labels]
    w = rng.uniform(0.5, 2.0, len(leaves)) if weighted else None
    old = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        g, h, G, H, final = _trees.replay_sums(
            leaves, offsets, values, bias, objective, c, y, w, sums=True
        )
        g1, h1, _, final1 = _trees.replay(leaves, offsets, values, bias, 1, objective, c, y, False)
        big = np.ascontiguousarray(np.tile(leaves, (20, 1)))  # above the size threshold
        y20 = np.tile(y, 20)
        g2, _, _, final2 = _trees.replay(big, offsets, values, bias, 1, objective, c, y20, False)
    finally:
        numba.set_num_threads(old)
    # the general kernel (per-row buffers, every objective through grad_hess_row)
    g0, h0, _, final0 = _trees._replay(leaves, offsets, values, bias, 1, objective, c, y, False)
    for got in ((g, h, final), (g1, h1, final1)):
        for a, b in zip(got, (g0, h0, final0)):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(g2[: len(leaves)], g0)
    np.testing.assert_array_equal(final2[-len(leaves) :], final0)
    gw = g0 if w is None else g0 * w[:, None]
    hw = h0 if w is None else h0 * w[:, None]
    np.testing.assert_array_equal(G, _trees.leaf_sums(leaves, offsets, gw))
    np.testing.assert_array_equal(H, _trees.leaf_sums(leaves, offsets, hw))


def test_replay_sums_without_trees():
    leaves = np.zeros((4, 0), dtype=np.int32)
    g, h, G, H, final = _trees.replay_sums(
        leaves, np.zeros(1, dtype=np.int64), np.zeros(0), np.array([0.5]), 1, 0.0, np.ones(4)
    )
    assert g.shape == h.shape == (4, 0) and G.size == H.size == 0
    np.testing.assert_array_equal(final, np.full((4, 1), 0.5))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float32])
def test_remap_leaves_in_one_pass_is_the_per_tree_lookup(dtype):
    from skinfluence._adapters._base import leaf_map, remap_leaves

    rng = np.random.default_rng(5)
    n, n_trees = 3000, 30  # above the size where the kernel takes over
    maps, cols = [], []
    for _ in range(n_trees):
        ids = np.sort(rng.choice(40, rng.integers(2, 9), replace=False))
        maps.append(leaf_map(ids))
        cols.append(rng.choice(ids, n))
    raw = np.column_stack(cols).astype(dtype)
    expected = np.column_stack([m[c] for m, c in zip(maps, cols)]).astype(np.int32)
    got = remap_leaves(raw, maps)
    assert got.dtype == np.int32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)
    if raw.dtype.kind == "i":  # a few rows: the per-tree numpy lookup
        np.testing.assert_array_equal(remap_leaves(raw[:10], maps), expected[:10])
    for bad_id in (1000, -1):  # beyond the map, negative
        bad = raw.copy()
        bad[7, 3] = bad_id
        with pytest.raises(RuntimeError, match="does not list as a leaf"):
            remap_leaves(bad, maps)
    internal = raw.copy()
    internal[9, 4] = next(i for i in range(len(maps[4])) if maps[4][i] < 0)
    with pytest.raises(RuntimeError, match="does not list as a leaf"):
        remap_leaves(internal, maps)
