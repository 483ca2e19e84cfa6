"""The lanes kernel of LeafInfluence's top-k update set and its sparse slots, and the
single point from the replay: the same bits as the one-row kernels they replace."""

import numpy as np
import pytest

from skinfluence import testing
from skinfluence._kernels import _leaf_influence as _li
from skinfluence._kernels import _leaf_influence_top as _top
from skinfluence._kernels import _leaves
from skinfluence._leaf_influence import LeafInfluence
from skinfluence._leaf_rule import leaf_terms
from skinfluence._leaf_update_sets import SinglePoint, TopLeaves

from .models import make_data, make_model

_CACHE = {}


# regression objectives whose gradient slope is not the hessian (Poisson with LightGBM's
# hessian offset, Huber) or has a third derivative (Poisson)
_LOSSES = {"poisson": {"objective": "poisson"}, "huber": {"objective": "huber"}}


def fitted(lib, objective, weighted, n=90):
    key = (lib, objective, weighted)
    if key not in _CACHE:
        X, y = make_data("squared_error" if objective in _LOSSES else objective, n=n, seed=3)
        if objective == "poisson":
            y = np.abs(y)
        w = np.random.default_rng(1).uniform(0.3, 2.5, n) if weighted else None
        task = "squared_error" if objective in _LOSSES else objective
        if objective in _LOSSES:  # the library's own objective name
            model = testing.make_model(
                lib,
                "regression",
                n_estimators=8,
                learning_rate=0.3,
                num_leaves=8,
                min_child_samples=5,
                **_LOSSES[objective],
            )
        else:
            model = make_model(lib, task)
        _CACHE[key] = (X, y, w, model.fit(X, y, sample_weight=w))
    return _CACHE[key]


def bits(a):
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


CASES = [
    ("catboost", "binary", False),  # oblivious trees
    ("lightgbm", "multiclass", True),  # K = 3 columns (diagonal form)
    ("xgboost", "squared_error", True),
]


@pytest.mark.parametrize("lib,objective,weighted", CASES)
@pytest.mark.parametrize("n_top", [1, 2, 40])
def test_lanes_kernel_equals_one_row_kernel(lib, objective, weighted, n_top):
    """Every leaf derivative and self-product of the lanes kernel is the one-row
    kernel's, bit for bit, for any number of removed rows (idle lanes included) and
    more top leaves than a tree has (40)."""
    X, y, w, model = fitted(lib, objective, weighted)
    exp = LeafInfluence(model, update_set=n_top, multiclass="diagonal", chunk_memory_mb=1e-3)
    exp.fit(X, y, sample_weight=w)
    up = exp._update
    assert isinstance(up, TopLeaves) and up._lanes and up.slots is None
    assert up.train.order.size == 0  # no rows-by-leaf CSR for the lanes kernel
    ens = exp.ensemble_
    leaves = ens.leaf_ids(X)
    indptr, order = _leaves.group_by_leaf(leaves, ens.leaf_offsets)
    train = up.train._replace(indptr=indptr, order=order)
    terms = up.terms._replace(
        propagation_sorted=_leaves.sort_by_leaf(up.terms.propagation, order, len(X))
    )
    for rows in (np.arange(len(X)), np.array([5, 0, 77, 13, 2]), np.arange(3, 60, 4)):
        gfin = np.ascontiguousarray(up.final_gradients[rows])
        D, self_dot = _li.forward_block(rows, train, terms, n_top, gfin)
        leaf, value, self_lanes = _top.top_leaves_forward(
            rows, up.train, up.terms, up._by_tree, n_top, gfin
        )
        dense = _top.dense_from_slots(leaf, value, ens.leaf_offsets)
        np.testing.assert_array_equal(bits(dense), bits(D))
        np.testing.assert_array_equal(bits(self_lanes), bits(self_dot))
        # the slots hold every written derivative: at most k + 1 per tree
        assert (D != 0).sum(axis=1).max() <= ens.n_trees * leaf.shape[2]
        ql = np.ascontiguousarray(ens.flat_leaves(ens.leaf_ids(X[:11])))
        q_local = (ql - ens.leaf_offsets[:-1]).astype(np.int32)
        K = ens.n_outputs
        np.testing.assert_array_equal(
            bits(_top.slot_sums(q_local, leaf, value, K)), bits(_li.gather_leaf_sums(ql, D, K))
        )


