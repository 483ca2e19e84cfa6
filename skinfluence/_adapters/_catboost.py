"""CatBoost adapter: ``CatBoostClassifier`` / ``CatBoostRegressor`` / ``CatBoost`` ->
:class:`~skinfluence._ensemble.TreeEnsemble`.

Facts used (:doc:`models`, 'CatBoost'; checked numerically with CatBoost 1.2.10):

* routing by ``calc_leaf_indexes``; leaf values by ``get_leaf_values`` (shrinkage
  included; MultiClass leaves interleave the K class values, ``(l, k)`` at ``l*K + k``,
  so one CatBoost tree becomes K trees sharing the routing);
* raw score ``s * sum(leaves) + F_0`` with ``(s, F_0) = get_scale_and_bias()``;
* learning rate ``get_all_params()['learning_rate']`` (the effective value);
* L2 ``l2_leaf_reg`` scaled by the mean sample weight;
* per-leaf sums of sample weights by ``get_leaf_weights`` (count check);
* tree structure (leaf ancestor paths, categorical CTR splits) from the JSON model.
"""

import functools
import itertools
import json
import os
import tempfile

import numpy as np

from ._base import UnsupportedModelError, import_optional, paths_to_csr

__all__ = ["to_ensemble", "is_fitted", "refit_template", "takes_raw_input", "SUPPORTED_LOSSES"]

#: CatBoost loss -> skinfluence objective
SUPPORTED_LOSSES = {
    "RMSE": "squared_error",
    "Logloss": "binary",
    "CrossEntropy": "binary",
    "MultiClass": "multiclass",
    "Poisson": "poisson",
    "Tweedie": "tweedie",
}


#: smallest l2_leaf_reg of a MultiClass model explained as K x K Newton steps
_MIN_MULTICLASS_L2 = 1e-6


def _multiclass_full_hessian(loss, params):
    """Whether a ``MultiClass`` model's leaves are single K x K Newton steps.

    Needs one leaf iteration, the ``Newton`` method and ``l2_leaf_reg >= 1e-6``: the
    summed softmax hessian is singular along the all-ones vector, and CatBoost stores
    ``l2_leaf_reg=0`` as 1e-20. Checked with CatBoost 1.2.10 (iris, wine, synthetic 3
    and 4 classes, with and without sample weights): the stored leaves are ``-eta
    (sum_j w_j (diag(p_j) - p_j p_j^T) + lambda I)^{-1} G`` to 1e-15 (1e-8 with float32
    sample weights), lambda the scaled ``l2_leaf_reg``; at ``l2_leaf_reg=1e-6`` to
    1e-9, at 1e-10 only to 4e-7.
    """
    return (
        loss == "MultiClass"
        and int(params.get("leaf_estimation_iterations", 1) or 1) == 1
        and params.get("leaf_estimation_method", "Newton") == "Newton"
        and float(params.get("l2_leaf_reg", 3.0)) >= _MIN_MULTICLASS_L2
    )


def _multiclass_break(params):
    """Why a ``MultiClass`` model is not one K x K Newton step per leaf."""
    return (
        "loss_function='MultiClass' with "
        f"leaf_estimation_iterations={params.get('leaf_estimation_iterations')}, "
        f"leaf_estimation_method={params.get('leaf_estimation_method')!r}, "
        f"l2_leaf_reg={params.get('l2_leaf_reg')} (gradient-based methods explain "
        "CatBoost's K x K Newton leaf, -eta * (sum_j w_j (diag(p_j) - p_j p_j^T) + "
        "lambda I)^-1 G, only with one leaf iteration, the Newton method and "
        f"l2_leaf_reg >= {_MIN_MULTICLASS_L2:g}: the softmax hessian is singular): "
        "train with leaf_estimation_iterations=1, leaf_estimation_method='Newton' and "
        f"l2_leaf_reg >= {_MIN_MULTICLASS_L2:g}, or use TREX, the "
        "similarity methods or the retraining methods"
    )


