"""The leaf rule: how each stored leaf value follows from the training rows, and the
derivative terms the gradient-based methods need (:ref:`methods-leaf-rule`).

Every gradient-based method (BoostIn, LeafInfluence, LeafRefit) and the leaf-model check
read the leaves through :func:`leaf_terms`. The rule of an ensemble is

* one Newton step ``v = -eta G / (H + lambda)`` (every library's default);
* its clamp ``|v / eta| <= max_delta_step`` when the model sets one: a clamped leaf is
  locally constant, so its derivatives are exactly 0;
* ``leaf_steps = k > 1`` Newton or gradient steps (CatBoost's
  ``leaf_estimation_iterations`` and ``leaf_estimation_method``), differentiated through
  the steps by :mod:`skinfluence._kernels._leaf_rule`. When the library halves a step
  that does not lower its loss (``leaf_step_backtracking``: CatBoost's
  ``leaf_estimation_backtracking``, whose loss uses bootstrap weights that cannot be
  recomputed), the steps it kept and their scales are found by matching the stored
  leaves; the leaf check verifies them, and the decisions are locally constant, so the
  derivatives through the kept steps are exact.

The derivative terms are returned in the single-step form: the change of the unshrunk
leaf value ``vbar`` of tree ``t`` when row ``j``'s weight or raw score moves is
``-(source[j, t]) / beta`` and ``-(propagation[j, t]) / beta`` per unit, so each method
multiplies by the same coefficient ``coef = -eta / beta``.
"""

from typing import NamedTuple

import numpy as np

from ._kernels import _leaf_rule, _trees

__all__ = ["LeafTerms", "leaf_terms", "recomputed_values", "describe_rule"]


class LeafTerms(NamedTuple):
    """The training replayed on the stored trees, and the leaf derivatives."""

    #: ``(n,)`` sample weights (ones without)
    weights: np.ndarray
    #: ``(n, T)`` gradients, hessians and (when asked) third derivatives at the scores
    #: before each tree's round
    gradients: np.ndarray
    hessians: np.ndarray
    kappa: np.ndarray
    #: ``(n, K)`` final raw scores
    final_scores: np.ndarray
    #: ``(n_leaves_total,)`` weighted gradient and hessian sums of each leaf
    gradient_sums: np.ndarray
    hessian_sums: np.ndarray
    #: ``(n_leaves_total,)`` the denominator ``H + lambda`` of the (first) step
    beta: np.ndarray
    #: ``(n_leaves_total,)`` ``-eta / beta``; 0 where the leaf has no derivative
    #: (constant trees, clamped leaves, ``beta <= 0``)
    coef: np.ndarray
    #: ``(n_leaves_total,)`` the leaf values the rule recomputes (shrunk)
    recomputed: np.ndarray
    #: ``(n, T)`` derivative terms (module docstring); None unless asked
    source: np.ndarray | None
    propagation: np.ndarray | None
    #: ``(T,)`` steps each tree's leaves kept, and ``(T, k)`` their scales (empty for
    #: one Newton step per leaf)
    steps_taken: np.ndarray
    step_scales: np.ndarray


def describe_rule(ens):
    """The leaf rule of an ensemble in words, for messages."""
    if ens.leaf_steps > 1:
        kind = "gradient" if ens.leaf_step_method == "gradient" else "Newton"
        upto = "up to " if ens.leaf_step_backtracking else ""
        return f"{upto}{ens.leaf_steps} {kind} steps per leaf"
    if ens.leaf_step_method == "gradient":
        return "one gradient step -eta*G/(sum of weights + lambda)"
    text = "one Newton step -eta*G/(H+lambda)"
    if ens.max_delta_step > 0:
        text += f" clamped to +-eta*{ens.max_delta_step:g}"
    return text


def _weights(n, sample_weight):
    return np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)


def _scores_before(ens, leaves):
    """Each row's raw score before each tree's round, ``(n, T)`` (one column, K = 1)."""
    vals = ens.leaf_values[ens.flat_leaves(leaves)]
    return np.ascontiguousarray(np.cumsum(vals, axis=1) - vals + ens.bias[0])


