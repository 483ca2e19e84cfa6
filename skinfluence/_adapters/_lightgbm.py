"""LightGBM adapter: ``LGBMClassifier``, ``LGBMRegressor`` or ``lightgbm.Booster`` ->
:class:`~skinfluence._ensemble.TreeEnsemble`.

Model facts recovered here (:doc:`models`, 'LightGBM'):

* routing by ``Booster.predict(X, pred_leaf=True)``, the raw score by
  ``raw_score=True``, both over the same ``num_iteration`` (the best iteration after
  early stopping); when every split is numeric, dense numeric inputs are routed by
  :mod:`._lightgbm_routing` with LightGBM's decision rule instead (the same leaves,
  compared with ``pred_leaf`` at fit), which saves LightGBM's float64 leaf output;
* leaf values, per-tree ``shrinkage``, leaf counts and the tree structure from the
  model text ``Booster.model_to_string()``, parsed with numpy over all trees at once
  (leaf values are written with 17 significant digits, so they are exact). The text
  writes ``shrinkage`` and ``internal_value`` with 6 digits; where a booster may hold
  them more precisely (learning-rate schedules, a booster still holding the trees it
  trained) they are read from the JSON dump ``Booster.dump_model()`` instead, of one
  boosting round where that settles it;
* the initial score F_0, which LightGBM folds into the first tree of each column and does
  not store exactly, recomputed from the training labels and sample weights and
  subtracted from those trees;
* effective parameters from the ``parameters:`` section of the model text (canonical
  names), not from wrapper defaults.
"""

import functools
import math
import re
from typing import NamedTuple

import numpy as np

from .._ensemble import TreeEnsemble
from .._objectives import gradient, is_regression, regression_hessian
from ._base import UnsupportedModelError, import_optional, remap_leaves, wrapper_clone
from ._lightgbm_routing import dense_numeric, lgb_apply, numeric_trees

__all__ = ["to_ensemble", "is_fitted", "refit_template"]

#: LightGBM's kEpsilon (below it an initial score is treated as zero)
_K_EPSILON = 1e-15

SUPPORTED_OBJECTIVES = (
    "regression (L2, aliases regression_l2, l2, mse, mean_squared_error)",
    "binary (with sigmoid=1)",
    "multiclass (softmax)",
    "poisson",
    "gamma",
    "tweedie",
    "cross_entropy (alias xentropy)",
    "huber",
)

#: LightGBM objective name -> (our objective, the saved parameter it takes)
_REGRESSION_OBJECTIVES = {
    "poisson": ("poisson", "poisson_max_delta_step"),
    "gamma": ("gamma", None),
    "tweedie": ("tweedie", "tweedie_variance_power"),
    "cross_entropy": ("cross_entropy", None),
    "huber": ("huber", "alpha"),
}

#: aliases of the parameters read here, for boosters without a saved parameter section
_ALIASES = {
    "boosting": ("boosting_type", "boost"),
    "learning_rate": ("shrinkage_rate", "eta"),
    "lambda_l1": ("reg_alpha", "l1_regularization"),
    "lambda_l2": ("reg_lambda", "lambda", "l2_regularization"),
    "max_delta_step": ("max_leaf_output", "max_tree_output"),
    "bagging_fraction": ("subsample", "sub_row", "bagging"),
    "bagging_freq": ("subsample_freq",),
    "pos_bagging_fraction": ("pos_sub_row", "pos_subsample", "pos_bagging"),
    "neg_bagging_fraction": ("neg_sub_row", "neg_subsample", "neg_bagging"),
    "linear_tree": ("linear_trees",),
    "monotone_constraints": ("mc", "monotone_constraint", "monotonic_cst"),
    "is_unbalance": ("unbalance", "unbalanced_sets"),
    "boost_from_average": (),
    "max_cat_to_onehot": (),
    "cat_l2": (),
    "path_smooth": (),
    "use_quantized_grad": (),
    "data_sample_strategy": (),
    "scale_pos_weight": (),
    "sigmoid": (),
    "poisson_max_delta_step": (),
    "tweedie_variance_power": (),
    "alpha": (),
}

_DEFAULTS = {
    "boosting": "gbdt",
    "learning_rate": "0.1",
    "lambda_l1": "0",
    "lambda_l2": "0",
    "max_delta_step": "0",
    "bagging_fraction": "1",
    "bagging_freq": "0",
    "pos_bagging_fraction": "1",
    "neg_bagging_fraction": "1",
    "linear_tree": "0",
    "monotone_constraints": "",
    "is_unbalance": "0",
    "boost_from_average": "1",
    "max_cat_to_onehot": "4",
    "cat_l2": "10",
    "path_smooth": "0",
    "use_quantized_grad": "0",
    "data_sample_strategy": "bagging",
    "scale_pos_weight": "1",
    "sigmoid": "1",
    "poisson_max_delta_step": "0.7",
    "tweedie_variance_power": "1.5",
    "alpha": "0.9",
}


# ----------------------------------------------------------------------------- hooks
def is_fitted(model):
    """Whether a LightGBM model is fitted (a ``Booster`` always is)."""
    lgb = import_optional("lightgbm")
    if not isinstance(model, lgb.LGBMModel):
        return True  # a Booster is trained; to_ensemble refuses any other object
    fitted = getattr(model, "__sklearn_is_fitted__", lambda: False)()
    return bool(fitted) and getattr(model, "_Booster", None) is not None


def refit_template(model):
    """Unfitted copy with one thread; a raw ``Booster`` cannot be refit."""
    lgb = import_optional("lightgbm")
    return wrapper_clone(model, lgb.Booster, "LGBMClassifier / LGBMRegressor")


