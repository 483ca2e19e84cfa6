"""TreeEnsemble: the one framework-neutral view of a fitted tree ensemble.

Every influence method reads a fitted model only through this class; every library
adapter (``skinfluence._adapters``) fills it. All arrays are flat numpy arrays, with no
Python object per tree.
"""

from dataclasses import dataclass, field

import numpy as np

from ._kernels import _trees
from ._objectives import OBJECTIVE_CODE, OBJECTIVES, is_regression


class ReconstructionError(ValueError):
    """The parsed ensemble does not reproduce the library's raw prediction."""


class LeafModelError(ValueError):
    """The stored leaf values are not single Newton steps on the training data."""


class TrainingDataMismatchError(ValueError):
    """The rows given to ``fit`` are not the rows the model was trained on."""


#: rows drawn uniformly (fixed seed) for the covering reconstruction check, besides a
#: row reaching each leaf; up to this many rows, every row is checked
RECONSTRUCTION_SAMPLE = 1000
#: the stored per-leaf statistics by ``leaf_stats_kind``, for messages
_STAT_NAMES = {"count": "counts", "weight": "weights", "hessian": "hessian sums (cover)"}
#: the leaf rule of ``full_hessian`` ensembles, for messages
_FULL_HESSIAN_STEP = "one Newton step -eta*(H+lambda*I)^-1*G (K x K softmax hessian)"