# ----------------------------------------------------------------------------- hooks
def is_fitted(model):
    """Whether a CatBoost model is fitted."""
    cb = import_optional("catboost")
    if isinstance(model, cb.CatBoost):
        return bool(model.is_fitted())
    return True  # to_ensemble refuses any other object


def takes_raw_input(model):
    """Whether the model has categorical features (given as strings or integers)."""
    if model.is_fitted():  # also a model loaded from a file, whose params are not set
        return bool(model.get_cat_feature_indices())
    return bool(model.get_param("cat_features"))


def refit_template(model):
    """Unfitted copy with ``thread_count=1`` (CatBoost lists only the parameters set)."""
    from sklearn.base import clone

    template = clone(model)
    template.set_params(thread_count=1)
    return template


def to_ensemble(model, X=None, y=None, sample_weight=None):
    """Build the :class:`~skinfluence._ensemble.TreeEnsemble` of a fitted CatBoost model.

    Parameters
    ----------
    model : catboost.CatBoostClassifier, catboost.CatBoostRegressor or catboost.CatBoost
        A fitted model with loss ``RMSE``, ``Logloss``, ``CrossEntropy`` or
        ``MultiClass``.
    X : array-like of shape (n_samples, n_features), optional
        The training data (unused; accepted for the common adapter signature).
    y : array-like of shape (n_samples,), optional
        The training labels (unused).
    sample_weight : array-like of shape (n_samples,), optional
        The training sample weights: CatBoost scales ``l2_leaf_reg`` by their mean.

    Returns
    -------
    ensemble : TreeEnsemble

    Raises
    ------
    UnsupportedModelError
        If the model is not a CatBoost model or its loss is not supported.

    Notes
    -----
    Settings that break the single-Newton-step leaf model are listed in
    ``breaking_settings`` (several leaf-estimation iterations, gradient leaf steps for
    Logloss, ``model_shrink_rate``, Langevin boosting, class weights, CTR-encoded
    categorical features, scale != 1, MultiClass with several leaf iterations, gradient
    steps or no L2). ``MultiClass`` leaves are full K x K Newton steps
    (``full_hessian``). The model and ``X`` are never
    modified; the JSON model is written to a temporary directory and read back.
    """
    cb = import_optional("catboost")
    if not isinstance(model, cb.CatBoost):
        raise UnsupportedModelError(
            f"{type(model).__name__} is not a CatBoost model; the CatBoost adapter "
            "accepts CatBoostClassifier, CatBoostRegressor and CatBoost"
        )
    params = model.get_all_params()
    loss, objective = _loss_of(model, params, y)
    counts, raw_values, K = _leaf_layout(model, objective, loss)
    scale, bias = _scale_and_bias(model, K)
    leaf_offsets, leaf_values = _per_column_leaves(counts, raw_values, K, scale)
    l2_leaf_reg, weight_scale = float(params.get("l2_leaf_reg", 3.0)), _mean_weight(sample_weight)
    structure, info = _depth_structure(model, counts, K), None
    if structure is None:  # read from the JSON model
        info = _model_json(model)
        structure = _structure(info, counts, raw_values, K, model) if info is not None else None
    router, raw_predictor, staged = _predictors(model, K, params)
    path_indptr, path_nodes, node_offsets = _paths(structure, K)
    leaf_stats = _leaf_stats(model, structure, K, leaf_offsets)
    from .._ensemble import TreeEnsemble

    return TreeEnsemble(
        library="catboost",
        library_version=str(getattr(cb, "__version__", "unknown")),
        model_name=type(model).__name__,
        objective=objective,
        tree_type="gbdt",
        n_outputs=K,
        leaf_offsets=leaf_offsets,
        leaf_values=leaf_values,
        learning_rates=np.full(len(leaf_offsets) - 1, float(params["learning_rate"])),
        **_leaf_rule_of(params, loss),
        bias=bias,
        l2=l2_leaf_reg * weight_scale,
        router=router,
        raw_predictor=raw_predictor,
        multiclass_factor=1.0,
        full_hessian=_multiclass_full_hessian(loss, params),
        objective_param=_loss_param(params),
        classes=_classes(model, objective, K),
        n_features_in=_n_features_in(model),
        leaf_stats=leaf_stats,
        leaf_stats_kind="weight" if leaf_stats is not None else None,
        leaf_stats_caveat=_routing_caveat(model, info),
        breaking_settings=tuple(_breaking_settings(model, params, loss, scale, info)),
        path_indptr=path_indptr,
        path_nodes=path_nodes,
        node_offsets=node_offsets,
        staged_raw_predictor=staged,
        label_dtype=np.float32,
        notes=_notes(scale, l2_leaf_reg, weight_scale, structure, K),
    )


