"""Brute-force oracles for the gradient methods, in numpy.

Every leaf of every tree is recomputed, tree by tree, from its rows at their re-trained
scores before the tree, by the model's leaf rule written out here independently of the
package: a Newton (or gradient) step, several of them scaled as given (CatBoost), the
``max_delta_step`` clamp; for multiclass models the per-column Newton step with the
library's hessian factor, or CatBoost's K x K Newton step. LeafInfluence must equal
central finite differences of this refit in a row's weight, and LeafRefit the refit
without the row.
"""

import numpy as np
from scipy.special import expit, log_softmax, softmax


def grad_hess(ens, y, F):
    """Gradient and hessian of the training loss at raw scores ``F``, as the library
    computes them (``ens.objective_param``: Poisson hessian offset, Tweedie power,
    pseudo-Huber slope, Huber threshold)."""
    a = ens.objective_param
    if ens.objective in ("binary", "cross_entropy"):
        p = expit(F)
        return p - y, p * (1 - p)
    if ens.objective == "squared_error":
        return F - y, np.ones_like(F)
    if ens.objective == "poisson":
        return np.exp(F) - y, np.exp(F + a)
    if ens.objective == "gamma":
        return 1 - y * np.exp(-F), y * np.exp(-F)
    if ens.objective == "tweedie":
        e1, e2 = np.exp((1 - a) * F), np.exp((2 - a) * F)
        return e2 - y * e1, (2 - a) * e2 - (1 - a) * y * e1
    if ens.objective == "pseudo_huber":
        r = F - y
        s = 1 + (r / a) ** 2
        return r / np.sqrt(s), s**-1.5
    if ens.objective == "huber":
        return np.clip(F - y, -a, a), np.ones_like(F)
    raise ValueError(f"no oracle for objective {ens.objective!r}")


def loss(ens, y, F):
    """The query loss (unclipped) of the model's objective."""
    a = ens.objective_param
    if ens.objective == "multiclass":
        return -log_softmax(F, axis=1)[np.arange(len(y)), np.asarray(y).astype(int)]
    if ens.objective in ("binary", "cross_entropy"):
        return y * np.logaddexp(0.0, -F) + (1 - y) * np.logaddexp(0.0, F)
    if ens.objective == "squared_error":
        return 0.5 * (F - y) ** 2
    if ens.objective == "poisson":
        return np.exp(F) - y * F
    if ens.objective == "gamma":
        return y * np.exp(-F) + F
    if ens.objective == "tweedie":
        return -y * np.exp((1 - a) * F) / (1 - a) + np.exp((2 - a) * F) / (2 - a)
    if ens.objective == "pseudo_huber":
        return a**2 * (np.sqrt(1 + ((F - y) / a) ** 2) - 1)
    if ens.objective == "huber":
        r = np.abs(F - y)
        return np.where(r <= a, 0.5 * r**2, a * (r - 0.5 * a))
    raise ValueError(f"no oracle for objective {ens.objective!r}")


def tree_values(ens, leaf_col, y, w, F, t, scales=None):
    """The shrunk values of the leaves of tree ``t`` from all rows (``leaf_col``: their
    leaf in the tree) at scores ``F``; ``scales``: the scale of each step (default:
    ``leaf_steps`` full steps)."""
    o, L = ens.leaf_offsets[t], ens.n_leaves[t]
    u = np.zeros(L)
    for a in np.ones(ens.leaf_steps) if scales is None else scales:
        g, h = grad_hess(ens, y, F + u[leaf_col])
        d = np.ones_like(h) if ens.leaf_step_method == "gradient" else h
        den = np.bincount(leaf_col, w * d, L) + ens.l2[o : o + L]
        G = np.bincount(leaf_col, w * g, L)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(den != 0, -G / np.where(den != 0, den, 1.0), 0.0)
        if ens.max_delta_step > 0:
            step = np.clip(step, -ens.max_delta_step, ens.max_delta_step)
        u += a * step
    return ens.learning_rates[t] * u