# --------------------------------------------------------------------------- helpers
def _booster_of(model):
    """Return ``(booster, wrapper_or_None)`` of a fitted model."""
    lgb = import_optional("lightgbm")
    if isinstance(model, lgb.Booster):
        return model, None
    if isinstance(model, lgb.LGBMModel):
        if isinstance(model, lgb.LGBMRanker):
            raise UnsupportedModelError(
                "LGBMRanker (learning to rank) is not supported; supported LightGBM "
                "models: LGBMClassifier, LGBMRegressor, lightgbm.Booster"
            )
        return model.booster_, model
    raise UnsupportedModelError(
        f"LightGBM model of type {type(model).__name__} is not supported; supported: "
        "LGBMClassifier, LGBMRegressor, lightgbm.Booster"
    )


def _saved_params(booster, text):
    """Effective parameters (canonical name -> string) as saved with the model.

    ``text`` is the booster's model text (``Booster.model_to_string``); its
    ``parameters:`` section holds the canonical names. Parameters missing there are read
    from ``booster.params`` under any alias, else LightGBM's default.
    """
    out = {}
    start = text.find("\nparameters:\n")
    if start >= 0:
        stop = text.find("end of parameters", start)
        for key, value in re.findall(
            r"^\[([^:\]]+): ?(.*)\]$", text[start:stop], flags=re.MULTILINE
        ):
            out[key.strip()] = value.strip()
    loaded = getattr(booster, "params", None) or {}
    for name, aliases in _ALIASES.items():
        if name in out:
            continue
        for key in (name, *aliases):
            if key in loaded and loaded[key] is not None:
                value = loaded[key]
                if isinstance(value, bool):
                    value = int(value)
                if isinstance(value, (list, tuple)):
                    value = ",".join(str(v) for v in value)
                out[name] = str(value)
                break
        else:
            out[name] = _DEFAULTS[name]
    return out


def _as_float(params, name):
    """A saved parameter as a float (booleans as 0/1)."""
    value = params.get(name, _DEFAULTS.get(name, "0"))
    try:
        return float(value)
    except ValueError:
        return float(value in ("true", "True"))


def _as_bool(params, name):
    """A saved parameter as a bool."""
    value = str(params.get(name, _DEFAULTS.get(name, "0"))).strip().lower()
    return value in ("1", "true", "1.0")


def _to_lgb_input(X):
    """Give LightGBM an input it accepts: polars is converted to pandas."""
    module = type(X).__module__.split(".")[0]
    if module == "polars":
        try:
            return X.to_pandas()
        except (ImportError, ModuleNotFoundError):  # no pyarrow
            return X.to_numpy()
    if module in ("pandas", "numpy", "scipy"):
        return X
    return np.asarray(X)


def _parse_objective(header, params):
    """Map the model's objective string to (objective, n_outputs, flags) or refuse."""
    text = header.get("objective", params.get("objective", "custom"))
    parts = text.split()
    name = parts[0] if parts else "custom"
    options = dict(p.split(":", 1) for p in parts[1:] if ":" in p)
    flags = {p for p in parts[1:] if ":" not in p}
    K = int(header.get("num_tree_per_iteration", 1))
    if name == "regression":
        return "squared_error", K, flags
    if name == "binary":
        sigmoid = float(options.get("sigmoid", 1))
        if sigmoid != 1.0:
            raise UnsupportedModelError(
                f"LightGBM objective 'binary' with sigmoid={sigmoid:g} is not supported "
                "(only sigmoid=1, the log-loss); refit with sigmoid=1. Supported "
                "objectives: " + "; ".join(SUPPORTED_OBJECTIVES)
            )
        return "binary", K, flags
    if name == "multiclass":
        return "multiclass", K, flags
    if name in _REGRESSION_OBJECTIVES:
        return _REGRESSION_OBJECTIVES[name][0], K, flags
    raise UnsupportedModelError(
        f"LightGBM objective {name!r} is not supported (custom objectives, L1, fair, "
        "quantile, mape, multiclassova, cross_entropy_lambda and ranking objectives are "
        "refused: their leaves are not single Newton steps of the objective). Supported "
        "objectives: " + "; ".join(SUPPORTED_OBJECTIVES)
    )


def _objective_param(header, params):
    """The parameter of a regression objective as saved with the model (0 if none):
    Poisson's hessian offset ``poisson_max_delta_step`` (the hessian is
    ``exp(F + poisson_max_delta_step)``, not a leaf clamp), the Tweedie variance power,
    Huber's ``alpha``."""
    text = header.get("objective", params.get("objective", ""))
    name = text.split()[0] if text.split() else ""
    key = _REGRESSION_OBJECTIVES.get(name, (None, None))[1]
    return 0.0 if key is None else _as_float(params, key)


#: the per-tree lines of the model text read here
_TREE_KEYS = (
    "num_leaves",
    "split_feature",
    "decision_type",
    "threshold",
    "left_child",
    "right_child",
    "leaf_value",
    "leaf_count",
    "internal_value",
    "is_linear",
    "shrinkage",
)
_TREE_LINE = re.compile("\n(" + "|".join(_TREE_KEYS) + ")=([^\n]*)")


def _split_model_text(text):
    """Cut a model text into its header (``key -> value``) and per-tree lines.

    Returns
    -------
    header : dict of str
        The ``key=value`` lines before the first tree.
    fields : dict of list of str
        For each key of :data:`_TREE_KEYS`, the value of its line in every tree, in
        tree order (an empty string for an empty array).
    """
    start = text.find("\nTree=")
    stop = text.find("\nend of trees")
    if stop < 0:
        stop = len(text)
    if start < 0 or start > stop:  # no trees
        start = stop
    header = {}
    for line in text[:start].split("\n"):
        key, sep, value = line.partition("=")
        if sep:
            header[key] = value
    fields = {key: [] for key in _TREE_KEYS}
    for key, value in _TREE_LINE.findall(text, start, stop):
        fields[key].append(value)
    return header, fields