def _loss_of(model, params, y=None):
    """The CatBoost loss name and its skinfluence objective, or refuse the loss.

    ``CrossEntropy`` trained on probabilities (labels ``y`` other than 0 and 1) is the
    cross-entropy regression objective; on class labels, the binary log-loss."""
    loss_spec = str(params.get("loss_function", ""))
    loss = loss_spec.split(":")[0]
    if loss not in SUPPORTED_LOSSES:
        raise UnsupportedModelError(
            f"{type(model).__name__} was trained with loss_function={loss_spec!r}, which "
            "skinfluence does not support; supported CatBoost losses: "
            f"{', '.join(SUPPORTED_LOSSES)}"
        )
    if loss == "CrossEntropy" and y is not None:
        labels = np.asarray(y)
        if np.issubdtype(labels.dtype, np.number) and not np.all(np.isin(labels, (0, 1))):
            return loss, "cross_entropy"
    return loss, SUPPORTED_LOSSES[loss]


def _leaf_layout(model, objective, loss):
    """Leaves per CatBoost tree, all leaf values, and the values per leaf K."""
    name = type(model).__name__
    counts = np.asarray(model.get_tree_leaf_counts(), dtype=np.int64).reshape(-1)
    raw_values = np.asarray(model.get_leaf_values(), dtype=np.float64).reshape(-1)
    total = int(counts.sum())
    if total == 0 or raw_values.size % total:
        raise UnsupportedModelError(
            f"{name}: {raw_values.size} leaf values for {total} leaves; cannot split them "
            "into per-class trees"
        )
    K = raw_values.size // total
    if (objective == "multiclass") != (K > 1):
        raise UnsupportedModelError(
            f"{name}: loss {loss} but {K} value(s) per leaf; this model layout is not supported"
        )
    return counts, raw_values, K


def _scale_and_bias(model, K):
    """``get_scale_and_bias()`` with the bias as one value per column."""
    scale, bias = model.get_scale_and_bias()
    bias = np.atleast_1d(np.asarray(bias, dtype=np.float64)).reshape(-1)
    if bias.size == 1 and K > 1:
        bias = np.full(K, bias[0])
    if bias.size != K:
        raise UnsupportedModelError(
            f"{type(model).__name__}: bias of size {bias.size} for {K} column(s)"
        )
    return float(scale), bias


def _per_column_leaves(counts, raw_values, K, scale):
    """K trees per CatBoost tree, round-major, class-inner; leaf values times the scale.

    Returns ``(leaf_offsets, leaf_values)``.
    """
    n_rounds = len(counts)
    leaf_offsets = np.zeros(n_rounds * K + 1, dtype=np.int64)
    leaf_offsets[1:] = np.cumsum(np.repeat(counts, K))
    if not n_rounds:
        return leaf_offsets, np.zeros(0)
    if K == 1:  # one value per leaf: already in tree order
        return leaf_offsets, raw_values * scale
    starts = np.concatenate([[0], np.cumsum(counts * K)])
    per_class = [
        raw_values[starts[b] : starts[b + 1]].reshape(counts[b], K).T.ravel()
        for b in range(n_rounds)
    ]
    return leaf_offsets, np.concatenate(per_class) * scale


def _mean_weight(sample_weight):
    """The mean sample weight, by which CatBoost scales ``l2_leaf_reg`` (1 without)."""
    if sample_weight is None:
        return 1.0
    sw = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    return float(sw.mean()) if sw.size else 1.0


