"""Full-hessian leaves: the K x K Newton step of CatBoost's ``MultiClass`` loss.

An ensemble with ``full_hessian=True`` stores, for every boosting round, K trees that
share their routing; the K values of leaf ``l`` form the vector

    u_l = -eta (sum_{j in l} w_j H_j + lambda I)^{-1} G_l,

``H_j = diag(p_j) - p_j p_j^T`` the softmax hessian and ``G_l`` the summed weighted
gradients at the scores before the round (:ref:`methods-full-hessian`; checked against
CatBoost 1.2.10 ``MultiClass`` with one Newton leaf step, to 1e-15). This module holds
the leaf-model check and the BoostIn, LeafInfluence and LeafRefit parts of such models;
the explainers dispatch here when ``ensemble.full_hessian`` is set. The kernels are in
:mod:`skinfluence._kernels._full_hessian`.
"""

import numba
import numpy as np

from ._kernels import _full_hessian as _fh
from ._kernels import _leaves
from ._leaf_update_sets import AllPoints, SinglePoint, TopLeaves
from ._objectives import gradient

__all__ = [
    "newton_values",
    "leaf_systems",
    "fit_boostin",
    "fit_leaf_influence",
    "refit_inputs",
    "refit_block",
    "relabelled_changes",
    "relabel_block",
]


