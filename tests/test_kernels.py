"""The leaf co-occurrence kernels against plain numpy, on random leaf assignments.

The estimators call the tiled product with the production tile size (2,048 rows),
larger than every training set of the other tests; here small tiles exercise many tiles,
a short last tile and tiles that hold a single row.
"""

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skinfluence._kernels import _leaves


def _random_forest_leaves(rng, n, n_leaves):
    """Leaf ids (n, T) with unequal leaves (some empty), int32, like routed rows."""
    cols = []
    for L in n_leaves:
        p = rng.dirichlet(np.full(L, 0.3))
        cols.append(rng.choice(L, size=n, p=p))
    return np.ascontiguousarray(np.stack(cols, axis=1).astype(np.int32))


def _dense_product(q_leaves, q_values, leaves, values):
    """``out[e, i] = sum_t [leaf_t(e) == leaf_t(i)] q_values[e, t] values[i, t]``."""
    out = np.zeros((len(q_leaves), len(leaves)))
    for e in range(len(q_leaves)):
        mask = leaves == q_leaves[e][None, :]
        out[e] = (mask * values * q_values[e][None, :]).sum(axis=1)
    return out


@pytest.fixture(scope="module", autouse=True)
def _warm_numba():
    rng = np.random.default_rng(0)
    leaves = _random_forest_leaves(rng, 5, [2, 3])
    offsets = np.array([0, 2, 5], dtype=np.int64)
    tiles = _leaves.tiled(leaves, offsets, rng.normal(size=(5, 2)), tile=2)
    _leaves.tiled_product(leaves, rng.normal(size=(5, 2)), offsets, *tiles, 5, 2, np.empty((5, 5)))


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 60),
    m=st.integers(0, 12),
    n_leaves=st.lists(st.integers(1, 9), min_size=1, max_size=6),
    tile=st.sampled_from([1, 2, 3, 7, 16, 2048]),
    dense_share=st.sampled_from([0.0, 0.25, 0.6, 1.01]),
)
def test_tiled_product_equals_dense_mask(seed, n, m, n_leaves, tile, dense_share):
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(n_leaves)]).astype(np.int64)
    leaves = _random_forest_leaves(rng, n, n_leaves)
    q_leaves = _random_forest_leaves(rng, m, n_leaves)
    values = rng.normal(size=(n, len(n_leaves)))
    q_values = rng.normal(size=(m, len(n_leaves)))
    q_values[rng.random(q_values.shape) < 0.2] = 0.0  # skipped trees
    leaves_before, values_before = leaves.copy(), values.copy()

    tiles = _leaves.tiled(leaves, offsets, values, tile=tile, dense_share=dense_share)
    ptr, local, d_tiled, dense_leaf, dense_at, dense = tiles
    out = np.full((m, n), np.nan)
    _leaves.tiled_product(q_leaves, q_values, offsets, *tiles, n, tile, out)

    np.testing.assert_allclose(
        out, _dense_product(q_leaves, q_values, leaves, values), rtol=1e-13, atol=1e-13
    )
    # any pairing of the queries gives the same bits (each entry sums trees in order)
    order = rng.permutation(m)
    again = np.full((m, n), np.nan)
    _leaves._paired_product(q_leaves, q_values, order, offsets, *tiles, n, tile, again)
    np.testing.assert_array_equal(again, out)
    # the layout holds each (row, tree) entry exactly once, leaves contiguous per tile
    n_tiles = -(-n // tile)
    assert ptr.shape == (n_tiles, offsets[-1] + 1)
    assert np.all(np.diff(ptr, axis=1) >= 0)
    assert np.array_equal(np.sort(d_tiled), np.sort(values.ravel()))
    assert np.array_equal(leaves, leaves_before) and np.array_equal(values, values_before)
    # the dense rows change nothing: the same bits as the purely sparse layout
    sparse = _leaves.tiled(leaves, offsets, values, tile=tile, dense_share=1.01)
    plain = np.full((m, n), np.nan)
    _leaves.tiled_product(q_leaves, q_values, offsets, *sparse, n, tile, plain)
    np.testing.assert_array_equal(out, plain)
    # the dense rows: each tile's largest leaf where it holds >= dense_share of the rows,
    # its values in row order and zeros elsewhere
    n_dense = dense_rows = 0
    for b in range(n_tiles):
        rows = slice(b * tile, min(n, (b + 1) * tile))
        nb = rows.stop - rows.start
        for t in range(len(n_leaves)):
            counts = np.bincount(leaves[rows, t], minlength=n_leaves[t])
            k = dense_leaf[b, t]
            if counts.max() < dense_share * nb:
                assert k == -1
                continue
            assert counts[k] == counts.max()
            seg = dense[dense_at[b, t] : dense_at[b, t] + nb]
            np.testing.assert_array_equal(seg, np.where(leaves[rows, t] == k, values[rows, t], 0.0))
            n_dense += 1
            dense_rows += nb
    assert len(dense) == dense_rows
    if dense_share == 0.0:
        assert n_dense == n_tiles * len(n_leaves)  # every (tile, tree) is dense
    if dense_share > 1:
        assert n_dense == 0 and len(dense) == 0


def test_tiled_product_does_not_depend_on_the_number_of_threads():
    rng = np.random.default_rng(1)
    n_leaves = [31] * 20
    offsets = np.concatenate([[0], np.cumsum(n_leaves)]).astype(np.int64)
    leaves = _random_forest_leaves(rng, 3000, n_leaves)
    q_leaves = _random_forest_leaves(rng, 37, n_leaves)
    values = rng.normal(size=leaves.shape)
    q_values = rng.normal(size=q_leaves.shape)
    outs = []
    before = numba.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            tiles = _leaves.tiled(leaves, offsets, values, tile=256, dense_share=0.3)
            assert (tiles[3] >= 0).any() and (tiles[3] == -1).any()  # both paths
            out = np.empty((37, 3000))
            _leaves.tiled_product(q_leaves, q_values, offsets, *tiles, 3000, 256, out)
            outs.append(out)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(outs[0], outs[1])  # bitwise: every entry sums trees in order
    np.testing.assert_allclose(
        outs[0], _dense_product(q_leaves, q_values, leaves, values), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("dense_share", [0.0, 1.01])
def test_non_finite_query_values_stay_in_their_leaf(dense_share):
    """``inf`` times a dense row's zeros would be NaN outside the leaf: the indicator
    of the formula keeps the other rows at zero, on the dense path too."""
    leaves = np.array([[0], [0], [0], [1], [1], [0]], dtype=np.int32)
    offsets = np.array([0, 2], dtype=np.int64)
    values = np.arange(1.0, 7.0)[:, None]
    tiles = _leaves.tiled(leaves, offsets, values, tile=4, dense_share=dense_share)
    q_leaves = np.array([[0], [0], [1]], dtype=np.int32)
    q_values = np.array([[np.inf], [1.0], [np.nan]])
    out = np.empty((3, 6))
    _leaves.tiled_product(q_leaves, q_values, offsets, *tiles, 6, 4, out)
    same = leaves[:, 0][None, :] == q_leaves
    expected = np.where(same, q_values * values[:, 0][None, :], 0.0)
    np.testing.assert_array_equal(out, expected)
    assert np.isinf(out[0, 0]) and out[0, 3] == 0.0 and np.isnan(out[2, 3])


def test_pair_queries_is_a_permutation_that_pairs_duplicates():
    rng = np.random.default_rng(3)
    n_leaves = [31] * 12
    q = _random_forest_leaves(rng, 40, n_leaves)
    q = np.ascontiguousarray(np.concatenate([q, q])[rng.permutation(80)])
    for m in (0, 1, 2, 7, 80):
        order = _leaves.pair_queries(q[:m], 64)
        assert np.array_equal(np.sort(order), np.arange(m))
    order = _leaves.pair_queries(q, 80)
    pairs = q[order].reshape(40, 2, -1)
    assert np.array_equal(pairs[:, 0], pairs[:, 1])  # each query meets its duplicate


def test_tile_larger_than_uint16_is_refused():
    leaves = np.zeros((3, 1), dtype=np.int32)
    with pytest.raises(ValueError, match="2\\*\\*16"):
        _leaves.tiled(leaves, np.array([0, 1]), np.ones((3, 1)), tile=2**16 + 1)
