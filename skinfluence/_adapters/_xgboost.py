"""XGBoost adapter: ``XGBClassifier``, ``XGBRegressor`` or ``xgboost.Booster`` ->
:class:`~skinfluence._ensemble.TreeEnsemble`.

Everything is read from the trained booster itself (:doc:`models`, 'XGBoost'): the trees and
leaf values from the JSON model (``save_raw("json")``), the bias and the effective
training parameters from the saved config (``save_config()``), the routing and the raw
margins from ``Booster.predict`` over the same iteration range (the best iteration after
early stopping).
"""

import json
from typing import NamedTuple

import numpy as np

from .._ensemble import TreeEnsemble
from ._base import (
    UnsupportedModelError,
    import_optional,
    leaf_map,
    paths_to_csr,
    remap_leaves,
    wrapper_clone,
)

__all__ = ["to_ensemble", "is_fitted", "refit_template", "SUPPORTED_OBJECTIVES"]

#: XGBoost objective -> skinfluence objective (``binary:*`` of a model that is not a
#: classifier, with labels in [0, 1]: ``cross_entropy``)
SUPPORTED_OBJECTIVES = {
    "reg:squarederror": "squared_error",
    "binary:logistic": "binary",
    "binary:logitraw": "binary",
    "multi:softprob": "multiclass",
    "multi:softmax": "multiclass",
    "count:poisson": "poisson",
    "reg:gamma": "gamma",
    "reg:tweedie": "tweedie",
    "reg:logistic": "cross_entropy",
    "reg:pseudohubererror": "pseudo_huber",
}

#: the objective parameter of each regression objective: (config section, key)
_OBJECTIVE_PARAM = {
    "count:poisson": ("poisson_regression_param", "max_delta_step"),
    "reg:tweedie": ("tweedie_regression_param", "tweedie_variance_power"),
    "reg:pseudohubererror": ("pseudo_huber_param", "huber_slope"),
}

#: base_score is saved as a mean; the margin is its link (XGBoost's ProbToMargin)
_LOG_LINK = ("count:poisson", "reg:gamma", "reg:tweedie")
_LOGIT_LINK = ("binary:logistic", "reg:logistic")

#: XGBoost's softmax objective takes the Newton step with h = 2 p (1 - p)
_MULTICLASS_FACTOR = 2.0


# ----------------------------------------------------------------------------- hooks
def is_fitted(model):
    """Whether an XGBoost model is fitted (a ``Booster`` always is)."""
    xgb = import_optional("xgboost")
    if isinstance(model, xgb.XGBModel):
        return getattr(model, "_Booster", None) is not None
    return True  # a Booster is trained; to_ensemble refuses any other object


def refit_template(model):
    """Unfitted copy with one thread; a raw ``Booster`` cannot be refit."""
    return wrapper_clone(model, import_optional("xgboost").Booster, "XGBClassifier / XGBRegressor")


def _f32(value):
    """A float parameter as XGBoost holds it (float32), widened to float64."""
    return float(np.float32(float(value)))


def _parse_vector(text):
    """Parse a saved-config number, bracketed (``"[6.6E-1]"``) or not (``"0.5"``)."""
    text = str(text).strip().strip("[]")
    return np.array([float(v) for v in text.split(",") if v.strip()], dtype=np.float64)


def _resolve(model, xgb):
    """Return ``(booster, wrapper)`` for a supported XGBoost model."""
    if isinstance(model, xgb.Booster):
        return model, None
    if isinstance(model, (xgb.XGBClassifier, xgb.XGBRegressor)):
        return model.get_booster(), model
    raise UnsupportedModelError(
        f"XGBoost models of type {type(model).__name__} are not supported; supported: "
        "XGBClassifier, XGBRegressor (and their random-forest subclasses) and "
        "xgboost.Booster"
    )


def _has_column_names(X):
    return hasattr(X, "columns")