def _numbers(lines, dtype, count, name):
    """The space-separated numbers of several lines as one flat array of ``count``."""
    tokens = " ".join(lines).split()
    if len(tokens) != count:
        raise RuntimeError(
            f"the LightGBM model text lists {len(tokens)} {name} entries, expected {count}"
        )
    return np.array(tokens, dtype=dtype)


def _category_counts(feature_infos, n_features):
    """Number of bins of every feature's categories (0 for a numeric or unused one).

    ``feature_infos`` is the header line: ``[min:max]`` for a numeric feature, ``none``
    for an unused one, the categories joined by ``:`` for a categorical one (the dummy
    NaN category -1 included, so the count is LightGBM's ``num_bin``).
    """
    out = np.zeros(n_features, dtype=np.int64)
    for f, info in enumerate(feature_infos.split()[:n_features]):
        if info != "none" and not info.startswith("["):
            out[f] = info.count(":") + 1
    return out


def _parse_trees(text):
    """Header and flat tree arrays of a model text, vectorised over all trees.

    In the text each tree lists its internal nodes in split order (``split_feature``,
    ``decision_type``, ``left_child``, ``right_child``: ``num_leaves - 1`` entries) and
    its leaves by leaf index (``leaf_value``, ``leaf_count``: ``num_leaves`` entries, the
    index ``Booster.predict(pred_leaf=True)`` returns); a child ``c < 0`` is leaf ``~c``.
    Leaf values are written with 17 significant digits (exact); ``shrinkage`` and
    ``internal_value`` with 6.

    Returns
    -------
    header : dict of str
    trees : dict
        ``n_leaves``, ``shrinkage``, ``is_linear`` (per tree), ``values``, ``counts``
        (per leaf, flat), ``feature``, ``decision_type``, ``threshold``, ``left``,
        ``right`` (per internal node, flat, children local to their tree) and
        ``root_internal`` (per tree: the 6-digit root ``internal_value``, NaN for a
        one-leaf tree).
    """
    header, fields = _split_model_text(text)
    n_leaves = np.array(fields["num_leaves"], dtype=np.int64)
    n_trees = len(n_leaves)
    for key in ("shrinkage", "leaf_value", "leaf_count", "internal_value"):
        if len(fields[key]) != n_trees:
            raise RuntimeError(
                f"the LightGBM model text has {n_trees} trees but {len(fields[key])} {key} lines"
            )
    n_nodes = int(n_leaves.sum()) - n_trees
    trees = {
        "n_leaves": n_leaves,
        "shrinkage": np.array(fields["shrinkage"] or [], dtype=np.float64),
        "is_linear": np.array([v.strip() not in ("", "0") for v in fields["is_linear"]]),
        "values": _numbers(fields["leaf_value"], np.float64, n_nodes + n_trees, "leaf_value"),
        # whole row counts (data_size_t)
        "counts": _numbers(fields["leaf_count"], np.int64, n_nodes + n_trees, "leaf_count").astype(
            np.float64
        ),
        "left": _numbers(fields["left_child"], np.int64, n_nodes, "left_child"),
        "right": _numbers(fields["right_child"], np.int64, n_nodes, "right_child"),
    }
    trees["feature"] = _numbers(fields["split_feature"], np.int64, n_nodes, "split_feature")
    trees["decision_type"] = _numbers(fields["decision_type"], np.int64, n_nodes, "decision_type")
    # written with 17 significant digits: LightGBM's doubles
    trees["threshold"] = _numbers(fields["threshold"], np.float64, n_nodes, "threshold")
    trees["root_internal"] = np.array(
        [line.split(None, 1)[0] if line.strip() else "nan" for line in fields["internal_value"]],
        dtype=np.float64,
    )
    return header, trees


def _leaf_structure(n_leaves, feature, decision_type, left, right, many_vs_many):
    """Leaf ancestor paths and many-vs-many flags from the flat child arrays.

    Parameters
    ----------
    n_leaves : ndarray of shape (n_trees,)
    feature, decision_type, left, right : ndarray of shape (n_nodes,)
        The internal nodes of all trees, tree after tree; children local to their tree
        (``c >= 0`` an internal node, ``c < 0`` leaf ``~c``).
    many_vs_many : ndarray of shape (n_features,), bool
        Whether a categorical split on the feature is many-vs-many.

    Returns
    -------
    cat_child : ndarray of shape (n_leaves_total,), bool
        Whether the leaf is a child of a many-vs-many categorical split.
    path_indptr, path_nodes, node_offsets : ndarray, int64
        The leaves' internal ancestors (flat node indices, root first) in CSR form, as
        :func:`skinfluence._adapters._base.paths_to_csr` builds them.
    """
    n_trees = len(n_leaves)
    leaf_offsets = np.zeros(n_trees + 1, dtype=np.int64)
    np.cumsum(n_leaves, out=leaf_offsets[1:])
    node_offsets = np.zeros(n_trees + 1, dtype=np.int64)
    np.cumsum(n_leaves - 1, out=node_offsets[1:])
    n_nodes, n_total = int(node_offsets[-1]), int(leaf_offsets[-1])
    tree_of_node = np.repeat(np.arange(n_trees), n_leaves - 1)

    # parent of every internal node (-1 at the roots) and of every leaf
    node_parent = np.full(n_nodes, -1, dtype=np.int64)
    leaf_parent = np.full(n_total, -1, dtype=np.int64)
    nodes = np.arange(n_nodes, dtype=np.int64)
    for child in (left, right):
        leaf = child < 0
        node_parent[(child + node_offsets[tree_of_node])[~leaf]] = nodes[~leaf]
        leaf_parent[(~child + leaf_offsets[tree_of_node])[leaf]] = nodes[leaf]
    n_bad = int((leaf_parent < 0).sum()) - int((n_leaves == 1).sum())
    if n_bad or ((node_parent < 0).sum() != (n_leaves > 1).sum()):
        raise RuntimeError(
            "the LightGBM model text has a tree whose children do not form a binary tree"
        )

    # depth of every internal node (root 0), one vectorised step per level
    depth = np.zeros(n_nodes, dtype=np.int64)
    below = np.flatnonzero(node_parent >= 0)
    up = node_parent[below]
    while below.size:
        depth[below] += 1
        up = node_parent[up]
        keep = up >= 0
        below, up = below[keep], up[keep]

    has_parent = leaf_parent >= 0
    lengths = np.zeros(n_total, dtype=np.int64)
    lengths[has_parent] = depth[leaf_parent[has_parent]] + 1
    path_indptr = np.zeros(n_total + 1, dtype=np.int64)
    np.cumsum(lengths, out=path_indptr[1:])
    path_nodes = np.empty(int(path_indptr[-1]), dtype=np.int64)
    leaves = np.flatnonzero(has_parent)
    up = leaf_parent[leaves]
    while leaves.size:  # an ancestor at depth d sits at offset d of the leaf's path
        path_nodes[path_indptr[leaves] + depth[up]] = up
        up = node_parent[up]
        keep = up >= 0
        leaves, up = leaves[keep], up[keep]

    # decision_type bit 0: categorical split
    node_cat = ((decision_type & 1) == 1) & (feature >= 0) & (feature < len(many_vs_many))
    node_cat[node_cat] = many_vs_many[feature[node_cat]]
    cat_child = np.zeros(n_total, dtype=bool)
    cat_child[has_parent] = node_cat[leaf_parent[has_parent]]
    return cat_child, path_indptr, path_nodes, node_offsets


