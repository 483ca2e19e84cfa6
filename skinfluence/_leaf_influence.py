"""LeafInfluence and LeafRefit: influence functions and fixed-structure leave-one-out for
gradient-boosted trees (Sharchilev et al. 2018, as adapted by Brophy et al., JMLR 2023)."""

import numbers

import numpy as np
from scipy.special import log_softmax

from . import _full_hessian
from ._kernels import _leaf_influence as _li
from ._kernels import _leaf_influence_edit as _edit
from ._kernels import _leaves
from ._leaf_rule import _scores_before, leaf_terms
from ._leaf_update_sets import AllPoints, SinglePoint, check_multiclass, update_set_for
from ._objectives import REGRESSION_OBJECTIVES, gradient, unclipped_loss
from .base import BaseInfluence, _numba_threads, _progress

__all__ = ["LeafInfluence", "LeafRefit"]

#: objectives whose gradient is not linear in the label (label edits not linearised)
_NONLINEAR_IN_LABEL = ("pseudo_huber", "huber")


def _regression_loss_change(objective, y, z, d, param):
    """``L(y, z + d) - L(y, z)`` of the regression objectives other than the squared
    error (``z``, ``y`` ``(m, 1)``, ``d`` ``(m, r)``), with ``expm1`` for the exponentials."""
    if objective == "poisson":
        return np.exp(z) * np.expm1(d) - y * d
    if objective == "gamma":
        return y * np.exp(-z) * np.expm1(-d) + d
    if objective == "tweedie":
        a, b = 1.0 - param, 2.0 - param
        return np.exp(b * z) * np.expm1(b * d) / b - y * np.exp(a * z) * np.expm1(a * d) / a
    if objective == "cross_entropy":
        up = np.logaddexp(0.0, z + d) - np.logaddexp(0.0, z)
        down = np.logaddexp(0.0, -z - d) - np.logaddexp(0.0, -z)
        return y * down + (1.0 - y) * up
    m, r = d.shape
    new = unclipped_loss(objective, np.repeat(y[:, 0], r), (z + d).reshape(-1, 1), param)
    old = unclipped_loss(objective, y[:, 0], z, param)
    return new.reshape(m, r) - old[:, None]


def _loss_change(objective, y, F, dF, param=0.0):
    """``L(y, F + dF) - L(y, F)`` on raw scores, without probability clipping.

    ``y`` ``(m,)``, ``F`` ``(m, K)``, ``dF`` ``(m, K, r)``; ``param`` the objective's
    parameter; returns ``(m, r)``.
    """
    if objective == "value":
        return -dF[:, 0, :]
    if objective == "squared_error":
        d = dF[:, 0, :]
        return d * ((F[:, 0] - y)[:, None] + 0.5 * d)
    if objective in REGRESSION_OBJECTIVES:
        y = np.asarray(y, dtype=np.float64)[:, None]
        return _regression_loss_change(objective, y, F[:, :1], dF[:, 0, :], param)
    yi = np.asarray(y).astype(np.intp)
    if objective == "binary":
        s = np.where(yi == 1, -1.0, 1.0)[:, None]
        z = F[:, 0][:, None]
        return np.logaddexp(0.0, s * (z + dF[:, 0, :])) - np.logaddexp(0.0, s * z)
    Fp = F[:, :, None] + dF
    rows = np.arange(len(yi))
    new = -log_softmax(Fp, axis=1)[rows, yi, :]
    old = -log_softmax(F, axis=1)[rows, yi][:, None]
    return new - old