class _XGBoostPredictor:
    """Routing and raw margins of a booster over a fixed iteration range.

    A plain class (not closures) so that a :class:`TreeEnsemble` holding its bound
    methods can be pickled with the estimators that store it.
    """

    def __init__(
        self,
        booster,
        n_rounds,
        n_outputs,
        missing,
        nthread,
        order,
        maps,
        rounds_per_iteration,
        bias,
    ):
        self.booster = booster
        self.n_rounds = int(n_rounds)
        self.n_outputs = int(n_outputs)
        self.missing = missing
        self.nthread = nthread
        self.order = order  # None: identity
        self.maps = maps
        self.rounds_per_iteration = int(rounds_per_iteration)
        self.bias = bias

    def _dmatrix(self, X):
        xgb = import_optional("xgboost")
        kwargs = {"missing": self.missing, "enable_categorical": True}
        if self.nthread is not None:
            kwargs["nthread"] = self.nthread
        if not _has_column_names(X):
            # an array has no names or dtypes of its own: it is read in the model's
            # column order, categorical columns as integer codes (as in training)
            n_cols = np.shape(X)[1] if len(np.shape(X)) == 2 else None
            names = self.booster.feature_names
            if names is not None and n_cols == len(names):
                kwargs["feature_names"] = names
                kwargs["feature_types"] = self.booster.feature_types
            elif self.booster.feature_types is not None and n_cols == len(
                self.booster.feature_types
            ):
                kwargs["feature_types"] = self.booster.feature_types
        return xgb.DMatrix(X, **kwargs)

    def _predict(self, X, n_rounds, **kwargs):
        dm = self._dmatrix(X)
        out = self.booster.predict(dm, iteration_range=(0, n_rounds), **kwargs)
        return np.asarray(out).reshape(dm.num_row(), -1)

    def leaves(self, X):
        """Local leaf index ``(n, n_trees)`` of every row, by XGBoost's routing."""
        # float node ids: remap_leaves reads them as they are (no int64 copy)
        raw = self._predict(X, self.n_rounds, pred_leaf=True)
        if self.order is not None:
            raw = raw[:, self.order]
        return remap_leaves(raw, self.maps)

    def raw(self, X):
        """XGBoost's raw margin ``(n, K)`` (``output_margin=True``)."""
        return self._predict(X, self.n_rounds, output_margin=True)

    def staged_raw(self, X, n_rounds):
        """Raw margin ``(n, K)`` of the first ``n_rounds`` ensemble rounds."""
        it = int(n_rounds) // self.rounds_per_iteration
        if it <= 0:  # iteration_range=(0, 0) would mean all trees
            n = self._dmatrix(X).num_row()
            return np.tile(self.bias, (n, 1))
        return self._predict(X, min(it, self.n_rounds), output_margin=True)


def _tree_train_param(cfg):
    gb = cfg["gradient_booster"]
    name = gb["name"]
    if name == "gblinear":
        raise UnsupportedModelError(
            "booster='gblinear' is a linear model, not a tree ensemble; use booster='gbtree'"
        )
    if name not in ("gbtree", "dart"):
        raise UnsupportedModelError(f"booster={name!r} is not supported; use 'gbtree'")
    tree_gb = gb["gbtree"] if name == "dart" else gb
    return name, gb, tree_gb


def _objective(cfg):
    obj = cfg["objective"]["name"]
    if obj not in SUPPORTED_OBJECTIVES:
        raise UnsupportedModelError(
            f"the XGBoost objective {obj!r} is not supported; supported objectives: "
            f"{', '.join(SUPPORTED_OBJECTIVES)}"
        )
    return obj


def _objective_of(xgb_objective, wrapper, y):
    """Our objective: ``binary:logistic`` / ``binary:logitraw`` train on labels in
    ``[0, 1]`` (the cross-entropy); a classifier's labels are classes (``binary``), a
    regressor's are probabilities (``cross_entropy``); a raw Booster is ``binary``
    unless the ``y`` given has labels other than 0 and 1."""
    objective = SUPPORTED_OBJECTIVES[xgb_objective]
    if objective != "binary":
        return objective
    if wrapper is not None and not hasattr(wrapper, "classes_"):
        return "cross_entropy"
    if wrapper is None and y is not None:
        labels = np.asarray(y)
        if np.issubdtype(labels.dtype, np.number) and not np.all(np.isin(labels, (0, 1))):
            return "cross_entropy"
    return objective