def _given_learning_rate(booster):
    """The learning rate in ``booster.params`` (as given to training), or None."""
    given = getattr(booster, "params", None) or {}
    for key in ("learning_rate", *_ALIASES["learning_rate"]):
        if given.get(key) is not None:
            try:
                return float(given[key])
            except (TypeError, ValueError):
                return None
    return None


def _shrinkage(booster, n_iter, K, text_shrinkage, lr):
    """Per-tree shrinkage, as the booster holds it.

    The model text writes ``shrinkage`` with 6 significant digits, as it writes the
    ``learning_rate`` of its ``parameters:`` section, so a tree shrunk by the learning
    rate shows exactly ``lr`` and 1 marks a first tree holding the initial score or a
    one-leaf tree. The JSON dump writes the booster's in-memory shrinkage with 17
    digits; it tells more than the text only for a booster still holding the trees it
    trained (``keep_training_booster=True``, ``Booster.update``; a trained booster is
    otherwise reloaded from its text) with a rate of more than 6 digits. It is read
    instead of the text in two cases: a learning-rate schedule (values other than 1 and
    ``lr``), and a learning rate in ``booster.params`` that the text shows rounded, when
    the dump of one boosting round shows that the booster holds it unrounded.
    """
    shrinkage = np.asarray(text_shrinkage, dtype=np.float64)
    if np.all((shrinkage == 1.0) | (shrinkage == lr)):
        given = _given_learning_rate(booster)
        shrunk = np.flatnonzero(shrinkage != 1.0)
        if given is None or given == lr or not shrunk.size:
            return shrinkage
        r = int(shrunk[-1]) // K  # the last round: a continued training adds trees
        probe = booster.dump_model(num_iteration=1, start_iteration=r)["tree_info"]
        held = [float(t.get("shrinkage", 1.0)) for t in probe]
        if np.array_equal(held, shrinkage[r * K : (r + 1) * K]):
            return shrinkage
    trees = booster.dump_model(num_iteration=n_iter)["tree_info"]
    return np.array([float(t.get("shrinkage", 1.0)) for t in trees], dtype=np.float64)


def _exact_root_values(booster, K):
    """Root ``internal_value`` of the first ``K`` trees from the JSON dump of round 1.

    The model text writes internal values with 6 significant digits; a booster still
    holding the trees it trained (``keep_training_booster=True``, ``Booster.update``)
    has them exactly and its dump shows them with 17 digits. Only the first round is
    dumped.
    """
    out = np.full(K, np.nan)
    for t, tree in enumerate(booster.dump_model(num_iteration=1)["tree_info"][:K]):
        root = tree["tree_structure"]
        if "internal_value" in root:
            out[t] = float(root["internal_value"])
    return out


def _encode_labels(y, objective, classes, K):
    """Class indices (classifiers) or float32-rounded targets (regression)."""
    y = np.asarray(y).ravel()
    if is_regression(objective):
        return y.astype(np.float32).astype(np.float64)
    if classes is not None:
        idx = np.searchsorted(classes, y) if np.all(np.isin(y, classes)) else None
        if idx is not None and np.array_equal(np.asarray(classes)[idx], y):
            return idx.astype(np.float64)
        if np.issubdtype(y.dtype, np.number) and np.all(np.isin(y, np.arange(len(classes)))):
            return y.astype(np.float64)
        raise ValueError(
            f"y contains labels that are not among the model's classes {list(classes)}"
        )
    if objective == "binary":
        return (y.astype(np.float64) > 0).astype(np.float64)
    return y.astype(np.float64)


def _weighted_sum(w, v):
    """``sum(w * v)`` correctly rounded (``math.fsum`` of the rounded products): the
    same on every machine, unlike a BLAS dot product, whose result depends on its
    number of threads (and whose idle threads keep spinning after it, slowing the
    kernels that follow)."""
    return math.fsum((w * v).tolist())