@pytest.mark.parametrize("lib,objective,weighted", CASES)
def test_slots_cache_equals_recomputation(lib, objective, weighted):
    """With the slots kept (fit) or recomputed per query block: the same bits."""
    X, y, w, model = fitted(lib, objective, weighted)
    kept = LeafInfluence(model, update_set=2, multiclass="diagonal").fit(X, y, sample_weight=w)
    assert kept._update.slots is not None and kept._update.terms is None
    again = LeafInfluence(
        model, update_set=2, multiclass="diagonal", chunk_memory_mb=1e-3, block_size=13
    ).fit(X, y, sample_weight=w)
    assert again._update.slots is None
    Xq, yq = X[:17], y[:17]
    for name, call in [
        ("transform", lambda e: e.transform(Xq, yq)),
        ("self", lambda e: e.self_influence()),
    ]:
        np.testing.assert_array_equal(bits(call(kept)), bits(call(again)), err_msg=name)
    np.testing.assert_allclose(
        kept.global_influence(Xq, yq), again.global_influence(Xq, yq), rtol=1e-13, atol=1e-16
    )


@pytest.mark.parametrize(
    "lib,objective,weighted",
    [*CASES, ("lightgbm", "poisson", False), ("lightgbm", "huber", True)],
)
def test_single_point_from_replay_equals_terms(lib, objective, weighted):
    """``SinglePoint.fit_one_step`` (from the replay) against ``fit`` from the leaf
    rule's derivative terms: the same derivatives, tiles, self-influence and global
    influence. The fitted explainer keeps no rows-by-leaf CSR and no copy of the leaves
    by tree; with unit weights neither the derivatives nor the leaves by row (the tiles
    hold ``-D``)."""
    X, y, w, model = fitted(lib, objective, weighted)
    exp = LeafInfluence(model, update_set=0, multiclass="diagonal").fit(X, y, sample_weight=w)
    train, up = exp._train, exp._update
    assert train.order.size == 0 and train.leaves_by_tree.size == 0
    assert (train.leaves.size == 0) == (up.derivatives is None) == (w is None)
    ens = exp.ensemble_
    leaves = ens.leaf_ids(X)
    t = leaf_terms(ens, leaves, exp._labels, w, kappa=True)
    full = train._replace(leaves=leaves)
    ref = SinglePoint(ens, full, t.weights, up.final_gradients, "diagonal")
    ref.fit(t.coef, t.source, t.propagation, None, None)
    D = _li.single_point(full, ref._terms_of(t.coef, t.source, t.propagation, False))
    np.testing.assert_array_equal(bits(exp.derivatives_), bits(D))
    np.testing.assert_array_equal(bits(up.tiles[2]), bits(ref.tiles[2]))
    np.testing.assert_array_equal(bits(up.self_values), bits(ref.self_values))
    q = exp._query_arrays(X[:9], ens.leaf_ids(X[:9]), exp._labels[:9], ens.objective)
    np.testing.assert_array_equal(
        bits(up.global_influence(q, None)), bits(ref.global_influence(q, None))
    )


@pytest.mark.parametrize("n", [0, 1, 5, 7, 8, 9, 100, 128, 129, 136, 255, 1000, 4099])
def test_numpy_sum_rounds_as_numpy(n):
    """``numpy_sum``: numpy's pairwise summation of a contiguous run, bit for bit
    (values of very different magnitudes, so the order of the additions shows)."""
    rng = np.random.default_rng(n)
    a = rng.normal(size=n + 3) * np.exp(5.0 * rng.normal(size=n + 3))
    assert _li.numpy_sum(a, 0, n) == a[:n].sum()
    assert _li.numpy_sum(a, 3, n) == a[3 : n + 3].sum()