def _objective_param(cfg, xgb_objective):
    """Poisson's hessian offset (the hessian is ``exp(F + max_delta_step)``), the
    Tweedie variance power or the pseudo-Huber slope, as saved (float32); else 0."""
    if xgb_objective not in _OBJECTIVE_PARAM:
        return 0.0
    section, key = _OBJECTIVE_PARAM[xgb_objective]
    return _f32(cfg["objective"][section][key])


def _bias(cfg, xgb_objective, K):
    lmp = cfg["learner_model_param"]
    base = _parse_vector(lmp["base_score"])
    if xgb_objective in _LOGIT_LINK:
        p = base
        if np.any((p <= 0) | (p >= 1)):
            raise UnsupportedModelError(
                f"{xgb_objective} base_score {lmp['base_score']} is not a probability"
            )
        base = np.log(p) - np.log1p(-p)
    elif xgb_objective in _LOG_LINK:
        if np.any(base <= 0):
            raise UnsupportedModelError(
                f"{xgb_objective} base_score {lmp['base_score']} is not a positive mean"
            )
        base = np.log(base)
    if base.size == 1:
        base = np.repeat(base, K)
    if base.size != K:
        raise UnsupportedModelError(
            f"the saved base_score {lmp['base_score']} has {base.size} values for "
            f"{K} raw-score column(s)"
        )
    return base


def _parse_tree(tree, t):
    """Leaves, internal nodes and ancestor paths of one JSON tree, from the root."""
    tp = tree.get("tree_param", {})
    if int(tp.get("size_leaf_vector", "1")) > 1:
        raise UnsupportedModelError(
            "vector-leaf trees (multi_strategy='multi_output_tree') are not supported; "
            "use multi_strategy='one_output_per_tree'"
        )
    left = tree["left_children"]
    right = tree["right_children"]
    leaves, internal, paths = [], [], {}
    stack = [(0, ())]
    while stack:
        node, path = stack.pop()
        if left[node] == -1:
            leaves.append(node)
            paths[node] = path
        else:
            internal.append(node)
            stack.append((right[node], path + (node,)))
            stack.append((left[node], path + (node,)))
    leaves.sort()
    internal.sort()
    local = {node: i for i, node in enumerate(internal)}
    leaf_paths = [[local[a] for a in paths[node]] for node in leaves]
    return np.asarray(leaves, dtype=np.int64), len(internal), leaf_paths


def _tree_order(model_json, n_trees_used, n_rounds, K):
    """Ensemble order of the used trees (round-major, class-inner) and trees per
    class and round (parallel trees).
    """
    info = np.asarray(model_json["tree_info"], dtype=np.int64)[:n_trees_used]
    indptr = model_json.get("iteration_indptr")
    if indptr is None:
        per_round = n_trees_used // max(n_rounds, 1)
        indptr = np.arange(n_rounds + 1) * per_round
    indptr = np.asarray(indptr, dtype=np.int64)
    order = []
    n_parallel = None
    for b in range(n_rounds):
        idx = np.arange(indptr[b], indptr[b + 1])
        per_class = [idx[info[idx] == k] for k in range(K)]
        sizes = {len(p) for p in per_class}
        if len(sizes) != 1 or 0 in sizes or sum(len(p) for p in per_class) != len(idx):
            raise UnsupportedModelError(
                f"boosting round {b} does not hold the same number of trees for each "
                f"of the {K} output(s) (tree_info {info[idx].tolist()})"
            )
        P = sizes.pop()
        if n_parallel is None:
            n_parallel = P
        elif P != n_parallel:
            raise UnsupportedModelError("the number of parallel trees varies by round")
        for p in range(P):
            order.extend(int(per_class[k][p]) for k in range(K))
    order = np.asarray(order, dtype=np.int64)
    return order, (n_parallel or 1)


#: the breaking settings (by their first word) under which the cover of a tree is not
#: the replayed hessian sum of all training rows
_COVER_SETTINGS = (
    "subsample=",
    "sampling_method=",
    "booster=",
    "num_parallel_tree=",
    "scale_pos_weight=",
    "process_type=",
)


def _stats_caveat(breaking):
    """Why the cover cannot be recomputed from the training rows, or None."""
    return "; ".join(s for s in breaking if s.startswith(_COVER_SETTINGS)) or None