def _initial_score(objective, y_idx, sample_weight, K):
    """F_0 as LightGBM computes it from the labels and sample weights (float32)."""
    if sample_weight is None:
        w = np.ones(len(y_idx))
    else:
        w = np.asarray(sample_weight, dtype=np.float32).astype(np.float64)
    sw = w.sum()
    if objective in ("squared_error", "huber"):
        return np.array([_weighted_sum(w, y_idx) / sw])
    if objective in ("poisson", "gamma", "tweedie"):
        mean = _weighted_sum(w, y_idx) / sw
        return np.array([math.log(mean) if mean > 0 else -np.inf])
    if objective == "cross_entropy":
        p = _weighted_sum(w, y_idx) / sw
        p = min(max(p, _K_EPSILON), 1.0 - _K_EPSILON)
        return np.array([math.log(p / (1.0 - p))])
    if objective == "binary":
        p = _weighted_sum(w, y_idx > 0) / sw
        p = min(max(p, _K_EPSILON), 1.0 - _K_EPSILON)
        return np.array([math.log(p / (1.0 - p))])
    counts = np.bincount(y_idx.astype(np.intp), weights=w, minlength=K)[:K] / sw
    return np.log(np.maximum(counts, _K_EPSILON))


# --------------------------------------------------------------------------- adapter
_LINEAR_MESSAGE = (
    "LightGBM linear_tree=True is not supported: its leaves are linear models, "
    "not constants. Refit with linear_tree=False."
)


class _Structure(NamedTuple):
    """Leaf layout, L2 per leaf and ancestor paths of all trees."""

    leaf_offsets: np.ndarray
    l2: np.ndarray
    n_cat_leaves: int
    path_indptr: np.ndarray
    path_nodes: np.ndarray
    node_offsets: np.ndarray


class _Rates(NamedTuple):
    """Learning rates: the saved one, per-tree shrinkage and whether it varies."""

    lr: float
    shrinkage: np.ndarray
    schedule: bool
    later: np.ndarray
    learning_rates: np.ndarray


class _Bias(NamedTuple):
    """The initial score per column and how it was read."""

    values: np.ndarray
    folded: np.ndarray
    sources: list
    cross_checks: list
    breaking: list


class _RootValues:
    """Root ``internal_value`` of the first trees: the text's 6 digits, and the exact
    values of the JSON dump, read once when first asked for."""

    def __init__(self, booster, K, text_values):
        self._booster = booster
        self._K = K
        self.text = text_values

    @functools.cached_property
    def exact(self):
        return _exact_root_values(self._booster, self._K)


def _refuse_boosting(params):
    """Refuse the random-forest mode and linear trees from the saved parameters."""
    if params.get("boosting", "gbdt") in ("rf", "random_forest"):
        raise UnsupportedModelError(
            "LightGBM boosting='rf' (random forest mode) is not supported: its trees are "
            "averaged and grown on bagged rows. Use boosting='gbdt', or a scikit-learn "
            "RandomForest for forest-based influence."
        )
    if _as_bool(params, "linear_tree"):
        raise UnsupportedModelError(_LINEAR_MESSAGE)


def _check_trees(trees, n_iter, K):
    """Refuse linear leaves; check that the text holds ``n_iter`` rounds of K trees."""
    if trees["is_linear"].any():
        raise UnsupportedModelError(_LINEAR_MESSAGE)
    n_trees = len(trees["n_leaves"])
    if n_trees != n_iter * K:
        raise RuntimeError(f"the LightGBM model text has {n_trees} trees, expected {n_iter} x {K}")


def _structure(header, trees, params):
    """Leaf offsets, per-leaf L2 (``cat_l2`` added below categorical splits), paths."""
    # LightGBM: one-vs-rest iff num_bin <= max_cat_to_onehot (num_bin counts the dummy
    # NaN category -1, which feature_infos lists)
    max_onehot = _as_float(params, "max_cat_to_onehot")
    n_features = int(header.get("max_feature_idx", -1)) + 1
    many_vs_many = _category_counts(header.get("feature_infos", ""), n_features) > max_onehot
    n_leaves = trees["n_leaves"]
    cat, path_indptr, path_nodes, node_offsets = _leaf_structure(
        n_leaves,
        trees["feature"],
        trees["decision_type"],
        trees["left"],
        trees["right"],
        many_vs_many,
    )
    leaf_offsets = np.zeros(len(n_leaves) + 1, dtype=np.int64)
    leaf_offsets[1:] = np.cumsum(n_leaves)
    l2 = np.full(int(leaf_offsets[-1]), _as_float(params, "lambda_l2"))
    l2[cat] += _as_float(params, "cat_l2")
    return _Structure(leaf_offsets, l2, int(cat.sum()), path_indptr, path_nodes, node_offsets)


def _learning_rates(booster, n_iter, K, trees, params):
    """Per-tree learning rates as far as the model stores them (first round: see
    :func:`_first_round_rate`)."""
    constant = trees["n_leaves"] == 1
    lr = _as_float(params, "learning_rate")
    shrinkage = _shrinkage(booster, n_iter, K, trees["shrinkage"], lr)
    later = shrinkage[K:][~constant[K:]]
    schedule = later.size > 0 and not np.allclose(later, lr, rtol=1e-9, atol=0)
    learning_rates = shrinkage.copy()
    # one-leaf trees after the first round keep shrinkage 1 (no step is taken)
    learning_rates[K:][constant[K:]] = lr
    return _Rates(lr, shrinkage, schedule, later, learning_rates)


def _holds_initial_score(k, rates, bfa, F0_data):
    """Whether the first tree of column ``k`` (not a one-leaf tree) holds F_0."""
    if rates.lr != 1.0 or rates.schedule:
        return bool(rates.shrinkage[k] == 1.0 and rates.lr != 1.0)
    return bool(bfa and (F0_data is None or abs(F0_data[k]) > _K_EPSILON))