def _single_step(ens, leaves, y, g, h, kap, w, beta, G, want_terms):
    """Recomputed values, clamp mask and terms of one Newton step per leaf."""
    eta = np.repeat(ens.learning_rates, ens.n_leaves)
    with np.errstate(divide="ignore", invalid="ignore"):
        v_hat = np.where(beta > 0, -eta * G / beta, 0.0)
    clamped = np.zeros(len(beta), dtype=bool)
    mds = float(ens.max_delta_step)
    if mds > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(beta > 0, -G / beta, 0.0)
        clamped = np.abs(step) > mds
        v_hat = np.where(clamped, eta * np.clip(step, -mds, mds), v_hat)
    if not want_terms:
        return v_hat, clamped, None, None
    vbar = ens.unshrunk_values[ens.flat_leaves(leaves)]
    source = np.ascontiguousarray(g + vbar * h)
    if kap.size == 0:
        return v_hat, clamped, source, None
    # d(g + vbar h)/dF: the gradient's own derivative (its slope), not the library's
    # hessian where they differ (Poisson with a hessian offset, Huber)
    slopes = ens.gradient_slopes(leaves, y, h)
    propagation = np.ascontiguousarray(w[:, None] * (slopes + vbar * kap))
    return v_hat, clamped, source, propagation


def _multi_step(ens, leaves, y, w):
    """Recomputed values, beta and terms of leaves computed by several steps."""
    if ens.n_outputs != 1:
        raise ValueError(
            f"{ens.describe()}: several leaf steps per tree are supported for one "
            "raw-score column only"
        )
    values, beta, source, propagation, taken, scales = _leaf_rule.multi_step_terms(
        np.ascontiguousarray(leaves, dtype=np.int32),
        ens.leaf_offsets,
        _scores_before(ens, leaves),
        np.ascontiguousarray(np.zeros(len(leaves)) if y is None else y, dtype=np.float64),
        np.ascontiguousarray(w),
        ens.objective_code,
        ens.kernel_param,
        ens.l2,
        int(ens.leaf_steps),
        ens.leaf_step_method == "gradient",
        ens.constant_tree,
        ens.leaf_values,
        ens.learning_rates,
        bool(ens.leaf_step_backtracking) and ens.leaf_steps > 1,
    )
    eta = np.repeat(ens.learning_rates, ens.n_leaves)
    return eta * values, beta, source, propagation, (taken, scales)


def leaf_terms(ens, leaves, y, sample_weight=None, *, kappa=False, terms=True):
    """Replay the training and compute the leaf rule's values and derivative terms.

    Parameters
    ----------
    ens : TreeEnsemble
        A gradient-boosted ensemble.
    leaves : ndarray of shape (n, n_trees)
    y : ndarray of shape (n,)
        Labels (class indices for classifiers).
    sample_weight : ndarray of shape (n,), optional
    kappa : bool
        Also replay the third derivatives (needed for ``propagation``).
    terms : bool
        Compute ``source`` and ``propagation``.

    Returns
    -------
    LeafTerms
    """
    n = len(leaves)
    w = _weights(n, sample_weight)
    multi = ens.leaf_steps > 1 or ens.leaf_step_method == "gradient"
    g, h, kap, final = ens.replay(leaves, y, kappa=kappa and not multi)
    # unit weights: g * 1 is g itself (no (n, T) copies)
    gw = g if sample_weight is None else np.ascontiguousarray(g * w[:, None])
    hw = h if sample_weight is None else np.ascontiguousarray(h * w[:, None])
    G = _trees.leaf_sums(leaves, ens.leaf_offsets, gw)
    H = _trees.leaf_sums(leaves, ens.leaf_offsets, hw)
    if multi:
        v_hat, beta, source, propagation, taken = _multi_step(ens, leaves, y, w)
        clamped = np.zeros(len(beta), dtype=bool)
        if not kappa:
            propagation = None
    else:
        beta = H + ens.l2
        v_hat, clamped, source, propagation = _single_step(
            ens, leaves, y, g, h, kap, w, beta, G, terms
        )
        taken = (np.zeros(0, dtype=np.int64), np.zeros((0, 0)))
    eta = np.repeat(ens.learning_rates, ens.n_leaves)
    live = (beta > 0) & ~np.repeat(ens.constant_tree, ens.n_leaves) & ~clamped
    coef = np.zeros_like(beta)
    coef[live] = -eta[live] / beta[live]
    if not terms:
        source = propagation = None
    return LeafTerms(w, g, h, kap, final, G, H, beta, coef, v_hat, source, propagation, *taken)


