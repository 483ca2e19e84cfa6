"""Routing of LightGBM trees with numeric splits, without a call into LightGBM.

``Booster.predict(X, pred_leaf=True)`` returns the leaf indices as float64, which the
adapter casts to int32; at 100,000 rows it is most of an influence fit. This kernel
routes a numeric input through the parsed trees with LightGBM's own decision rule and
writes int32 leaf indices directly. It covers trees without categorical splits and
without linear leaves (the adapter falls back to LightGBM's routing otherwise), and the
inputs LightGBM reads as a dense float matrix (numpy, or a pandas frame of plain numeric
columns when the model has no pandas categories).

LightGBM's decision at an internal node with threshold ``t`` and ``decision_type`` ``d``
(bit 1: default left, bits 2-3: missing type 0 None, 1 Zero, 2 NaN), for a feature
value ``x`` read as double:

* the predictor keeps only values with ``|x| > 1e-35f`` or NaN from a dense row, so a
  smaller nonzero value is read as ``0.0``;
* a NaN is read as ``0.0`` unless the missing type is NaN;
* missing type Zero and ``-1e-35f < x <= 1e-35f``, or missing type NaN and ``x`` NaN:
  the default direction;
* otherwise left iff ``x <= t``.

Thresholds are written to the model text with 17 significant digits, so the parsed
doubles are LightGBM's. The fit-time reconstruction check compares these leaf indices
with LightGBM's own ``pred_leaf`` on its covering sample of rows (see
:meth:`skinfluence._ensemble.TreeEnsemble.check_reconstruction`); tests compare them on
inputs with NaN, zeros, values within 1e-35 of zero, infinities and values equal to the
thresholds, for every missing type.

Flat arrays (all trees):

* ``node_offsets``: ``(T + 1,)`` int64, internal nodes of tree ``t`` are
  ``node_offsets[t] .. node_offsets[t + 1] - 1``;
* ``children``: ``(2 n_nodes,)`` int32, left and right child of every node, local to
  their tree (``c >= 0`` an internal node, ``c < 0`` leaf ``~c``);
* ``feature``: ``(n_nodes,)`` int32, the input column tested;
* ``threshold``: ``(n_nodes,)`` float64;
* ``decision_type``: ``(n_nodes,)`` int32.
"""

from typing import NamedTuple

import numpy as np

from .._kernels._jit import njit, njit_parallel, prange

#: LightGBM's kZeroThreshold, the float 1e-35f, as a double
ZERO_THRESHOLD = float(np.float32(1e-35))


class NumericTrees(NamedTuple):
    """The flat node arrays of trees with numeric splits only (module docstring);
    ``children[2 k]`` and ``children[2 k + 1]`` are the left and right child of node
    ``k`` (int32), ``feature`` and ``decision_type`` are int32."""

    node_offsets: np.ndarray
    children: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    decision_type: np.ndarray
    n_features: int


@njit(inline="always")
def _special(x, k, trees):
    """The child of node ``k`` for a NaN or a value within the zero threshold."""
    d = trees.decision_type[k]
    missing = (d >> 2) & 3
    if np.isnan(x):
        if missing != 2:
            x = 0.0
    else:  # |x| <= 1e-35f: dropped from the dense row, read as 0
        x = 0.0
    if (missing == 1 and x == 0.0) or (missing == 2 and np.isnan(x)):
        return trees.children[2 * k + (0 if d & 2 else 1)]
    return trees.children[2 * k + (0 if x <= trees.threshold[k] else 1)]


@njit(inline="always")
def _step(row, k, children, feature, threshold, trees):
    """The child of node ``k`` for the input row ``row`` (branch-free when the value is
    an ordinary number: then left iff ``x <= threshold``). The arrays of ``trees`` are
    passed unpacked: read through the tuple inside the loop, the kernel is 30 % slower."""
    x = np.float64(row[feature[k]])
    if abs(x) > ZERO_THRESHOLD:  # False for NaN
        return children[2 * k + np.int32(x > threshold[k])]
    return _special(x, k, trees)