def test_tile_slots_is_the_tiled_layout():
    """``tile_slots``: the ``ptr`` and ``local`` of ``_leaves.tile_by_leaf``, and each
    entry's slot points at its row."""
    rng = np.random.default_rng(0)
    n, tile = 45, 16
    offsets = np.array([0, 3, 4, 9, 11], dtype=np.int64)
    leaves = np.stack([rng.integers(0, L, n) for L in np.diff(offsets)], 1).astype(np.int32)
    ptr, local, slot = _li.tile_slots(leaves, offsets, tile)
    ref_ptr, ref_local = _leaves.tile_by_leaf(leaves, offsets, tile)
    np.testing.assert_array_equal(ptr, ref_ptr)
    np.testing.assert_array_equal(local, ref_local)
    T = leaves.shape[1]
    for i in range(n):
        lo = i - i % tile
        nb = min(n, lo + tile) - lo
        for t in range(T):
            assert local[lo * T + t * nb + slot[i, t]] == i - lo


def _numpy_single_point(ens, leaves, y, w, coef, gfin):
    """The single-point derivatives, their removal and self-influence in numpy, from
    the replay's ``g, h, kappa`` and slopes: tree after tree over all rows."""
    g, h, kap, _ = ens.replay(leaves, y, kappa=True)
    slope = ens.gradient_slopes(leaves, y, h)
    flat = ens.flat_leaves(leaves)
    vbar = ens.unshrunk_values[flat]
    K = ens.n_outputs
    D = np.zeros(leaves.shape)
    jv = np.zeros((len(leaves), K))
    for t in range(leaves.shape[1]):
        k = t % K
        cf = coef[flat[:, t]]
        a = g[:, t] + vbar[:, t] * h[:, t]
        q = w * (slope[:, t] + vbar[:, t] * kap[:, t])
        d = np.where(cf != 0.0, cf * (a + q * jv[:, k]), 0.0)
        D[:, t] = d
        jv[:, k] += d
    removal = -w[:, None] * D
    return D, removal, (gfin[:, ens.tree_column] * removal).sum(axis=1)


@pytest.mark.parametrize(
    "lib,objective,weighted",
    [*CASES, ("lightgbm", "poisson", False), ("lightgbm", "huber", True)],
)
def test_single_point_tiled_equals_numpy(lib, objective, weighted):
    """``single_point_tiled`` (replay, derivatives and tiled removal in one pass, tiles
    of 16 rows) against the numpy recurrence over the replay, tiled by
    ``_leaves.tiled``: the same bits."""
    X, y, w, model = fitted(lib, objective, weighted)
    exp = LeafInfluence(model, update_set=0, multiclass="diagonal").fit(X, y, sample_weight=w)
    ens = exp.ensemble_
    leaves = ens.leaf_ids(X)
    weights = np.ones(len(X)) if w is None else w
    t = leaf_terms(ens, leaves, exp._labels, w)
    gfin = exp._update.final_gradients
    D, removal, self_values = _numpy_single_point(ens, leaves, exp._labels, weights, t.coef, gfin)
    tile = 16
    ptr, local, slot = _li.tile_slots(leaves, ens.leaf_offsets, tile)
    d_tiled, got_self, finite, got_D = _li.single_point_tiled(
        leaves,
        ens.leaf_offsets,
        ens.leaf_values,
        ens.bias,
        ens.objective_code,
        ens.kernel_param,
        exp._labels,
        t.coef,
        np.ascontiguousarray(ens.unshrunk_values, dtype=np.float64),
        weights,
        gfin,
        slot,
        tile,
        True,
    )
    ref = _leaves.tiled(leaves, ens.leaf_offsets, removal, tile=tile)
    np.testing.assert_array_equal(bits(got_D), bits(D))
    np.testing.assert_array_equal(bits(d_tiled), bits(ref[2]))
    np.testing.assert_array_equal(bits(got_self), bits(self_values))
    assert finite and ref[3]
