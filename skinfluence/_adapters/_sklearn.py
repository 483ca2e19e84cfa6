"""scikit-learn adapter: GradientBoosting, HistGradientBoosting, RandomForest, ExtraTrees.

* ``GradientBoostingClassifier`` / ``GradientBoostingRegressor`` (:doc:`models`):
  routing by ``apply``, leaf values ``tree_.value * learning_rate``, bias from ``init_``
  through the loss link, lambda = 0, multiclass factor c = K / (K - 1).
* ``HistGradientBoostingClassifier`` / ``HistGradientBoostingRegressor`` (:doc:`models`): no
  public ``apply``; the private predictor node arrays are flattened and traversed by a
  numba kernel (:func:`skinfluence._adapters._sklearn_routing.hgb_apply`) after the
  model's own input preprocessing; leaf values are stored shrunk, bias ``_baseline_prediction``,
  lambda = ``l2_regularization``, c = 1.
* ``RandomForest*`` / ``ExtraTrees*`` (:doc:`models`): tree type ``"rf"``, routing by
  ``apply``, leaf values the node mean (regression) or class fractions (one tree per
  class and forest tree for multiclass, sharing the routing).

The router and raw predictors are small picklable callables holding the model (never a
copy of the training data). Neither the model nor the caller's X is modified.
"""

import warnings

import numpy as np
import sklearn

from .._ensemble import TreeEnsemble
from ._base import (
    UnsupportedModelError,
    estimator_is_fitted,
    leaf_map,
    one_thread_clone,
    paths_to_csr,
    remap_leaves,
)
from ._sklearn_routing import hgb_apply, nodes_of

__all__ = ["to_ensemble", "is_fitted", "refit_template", "default_model", "SUPPORTED_SKLEARN"]

SUPPORTED_SKLEARN = (
    "GradientBoostingClassifier, GradientBoostingRegressor (losses squared_error, "
    "log_loss), HistGradientBoostingClassifier, HistGradientBoostingRegressor (losses "
    "squared_error, log_loss, poisson, gamma), RandomForestClassifier, RandomForestRegressor, "
    "ExtraTreesClassifier, ExtraTreesRegressor (single output)"
)

#: how GradientBoosting computes the leaves of the losses it does not fit by a Newton step
_GB_LEAF_UPDATES = {
    "huber": "Huber leaves are the median of the leaf's residuals plus the mean of "
    "their clipped deviations from it, not a Newton step",
    "absolute_error": "absolute-error leaves are medians of the residuals",
    "quantile": "quantile leaves are quantiles of the residuals",
    "exponential": "exponential-loss leaves are Newton steps of the exponential loss, "
    "an objective skinfluence does not model",
}

#: loss aliases of older scikit-learn versions
_GB_LOSS_ALIASES = {"ls": "squared_error", "deviance": "log_loss"}
_HGB_LOSS_ALIASES = {
    "least_squares": "squared_error",
    "binary_crossentropy": "log_loss",
    "categorical_crossentropy": "log_loss",
    "auto": "log_loss",
}
#: node fields of the HistGradientBoosting predictors that the adapter reads
_HGB_NODE_FIELDS = (
    "value",
    "count",
    "feature_idx",
    "num_threshold",
    "missing_go_to_left",
    "left",
    "right",
    "is_leaf",
    "is_categorical",
    "bitset_idx",
)