@njit
def _route_rows(X, lo, hi, out, trees):
    children, feature, threshold = trees.children, trees.feature, trees.threshold
    for i in range(lo, hi):
        row = X[i]
        for t in range(trees.node_offsets.shape[0] - 1):
            base = trees.node_offsets[t]
            node = 0 if trees.node_offsets[t + 1] > base else -1
            while node >= 0:
                node = _step(row, base + node, children, feature, threshold, trees)
            out[i, t] = ~node


@njit_parallel
def lgb_apply(X, trees):
    """Local leaf index of every row of ``X`` in every tree: ``(n, T)`` int32.

    ``X``: float64 or float32 ``(n, n_features)``, C-contiguous. Parallel over blocks of
    four rows, which descend each tree together (four independent chains of loads keep
    the core busy where one row's next node waits on its last comparison); each block
    writes only its own output rows.
    """
    children, feature, threshold = trees.children, trees.feature, trees.threshold
    offsets = trees.node_offsets
    n = X.shape[0]
    n_trees = offsets.shape[0] - 1
    out = np.empty((n, n_trees), dtype=np.int32)
    n_blocks = n // 4
    for b in prange(n_blocks + 1):
        i = 4 * b
        if b == n_blocks:  # the last n % 4 rows
            _route_rows(X, i, n, out, trees)
            continue
        r0, r1, r2, r3 = X[i], X[i + 1], X[i + 2], X[i + 3]
        for t in range(n_trees):
            base = offsets[t]
            a0 = a1 = a2 = a3 = 0 if offsets[t + 1] > base else -1
            busy = a0 >= 0
            while busy:
                busy = False
                if a0 >= 0:
                    a0 = _step(r0, base + a0, children, feature, threshold, trees)
                    busy = True
                if a1 >= 0:
                    a1 = _step(r1, base + a1, children, feature, threshold, trees)
                    busy = True
                if a2 >= 0:
                    a2 = _step(r2, base + a2, children, feature, threshold, trees)
                    busy = True
                if a3 >= 0:
                    a3 = _step(r3, base + a3, children, feature, threshold, trees)
                    busy = True
            out[i, t], out[i + 1, t], out[i + 2, t], out[i + 3, t] = ~a0, ~a1, ~a2, ~a3
    return out


def numeric_trees(tree_arrays, n_features):
    """The :class:`NumericTrees` of parsed trees, or None when LightGBM's routing must
    be used (a categorical split, a linear tree, or a split on a feature outside
    ``n_features``)."""
    if tree_arrays["is_linear"].any():
        return None
    dtype = tree_arrays["decision_type"]
    feature = tree_arrays["feature"]
    if np.any(dtype & 1) or (feature.size and (feature.min() < 0 or feature.max() >= n_features)):
        return None
    node_offsets = np.zeros(len(tree_arrays["n_leaves"]) + 1, dtype=np.int64)
    np.cumsum(tree_arrays["n_leaves"] - 1, out=node_offsets[1:])
    children = np.empty(2 * len(feature), dtype=np.int32)
    children[0::2] = tree_arrays["left"]
    children[1::2] = tree_arrays["right"]
    return NumericTrees(
        node_offsets,
        children,
        np.ascontiguousarray(feature, dtype=np.int32),
        np.ascontiguousarray(tree_arrays["threshold"], dtype=np.float64),
        np.ascontiguousarray(dtype, dtype=np.int32),
        int(n_features),
    )


def dense_numeric(X, n_features):
    """``X`` as the C-contiguous float32/float64 matrix LightGBM reads, or None when
    its routing must be used (other input types, pandas columns that are not plain
    numbers, a column count other than ``n_features``)."""
    module = type(X).__module__.split(".")[0]
    if module == "pandas":
        dtypes = getattr(X, "dtypes", None)
        if dtypes is None or not all(isinstance(d, np.dtype) and d.kind in "biuf" for d in dtypes):
            return None
        X = X.to_numpy(dtype=np.float64)
    elif not isinstance(X, np.ndarray):
        return None
    if X.ndim != 2 or X.shape[1] != n_features or X.dtype.kind not in "biuf":
        return None
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    return np.ascontiguousarray(X)