def _breaking_settings(booster_name, gb, tp, obj_cfg, n_parallel, leaf_values, eta_leaf):
    out = []
    subsample = _f32(tp.get("subsample", 1))
    if subsample < 1:
        out.append(
            f"subsample={subsample:g} (each tree is fitted on a random subset of the "
            "rows): refit with subsample=1.0"
        )
    if tp.get("sampling_method", "uniform") == "gradient_based":
        out.append(
            "sampling_method='gradient_based' (rows are sampled and reweighted by "
            "their gradients): refit with sampling_method='uniform' and subsample=1.0"
        )
    alpha = _f32(tp.get("alpha", tp.get("reg_alpha", 0)))
    if alpha > 0:
        out.append(
            f"reg_alpha={alpha:g} (L1 soft-threshold on the leaf values): refit with reg_alpha=0"
        )
    mono = str(tp.get("monotone_constraints", "()"))
    mono_vals = [v for v in mono.strip("()[] ").replace(" ", "").split(",") if v]
    if any(float(v) != 0 for v in mono_vals):
        out.append(
            f"monotone_constraints={mono} (leaf values are clamped to keep the "
            "constraints): refit without monotone_constraints"
        )
    if booster_name == "dart":
        dp = gb.get("dart_train_param", {})
        out.append(
            f"booster='dart' (rate_drop={_f32(dp.get('rate_drop', 0)):g}: each tree is "
            "fitted to a thinned ensemble and rescaled by its weight_drop): refit with "
            "booster='gbtree'"
        )
    if n_parallel > 1:
        out.append(
            f"num_parallel_tree={n_parallel} (several trees per round are fitted at "
            "the same scores, random-forest style): refit with num_parallel_tree=1"
        )
    spw = _f32(obj_cfg.get("reg_loss_param", {}).get("scale_pos_weight", 1))
    if spw != 1:
        out.append(
            f"scale_pos_weight={spw:g} (multiplies the gradient and hessian of every "
            f"row whose label is 1, exactly like a row weight of {spw:g} on those "
            f"rows): pass sample_weight={spw:g} for the rows with label 1 (times any "
            "training sample weights) to fit, or refit with scale_pos_weight=1"
        )
    process_type = gb.get("gbtree_train_param", {}).get("process_type", "default")
    if process_type != "default":
        out.append(
            f"process_type={process_type!r} (existing trees were refreshed or pruned, "
            "possibly on other data): use a model trained with process_type='default'"
        )
    return tuple(out)