# --------------------------------------------------------------------------- entry
def to_ensemble(model, X=None, y=None, sample_weight=None):
    """Build the :class:`~skinfluence.TreeEnsemble` of a fitted scikit-learn ensemble.

    Parameters
    ----------
    model : fitted scikit-learn estimator
        ``GradientBoostingClassifier``, ``GradientBoostingRegressor``,
        ``HistGradientBoostingClassifier``, ``HistGradientBoostingRegressor``,
        ``RandomForestClassifier``, ``RandomForestRegressor``,
        ``ExtraTreesClassifier`` or ``ExtraTreesRegressor``.
    X : array-like of shape (n_samples, n_features), optional
        Training inputs. Used to verify that a custom ``init`` estimator of a
        ``GradientBoosting*`` model predicts a constant initial score, and (with ``y``)
        to recover the validation split of an early-stopped ``HistGradientBoosting*``
        model (see :func:`hgb_training_split`).
    y : array-like of shape (n_samples,), optional
        Training labels (the split of a classifier is stratified by them).
    sample_weight : ignored
        Accepted for a uniform adapter signature; scikit-learn stores everything else
        the ensemble needs.

    Returns
    -------
    ensemble : TreeEnsemble

    Raises
    ------
    UnsupportedModelError
        For another model class, a multi-output model, or an unsupported loss.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn.ensemble import GradientBoostingRegressor
    >>> from skinfluence._adapters._sklearn import to_ensemble
    >>> X, y = make_regression(n_samples=100, n_features=4, random_state=0)
    >>> model = GradientBoostingRegressor(n_estimators=5).fit(X, y)
    >>> ens = to_ensemble(model)
    >>> ens.n_trees, ens.leaf_ids(X).shape
    (5, (100, 5))
    >>> leaves = ens.check_reconstruction(X)
    >>> float(ens.check_leaf_model(leaves, y))
    0.0
    """
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    if isinstance(model, (GradientBoostingClassifier, GradientBoostingRegressor)):
        builder = _from_gradient_boosting
    elif isinstance(model, (HistGradientBoostingClassifier, HistGradientBoostingRegressor)):
        return _from_hist_gradient_boosting(model, X, y)
    elif isinstance(
        model,
        (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor),
    ):
        builder = _from_forest
    else:
        raise UnsupportedModelError(
            f"scikit-learn models of type {type(model).__name__} are not supported. "
            f"Supported scikit-learn models: {SUPPORTED_SKLEARN}."
        )
    return builder(model, X)


# ----------------------------------------------------------------------------- hooks
#: whether a scikit-learn model is fitted (``check_is_fitted``)
is_fitted = estimator_is_fitted


def refit_template(model):
    """Unfitted copy with one thread; warns when ``random_state`` is None."""
    params = model.get_params(deep=False)
    if "random_state" in params and params["random_state"] is None:
        warnings.warn(
            f"{type(model).__name__} has random_state=None: its refits draw different "
            "random numbers and the retraining influence mixes in that noise and is not "
            "reproducible; set random_state to an int",
            UserWarning,
            stacklevel=5,
        )
    return one_thread_clone(model)


