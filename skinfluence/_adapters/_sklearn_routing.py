"""Routing of scikit-learn HistGradientBoosting trees (no public ``apply``).

All trees of the model are flattened into one set of node arrays:

* ``tree_offsets``: ``(T + 1,)`` int64, the nodes of tree ``t`` are
  ``tree_offsets[t] .. tree_offsets[t + 1] - 1`` (global node indices, root first);
* ``left``, ``right``: ``(n_nodes,)`` int64, global indices of the children;
* ``feature``: ``(n_nodes,)`` int64, column of the preprocessed X tested at the node;
* ``threshold``: ``(n_nodes,)`` float64, numeric split: left iff ``x <= threshold``;
* ``missing_left``, ``is_leaf``, ``is_cat``: ``(n_nodes,)`` uint8 flags;
* ``bitset_row``: ``(n_nodes,)`` int64, row of ``left_bitsets`` of a categorical split;
* ``leaf_index``: ``(n_nodes,)`` int32, local leaf index of a leaf node (-1 otherwise);
* ``left_bitsets``: ``(n_splits, 8)`` uint32, raw categories going left per split;
* ``known_bitsets``: ``(n_cat_features, 8)`` uint32, known categories per categorical
  feature, and ``cat_map``: ``(n_features,)`` int64, feature -> row of ``known_bitsets``.

A bitset row holds 256 bits: category ``c`` is in it iff bit ``c % 32`` of word
``c // 32`` is set. A NaN goes to the missing direction; at a categorical split so do a
negative value, a value of 256 or more and a category that the feature's known-category
bitset does not contain; a known category goes left iff it is in the split's bitset.
"""

from typing import NamedTuple

import numpy as np

from .._kernels._jit import njit, njit_parallel, prange


class HGBNodes(NamedTuple):
    """The flattened node arrays of all trees (described in the module docstring)."""

    tree_offsets: np.ndarray
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    is_leaf: np.ndarray
    is_cat: np.ndarray
    bitset_row: np.ndarray
    leaf_index: np.ndarray
    left_bitsets: np.ndarray
    known_bitsets: np.ndarray
    cat_map: np.ndarray


def nodes_of(arrays):
    """The :class:`HGBNodes` of a dict holding (at least) an array of each field."""
    return HGBNodes(*(arrays[name] for name in HGBNodes._fields))


@njit
def _in_bitset(bitsets, row, cat):
    return (bitsets[row, cat // 32] >> np.uint32(cat % 32)) & np.uint32(1)


@njit(inline="always")
def _step(row, node, children, feature, threshold, nodes):
    """The next node of the input row ``row`` at internal node ``node``: branch-free
    at a numeric split on a number (left iff ``x <= threshold``), else by the rules of
    the module docstring. ``children[2 k]``, ``children[2 k + 1]``: the left and right
    child of node ``k``."""
    x = row[feature[node]]
    if not nodes.is_cat[node] and not np.isnan(x):
        return children[2 * node + np.int64(x > threshold[node])]
    go_missing = False
    go_left = False
    if np.isnan(x) or x < 0.0 or x >= 256.0:
        go_missing = True
    else:
        cat = np.int64(x)  # truncation, as the library's cast to uint8
        if _in_bitset(nodes.left_bitsets, nodes.bitset_row[node], cat):
            go_left = True
        elif not _in_bitset(nodes.known_bitsets, nodes.cat_map[feature[node]], cat):
            go_missing = True
    if go_missing:
        go_left = nodes.missing_left[node] != 0
    return children[2 * node + (0 if go_left else 1)]


@njit_parallel
def hgb_apply(X, nodes):
    """Local leaf index of every row of ``X`` in every tree: ``(n, T)`` int32.

    ``X`` is the model's preprocessed input, float64 ``(n, n_features)``. Parallel over
    blocks of four rows, which descend each tree together (four independent chains of
    loads keep the core busy where one row's next node waits on its last comparison:
    30 % faster than one row at a time); each block writes only its own output rows.
    """
    n_nodes = nodes.left.shape[0]
    children = np.empty(2 * n_nodes, dtype=np.int64)
    for k in range(n_nodes):
        children[2 * k] = nodes.left[k]
        children[2 * k + 1] = nodes.right[k]
    feature, threshold, is_leaf = nodes.feature, nodes.threshold, nodes.is_leaf
    leaf_index, offsets = nodes.leaf_index, nodes.tree_offsets
    n = X.shape[0]
    n_trees = offsets.shape[0] - 1
    out = np.empty((n, n_trees), dtype=np.int32)
    n_blocks = n // 4
    for b in prange(n_blocks + 1):
        i = 4 * b
        if b == n_blocks:  # the last n % 4 rows
            for r in range(i, n):
                row = X[r]
                for t in range(n_trees):
                    a = offsets[t]
                    while not is_leaf[a]:
                        a = _step(row, a, children, feature, threshold, nodes)
                    out[r, t] = leaf_index[a]
            continue
        r0, r1, r2, r3 = X[i], X[i + 1], X[i + 2], X[i + 3]
        for t in range(n_trees):
            a0 = a1 = a2 = a3 = offsets[t]
            busy = True
            while busy:
                busy = False
                if not is_leaf[a0]:
                    a0 = _step(r0, a0, children, feature, threshold, nodes)
                    busy = True
                if not is_leaf[a1]:
                    a1 = _step(r1, a1, children, feature, threshold, nodes)
                    busy = True
                if not is_leaf[a2]:
                    a2 = _step(r2, a2, children, feature, threshold, nodes)
                    busy = True
                if not is_leaf[a3]:
                    a3 = _step(r3, a3, children, feature, threshold, nodes)
                    busy = True
            out[i, t], out[i + 1, t] = leaf_index[a0], leaf_index[a1]
            out[i + 2, t], out[i + 3, t] = leaf_index[a2], leaf_index[a3]
    return out
