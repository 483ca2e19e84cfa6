"""Similarity estimators: TreeSim, LeafSim and InputSim (Brophy et al., JMLR 2023).

The influence of training row ``i`` on query ``e`` is a similarity times a sign
(:ref:`methods-similarity-sign`): classification ``+1`` when the labels agree, else ``-1``;
regression, with ``p`` the model's prediction at the query (the inverse link of the raw
score, on the scale of the targets), ``+1`` when the training target lies on the other
side of ``p`` than the query's target (when the model over-predicts, smaller targets are
helpful).
"""

import numpy as np

from ._kernels import _similarity as _ksim
from ._objectives import predict_from_raw
from ._trex import KERNELS, _KernelFeaturesMixin, _TreeKernel
from .base import BaseInfluence

__all__ = ["InputSim", "LeafSim", "TreeSim"]

_MEASURES = {"dot_prod": 0, "cosine": 1, "euclidean": 2}


class _SignRuleMixin:
    """The sign rule of :ref:`methods-similarity-sign`, shared by the similarity estimators."""

    def _prediction(self, leaves):
        """The model's prediction (regression), on the scale of the targets."""
        ens = self.ensemble_
        return np.ascontiguousarray(predict_from_raw(ens.objective, ens.raw_from_leaves(leaves)))

    def _fit_labels(self, leaves, y_enc):
        ens = self.ensemble_
        self._y_train = np.ascontiguousarray(y_enc, dtype=np.float64)
        if ens.is_regression:
            self._p_train = self._prediction(leaves)

    def _sign_arrays(self, leaves, y_enc, objective):
        ens = self.ensemble_
        m = len(leaves)
        if not ens.is_regression:
            return {"y": np.ascontiguousarray(y_enc, dtype=np.float64), "p": np.zeros(m)}
        p = self._prediction(leaves)
        if objective == "value":
            return {"y": np.zeros(m), "p": p}
        return {"y": np.ascontiguousarray(y_enc, dtype=np.float64), "p": p}

    def _query_context(self, X, y_enc, objective):
        """The sign rule of the call: 0 labels agree, 1 targets around the
        prediction, 2 label-free regression (the prediction itself)."""
        if not self.ensemble_.is_regression:
            return 0
        return 2 if objective == "value" else 1

    def _apply_sign(self, out, q, rule):
        _ksim.apply_sign(out, self._y_train, q["y"], q["p"], rule)
        return out

    def _label_edit_state(self, targets):
        return np.ascontiguousarray(targets, dtype=np.float64)

    def _label_edit_block(self, q, context, targets):
        # sim (s(y_i) - s(y*_i)): the row's influence minus its influence relabelled
        old = self._similarity_block(q)
        new = old.copy()
        _ksim.apply_sign(old, self._y_train, q["y"], q["p"], context)
        _ksim.apply_sign(new, targets, q["y"], q["p"], context)
        with np.errstate(over="ignore"):
            old -= new
        big = self._big()  # +-2 x the zero-distance value stays finite
        np.clip(old, -big, big, out=old)
        old[:, targets == self._y_train] = 0.0
        return old

    def _self_sign(self):
        """``s(i, i)`` by the same comparisons as :func:`apply_sign`."""
        if not self.ensemble_.is_regression:
            return np.ones(self.n_train_)
        y, p = self._y_train, self._p_train
        return np.where((p >= y) != (y >= p), 1.0, -1.0)


