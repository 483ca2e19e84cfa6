"""Kernels of the representer and similarity methods (TREX, TreeSim, LeafSim, InputSim)
and of the randomised baselines.

Conventions: every parallel loop runs over independent output rows (query rows or
training rows) and writes only its own row, so results do not depend on the number of
threads. Objective codes and the per-row loss (probabilities clipped before the log)
are those of :mod:`skinfluence._kernels._objectives`.
"""

import numpy as np

from ._jit import njit, njit_parallel, prange
from ._objectives import VALUE, row_loss


@njit_parallel
def representer_loss_change(kv, alpha, f_query, y_query, objective, c, out):
    """TREX local influence ``out[e, i] = L(y_e, f_e - alpha_i k_ei) - L(y_e, f_e)``.

    ``kv`` (m, n) kernel values ``k(x_e, x_i)``; ``alpha`` (n, K); ``f_query`` (m, K)
    the surrogate's raw output at the queries; ``c`` the objective's parameter. ``out``
    (m, n) is overwritten; ``kv`` and ``out`` may be the same array. Parallel over
    query rows.
    """
    m, n = kv.shape
    K = alpha.shape[1]
    for e in prange(m):
        fe = f_query[e]
        ye = y_query[e]
        base = row_loss(objective, ye, fe, c)
        buf = np.empty(K)
        for i in range(n):
            k = kv[e, i]
            if objective == VALUE:
                out[e, i] = alpha[i, 0] * k
                continue
            for col in range(K):
                buf[col] = fe[col] - alpha[i, col] * k
            out[e, i] = row_loss(objective, ye, buf, c) - base


@njit_parallel
def representer_self_change(kdiag, alpha, f_train, y_train, objective, c):
    """TREX self-influence ``L(y_i, f_i - alpha_i k_ii) - L(y_i, f_i)`` (parallel over
    rows; ``c`` the objective's parameter)."""
    n, K = alpha.shape
    out = np.empty(n)
    for i in prange(n):
        buf = np.empty(K)
        for k in range(K):
            buf[k] = f_train[i, k] - alpha[i, k] * kdiag[i]
        if objective == VALUE:
            out[i] = alpha[i, 0] * kdiag[i]
        else:
            out[i] = row_loss(objective, y_train[i], buf, c) - row_loss(
                objective, y_train[i], f_train[i], c
            )
    return out


# ------------------------------------------------------------------ feature rows
@njit_parallel
def expand_leaf_entries(flat, entry_indptr, entry_cols, entry_vals):
    """CSR rows of a tree-kernel feature map: row ``r`` concatenates, tree by tree, the
    entries ``(entry_cols, entry_vals)[entry_indptr[j]:entry_indptr[j + 1]]`` of the
    flat leaf ``j = flat[r, t]`` it reaches.

    Returns ``indptr`` (n + 1, int64), ``indices`` (int32) and ``data`` (float64).
    """
    n, n_trees = flat.shape
    indptr = np.zeros(n + 1, dtype=np.int64)
    for r in prange(n):
        s = 0
        for t in range(n_trees):
            j = flat[r, t]
            s += entry_indptr[j + 1] - entry_indptr[j]
        indptr[r + 1] = s
    for r in range(n):
        indptr[r + 1] += indptr[r]
    indices = np.empty(indptr[n], dtype=np.int32)
    data = np.empty(indptr[n])
    for r in prange(n):
        pos = indptr[r]
        for t in range(n_trees):
            j = flat[r, t]
            for q in range(entry_indptr[j], entry_indptr[j + 1]):
                indices[pos] = entry_cols[q]
                data[pos] = entry_vals[q]
                pos += 1
    return indptr, indices, data


