"""BoostIn: TracIn adapted to gradient-boosted trees (Brophy et al., JMLR 2023)."""

import numpy as np

from . import _full_hessian
from ._kernels import _leaves, _trees
from ._leaf_rule import leaf_terms, relabelled_changes
from .base import BaseInfluence

__all__ = ["BoostIn"]

_SCALINGS = ("none", "inverse_size", "inverse_size_squared")


class BoostIn(BaseInfluence):
    """BoostIn: training-data influence by tracing the gradient of every tree.

    Each boosting round is one optimisation step. For training row ``i`` in leaf ``l``
    of tree ``t = (b, k)`` the derivative of the leaf value with respect to removing
    ``i`` is ``delta[i, t] = eta_t * w_i * (g_i + v * h_i) / (H_l + lambda)`` (gradients
    at the scores before round ``b``); the influence on a query ``e`` is the sum over
    trees in which ``i`` and ``e`` share a leaf of ``delta[i, t]`` times the query's
    loss gradient at its own score before that round. Structure is fixed and the
    effect of ``i`` is not propagated into later trees.

    Parameters
    ----------
    estimator : object, default=None
        A gradient-boosted model of LightGBM, XGBoost, CatBoost or scikit-learn
        (fitted, ``FrozenEstimator``, raw Booster or ``Pipeline``: explained as given;
        unfitted: cloned and fitted in ``fit``; ``None``: a small
        ``HistGradientBoosting`` model).
    derivative : {"published", "exact"}, default="published"
        ``"published"``: the paper's form, with the stored (shrunk) leaf value ``v``
        in the numerator. ``"exact"``: the first-order derivative of the leaf value
        with respect to the row's weight, with the unshrunk value ``v / eta``. They
        coincide at learning rate 1. The published form shares a credit among all rows
        of a leaf and ranks rows better on the paper's removal protocol; the exact
        form is the true derivative of each leaf for a single row.
    leaf_scaling : {"none", "inverse_size", "inverse_size_squared"}, default="none"
        Multiply each derivative by ``1 / n_leaf`` (the paper's BoostInW1) or
        ``1 / n_leaf**2`` (BoostInW2), ``n_leaf`` counting the training rows of the
        leaf.
    check_leaf_model : {"raise", "warn"}, default="raise"
        What to do when the stored leaves are not reproduced by the model's leaf rule
        (one Newton step, clamped steps, CatBoost's several steps or its K x K
        MultiClass step) on the training data (bagging, dart, L1, ...): raise an
        error, or warn and return an approximation.
    atol, rtol : float, default=1e-5
        Tolerances of the leaf-model check.
    dtype, chunk_memory_mb, n_jobs, verbose
        See :class:`~skinfluence.base.BaseInfluence`.

    Attributes
    ----------
    estimator_ : object
        The model explained.
    ensemble_ : TreeEnsemble
        Its framework-neutral view.
    classes_ : ndarray
        Class labels (classifiers).
    n_train_ : int
        Number of training rows.
    derivatives_ : ndarray of shape (n_train, n_trees)
        ``delta[i, t]`` (removal form: influence = gradient x delta).
    n_features_in_ : int
    feature_names_in_ : ndarray

    Notes
    -----
    ``fit`` costs O(N T) after routing and stores the leaf ids, the derivatives by row
    and a copy of them grouped by leaf within tiles of 1,024 training rows (with 2-byte
    row indices): about 22 bytes per (row, tree). A query costs O(T) for its gradients
    plus one multiply-add per training row sharing one of its leaves,
    ``sum_t n_leaf_t(e)`` <= N T. Queries run in groups of eight that share many
    leaves: for each tree, the group visits the rows of each distinct leaf of its
    members once and updates all eight with one vector operation (members in another
    leaf add zero). Work is parallel over tiles of training rows, each of which writes
    its own part of the output; every entry sums the trees in order, so results do not
    depend on the number of threads, on the grouping or on the blocks. ``transform``
    writes into its output directly and needs no block memory (the groups' coefficients
    take at most 16 MiB at a time).
    ``self_influence`` is O(N T); ``global_influence`` is O(N T + n_query T) through
    per-leaf sums of the query gradients.

    Sign: positive = helpful (removing the row would raise the query's loss).
    Multiclass: one tree per class and round; each uses its class column's gradient.

    ``label_edit``: each row's own leaf in every tree recomputed exactly by the leaf
    rule with the row's label replaced, the other rows at the stored trajectory: one
    Newton step (clamp included) from the leaf sums, O(N T); leaves of several Newton
    or gradient steps (CatBoost, backtracking scales included) by the steps each tree
    kept, O(sum over leaves of rows x edited rows x steps); CatBoost ``MultiClass``
    K x K leaves by their system, whose hessian does not depend on the label, O(N R
    K^2). Queries then cost as ``transform``. Checked against numpy recomputations of
    the relabelled leaves to 1e-9 relative.

    References
    ----------
    .. [1] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023.
    .. [2] G. Pruthi, F. Liu, S. Kale and M. Sundararajan. Estimating Training Data
       Influence by Tracing Gradient Descent. NeurIPS 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import HistGradientBoostingRegressor
    >>> from skinfluence import BoostIn
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(X, y)
    >>> explainer = BoostIn(model).fit(X, y)
    >>> explainer.transform(X[:2], y[:2]).shape
    (2, 442)
    >>> idx, val = explainer.top_k(X[:1], y[:1], k=3)
    >>> idx.shape
    (1, 3)
    """

    _accepts_forests = False
    _fills_out = True

    def __init__(
        self,
        estimator=None,
        *,
        derivative="published",
        leaf_scaling="none",
        check_leaf_model="raise",
        atol=1e-5,
        rtol=1e-5,
        dtype=np.float64,
        chunk_memory_mb=256,
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            estimator, dtype=dtype, chunk_memory_mb=chunk_memory_mb, n_jobs=n_jobs, verbose=verbose
        )
        self.derivative = derivative
        self.leaf_scaling = leaf_scaling
        self.check_leaf_model = check_leaf_model
        self.atol = atol
        self.rtol = rtol

    def _fit_influence(self, X, leaves, y_enc, sample_weight):
        if self.derivative not in ("published", "exact"):
            raise ValueError(f"derivative must be 'published' or 'exact', got {self.derivative!r}")
        if self.leaf_scaling not in _SCALINGS:
            raise ValueError(f"leaf_scaling must be one of {_SCALINGS}, got {self.leaf_scaling!r}")
        ens = self.ensemble_
        if ens.full_hessian:  # K x K Newton leaves (_full_hessian)
            self._check_leaf_model(
                leaves, y_enc, sample_weight, self.check_leaf_model, self.atol, self.rtol
            )
            return _full_hessian.fit_boostin(self, leaves, y_enc, sample_weight)
        self._validate_leaf_check(self.check_leaf_model)
        n = len(leaves)
        leaves = np.ascontiguousarray(leaves, dtype=np.int32)
        exact = self.derivative == "exact"
        # several steps per leaf: the derivative terms come from the steps themselves
        multi = ens.leaf_steps > 1 or ens.leaf_step_method == "gradient"
        # one replay serves the leaf-model check and the derivatives (and, for a
        # cover-recording model, the training-row check before this)
        kept = self.__dict__.pop("_fit_terms", None)
        if kept is not None and all(a is b for a, b in zip(kept, (leaves, y_enc, sample_weight))):
            terms = kept[3]
        else:
            terms = leaf_terms(ens, leaves, y_enc, sample_weight, terms=exact and multi)
        self._check_leaf_model(
            leaves, y_enc, sample_weight, self.check_leaf_model, self.atol, self.rtol, terms
        )
        w, g, h = terms.weights, terms.gradients, terms.hessians
        # eta / beta where the leaf has a derivative (0: constant trees, clamped leaves)
        per_leaf = np.where(terms.coef != 0, -terms.coef, 0.0)
        if self.leaf_scaling != "none":
            counts = _trees.leaf_counts(leaves, ens.leaf_offsets, np.ones(n))
            power = 1 if self.leaf_scaling == "inverse_size" else 2
            with np.errstate(divide="ignore"):
                per_leaf = np.where(counts > 0, per_leaf / counts**power, 0.0)
        if exact and multi:
            delta = w[:, None] * terms.source * per_leaf[ens.flat_leaves(leaves)]
            self.derivatives_ = np.ascontiguousarray(delta)
            self._self = np.multiply(g, delta, out=g).sum(axis=1)
            self._tiles = _leaves.tiled(leaves, ens.leaf_offsets, self.derivatives_)
        else:
            # published: the stored value v in the numerator; exact: v / eta (the
            # single-step source term g + (v / eta) h, rounded alike). One kernel
            # computes the derivatives, their tiled layout and g * delta in g's memory
            # (g is not needed after this: no (n, T) temporary)
            values = ens.unshrunk_values if exact else ens.leaf_values
            g = np.ascontiguousarray(g, dtype=np.float64)
            self.derivatives_, self._tiles = _leaves.derivatives_tiled(
                leaves,
                ens.leaf_offsets,
                np.ascontiguousarray(w, dtype=np.float64),
                g,
                np.ascontiguousarray(h, dtype=np.float64),
                np.ascontiguousarray(values, dtype=np.float64),
                np.ascontiguousarray(per_leaf, dtype=np.float64),
            )
            self._self = g.sum(axis=1)
        self._train_leaves = leaves

    def _training_hessian_sums(self, leaves, y_enc, sample_weight):
        # a cover-recording model (XGBoost): the training-row check takes the hessian
        # sums of the replay _fit_influence needs anyway (the same bits as the check's
        # own replay), kept for _fit_influence
        self.__dict__.pop("_fit_terms", None)
        ens = self.ensemble_
        multi = ens.leaf_steps > 1 or ens.leaf_step_method == "gradient"
        if ens.leaf_stats_kind != "hessian" or ens.full_hessian or multi:
            return None
        if y_enc is None or ens.leaf_stats is None or ens.leaf_stats_caveat is not None:
            return None
        leaves = np.ascontiguousarray(leaves, dtype=np.int32)
        terms = leaf_terms(ens, leaves, y_enc, sample_weight, terms=False)
        # the same objects reach _fit_influence (all rows are explained here)
        self._fit_terms = (leaves, y_enc, sample_weight, terms)
        return terms.hessian_sums

    def _check_training_rows(self, leaves, y_enc, sample_weight):
        try:
            super()._check_training_rows(leaves, y_enc, sample_weight)
        except BaseException:
            self.__dict__.pop("_fit_terms", None)
            raise

    def _query_arrays(self, X, leaves, y_enc, objective):
        g, _, _, _ = self.ensemble_.replay(leaves, y_enc, objective=objective)
        return {"leaves": leaves, "grad": g}

    def _product(self, q, tiles, out=None):
        """``out[e, i] = sum_t 1[same leaf] grad[e, t] D[i, t]`` for ``D`` tiled."""
        if out is None:
            out = np.empty((len(q["leaves"]), self.n_train_))
        _leaves.tiled_product(
            q["leaves"],
            np.ascontiguousarray(q["grad"]),
            self.ensemble_.leaf_offsets,
            *tiles,
            self.n_train_,
            _leaves.TILE,
            out,
        )
        return out

    def _influence_block(self, q, context, out=None):
        return self._product(q, self._tiles, out)

    def _self_influence(self):
        return self._self.copy()

    def _label_edit_state(self, targets):
        # the leaf changes of every row relabelled alone, tiled as the derivatives are
        ens = self.ensemble_
        change = relabelled_changes(
            ens, self._train_leaves, self._explained_labels, targets, self._explained_weights
        )
        return _leaves.tiled(self._train_leaves, ens.leaf_offsets, change)

    def _label_edit_block(self, q, context, state):
        return self._product(q, state)

    def _global_from_queries(self, q, m, context):
        ens = self.ensemble_
        Gq = _trees.leaf_sums(q["leaves"], ens.leaf_offsets, np.ascontiguousarray(q["grad"]))
        return _leaves.leaf_gather_sum(self._train_leaves, ens.leaf_offsets, Gq, self.derivatives_)