def _cross_check(k, F0, roots, class_weighted):
    """Compare F_0 recomputed from y with the first tree's root value.

    Returns ``(note, breaking_message)``, each None when the values agree.
    """
    tol = 1e-5 * max(1.0, abs(F0))
    # the text's 6 digits (relative error <= 5e-6) settle a clear pass; anything
    # else is decided on the exact value, as the JSON dump gives it
    if not (abs(F0 - roots.text[k]) <= 0.25 * tol):
        root = roots.exact[k]
    else:
        root = roots.text[k]
    if abs(F0 - root) <= tol:
        return None, None
    note = f"column {k}: F_0 from y {F0:.8g}, root internal_value {root:.8g}"
    if class_weighted:
        return note, None
    return note, (
        f"initial score of column {k}: recomputed from the y and "
        f"sample_weight given ({F0:.7g}) but the model's first "
        f"tree shows {root:.7g}: pass the exact training "
        "labels and sample weights (class weights as per-row weights)"
    )


def _read_bias(booster, trees, leaf_offsets, params, objective, K, rates, F0_data):
    """F_0 per column: folded into the first tree, recomputed from ``y`` when given."""
    constant = trees["n_leaves"] == 1
    bfa = _as_bool(params, "boost_from_average")
    class_weighted = objective == "binary" and (
        _as_bool(params, "is_unbalance") or _as_float(params, "scale_pos_weight") != 1.0
    )
    roots = _RootValues(booster, K, trees["root_internal"])
    out = _Bias(np.zeros(K), np.zeros(K, dtype=bool), [], [], [])
    for k in range(min(K, len(constant))):
        if constant[k]:
            # a first tree that cannot split stores the initial score itself
            out.values[k] = trees["values"][leaf_offsets[k]]
            out.folded[k] = True
            out.sources.append("one-leaf first tree (exact)")
            continue
        out.folded[k] = _holds_initial_score(k, rates, bfa, F0_data)
        if not out.folded[k]:
            out.sources.append("no initial score (first tree keeps its shrinkage)")
            if bfa and F0_data is not None and abs(F0_data[k]) > 1e-10:
                out.breaking.append(
                    "boost_from_average=True but no initial score was folded into the "
                    f"first tree of column {k}: the model was probably trained with an "
                    "init_score, which the model does not store; refit without "
                    "init_score"
                )
        elif F0_data is not None:
            out.values[k] = F0_data[k]
            out.sources.append("recomputed from y and sample_weight")
            note, message = _cross_check(k, F0_data[k], roots, class_weighted)
            out.cross_checks.extend([note] if note else [])
            out.breaking.extend([message] if message else [])
        else:
            out.values[k] = roots.exact[k]
            out.sources.append(
                "root internal_value of the first tree (6 significant digits; pass y "
                "to recompute it exactly)"
            )
    return out


def _first_round_rate(booster, n_iter, data, objective, K, need, ctx):
    """The first round's learning rate, and a breaking message when it is unknown.

    A first tree holding F_0 shows shrinkage 1, so under a learning-rate schedule the
    rate of the first round (columns ``need``) is not stored. ``data`` is
    ``(X, y_idx, sample_weight)``; ``ctx`` is ``(rates, bias, values, structure)``
    after the bias was subtracted from ``values``. Returns ``(rate, recovered,
    message)``: ``recovered`` tells whether the schedule made a recovery necessary.
    """
    X, y_idx, sample_weight, param = data
    rates, bias, values, structure = ctx
    if not (need and rates.schedule):
        return rates.lr, False, None
    rate = _recover_first_rate(
        booster,
        n_iter,
        X,
        y_idx,
        sample_weight,
        (objective, param),
        K,
        bias.values,
        values,
        structure.leaf_offsets,
        structure.l2,
        need,
    )
    if rate is not None:
        return rate, True, None
    return (
        float(rates.later[0]),
        True,
        "learning-rate schedule (e.g. reset_parameter): the first round's "
        "learning rate is not stored in the model and could not be recovered; "
        "pass the training X and y, or use a constant learning_rate",
    )


def _unfold_first_round(booster, n_iter, data, objective, K, ctx):
    """Subtract F_0 from the first trees holding it and set their learning rate.

    ``ctx`` is ``(trees, structure, rates, bias)``; ``trees["values"]`` and
    ``rates.learning_rates`` are changed in place. Returns ``(first_lr, message)``:
    the recovered first-round rate (None when no schedule needed it) and a breaking
    message when it could not be recovered.
    """
    trees, structure, rates, bias = ctx
    values, offsets = trees["values"], structure.leaf_offsets
    folded = np.flatnonzero(bias.folded)
    for k in folded:
        values[offsets[k] : offsets[k + 1]] -= bias.values[k]
    constant = trees["n_leaves"] == 1
    need = [k for k in folded if not constant[k]]
    first_lr, recovered, message = _first_round_rate(
        booster, n_iter, data, objective, K, need, (rates, bias, values, structure)
    )
    rates.learning_rates[folded] = first_lr
    return (first_lr if recovered else None), message


def _read_model(model):
    """Booster, wrapper, rounds used, best iteration, model text and saved parameters."""
    booster, wrapper = _booster_of(model)
    best = int(getattr(booster, "best_iteration", 0) or 0)
    n_iter = best if best > 0 else int(booster.current_iteration())
    text = booster.model_to_string(num_iteration=n_iter)
    return booster, wrapper, n_iter, best, text, _saved_params(booster, text)