def to_ensemble(model, X=None, y=None, sample_weight=None):
    """Build the :class:`~skinfluence._ensemble.TreeEnsemble` of a fitted XGBoost model.

    Parameters
    ----------
    model : XGBClassifier, XGBRegressor or xgboost.Booster
        A fitted model with a tree booster (``gbtree`` or ``dart``).
    X, y, sample_weight : optional
        Unused: XGBoost stores everything the ensemble needs (the intercept is read from
        the saved config, never recomputed). Accepted for a uniform adapter signature.

    Returns
    -------
    ensemble : TreeEnsemble
        Trees in round-major, class-inner order, over the iteration range the model
        predicts with (``best_iteration + 1`` rounds after early stopping).

    Raises
    ------
    UnsupportedModelError
        For ``gblinear``, an objective other than ``reg:squarederror``,
        ``binary:logistic``, ``binary:logitraw``, ``multi:softprob`` and
        ``multi:softmax``, multi-target or vector-leaf models, and other model classes.

    Notes
    -----
    Settings that change the leaf values away from one Newton step on all training rows
    (``subsample`` < 1, ``sampling_method='gradient_based'``, ``reg_alpha`` > 0,
    ``monotone_constraints``, ``dart``,
    ``num_parallel_tree`` > 1, ``scale_pos_weight`` != 1, ``process_type='update'``) are
    listed in ``breaking_settings``; the routing and the reconstruction stay exact for
    them (with ``num_parallel_tree`` > 1 each parallel tree is its own ensemble round,
    with dart each tree's ``weight_drop`` is folded into its leaf values and learning
    rate). A one-leaf tree whose root hessian is below ``min_child_weight`` stores 0
    whatever the gradients: it is flagged as a constant tree.

    Parsing costs O(number of nodes) Python work; the routing is XGBoost's own
    ``pred_leaf`` prediction.
    """
    xgb = import_optional("xgboost")
    booster, wrapper = _resolve(model, xgb)
    cfg = json.loads(booster.save_config())["learner"]
    booster_name, gb, tree_gb = _tree_train_param(cfg)
    xgb_objective = _objective(cfg)
    objective = _objective_of(xgb_objective, wrapper, y)
    K = _n_outputs(cfg["learner_model_param"], objective)
    tp = tree_gb["tree_train_param"]
    bias = _bias(cfg, xgb_objective, K)
    model_json, weight_drop = _trees_json(booster, booster_name)
    rounds = _rounds(booster, model_json, tree_gb, K)
    order, n_parallel = _tree_order(model_json, rounds["n_trees_used"], rounds["n_rounds"], K)
    trees = _read_trees(model_json["trees"], order, tp, weight_drop)
    breaking = _breaking_settings(
        booster_name,
        gb,
        tp,
        cfg["objective"],
        n_parallel,
        trees.leaf_values,
        np.repeat(trees.learning_rates, trees.leaf_counts),
    )
    identity = np.array_equal(order, np.arange(len(order)))
    missing, nthread, classes, n_features_in = _wrapper_facts(wrapper, booster)
    predictor = _XGBoostPredictor(
        booster,
        rounds["n_rounds"],
        K,
        missing,
        nthread,
        None if identity else order,
        trees.maps,
        n_parallel,
        bias,
    )
    return TreeEnsemble(
        library="xgboost",
        library_version=str(xgb.__version__),
        model_name=type(model).__name__,
        objective=objective,
        tree_type="gbdt",
        n_outputs=K,
        leaf_offsets=trees.leaf_offsets,
        leaf_values=trees.leaf_values,
        learning_rates=trees.learning_rates,
        bias=bias,
        l2=_f32(tp.get("lambda", tp.get("reg_lambda", 1))),
        router=predictor.leaves,
        raw_predictor=predictor.raw,
        l1=_f32(tp.get("alpha", tp.get("reg_alpha", 0))),
        max_delta_step=_f32(tp.get("max_delta_step", 0)),
        multiclass_factor=_MULTICLASS_FACTOR if objective == "multiclass" else 1.0,
        objective_param=_objective_param(cfg, xgb_objective),
        predicts_raw=xgb_objective == "binary:logitraw",
        constant_tree=trees.constant,
        classes=classes,
        n_features_in=n_features_in,
        leaf_stats=trees.leaf_stats,
        leaf_stats_kind="hessian",
        leaf_stats_caveat=_stats_caveat(breaking),
        breaking_settings=breaking,
        path_indptr=trees.path_indptr,
        path_nodes=trees.path_nodes,
        node_offsets=trees.node_offsets,
        staged_raw_predictor=predictor.staged_raw if n_parallel == 1 else None,
        reconstruction_tol=(1e-5, 1e-5),
        notes=_notes(cfg, xgb_objective, booster_name, rounds, n_parallel, identity),
    )


def _n_outputs(lmp, objective):
    """Trees per round (classes of a multiclass model, else 1); refuse multi-target."""
    if int(lmp.get("num_target", "1")) > 1:
        raise UnsupportedModelError(
            f"multi-target models (num_target={lmp['num_target']}) are not supported"
        )
    return max(int(lmp.get("num_class", "0")), 1) if objective == "multiclass" else 1


def _trees_json(booster, booster_name):
    """The trees of the JSON model and dart's per-tree ``weight_drop`` (None for gbtree)."""
    model_json = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]
    if booster_name == "dart":
        weight_drop = np.asarray(model_json["weight_drop"], dtype=np.float64)
        return model_json["gbtree"]["model"], weight_drop
    return model_json["model"], None