def _multiclass_round(ens, leaves, Y, w, F, b, values):
    """Refit the K trees of round ``b`` at scores ``F`` (one-hot labels ``Y``)."""
    K = ens.n_outputs
    P = softmax(F, axis=1)
    G = w[:, None] * (P - Y)
    if ens.full_hessian:  # CatBoost: one K-vector leaf per leaf of the shared routing
        col = leaves[:, b * K]
        o = [ens.leaf_offsets[b * K + k] for k in range(K)]
        for l in range(ens.n_leaves[b * K]):
            rows = col == l
            H = np.einsum("j,jk,jm->km", w[rows], P[rows], -P[rows])
            H[np.diag_indices(K)] += (w[rows, None] * P[rows]).sum(axis=0)
            u = -np.linalg.solve(H + ens.l2[o[0] + l] * np.eye(K), G[rows].sum(axis=0))
            for k in range(K):
                values[o[k] + l] = ens.learning_rates[b * K + k] * u[k]
        return
    for k in range(K):
        t = b * K + k
        o, L, col = ens.leaf_offsets[t], ens.n_leaves[t], leaves[:, t]
        if ens.constant_tree[t]:
            continue
        h = ens.multiclass_factor * P[:, k] * (1 - P[:, k])
        den = np.bincount(col, w * h, L) + ens.l2[o : o + L]
        values[o : o + L] = -ens.learning_rates[t] * np.bincount(col, G[:, k], L) / den


def _refit_multiclass(ens, leaves, y, w):
    """``y``: class indices, or ``(n, K)`` soft one-hot labels."""
    K = ens.n_outputs
    Y = y if np.ndim(y) == 2 else np.eye(K)[y.astype(int)]
    F = np.tile(ens.bias, (len(y), 1))
    values = ens.leaf_values.copy()
    for b in range(ens.n_rounds):
        _multiclass_round(ens, leaves, Y, w, F, b, values)
        for k in range(K):
            t = b * K + k
            F[:, k] += values[ens.leaf_offsets[t] + leaves[:, t]]
    return values


def refit(ens, leaves, y, w, scales=None):
    """Every leaf recomputed tree by tree with row weights ``w`` (flat values); tree
    ``t`` takes the steps scaled by ``scales[t]`` (default: full steps)."""
    if ens.n_outputs > 1:
        return _refit_multiclass(ens, leaves, y, w)
    F = np.full(len(y), ens.bias[0])
    values = np.zeros(ens.n_leaves_total)
    for t in range(ens.n_trees):
        o = ens.leaf_offsets[t]
        if ens.constant_tree[t]:
            values[o : ens.leaf_offsets[t + 1]] = ens.leaf_values[o : ens.leaf_offsets[t + 1]]
        else:
            sc = None if scales is None else scales[t]
            values[o : ens.leaf_offsets[t + 1]] = tree_values(ens, leaves[:, t], y, w, F, t, sc)
        F = F + values[o + leaves[:, t]]
    return values


def scores(ens, values, leaves):
    """Raw scores ``(n, K)`` (``(n,)`` for one column) of rows with ``leaves`` under
    the flat leaf ``values``."""
    per_tree = values[ens.flat_leaves(leaves)]
    if ens.n_outputs == 1:
        return ens.bias[0] + per_tree.sum(axis=1)
    return ens.bias + per_tree.reshape(len(leaves), -1, ens.n_outputs).sum(axis=1)


def kept_scales(ens, leaves, y, w):
    """The scales of the steps each tree kept, as the package found them (CatBoost's
    backtracking), or None for full steps; checked here: the oracle's replay with them
    must reproduce the stored leaves."""
    if ens.leaf_steps == 1:
        return None
    from skinfluence._leaf_rule import leaf_terms

    terms = leaf_terms(ens, leaves, y, w, terms=False)
    scales = [sc[:k] for sc, k in zip(terms.step_scales, terms.steps_taken)]
    np.testing.assert_allclose(refit(ens, leaves, y, w, scales), ens.leaf_values, atol=1e-9)
    return scales


def finite_difference(ens, leaves, y, w, i, q_leaves, yq, scales=None, eps=1e-5):
    """``-w_i dL_e/dw_i`` of the queries by a central difference of the refit."""
    up, down = w.copy(), w.copy()
    up[i] *= 1 + eps
    down[i] *= 1 - eps
    Lu = loss(ens, yq, scores(ens, refit(ens, leaves, y, up, scales), q_leaves))
    Ld = loss(ens, yq, scores(ens, refit(ens, leaves, y, down, scales), q_leaves))
    return (Ld - Lu) / (2 * eps)