# ------------------------------------------------------------------ leaf systems
def round_leaf_flat(ens):
    """``(n_round_leaves, K)`` flat leaf index of column ``k`` of each round leaf."""
    K = ens.n_outputs
    L = ens.n_leaves[::K]  # leaves per round
    starts = ens.leaf_offsets[:-1][::K]
    rnd = np.repeat(np.arange(ens.n_rounds), L)
    local = np.arange(int(L.sum())) - np.repeat(starts // K, L)
    return starts[rnd][:, None] + np.arange(K)[None, :] * L[rnd][:, None] + local[:, None]


def round_leaves(ens, leaves):
    """``(n, R)`` round-leaf index of every row in every round."""
    K = ens.n_outputs
    return leaves[:, ::K].astype(np.int64) + (ens.leaf_offsets[:-1][::K] // K)[None, :]


def leaf_systems(ens, leaves, y, sample_weight=None):
    """The Newton systems of every round leaf on the given rows.

    Returns a dict: ``scores`` and ``proba`` ``(n, R, K)`` (raw scores before each
    round and their softmax), ``G`` ``(n_round_leaves, K)``, ``M`` ``(.., K, K)``
    (``sum w H + lambda I``), ``live`` (leaves of non-constant trees with a regular
    system), ``eta`` ``(R,)``, ``flat`` (:func:`round_leaf_flat`) and ``weights``.
    """
    K = ens.n_outputs
    n = len(leaves)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    leaves = np.ascontiguousarray(leaves, dtype=np.int32)
    labels = np.ascontiguousarray(np.zeros(n) if y is None else y, dtype=np.float64)
    scores, proba = _fh.trajectory(leaves, ens.leaf_offsets, ens.leaf_values, ens.bias, K)
    G, M = _fh.round_leaf_sums(leaves, ens.leaf_offsets, K, proba, labels, np.ascontiguousarray(w))
    flat = round_leaf_flat(ens)
    M = M + ens.l2[flat[:, 0]][:, None, None] * np.eye(K)[None]
    eta = ens.learning_rates[::K]
    rnd = np.repeat(np.arange(ens.n_rounds), ens.n_leaves[::K])
    live = ~ens.constant_tree[::K][rnd]
    if len(M):  # a regular system (lambda > 0 makes every one regular)
        eig = np.linalg.eigvalsh(M)
        live &= eig[:, 0] > 1e-12 * np.maximum(1.0, eig[:, -1])
    return {
        "scores": scores,
        "proba": proba,
        "G": G,
        "M": M,
        "live": live,
        "eta": eta,
        "rnd": rnd,
        "flat": flat,
        "weights": w,
    }


def _newton_steps(sys):
    """``(n_round_leaves, K)`` float64 Newton steps ``-eta M^{-1} G`` (0 where not live)."""
    u = np.zeros_like(sys["G"])
    live = sys["live"]
    if live.any():
        x = np.linalg.solve(sys["M"][live], sys["G"][live][:, :, None])[:, :, 0]
        u[live] = -sys["eta"][sys["rnd"][live]][:, None] * x
    return u


def newton_values(ens, leaves, y, sample_weight=None):
    """``(v_hat, G, H)`` flat over leaves, as :meth:`TreeEnsemble.newton_values`: the
    K x K Newton step of every leaf, the gradient sums and the diagonal hessian sums
    (lambda excluded)."""
    sys = leaf_systems(ens, leaves, y, sample_weight)
    flat = sys["flat"]
    v_hat = np.zeros(ens.n_leaves_total)
    G = np.zeros(ens.n_leaves_total)
    H = np.zeros(ens.n_leaves_total)
    v_hat[flat] = _newton_steps(sys)
    G[flat] = sys["G"]
    H[flat] = np.diagonal(sys["M"], axis1=1, axis2=2) - ens.l2[flat]
    return v_hat, G, H


def _coef(sys):
    """``C_l = -eta M_l^{-1}`` ``(n_round_leaves, K, K)``, zero where not live."""
    C = np.zeros_like(sys["M"])
    live = sys["live"]
    if live.any():
        C[live] = -sys["eta"][sys["rnd"][live]][:, None, None] * np.linalg.inv(sys["M"][live])
    return C


def _stored(ens, flat, unshrunk):
    """``(n_round_leaves, K)`` stored leaf vectors (divided by eta if ``unshrunk``)."""
    values = ens.unshrunk_values if unshrunk else ens.leaf_values
    return values[flat]


def _source(proba, y, rl, values):
    """``(n, R, K)`` ``g + H v`` of every row with the leaf vector ``values[rl]``."""
    K = proba.shape[2]
    v = values[rl]  # (n, R, K)
    g = proba - (np.asarray(y, dtype=np.intp)[:, None, None] == np.arange(K))
    s = (proba * v).sum(axis=2, keepdims=True)
    return g + proba * (v - s)


# ------------------------------------------------------------------------ BoostIn
def boostin_derivatives(ens, leaves, y, weights, derivative, leaf_scaling):
    """``delta[i, b*K + k] = -w_i (C_l (g_i + H_i v))_k`` (``C_l = -eta M_l^{-1}``), the
    removal form of ``d u_l / d w_i``; ``v`` the stored leaf vector (``"published"``)
    or its unshrunk value (``"exact"``), optionally divided by the leaf's row count
    (to the power 1 or 2)."""
    sys = leaf_systems(ens, leaves, y, weights)
    C = _coef(sys)
    rl = round_leaves(ens, leaves)
    values = _stored(ens, sys["flat"], unshrunk=derivative == "exact")
    A = _source(sys["proba"], y, rl, values)
    delta = np.empty_like(A)
    for b in range(A.shape[1]):  # one round at a time: (n, K, K) coefficients
        delta[:, b] = -np.einsum("nkm,nm->nk", C[rl[:, b]], A[:, b])
    delta *= sys["weights"][:, None, None]
    if leaf_scaling != "none":
        counts = np.bincount(rl.ravel(), minlength=len(C)).astype(np.float64)
        power = 1 if leaf_scaling == "inverse_size" else 2
        with np.errstate(divide="ignore"):
            scale = np.where(counts > 0, 1.0 / counts**power, 0.0)
        delta *= scale[rl][:, :, None]
    return np.ascontiguousarray(delta.reshape(len(leaves), -1))


def fit_boostin(explainer, leaves, y, sample_weight):
    """Set the fitted state of a :class:`~skinfluence.BoostIn` on a full-hessian model
    (as its ``_fit_influence`` does for per-column leaves)."""
    ens = explainer.ensemble_
    gradients = ens.replay(leaves, y)[0]
    delta = boostin_derivatives(
        ens, leaves, y, sample_weight, explainer.derivative, explainer.leaf_scaling
    )
    explainer.derivatives_ = delta
    explainer._train_leaves = leaves
    explainer._self = (gradients * delta).sum(axis=1)
    explainer._tiles = _leaves.tiled(leaves, ens.leaf_offsets, delta)


def relabelled_changes(ens, leaves, y, targets, weights):
    """``(n, T)`` change of each row's own leaf vector in every round when that row
    alone takes the class ``targets[i]``, the other rows at the stored trajectory.

    The softmax hessian does not depend on the label, so the system ``M_l`` keeps its
    value and only the gradient sum moves, by ``w_i (e_{y_i} - e_{y*_i})``: the change
    ``C_l w_i (e_{y_i} - e_{y*_i})`` (``C_l = -eta M_l^{-1}``) is the relabelled leaf's
    K x K Newton step exactly."""
    sys = leaf_systems(ens, leaves, y, weights)
    C = _coef(sys)
    rl = round_leaves(ens, leaves)
    yi, ti = np.asarray(y).astype(np.intp), np.asarray(targets).astype(np.intp)
    w = sys["weights"]
    # C (e_y - e_y*) is column y minus column y* of C
    change = w[:, None, None] * (C[rl, :, yi[:, None]] - C[rl, :, ti[:, None]])
    change[yi == ti] = 0.0
    return np.ascontiguousarray(change.reshape(len(leaves), -1))


# ------------------------------------------------------------------ LeafInfluence
def terms(ens, leaves, y, weights):
    """The :class:`~skinfluence._kernels._full_hessian.FullTerms` of the training rows."""
    sys = leaf_systems(ens, leaves, y, weights)
    ubar = _stored(ens, sys["flat"], unshrunk=True)
    source = _source(sys["proba"], y, round_leaves(ens, leaves), ubar)
    return _fh.FullTerms(
        _coef(sys),
        sys["live"],
        np.ascontiguousarray(ubar),
        sys["proba"],
        np.ascontiguousarray(source),
        np.ascontiguousarray(sys["weights"]),
    )


class _FullForward:
    """The forward mode of the full-hessian kernels (mixed into the update sets)."""

    full = None

    def _terms(self, coef, source, propagation):
        pass  # the full-hessian terms are set at construction

    def forward_blocks(self, row_blocks, desc="forward mode"):
        for rows in row_blocks(desc):
            D, self_dot = _fh.forward_block(
                rows,
                self.train,
                self.full,
                self.n_top,
                np.ascontiguousarray(self.final_gradients[rows]),
            )
            yield rows, D, self_dot


class FullAllPoints(_FullForward, AllPoints):
    """``update_set=-1`` with full-hessian leaves: reverse sweep, forward mode."""

    def _reverse(self, Gq):
        score = _fh.reverse_sweep(
            np.ascontiguousarray(Gq), self.train, self.full, numba.get_num_threads()
        )
        return -self.weights[:, None] * score


class FullTopLeaves(_FullForward, TopLeaves):
    """``update_set=k >= 1`` with full-hessian leaves (top-k leaves of each round)."""


class FullSinglePoint(SinglePoint):
    """``update_set=0`` with full-hessian leaves."""

    full = None

    def fit(self, coef, source, propagation, row_blocks, fits_cache):
        D = _fh.single_point(self.train, self.full)
        self.derivatives = D
        removal = -self.weights[:, None] * D
        self.tiles = _leaves.tiled(self.train.leaves, self.ensemble.leaf_offsets, removal)
        tree_column = self.ensemble.tree_column
        self.self_values = (self.final_gradients[:, tree_column] * removal).sum(axis=1)


def fit_leaf_influence(explainer, replay, y):
    """Set the update set of a :class:`~skinfluence.LeafInfluence` on a full-hessian
    model and fit it (as its ``_fit_influence`` does for per-column leaves); ``replay``
    holds the training rows' weights and final scores."""
    from .base import _numba_threads

    ens = explainer.ensemble_
    leaves = explainer._train.leaves
    final_gradients = np.ascontiguousarray(gradient(ens.objective, y, replay.final_scores))
    u = int(explainer.update_set)
    args = (ens, explainer._train, replay.weights, final_gradients)
    update = FullAllPoints(*args) if u == -1 else FullSinglePoint(*args) if u == 0 else None
    if update is None:
        update = FullTopLeaves(*args, u)
    update.full = terms(ens, leaves, y, replay.weights)
    explainer._update = update
    with _numba_threads(explainer.n_jobs):
        update.fit(None, None, None, explainer._row_blocks, explainer._fits_cache)
    explainer.derivatives_ = getattr(update, "derivatives", None)


# ---------------------------------------------------------------------- LeafRefit
def refit_inputs(ens, leaves, y, weights):
    """The :class:`~skinfluence._kernels._full_hessian.FullRefit` of the training rows."""
    sys = leaf_systems(ens, leaves, y, weights)
    rnd = sys["rnd"]
    live = ~ens.constant_tree[:: ens.n_outputs][rnd]
    return _fh.FullRefit(
        sys["scores"],
        sys["proba"],
        np.ascontiguousarray(sys["weights"]),
        np.ascontiguousarray(y, dtype=np.float64),
        np.ascontiguousarray(sys["G"]),
        np.ascontiguousarray(sys["M"]),
        np.ascontiguousarray(_newton_steps(sys)),
        live,
        ens.leaf_values,
        np.ascontiguousarray(sys["eta"]),
    )


def refit_block(rows, train, refit, n_top):
    """``(dv, dself)`` of the full-hessian refit without each of ``rows``."""
    return _fh.refit_block(rows, train, refit, n_top)


def relabel_block(rows, new_labels, train, refit):
    """``(dv, dself)`` of the full-hessian refit with each of ``rows`` relabelled."""
    return _fh.relabel_block(rows, new_labels, train, refit)