def default_model(regression, n_rows):
    """A small HistGradientBoosting model for regression or classification.

    Leaves hold at least ``min(20, n_rows // 10)`` rows (at least 1): scikit-learn's 20
    from 200 rows on. With 20 on a few dozen rows no tree could split, and a tree
    that never splits predicts 0 whatever its rows: there would be nothing to explain.
    """
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )

    common = {
        "max_iter": 50,
        "max_leaf_nodes": 15,
        "min_samples_leaf": max(1, min(20, n_rows // 10)),
        "early_stopping": False,
        "random_state": 0,
    }
    if regression:
        return HistGradientBoostingRegressor(**common)
    return HistGradientBoostingClassifier(**common)


# ---------------------------------------------------------------- picklable callables
class _ApplyRouter:
    """Leaf ids from the model's ``apply``: node ids -> local leaf ids per tree.

    ``repeat`` > 1 repeats every forest tree for the per-class trees of a multiclass
    random forest (round-major, class-inner). ``validate`` first validates X against
    the ensemble (feature names, float32), as GradientBoosting's ``predict`` does.
    """

    def __init__(self, model, maps, repeat=1, validate=False):
        self.model = model
        self.maps = maps
        self.repeat = repeat
        self.validate = validate

    def __call__(self, X):
        if self.validate:
            # GradientBoosting.apply validates X only in its first tree, which was fit
            # without feature names; validate against the ensemble as predict does
            from sklearn.utils.validation import validate_data

            X = validate_data(
                self.model, X, dtype=np.float32, order="C", accept_sparse="csr", reset=False
            )
        nodes = np.asarray(self.model.apply(X))
        nodes = nodes.reshape(nodes.shape[0], -1).astype(np.int64)
        leaves = remap_leaves(nodes, self.maps)
        if self.repeat > 1:
            leaves = np.repeat(leaves, self.repeat, axis=1)
        return leaves


class _HGBRouter:
    """Leaf ids of a HistGradientBoosting model from its flattened predictor nodes."""

    def __init__(self, model, arrays):
        self.model = model
        self.arrays = arrays

    def __call__(self, X):
        Xp = self.model._preprocess_X(X, reset=False)
        Xp = np.ascontiguousarray(Xp, dtype=np.float64)
        a = self.arrays
        if Xp.ndim != 2 or Xp.shape[1] != a["n_features"]:
            raise ValueError(
                f"the preprocessed input has shape {Xp.shape}, the model expects "
                f"{a['n_features']} columns"
            )
        return hgb_apply(Xp, nodes_of(a))


class _MethodPredictor:
    """``getattr(model, method)(X)`` as float64 ``(n, k)``, optionally column-sliced;
    ``log=True``: its log (the raw score of a log-link regressor's prediction)."""

    def __init__(self, model, method, start_column=0, log=False):
        self.model = model
        self.method = method
        self.start_column = start_column
        self.log = log

    def __call__(self, X):
        out = np.asarray(getattr(self.model, self.method)(X), dtype=np.float64)
        out = out.reshape(out.shape[0], -1)
        return np.log(out[:, self.start_column :]) if self.log else out[:, self.start_column :]


class _StagedPredictor:
    """Raw prediction truncated to the first ``n_rounds`` rounds, from a staged method
    (``log=True``: its log)."""

    def __init__(self, model, method, bias, log=False):
        self.model = model
        self.method = method
        self.bias = bias
        self.log = log

    def __call__(self, X, n_rounds):
        if n_rounds <= 0:
            n = len(X) if not hasattr(X, "shape") else X.shape[0]
            return np.tile(self.bias, (n, 1))
        out = None
        for b, stage in enumerate(getattr(self.model, self.method)(X), start=1):
            out = stage
            if b >= n_rounds:
                break
        out = np.asarray(out, dtype=np.float64)
        out = out.reshape(out.shape[0], -1)
        return np.log(out) if self.log else out


# ----------------------------------------------------------------- tree structures
def _tree_paths(left, right, is_leaf):
    """Leaves and leaf ancestor paths of one tree given as node arrays (root = 0).

    Returns ``(leaf_nodes, paths, n_internal)``: the node ids of the leaves in
    increasing order (their local index is their position), for each local leaf the
    list of local internal-node indices above it (root first; internal nodes numbered
    in increasing node id), and the number of internal nodes.
    """
    is_leaf = np.asarray(is_leaf, dtype=bool)
    leaf_nodes = np.flatnonzero(is_leaf)
    internal = np.flatnonzero(~is_leaf)
    local = np.full(len(is_leaf), -1, dtype=np.int64)
    local[leaf_nodes] = np.arange(len(leaf_nodes))
    local[internal] = np.arange(len(internal))
    left = np.asarray(left).tolist()
    right = np.asarray(right).tolist()
    leafl = is_leaf.tolist()
    locl = local.tolist()
    paths = [None] * len(leaf_nodes)
    stack = [(0, [])]
    while stack:
        node, path = stack.pop()
        if leafl[node]:
            paths[locl[node]] = path
        else:
            down = [*path, locl[node]]
            stack.append((right[node], down))
            stack.append((left[node], down))
    if any(p is None for p in paths):
        raise RuntimeError("a leaf of the tree cannot be reached from its root")
    return leaf_nodes, paths, len(internal)


def _sklearn_tree_paths(tree):
    left = tree.children_left
    return _tree_paths(left, tree.children_right, left < 0)


def _offsets(counts):
    off = np.zeros(len(counts) + 1, dtype=np.int64)
    off[1:] = np.cumsum(counts)
    return off


def _classes_of(model):
    return np.asarray(model.classes_) if hasattr(model, "classes_") else None


# ------------------------------------------------------------ GradientBoosting
def _from_gradient_boosting(model, X):
    from sklearn.base import is_classifier

    classifier = is_classifier(model)
    loss = _GB_LOSS_ALIASES.get(model.loss, model.loss)
    if not isinstance(loss, str) or loss not in ("squared_error", "log_loss"):
        why = _GB_LEAF_UPDATES.get(loss, "a loss skinfluence does not model")
        raise UnsupportedModelError(
            f"{type(model).__name__} with loss={model.loss!r} is not supported: its "
            f"leaf values are not single Newton steps of a supported objective ({why}). "
            "Supported losses: 'squared_error' (regression) and 'log_loss' "
            "(classification); refit with one of them."
        )
    estimators = np.asarray(model.estimators_, dtype=object)
    n_rounds, K = estimators.shape
    if classifier:
        n_classes = len(model.classes_)
        objective = "binary" if n_classes == 2 else "multiclass"
    else:
        objective = "squared_error"
    lr = float(model.learning_rate)

    maps, values, stats, weights, paths, n_internal = [], [], [], [], [], []
    for b in range(n_rounds):
        for k in range(K):
            tree = estimators[b, k].tree_
            leaf_nodes, tpaths, ni = _sklearn_tree_paths(tree)
            maps.append(leaf_map(leaf_nodes, size=tree.node_count))
            values.append(tree.value[leaf_nodes, 0, 0] * lr)
            stats.append(tree.n_node_samples[leaf_nodes].astype(np.float64))
            weights.append(np.asarray(tree.weighted_n_node_samples[leaf_nodes], dtype=np.float64))
            paths.append(tpaths)
            n_internal.append(ni)
    n_leaves = [len(v) for v in values]

    bias, bias_note = _gb_bias(model, X, K)

    breaking = []
    if float(model.subsample) < 1.0:
        breaking.append(
            f"subsample={model.subsample} (row subsampling): each tree was grown and "
            "its leaf values computed on a random subset of the rows; refit with "
            "subsample=1.0"
        )
    if model.n_iter_no_change is not None:
        breaking.append(
            f"n_iter_no_change={model.n_iter_no_change} with validation_fraction="
            f"{model.validation_fraction} (early stopping): the initial score and the "
            "trees were fit on a training split without the validation rows; refit "
            "with n_iter_no_change=None (and n_estimators set to the "
            f"{n_rounds} rounds it kept)"
        )

    T = n_rounds * K
    return _boosting_ensemble(
        model,
        objective,
        K,
        n_leaves,
        bias,
        paths_to_csr(paths, n_internal),
        leaf_values=np.concatenate(values) if values else np.zeros(0),
        learning_rates=np.full(T, lr),
        l2=0.0,
        router=_ApplyRouter(model, maps, validate=True),
        multiclass_factor=K / (K - 1.0) if objective == "multiclass" else 1.0,
        leaf_stats=np.concatenate(stats) if stats else np.zeros(0),
        # both settings grow the trees on part of the rows: counts of that part only
        leaf_stats_caveat="; ".join(breaking) or None,
        counts_zero_weight=False,
        leaf_weight_sums=np.concatenate(weights) if weights else np.zeros(0),
        breaking_settings=tuple(breaking),
        notes={"bias": bias_note, "loss": loss},
    )


def _sklearn_ensemble(model, objective, K, n_leaves, tree_type, paths, **fields):
    """The :class:`TreeEnsemble` of a scikit-learn tree model: the fields every model
    fills alike (names, classes, leaf offsets and paths), plus the model's ``fields``."""
    path_indptr, path_nodes, node_offsets = paths
    return TreeEnsemble(
        library="sklearn",
        library_version=sklearn.__version__,
        model_name=type(model).__name__,
        objective=objective,
        tree_type=tree_type,
        n_outputs=K,
        leaf_offsets=_offsets(n_leaves),
        classes=_classes_of(model),
        n_features_in=int(model.n_features_in_),
        path_indptr=path_indptr,
        path_nodes=path_nodes,
        node_offsets=node_offsets,
        **fields,
    )


def _boosting_ensemble(model, objective, K, n_leaves, bias, paths, **fields):
    """What GradientBoosting and HistGradientBoosting share: raw scores from
    ``decision_function`` or ``predict`` and their staged forms, leaf statistics as row
    counts."""
    classifier = objective in ("binary", "multiclass")
    method = "decision_function" if classifier else "predict"
    staged = "staged_decision_function" if classifier else "staged_predict"
    log = objective in ("poisson", "gamma")  # predict is exp(raw)
    return _sklearn_ensemble(
        model,
        objective,
        K,
        n_leaves,
        "gbdt",
        paths,
        bias=bias,
        raw_predictor=_MethodPredictor(model, method, log=log),
        leaf_stats_kind="count",
        staged_raw_predictor=_StagedPredictor(model, staged, bias, log=log),
        **fields,
    )


def _gb_bias(model, X, K):
    """Initial raw score of a GradientBoosting model, as sklearn computes it."""
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.utils.validation import validate_data

    init = model.init_
    if isinstance(init, str):
        if init == "zero":
            return np.zeros(K), "init='zero': initial raw score 0"
        raise UnsupportedModelError(f"unknown init {init!r} of {type(model).__name__}")
    if not hasattr(model, "_raw_predict_init"):  # pragma: no cover - future sklearn
        raise UnsupportedModelError(
            f"this scikit-learn version ({sklearn.__version__}) has no "
            f"{type(model).__name__}._raw_predict_init; skinfluence cannot read the "
            "initial score of the model"
        )
    constant = (
        isinstance(init, (DummyClassifier, DummyRegressor))
        and getattr(init, "strategy", None) != "stratified"
    )
    if constant or X is None:
        Xb = np.zeros((1, int(model.n_features_in_)), dtype=np.float32)
    else:
        Xb = validate_data(model, X, dtype=np.float32, order="C", reset=False)
    raw = np.asarray(model._raw_predict_init(Xb), dtype=np.float64).reshape(len(Xb), -1)
    if raw.shape[1] != K:
        raise UnsupportedModelError(
            f"the init estimator of {type(model).__name__} predicts {raw.shape[1]} "
            f"column(s), expected {K}"
        )
    bias = raw[0].copy()
    name = type(init).__name__
    if constant:
        note = f"init_ {name}(strategy={init.strategy!r}) through the loss link"
    elif X is None:
        note = (
            f"custom init {name} evaluated on a zero row; its constancy was not verified (pass X)"
        )
    else:
        spread = np.ptp(raw, axis=0).max() if len(raw) else 0.0
        if spread > 1e-12 * max(1.0, float(np.abs(raw).max())):
            raise UnsupportedModelError(
                f"{type(model).__name__} has a non-constant init estimator {name} "
                f"(its initial raw score varies by {spread:.3g} over the training "
                "rows): skinfluence needs a constant initial score. Refit with "
                "init=None (the default), a DummyClassifier/DummyRegressor or "
                "init='zero'"
            )
        note = f"custom init {name}, constant over the {len(raw)} rows given"
    return bias, note


# -------------------------------------------------------- HistGradientBoosting
def _hgb_guard(model):
    missing = [
        a
        for a in (
            "_predictors",
            "_preprocess_X",
            "_bin_mapper",
            "_baseline_prediction",
            "n_trees_per_iteration_",
        )
        if not hasattr(model, a)
    ]
    if not missing and model._predictors and model._predictors[0]:
        p = model._predictors[0][0]
        for a in ("nodes", "raw_left_cat_bitsets"):
            if not hasattr(p, a):
                missing.append(f"TreePredictor.{a}")
        if hasattr(p, "nodes"):
            names = p.nodes.dtype.names or ()
            missing += [f"nodes[{f!r}]" for f in _HGB_NODE_FIELDS if f not in names]
        if not hasattr(model._bin_mapper, "make_known_categories_bitsets"):
            missing.append("_bin_mapper.make_known_categories_bitsets")
    if missing:
        raise UnsupportedModelError(
            f"this scikit-learn version ({sklearn.__version__}) stores "
            f"{type(model).__name__} differently from what skinfluence reads (missing "
            f"private attributes: {', '.join(missing)}); HistGradientBoosting has no "
            "public apply, so skinfluence reads its predictor nodes. Please report "
            "this version to skinfluence, or use GradientBoosting*, LightGBM or XGBoost"
        )


#: flattened node arrays of the HistGradientBoosting routing kernel and their dtypes
_HGB_NODE_ARRAYS = {
    "left": np.int64,
    "right": np.int64,
    "feature": np.int64,
    "threshold": np.float64,
    "missing_left": np.uint8,
    "is_leaf": np.uint8,
    "is_cat": np.uint8,
    "bitset_row": np.int64,
    "leaf_index": np.int32,
}


def _flat(parts, dtype):
    """Concatenate per-tree arrays into one contiguous array of ``dtype``."""
    return np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0), dtype=dtype)