def removal(ens, leaves, y, w, i, q_leaves, yq, scales=None):
    """The queries' loss change when row ``i`` is removed and every leaf refitted."""
    w0 = w.copy()
    w0[i] = 0.0
    before = loss(ens, yq, scores(ens, ens.leaf_values, q_leaves))
    after = loss(ens, yq, scores(ens, refit(ens, leaves, y, w0, scales), q_leaves))
    return after - before


def leaf_derivatives(ens, leaves, y, w, i, scales=None, eps=1e-6):
    """``-w_i dv_t/dw_i`` of row ``i``'s leaf in every tree ``t`` with every row's score
    held at the stored trajectory (BoostIn's exact derivative), by central
    differences of the leaves recomputed with ``w_i`` scaled by ``1 +- eps``."""
    up, down = w.copy(), w.copy()
    up[i] *= 1 + eps
    down[i] *= 1 - eps
    out = np.zeros(ens.n_trees)
    K = ens.n_outputs
    stored = ens.leaf_values[ens.flat_leaves(leaves)]  # (n, T)
    Y = np.eye(K)[np.asarray(y).astype(int)] if K > 1 else None
    for b in range(ens.n_rounds):
        cols = slice(b * K, (b + 1) * K)
        before = stored[:, : b * K].reshape(len(y), b, K).sum(axis=1) + ens.bias
        pair = []
        for ww in (down, up):
            vals = ens.leaf_values.copy()
            if K > 1:
                _multiclass_round(ens, leaves, Y, ww, before, b, vals)
            elif not ens.constant_tree[b]:
                sc = None if scales is None else scales[b]
                o = ens.leaf_offsets[b]
                vals[o : ens.leaf_offsets[b + 1]] = tree_values(
                    ens, leaves[:, b], y, ww, before[:, 0], b, sc
                )
            pair.append(vals[ens.flat_leaves(leaves[i : i + 1])[0, cols]])
        out[cols] = (pair[0] - pair[1]) / (2 * eps)
    return out


def update_rows(J, leaves, t, n_leaves, i, update_set):
    """The rows of LeafInfluence's update set in tree ``t`` for removed row ``i``: all
    (-1), ``i`` only (0), or ``i`` and the rows of the ``update_set`` leaves with the
    largest summed ``|J|`` (ties toward the lower leaf id)."""
    U = np.arange(len(leaves)) == i
    if update_set == -1:
        U[:] = True
    elif update_set > 0:
        sums = np.array([np.abs(J[leaves[:, t] == leaf]).sum() for leaf in range(n_leaves)])
        top = np.lexsort((np.arange(n_leaves), -sums))[:update_set]
        U |= np.isin(leaves[:, t], top)
    return U


# ------------------------------------------------------------------ label edits
def moved_labels(ens, y, i, target, tau):
    """Labels with row ``i``'s moved by ``tau`` toward ``target``: floats for one
    raw-score column, soft one-hot rows ``(n, K)`` for multiclass."""
    if ens.n_outputs > 1:
        eye = np.eye(ens.n_outputs)
        Y = eye[np.asarray(y).astype(int)]
        Y[i] += tau * (eye[int(target)] - Y[i])
        return Y
    out = np.asarray(y, dtype=np.float64).copy()
    out[i] += tau * (target - out[i])
    return out


def _unit_values(ens, leaves, labels, w, F, b, k, scales):
    """Flat indices and recomputed values of the leaves of one refit unit at scores
    ``F`` ``(n, K)``: tree ``b*K + k`` (per-column leaves) or the K trees of round
    ``b`` (``k=None``, K x K leaves)."""
    K = ens.n_outputs
    if k is None:
        vals = ens.leaf_values.copy()
        _multiclass_round(ens, leaves, labels, w, F, b, vals)
        lo, hi = ens.leaf_offsets[b * K], ens.leaf_offsets[(b + 1) * K]
        return np.arange(lo, hi), vals[lo:hi]
    t = b * K + k
    o, L, col = ens.leaf_offsets[t], ens.n_leaves[t], leaves[:, t]
    idx = np.arange(o, o + L)
    if K == 1:
        sc = None if scales is None else scales[t]
        return idx, tree_values(ens, col, labels, w, F[:, 0], t, sc)
    P = softmax(F, axis=1)
    g = P[:, k] - labels[:, k]
    h = ens.multiclass_factor * P[:, k] * (1 - P[:, k])
    den = np.bincount(col, w * h, L) + ens.l2[o : o + L]
    return idx, -ens.learning_rates[t] * np.bincount(col, w * g, L) / den