@dataclass
class TreeEnsemble:
    """A fitted tree ensemble as flat arrays.

    Trees are stored in round-major, class-inner order: tree ``t`` belongs to boosting
    round ``t // n_outputs`` and raw-score column ``t % n_outputs``. The leaves of tree
    ``t`` are numbered ``0 .. n_leaves[t] - 1``; the flat index of leaf ``l`` of tree
    ``t`` is ``leaf_offsets[t] + l``.

    Parameters
    ----------
    library : str
        ``"lightgbm"``, ``"xgboost"``, ``"catboost"`` or ``"sklearn"``.
    library_version : str
        Version string of the library that trained the model.
    model_name : str
        Class name of the model, for messages.
    objective : str
        The training objective: ``"binary"``, ``"multiclass"`` or a regression
        objective (``"squared_error"``, ``"poisson"``, ``"gamma"``, ``"tweedie"``,
        ``"cross_entropy"``, ``"pseudo_huber"``, ``"huber"``).
    tree_type : {"gbdt", "rf"}
        ``"gbdt"``: raw score = bias + sum of leaf values. ``"rf"``: prediction = mean of
        the trees' leaf values (probabilities for classifiers), no bias, no link.
    n_outputs : int
        Number of raw-score columns K (1 for regression and binary).
    leaf_offsets : ndarray of shape (n_trees + 1,), int64
    leaf_values : ndarray of shape (n_leaves_total,), float64
        Stored leaf values, shrinkage included, bias excluded.
    learning_rates : ndarray of shape (n_trees,), float64
        Shrinkage of each tree (1 for random forests).
    bias : ndarray of shape (n_outputs,), float64
        Initial raw score F_0.
    l2 : ndarray of shape (n_leaves_total,), float64
        L2 leaf regularisation per leaf (the denominator term of the Newton step).
    router : callable
        ``router(X) -> (n, n_trees)`` local leaf indices, using the library's routing
        (or a re-implementation of its decision rule, then with ``library_router``).
    raw_predictor : callable
        ``raw_predictor(X) -> (n, n_outputs)`` the library's own raw prediction.
    """

    library: str
    library_version: str
    model_name: str
    objective: str
    tree_type: str
    n_outputs: int
    leaf_offsets: np.ndarray
    leaf_values: np.ndarray
    learning_rates: np.ndarray
    bias: np.ndarray
    l2: np.ndarray
    router: object
    raw_predictor: object
    #: L1 leaf regularisation (breaks the Newton model when > 0)
    l1: float = 0.0
    #: clamp of the unshrunk leaf value (0 = none): a clamped leaf has derivative 0
    max_delta_step: float = 0.0
    #: steps per leaf (CatBoost's ``leaf_estimation_iterations``), each at the scores
    #: after the previous steps, and their kind: ``"newton"`` (denominator H + lambda)
    #: or ``"gradient"`` (denominator sum of weights + lambda)
    leaf_steps: int = 1
    leaf_step_method: str = "newton"
    #: whether the library halves a leaf step that does not lower the training loss,
    #: each attempt using up one of the ``leaf_steps`` (CatBoost's
    #: ``leaf_estimation_backtracking``)
    leaf_step_backtracking: bool = False
    #: multiclass hessian factor c (h = c p (1 - p))
    multiclass_factor: float = 1.0
    #: parameter of a regression objective: Tweedie variance power, pseudo-Huber slope,
    #: Huber threshold, or the Poisson hessian offset a (h = exp(F + a); 0: exp(F))
    objective_param: float = 0.0
    #: whether the model's ``predict`` returns the raw score itself rather than its
    #: inverse link (XGBoost ``binary:logitraw``)
    predicts_raw: bool = False
    #: per-tree flag: value does not come from the training rows (e.g. LightGBM
    #: one-leaf trees after the first round)
    constant_tree: np.ndarray | None = None
    #: class labels in the order of the raw-score columns (classifiers)
    classes: np.ndarray | None = None
    #: number of input features the model expects (None if unknown)
    n_features_in: int | None = None
    #: stored per-leaf training statistic for the count check, and its kind:
    #: "count" (unweighted rows), "weight" (sum of sample weights) or "hessian" (H)
    leaf_stats: np.ndarray | None = None
    leaf_stats_kind: str | None = None
    #: why the stored statistics cannot be reproduced from the training rows even when
    #: they are the model's (row sampling, validation split, encodings fitted on other
    #: values); None: the training-row check of ``fit`` can compare them
    leaf_stats_caveat: str | None = None
    #: whether rows of sample weight 0 count in "count" statistics (scikit-learn's
    #: trees drop them before growing)
    counts_zero_weight: bool = True
    #: stored per-leaf sums of the sample weights besides "count" statistics
    #: (scikit-learn's ``weighted_n_node_samples``); checked by ``check_training_rows``
    leaf_weight_sums: np.ndarray | None = None
    #: settings of the model that break the single-Newton-step leaf model, as
    #: human-readable strings ("bagging_fraction=0.5 (row subsampling): ...")
    breaking_settings: tuple = ()
    #: leaf-ancestor paths (for path kernels): for flat leaf index j, its internal
    #: ancestors are path_nodes[path_indptr[j]:path_indptr[j + 1]] (flat internal node
    #: indices, root first); node_offsets[t] is the first internal node of tree t.
    path_indptr: np.ndarray | None = None
    path_nodes: np.ndarray | None = None
    node_offsets: np.ndarray | None = None
    #: the library's own routing when ``router`` re-implements it (LightGBM numeric
    #: trees): :meth:`check_reconstruction` compares the two on the rows it checks and
    #: keeps the library's routing from then on if they differ
    library_router: object = None
    #: optional callable applied to X before routing (pipeline steps)
    preprocess: object = None
    #: optional callable ``(X, n_rounds) -> (n, K)`` raw prediction truncated to the
    #: first ``n_rounds`` rounds (for the reconstruction diagnosis)
    staged_raw_predictor: object = None
    #: absolute and relative tolerance of the reconstruction check
    reconstruction_tol: tuple = (1e-6, 1e-6)
    #: precision in which the library holds training labels and sample weights (CatBoost:
    #: float32); the estimators round them before replaying the trajectory
    label_dtype: object = None
    #: sorted indices into the rows given to fit of the rows the trees were grown on,
    #: when the library held the others out itself (HistGradientBoosting's early
    #: stopping split); None: all rows
    training_rows: np.ndarray | None = None
    #: the K trees of a round share their routing and each leaf is one K x K Newton
    #: step with the full softmax hessian (CatBoost MultiClass; ``_full_hessian``)
    full_hessian: bool = False
    #: free-form notes of the adapter (e.g. how the bias was obtained)
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        self.leaf_offsets = np.ascontiguousarray(self.leaf_offsets, dtype=np.int64)
        self.leaf_values = np.ascontiguousarray(self.leaf_values, dtype=np.float64)
        self.learning_rates = np.ascontiguousarray(self.learning_rates, dtype=np.float64)
        self.bias = np.ascontiguousarray(np.ravel(self.bias), dtype=np.float64)
        l2 = np.asarray(self.l2, dtype=np.float64)
        if l2.ndim == 0:
            l2 = np.full(self.n_leaves_total, float(l2))
        self.l2 = np.ascontiguousarray(l2)
        if self.constant_tree is None:
            self.constant_tree = np.zeros(self.n_trees, dtype=bool)
        self.constant_tree = np.asarray(self.constant_tree, dtype=bool)
        if self.tree_type == "gbdt" and self.bias.shape != (self.n_outputs,):
            raise ValueError("bias must have one value per raw-score column")
        if self.n_trees % self.n_outputs:
            raise ValueError("number of trees is not a multiple of n_outputs")
        for name in ("learning_rates", "constant_tree"):
            if getattr(self, name).shape != (self.n_trees,):
                raise ValueError(f"{name} must have one entry per tree")
        if self.leaf_values.shape != (self.n_leaves_total,):
            raise ValueError("leaf_values must have leaf_offsets[-1] entries")
        if self.l2.shape != (self.n_leaves_total,):
            raise ValueError("l2 must be a scalar or have one entry per leaf")

    # ------------------------------------------------------------------ shapes
    @property
    def n_trees(self):
        return len(self.leaf_offsets) - 1

    @property
    def n_rounds(self):
        return self.n_trees // self.n_outputs

    @property
    def n_leaves(self):
        return np.diff(self.leaf_offsets)

    @property
    def n_leaves_total(self):
        return int(self.leaf_offsets[-1])

    @property
    def tree_round(self):
        return np.arange(self.n_trees) // self.n_outputs

    @property
    def tree_column(self):
        return np.arange(self.n_trees) % self.n_outputs

    @property
    def objective_code(self):
        return OBJECTIVE_CODE[self.objective]

    @property
    def is_regression(self):
        """Whether the objective takes float labels (not class indices)."""
        return is_regression(self.objective)

    @property
    def kernel_param(self):
        """The objective's one float parameter as the kernels take it (the multiclass
        hessian factor for multiclass, else :attr:`objective_param`)."""
        if self.objective == "multiclass":
            return float(self.multiclass_factor)
        return float(self.objective_param)

    @property
    def unshrunk_values(self):
        """Leaf values divided by their tree's learning rate (the Newton steps)."""
        eta = np.repeat(self.learning_rates, self.n_leaves)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(eta > 0, self.leaf_values / eta, 0.0)

    def describe(self):
        """One line naming the model, for error messages."""
        return (
            f"{self.model_name} ({self.library} {self.library_version}, "
            f"objective {self.objective}, {self.n_rounds} rounds x {self.n_outputs} "
            "column(s))"
        )

    # ----------------------------------------------------------------- routing
    def _pre(self, X):
        return X if self.preprocess is None else self.preprocess(X)

    def leaf_ids(self, X):
        """Local leaf index of every row in every tree, by the library's own routing.

        Returns
        -------
        leaves : ndarray of shape (n_samples, n_trees), int32, C-contiguous
        """
        leaves = np.ascontiguousarray(self.router(self._pre(X)), dtype=np.int32)
        if leaves.ndim != 2 or leaves.shape[1] != self.n_trees:
            raise RuntimeError(
                f"routing returned shape {leaves.shape}, expected (n, {self.n_trees})"
            )
        if leaves.size > 2**16:  # one pass, no (n, T) temporaries
            outside = _trees.count_out_of_range(leaves, self.n_leaves) > 0
        else:  # a few rows (queries): no parallel kernel launch
            outside = leaves.size and (leaves.min() < 0 or np.any(leaves >= self.n_leaves))
        if outside:
            raise RuntimeError("routing returned a leaf index outside its tree")
        return leaves

    def raw_predict(self, X):
        """The library's own raw prediction ``(n, n_outputs)`` (probabilities for rf)."""
        out = np.asarray(self.raw_predictor(self._pre(X)), dtype=np.float64)
        return out.reshape(out.shape[0], -1)

    def raw_from_leaves(self, leaves):
        """Bias plus the sum of reached leaf values (the mean of trees for rf)."""
        if self.tree_type == "rf":
            flat = self.leaf_offsets[:-1] + leaves
            vals = self.leaf_values[flat]  # (n, T)
            K = self.n_outputs
            return vals.reshape(len(leaves), -1, K).mean(axis=1)
        return _trees.raw_scores(
            leaves, self.leaf_offsets, self.leaf_values, self.bias, self.n_outputs
        )

    def flat_leaves(self, leaves):
        """Flat leaf indices ``leaf_offsets[t] + leaves[:, t]`` as int64."""
        return leaves.astype(np.int64) + self.leaf_offsets[:-1]

    def replay(self, leaves, y, objective=None, kappa=False):
        """Gradients and hessians of every row for every tree at the scores before it.

        Parameters
        ----------
        leaves : ndarray (n, n_trees) int32
        y : ndarray (n,)
            Labels (class indices for classifiers); ignored for ``objective="value"``.
        objective : str, optional
            Defaults to the model's; ``"value"`` gives the label-free regression output.
        kappa : bool
            Also return the derivative of the hessian.

        Returns
        -------
        g, h, kappa, final_raw : ndarrays ``(n, T)``, ``(n, T)``, ``(n, T)`` or empty,
        and ``(n, K)``.
        """
        if self.tree_type != "gbdt":
            raise ValueError("a trajectory replay needs a gradient-boosted model")
        code = OBJECTIVE_CODE[objective or self.objective]
        y = np.ascontiguousarray(np.zeros(len(leaves)) if y is None else y, dtype=np.float64)
        return _trees.replay(
            np.ascontiguousarray(leaves, dtype=np.int32),
            self.leaf_offsets,
            self.leaf_values,
            self.bias,
            self.n_outputs,
            code,
            self.kernel_param if objective in (None, self.objective) else 0.0,
            y,
            bool(kappa),
        )

    def replay_sums(self, leaves, y, weights=None):
        """:meth:`replay` of a one-column model and the per-leaf sums of the weighted
        gradients and hessians, in one pass.

        Returns
        -------
        g, h : ndarrays ``(n, T)``
        G, H : ndarrays ``(n_leaves_total,)``
            Sums over each leaf's rows of ``g * weights`` and ``h * weights`` (``g``
            and ``h`` when ``weights`` is None), as :func:`_trees.leaf_sums` of them.
        final_raw : ndarray ``(n, 1)``
        """
        if self.tree_type != "gbdt" or self.n_outputs != 1:
            raise ValueError("replay_sums needs a gradient-boosted model of one column")
        return _trees.replay_sums(
            np.ascontiguousarray(leaves, dtype=np.int32),
            self.leaf_offsets,
            self.leaf_values,
            self.bias,
            self.objective_code,
            self.kernel_param,
            np.ascontiguousarray(np.zeros(len(leaves)) if y is None else y, dtype=np.float64),
            weights,
            sums=True,
        )

    def gradient_slopes(self, leaves, y, hessians):
        """Derivatives ``dg/dF`` ``(n, T)`` of the gradients along the stored trajectory:
        ``hessians`` (the replay's) itself, except for the objectives whose hessian is
        not that derivative (Poisson with a hessian offset, Huber)."""
        if not (
            self.objective == "huber" or (self.objective == "poisson" and self.objective_param)
        ):
            return hessians
        return _trees.replay_slopes(
            np.ascontiguousarray(leaves, dtype=np.int32),
            self.leaf_offsets,
            self.leaf_values,
            self.bias,
            self.objective_code,
            self.kernel_param,
            np.ascontiguousarray(y, dtype=np.float64),
        )

    # ------------------------------------------------------------------ checks
    def reconstruction_rows(self, leaves):
        """The rows on which :meth:`check_reconstruction` compares with the library.

        With the configuration ``reconstruction_check="covering"`` (the default): for
        every (tree, leaf) pair that a row of ``leaves`` reaches, the first row reaching
        it, plus a fixed-seed uniform sample of :data:`RECONSTRUCTION_SAMPLE` rows. Each
        row's raw score is the bias plus one leaf value per tree, so a parsed leaf value
        (or leaf numbering) that is wrong shows on every row reaching that leaf, and the
        cover has one; a wrong bias shows on every row. ``"all"``: every row.

        Returns
        -------
        rows : ndarray of int64, sorted, or None
            ``None`` when every row is checked.
        """
        from ._config import get_config

        n = len(leaves)
        if get_config()["reconstruction_check"] == "all" or n <= RECONSTRUCTION_SAMPLE:
            return None
        leaves = np.ascontiguousarray(leaves, dtype=np.int32)
        cover = _trees.covering_rows(leaves, self.leaf_offsets)
        sample = np.random.default_rng(0).choice(n, RECONSTRUCTION_SAMPLE, replace=False)
        rows = np.union1d(cover, sample)
        return None if len(rows) >= n else rows

    def check_reconstruction(self, X, leaves=None):
        """Raise :class:`ReconstructionError` unless the parsed trees reproduce the
        library's raw prediction on ``X``.

        The comparison runs on the rows :meth:`reconstruction_rows` chooses: by default
        a covering sample (every leaf the rows of ``X`` reach is reached by a checked
        row, plus 1,000 uniformly drawn rows), on which the library predicts; with
        ``skinfluence.config_context(reconstruction_check="all")`` on every row.

        Returns the leaf ids of ``X`` (computed here when not given).
        """
        if leaves is None:
            leaves = self.leaf_ids(X)
        rows, Xc, lc = self._checked_rows(X, leaves)
        if self.library_router is not None and not self._same_routing(Xc, lc):
            leaves = self.leaf_ids(X)  # now the library's
            rows, Xc, lc = self._checked_rows(X, leaves)
        ours = self.raw_from_leaves(lc)
        theirs = self.raw_predict(Xc)
        if theirs.shape != ours.shape:
            raise ReconstructionError(
                f"{self.describe()}: the library predicts {theirs.shape[1]} raw column(s) "
                f"but the parsed ensemble has {ours.shape[1]}"
            )
        atol, rtol = self.reconstruction_tol
        gap = np.abs(ours - theirs)
        bad = gap > atol + rtol * np.abs(theirs)
        if not bad.any():
            return leaves
        i, k = np.unravel_index(np.argmax(gap - (atol + rtol * np.abs(theirs))), gap.shape)
        row = int(i) if rows is None else int(rows[i])
        col_gaps = ours - theirs
        if np.ptp(col_gaps[:, k]) <= 10 * (atol + rtol * np.abs(theirs[:, k]).max()):
            diagnosis = (
                "the gap is the same on every row: the bias (initial score) was read wrongly"
            )
        else:
            diagnosis = self._locate_divergence(Xc, lc, int(i), row)
        checked = f"{len(ours)} rows"
        if rows is not None:
            checked += (
                f" checked (of the {len(leaves)} given: a row reaching each of their "
                f"leaves and {RECONSTRUCTION_SAMPLE} drawn uniformly)"
            )
        raise ReconstructionError(
            f"{self.describe()}: the parsed trees do not reproduce the library's raw "
            f"prediction on {int(bad.any(axis=1).sum())} of {checked}; largest gap "
            f"{gap[i, k]:.3g} at row {row}, column {k} (ours {ours[i, k]:.10g}, library "
            f"{theirs[i, k]:.10g}; tolerance atol={atol:g}, rtol={rtol:g}). Diagnosis: "
            f"{diagnosis}. Check that X is preprocessed exactly as for the model's own "
            "predict (same columns, dtypes and categories); if it is, please report this "
            "model to skinfluence."
        )

    def _checked_rows(self, X, leaves):
        rows = self.reconstruction_rows(leaves)
        if rows is None:
            return None, X, leaves
        from sklearn.utils import _safe_indexing

        return rows, _safe_indexing(X, rows), np.ascontiguousarray(leaves[rows])

    def _same_routing(self, Xc, lc):
        """Whether ``router`` gave the library's leaves on the checked rows; if not,
        warn and route with the library from now on."""
        theirs = np.asarray(self.library_router(self._pre(Xc)), dtype=np.int32)
        if theirs.shape == lc.shape and np.array_equal(theirs, lc):
            return True
        import warnings

        n_bad = int((theirs != lc).any(axis=1).sum()) if theirs.shape == lc.shape else len(lc)
        warnings.warn(
            f"{self.describe()}: skinfluence's own routing of the {self.library} trees "
            f"differs from the library's on {n_bad} of {len(lc)} checked rows; the "
            "library's routing is used instead (slower, same results as the library). "
            "Please report this model to skinfluence.",
            RuntimeWarning,
            stacklevel=4,
        )
        self.router, self.library_router = self.library_router, None
        return False

    def _locate_divergence(self, X, leaves, i, row):
        """The first round whose partial raw score differs on row ``i`` of ``X`` (row
        ``row`` of the rows given, for the message)."""
        if self.staged_raw_predictor is None or self.tree_type != "gbdt":
            return (
                "the gap varies between rows: routing differs (input preprocessing, "
                "missing values or categories)"
            )
        x = X.iloc[[i]] if hasattr(X, "iloc") else X[i : i + 1]
        if hasattr(X, "slice") and not hasattr(X, "iloc"):  # polars
            x = X.slice(i, 1)
        lv = leaves[i : i + 1]
        K = self.n_outputs
        for b in range(1, self.n_rounds + 1):
            theirs = np.asarray(self.staged_raw_predictor(self._pre(x), b)).reshape(1, -1)
            sub = lv[:, : b * K]
            ours = _trees.raw_scores(
                np.ascontiguousarray(sub),
                self.leaf_offsets[: b * K + 1],
                self.leaf_values,
                self.bias,
                K,
            )
            atol, rtol = self.reconstruction_tol
            if np.any(np.abs(ours - theirs) > atol + rtol * np.abs(theirs)):
                return (
                    f"on row {row} the gap starts at boosting round {b - 1}: that round's "
                    "leaf values or routing were read wrongly"
                )
        return "routing differs (input preprocessing, missing values or categories)"

    def newton_values(self, leaves, y, sample_weight=None, terms=None):
        """Recompute every leaf by the model's leaf rule from the training rows.

        Returns ``(v_hat, G, H)`` flat over leaves, with G, H the weighted sums of the
        gradients and hessians at the scores before each tree. The rule is one Newton
        step unless the model says otherwise (clamp, several steps; see
        :mod:`skinfluence._leaf_rule`). ``terms``: the
        :func:`~skinfluence._leaf_rule.leaf_terms` of these rows when a caller already
        computed them (not for K x K Newton leaves): read, not recomputed.
        """
        if self.full_hessian:  # K x K Newton steps
            from ._full_hessian import newton_values

            return newton_values(self, leaves, y, sample_weight)
        from ._leaf_rule import recomputed_values

        return recomputed_values(self, leaves, y, sample_weight, terms=terms)

    def check_leaf_model(
        self, leaves, y, sample_weight=None, atol=1e-5, rtol=1e-5, error=True, terms=None
    ):
        """Check that every stored leaf is one Newton step on the given training rows.

        Raises :class:`LeafModelError` (or warns when ``error=False``) naming the worst
        leaf, with a diagnosis. Returns the largest violation (0 when it passes).
        ``terms``: as for :meth:`newton_values` (the replay of these rows, shared with
        the method that checks).
        """
        if self.tree_type != "gbdt":
            raise LeafModelError(
                f"{self.describe()} is a random forest: gradient-based influence methods "
                "need a gradient-boosted model (use TREX, the similarity methods or the "
                "retraining methods for forests)"
            )
        from ._leaf_rule import describe_rule

        rule = _FULL_HESSIAN_STEP if self.full_hessian else describe_rule(self)
        v_hat, G, H = self.newton_values(leaves, y, sample_weight, terms=terms)
        v = self.leaf_values
        keep = ~np.repeat(self.constant_tree, self.n_leaves)
        excess = np.where(keep, np.abs(v_hat - v) - (atol + rtol * np.abs(v)), -np.inf)
        if excess.size == 0 or excess.max() <= 0:
            return 0.0
        j = int(np.argmax(excess))
        t = int(np.searchsorted(self.leaf_offsets, j, side="right") - 1)
        b, k = divmod(t, self.n_outputs)
        leaf = j - self.leaf_offsets[t]
        n_bad = int((excess > 0).sum())
        diagnosis = self._diagnose_leaf_model(v, v_hat, keep, excess)
        msg = (
            f"{self.describe()}: the stored leaf values are not {rule} "
            f"on the training rows given to fit ({n_bad} of "
            f"{int(keep.sum())} leaves differ). Worst: round {b}, column {k}, leaf {leaf}: "
            f"stored {v[j]:.8g}, recomputed {v_hat[j]:.8g} (tolerance atol={atol:g}, "
            f"rtol={rtol:g}). Diagnosis: {diagnosis}."
        )
        if self.breaking_settings:
            msg += (
                " Settings of this model that break the leaf model: "
                + "; ".join(self.breaking_settings)
                + "."
            )
        msg += (
            " Gradient-based methods (BoostIn, LeafInfluence, LeafRefit) need the exact "
            "training rows and weights of the model and a model trained without these "
            "settings; otherwise use a similarity or retraining method, or pass "
            "check_leaf_model='warn' to accept an approximation."
        )
        if error:
            raise LeafModelError(msg)
        import warnings

        warnings.warn(msg, UserWarning, stacklevel=3)
        return float(excess.max())

    def _diagnose_leaf_model(self, v, v_hat, keep, excess):
        bad = excess > 0
        tree_of = np.repeat(np.arange(self.n_trees), self.n_leaves)
        big = keep & (np.abs(v_hat) > 1e-12) & (np.abs(v) > 1e-12)
        ratio = np.where(big, v / np.where(big, v_hat, 1.0), np.nan)
        r = ratio[big & bad]
        if r.size >= 3 and np.nanstd(r) < 1e-3 * max(1.0, abs(np.nanmean(r))):
            return (
                f"the ratio stored/recomputed is nearly constant ({np.nanmean(r):.4g}): "
                "the learning rate or the multiclass hessian factor was read wrongly"
            )
        bad_trees = np.unique(tree_of[bad])
        if np.all(bad_trees < self.n_outputs):
            return (
                "only the first tree of each column differs: a bias folded into the "
                "first trees was not subtracted"
            )
        if self.breaking_settings:
            return "scattered gaps, explained by the settings listed below"
        return (
            "scattered gaps: the rows or sample weights given to fit differ from the "
            "model's training data, or the model was trained with a setting that changes "
            "leaf values (row subsampling, L1, clamping, dart, several leaf steps)"
        )

    def _routed_stats(self, leaves, sample_weight, y, hessian_sums=None):
        """The per-leaf statistic of kind ``leaf_stats_kind`` over the given rows, and
        the mask of the leaves where it differs from the stored one (``hessian_sums``:
        the hessian sums when the caller has replayed these rows already)."""
        n = len(leaves)
        kind = self.leaf_stats_kind
        theirs = self.leaf_stats
        w = np.ones(n) if sample_weight is None else sample_weight
        if kind == "count":
            w = np.ones(n) if self.counts_zero_weight else (w != 0).astype(np.float64)
        if kind == "hessian":  # XGBoost's cover: hessian sums at the scores before each tree
            if hessian_sums is not None:
                ours = hessian_sums
            else:
                h = self.replay(leaves, y)[1]
                hw = np.ascontiguousarray(h * w[:, None])
                ours = _trees.leaf_sums(leaves, self.leaf_offsets, hw)
            # float32 gradient pairs and margins in the library
            return ours, np.abs(ours - theirs) > 1e-4 * np.abs(theirs) + 1e-8
        ours = _trees.leaf_counts(leaves, self.leaf_offsets, np.ascontiguousarray(w))
        if kind == "count":  # whole rows: any difference of half a row or more
            return ours, np.abs(ours - theirs) >= 0.5
        # sums of (float32) weights: relative tolerance
        return ours, np.abs(ours - theirs) > 1e-4 * np.maximum(1.0, np.abs(theirs))

    def check_counts(self, leaves, sample_weight=None, y=None, hessian_sums=None):
        """Compare the library's stored per-leaf statistics with the routing of the
        given rows. Returns ``None`` if they agree (or nothing is stored), else a
        message describing the mismatch.

        Hessian sums (XGBoost's cover) are compared only when the labels ``y`` (class
        indices for classifiers) are given: they are recomputed by replaying the
        trajectory of the given rows, unless the caller passes them as
        ``hessian_sums`` (the per-leaf sums of the weighted hessians of these rows
        along the stored trajectory, e.g. a method's own replay).
        """
        if self.leaf_stats is None or (self.leaf_stats_kind == "hessian" and y is None):
            return None
        ours, diff = self._routed_stats(leaves, sample_weight, y, hessian_sums)
        diff &= np.repeat(~self.constant_tree, self.n_leaves)
        if not diff.any():
            return None
        return self._differing_leaves(
            _STAT_NAMES[self.leaf_stats_kind], self.leaf_stats, ours, diff, len(leaves)
        ) + (
            ": the trees were grown on other rows (bagging, a validation split) or on "
            "different data"
        )

    def _differing_leaves(self, what, theirs, ours, diff, n):
        """Which trees' stored per-leaf statistics ``what`` differ from the routed ones."""
        trees = np.unique(np.repeat(np.arange(self.n_trees), self.n_leaves)[diff])
        first = slice(self.leaf_offsets[trees[0]], self.leaf_offsets[trees[0] + 1])
        stored = np.round(theirs[first], 3).tolist()[:8]
        return (
            f"the model's stored per-leaf {what} differ from the routing "
            f"of the {n} rows given to fit in {len(trees)} of {self.n_trees} "
            f"trees (tree {trees[0]}: stored {stored}, "
            f"routed {np.round(ours[first], 3).tolist()[:8]})"
        )

    def _check_weight_sums(self, leaves, sample_weight):
        """Compare the stored per-leaf sums of sample weights (kept besides row counts)
        with the given rows; None if they agree or none are stored."""
        theirs = self.leaf_weight_sums
        if theirs is None:
            return None
        n = len(leaves)
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        ours = _trees.leaf_counts(leaves, self.leaf_offsets, np.ascontiguousarray(w))
        diff = np.abs(ours - theirs) > 1e-7 * np.maximum(1.0, np.abs(theirs))
        diff &= np.repeat(~self.constant_tree, self.n_leaves)
        if not diff.any():
            return None
        total = float(theirs[: self.leaf_offsets[1]].sum())
        return (
            f"{self.describe()}: the {n} rows given to fit have the model's per-leaf row "
            f"counts but not its sample weights (its training rows weigh {total:.6g} in "
            f"total, class weights included; the rows given {w.sum():.6g}"
            f"{', no sample_weight: 1 each' if sample_weight is None else ''}): "
            + self._differing_leaves("sums of sample weights", theirs, ours, diff, n)
        )

    def check_training_rows(self, leaves, y=None, sample_weight=None, hessian_sums=None):
        """Whether the given rows reproduce the stored per-leaf statistics.

        Parameters
        ----------
        leaves : ndarray of shape (n, n_trees)
            Leaf ids of the rows given as the training data.
        y : ndarray of shape (n,), optional
            Their labels (class indices for classifiers); needed for hessian sums.
        sample_weight : ndarray of shape (n,), optional
        hessian_sums : ndarray of shape (n_leaves_total,), optional
            The per-leaf sums of the weighted hessians of these rows along the stored
            trajectory, when the caller has them (see :meth:`check_counts`).

        Returns
        -------
        message : str or None
            ``None`` when the rows reproduce the statistics, or nothing can be checked
            (no statistics, or ``leaf_stats_caveat``); else what differs: the number of
            rows (or total weight) the model recorded against the one given, then the
            trees and leaves that differ.
        """
        if self.leaf_stats is None or self.leaf_stats_caveat is not None or self.n_trees == 0:
            return None
        detail = self.check_counts(leaves, sample_weight, y, hessian_sums)
        if detail is None:
            return self._check_weight_sums(leaves, sample_weight)
        n = len(leaves)
        recorded = self._recorded_total(leaves, y)
        unit = sample_weight is None or self.leaf_stats_kind == "count"
        given = float(n) if unit else float(np.sum(sample_weight))
        if sample_weight is not None and unit and not self.counts_zero_weight:
            n = int(np.count_nonzero(sample_weight))  # the rows counted
            given = float(n)
        if recorded is None or abs(recorded - given) <= 1e-4 * max(1.0, given):
            head = (
                f"{self.describe()}: the {n} rows given to fit add up to the model's "
                "training rows, but are not its training rows (other rows, or other "
                "sample weights): "
            )
        elif unit and abs(recorded - round(recorded)) <= 1e-4 * max(1.0, recorded):
            head = f"{self.describe()} was trained on {recorded:.6g} rows but fit received {n}: "
        else:  # weighted rows
            head = (
                f"{self.describe()} was trained on rows of total sample weight "
                f"{recorded:.6g} but fit received {n} rows of total weight {given:.6g}"
                f"{' (no sample_weight: 1 each)' if sample_weight is None else ''}: "
            )
        return head + detail

    def _recorded_total(self, leaves, y):
        """Rows (``count``) or total weight the model recorded, from the first tree that
        saw every training row; None when it cannot be told."""
        kind = self.leaf_stats_kind
        if kind == "count":
            return self.training_rows_recorded()
        total = float(self.leaf_stats[: self.leaf_offsets[1]].sum())
        if kind == "weight":
            return total
        if len(leaves) == 0:
            return None
        # every row has the hessian of the bias in the first tree
        h0 = float(self.replay(leaves[:1], None if y is None else y[:1])[1][0, 0])
        return total / h0 if h0 > 0 else None

    def training_rows_recorded(self):
        """Number of training rows the library recorded, if it can be told."""
        if self.leaf_stats is None or self.leaf_stats_kind != "count":
            return None
        if self.n_trees == 0:
            return None
        t = int(np.argmin(self.constant_tree)) if self.constant_tree.any() else 0
        return int(round(self.leaf_stats[self.leaf_offsets[t] : self.leaf_offsets[t + 1]].sum()))