def _hgb_loss(model):
    """``(objective, loss, K)`` of a HistGradientBoosting model, or refuse its loss."""
    from sklearn.base import is_classifier

    classifier = is_classifier(model)
    loss = model.loss if isinstance(model.loss, str) else type(model.loss).__name__
    loss = _HGB_LOSS_ALIASES.get(loss, loss)
    regression = ("squared_error", "poisson", "gamma")
    if (classifier and loss != "log_loss") or (not classifier and loss not in regression):
        raise UnsupportedModelError(
            f"{type(model).__name__} with loss={loss!r} is not supported: only "
            "'squared_error', 'poisson', 'gamma' (regression) and 'log_loss' "
            "(classification) grow leaves as single Newton steps (absolute_error and "
            "quantile recompute leaf values as medians and quantiles of the "
            "residuals); refit with a supported loss"
        )
    if classifier:
        objective = "binary" if len(model.classes_) == 2 else "multiclass"
    else:
        objective = loss
    return objective, loss, int(model.n_trees_per_iteration_)


def _hgb_tree(pred, n_nodes, n_splits):
    """One predictor tree: its node arrays (node and bitset rows shifted by the nodes
    and splits of the trees before it), left-category bitsets, leaves and paths."""
    nodes = pred.nodes
    leafy = nodes["is_leaf"].astype(bool)
    leaf_nodes, paths, n_internal = _tree_paths(
        nodes["left"].astype(np.int64), nodes["right"].astype(np.int64), leafy
    )
    loc = np.full(len(nodes), -1, dtype=np.int32)
    loc[leaf_nodes] = np.arange(len(leaf_nodes), dtype=np.int32)
    node_arrays = {
        "left": nodes["left"].astype(np.int64) + n_nodes,
        "right": nodes["right"].astype(np.int64) + n_nodes,
        "feature": nodes["feature_idx"].astype(np.int64),
        "threshold": nodes["num_threshold"].astype(np.float64),
        "missing_left": nodes["missing_go_to_left"].astype(np.uint8),
        "is_leaf": leafy.astype(np.uint8),
        "is_cat": nodes["is_categorical"].astype(np.uint8),
        "bitset_row": nodes["bitset_idx"].astype(np.int64) + n_splits,
        "leaf_index": loc,
    }
    bitsets = np.asarray(pred.raw_left_cat_bitsets, dtype=np.uint32).reshape(-1, 8)
    leaves = (
        nodes["value"][leaf_nodes].astype(np.float64),
        nodes["count"][leaf_nodes].astype(np.float64),
    )
    return node_arrays, bitsets, leaves, paths, n_internal