def _leaf_stats(model, structure, K, leaf_offsets):
    """Sum of the sample weights per leaf (None when unavailable)."""
    leaf_stats = None
    if structure is not None and structure.get("from_depths"):  # get_leaf_weights() read
        leaf_stats = structure["all_weights"]
    elif K == 1:
        try:
            leaf_stats = np.asarray(model.get_leaf_weights(), dtype=np.float64)
        except Exception:  # pragma: no cover - depends on the CatBoost version
            leaf_stats = None
    if leaf_stats is None and structure is not None:
        tiled = [np.tile(w, K) for w in structure["weights"]]
        leaf_stats = np.concatenate(tiled) if len(leaf_offsets) > 1 else np.zeros(0)
    if leaf_stats is not None and leaf_stats.shape != (leaf_offsets[-1],):
        leaf_stats = None
    return leaf_stats


def _loss_param(params):
    """The Tweedie ``variance_power`` of the loss specification (0 for other losses;
    CatBoost's Poisson hessian is ``exp(F)``, no offset)."""
    spec = str(params.get("loss_function", ""))
    for option in spec.split(":")[1:]:
        key, _, value = option.partition("=")
        if key == "variance_power":
            return float(value)
    return 0.0


def _classes(model, objective, K):
    """The model's classes (class indices when it lists none); None for regression."""
    if objective not in ("binary", "multiclass"):
        return None
    classes = getattr(model, "classes_", None)
    classes = None if classes is None or len(classes) == 0 else np.asarray(classes)
    return np.arange(max(K, 2)) if classes is None else classes


def _n_features_in(model):
    try:
        return int(model.n_features_in_)
    except Exception:  # pragma: no cover - plain CatBoost objects may lack it
        return None


def _paths(structure, K):
    """CSR leaf ancestor paths, each CatBoost tree repeated for its K columns."""
    if structure is None:
        return None, None, None
    if structure.get("from_depths"):  # K == 1
        return _depth_paths_csr(structure["depths"])
    per_tree_paths, per_tree_internal = [], []
    for paths, n_int in zip(structure["paths"], structure["n_internal"]):
        per_tree_paths.extend([paths] * K)
        per_tree_internal.extend([n_int] * K)
    return paths_to_csr(per_tree_paths, per_tree_internal)


@functools.cache
def _oblivious_flat_paths(depth):
    """``_oblivious_paths(depth)`` flattened (leaf after leaf), int64 (read only)."""
    paths, _ = _oblivious_paths(depth)
    flat = np.asarray(paths, dtype=np.int64).reshape(-1)
    flat.flags.writeable = False
    return flat


def _depth_paths_csr(depths):
    """The CSR leaf paths of oblivious trees of the given depths: ``paths_to_csr`` of
    their ``_oblivious_paths``, the same arrays, without a Python loop over the leaves."""
    n_leaves = np.left_shift(1, depths)
    node_offsets = np.zeros(len(depths) + 1, dtype=np.int64)
    node_offsets[1:] = np.cumsum(n_leaves - 1)
    lengths = np.repeat(depths, n_leaves)
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    if not len(depths):
        return indptr, np.zeros(0, dtype=np.int64), node_offsets
    local = np.concatenate([_oblivious_flat_paths(int(d)) for d in depths])
    nodes = local + np.repeat(node_offsets[:-1], depths * n_leaves)
    return indptr, nodes, node_offsets


def _notes(scale, l2_leaf_reg, weight_scale, structure, K):
    """Where each model fact was read."""
    notes = {
        "bias": f"get_scale_and_bias(); leaf values multiplied by the scale ({scale:g})",
        "learning_rate": "get_all_params()['learning_rate'] (effective value)",
        "l2": f"l2_leaf_reg={l2_leaf_reg:g} times the mean sample weight "
        f"({weight_scale:g}), as CatBoost scales it",
        "labels": "CatBoost holds labels and sample weights in float32: replay with "
        "y and sample_weight rounded to float32 (astype(np.float32).astype(np.float64)) "
        "for an exact RMSE match; with float64 labels the RMSE leaf gap grows with the "
        "label magnitude and fails the 1e-5 check for labels around 1e4 or more "
        "(e.g. 7e-5 at an offset of 1e4 with unit spread)",
        "leaf_stats": "get_leaf_weights(): sum of the sample weights per leaf",
        "paths": "unavailable (JSON export failed)"
        if structure is None
        else (
            "from each tree's depth (symmetric trees, no categorical features)"
            if structure.get("from_depths")
            else "from the JSON model"
        )
        + "; oblivious trees as full binary trees whose level "
        "d splits on the tree's d-th split (heap numbering)",
    }
    if structure is not None and structure["mismatch"]:
        notes["paths"] += (
            "; the JSON leaf order disagreed with CatBoost's node arrays, which were used"
        )
    if K > 1:
        notes["multiclass_factor"] = (
            "1 (nominal): CatBoost's MultiClass step uses the full K x K hessian, which "
            "no diagonal factor reproduces (full_hessian)"
        )
    return notes


