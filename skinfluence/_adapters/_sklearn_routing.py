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


@njit
def _leaf_of_row(X, i, root, nodes):
    left, right, feature, threshold = nodes.left, nodes.right, nodes.feature, nodes.threshold
    missing_left, is_leaf, is_cat = nodes.missing_left, nodes.is_leaf, nodes.is_cat
    bitset_row, left_bitsets = nodes.bitset_row, nodes.left_bitsets
    known_bitsets, cat_map = nodes.known_bitsets, nodes.cat_map
    node = root
    while not is_leaf[node]:
        x = X[i, feature[node]]
        go_missing = False
        go_left = False
        if np.isnan(x):
            go_missing = True
        elif is_cat[node]:
            if x < 0.0 or x >= 256.0:
                go_missing = True
            else:
                cat = np.int64(x)  # truncation, as the library's cast to uint8
                if _in_bitset(left_bitsets, bitset_row[node], cat):
                    go_left = True
                elif not _in_bitset(known_bitsets, cat_map[feature[node]], cat):
                    go_missing = True
        else:
            go_left = x <= threshold[node]
        if go_missing:
            go_left = missing_left[node] != 0
        node = left[node] if go_left else right[node]
    return node


@njit_parallel
def hgb_apply(X, nodes):
    """Local leaf index of every row of ``X`` in every tree: ``(n, T)`` int32.

    ``X`` is the model's preprocessed input, float64 ``(n, n_features)``. Parallel over
    rows; each row writes only its own output row.
    """
    n = X.shape[0]
    n_trees = nodes.tree_offsets.shape[0] - 1
    out = np.empty((n, n_trees), dtype=np.int32)
    for i in prange(n):
        for t in range(n_trees):
            node = _leaf_of_row(X, i, nodes.tree_offsets[t], nodes)
            out[i, t] = nodes.leaf_index[node]
    return out