def _hgb_flatten(model, K):
    """All predictor trees as one set of routing arrays, plus leaf values and counts.

    Returns ``(arrays, values, counts, paths, n_internal, n_leaves)``; ``arrays`` holds
    the inputs of :func:`~skinfluence._adapters._sklearn_routing.hgb_apply`.
    """
    parts = {name: [] for name in _HGB_NODE_ARRAYS}
    bitsets, values, counts, paths, n_internal, n_leaves = [], [], [], [], [], []
    tree_offsets = [0]
    n_splits = 0
    for predictors in model._predictors:
        if len(predictors) != K:  # pragma: no cover - defensive
            raise RuntimeError("a boosting round does not hold one tree per column")
        for pred in predictors:
            node_arrays, bits, (v, c), tpaths, ni = _hgb_tree(pred, tree_offsets[-1], n_splits)
            for name, a in node_arrays.items():
                parts[name].append(a)
            bitsets.append(bits)
            values.append(v)
            counts.append(c)
            paths.append(tpaths)
            n_internal.append(ni)
            n_leaves.append(len(v))
            n_splits += len(bits)
            tree_offsets.append(tree_offsets[-1] + len(pred.nodes))
    known, f_idx_map = model._bin_mapper.make_known_categories_bitsets()
    arrays = {
        "n_features": int(np.asarray(model._bin_mapper.is_categorical_).size),
        "tree_offsets": np.asarray(tree_offsets, dtype=np.int64),
        **{name: _flat(parts[name], dtype) for name, dtype in _HGB_NODE_ARRAYS.items()},
        "left_bitsets": np.ascontiguousarray(
            np.concatenate(bitsets) if bitsets else np.zeros((0, 8)), dtype=np.uint32
        ).reshape(-1, 8),
        "known_bitsets": np.ascontiguousarray(known, dtype=np.uint32).reshape(-1, 8),
        "cat_map": np.ascontiguousarray(f_idx_map, dtype=np.int64),
    }
    return arrays, _flat(values, np.float64), _flat(counts, np.float64), paths, n_internal, n_leaves