def _edit_update_rows(J, col, n_leaves, i, update_set):
    """LeafInfluence's update set of a tree (or round) for edited row ``i`` from the
    score derivatives ``J`` ``(n, K)``; asserts that the top-k choice is not decided
    by the rounding of the finite differences."""
    U = np.arange(len(col)) == i
    if update_set == -1:
        U[:] = True
    elif update_set > 0:
        sums = np.bincount(col, np.abs(J).sum(axis=1), n_leaves)
        order = np.lexsort((np.arange(n_leaves), -sums))
        if update_set < n_leaves:
            a, b = sums[order[update_set - 1]], sums[order[update_set]]
            assert a == b or a - b > 1e-6 * a, "top-k choice within rounding"
        U |= np.isin(col, order[:update_set])
    return U


def label_edit_derivative(ens, leaves, y, w, i, target, update_set=-1, scales=None, eps=1e-5):
    """``d v / d tau`` ``(n_leaves_total,)`` of every leaf when row ``i``'s label moves
    by ``tau`` toward ``target``, by central differences (``tau = +-eps``) of the
    fixed-structure refit in which each tree (each round for K x K leaves) sees the rows
    of LeafInfluence's update set at their moved scores and the other rows at their
    stored scores: all rows (-1), row ``i`` only (0), or ``i`` and the rows of the
    ``update_set`` leaves with the largest summed ``|dF/dtau|`` so far (ties toward the
    lower leaf id). Every leaf's change is taken against its recomputation at the
    stored scores and labels, so the float64 recomputation of the stored (float32)
    leaves cancels. Per-column multiclass trees of one round are fitted at the scores
    before the round; the top-k leaves of a tree are chosen from the derivatives as
    updated by every earlier tree."""
    n, K = len(leaves), ens.n_outputs
    stored = ens.leaf_values[ens.flat_leaves(leaves)]
    base = moved_labels(ens, y, i, target, 0.0)
    runs = [moved_labels(ens, y, i, target, s * eps) for s in (1, -1)]
    delta = np.zeros((2, n, K))
    dv = np.zeros((2, ens.n_leaves_total))
    for b in range(ens.n_rounds):
        F = ens.bias + stored[:, : b * K].reshape(n, b, K).sum(axis=1)
        start = delta.copy()
        for k in [None] if ens.full_hessian else range(K):
            t0 = b * K + (0 if k is None else k)
            if ens.constant_tree[t0]:
                continue
            col = leaves[:, t0]
            J = (delta[0] - delta[1]) / (2 * eps)
            U = _edit_update_rows(J, col, ens.n_leaves[t0], i, update_set)
            idx, v0 = _unit_values(ens, leaves, base, w, F, b, k, scales)
            L = ens.n_leaves[t0]
            for r in range(2):
                Fr = F + np.where(U[:, None], start[r], 0.0)
                change = _unit_values(ens, leaves, runs[r], w, Fr, b, k, scales)[1] - v0
                dv[r, idx] = change
                for c, kk in enumerate([k] if k is not None else range(K)):
                    delta[r, U, kk] += change[c * L + col[U]] if k is None else change[col[U]]
    return (dv[0] - dv[1]) / (2 * eps)


def query_edit(ens, D, q_leaves, gq):
    """``gq . dF_q`` ``(m,)``: the queries' first-order loss change from the leaf
    derivatives ``D`` and their final loss gradients ``gq`` ``(m, K)``."""
    per_tree = D[ens.flat_leaves(q_leaves)]
    dF = per_tree.reshape(len(q_leaves), -1, ens.n_outputs).sum(axis=1)
    return (gq * dF).sum(axis=1)