@njit_parallel
def squared_norms_from_leaves(flat, entry_indptr, entry_vals):
    """``||phi(x_r)||^2``, summed tree by tree in the order of the co-occurrence kernel
    (so that an identical pair of rows has a distance of exactly zero)."""
    n, n_trees = flat.shape
    out = np.empty(n)
    for r in prange(n):
        s = 0.0
        for t in range(n_trees):
            j = flat[r, t]
            for q in range(entry_indptr[j], entry_indptr[j + 1]):
                s += entry_vals[q] * entry_vals[q]
        out[r] = s
    return out


# ------------------------------------------------------------------ similarity
@njit_parallel
def from_gram(kv, q_sq, t_sq, measure, big, out):
    """Turn kernel values ``kv`` (m, n) into similarities in place of ``out``.

    ``measure``: 0 dot product (copy), 1 cosine ``k / (|a| |b|)`` (0 for a zero
    vector), 2 euclidean ``1 / ||a - b||`` with ``||a - b||^2 = |a|^2 + |b|^2 - 2k``
    clipped at 0; a distance not above ``1e-12 (|a|^2 + |b|^2)`` (rounding) counts as
    zero and maps to ``big``.
    """
    m, n = kv.shape
    for e in prange(m):
        a = q_sq[e]
        for i in range(n):
            k = kv[e, i]
            if measure == 0:
                out[e, i] = k
            elif measure == 1:
                d = np.sqrt(a) * np.sqrt(t_sq[i])
                out[e, i] = k / d if d > 0 else 0.0
            else:
                s = a + t_sq[i]
                d2 = s - 2.0 * k
                if d2 <= 1e-12 * s:
                    out[e, i] = big
                else:
                    out[e, i] = 1.0 / np.sqrt(d2)


@njit_parallel
def input_similarity(Xq, Xt, measure, big, out):
    """Similarity of raw feature vectors (m, n): 0 dot, 1 cosine, 2 euclidean
    (``1 / ||x_e - x_i||``, computed from the differences, exact zero -> ``big``).
    Parallel over query rows."""
    m, d = Xq.shape
    n = Xt.shape[0]
    for e in prange(m):
        qn = 0.0
        for c in range(d):
            qn += Xq[e, c] * Xq[e, c]
        for i in range(n):
            if measure == 2:
                s = 0.0
                for c in range(d):
                    diff = Xq[e, c] - Xt[i, c]
                    s += diff * diff
                out[e, i] = big if s == 0.0 else 1.0 / np.sqrt(s)
            else:
                s = 0.0
                tn = 0.0
                for c in range(d):
                    s += Xq[e, c] * Xt[i, c]
                    tn += Xt[i, c] * Xt[i, c]
                if measure == 0:
                    out[e, i] = s
                else:
                    den = np.sqrt(qn) * np.sqrt(tn)
                    out[e, i] = s / den if den > 0 else 0.0


@njit_parallel
def apply_sign(out, y_train, y_query, p_query, rule):
    """Multiply ``out`` (m, n) in place by the sign rule of :ref:`methods-similarity-sign`.

    ``rule`` 0 classification: +1 if ``y_i == y_e`` else -1. Rule 1 regression with
    label: ``sigma_e = +1 if p_e >= y_e``, ``sigma_i = +1 if y_i >= p_e``, +1 when they
    differ. Rule 2 label-free regression: +1 if ``y_i > p_e`` else -1.
    """
    m, n = out.shape
    for e in prange(m):
        ye = y_query[e]
        pe = p_query[e]
        se = 1.0 if pe >= ye else -1.0
        for i in range(n):
            yi = y_train[i]
            if rule == 0:
                s = 1.0 if yi == ye else -1.0
            elif rule == 1:
                si = 1.0 if yi >= pe else -1.0
                s = 1.0 if si != se else -1.0
            else:
                s = 1.0 if yi > pe else -1.0
            out[e, i] *= s