def _from_hist_gradient_boosting(model, X, y=None):
    _hgb_guard(model)
    objective, loss, K = _hgb_loss(model)
    arrays, values, counts, paths, n_internal, n_leaves = _hgb_flatten(model, K)
    training_rows, split_problem = _hgb_recovered_rows(model, X, y, counts, n_leaves)
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).ravel()
    bias = np.full(K, baseline[0]) if baseline.size == 1 else baseline
    return _boosting_ensemble(
        model,
        objective,
        K,
        n_leaves,
        bias,
        paths_to_csr(paths, n_internal),
        leaf_values=values,
        learning_rates=np.full(len(n_leaves), float(model.learning_rate)),
        l2=float(model.l2_regularization),
        router=_HGBRouter(model, arrays),
        multiclass_factor=1.0,
        # a root the grower never splits keeps its initial value 0 (TreeGrower gives
        # values to children only): no Newton step, no dependence on the rows
        constant_tree=np.asarray(n_leaves) == 1,
        leaf_stats=counts,
        leaf_stats_caveat=None if split_problem is None else "unrecovered validation split",
        breaking_settings=tuple(_hgb_breaking_settings(model, split_problem)),
        training_rows=training_rows,
        notes={
            "bias": "_baseline_prediction",
            "loss": loss,
            "routing": "numba traversal of the predictor nodes after the model's own _preprocess_X",
        },
    )