def to_ensemble(model, X=None, y=None, sample_weight=None):
    """Build the :class:`~skinfluence._ensemble.TreeEnsemble` of a LightGBM model.

    Parameters
    ----------
    model : LGBMClassifier, LGBMRegressor or lightgbm.Booster
        A fitted model (not modified).
    X : array-like of shape (n_samples, n_features), optional
        The training inputs (numpy, pandas or polars). Used only to recover a
        first-round learning rate that the model does not store (learning-rate
        schedules).
    y : array-like of shape (n_samples,), optional
        The training labels. LightGBM does not store its initial score F_0 exactly;
        with ``y`` it is recomputed as LightGBM computes it, without ``y`` it is read
        from the first trees' root ``internal_value`` (6 significant digits, recorded in
        ``notes``).
    sample_weight : array-like of shape (n_samples,), optional
        The training sample weights (they enter F_0).

    Returns
    -------
    ensemble : TreeEnsemble

    Raises
    ------
    UnsupportedModelError
        For an unsupported objective or boosting mode (``rf``, ``linear_tree``).
    """
    lgb = import_optional("lightgbm")
    booster, wrapper, n_iter, best, text, params = _read_model(model)
    _refuse_boosting(params)
    header, trees = _parse_trees(text)
    objective, K, obj_flags = _parse_objective(header, params)
    obj_param = _objective_param(header, params)
    _check_trees(trees, n_iter, K)
    structure = _structure(header, trees, params)
    rates = _learning_rates(booster, n_iter, K, trees, params)
    classes = None
    if wrapper is not None and hasattr(wrapper, "classes_"):
        classes = np.asarray(wrapper.classes_)
        if objective == "cross_entropy":  # class labels 0/1: the binary log-loss
            objective = "binary"
    y_idx = None if y is None else _encode_labels(y, objective, classes, K)
    F0_data = None if y is None else _initial_score(objective, y_idx, sample_weight, K)
    bias = _read_bias(booster, trees, structure.leaf_offsets, params, objective, K, rates, F0_data)
    first_lr, first_message = _unfold_first_round(
        booster,
        n_iter,
        (X, y_idx, sample_weight, obj_param),
        objective,
        K,
        (trees, structure, rates, bias),
    )
    values, learning_rates = trees["values"], rates.learning_rates
    constant = trees["n_leaves"] == 1
    notes = _notes(n_iter, best, bias, first_lr, structure.n_cat_leaves)
    breaking = (
        _breaking_settings(
            params,
            objective,
            obj_flags,
            wrapper,
            sample_weight,
            values,
            learning_rates,
            trees["n_leaves"],
            constant,
        )
        + bias.breaking
        + ([first_message] if first_message else [])
    )
    # leaves are numbered as pred_leaf numbers them: no remapping
    n_features = int(booster.num_feature())
    calls = _BoosterCalls(booster, n_iter, None, numeric_trees(trees, n_features))
    return TreeEnsemble(
        library="lightgbm",
        library_version=str(lgb.__version__),
        model_name=type(model).__name__,
        objective=objective,
        tree_type="gbdt",
        n_outputs=K,
        leaf_offsets=structure.leaf_offsets,
        leaf_values=values,
        learning_rates=learning_rates,
        bias=bias.values,
        l2=structure.l2,
        router=calls.leaf_ids,
        library_router=None if calls.numeric is None else calls.library_leaf_ids,
        raw_predictor=calls.raw,
        l1=_as_float(params, "lambda_l1"),
        max_delta_step=_as_float(params, "max_delta_step"),
        multiclass_factor=K / (K - 1.0) if objective == "multiclass" else 1.0,
        objective_param=obj_param,
        constant_tree=constant,
        classes=classes,
        n_features_in=(int(wrapper.n_features_in_) if wrapper is not None else n_features),
        leaf_stats=trees["counts"],
        leaf_stats_kind="count",
        leaf_stats_caveat="; ".join(_row_sampling(params)) or None,
        breaking_settings=tuple(breaking),
        path_indptr=structure.path_indptr,
        path_nodes=structure.path_nodes,
        node_offsets=structure.node_offsets,
        staged_raw_predictor=calls.staged_raw,
        reconstruction_tol=(1e-6, 1e-6),
        notes=notes,
    )


def _notes(n_iter, best, bias, first_lr, n_cat_leaves):
    """The ensemble's notes: rounds, where F_0 came from, recovered rates."""
    notes = {"num_iteration": n_iter, "best_iteration": best}
    if bias.cross_checks:
        notes["bias_cross_check"] = bias.cross_checks
    notes["bias_source"] = bias.sources
    if first_lr is not None:
        notes["first_round_learning_rate"] = first_lr
    if n_cat_leaves:
        notes["cat_l2_leaves"] = n_cat_leaves
    return notes