# --------------------------------------------------------------------------- input
def _as_catboost_input(X):
    """Return ``X`` in a form CatBoost predicts on, without modifying it.

    CatBoost 1.2.10 crashes on polars categorical columns with polars >= 2, so a polars
    DataFrame is converted to pandas (categorical and string columns as object arrays
    of strings, which CatBoost hashes exactly as the pandas categories).
    """
    if type(X).__module__.split(".")[0] != "polars":
        return X
    pl = import_optional("polars")
    if isinstance(X, pl.Series):
        X = X.to_frame()
    cols = {}
    for name in X.columns:
        s = X.get_column(name)
        dt = s.dtype
        if dt == pl.Categorical or dt == pl.String or isinstance(dt, pl.Enum):
            cols[name] = np.asarray(s.cast(pl.String).to_list(), dtype=object)
        else:
            cols[name] = s.to_numpy()
    try:
        pd = import_optional("pandas")
    except ImportError:  # pragma: no cover - pandas missing
        return np.column_stack(list(cols.values())) if cols else np.empty((len(X), 0))
    return pd.DataFrame(cols)


def _predictors(model, K, params):
    """The routing, raw prediction and truncated raw prediction callables."""
    threads = params.get("thread_count", -1)
    threads = -1 if threads is None else int(threads)
    calls = _ModelCalls(model, K, threads)
    return calls.leaf_ids, calls.raw, calls.staged_raw


class _ModelCalls:
    """Picklable routing and prediction callables over one CatBoost model."""

    def __init__(self, model, K, threads):
        self.model = model
        self.K = K
        self.threads = threads

    def leaf_ids(self, X):
        leaves = np.asarray(
            self.model.calc_leaf_indexes(_as_catboost_input(X), thread_count=self.threads),
            dtype=np.int64,
        )
        leaves = leaves.reshape(leaves.shape[0], -1)
        if self.K > 1:
            return np.repeat(leaves, self.K, axis=1).astype(np.int32)
        return leaves

    def raw(self, X):
        return self.staged_raw(X, None)

    def staged_raw(self, X, n_rounds):
        extra = {} if n_rounds is None else {"ntree_end": int(n_rounds)}
        out = np.asarray(
            self.model.predict(
                _as_catboost_input(X),
                prediction_type="RawFormulaVal",
                thread_count=self.threads,
                **extra,
            ),
            dtype=np.float64,
        )
        return out.reshape(out.shape[0], -1)


# ----------------------------------------------------------------------- structure
def _model_json(model):
    """The model as CatBoost's JSON dump (written to a temporary directory), or None."""
    try:
        with tempfile.TemporaryDirectory(prefix="skinfluence-catboost-") as tmp:
            path = os.path.join(tmp, "model.json")
            model.save_model(path, format="json")
            with open(path, encoding="utf-8") as fh:
                return json.load(fh)
    except Exception:  # pragma: no cover - e.g. text features cannot be exported
        return None