def _hgb_splits_rows(model):
    """Whether ``fit`` drew an internal validation split from the rows it was given
    (early stopping on, ``validation_fraction`` set; unless ``X_val`` was passed)."""
    return bool(getattr(model, "do_early_stopping_", False)) and (
        model.validation_fraction is not None
    )


def hgb_training_split(model, X, y):
    """The training and validation rows of an early-stopped HistGradientBoosting model.

    With early stopping on and ``validation_fraction`` set, ``fit(X, y)`` grows the
    trees on a split of the rows it was given: ``train_test_split`` of the rows with
    ``test_size=validation_fraction``, stratified by the encoded labels for classifiers
    and with ``random_state`` the seed the model stores as ``_random_seed`` (the same
    in scikit-learn 1.6 to 1.9; sample weights follow the rows and do not change the
    split). This function redraws that split.

    Parameters
    ----------
    model : fitted HistGradientBoostingClassifier or HistGradientBoostingRegressor
    X : array-like of shape (n_samples, n_features)
        The rows given to the model's ``fit`` (only their number is used).
    y : array-like of shape (n_samples,)
        The labels given to the model's ``fit``.

    Returns
    -------
    train, validation : ndarray of int64
        Indices into ``X``, in the order in which the model saw its training rows
        (fitting ``X[train]`` in this order with ``early_stopping=False`` and
        ``max_iter=model.n_iter_`` and the same seed grows the same trees).

    Raises
    ------
    UnsupportedModelError
        When the model drew no split, or does not store its seed.
    """
    from sklearn.base import is_classifier
    from sklearn.model_selection import train_test_split

    if not _hgb_splits_rows(model):
        raise UnsupportedModelError(
            f"this {type(model).__name__} drew no validation split (early stopping off "
            "or validation_fraction=None): it was trained on all the rows given to fit"
        )
    seed = getattr(model, "_random_seed", None)
    if seed is None:  # pragma: no cover - future scikit-learn
        raise UnsupportedModelError(
            f"this scikit-learn version ({sklearn.__version__}) does not store the seed "
            f"of the validation split of {type(model).__name__} (_random_seed)"
        )
    rows = np.arange(_n_samples(X), dtype=np.int64)
    stratify = None
    if is_classifier(model):
        stratify = _class_indices(model, y)
    train, val = train_test_split(
        rows, test_size=model.validation_fraction, stratify=stratify, random_state=seed
    )
    return train, val


def _n_samples(X):
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


def _class_indices(model, y):
    """Labels as the model encoded them for fit (indices into ``classes_``, float)."""
    lookup = {c: i for i, c in enumerate(np.asarray(model.classes_).tolist())}
    y = np.ravel(np.asarray(y))
    try:
        return np.fromiter((lookup[v] for v in y.tolist()), dtype=np.float64, count=len(y))
    except KeyError:
        raise UnsupportedModelError(
            f"y contains labels this {type(model).__name__} never saw"
        ) from None


def _hgb_recovered_rows(model, X, y, counts, n_leaves):
    """``(training_rows, problem)`` of a HistGradientBoosting model.

    ``training_rows`` is ``None`` when the model was trained on all rows given (no
    split, or validation data passed to fit), else the sorted indices of the recovered
    training split; ``problem`` is ``None`` or why the split could not be recovered.
    The recovered training part must hold as many rows as the model's trees counted.
    """
    if not _hgb_splits_rows(model):
        return None, None
    from sklearn.base import is_classifier

    if X is None or (y is None and is_classifier(model)):
        return None, "the rows and labels given to fit are needed to redraw it"
    recorded = int(round(counts[: n_leaves[0]].sum())) if n_leaves else None
    n = _n_samples(X)
    if recorded == n:  # validation data passed to fit: all rows trained the trees
        return None, None
    try:
        train, _ = hgb_training_split(model, X, y)
    except (UnsupportedModelError, ValueError) as exc:
        return None, f"redrawing it failed ({exc})"
    if recorded is not None and recorded != len(train):
        return None, (
            f"its trees counted {recorded} training rows, but the split of the {n} rows "
            f"given to fit has {len(train)}: pass the exact rows and labels the model "
            "was fit on, in the same order"
        )
    return np.sort(train), None


