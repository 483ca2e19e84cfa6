"""The leaf co-occurrence kernels and the kernels' objective helpers against plain numpy,
on random leaf assignments and raw scores.

The estimators call the tiled product with the production tile size (1,024 rows),
larger than every training set of the other tests; here small tiles exercise many tiles,
a short last tile and tiles that hold a single row.
"""

import itertools

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skinfluence import _objectives
from skinfluence._kernels import _leaves
from skinfluence._kernels import _objectives as _kobj
from skinfluence._kernels._lanes import add_scaled_lanes, load_lanes


def _random_forest_leaves(rng, n, n_leaves):
    """Leaf ids (n, T) with unequal leaves (some empty), int32, like routed rows."""
    cols = []
    for L in n_leaves:
        p = rng.dirichlet(np.full(L, 0.3))
        cols.append(rng.choice(L, size=n, p=p))
    return np.ascontiguousarray(np.stack(cols, axis=1).astype(np.int32))


def _random_product(rng, n, m, n_leaves):
    """``(offsets, leaves, q_leaves, values, q_values)`` of a random product problem."""
    offsets = np.concatenate([[0], np.cumsum(n_leaves)]).astype(np.int64)
    leaves = _random_forest_leaves(rng, n, n_leaves)
    q_leaves = _random_forest_leaves(rng, m, n_leaves)
    values = rng.normal(size=leaves.shape)
    q_values = rng.normal(size=q_leaves.shape)
    return offsets, leaves, q_leaves, values, q_values


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
    for m in (1, 2, 3, 5):  # every group width: 1, 2, 4 and 8 queries
        q = rng.normal(size=(m, 2))
        _leaves.tiled_product(leaves[:m], q, offsets, *tiles, 5, 2, np.empty((m, 5)))


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 60),
    m=st.integers(0, 20),
    n_leaves=st.lists(st.integers(1, 9), min_size=1, max_size=6),
    tile=st.sampled_from([1, 2, 3, 7, 16, 1024]),
)
def test_tiled_product_equals_dense_mask(seed, n, m, n_leaves, tile):
    rng = np.random.default_rng(seed)
    offsets, leaves, q_leaves, values, q_values = _random_product(rng, n, m, n_leaves)
    q_values[rng.random(q_values.shape) < 0.2] = 0.0  # skipped trees
    leaves_before, values_before = leaves.copy(), values.copy()
    q_before = q_leaves.copy(), q_values.copy()

    tiles = _leaves.tiled(leaves, offsets, values, tile=tile)
    ptr, local, d_tiled, finite = tiles
    out = np.full((m, n), np.nan)
    _leaves.tiled_product(q_leaves, q_values, offsets, *tiles, n, tile, out)

    np.testing.assert_allclose(
        out, _dense_product(q_leaves, q_values, leaves, values), rtol=1e-13, atol=1e-13
    )
    # any grouping of the queries, of any width, gives the same bits (each entry sums
    # the trees in order, one term per tree; a NaN's sign aside, which
    # assert_array_equal does not compare)
    for width in (1, 2, 8):
        groups = np.full((-(-m // width), width), -1, dtype=np.int64)
        groups.ravel()[:m] = rng.permutation(m)
        gptr, gleaf, gvec = _leaves.group_leaves(q_leaves, q_values, groups)
        again = np.full((m, n), np.nan)
        _leaves._grouped_product(
            groups, gptr, gleaf, gvec, (0.0,) * width, offsets, *tiles, n, tile, again
        )
        np.testing.assert_array_equal(again, out)
        # the checked path for non-finite training values gives the same bits as well
        again[:] = np.nan
        _leaves._grouped_product(
            groups, gptr, gleaf, gvec, (0.0,) * width, offsets, ptr, local, d_tiled, False,
            n, tile, again,
        )  # fmt: skip
        np.testing.assert_array_equal(again, out)
    # the layout holds each (row, tree) entry exactly once, leaves contiguous per tile
    n_tiles = -(-n // tile)
    assert finite
    assert ptr.shape == (n_tiles, offsets[-1] + 1)
    assert np.all(np.diff(ptr, axis=1) >= 0)
    assert np.array_equal(np.sort(d_tiled), np.sort(values.ravel()))
    for b in range(n_tiles):
        lo = b * tile
        for t in range(len(n_leaves)):
            for leaf in range(n_leaves[t]):
                j = offsets[t] + leaf
                rows = lo + local[ptr[b, j] : ptr[b, j + 1]].astype(np.int64)
                assert np.all(leaves[rows, t] == leaf)
                np.testing.assert_array_equal(d_tiled[ptr[b, j] : ptr[b, j + 1]], values[rows, t])
    assert np.array_equal(leaves, leaves_before) and np.array_equal(values, values_before)
    assert np.array_equal(q_leaves, q_before[0]) and np.array_equal(q_values, q_before[1])


def _leaves_of_groups(q_leaves, q_values, groups):
    """Plain-python ``group_leaves``: {(group, tree): {leaf: coefficient vector}}."""
    expected = {}
    for g, members in enumerate(groups):
        for t in range(q_leaves.shape[1]):
            per_leaf = {}
            for a, e in enumerate(members):
                if e >= 0 and q_values[e, t] != 0.0:
                    vec = per_leaf.setdefault(int(q_leaves[e, t]), np.zeros(len(members)))
                    vec[a] = q_values[e, t]
            expected[g, t] = per_leaf
    return expected


@given(seed=st.integers(0, 2**31 - 1), m=st.integers(0, 30), width=st.sampled_from([1, 2, 4, 8]))
def test_group_leaves_lists_each_members_leaf_once(seed, m, width):
    rng = np.random.default_rng(seed)
    n_leaves = [3, 1, 5]
    q_leaves = _random_forest_leaves(rng, m, n_leaves)
    q_values = rng.normal(size=(m, 3))
    q_values[rng.random(q_values.shape) < 0.3] = 0.0
    groups = _leaves.group_queries(q_leaves, width, 4)
    gptr, gleaf, gvec = _leaves.group_leaves(q_leaves, q_values, groups)
    gvec = gvec.reshape(-1, width)
    for (g, t), per_leaf in _leaves_of_groups(q_leaves, q_values, groups).items():
        u = slice(gptr[g * 3 + t], gptr[g * 3 + t + 1])
        got = dict(zip(gleaf[u].tolist(), gvec[u]))
        assert sorted(got) == sorted(per_leaf)
        for leaf, vec in per_leaf.items():
            np.testing.assert_array_equal(got[leaf], vec)


def test_tiled_product_does_not_depend_on_the_number_of_threads():
    rng = np.random.default_rng(1)
    n_leaves = [31] * 20
    offsets, leaves, q_leaves, values, q_values = _random_product(rng, 3000, 37, n_leaves)
    outs = []
    before = numba.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            tiles = _leaves.tiled(leaves, offsets, values, tile=256)
            out = np.empty((37, 3000))
            _leaves.tiled_product(q_leaves, q_values, offsets, *tiles, 3000, 256, out)
            outs.append(out)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(outs[0], outs[1])  # bitwise: every entry sums trees in order
    np.testing.assert_allclose(
        outs[0], _dense_product(q_leaves, q_values, leaves, values), rtol=1e-12, atol=1e-12
    )


def test_non_finite_values_stay_in_their_leaf():
    """The formula's indicator keeps every row outside the query's leaf at zero, even
    where the query's or the row's value is infinite: a group's vector operation
    multiplies the other members' zeros by the row's value, and ``0 * inf`` is NaN."""
    leaves = np.array([[0], [0], [0], [1], [1], [0]], dtype=np.int32)
    offsets = np.array([0, 2], dtype=np.int64)
    values = np.array([1.0, 2.0, np.inf, 4.0, -np.inf, 6.0])[:, None]
    tiles = _leaves.tiled(leaves, offsets, values, tile=4)
    assert tiles[3] is False
    q_leaves = np.array([[0], [0], [1], [1]], dtype=np.int32)
    q_values = np.array([[np.inf], [1.0], [np.nan], [2.0]])
    out = np.empty((4, 6))
    _leaves.tiled_product(q_leaves, q_values, offsets, *tiles, 6, 4, out)
    same = leaves[:, 0][None, :] == q_leaves
    with np.errstate(invalid="ignore"):
        expected = np.where(same, q_values * values[:, 0][None, :], 0.0)
    np.testing.assert_array_equal(out, expected)
    assert np.isinf(out[0, 0]) and out[0, 3] == 0.0 and np.isnan(out[2, 3])
    assert out[1, 2] == np.inf and out[1, 4] == 0.0 and out[3, 4] == -np.inf
    # one query at a time (the single-query kernel): the same rows
    for e in range(4):
        one = np.empty((1, 6))
        _leaves.tiled_product(q_leaves[e : e + 1], q_values[e : e + 1], offsets, *tiles, 6, 4, one)
        np.testing.assert_array_equal(one[0], expected[e])


def test_group_queries_partitions_the_queries_and_groups_duplicates():
    rng = np.random.default_rng(3)
    n_leaves = [31] * 12
    q = _random_forest_leaves(rng, 40, n_leaves)
    q = np.ascontiguousarray(np.concatenate([q] * 4)[rng.permutation(160)])
    # windows smaller than a group still fill every group but the last
    for m, width, window in itertools.product((0, 1, 2, 7, 9, 160), (1, 4, 8), (0, 3, 64)):
        groups = _leaves.group_queries(q[:m], width, window)
        assert groups.shape == (-(-m // width), width)
        members = groups.ravel()
        assert np.array_equal(np.sort(members[members >= 0]), np.arange(m))
        assert np.all(members[m:] == -1)  # only the last group is padded
    groups = _leaves.group_queries(q, 4, 160)
    for members in groups:  # each query meets its three duplicates
        assert (q[members] == q[members[0]]).all()


def test_tile_larger_than_uint16_is_refused():
    leaves = np.zeros((3, 1), dtype=np.int32)
    with pytest.raises(ValueError, match="2\\*\\*16"):
        _leaves.tiled(leaves, np.array([0, 1]), np.ones((3, 1)), tile=2**16 + 1)


@numba.njit
def _lanes_update(buf, start, src, src_start, x, like):
    coef = load_lanes(src, src_start, like)
    add_scaled_lanes(buf, start, coef, x)
    return coef


@pytest.mark.parametrize("width", [1, 2, 4, 8])
def test_vector_lanes_equal_scalar_multiply_then_add(width):
    """``buf[s:s+G] += coef * x`` rounds the product, then the sum, lane by lane, like
    numpy: no fused multiply-add. The values are chosen so that a fused operation
    (one rounding) would give other bits."""
    rng = np.random.default_rng(width)
    eps = 2.0**-30
    src = np.concatenate([rng.normal(size=3), 1.0 + eps * (1 + np.arange(width))])
    x = 1.0 - eps
    buf = rng.normal(size=width + 5)
    buf[2 : 2 + width] = -1.0
    expected = buf.copy()
    expected[2 : 2 + width] = buf[2 : 2 + width] + src[3:] * x
    fused = [
        np.longdouble(b) + np.longdouble(c) * np.longdouble(x) for b, c in zip(buf[2:], src[3:])
    ]
    assert not np.array_equal(np.array(fused, dtype=np.float64), expected[2 : 2 + width])
    src_before = src.copy()
    coef = _lanes_update(buf, 2, src, 3, x, (0.0,) * width)
    assert coef == tuple(src[3:])
    np.testing.assert_array_equal(buf, expected)
    np.testing.assert_array_equal(src, src_before)


def test_group_batches_give_the_same_bits(monkeypatch):
    """Groups are processed in batches that bound their coefficients' memory: a tiny
    budget (batches of 16 groups) changes nothing."""
    rng = np.random.default_rng(5)
    n_leaves = [7] * 6
    offsets, leaves, q_leaves, values, q_values = _random_product(rng, 50, 300, n_leaves)
    tiles = _leaves.tiled(leaves, offsets, values, tile=16)
    whole = np.empty((300, 50))
    _leaves.tiled_product(q_leaves, q_values, offsets, *tiles, 50, 16, whole)
    calls = []
    kernel = _leaves._grouped_product
    monkeypatch.setattr(_leaves, "GROUP_MEMORY", 1)
    monkeypatch.setattr(_leaves, "_grouped_product", lambda *a: calls.append(1) or kernel(*a))
    batched = np.empty((300, 50))
    _leaves.tiled_product(q_leaves, q_values, offsets, *tiles, 50, 16, batched)
    assert len(calls) == 3  # 38 groups of 8, 16 per batch
    np.testing.assert_array_equal(batched, whole)
    np.testing.assert_allclose(
        whole, _dense_product(q_leaves, q_values, leaves, values), rtol=1e-13, atol=1e-13
    )


def test_vector_lanes_refuse_what_they_cannot_address():
    """The intrinsics address memory directly: strided or read-only buffers are refused
    at compile time, and unsigned starts of any width index from the array's start."""
    a = np.arange(20.0)
    with pytest.raises(numba.core.errors.TypingError):
        _lanes_update(a[::2], 0, a, 0, 1.0, (0.0,) * 2)
    with pytest.raises(numba.core.errors.TypingError):
        _lanes_update(a, 0, a[::2], 0, 1.0, (0.0,) * 2)
    readonly = np.zeros(4)
    readonly.flags.writeable = False
    with pytest.raises(numba.core.errors.TypingError):
        _lanes_update(readonly, 0, a, 0, 1.0, (0.0,) * 2)
    big = np.zeros(40010)
    src = np.arange(40010.0)
    coef = _lanes_update(big, np.uint16(40000), src, np.uint16(40002), 2.0, (0.0,) * 4)
    assert coef == (40002.0, 40003.0, 40004.0, 40005.0)
    np.testing.assert_array_equal(big[40000:40004], 2.0 * src[40002:40006])
    assert np.count_nonzero(big) == 4


# ------------------------------------------------------------------ objective helpers
def _raw_scores(rng, objective, n):
    """Raw scores ``(n, K)`` and labels; a few rows far out so that clipping acts."""
    K = 3 if objective == "multiclass" else 1
    F = rng.normal(scale=3.0, size=(n, K))
    F[:4] *= 40.0
    if objective in ("binary", "multiclass"):
        y = rng.integers(max(K, 2), size=n).astype(np.float64)
    else:
        y = rng.normal(size=n)
    return F, y


def test_sigmoid_and_softmax_equal_numpy():
    z = np.concatenate([np.linspace(-800.0, 800.0, 41), [0.0, -1e-300, 1e-300]])
    ref = 1.0 / (1.0 + np.exp(-z.astype(np.longdouble)))
    got = np.array([_kobj.sigmoid(v) for v in z])
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref.astype(np.float64), rtol=1e-15, atol=0)
    rng = np.random.default_rng(1)
    for f in [rng.normal(size=4), np.array([1000.0, -1000.0, 0.0]), np.array([2.5])]:
        out = np.empty_like(f)
        _kobj.softmax_into(f, out)
        e = np.exp(f - f.max())
        np.testing.assert_allclose(out, e / e.sum(), rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("objective", ["squared_error", "binary", "multiclass", "value"])
def test_row_loss_equals_the_numpy_loss(objective):
    """The kernels' per-row loss is the numpy loss (clipped probabilities included)."""
    rng = np.random.default_rng(2)
    F, y = _raw_scores(rng, objective, 40)
    code = _objectives.OBJECTIVE_CODE[objective]
    got = np.array([_kobj.row_loss(code, y[i], F[i]) for i in range(len(y))])
    np.testing.assert_allclose(got, _objectives.loss(objective, y, F), rtol=1e-13, atol=1e-15)
    if objective in ("binary", "multiclass"):
        assert got.max() <= -np.log(_kobj.PROBA_CLIP) * (1 + 1e-12)


@pytest.mark.parametrize("objective", ["squared_error", "binary", "multiclass", "value"])
def test_grad_hess_row_equals_numpy(objective):
    """``g`` is the numpy gradient; ``h`` and ``kappa`` follow the plain formulas
    (``c`` scales the multiclass hessian); an ``out`` of length 2 gets ``g``, ``h`` only."""
    rng = np.random.default_rng(3)
    F, y = _raw_scores(rng, objective, 30)
    n, K = F.shape
    c = 0.5 if objective == "multiclass" else 1.0
    code = _objectives.OBJECTIVE_CODE[objective]
    got = np.empty((n, K, 3))
    for i in range(n):
        p_buf = np.empty(K)
        _kobj.softmax_into(F[i], p_buf)
        for k in range(K):
            _kobj.grad_hess_row(code, y[i], F[i], k, c, p_buf, got[i, k])
            short = np.full(2, np.nan)
            _kobj.grad_hess_row(code, y[i], F[i], k, c, p_buf, short)
            np.testing.assert_array_equal(short, got[i, k, :2])
    if objective in ("binary", "multiclass"):
        p = _objectives.proba_from_raw(objective, F)[:, -K:]
        h_ref, kap_ref = c * p * (1 - p), c * p * (1 - p) * (1 - 2 * p)
    else:
        h_ref = np.full((n, K), 1.0 if objective == "squared_error" else 0.0)
        kap_ref = np.zeros((n, K))
    g_ref = _objectives.gradient(objective, y, F)
    np.testing.assert_allclose(got[:, :, 0], g_ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(got[:, :, 1], h_ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got[:, :, 2], kap_ref, rtol=1e-12, atol=1e-15)


def _tiled_reference(leaves, offsets, values, tile):
    """Plain numpy tiled layout: in every (tile, tree), the tile's rows stably sorted by
    leaf; ``(ptr, local, values_tiled)`` as ``_leaves.tiled`` returns them."""
    n, n_trees = leaves.shape
    n_tiles = -(-n // tile)
    ptr = np.empty((n_tiles, offsets[-1] + 1), dtype=np.int64)
    local = np.empty(n * n_trees, dtype=np.uint16)
    out = np.empty(n * n_trees)
    for b in range(n_tiles):
        lo, hi = b * tile, min(n, (b + 1) * tile)
        for t in range(n_trees):
            s = lo * n_trees + t * (hi - lo)
            rows = lo + np.argsort(leaves[lo:hi, t], kind="stable")
            local[s : s + hi - lo] = rows - lo
            out[s : s + hi - lo] = values[rows, t]
            counts = np.bincount(leaves[lo:hi, t], minlength=offsets[t + 1] - offsets[t])
            ptr[b, offsets[t] : offsets[t + 1]] = s + np.concatenate([[0], np.cumsum(counts)[:-1]])
        ptr[b, -1] = hi * n_trees
    return ptr, local, out


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 60),
    n_leaves=st.lists(st.integers(1, 9), min_size=1, max_size=6),
    tile=st.sampled_from([1, 2, 3, 7, 16, 1024]),
    not_finite=st.booleans(),
)
def test_derivatives_tiled_equals_numpy(seed, n, n_leaves, tile, not_finite):
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(n_leaves)]).astype(np.int64)
    leaves = _random_forest_leaves(rng, n, n_leaves)
    w, g, h = rng.random(n), rng.normal(size=leaves.shape), rng.random(leaves.shape)
    values, per_leaf = rng.normal(size=offsets[-1]), rng.normal(size=offsets[-1])
    per_leaf[rng.random(offsets[-1]) < 0.2] = 0.0
    if not_finite:
        g[rng.integers(n), rng.integers(len(n_leaves))] = np.inf
    flat = offsets[:-1][None, :] + leaves
    with np.errstate(invalid="ignore"):  # inf * 0
        delta_ref = w[:, None] * (g + values[flat] * h) * per_leaf[flat]
    products = g.copy()

    delta, (ptr, local, d_tiled, finite) = _leaves.derivatives_tiled(
        leaves, offsets, w, products, h, values, per_leaf, tile=tile
    )

    np.testing.assert_array_equal(delta, delta_ref)  # the same bits
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(products, g * delta_ref)
    assert finite == bool(np.isfinite(delta_ref).all())
    ref = _tiled_reference(leaves, offsets, delta_ref, tile)
    for got, want in zip((ptr, local, d_tiled), ref):
        np.testing.assert_array_equal(got, want)
    # and the layout is the one ``tiled`` builds for the product
    tiles = _leaves.tiled(leaves, offsets, delta_ref, tile)
    for got, want in zip((ptr, local, d_tiled, finite), tiles):
        np.testing.assert_array_equal(got, want)