def _rounds(booster, model_json, tree_gb, K):
    """Rounds the model predicts with (``best_iteration + 1`` after early stopping)."""
    n_rounds_total = booster.num_boosted_rounds()
    best = booster.attr("best_iteration")
    n_rounds = n_rounds_total if best is None else min(int(best) + 1, n_rounds_total)
    indptr = model_json.get("iteration_indptr")
    n_trees_used = (
        int(indptr[n_rounds])
        if indptr is not None
        else n_rounds * K * int(tree_gb["gbtree_model_param"]["num_parallel_tree"])
    )
    return {
        "n_rounds": n_rounds,
        "n_rounds_total": n_rounds_total,
        "best_iteration": None if best is None else int(best),
        "n_trees_used": n_trees_used,
    }


class _Trees(NamedTuple):
    """The ensemble's trees in ensemble order, as flat arrays."""

    maps: list
    leaf_counts: list
    leaf_offsets: np.ndarray
    leaf_values: np.ndarray
    learning_rates: np.ndarray
    leaf_stats: np.ndarray
    constant: np.ndarray
    path_indptr: np.ndarray
    path_nodes: np.ndarray
    node_offsets: np.ndarray


def _read_trees(trees, order, tp, weight_drop):
    """Leaves, values (dart: times ``weight_drop``), hessians and paths of each tree."""
    eta = _f32(tp.get("eta", tp.get("learning_rate", 0.3)))
    mcw = _f32(tp.get("min_child_weight", 1))
    maps, leaf_counts, values, stats, paths, n_internal = [], [], [], [], [], []
    constant, lr = [], []
    for t in order:
        tree = trees[t]
        leaves, n_int, leaf_paths = _parse_tree(tree, t)
        cond = np.asarray(tree["split_conditions"], dtype=np.float32)[leaves]
        hess = np.asarray(tree["sum_hessian"], dtype=np.float32)[leaves]
        v = cond.astype(np.float64)
        rate = eta
        if weight_drop is not None:
            v = v * weight_drop[t]
            rate = eta * weight_drop[t]
        maps.append(leaf_map(leaves, size=len(tree["left_children"])))
        leaf_counts.append(len(leaves))
        values.append(v)
        stats.append(hess.astype(np.float64))
        paths.append(leaf_paths)
        n_internal.append(n_int)
        lr.append(rate)
        # XGBoost's leaf weight is 0 when the node's hessian is below min_child_weight;
        # only a one-leaf tree (root never split) can end up there
        constant.append(len(leaves) == 1 and v[0] == 0.0 and float(hess[0]) < mcw)
    leaf_offsets = np.zeros(len(order) + 1, dtype=np.int64)
    leaf_offsets[1:] = np.cumsum(leaf_counts)
    return _Trees(
        maps,
        leaf_counts,
        leaf_offsets,
        np.concatenate(values) if values else np.zeros(0),
        np.asarray(lr, dtype=np.float64),
        np.concatenate(stats) if stats else np.zeros(0),
        np.asarray(constant, dtype=bool),
        *paths_to_csr(paths, n_internal),
    )


def _wrapper_facts(wrapper, booster):
    """``(missing, nthread, classes, n_features_in)`` from the wrapper, if any."""
    if wrapper is None:
        return np.nan, None, None, int(booster.num_features())
    classes = np.asarray(wrapper.classes_) if hasattr(wrapper, "classes_") else None
    n_features_in = int(getattr(wrapper, "n_features_in_", booster.num_features()))
    return wrapper.missing, wrapper.n_jobs, classes, n_features_in


def _notes(cfg, xgb_objective, booster_name, rounds, n_parallel, identity):
    """Where each model fact was read."""
    base_score = cfg["learner_model_param"]["base_score"]
    return {
        "xgboost_objective": xgb_objective,
        "booster": booster_name,
        "bias": (
            f"saved config base_score {base_score}"
            + (
                " (probability, converted to its logit)"
                if xgb_objective in _LOGIT_LINK
                else " (mean, converted to its log)"
                if xgb_objective in _LOG_LINK
                else " (margin)"
            )
        ),
        "n_rounds": rounds["n_rounds"],
        "n_rounds_total": rounds["n_rounds_total"],
        "best_iteration": rounds["best_iteration"],
        "parallel_trees": n_parallel,
        "tree_order": "as stored" if identity else "reordered by tree_info",
        "learning_rate": (
            "saved eta for every tree (a learning-rate schedule is not recorded by "
            "XGBoost and would fail the leaf-model check)"
        ),
    }