class _TreeSimilarity(_KernelFeaturesMixin, _SignRuleMixin, BaseInfluence):
    """Shared implementation of TreeSim and LeafSim."""

    def _kernel_code(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def _measure_code(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def _fit_influence(self, X, leaves, y_enc, sample_weight):
        kernel, measure = self._kernel_code(), self._measure_code()
        if measure not in _MEASURES:
            raise ValueError(f"measure must be one of {tuple(_MEASURES)}, got {measure!r}")
        # a partition on a cluster: the leaf counts of all training rows
        counts = getattr(self, "_global_leaf_counts", None)
        self._kernel = _TreeKernel(self.ensemble_, leaves, kernel, counts)
        self._fit_labels(leaves, y_enc)
        self._fast_global = (
            self._kernel.is_leaf_kernel
            and measure == "dot_prod"
            and not self.ensemble_.is_regression
        )
        self._train_leaves = leaves if self._fast_global else None

    def _query_arrays(self, X, leaves, y_enc, objective):
        q = {"leaves": leaves, "sq": self._kernel.squared_norms(leaves)}
        q.update(self._sign_arrays(leaves, y_enc, objective))
        return q

    def _similarity_block(self, q):
        """The unsigned similarities ``(m, n_train)`` of a block of queries."""
        kv = self._kernel.gram(q["leaves"])
        _ksim.from_gram(
            kv,
            q["sq"],
            self._kernel.train_sq_norms,
            _MEASURES[self._measure_code()],
            self._big(),
            kv,
        )
        return kv

    def _influence_block(self, q, context):
        return self._apply_sign(self._similarity_block(q), q, context)

    def _self_influence(self):
        sq = self._kernel.train_sq_norms
        measure = self._measure_code()
        if measure == "dot_prod":
            sim = sq.copy()
        elif measure == "cosine":
            den = np.sqrt(sq) * np.sqrt(sq)
            sim = np.divide(sq, den, out=np.zeros_like(sq), where=den > 0)
        else:
            sim = np.full(self.n_train_, self._big())
        return sim * self._self_sign()

    def _global_from_queries(self, q, m, context):
        if not self._fast_global:
            return super()._global_from_queries(q, m, context)
        ens = self.ensemble_
        coef = self._kernel.leaf_coef
        return _ksim.leaf_class_global(
            self._train_leaves,
            self._y_train,
            np.ascontiguousarray(q["leaves"]),
            q["y"],
            ens.leaf_offsets,
            np.ascontiguousarray(coef * coef),
            len(self.classes_),
        )


class TreeSim(_TreeSimilarity):
    """TreeSim: similarity of training and query rows in a tree-kernel space.

    Rows are compared through a tree-kernel feature map ``phi`` (the same maps as
    :class:`~skinfluence.TREX`: reached leaves or root-to-leaf paths, optionally
    weighted by leaf size or leaf value) with a dot product, a cosine or an inverse
    euclidean distance, and the similarity is signed by whether the two rows'
    targets agree.

    Parameters
    ----------
    estimator : object, default=None
        A tree ensemble of LightGBM, XGBoost, CatBoost or scikit-learn
        (gradient boosting, random forest or extra trees); see
        :class:`~skinfluence.base.BaseInfluence`.
    measure : {"dot_prod", "cosine", "euclidean"}, default="dot_prod"
        ``phi_i . phi_e``; ``phi_i . phi_e / (|phi_i| |phi_e|)`` (0 for a zero
        vector); or ``1 / ||phi_i - phi_e||`` with a zero distance mapped to ``2**-32``
        times the largest finite value of the output dtype (about 4.2e298 in float64:
        finite, and sums over many queries stay finite).
    kernel : str, default="lpw"
        The feature map, one of ``"to_"``, ``"lp_"``, ``"lpw"``, ``"lo_"``, ``"low"``,
        ``"fp_"``, ``"fpw"``, ``"fo_"``, ``"fow"`` (see :class:`~skinfluence.TREX`).
        Weights use the unweighted routing counts of the training rows.
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
    ``label_edit``: ``sim(i, e) (s_{y_i}(i, e) - s_{y*_i}(i, e))``, the row's influence
    minus the influence it would get with its new label (``+-2 sim`` when the edit
    flips the sign, else 0); a ranking heuristic at the cost of ``transform``, equal
    bit for bit to the difference of the two ``transform`` values.

    ``fit`` costs O(N T) (N training rows, T trees): for the leaf kernels the training
    rows grouped by leaf within tiles (10 bytes per (row, tree)), for ``to_`` and the
    path kernels a sparse ``phi`` (one or ``depth + 1`` nonzeros per tree). A query
    costs, for the leaf kernels, one multiply-add per training row sharing one of its
    leaves (the co-occurrence kernel of :class:`~skinfluence.BoostIn`, in parallel over
    tiles of training rows), otherwise a sparse-dense product O(nnz(phi)) in parallel
    over query rows; queries run in blocks of ``chunk_memory_mb``. ``self_influence``
    is O(N T). ``global_influence`` is O(N T + n_val T) for classifiers with a leaf
    kernel and the dot product (per-leaf, per-class counts of the queries), and sums
    query blocks otherwise. Distances at rounding level
    (``||phi_i - phi_e||^2 <= 1e-12 (|phi_i|^2 + |phi_e|^2)``) count as zero.

    Sign: ``I(i, e) = sim(i, e) * s(i, e)``. Classification: ``s = +1`` when
    ``y_i == y_e``, else ``-1`` (without query labels, ``y_e`` is the model's
    predicted label). Regression with labels, ``p = F(x_e)`` the model's prediction:
    ``sigma_e = +1`` if ``p >= y_e`` else ``-1``, ``sigma_i = +1`` if ``y_i >= p``
    else ``-1``, ``s = +1`` when they differ (when the model over-predicts, training
    targets below ``p`` are helpful). Regression without labels (influence on the
    prediction): ``s = +1`` if ``y_i > p`` else ``-1``.

    References
    ----------
    .. [1] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> from skinfluence import TreeSim
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> explainer = TreeSim(model, measure="cosine").fit(X, y)
    >>> explainer.transform(X[:2], y[:2]).shape
    (2, 569)
    >>> explainer.self_influence()[:3]
    array([1., 1., 1.])
    """

    def __init__(
        self,
        estimator=None,
        *,
        measure="dot_prod",
        kernel="lpw",
        dtype=np.float64,
        chunk_memory_mb=256,
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            estimator, dtype=dtype, chunk_memory_mb=chunk_memory_mb, n_jobs=n_jobs, verbose=verbose
        )
        self.measure = measure
        self.kernel = kernel

    def _kernel_code(self):
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        return self.kernel

    def _measure_code(self):
        return self.measure


class LeafSim(_TreeSimilarity):
    """LeafSim: shared leaves weighted by the inverse squared leaf size (the paper's
    "TreeSim").

    ``sim(i, e) = sum_t 1[x_i and x_e reach the same leaf of tree t] / n_leaf**2``,
    ``n_leaf`` counting the training rows of that leaf, signed by whether the two
    rows' targets agree. Equals ``TreeSim(kernel="lpw", measure="dot_prod")``, computed
    from the leaf ids without building feature vectors. No hyperparameters.

    Parameters
    ----------
    estimator : object, default=None
        A tree ensemble of LightGBM, XGBoost, CatBoost or scikit-learn
        (gradient boosting, random forest or extra trees); see
        :class:`~skinfluence.base.BaseInfluence`.
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
    ``label_edit``: ``sim(i, e) (s_{y_i}(i, e) - s_{y*_i}(i, e))``, the row's influence
    minus the influence it would get with its new label (``+-2 sim`` when the edit
    flips the sign, else 0); a ranking heuristic at the cost of ``transform``, equal
    bit for bit to the difference of the two ``transform`` values.

    ``fit`` groups the training rows by leaf within tiles (O(N T), 10 bytes per
    (row, tree)). A query costs one multiply-add per training row sharing one of its
    leaves, ``sum_t n_leaf_t(e) <= N T`` (the co-occurrence kernel of
    :class:`~skinfluence.BoostIn`), in blocks of ``chunk_memory_mb`` and in parallel
    over tiles of training rows. ``self_influence`` is ``s(i, i) sum_t 1 / n_leaf**2``, O(N T).
    ``global_influence`` is O(N T + n_val T) for classifiers (per-leaf, per-class counts
    of the queries) and sums query blocks for regressors.

    Sign: ``I(i, e) = sim(i, e) * s(i, e)``. Classification: ``s = +1`` when
    ``y_i == y_e``, else ``-1`` (without query labels, ``y_e`` is the model's
    predicted label). Regression with labels, ``p = F(x_e)`` the model's prediction:
    ``sigma_e = +1`` if ``p >= y_e`` else ``-1``, ``sigma_i = +1`` if ``y_i >= p``
    else ``-1``, ``s = +1`` when they differ (when the model over-predicts, training
    targets below ``p`` are helpful). Regression without labels (influence on the
    prediction): ``s = +1`` if ``y_i > p`` else ``-1``.

    References
    ----------
    .. [1] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023 (where this method is called "TreeSim").

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import HistGradientBoostingRegressor
    >>> from skinfluence import LeafSim
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = HistGradientBoostingRegressor(max_iter=20, random_state=0).fit(X, y)
    >>> explainer = LeafSim(model).fit(X, y)
    >>> idx, val = explainer.top_k(X[:1], y[:1], k=3)
    >>> idx.shape
    (1, 3)
    """

    def _kernel_code(self):
        return "lpw"

    def _measure_code(self):
        return "dot_prod"


class InputSim(_SignRuleMixin, BaseInfluence):
    """InputSim: similarity of the raw input feature vectors.

    Compares the feature vectors the model sees (after a pipeline's earlier steps)
    with an inverse euclidean distance, a dot product or a cosine, signed by whether
    the two rows' targets agree. A baseline that ignores the model's trees; only its
    predictions enter the sign rule for regression.

    Parameters
    ----------
    estimator : object, default=None
        Any supported model; see :class:`~skinfluence.base.BaseInfluence`.
    measure : {"euclidean", "dot_prod", "cosine"}, default="euclidean"
        ``1 / ||x_i - x_e||`` (a zero distance maps to ``2**-32`` times the largest
        finite value of the output dtype, about 4.2e298 in float64), ``x_i . x_e`` or
        ``x_i . x_e / (|x_i| |x_e|)`` (0 for a zero vector). The features must be
        numeric; NaN propagates into the similarity.
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
    ``label_edit``: ``sim(i, e) (s_{y_i}(i, e) - s_{y*_i}(i, e))``, the row's influence
    minus the influence it would get with its new label (``+-2 sim`` when the edit
    flips the sign, else 0); a ranking heuristic at the cost of ``transform``, equal
    bit for bit to the difference of the two ``transform`` values.

    ``fit`` stores the training features as float64 (8 N d bytes). A query costs
    O(N d), in blocks of ``chunk_memory_mb`` and in parallel over query rows;
    distances are computed from the differences (not from norms), so only identical
    rows have distance zero. ``self_influence`` is O(N d); ``global_influence`` sums
    query blocks.

    Sign: ``I(i, e) = sim(i, e) * s(i, e)``. Classification: ``s = +1`` when
    ``y_i == y_e``, else ``-1`` (without query labels, ``y_e`` is the model's
    predicted label). Regression with labels, ``p = F(x_e)`` the model's prediction:
    ``sigma_e = +1`` if ``p >= y_e`` else ``-1``, ``sigma_i = +1`` if ``y_i >= p``
    else ``-1``, ``s = +1`` when they differ (when the model over-predicts, training
    targets below ``p`` are helpful). Regression without labels (influence on the
    prediction): ``s = +1`` if ``y_i > p`` else ``-1``.

    References
    ----------
    .. [1] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023 ("Input Sim.").

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skinfluence import InputSim
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, y)
    >>> explainer = InputSim(model).fit(X, y)
    >>> M = explainer.transform(X[:2], y[:2])
    >>> bool(M[0, 0] == np.finfo(np.float64).max * 2.0**-32)
    True
    """

    def __init__(
        self,
        estimator=None,
        *,
        measure="euclidean",
        dtype=np.float64,
        chunk_memory_mb=256,
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            estimator, dtype=dtype, chunk_memory_mb=chunk_memory_mb, n_jobs=n_jobs, verbose=verbose
        )
        self.measure = measure

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False  # a distance to a missing value is undefined
        return tags

    def _features(self, X):
        Z = self.ensemble_._pre(X)
        try:
            Z = np.asarray(Z, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                "InputSim needs numeric features (after the pipeline's preprocessing): "
                f"{exc}; encode categorical columns first"
            ) from exc
        Z = np.ascontiguousarray(Z.reshape(len(Z), -1))
        if not np.isfinite(Z).all():
            rows = int((~np.isfinite(Z)).any(axis=1).sum())
            raise ValueError(
                f"InputSim measures distances between feature rows, and {rows} row(s) "
                "have missing or infinite features (after the pipeline's preprocessing); "
                "impute them first (e.g. a SimpleImputer in the pipeline) or use LeafSim / "
                "TreeSim, which route missing values through the trees"
            )
        return Z

    def _fit_influence(self, X, leaves, y_enc, sample_weight):
        if self.measure not in _MEASURES:
            raise ValueError(f"measure must be one of {tuple(_MEASURES)}, got {self.measure!r}")
        self._X_train = self._features(X)
        self._fit_labels(leaves, y_enc)

    def _query_arrays(self, X, leaves, y_enc, objective):
        q = {"X": self._features(X)}
        q.update(self._sign_arrays(leaves, y_enc, objective))
        return q

    def _similarity_block(self, q):
        """The unsigned similarities ``(m, n_train)`` of a block of queries."""
        out = np.empty((len(q["X"]), self.n_train_))
        _ksim.input_similarity(q["X"], self._X_train, _MEASURES[self.measure], self._big(), out)
        return out

    def _influence_block(self, q, context):
        return self._apply_sign(self._similarity_block(q), q, context)

    def _self_influence(self):
        sq = np.einsum("ij,ij->i", self._X_train, self._X_train)
        if self.measure == "dot_prod":
            sim = sq
        elif self.measure == "cosine":
            den = np.sqrt(sq) * np.sqrt(sq)
            sim = np.divide(sq, den, out=np.zeros_like(sq), where=den > 0)
        else:
            sim = np.full(self.n_train_, self._big())
        return sim * self._self_sign()