def _recover_first_rate(
    booster, n_iter, X, y_idx, sample_weight, objective, K, bias, values, leaf_offsets, l2, columns
):
    """First-round learning rate as the common ratio stored / Newton step (:doc:`models`).

    ``objective`` is ``(name, parameter)``."""
    objective, param = objective
    if X is None or y_idx is None:
        return None
    leaves = booster.predict(_to_lgb_input(X), pred_leaf=True, num_iteration=1)
    leaves = np.asarray(leaves).reshape(len(leaves), -1)
    F = np.tile(bias, (len(leaves), 1))
    w = (
        np.ones(len(leaves))
        if sample_weight is None
        else np.asarray(sample_weight, dtype=np.float64)
    )
    if objective == "squared_error":
        g = F - y_idx[:, None]
        h = np.ones_like(F)
    elif is_regression(objective):
        g = gradient(objective, y_idx, F, param)
        h = regression_hessian(objective, y_idx, F, param)
    elif objective == "binary":
        p = 1.0 / (1.0 + np.exp(-F))
        g, h = p - y_idx[:, None], p * (1 - p)
    else:
        p = np.exp(F - F.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g = p - (y_idx[:, None] == np.arange(K))
        h = K / (K - 1.0) * p * (1 - p)
    ratios = []
    for k in columns:
        o, e = leaf_offsets[k], leaf_offsets[k + 1]
        lv = leaves[:, k].astype(np.intp)
        G = np.bincount(lv, weights=w * g[:, k], minlength=e - o)
        H = np.bincount(lv, weights=w * h[:, k], minlength=e - o)
        step = -G / (H + l2[o:e])
        ok = np.abs(step) > 1e-12
        ratios.extend(values[o:e][ok] / step[ok])
    ratios = np.asarray(ratios)
    if ratios.size == 0:
        return None
    mid = float(np.median(ratios))
    if mid <= 0 or np.ptp(ratios) > 1e-4 * mid:
        return None
    return mid


def _breaking_settings(
    params, objective, obj_flags, wrapper, sample_weight, values, learning_rates, n_leaves, constant
):
    """Human-readable list of the detected settings that break the leaf model."""
    return (
        _sampling_breaks(params)
        + _leaf_value_breaks(params, values, learning_rates, n_leaves, constant)
        + _weighting_breaks(params, objective, obj_flags, wrapper, sample_weight)
    )


def _sampling_breaks(params):
    """Boosting modes and row sampling: leaves not fitted on all rows as one step."""
    out = []
    if params.get("boosting", "gbdt") == "dart":
        out.append("boosting=dart (trees dropped and rescaled): refit with boosting='gbdt'")
    return out + _row_sampling(params)


def _row_sampling(params):
    """Row sampling settings: each tree counted only the rows it was grown on."""
    out = []
    boosting = params.get("boosting", "gbdt")
    if boosting == "goss" or params.get("data_sample_strategy") == "goss":
        out.append(
            "data_sample_strategy=goss (gradient-based one-side sampling "
            "reweights rows): refit with boosting='gbdt' and "
            "data_sample_strategy='bagging'"
        )
    freq = _as_float(params, "bagging_freq")
    if freq > 0:
        for name in ("bagging_fraction", "pos_bagging_fraction", "neg_bagging_fraction"):
            frac = _as_float(params, name)
            if frac < 1.0:
                out.append(
                    f"{name}={frac:g} with bagging_freq={freq:g} (row "
                    f"subsampling): refit with {name}=1.0 or bagging_freq=0"
                )
    return out


def _leaf_value_breaks(params, values, learning_rates, n_leaves, constant):
    """Settings that move leaf values away from the Newton step."""
    out = []
    l1 = _as_float(params, "lambda_l1")
    if l1 > 0:
        out.append(
            f"lambda_l1={l1:g} (L1 soft-thresholding of the leaf values): refit "
            "with lambda_l1=0 (reg_alpha=0)"
        )
    ps = _as_float(params, "path_smooth")
    if ps > 0:
        out.append(
            f"path_smooth={ps:g} (leaf values smoothed towards their parents): "
            "refit with path_smooth=0"
        )
    mc = params.get("monotone_constraints", "") or ""
    if any(float(v) != 0 for v in re.split(r"[,\s]+", mc.strip()) if v):
        out.append(
            f"monotone_constraints=[{mc}] (leaf values clamped to keep "
            "monotonicity): refit without monotone constraints"
        )
    if _as_bool(params, "use_quantized_grad"):
        out.append(
            "use_quantized_grad=True (quantized gradients): refit with use_quantized_grad=False"
        )
    return out


def _weighting_breaks(params, objective, obj_flags, wrapper, sample_weight):
    """Class weights and target transforms the leaf model does not see."""
    out = []
    if objective == "binary":
        if _as_bool(params, "is_unbalance"):
            out.append(
                "is_unbalance=True (class weights inside the objective, not "
                "given as sample weights): refit with is_unbalance=False and pass "
                "the class weights as sample_weight to the model and to fit"
            )
        spw = _as_float(params, "scale_pos_weight")
        if spw != 1.0:
            out.append(
                f"scale_pos_weight={spw:g} (class weight inside the objective): "
                "refit with scale_pos_weight=1 and pass the weights as "
                "sample_weight to the model and to fit"
            )
    if "sqrt" in obj_flags:
        out.append("reg_sqrt=True (the model is fitted to sqrt(y)): refit with reg_sqrt=False")
    cw = getattr(wrapper, "class_weight", None) if wrapper is not None else None
    if cw is not None and sample_weight is None:
        out.append(
            f"class_weight={cw!r} (per-row weights not given): pass "
            "sklearn.utils.class_weight.compute_sample_weight(class_weight, y) "
            "as sample_weight"
        )
    return out


class _BoosterCalls:
    """Picklable routing and prediction callables over one booster (the ensemble, and so
    every fitted influence estimator, must pickle).

    ``numeric``: the :class:`~._lightgbm_routing.NumericTrees` of the model when every
    split is numeric (then :meth:`leaf_ids` routes dense numeric inputs itself, with
    LightGBM's decision rule, and :meth:`library_leaf_ids` is LightGBM's own routing,
    which the fit-time check compares it with), else None.
    """

    def __init__(self, booster, n_iter, maps, numeric=None):
        self.booster = booster
        self.n_iter = n_iter
        self.maps = maps
        self.numeric = numeric

    def leaf_ids(self, X):
        if self.numeric is not None and self.maps is None:
            dense = dense_numeric(X, self.numeric.n_features)
            if dense is not None:
                return lgb_apply(dense, self.numeric)
        return self.library_leaf_ids(X)

    def library_leaf_ids(self, X):
        raw = self.booster.predict(_to_lgb_input(X), pred_leaf=True, num_iteration=self.n_iter)
        raw = np.asarray(raw).reshape(len(raw), -1)
        if self.maps is None:
            return raw.astype(np.int32, copy=False)
        return remap_leaves(raw, self.maps)

    def raw(self, X):
        return self.staged_raw(X, self.n_iter)

    def staged_raw(self, X, n_rounds):
        out = self.booster.predict(_to_lgb_input(X), raw_score=True, num_iteration=int(n_rounds))
        out = np.asarray(out, dtype=np.float64)
        return out.reshape(out.shape[0], -1)