def recomputed_values(ens, leaves, y, sample_weight=None, terms=None):
    """The leaf values the rule recomputes from the given rows (shrunk), ``G`` and ``H``;
    read from ``terms`` (:func:`leaf_terms` of the same rows) when given."""
    t = leaf_terms(ens, leaves, y, sample_weight, terms=False) if terms is None else terms
    return t.recomputed, t.gradient_sums, t.hessian_sums


def _relabelled_step_changes(ens, leaves, y, targets, sample_weight):
    """:func:`relabelled_changes` of leaves computed by several steps."""
    terms = leaf_terms(ens, leaves, y, sample_weight, terms=False)
    change = _leaf_rule.relabelled_step_changes(
        np.ascontiguousarray(leaves, dtype=np.int32),
        ens.leaf_offsets,
        _scores_before(ens, leaves),
        np.ascontiguousarray(y, dtype=np.float64),
        np.ascontiguousarray(targets, dtype=np.float64),
        np.ascontiguousarray(terms.weights),
        ens.objective_code,
        ens.kernel_param,
        ens.l2,
        ens.leaf_step_method == "gradient",
        ens.constant_tree,
        terms.steps_taken,
        np.ascontiguousarray(terms.step_scales),
        ens.learning_rates,
    )
    return np.ascontiguousarray(change)


def relabelled_changes(ens, leaves, y, targets, sample_weight=None):
    """Change of each row's own leaf value in every tree when that row alone takes a
    new label, the other rows' gradients held at the stored trajectory.

    The leaf is recomputed exactly by its rule with the row's gradient and hessian at
    the new label (one Newton step, clamp included), so the change is exact for the
    fixed trajectory, not linearised.

    Parameters
    ----------
    ens : TreeEnsemble
    leaves : ndarray of shape (n, n_trees)
    y, targets : ndarray of shape (n,)
        The rows' labels and their new labels (encoded).
    sample_weight : ndarray of shape (n,), optional

    Returns
    -------
    change : ndarray of shape (n, n_trees)
        ``v_t(y_j := targets[j]) - v_t`` of row ``j``'s leaf in tree ``t``.

    Notes
    -----
    Leaves of several steps (CatBoost) are recomputed by the steps each tree kept, with
    their scales (O(rows of the leaf x steps) per edited row and tree); K x K Newton
    leaves (CatBoost ``MultiClass``) by their system, whose hessian does not depend on
    the label (:func:`skinfluence._full_hessian.relabelled_changes`).
    """
    if ens.full_hessian:
        from ._full_hessian import relabelled_changes as full

        return full(ens, leaves, y, targets, sample_weight)
    if ens.leaf_steps > 1 or ens.leaf_step_method != "newton":
        return _relabelled_step_changes(ens, leaves, y, targets, sample_weight)
    terms = leaf_terms(ens, leaves, y, sample_weight, terms=False)
    g_new, h_new, _, _ = ens.replay(leaves, targets)
    flat = ens.flat_leaves(leaves)
    w = terms.weights[:, None]
    G = terms.gradient_sums[flat] + w * (g_new - terms.gradients)
    beta = terms.beta[flat] + w * (h_new - terms.hessians)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(beta > 0, -G / np.where(beta > 0, beta, 1.0), 0.0)
    if ens.max_delta_step > 0:
        step = np.clip(step, -ens.max_delta_step, ens.max_delta_step)
    change = ens.learning_rates[None, :] * step - terms.recomputed[flat]
    change[:, ens.constant_tree] = 0.0
    change[targets == y] = 0.0
    return np.ascontiguousarray(change)