def _hgb_breaking_settings(model, split_problem=None):
    out = []
    if split_problem is not None:
        why = (
            "early_stopping='auto' turns it on for more than 10,000 rows"
            if model.early_stopping == "auto"
            else f"early_stopping={model.early_stopping}"
        )
        out.append(
            f"early stopping with validation_fraction={model.validation_fraction} "
            f"({why}): the trees were grown on a training split without the "
            f"validation rows, and skinfluence could not recover that split: "
            f"{split_problem}"
        )
    cw = getattr(model, "class_weight", None)
    if cw is not None:
        out.append(
            f"class_weight={cw!r}: class weights multiply the gradients like row "
            "weights; pass sklearn.utils.class_weight.compute_sample_weight("
            "class_weight, y) (times any sample weights) as sample_weight"
        )
    cst = getattr(model, "monotonic_cst", None)
    if cst is not None:
        vals = cst.values() if isinstance(cst, dict) else np.ravel(np.asarray(cst))
        if any(v != 0 for v in vals):
            out.append(
                f"monotonic_cst={cst!r} (leaf values clamped to keep monotonicity): "
                "a binding constraint changes leaf values; refit without monotonic_cst"
            )
    return out


# ------------------------------------------------------------------ forests
def _from_forest(model, X):
    from sklearn.base import is_classifier

    if int(getattr(model, "n_outputs_", 1)) != 1:
        raise UnsupportedModelError(
            f"{type(model).__name__} with {model.n_outputs_} outputs is not supported: "
            "skinfluence handles single-output forests only"
        )
    classifier = is_classifier(model)
    if classifier:
        n_classes = len(model.classes_)
        objective = "binary" if n_classes == 2 else "multiclass"
        K = 1 if n_classes == 2 else n_classes
    else:
        objective, K = "squared_error", 1

    maps, values, stats, weights, paths, n_internal = [], [], [], [], [], []
    for est in model.estimators_:
        tree = est.tree_
        leaf_nodes, tpaths, ni = _sklearn_tree_paths(tree)
        maps.append(leaf_map(leaf_nodes, size=tree.node_count))
        count = tree.n_node_samples[leaf_nodes].astype(np.float64)
        weight = np.asarray(tree.weighted_n_node_samples[leaf_nodes], dtype=np.float64)
        if classifier:
            frac = np.asarray(tree.value[leaf_nodes, 0, :], dtype=np.float64)
            total = frac.sum(axis=1, keepdims=True)
            frac = frac / np.where(total > 0, total, 1.0)
            cols = [frac[:, 1]] if K == 1 else [frac[:, k] for k in range(K)]
        else:
            cols = [np.asarray(tree.value[leaf_nodes, 0, 0], dtype=np.float64)]
        for col in cols:
            values.append(col)
            stats.append(count)
            weights.append(weight)
            paths.append(tpaths)
            n_internal.append(ni)
    n_leaves = [len(v) for v in values]
    T = len(values)

    bootstrap = bool(getattr(model, "bootstrap", False))
    if classifier:
        raw = _MethodPredictor(model, "predict_proba", start_column=1 if K == 1 else 0)
    else:
        raw = _MethodPredictor(model, "predict")
    return _sklearn_ensemble(
        model,
        objective,
        K,
        n_leaves,
        "rf",
        paths_to_csr(paths, n_internal),
        leaf_values=np.concatenate(values) if values else np.zeros(0),
        learning_rates=np.ones(T),
        bias=np.zeros(K),
        l2=0.0,
        router=_ApplyRouter(model, maps, repeat=K),
        raw_predictor=raw,
        # with bootstrap, n_node_samples counts the distinct in-bag rows only
        leaf_stats=None if bootstrap else np.concatenate(stats),
        leaf_stats_kind=None if bootstrap else "count",
        counts_zero_weight=False,
        leaf_weight_sums=None if bootstrap else np.concatenate(weights),
        notes={
            "leaf_values": "class fractions (classifiers) or node means",
            "bootstrap": bootstrap,
        },
    )
