"""Brute-force oracles for the gradient methods on one-column models (K = 1), in numpy.

Every leaf of every tree is recomputed, tree by tree, from its rows at their re-trained
scores before the tree, by the model's leaf rule written out here independently of the
package: a Newton (or gradient) step, several of them scaled as given (CatBoost), and
the ``max_delta_step`` clamp. LeafInfluence must equal central finite differences of
this refit in a row's weight, and LeafRefit the refit without the row.
"""

import numpy as np
from scipy.special import expit


def grad_hess(objective, y, F):
    """Gradient and hessian of the training loss at raw scores ``F``."""
    if objective == "binary":
        p = expit(F)
        return p - y, p * (1 - p)
    if objective == "squared_error":
        return F - y, np.ones_like(F)
    raise ValueError(f"no oracle for objective {objective!r}")


def loss(objective, y, F):
    """The query loss (unclipped)."""
    if objective == "binary":
        return np.logaddexp(0.0, np.where(y == 1, -F, F))
    if objective == "squared_error":
        return 0.5 * (F - y) ** 2
    raise ValueError(f"no oracle for objective {objective!r}")


def tree_values(ens, leaf_col, y, w, F, t, scales=None):
    """The shrunk values of the leaves of tree ``t`` from all rows (``leaf_col``: their
    leaf in the tree) at scores ``F``; ``scales``: the scale of each step (default:
    ``leaf_steps`` full steps)."""
    o, L = ens.leaf_offsets[t], ens.n_leaves[t]
    u = np.zeros(L)
    for a in np.ones(ens.leaf_steps) if scales is None else scales:
        g, h = grad_hess(ens.objective, y, F + u[leaf_col])
        d = np.ones_like(h) if ens.leaf_step_method == "gradient" else h
        den = np.bincount(leaf_col, w * d, L) + ens.l2[o : o + L]
        G = np.bincount(leaf_col, w * g, L)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(den != 0, -G / np.where(den != 0, den, 1.0), 0.0)
        if ens.max_delta_step > 0:
            step = np.clip(step, -ens.max_delta_step, ens.max_delta_step)
        u += a * step
    return ens.learning_rates[t] * u


def refit(ens, leaves, y, w, scales=None):
    """Every leaf recomputed tree by tree with row weights ``w`` (flat values); tree
    ``t`` takes the steps scaled by ``scales[t]`` (default: full steps)."""
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
    """Raw scores of rows with ``leaves`` under the flat leaf ``values``."""
    return ens.bias[0] + values[ens.flat_leaves(leaves)].sum(axis=1)


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
    Lu = loss(ens.objective, yq, scores(ens, refit(ens, leaves, y, up, scales), q_leaves))
    Ld = loss(ens.objective, yq, scores(ens, refit(ens, leaves, y, down, scales), q_leaves))
    return (Ld - Lu) / (2 * eps)


def removal(ens, leaves, y, w, i, q_leaves, yq, scales=None):
    """The queries' loss change when row ``i`` is removed and every leaf refitted."""
    w0 = w.copy()
    w0[i] = 0.0
    before = loss(ens.objective, yq, scores(ens, ens.leaf_values, q_leaves))
    after = loss(ens.objective, yq, scores(ens, refit(ens, leaves, y, w0, scales), q_leaves))
    return after - before
