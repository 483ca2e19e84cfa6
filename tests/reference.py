"""Slow, obviously-correct numpy references of the spec's formulas (test oracles).

Written independently of the package's kernels: plain loops over rounds and dense
masks, float64 throughout.
"""

import numpy as np
from scipy.special import expit, softmax


def grad_hess(objective, y, F, c=1.0):
    """g, h of every column at raw scores F (n, K)."""
    if objective == "squared_error":
        return F - y[:, None], np.ones_like(F)
    if objective == "value":
        return -np.ones_like(F), np.zeros_like(F)
    if objective == "binary":
        p = expit(F)
        return p - y[:, None], p * (1 - p)
    p = softmax(F, axis=1)
    onehot = np.eye(F.shape[1])[y.astype(int)]
    return p - onehot, c * p * (1 - p)


def replay(ens, leaves, y, objective=None):
    """g, h (n, T) at the scores before each round; final raw scores (n, K)."""
    objective = objective or ens.objective
    n = len(leaves)
    K = ens.n_outputs
    F = np.tile(ens.bias, (n, 1)).astype(float)
    g = np.zeros((n, ens.n_trees))
    h = np.zeros((n, ens.n_trees))
    for b in range(ens.n_rounds):
        gb, hb = grad_hess(objective, y, F, ens.multiclass_factor)
        for k in range(K):
            t = b * K + k
            g[:, t] = gb[:, k]
            h[:, t] = hb[:, k]
        for k in range(K):
            t = b * K + k
            F[:, k] += ens.leaf_values[ens.leaf_offsets[t] + leaves[:, t]]
    return g, h, F


def boostin_derivatives(ens, leaves, y, w=None, derivative="published", scaling="none"):
    """delta[i, t] of spec 4.1/4.2 by dense per-leaf masks."""
    n = len(leaves)
    w = np.ones(n) if w is None else w
    g, h, _ = replay(ens, leaves, y)
    delta = np.zeros((n, ens.n_trees))
    for t in range(ens.n_trees):
        if ens.constant_tree[t]:
            continue
        eta = ens.learning_rates[t]
        for leaf in range(ens.n_leaves[t]):
            mask = leaves[:, t] == leaf
            if not mask.any():
                continue
            j = ens.leaf_offsets[t] + leaf
            beta = (w[mask] * h[mask, t]).sum() + ens.l2[j]
            v = ens.leaf_values[j] if derivative == "published" else ens.leaf_values[j] / eta
            d = eta * w[mask] * (g[mask, t] + v * h[mask, t]) / beta
            if scaling == "inverse_size":
                d = d / mask.sum()
            elif scaling == "inverse_size_squared":
                d = d / mask.sum() ** 2
            delta[mask, t] = d
    return delta


def boostin_matrix(
    ens,
    train_leaves,
    y,
    query_leaves,
    query_y,
    w=None,
    derivative="published",
    scaling="none",
    objective=None,
):
    """Influence (m, n): per query, a dense (n, T) same-leaf mask times derivatives."""
    delta = boostin_derivatives(ens, train_leaves, y, w, derivative, scaling)
    gq, _, _ = replay(ens, query_leaves, query_y, objective)
    out = np.zeros((len(query_leaves), len(train_leaves)))
    for e in range(len(query_leaves)):
        mask = train_leaves == query_leaves[e][None, :]
        out[e] = (mask * delta * gq[e][None, :]).sum(axis=1)
    return out


def encode_labels(exp, y):
    """Labels as the fitted explainer ``exp`` encodes them: floats, or class indices."""
    if exp.ensemble_.objective == "squared_error":
        return np.asarray(y, float)
    return np.searchsorted(exp.classes_, y).astype(float)


def assert_top_k(exp, Xq, yq, M, k):
    """``exp.top_k`` gives each query's k largest entries of its row of ``M``
    (ties: lower training index first)."""
    idx, val = exp.top_k(Xq, yq, k=k)
    for r in range(len(Xq)):
        order = np.lexsort((np.arange(M.shape[1]), -M[r]))[:k]
        np.testing.assert_array_equal(idx[r], order)
        np.testing.assert_allclose(val[r], M[r, order])


def class_index(ens, y, target_dtype=np.float64):
    """Labels as ``ens.replay`` takes them: class labels as (float) indices into
    ``ens.classes``; regression targets, and the labels of a model that records no
    classes (a raw booster: they are class indices already), as floats, rounded through
    ``target_dtype`` first (CatBoost stores its targets as float32)."""
    if ens.classes is None:
        return np.asarray(y, dtype=target_dtype).astype(np.float64)
    idx = np.searchsorted(ens.classes, y)
    np.testing.assert_array_equal(ens.classes[idx], y)
    return idx.astype(np.float64)
