"""Numpy references of the tree kernels: per-leaf sums and BoostIn's derivatives."""

import numba
import numpy as np
import pytest

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