@njit_parallel
def leaf_class_global(train_leaves, y_train, q_leaves, y_query, offsets, leaf_weight, n_classes):
    """Global influence of a same-leaf kernel with the classification sign rule:
    ``out[i] = sum_t w_{t,l_i} (2 * #{e in leaf, y_e = y_i} - #{e in leaf})``.

    ``leaf_weight`` is the kernel value of a shared leaf (``1 / n^2`` for LeafSim).
    Per-(leaf, class) counts of the queries cost O(|V| T); the gather O(N T).
    """
    n, n_trees = train_leaves.shape
    m = q_leaves.shape[0]
    n_leaves_total = offsets[n_trees]
    counts = np.zeros((n_leaves_total, n_classes))
    for t in prange(n_trees):
        o = offsets[t]
        for e in range(m):
            counts[o + q_leaves[e, t], int(y_query[e])] += 1.0
    totals = np.zeros(n_leaves_total)
    for j in prange(n_leaves_total):
        s = 0.0
        for c in range(n_classes):
            s += counts[j, c]
        totals[j] = s
    out = np.zeros(n)
    for i in prange(n):
        s = 0.0
        yi = int(y_train[i])
        for t in range(n_trees):
            j = offsets[t] + train_leaves[i, t]
            s += leaf_weight[j] * (2.0 * counts[j, yi] - totals[j])
        out[i] = s
    return out


# -------------------------------------------------------------- counter-based RNG
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


@njit
def _mix(x):
    """splitmix64 finaliser (a bijection of uint64)."""
    x = x + _M1
    x = (x ^ (x >> np.uint64(30))) * _M2
    x = (x ^ (x >> np.uint64(27))) * _M3
    return x ^ (x >> np.uint64(31))


@njit
def _unit(x):
    """A uint64 -> a float in (0, 1) (53 random bits, never 0)."""
    return ((x >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit
def _pair_state(seed, key_train, key_query):
    return _mix(_mix(seed ^ key_query) ^ _mix(key_train + _M3))


@njit
def _pair_uniform(seed, key_train, key_query):
    return _unit(_pair_state(seed, key_train, key_query))


@njit
def _pair_normal(seed, key_train, key_query):
    s = _pair_state(seed, key_train, key_query)
    u1 = _unit(s)
    u2 = _unit(_mix(s))
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@njit_parallel
def pair_draws(seed, keys_train, keys_query, normal):
    """``out[e, i]``: a draw that is a fixed function of (seed, query key, training
    key): standard normal (``normal=True``) or Uniform(0, 1). Parallel over queries."""
    m = keys_query.shape[0]
    n = keys_train.shape[0]
    out = np.empty((m, n))
    for e in prange(m):
        for i in range(n):
            if normal:
                out[e, i] = _pair_normal(seed, keys_train[i], keys_query[e])
            else:
                out[e, i] = _pair_uniform(seed, keys_train[i], keys_query[e])
    return out


@njit_parallel
def diagonal_draws(seed, keys, normal):
    """The draws of :func:`pair_draws` at ``(i, i)``."""
    n = keys.shape[0]
    out = np.empty(n)
    for i in prange(n):
        if normal:
            out[i] = _pair_normal(seed, keys[i], keys[i])
        else:
            out[i] = _pair_uniform(seed, keys[i], keys[i])
    return out


@njit_parallel
def hash_rows(X, bits):
    """A 64-bit key per row of a float64 matrix ``X`` from the bit patterns ``bits``
    (``X.view(np.uint64)``) of its values; ``-0.0`` counts as ``0.0`` and every NaN as
    one NaN."""
    n, d = X.shape
    out = np.empty(n, dtype=np.uint64)
    for r in prange(n):
        h = np.uint64(0x243F6A8885A308D3) ^ np.uint64(d)
        for c in range(d):
            v = X[r, c]
            if v != v:
                b = np.uint64(0x7FF8000000000000)
            elif v == 0.0:
                b = np.uint64(0)
            else:
                b = bits[r, c]
            h = _mix(h ^ b)
        out[r] = h
    return out