def _label_source(ens, leaves, y, targets, terms=None):
    """``(n, T)`` change of each row's source term per unit move of its label toward
    ``targets`` (per-column leaves): ``(g* - g) + vbar (h* - h)`` for one Newton step,
    through the kept steps (``terms``: their :class:`LeafTerms`) for several."""
    if ens.leaf_steps > 1 or ens.leaf_step_method != "newton":
        return _edit.label_source_steps(
            np.ascontiguousarray(leaves, dtype=np.int32),
            ens.leaf_offsets,
            _scores_before(ens, leaves),
            np.ascontiguousarray(y, dtype=np.float64),
            np.ascontiguousarray(targets, dtype=np.float64),
            np.ascontiguousarray(terms.weights, dtype=np.float64),
            ens.objective_code,
            ens.kernel_param,
            ens.l2,
            ens.leaf_step_method == "gradient",
            ens.constant_tree,
            terms.steps_taken,
            np.ascontiguousarray(terms.step_scales),
        )
    g, h, _, _ = ens.replay(leaves, y)
    g_new, h_new, _, _ = ens.replay(leaves, targets)
    vbar = ens.unshrunk_values[ens.flat_leaves(leaves)]
    return np.ascontiguousarray((g_new - g) + vbar * (h_new - h))


def _full_label_source(ens, y, targets):
    """``(n, R, K)`` label source of K x K Newton leaves: the softmax hessian does not
    depend on the label, so only the gradient moves, by ``e_y - e_y*`` per unit."""
    K = ens.n_outputs
    eye = np.eye(K)
    change = eye[np.asarray(y).astype(np.intp)] - eye[np.asarray(targets).astype(np.intp)]
    return np.ascontiguousarray(np.repeat(change[:, None, :], ens.n_rounds, axis=1))