@functools.cache
def _oblivious_paths(depth):
    """Ancestor paths of the ``2**depth`` leaves of an oblivious tree (tuples, shared
    between trees of the same depth: read only).

    Leaf ``l`` has bit ``d`` set when it is on the right of split ``d``; level ``d``
    of the equivalent binary tree splits on split ``d``. Internal nodes are numbered as a
    heap (root 0, children of ``i`` at ``2i+1`` and ``2i+2``).
    """
    paths = []
    for leaf in range(1 << depth):
        path, node = [], 0
        for d in range(depth):
            path.append(node)
            node = 2 * node + 1 + ((leaf >> d) & 1)
        paths.append(tuple(path))
    return tuple(paths), (1 << depth) - 1


def _nonsymmetric_paths(tree):
    """Ancestor paths, leaf values and weights of a JSON non-symmetric tree.

    Internal nodes are numbered in preorder. Leaves are numbered as CatBoost numbers
    them: in preorder of its node array, where a split node with exactly one leaf child
    holds that leaf itself (so that leaf comes before the node's other subtree, also
    when it is the right child); two leaf children are separate nodes, left first.
    """
    paths, values, weights = [], [], []
    n_internal = 0

    def add_leaf(node, path):
        paths.append(path)
        values.append(np.atleast_1d(np.asarray(node["value"], dtype=np.float64)))
        weights.append(float(node.get("weight", np.nan)))

    stack = [(tree, [])]
    while stack:
        node, path = stack.pop()
        if "split" not in node:
            add_leaf(node, path)
            continue
        me = n_internal
        n_internal += 1
        here = [*path, me]
        left, right = node["left"], node["right"]
        left_leaf, right_leaf = "split" not in left, "split" not in right
        if left_leaf and not right_leaf:
            add_leaf(left, here)
            stack.append((right, here))
        elif right_leaf and not left_leaf:
            add_leaf(right, here)
            stack.append((left, here))
        else:  # both leaves or both splits: left first
            stack.append((right, here))
            stack.append((left, here))
    return paths, n_internal, np.concatenate(values), np.asarray(weights)


def _step_node_paths(model, b):
    """Ancestor paths of CatBoost tree ``b`` from the (private) in-memory node arrays,
    or None when they are not available. Used to cross-check the JSON reading."""
    try:
        steps = model._get_tree_step_nodes(b)
        node_to_leaf = np.asarray(model._get_tree_node_to_leaf(b), dtype=np.int64)
    except Exception:  # pragma: no cover - private API of CatBoost 1.2
        return None
    n_nodes = len(steps)
    internal = [i for i in range(n_nodes) if tuple(steps[i]) != (0, 0)]
    rank = {node: r for r, node in enumerate(internal)}
    ancestors = {0: []}
    leaf_paths = {}
    for i in range(n_nodes):
        if i not in ancestors:
            return None
        left, right = steps[i]
        if (left, right) == (0, 0):
            leaf_paths[int(node_to_leaf[i])] = ancestors[i]
            continue
        here = [*ancestors[i], rank[i]]
        for step in (left, right):
            if step == 0:
                leaf_paths[int(node_to_leaf[i])] = here
            else:
                ancestors[i + step] = here
    n_leaves = len(leaf_paths)
    if sorted(leaf_paths) != list(range(n_leaves)):
        return None
    return [leaf_paths[l] for l in range(n_leaves)], len(internal)


def _structure(info, counts, raw_values, K, model):
    """Per-tree leaf paths and leaf weights from the JSON model, cross-checked against
    ``get_leaf_values``; None when the layout does not match."""
    starts = np.concatenate([[0], np.cumsum(counts * K)])
    out = {"paths": [], "n_internal": [], "weights": [], "mismatch": False}
    if "oblivious_trees" in info:
        trees = info["oblivious_trees"]
        if len(trees) != len(counts):
            return None
        values = []
        for b, tree in enumerate(trees):
            depth = len(tree.get("splits") or [])
            if (1 << depth) != counts[b]:
                return None
            paths, n_int = _oblivious_paths(depth)
            values.append(tree["leaf_values"])
            weights = np.asarray(
                tree.get("leaf_weights", np.full(counts[b], np.nan)), dtype=np.float64
            )
            out["paths"].append(paths)
            out["n_internal"].append(n_int)
            out["weights"].append(weights)
        # one comparison for all trees (same layout and order as get_leaf_values)
        if not _same_values(
            np.fromiter(itertools.chain.from_iterable(values), np.float64), raw_values[: starts[-1]]
        ):
            return None
    elif "trees" in info:
        trees = info["trees"]
        if len(trees) != len(counts):
            return None
        for b, tree in enumerate(trees):
            paths, n_int, vals, weights = _nonsymmetric_paths(tree)
            if len(paths) != counts[b] or not _same_values(
                vals, raw_values[starts[b] : starts[b + 1]]
            ):
                return None
            check = _step_node_paths(model, b)
            if check is not None and check != (paths, n_int):
                out["mismatch"] = True
                paths, n_int = check
            out["paths"].append(paths)
            out["n_internal"].append(n_int)
            out["weights"].append(weights)
    else:
        return None
    return out


