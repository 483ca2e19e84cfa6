"""AXIL: a squared-error boosted model's prediction as a weighted sum of the training
targets (Geertsema and Lu, 2023)."""

import warnings

import numba
import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._ensemble import LeafModelError
from ._kernels import _axil, _leaves, _trees
from ._leaf_rule import leaf_terms
from .base import BaseInfluence, _fit_model, _numba_threads

__all__ = ["AXIL"]

_BIAS = ("auto", "constant")


class AXIL(BaseInfluence):
    """AXIL weights: each prediction as a linear combination of the training targets.

    A gradient-boosted model trained with the squared error, whose leaves are Newton
    steps (unit hessians: ``v = eta * sum_j w_j (y_j - F(x_j)) / (sum_j w_j +
    lambda)``), predicts ``F(x) = sum_i k_i(x) y_i + c(x)`` exactly: every leaf value is
    linear in the residuals of its rows, and the scores those residuals are taken at
    are themselves linear in the targets. ``k_i(x)`` is the AXIL weight of training row
    ``i`` for query ``x``; ``c(x)`` (:meth:`intercept`) is the part of the prediction no
    target carries. When the initial score is the (weighted) mean of the training
    targets (every library's default for the squared error) it is spread over the rows
    with weights ``w_i / sum(w)``; then, for a model without constant leaves,
    ``c(x) = 0`` and ``sum_i k_i(x) = 1``. The tree structure (which rows share a leaf)
    is held fixed: ``k_i(x)`` is the exact derivative of the prediction with respect to
    ``y_i`` at fixed structure, not the effect of removing row ``i``.

    Parameters
    ----------
    estimator : object, default=None
        A squared-error gradient-boosted regressor: LightGBM ``regression``, XGBoost
        ``reg:squarederror``, CatBoost ``RMSE``, scikit-learn
        ``GradientBoostingRegressor`` / ``HistGradientBoostingRegressor`` (fitted,
        ``FrozenEstimator``, raw Booster or ``Pipeline``: explained as given; unfitted:
        cloned and fitted in ``fit``; ``None``: a small ``HistGradientBoostingRegressor``).
        Also scikit-learn ``RandomForestRegressor`` / ``ExtraTreesRegressor`` grown on
        all rows (``bootstrap=False``; each leaf the weighted mean of its targets).
        Classifiers, other objectives and bootstrap forests are refused.
    bias : {"auto", "constant"}, default="auto"
        ``"auto"``: when the model's initial score equals the weighted mean of the
        training targets (to float32 rounding), attribute it to the rows (weights
        ``w_i / sum(w)``); otherwise keep it as a constant. ``"constant"``: always keep
        it as a constant, carried by :meth:`intercept`.
    check_leaf_model : {"raise", "warn"}, default="raise"
        What to do when the stored leaves are not reproduced by the model's leaf rule
        on the training data (row subsampling, L1, dart, ...; for a forest: leaves that
        are not the weighted means of the targets, as with bootstrap samples): raise an
        error, or warn and return weights that do not reproduce the predictions.
        Column subsampling keeps every row in every leaf sum and is exact.
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
    n_train_ : int
        Number of training rows.
    bias_ : float
        The model's initial score (0 for forests).
    bias_attributed_ : bool
        Whether ``bias_`` was attributed to the rows as their weighted mean (else it
        is part of :meth:`intercept`).
    target_derivatives_ : ndarray of shape (n_train, n_trees)
        ``a[j, t]``: the derivative of the (shrunk) value of the leaf row ``j`` reaches
        in tree ``t`` with respect to ``y_j``, ``eta w_j / (W_leaf + lambda)`` for one
        Newton step (0 in constant leaves); for a forest ``w_j / (T W_leaf)``, the row's
        weight in the tree's share of the average.
    n_features_in_ : int
    feature_names_in_ : ndarray

    Notes
    -----
    **What the outputs mean.** ``transform(X)`` (no labels) returns the weights
    ``k_i(x)``: an attribution of the prediction, not a change of a loss. A positive
    weight means the prediction moves with ``y_i``; ``k_i(x) y_i`` is row ``i``'s share
    of the prediction. ``transform(X, y)`` (query labels) returns
    ``I_i(x, y) = k_i(x) (y_i - F(x)) (y - F(x))``, the package's sign convention
    (positive = helpful): with the weights summing to 1, ``F(x)`` is a weighted average
    of the targets, and ``I_i`` is the first-order rise of the query's loss
    ``(F(x) - y)^2 / 2`` when row ``i``'s share of that average is removed and the
    others are rescaled to sum to 1. It is a heuristic of the weighted-average view,
    not the effect of retraining without the row. ``self_influence()`` is the diagonal
    of ``fit_transform(X, y)``, ``k_i(x_i) (y_i - F(x_i))^2``; :meth:`self_weights`
    gives ``k_i(x_i)`` (the leverage of a row on its own prediction).

    **Cost.** ``fit`` is O(N T) after routing and stores the leaf ids and the
    derivatives, 12 bytes per (row, tree). One query costs one backward pass over the
    trees, O(N T) (two passes over the rows per tree), with O(N + leaves) memory: the
    ``N x N`` matrix of the training rows is never built. Queries run in parallel in
    groups of up to 16 that share each tree's read of the training rows; the groups'
    accumulators (8 bytes per query and training row) stay within ``chunk_memory_mb``,
    and ``transform`` writes the weights into its output directly. Results do not
    depend on ``n_jobs``, the grouping or the blocks. ``global_influence`` is linear in the queries'
    leaf indicators: one pass without labels, two with, O(N T + n_query T) in all.
    ``self_weights`` and ``self_influence`` need one pass per training row,
    O(N^2 T), in blocks of ``chunk_memory_mb``. A forest's trees do not depend on
    each other: ``k_i(x) = sum_t w_i [same leaf] / (T W_leaf)`` is a leaf co-occurrence
    product (one multiply-add per training row sharing a leaf with the query, as for
    :class:`~skinfluence.BoostIn`), and ``self_weights`` is O(N T).

    ``label_edit``: the prediction is linear in the training targets, so relabelling
    row ``i`` moves it by ``k_i(x_e) (y*_i - y_i)`` exactly (the trees' structure held
    fixed, and the initial score moving with the targets as the library's
    ``boost_from_average``/mean would); the query's squared-loss change follows, or
    ``-k_i(x_e) (y*_i - y_i)`` without query labels. Same cost as ``transform``.
    Checked against numpy fixed-structure refits with the row relabelled (LightGBM
    without ``boost_from_average``, XGBoost with a fixed ``base_score``) to float32
    rounding.

    The weights reproduce the predictions, ``transform(X) @ y + intercept(X) ==
    predict(X)``, to float32 rounding for LightGBM, XGBoost, CatBoost and
    ``HistGradientBoostingRegressor`` (float32 leaves, labels or gradients) and to
    float64 rounding for ``GradientBoostingRegressor`` and forests; checked with and
    without sample weights and L2 regularisation (``tests/test_axil.py``). See
    :ref:`methods-axil`.

    References
    ----------
    .. [1] P. Geertsema and H. Lu. Instance-based Explanations for Gradient Boosting
       Machine Predictions with AXIL Weights. arXiv:2301.01864, 2023.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import HistGradientBoostingRegressor
    >>> from skinfluence import AXIL
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(X, y)
    >>> axil = AXIL(model).fit(X, y)
    >>> K = axil.transform(X[:3])
    >>> bool(np.allclose(K @ y, model.predict(X[:3])))
    True
    """

    _accepts_forests = True
    _fills_out = True

    def __init__(
        self,
        estimator=None,
        *,
        bias="auto",
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
        self.bias = bias
        self.check_leaf_model = check_leaf_model
        self.atol = atol
        self.rtol = rtol

    def _resolve_estimator(self, X, y, sample_weight):
        if self.estimator is not None:
            return super()._resolve_estimator(X, y, sample_weight)
        from ._adapters import DEFAULT_LIBRARY, _hooks

        model = _hooks(DEFAULT_LIBRARY).default_model(True, len(y))  # always a regressor
        return _fit_model(model, X, y, sample_weight), True

    def _fit_influence(self, X, leaves, y_enc, sample_weight):
        if self.bias not in _BIAS:
            raise ValueError(f"bias must be one of {_BIAS}, got {self.bias!r}")
        ens = self.ensemble_
        if ens.objective != "squared_error" or ens.n_outputs != 1:
            raise ValueError(
                f"AXIL needs a model trained with the squared error, got {ens.describe()}: "
                "only then is every leaf value, and so the prediction, a linear function "
                "of the training targets; use BoostIn, LeafInfluence or TREX"
            )
        self._y = np.ascontiguousarray(y_enc, dtype=np.float64)
        self._f = np.ascontiguousarray(ens.raw_from_leaves(leaves)[:, 0])
        self._leaves_t = np.ascontiguousarray(leaves.T)
        w = np.ones(len(leaves)) if sample_weight is None else sample_weight
        if ens.tree_type == "rf":
            a = self._fit_forest(leaves, w)
        else:
            a = self._fit_boosted(leaves, y_enc, sample_weight)
        self._a_t = np.ascontiguousarray(a.T)

    def _fit_boosted(self, leaves, y_enc, sample_weight):
        """The derivatives ``a`` of a boosted model; sets the constants and the bias."""
        ens = self.ensemble_
        self._check_leaf_model(
            leaves, y_enc, sample_weight, self.check_leaf_model, self.atol, self.rtol
        )
        terms = leaf_terms(ens, leaves, y_enc, sample_weight, kappa=True)
        # d v / d y_j = -d v / d F_j for the squared error (g = F - y, h = 1)
        a = -terms.coef[ens.flat_leaves(leaves)] * terms.propagation
        self._const = np.ascontiguousarray(np.where(terms.coef == 0, ens.leaf_values, 0.0))
        self._tiles = None
        w = terms.weights
        total = float(w.sum())
        b0 = float(ens.bias[0])
        mean = float(w @ self._y) / total if total > 0 else np.nan
        scale = float(np.abs(self._y).max()) if len(self._y) else 0.0
        self.bias_ = b0
        # the libraries store the initial score in float32 (relative rounding 6e-8)
        self.bias_attributed_ = bool(
            self.bias == "auto" and total > 0 and abs(b0 - mean) <= 1e-6 * max(scale, 1e-300)
        )
        if self.bias_attributed_:
            self._bias_a, self._bias_const = np.ascontiguousarray(w / total), 0.0
        else:
            self._bias_a, self._bias_const = np.zeros(len(w)), b0
        return a

    def _fit_forest(self, leaves, w):
        """The weights ``a`` of a forest whose leaves are weighted means of the targets
        (:ref:`methods-axil-forests`); refuses other forests."""
        ens = self.ensemble_
        if self.check_leaf_model not in ("raise", "warn"):
            raise ValueError(
                f"check_leaf_model must be 'raise' or 'warn', got {self.check_leaf_model!r}"
            )
        W = _trees.leaf_counts(leaves, ens.leaf_offsets, w)
        Wy = _trees.leaf_counts(leaves, ens.leaf_offsets, w * self._y)
        live = W > 0
        means = np.where(live, Wy / np.where(live, W, 1.0), 0.0)
        v = ens.leaf_values
        bad = live & (np.abs(means - v) > self.atol + self.rtol * np.abs(v))
        if bad.any():
            j = int(np.argmax(np.where(bad, np.abs(means - v), -np.inf)))
            msg = (
                f"{ens.describe()}: the leaves are not the weighted means of the training "
                f"targets of the rows given to fit ({int(bad.sum())} of {int(live.sum())} "
                f"leaves differ; worst: stored {v[j]:.8g}, mean {means[j]:.8g}). A forest "
                "grown on bootstrap samples (bootstrap=True, max_samples) or on other rows "
                "is not a weighted sum of these targets: AXIL explains forests trained on "
                "all rows (bootstrap=False, e.g. ExtraTreesRegressor's default)."
            )
            if self.check_leaf_model == "raise":
                raise LeafModelError(msg)
            warnings.warn(msg, UserWarning, stacklevel=4)
        self._const = np.zeros(ens.n_leaves_total)
        self.bias_, self.bias_attributed_ = 0.0, False
        self._bias_a, self._bias_const = np.zeros(len(w)), 0.0
        flat = ens.flat_leaves(leaves)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_leaf = np.where(live, 1.0 / (ens.n_trees * W), 0.0)
        a = w[:, None] * per_leaf[flat]
        self._tiles = _leaves.tiled(leaves, ens.leaf_offsets, a)
        return a

    @property
    def target_derivatives_(self):
        check_is_fitted(self, "_a_t")
        return self._a_t.T

    def _kernel_args(self):
        return self._leaves_t, self._a_t, self.ensemble_.leaf_offsets, self._const

    def _query_row_bytes(self):
        return 8 * (max(1, self.n_train_) + self.ensemble_.n_leaves_total)

    def _query_arrays(self, X, leaves, y_enc, objective):
        f = self.ensemble_.raw_from_leaves(leaves)[:, 0]
        y = np.full(len(leaves), np.nan) if y_enc is None else np.asarray(y_enc, np.float64)
        return {"leaves": leaves, "f": np.ascontiguousarray(f), "y": y}

    def _weights_block(self, leaves, out):
        """AXIL weights of a block of queries into ``out``; returns their intercepts."""
        leaves = np.ascontiguousarray(leaves, dtype=np.int32)
        if self.ensemble_.tree_type == "rf":
            ones = np.ones(leaves.shape)
            offsets = self.ensemble_.leaf_offsets
            _leaves.tiled_product(
                leaves, ones, offsets, *self._tiles, self.n_train_, _leaves.TILE, out
            )
            return np.zeros(len(leaves))
        intercept = np.empty(len(leaves))
        _axil.query_weights(
            leaves,
            *self._kernel_args(),
            self._bias_a,
            self._bias_const,
            self._group_width(),
            out,
            intercept,
        )
        return intercept

    def transform(self, X, y=None):
        """AXIL weights of every training row for every query row, or (with ``y``) the
        loss influence derived from them.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_query, n_features)
        y : array-like of shape (n_query,), default=None
            Query labels. Without: the weights ``k_i(x)``, the weight of target ``y_i``
            in the prediction of ``x`` (an attribution of the prediction; positive: the
            prediction moves with ``y_i``). With: ``k_i(x) (y_i - F(x)) (y - F(x))``,
            positive = helpful (removing the row's share of the weighted average would
            raise the query's squared loss; see the class notes).

        Returns
        -------
        weights : ndarray of shape (n_query, n_train)
            ``weights @ y_train + intercept(X)`` is the raw prediction (without ``y``).
        """
        return super().transform(X, y)

    def _group_width(self, rows=1):
        """Queries per group of the kernel: at most 16, and the ``rows`` arrays of
        ``width x n_train`` floats each thread holds within ``chunk_memory_mb``."""
        per_query = 8 * rows * self.n_train_ * numba.get_num_threads()
        return int(max(1, min(_axil.GROUP, self._memory_budget() // per_query)))

    def _influence_block(self, q, context, out=None):
        if out is None:
            out = np.empty((len(q["leaves"]), self.n_train_))
        self._weights_block(q["leaves"], out)
        if context != "value":  # labelled: k_i (y_i - F) (y - F)
            for r, (f, y) in enumerate(zip(q["f"], q["y"])):
                out[r] *= (self._y - f) * (y - f)
        return out

    def _label_edit_state(self, targets):
        return np.asarray(targets, dtype=np.float64) - self._y

    def _label_edit_block(self, q, context, dy):
        # the prediction is linear in the targets: it moves by k_i(x_e) (y*_i - y_i)
        dF = np.empty((len(q["leaves"]), self.n_train_))
        self._weights_block(q["leaves"], dF)
        dF *= dy[None, :]
        if context == "value":  # the prediction itself: psi = -F
            return -dF
        r = (q["f"] - q["y"])[:, None]
        return dF * (r + 0.5 * dF)  # 0.5 (F + dF - y)^2 - 0.5 (F - y)^2

    def _pass(self, seed, seed_bias):
        """Weights of the targets in ``sum_l seed[l] v_l + seed_bias * F_0``."""
        rho = np.zeros(self.n_train_)
        if self.ensemble_.tree_type == "rf":  # no tree depends on another
            offsets = self.ensemble_.leaf_offsets
            for t, (row_leaves, row_a) in enumerate(zip(self._leaves_t, self._a_t)):
                rho += row_a * seed[offsets[t] + row_leaves]
            return rho
        total, constant = _axil.backward(
            np.ascontiguousarray(seed, dtype=np.float64), *self._kernel_args(), rho
        )
        _axil.finish(rho, total, constant, float(seed_bias), self._bias_a, self._bias_const)
        return rho

    def _global_from_queries(self, q, m, context):
        ens = self.ensemble_
        flat = ens.flat_leaves(q["leaves"]).ravel()

        def seeds(per_query):
            s = np.bincount(flat, np.repeat(per_query, ens.n_trees), ens.n_leaves_total)
            return s, float(per_query.sum())

        if context == "value":
            return self._pass(*seeds(np.ones(m)))
        r = q["y"] - q["f"]  # sum_e k_i(x_e) (y_i - f_e) r_e, two passes
        return self._y * self._pass(*seeds(r)) - self._pass(*seeds(q["f"] * r))

    def _self_weights(self):
        if self.ensemble_.tree_type == "rf":  # each row shares its own leaves
            return self._a_t.sum(axis=0)
        return _axil.self_weights(
            *self._kernel_args(), self._bias_a, self._bias_const, self._group_width(2)
        )

    def _self_influence(self):
        return self._self_weights() * (self._y - self._f) ** 2

    def self_weights(self):
        """``k_i(x_i)``: the weight of each training row's target in its own prediction,
        shape ``(n_train,)`` (0 for the rows the model held out).

        The diagonal of ``transform(X_train)``, one backward pass per row: O(N^2 T).
        """
        check_is_fitted(self, "ensemble_")
        with _numba_threads(self.n_jobs):
            return self._to_rows(self._self_weights().astype(self._out_dtype()))

    def intercept(self, X):
        """The part of each prediction that no training target carries.

        ``transform(X) @ y_train + intercept(X)`` is the model's raw prediction. It is 0
        when the initial score was attributed to the rows (``bias_attributed_``) and no
        leaf is constant (a tree the library did not fit to the rows, a clamped leaf).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_query, n_features)

        Returns
        -------
        intercept : ndarray of shape (n_query,)
        """
        q, _, m = self._prepare(X, None)
        if self._bias_const == 0.0 and not self._const.any():
            return np.zeros(m)
        out = np.empty(m)
        with _numba_threads(self.n_jobs):
            for a, b, blk in self._blocks(q, m, "intercept"):
                buf = np.empty((b - a, self.n_train_))
                out[a:b] = self._weights_block(blk["leaves"], buf)
        return out