class _LeafBase(BaseInfluence):
    """Shared parameters and precomputation of LeafInfluence and LeafRefit."""

    _accepts_forests = False

    def __init__(
        self,
        estimator=None,
        *,
        update_set=-1,
        check_leaf_model="raise",
        atol=1e-5,
        rtol=1e-5,
        block_size="auto",
        dtype=np.float64,
        chunk_memory_mb=256,
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            estimator, dtype=dtype, chunk_memory_mb=chunk_memory_mb, n_jobs=n_jobs, verbose=verbose
        )
        self.update_set = update_set
        self.check_leaf_model = check_leaf_model
        self.atol = atol
        self.rtol = rtol
        self.block_size = block_size

    # ------------------------------------------------------------ parameters
    def _validate_params_leaf(self):
        u = self.update_set
        if not isinstance(u, numbers.Integral) or isinstance(u, bool) or u < -1:
            raise ValueError(
                "update_set must be -1 (all rows), 0 (the row itself) or a positive "
                f"number of leaves, got {u!r}"
            )
        bs = self.block_size
        if not (
            bs == "auto"
            or (isinstance(bs, numbers.Integral) and not isinstance(bs, bool) and bs >= 1)
        ):
            raise ValueError(f"block_size must be 'auto' or a positive integer, got {bs!r}")

    def _query_row_bytes(self):
        # the query block holds (m, K, r) score changes and their losses besides the
        # (m, n_train) output
        K = self.ensemble_.n_outputs
        return 8 * max(1, self.n_train_) * (3 * K + 3)

    def _row_block(self):
        """Removed rows per forward block: ``block_size`` or from the memory budget."""
        n = self.n_train_
        if self.block_size != "auto":
            return int(min(self.block_size, n))
        per_row = 8 * (self.ensemble_.n_leaves_total + 3 * self.ensemble_.n_outputs)
        return int(min(n, max(1, self._memory_budget() // per_row)))

    def _fits_cache(self, row_bytes=None):
        """Whether ``row_bytes`` per training row (default: a float per leaf) fit in the
        memory budget."""
        if row_bytes is None:
            row_bytes = 8.0 * self.ensemble_.n_leaves_total
        return float(row_bytes) * self.n_train_ <= self._memory_budget()

    def _row_blocks(self, desc):
        n = self.n_train_
        step = self._row_block()
        starts = range(0, n, step)
        for a in _progress(starts, len(starts), self.verbose, desc):
            yield np.arange(a, min(n, a + step), dtype=np.int64)

    # ------------------------------------------------------------------ fit
    def _fit_common(
        self, leaves, y_enc, sample_weight, with_terms, grouped=True, by_tree=True, kappa=True
    ):
        """Check the leaf model, replay the training and group the rows by leaf (sets
        ``_train`` and ``_labels``); returns the :class:`~skinfluence._leaf_rule.LeafTerms`
        (with the derivative terms when ``with_terms``; without the third derivatives
        unless ``kappa``). Without ``grouped`` the
        training leaves carry no rows-by-leaf CSR, without ``by_tree`` no copy by
        tree (empty arrays: the update sets that do not read them)."""
        self._validate_params_leaf()
        self._validate_leaf_check(self.check_leaf_model)
        ens = self.ensemble_
        terms = leaf_terms(ens, leaves, y_enc, sample_weight, kappa=kappa, terms=with_terms)
        # one replay serves the leaf-model check and the method (the K x K leaves are
        # checked by their own rule)
        self._check_leaf_model(
            leaves,
            y_enc,
            sample_weight,
            self.check_leaf_model,
            self.atol,
            self.rtol,
            None if ens.full_hessian else terms,
        )
        if grouped:
            indptr, order = _leaves.group_by_leaf(leaves, ens.leaf_offsets)
        else:
            indptr, order = np.zeros(1, dtype=np.int64), np.empty(0, dtype=np.int32)
        leaves_T = np.ascontiguousarray(leaves.T) if by_tree else np.empty((0, 0), leaves.dtype)
        self._train = _li.TrainLeaves(
            leaves, leaves_T, ens.leaf_offsets, indptr, order, ens.n_outputs
        )
        self._labels = np.ascontiguousarray(y_enc, dtype=np.float64)
        return terms

    def _query_arrays(self, X, leaves, y_enc, objective):
        ens = self.ensemble_
        F = ens.raw_from_leaves(leaves)
        return {
            "flat": np.ascontiguousarray(ens.flat_leaves(leaves)),
            "F": F,
            "y": (np.zeros(len(leaves)) if y_enc is None else np.asarray(y_enc, dtype=np.float64)),
            "gfin": np.ascontiguousarray(
                gradient(objective, y_enc, F, self.ensemble_.objective_param)
            ),
        }


class LeafInfluence(_LeafBase):
    """LeafInfluence: influence functions for gradient-boosted trees.

    The first-order effect of removing training row ``i`` on a query's loss when every
    leaf value is re-fitted as a Newton step with the tree structure fixed: the
    derivative of every leaf value with respect to the row's weight, propagated through
    all later trees through the other rows' gradients and hessians, chained with the
    query's loss gradient at the final model (:ref:`methods-leaf-influence`)::

        I(i, e) = -w_i * sum_k dL(y_e, F(x_e))/dF_k * dF_k(x_e)/dw_i.

    Parameters
    ----------
    estimator : object, default=None
        A gradient-boosted model of LightGBM, XGBoost, CatBoost or scikit-learn
        (fitted, ``FrozenEstimator``, raw Booster or ``Pipeline``: explained as given;
        unfitted: cloned and fitted in ``fit``; ``None``: a small
        ``HistGradientBoosting`` model). Random forests are refused.
    update_set : int, default=-1
        The rows whose gradients follow the removal through later trees. ``-1``: all
        rows (the exact derivative; the paper's setting). ``0``: the row itself only
        (the fast "single point" variant, LeafInfluenceSP of the paper). ``k >= 1``:
        the row and the rows of the ``k`` leaves of each tree with the largest summed
        absolute derivative so far (ties toward the lower leaf id), as CatBoost's
        ``TopKLeaves:top=k``.
    multiclass : {"exact", "diagonal"}, default="exact"
        How a multiclass (softmax) model propagates the removal through later trees.
        ``"exact"``: a row's gradient in each class depends on all its class scores,
        and these cross-class terms are followed (the exact derivative of the
        fixed-structure refit for ``update_set=-1``; every update set applies the same
        per-row rule). ``"diagonal"``: each class column propagates on its own, as in
        the paper (relative errors of 7-26 % against the exact values at learning rates
        0.1-0.3, more with more rounds or larger rates; kept for comparison with the
        paper). Binary and regression models ignore it.
    check_leaf_model : {"raise", "warn"}, default="raise"
        What to do when the stored leaves are not reproduced by the model's leaf rule
        on the training data (bagging, dart, GOSS, L1, ...): raise an error naming the
        setting, or warn and return an approximation.
    atol, rtol : float, default=1e-5
        Tolerances of the leaf-model check.
    block_size : "auto" or int, default="auto"
        Removed rows propagated together in the forward mode (self-influence,
        ``update_set >= 1``). ``"auto"``: as many as ``chunk_memory_mb`` allows.
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
    derivatives_ : ndarray of shape (n_train, n_trees) or None
        With ``update_set=0``: ``D[i, t]``, the derivative of ``i``'s leaf of tree ``t``
        with respect to ``w_i`` (:ref:`methods-leaf-influence-single-point`); without
        sample weights (or all 1) formed from the tiled layout on first access.
        ``None`` otherwise.
    n_features_in_ : int
    feature_names_in_ : ndarray

    Notes
    -----
    N training rows, T trees (rounds x columns), Λ leaves in all, M queries.

    * ``update_set=-1``: ``fit`` is O(N T) (replay, per-leaf sums, two N x T arrays).
      ``transform`` runs one reverse (adjoint) sweep over the trees per block of
      queries: O(N T) per query, vectorised over the block, memory O(N K r) for ``r``
      queries; ``global_influence`` is one sweep with the query gradients summed,
      O(N T + n_val T). ``self_influence`` needs the forward mode: O(N^2 T) time,
      O(N K) memory per thread.
    * ``update_set=0``: everything O(N T) except the query, a sparse leaf
      co-occurrence product as in :class:`BoostIn`. The fitted state is the tiled
      layout of that product (10 bytes per row and tree), plus the derivatives and
      the leaf ids (12 bytes) when the rows have sample weights other than 1. With one
      Newton step per leaf, ``fit`` replays each row's scores a second time and
      writes the derivatives straight into that layout (no N x T derivative terms).
    * ``update_set=k >= 1``: the forward mode for every row, O(N^2 T) in ``fit``,
      eight removed rows per pass over the training rows (one vector operation per
      row and tree); the written leaf derivatives (the top-k leaves and the row's own
      leaf of each tree: N x T x (k + 1) values and leaf ids, 12 bytes each) are kept
      when they fit in ``chunk_memory_mb``, else recomputed for each block of queries.
      A query then costs O(N T (k + 1)).

    Sign: positive = helpful (removing the row would raise the query's loss). With
    ``update_set=-1`` this is the exact derivative of a fixed-structure refit, for
    multiclass models with ``multiclass="exact"`` (checked against central finite
    differences of refits of LightGBM, XGBoost, HistGradientBoosting and
    GradientBoosting multiclass models, with and without sample weights: agreement
    to 6e-8 of the largest value, the float32 rounding of the stored leaves). The
    exact multiclass form stores one more ``N x T`` array (the softmax
    probabilities) and costs 1.0-1.5 times the time of the diagonal form (measured on a
    LightGBM 5-class model, 5,000 rows, 100 rounds).

    Queries without labels: classifiers explain their own predicted label; regressors
    explain the predicted value (positive = removing the row lowers the prediction).

    ``label_edit`` (every ``update_set``, every leaf model): the first-order change of
    the query's loss when row ``i``'s label moves toward its new label, the derivative
    in a soft label ``y_i + tau (y*_i - y_i)`` at ``tau = 0``, propagated as the update
    set propagates a removal (the row's source term replaced by its change in the
    label: ``(g* - g) + vbar (h* - h)`` for one Newton step, through the kept steps
    for CatBoost's leaves of several steps, ``e_y - e_y*`` for CatBoost ``MultiClass``
    K x K leaves). Covered: the objectives whose gradient and hessian are linear in
    the label (squared error, binary and multiclass log-loss, cross-entropy, Poisson,
    Gamma, Tweedie); pseudo-Huber and Huber raise ``NotImplementedError``. Checked
    against central differences of the update set's fixed-structure refit with the
    label moved (LightGBM, XGBoost, scikit-learn, CatBoost with one step, several
    Newton or gradient steps and ``MultiClass``; update sets -1, 0 and 2): agreement
    to 5e-9 of the largest value. Cost per call: one reverse sweep per block of
    queries (-1), O(N T) (0), the forward mode O(N^2 T) (k).

    CatBoost's ``get_object_importance(pool, train_pool, type='PerObject',
    update_method=...)`` computes the same estimator for models trained with
    ``leaf_estimation_iterations=1``, ``leaf_estimation_method='Newton'`` and plain
    boosting: it returns, per query, training indices and scores sorted by score; after
    scattering the scores back to the training indices they equal ``-transform(X, y)``
    for ``update_method='AllPoints'`` (``update_set=-1``), ``'SinglePoint'`` (0) and
    ``'TopKLeaves:top=k'`` (k).

    References
    ----------
    .. [1] B. Sharchilev, Y. Ustinovsky, P. Serdyukov and M. de Rijke. Finding
       Influential Training Samples for Gradient Boosted Decision Trees. ICML 2018.
    .. [2] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import GradientBoostingRegressor
    >>> from skinfluence import LeafInfluence
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = GradientBoostingRegressor(n_estimators=20, random_state=0).fit(X, y)
    >>> explainer = LeafInfluence(model).fit(X, y)
    >>> explainer.transform(X[:2], y[:2]).shape
    (2, 442)
    >>> explainer.global_influence(X[:50], y[:50]).shape
    (442,)
    """

    def __init__(
        self,
        estimator=None,
        *,
        update_set=-1,
        multiclass="exact",
        check_leaf_model="raise",
        atol=1e-5,
        rtol=1e-5,
        block_size="auto",
        dtype=np.float64,
        chunk_memory_mb=256,
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            estimator,
            update_set=update_set,
            check_leaf_model=check_leaf_model,
            atol=atol,
            rtol=rtol,
            block_size=block_size,
            dtype=dtype,
            chunk_memory_mb=chunk_memory_mb,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        self.multiclass = multiclass

    def _validate_params_leaf(self):
        super()._validate_params_leaf()
        check_multiclass(self.multiclass)

    def _fit_influence(self, X, leaves, y_enc, sample_weight):
        ens = self.ensemble_
        u = int(self.update_set) if isinstance(self.update_set, numbers.Integral) else -1
        cross = self.multiclass == "exact" and ens.objective == "multiclass"
        one_step = ens.leaf_steps <= 1 and ens.leaf_step_method != "gradient"
        # update_set=0 with one Newton step per leaf: the derivatives straight from the
        # trajectory (SinglePoint.fit_one_step), without the (n, T) derivative terms;
        # the replay then only sums the leaves (no third derivatives)
        direct = u == 0 and one_step and not cross and not ens.full_hessian
        # only the reverse sweep and the cross-class and full-hessian kernels read the
        # rows by leaf; the single point reads the leaves by row only
        grouped = u == -1 or cross or ens.full_hessian
        terms = self._fit_common(
            leaves,
            y_enc,
            sample_weight,
            not (ens.full_hessian or direct),
            grouped=grouped,
            by_tree=u != 0 or ens.full_hessian,
            kappa=not direct,
        )
        if ens.full_hessian:  # K x K Newton leaves (_full_hessian)
            return _full_hessian.fit_leaf_influence(self, terms, y_enc)
        final_gradients = np.ascontiguousarray(
            gradient(ens.objective, y_enc, terms.final_scores, ens.objective_param)
        )
        # the update set of this fit: queries follow it even if the parameter changes
        self._update = update_set_for(
            int(self.update_set),
            ens,
            self._train,
            terms.weights,
            final_gradients,
            self.multiclass,
        )
        with _numba_threads(self.n_jobs):
            if direct:  # the replay's (n, T) gradients and hessians are not read: freed
                coef, terms = terms.coef, None
                self._update.fit_one_step(coef, self._labels)
            else:
                self._update.fit(
                    terms.coef, terms.source, terms.propagation, self._row_blocks, self._fits_cache
                )
        self.derivatives_ = getattr(self._update, "derivatives", None)
        if isinstance(self._update, SinglePoint):  # it may drop the leaves by row
            self._train = self._update.train

    @property
    def derivatives_(self):
        if "_derivatives" not in vars(self):
            raise AttributeError("derivatives_ is set by fit")
        if self._derivatives is None and isinstance(getattr(self, "_update", None), SinglePoint):
            # unit weights: kept in the tiled layout only, formed on first access
            self._derivatives = self._update.dense_derivatives()
        return self._derivatives

    @derivatives_.setter
    def derivatives_(self, value):
        self._derivatives = value

    def _label_edit_state(self, targets):
        # first order in a soft move of each row's label toward its new label: the
        # update set of the fit run again with the removal's source g + vbar h
        # replaced by its change per unit move (_label_source)
        ens = self.ensemble_
        if ens.objective in _NONLINEAR_IN_LABEL:
            raise NotImplementedError(
                f"LeafInfluence.label_edit: the {ens.objective} gradient is not linear in "
                "the label; use BoostIn.label_edit or LeafRefit.label_edit"
            )
        update = self._update
        leaves = update.training_leaves()
        y, w = self._explained_labels, self._explained_weights
        coef = propagation = terms = None
        if ens.full_hessian:
            source = _full_label_source(ens, y, targets)
        else:
            # the update sets other than AllPoints refit their terms; the leaves of
            # several steps need the steps each tree kept
            multi = ens.leaf_steps > 1 or ens.leaf_step_method != "newton"
            if not isinstance(update, AllPoints) or multi:
                terms = leaf_terms(ens, leaves, y, w, kappa=True, terms=True)
                coef, propagation = terms.coef, terms.propagation
            source = _label_source(ens, leaves, y, targets, terms)
        return update.label_edit_state(
            source, coef, propagation, self._row_blocks, self._fits_cache
        )

    def _label_edit_block(self, q, context, state):
        return self._update.label_edit_block(q, state, self._row_blocks)

    @property
    def _fills_out(self):
        # the single-point product writes into the transform's output (no block memory)
        update = getattr(self, "_update", None)
        return update is not None and update.fills_out

    def _influence_block(self, q, context, out=None):
        return self._update.influence_block(q, out, self._row_blocks)

    def _global_from_queries(self, q, m, context):
        return self._update.global_influence(q, self._row_blocks)

    def _self_influence(self):
        return self._update.self_influence(self._row_blocks)


class LeafRefit(_LeafBase):
    """LeafRefit: leave-one-out with the tree structure fixed.

    The exact effect of removing training row ``i`` when every split and the bias are
    kept and every leaf is re-fitted, tree by tree, as a Newton step on the rows
    without ``i``, with gradients at each row's re-trained scores **before** that tree
    (:ref:`methods-leaf-refit`)::

        I(i, e) = L(y_e, F'^{(-i)}(x_e)) - L(y_e, F(x_e)).

    It is the non-linearised counterpart of :class:`LeafInfluence`.

    Parameters
    ----------
    estimator : object, default=None
        A gradient-boosted model of LightGBM, XGBoost, CatBoost or scikit-learn
        (fitted, ``FrozenEstimator``, raw Booster or ``Pipeline``: explained as given;
        unfitted: cloned and fitted in ``fit``; ``None``: a small
        ``HistGradientBoosting`` model). Random forests are refused.
    update_set : int, default=-1
        The rows whose gradients are re-evaluated after the removal. ``-1``: all rows
        (the exact fixed-structure refit). ``0``: only the removed row's own leaves
        change. ``k >= 1``: additionally the rows of the ``k`` leaves of each tree
        with the largest summed absolute score change so far (ties toward the lower
        leaf id).
    check_leaf_model : {"raise", "warn"}, default="raise"
        What to do when the stored leaves are not reproduced by the model's leaf rule
        on the training data: raise an error naming the setting, or warn and return an
        approximation.
    atol, rtol : float, default=1e-5
        Tolerances of the leaf-model check.
    block_size : "auto" or int, default="auto"
        Removed rows refitted together. ``"auto"``: as many as ``chunk_memory_mb``
        allows.
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
    n_features_in_ : int
    feature_names_in_ : ndarray

    Notes
    -----
    N training rows, T trees, Λ leaves, M queries, r removed rows per block.
    The refit of every row costs O(N^2 T) in all (O(N r) per tree and block, plus one
    gradient evaluation per changed row and round; the refit is non-linear, so there
    is no reverse mode), with O(N K) memory per thread. ``fit`` runs it once and keeps
    the leaf changes (N x Λ floats) and the self-influence when they fit in
    ``chunk_memory_mb``; otherwise every block of queries (and ``self_influence``)
    recomputes them block by block. A query then costs O(N T) per query.

    Losses are evaluated on raw scores **without** the probability clip of the
    paper's evaluation (stable log-sigmoid and log-softmax; the squared loss keeps its
    factor 1/2): clipping would make the influence exactly zero for every confidently
    classified query. Multiclass models are refitted with the full softmax: the values
    are exact for every objective.

    ``F`` in the formula is the library's model; the refit recomputes every leaf in
    float64, so for libraries that compute gradients in float32 (LightGBM, XGBoost,
    HistGradientBoosting) every value also carries the tiny common change of refitting
    with all rows (about 1e-7 relative).

    Sign: positive = helpful (removing the row would raise the query's loss). Queries
    without labels: classifiers explain their own predicted label; regressors the
    predicted value (``F(x_e) - F'(x_e)``).

    ``label_edit`` (``update_set=-1``): the same fixed-structure refit with the row
    kept but relabelled, every leaf recomputed by the rule (one Newton step, the steps
    each tree kept for CatBoost, the K x K system for CatBoost ``MultiClass``); exact,
    not linearised (checked against numpy refits to the float32 rounding of the stored
    leaves). Cost as ``fit``'s refits, O(N^2 T) per call for N edited rows.

    Reference deviation: the reference implementation evaluated the gradients at the
    scores after each tree instead of before it; this estimator follows the
    definition.

    References
    ----------
    .. [1] B. Sharchilev, Y. Ustinovsky, P. Serdyukov and M. de Rijke. Finding
       Influential Training Samples for Gradient Boosted Decision Trees. ICML 2018.
    .. [2] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import GradientBoostingClassifier
    >>> from skinfluence import LeafRefit
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X, y = X[:200], y[:200]
    >>> model = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> explainer = LeafRefit(model).fit(X, y)
    >>> explainer.transform(X[:3], y[:3]).shape
    (3, 200)
    >>> explainer.self_influence().shape
    (200,)
    """

    def _fit_influence(self, X, leaves, y_enc, sample_weight):
        terms = self._fit_common(leaves, y_enc, sample_weight, False)
        ens = self.ensemble_
        n, K = len(leaves), ens.n_outputs
        vals = ens.leaf_values[ens.flat_leaves(leaves)].reshape(n, ens.n_rounds, K)
        before = np.cumsum(vals, axis=1) - vals + ens.bias[None, None, :]
        self._refit = _li.RefitInputs(
            np.ascontiguousarray(before.reshape(n, -1)),
            terms.gradients,
            terms.hessians,
            terms.weights,
            self._labels,
            terms.gradient_sums,
            terms.hessian_sums,
            ens.l2,
            ens.leaf_values,
            ens.learning_rates,
            ens.constant_tree,
            ens.objective_code,
            ens.kernel_param,
            terms.steps_taken,
            terms.step_scales,
            ens.leaf_step_method == "gradient",
            float(ens.max_delta_step),
            terms.recomputed,
        )
        if ens.full_hessian:  # K x K Newton leaves (_full_hessian)
            self._refit = _full_hessian.refit_inputs(ens, leaves, y_enc, terms.weights)
        self._final_scores = terms.final_scores
        # the update set of this fit: queries follow it even if the parameter changes
        self._n_top = int(self.update_set)
        self._leaf_changes = None
        self._self_values = None
        if self._fits_cache():
            leaf_changes = np.empty((n, ens.n_leaves_total))
            self._self_values = np.empty(n)
            with _numba_threads(self.n_jobs):
                for rows, d, ds in self._refit_blocks():
                    leaf_changes[rows] = d
                    self._self_values[rows] = self._self_from(rows, ds)
            self._leaf_changes = leaf_changes

    def _label_edit_state(self, targets):
        if self._n_top != -1:
            raise NotImplementedError(
                "LeafRefit.label_edit needs update_set=-1 (every row refitted; the "
                "smaller update sets are not implemented for label edits)"
            )
        return np.ascontiguousarray(targets, dtype=np.float64)

    def _label_edit_block(self, q, context, targets):
        # the exact fixed-structure refit with each row relabelled, in blocks of rows
        out = np.zeros((len(q["flat"]), self.n_train_))
        K, edited = self.ensemble_.n_outputs, targets != self._refit.labels
        full = self.ensemble_.full_hessian
        kernel = _full_hessian.relabel_block if full else _li.relabel_block
        for rows in self._row_blocks("label edit"):
            rows = rows[edited[rows]]  # an unchanged label changes nothing
            if not len(rows):
                continue
            dv, _ = kernel(rows, targets[rows], self._train, self._refit)
            dF = _li.gather_leaf_sums(q["flat"], dv, K)
            out[:, rows] = _loss_change(context, q["y"], q["F"], dF, self.ensemble_.objective_param)
        return out

    def _self_from(self, rows, dself):
        labels = self._refit.labels[rows]
        ens = self.ensemble_
        change = _loss_change(
            ens.objective, labels, self._final_scores[rows], dself[:, :, None], ens.objective_param
        )
        return change[:, 0]

    def _refit_blocks(self, desc="refit"):
        """``(rows, leaf changes, own score changes)`` of each block of removed rows."""
        for rows in self._row_blocks(desc):
            kernel = _full_hessian.refit_block if self.ensemble_.full_hessian else _li.refit_block
            dv, dself = kernel(rows, self._train, self._refit, self._n_top)
            yield rows, dv, dself

    def _leaf_change_blocks(self):
        if self._leaf_changes is not None:
            yield np.arange(self.n_train_), self._leaf_changes
        else:
            for rows, dv, _ in self._refit_blocks():
                yield rows, dv

    def _influence_block(self, q, context):
        out = np.empty((len(q["flat"]), self.n_train_))
        K = self.ensemble_.n_outputs
        for rows, dv in self._leaf_change_blocks():
            dF = _li.gather_leaf_sums(q["flat"], dv, K)
            out[:, rows] = _loss_change(context, q["y"], q["F"], dF, self.ensemble_.objective_param)
        return out

    def _self_influence(self):
        if self._self_values is not None:
            return self._self_values.copy()
        out = np.empty(self.n_train_)
        for rows, _, dself in self._refit_blocks("self-influence"):
            out[rows] = self._self_from(rows, dself)
        return out