def _depth_structure(model, counts, K):
    """The per-tree leaf paths and leaf weights without the JSON model, or None.

    Symmetric (oblivious) trees of one value per leaf, without categorical, text or
    embedding features: the paths follow from each tree's depth (the leaf count is
    ``2**depth``, as the JSON model's split list has it) and the weights are
    ``get_leaf_weights()``; no CTR settings or JSON-only facts can apply. Writing and
    parsing the JSON model takes about 15 ms for 100 trees of depth 6, a third of the
    fit of LeafInfluence(update_set=0) at 5,000 rows; both ways give the same
    ensemble (``tests/test_adapter_catboost.py``)."""
    try:
        plain = (
            K == 1
            and model._object._is_oblivious()  # private API of CatBoost 1.2
            and not len(model.get_cat_feature_indices())
            and not len(model.get_text_feature_indices())
            and not len(model.get_embedding_feature_indices())
        )
        weights = np.asarray(model.get_leaf_weights(), dtype=np.float64) if plain else None
    except Exception:  # pragma: no cover - depends on the CatBoost version
        return None
    depths = [int(c).bit_length() - 1 for c in counts]
    if (
        not plain
        or weights.shape != (int(counts.sum()),)
        or any(c != 1 << d for c, d in zip(counts, depths))
    ):
        return None
    out = {"paths": [], "n_internal": [], "mismatch": False, "from_depths": True}
    out["depths"] = np.asarray(depths, dtype=np.int64)
    for depth in depths:
        paths, n_int = _oblivious_paths(depth)
        out["paths"].append(paths)
        out["n_internal"].append(n_int)
    out["weights"] = np.split(weights, np.cumsum(counts)[:-1])
    out["all_weights"] = weights
    return out


def _same_values(a, b):
    """Whether JSON leaf values equal ``get_leaf_values`` (same layout and order)."""
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-9, atol=1e-12)


def _ctr_features(info):
    """Names of the categorical features used through CTR splits (JSON model)."""
    if info is None:
        return None
    splits = []
    for tree in info.get("oblivious_trees", []):
        splits.extend(tree.get("splits") or [])
    stack = list(info.get("trees", []))
    while stack:
        node = stack.pop()
        if "split" in node:
            splits.append(node["split"])
            stack.extend([node["left"], node["right"]])
    if not any(s.get("split_type") == "OnlineCtr" for s in splits):
        return []
    feats = info.get("features_info", {})
    names = {
        c.get("feature_index"): str(c.get("feature_id", c.get("flat_feature_index")))
        for c in feats.get("categorical_features", [])
    }
    used = set()
    for ctr in feats.get("ctrs", []):
        for el in ctr.get("elements", []):
            if "cat_feature_index" in el:
                used.add(names.get(el["cat_feature_index"], str(el["cat_feature_index"])))
    return sorted(used) or ["(unnamed)"]


def _routing_caveat(model, info):
    """Why the final routing of the training rows is not the one the leaf weights were
    summed over (features encoded on other values during training), or None."""
    ctr = _ctr_features(info)
    try:
        others = len(model.get_text_feature_indices()) + len(model.get_embedding_feature_indices())
    except Exception:  # pragma: no cover
        others = 0
    if ctr or (ctr is None and len(model.get_cat_feature_indices())) or others:
        return "categorical (CTR), text or embedding features encoded on other values in training"
    return None


