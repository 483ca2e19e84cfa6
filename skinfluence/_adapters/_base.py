"""Helpers shared by the per-library adapters."""

import importlib

import numpy as np

EXTRA_OF = {
    "lightgbm": "lightgbm",
    "xgboost": "xgboost",
    "catboost": "catboost",
    "pandas": "pandas",
    "polars": "polars",
    "tqdm": "progress",
}


class UnsupportedModelError(TypeError):
    """The model, its objective or one of its settings is not supported."""


def import_optional(name):
    """Import an optional dependency or raise an ImportError naming the extra."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        extra = EXTRA_OF.get(name, name)
        raise ImportError(
            f"this feature needs the optional dependency {name!r}; install it with "
            f"`pip install skinfluence[{extra}]` (or `pip install {name}`)"
        ) from exc


def remap_leaves(raw, maps):
    """Map library leaf ids to local indices ``0..L_t-1`` per tree.

    Parameters
    ----------
    raw : ndarray (n, T) of library leaf/node ids (integers, or floats holding them)
    maps : list of ndarray
        ``maps[t][library_id] = local index`` (``-1`` for ids that are not leaves).
    """
    raw = np.asarray(raw)
    message = "routing reached a node that the model dump does not list as a leaf"
    if raw.size > 2**16 and raw.ndim == 2 and raw.shape[1] == len(maps) and raw.dtype.kind in "iuf":
        # many rows: one parallel pass over the rows (column gathers stride over rows)
        from .._kernels._trees import remap_ids

        sizes = [len(m) for m in maps]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        flat = np.concatenate([np.asarray(m, dtype=np.int32) for m in maps])
        out, bad = remap_ids(np.ascontiguousarray(raw), flat, offsets)
        if bad:
            raise RuntimeError(message)
        return out
    if raw.dtype.kind == "f":  # node ids as floats (XGBoost's pred_leaf)
        raw = raw.astype(np.int64)
    out = np.empty(raw.shape, dtype=np.int32)
    for t, m in enumerate(maps):
        out[:, t] = m[raw[:, t]]
    if out.size and out.min() < 0:
        raise RuntimeError(message)
    return out


def leaf_map(leaf_library_ids, size=None):
    """Build a library-id -> local-index lookup array for one tree."""
    ids = np.asarray(leaf_library_ids, dtype=np.int64)
    size = int(ids.max()) + 1 if size is None else size
    m = np.full(max(size, 1), -1, dtype=np.int32)
    m[ids] = np.arange(len(ids), dtype=np.int32)
    return m


def paths_to_csr(per_tree_leaf_paths, per_tree_n_internal):
    """Flatten per-tree leaf ancestor lists into the ensemble's CSR path arrays.

    ``per_tree_leaf_paths[t][l]`` is the list of *local* internal-node indices (root
    first) above local leaf ``l`` of tree ``t``; internal nodes of tree ``t`` are numbered
    ``0..per_tree_n_internal[t]-1``.
    """
    from itertools import chain

    node_offsets = np.zeros(len(per_tree_n_internal) + 1, dtype=np.int64)
    node_offsets[1:] = np.cumsum(per_tree_n_internal)
    leaves_per_tree = [len(leaves) for leaves in per_tree_leaf_paths]
    lengths = np.fromiter(
        (len(p) for leaves in per_tree_leaf_paths for p in leaves),
        dtype=np.int64,
        count=sum(leaves_per_tree),
    )
    local = np.fromiter(
        chain.from_iterable(chain.from_iterable(per_tree_leaf_paths)),
        dtype=np.int64,
        count=int(lengths.sum()),
    )
    tree_of_leaf = np.repeat(np.arange(len(leaves_per_tree)), leaves_per_tree)
    nodes = local + np.repeat(node_offsets[:-1][tree_of_leaf], lengths)
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return indptr, nodes, node_offsets


#: names under which the supported libraries take their thread count
_THREAD_PARAMS = ("n_jobs", "nthread", "nthreads", "num_threads", "num_thread", "thread_count")


def one_thread_clone(model):
    """``clone(model)`` with every thread-count parameter it has set to 1."""
    from sklearn.base import clone

    template = clone(model)
    params = template.get_params(deep=False)
    single = {k: 1 for k in _THREAD_PARAMS if k in params}
    if single:
        template.set_params(**single)
    return template


def wrapper_clone(model, raw_type, wrappers):
    """:func:`one_thread_clone` of a scikit-learn wrapper; refuse a raw trained model.

    A raw model of type ``raw_type`` (e.g. a library's booster) holds trees but not the
    hyperparameters to train it again; ``wrappers`` names the classes to pass instead.
    """
    if isinstance(model, raw_type):
        library = raw_type.__module__.split(".")[0]
        raise TypeError(
            f"a raw {library}.{raw_type.__name__} cannot be cloned and refit with its "
            f"hyperparameters; pass the scikit-learn wrapper ({wrappers}) instead"
        )
    return one_thread_clone(model)


def estimator_is_fitted(model):
    """Whether a scikit-learn-style estimator is fitted (``check_is_fitted``)."""
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except Exception:  # NotFittedError or TypeError for non-estimators
        return False
    return True