def _leaf_steps(params):
    """Steps per leaf and their kind, as the fitted model reports them."""
    n_steps = int(params.get("leaf_estimation_iterations", 1) or 1)
    method = str(params.get("leaf_estimation_method", "Newton"))
    return n_steps, {"Newton": "newton", "Gradient": "gradient"}.get(method, method)


def _leaf_rule_of(params, loss):
    """The ensemble's leaf-rule fields. MultiClass leaves are K-vectors: the K x K
    Newton rule (``full_hessian``) or a refusal naming the setting, never per-column
    steps."""
    if loss == "MultiClass":
        return {"leaf_steps": 1, "leaf_step_method": "newton"}
    n_steps, method = _leaf_steps(params)
    backtracking = params.get("leaf_estimation_backtracking") not in (None, "No")
    return {
        "leaf_steps": n_steps,
        "leaf_step_method": method,
        "leaf_step_backtracking": n_steps > 1 and backtracking,
    }


def _breaking_settings(model, params, loss, scale, info):
    """Human-readable settings of the model that break the single-Newton-step model."""
    out = []
    n_steps, method = _leaf_steps(params)
    if method not in ("newton", "gradient"):
        out.append(
            f"leaf_estimation_method={method!r} (neither Newton nor gradient steps): "
            "train with leaf_estimation_method='Newton'"
        )
    backtracking = params.get("leaf_estimation_backtracking", "AnyImprovement")
    if n_steps > 1 and backtracking not in (None, "No"):
        out.append(
            f"leaf_estimation_backtracking={backtracking!r} (CatBoost halves a leaf step "
            "that does not lower its bootstrap-weighted loss; the kept steps are found "
            "by matching the stored leaves): if the check fails, train with "
            "leaf_estimation_backtracking='No'"
        )
    shrink = float(params.get("model_shrink_rate", 0) or 0)
    if shrink > 0:
        out.append(
            f"model_shrink_rate={shrink:g} (earlier trees and the bias are shrunk after "
            "they were fitted): train with model_shrink_rate=0"
        )
    if params.get("langevin", False):
        out.append("langevin=True (noise added to the leaf values): train without it")
    if params.get("posterior_sampling", False):
        out.append("posterior_sampling=True (Langevin noise and model shrinkage): train without it")
    if scale != 1.0:
        out.append(
            f"scale={scale:g} in get_scale_and_bias() (raw = scale * sum of leaves + "
            "bias; the leaf values are no longer the Newton steps): reset it with "
            "set_scale_and_bias(1, bias) only if it was set after training"
        )
    cw = params.get("class_weights")
    if cw is not None and np.any(np.asarray(cw, dtype=np.float64) != 1.0):
        out.append(
            f"class weights {list(np.round(np.asarray(cw, dtype=float), 6))} (from "
            f"class_weights, auto_class_weights={params.get('auto_class_weights')!r} or "
            "scale_pos_weight): pass each row's class weight (times its sample weight) "
            "as sample_weight to fit"
        )
    if loss == "MultiClass" and not _multiclass_full_hessian(loss, params):
        out.append(_multiclass_break(params))
    ctr = _ctr_features(info)
    if ctr is None and len(model.get_cat_feature_indices()):
        out.append(
            "categorical features whose encoding could not be read (the JSON export "
            "failed): CTR-encoded features are fitted on other values than the final "
            "routing"
        )
    elif ctr:
        out.append(
            f"categorical feature(s) {', '.join(ctr)} encoded by CTRs "
            f"(one_hot_max_size={params.get('one_hot_max_size')} is below their number "
            "of categories; the training-time CTR values differ from the final ones, so "
            "the training rows' final routing differs from the routing the leaves were "
            "fitted on): train with one_hot_max_size at least the number of categories"
        )
    try:
        n_text = len(model.get_text_feature_indices())
        n_emb = len(model.get_embedding_feature_indices())
    except Exception:  # pragma: no cover
        n_text = n_emb = 0
    if n_text or n_emb:
        out.append(
            "text or embedding features (estimated on other data than the final "
            "routing; unverified): train without them"
        )
    return out
