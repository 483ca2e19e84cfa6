"""BaseInfluence: the contract every influence estimator shares.

A subclass implements these hooks (the base raises ``NotImplementedError`` naming the
hook for each one a subclass leaves out):

* ``_fit_influence(self, X, leaves, y_enc, sample_weight) -> None``: precompute
  whatever the queries need. The base has already validated the data, resolved and
  fitted the model, built ``self.ensemble_``, checked its reconstruction and set
  ``n_train_``; ``leaves`` is the ``(n_train, n_trees)`` leaf ids of ``X``, ``y_enc``
  the encoded labels (class indices as floats, or regression targets) and
  ``sample_weight`` ``None`` or ``(n_train,)`` floats.
* ``_query_arrays(self, X, leaves, y_enc, objective) -> dict[str, ndarray]``: the
  per-query arrays of one call, computed once for all its queries. Every value is an
  array whose first axis is the query axis: the base slices them into blocks of rows.
  ``y_enc`` is ``None`` for unlabelled regression queries; ``objective`` is the query
  objective, the model's objective or ``"value"`` (influence on the predicted value).
* ``_query_context(self, X, y_enc, objective) -> object``: what the queries of one
  call share that is not a per-row array (it is not sliced). The base returns
  ``objective``; a method that needs more overrides it.
* ``_influence_block(self, q, context, out=None) -> ndarray``: the ``(m, n_train)``
  influence of a block of ``m`` queries, given the per-query arrays ``q`` sliced to
  the block and the call's ``context``. A method with ``_fills_out = True`` is given
  ``out``, a float64 ``(m, n_train)`` slice of the output, to write into and return.
* ``_self_influence(self) -> ndarray``: the ``(n_train,)`` influence of each training
  row on its own loss.

and may override

* ``_global_from_queries(self, q, m, context) -> ndarray``: the ``(n_train,)``
  influence summed over the ``m`` queries of ``q`` (the base sums the blocks of
  ``_influence_block``);
* ``_query_row_bytes(self) -> int``: the memory one query row of a block needs (the
  base: two float64 rows of ``n_train``), from which ``chunk_memory_mb`` sets the
  block size.

Class attributes: ``_accepts_forests`` (whether random forests are explained) and
``_fills_out`` (whether ``_influence_block`` writes into ``out``).

The base handles input validation (numpy, pandas, polars), model resolution (fitted,
frozen, raw trained model, Pipeline, or unfitted-and-cloned), label encoding, chunking under a
memory budget, ``n_jobs`` for the numba kernels, progress bars, ``top_k``,
``global_influence`` and output names.
"""

import contextlib
import numbers
import warnings

import numba
import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._adapters import default_model, is_fitted, takes_raw_input, to_ensemble, unwrap_model
from ._config import get_config
from ._distributed import is_dask
from ._ensemble import TrainingDataMismatchError

__all__ = ["BaseInfluence"]


def _is_dataframe(X):
    mod = type(X).__module__.split(".")[0]
    return mod in ("pandas", "polars") and hasattr(X, "columns")


def _n_rows(X):
    return X.shape[0]


def _check_n_features(X, expected, what):
    """Refuse an array whose number of columns is not ``expected`` (None: unknown)."""
    if expected is not None and not _is_dataframe(X) and X.shape[1] != expected:
        raise ValueError(f"X has {X.shape[1]} features but {what} {expected}")


def tie_value(dtype):
    """The finite value that stands for an infinite similarity (a zero distance, a
    zero target difference): ``2**-32`` times the largest finite value of ``dtype``
    (about 4.2e298 in float64, 7.9e28 in float32), so that sums over up to ``2**32``
    queries (``global_influence``) and differences of two such values stay finite."""
    return float(np.finfo(dtype).max) * 2.0**-32


def _fit_model(model, X, y, sample_weight):
    from sklearn.pipeline import Pipeline

    if sample_weight is None:
        return model.fit(X, y)
    if isinstance(model, Pipeline):
        return model.fit(X, y, **{f"{model.steps[-1][0]}__sample_weight": sample_weight})
    return model.fit(X, y, sample_weight=sample_weight)


@contextlib.contextmanager
def _numba_threads(n_jobs):
    """Run numba kernels with ``n_jobs`` threads (None or -1: all), then restore."""
    old = numba.get_num_threads()
    cap = numba.config.NUMBA_NUM_THREADS
    if n_jobs is None or n_jobs == -1:
        n = cap
    elif n_jobs < 0:
        n = max(1, cap + 1 + n_jobs)
    else:
        n = min(max(1, int(n_jobs)), cap)
    try:
        numba.set_num_threads(n)
        yield n
    finally:
        numba.set_num_threads(old)


def _progress(iterable, total, verbose, desc):
    if not verbose:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is an optional extra
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False)


def _slice_rows(q, start, stop):
    return {k: v[start:stop] for k, v in q.items()}


class BaseInfluence(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base class of the influence estimators (not for direct use).

    Parameters
    ----------
    estimator : object, default=None
        The model to explain. A fitted model, a ``sklearn.frozen.FrozenEstimator``, a
        raw ``lightgbm.Booster`` / ``xgboost.Booster`` or a ``Pipeline`` ending in a
        fitted model is explained as given; an unfitted model (what ``clone``
        produces) is cloned and fitted on the data passed to ``fit``. ``None`` fits a
        small ``HistGradientBoostingClassifier`` / ``Regressor`` for the task (50
        rounds, 15 leaves, leaves of at least ``min(20, n_train // 10)`` rows).
    dtype : {np.float64, np.float32}, default=np.float64
        Dtype of the influence matrix.
    chunk_memory_mb : float, default=256
        Memory budget (MiB) of one block of the influence matrix while processing
        queries; ``top_k`` and ``global_influence`` never hold more than one block.
        An estimator that writes its blocks straight into the output of ``transform``
        (BoostIn and single-point LeafInfluence, float64 output) needs no block memory
        (its kernel holds at most 16 MiB of its own) and runs all queries as one block
        there, unless ``verbose`` asks for a progress bar.
    n_jobs : int, default=None
        Threads of the numba kernels (None or -1: all cores). Results do not depend
        on it.
    verbose : int, default=0
        Show a progress bar (needs ``tqdm``) over query blocks.

    Attributes
    ----------
    validation_indices_ : ndarray of int64
        Rows given to ``fit`` that the model held out of its training itself (the
        validation split of HistGradientBoosting's early stopping, redrawn exactly);
        empty when all rows trained the model. Except for the retraining methods, the
        explainer is fitted on the other rows only (``n_train_`` counts them), and the
        held-out rows get influence 0 in every output, whose columns stay the rows
        given to ``fit``. See :doc:`/models`.
    """

    #: whether the method accepts random forests
    _accepts_forests = True
    #: whether ``_influence_block(q, context, out=...)`` can write into a float64 output slice
    _fills_out = False
    #: whether the method explains the fitted model through the rows its trees were
    #: grown on: the rows the library held out of them itself
    #: (``ensemble_.training_rows``) then get influence 0. False for the methods that
    #: refit the model on the rows given to ``fit`` (and so redraw any such split).
    _explains_trained_rows = True
    #: layout of the fitted state; bumped when it changes, so that an explainer pickled
    #: with another layout is refused with a clear message instead of failing later
    _STATE_FORMAT = 5

    def __getstate__(self):
        state = super().__getstate__()
        if "ensemble_" in state:
            state["_skinfluence_state_format"] = self._STATE_FORMAT
        return state

    def __setstate__(self, state):
        if "ensemble_" in state:
            fmt = state.pop("_skinfluence_state_format", None)
            if fmt != self._STATE_FORMAT:
                raise ValueError(
                    f"This fitted {type(self).__name__} was saved by a skinfluence version "
                    f"whose fitted state (format {fmt}) this version (format "
                    f"{self._STATE_FORMAT}) cannot read. Load it with the version that "
                    "saved it, or fit a new explainer: the model itself is not affected."
                )
        super().__setstate__(state)

    def __init__(
        self, estimator=None, *, dtype=np.float64, chunk_memory_mb=256, n_jobs=None, verbose=0
    ):
        self.estimator = estimator
        self.dtype = dtype
        self.chunk_memory_mb = chunk_memory_mb
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------------ input
    def _validate_X(self, X, reset):
        """Check X and record (``reset``) or compare its number of columns and names.

        Arrays become float64 unless a pipeline (or a model with categorical features)
        consumes them: its steps get X as the user gave it (strings, objects,
        integers).
        """
        if _is_dataframe(X):
            validate_data(self, X, skip_check_array=True, reset=reset)
            if X.shape[0] == 0:
                raise ValueError("Found array with 0 sample(s); at least 1 is required.")
            return X
        model = self.estimator if reset else self.estimator_
        dtype = None if takes_raw_input(model) else np.float64
        return validate_data(self, X, reset=reset, dtype=dtype, ensure_all_finite="allow-nan")

    def _validate_y(self, y, n, name="y"):
        if y is None:
            return None
        y = column_or_1d(
            check_array(y, ensure_2d=False, dtype=None, ensure_all_finite=True), warn=True
        )
        if len(y) != n:
            raise ValueError(
                f"{name} has {len(y)} entries but X has {n} rows; pass one label per row"
            )
        return y

    def _encode_y(self, y, name="y"):
        """Labels -> class indices (classifiers) or floats (regression)."""
        ens = self.ensemble_
        if ens.is_regression:
            try:
                return np.asarray(y, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} must be numeric for a regression model") from exc
        classes = self.classes_
        y = np.asarray(y)
        if len(classes) and classes.dtype.kind in "biuf" and y.dtype.kind in "biuf":
            # numbers: a sorted search instead of a Python lookup per row
            order = np.argsort(classes, kind="stable")
            pos = np.searchsorted(classes[order], y).clip(0, len(classes) - 1)
            idx = order[pos]
            if np.array_equal(classes[idx], y):
                return idx.astype(np.float64)
        lookup = {c: i for i, c in enumerate(classes.tolist())}
        try:
            idx = np.fromiter((lookup[v] for v in y.tolist()), dtype=np.float64, count=len(y))
        except KeyError:
            unseen = sorted({v for v in y.tolist() if v not in lookup}, key=str)[:5]
            raise ValueError(
                f"{name} contains labels the model never saw: {unseen}; the model's "
                f"classes are {classes.tolist()}"
            ) from None
        return idx

    # --------------------------------------------------------------------- fit
    def _resolve_estimator(self, X, y, sample_weight):
        est = self.estimator
        if est is None:
            est = default_model(y)
        if is_fitted(est):
            return est, False
        return _fit_model(clone(est), X, y, sample_weight), True

    def fit(self, X, y, sample_weight=None):
        """Fit the explainer on the model's training data.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_train, n_features)
            The rows the model was (or is to be) trained on, in any format the model
            takes (numpy, pandas, polars; NaN and categoricals as the model allows).
            A ``dask.array`` or ``dask.dataframe`` (BoostIn, LeafSim, TreeSim, TREX,
            LeafInfluence with ``update_set=0``; a fitted model; ``y`` partitioned
            alike) fits on a dask.distributed cluster: the queries then run there and
            ``transform``, ``global_influence`` and ``self_influence`` return dask
            arrays (see the user guide's page on dask).
        y : array-like of shape (n_train,)
            The training labels.
        sample_weight : array-like of shape (n_train,), default=None
            The sample weights the model was trained with.

        Returns
        -------
        self : object

        Raises
        ------
        TrainingDataMismatchError
            If the rows (and, except for LightGBM and HistGradientBoosting models,
            the sample weights) do not
            reproduce the per-leaf statistics the library recorded of the model's
            training rows (row counts, hessian sums, weight sums). The message names
            the number of rows (or total weight) recorded and given when they differ,
            else the trees whose statistics differ. Not checked for a model fitted by
            the explainer itself, nor when the statistics do not describe all training
            rows (bootstrap forests, row subsampling). To explain a model knowingly
            with other rows, fit inside
            ``skinfluence.config_context(check_training_rows="warn")``: the error then
            becomes a ``UserWarning``.
        ReconstructionError
            If the parsed trees do not reproduce the library's raw prediction.
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        for name in ("_dask", "_global_leaf_counts"):  # the state of a distributed fit
            self.__dict__.pop(name, None)
        if is_dask(X) or is_dask(y) or is_dask(sample_weight):  # partitions on a cluster
            from ._distributed import fit_dask

            return fit_dask(self, X, y, sample_weight)
        X = self._validate_X(X, reset=True)
        n = _n_rows(X)
        y = self._validate_y(y, n)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, np.empty((n, 0)), dtype=np.float64)
        model, fitted_here = self._resolve_estimator(X, y, sample_weight)
        preprocess = unwrap_model(model)[1]
        if preprocess is not None:  # before the pipeline's steps see X
            _check_n_features(X, preprocess.n_features_in, "the pipeline takes")
        ens = to_ensemble(model, X=X, y=y, sample_weight=sample_weight)
        if ens.tree_type == "rf" and not self._accepts_forests:
            raise ValueError(
                f"{type(self).__name__} needs a gradient-boosted model, got the random "
                f"forest {ens.describe()}; use TREX, TreeSim, LeafSim, InputSim or a "
                "retraining method for forests"
            )
        self.estimator_ = model
        self.ensemble_ = ens
        if ens.classes is not None:
            self.classes_ = np.asarray(ens.classes)
        elif not ens.is_regression:
            self.classes_ = np.arange(max(2, ens.n_outputs))
        if preprocess is None:
            _check_n_features(X, ens.n_features_in, "the model was trained on")
        leaves = ens.check_reconstruction(X)
        y_enc = self._round_labels(self._encode_y(y))
        if ens.label_dtype is not None and sample_weight is not None:
            # replay in the library's own precision of weights
            sample_weight = sample_weight.astype(ens.label_dtype).astype(np.float64)
        if not fitted_here:  # a model fitted here was trained on these rows
            self._check_training_rows(leaves, y_enc, sample_weight)
        self._train_labels = self._row_labels(X)
        self._n_features_out = n
        self._fit_influence(*self._trained_rows(X, leaves, y_enc, sample_weight))
        return self

    def _check_training_rows(self, leaves, y_enc, sample_weight):
        """Raise :class:`TrainingDataMismatchError` (or warn, as the configuration
        ``check_training_rows`` says) unless the rows given to ``fit`` reproduce the
        per-leaf statistics the library recorded of the model's training rows."""
        ens = self.ensemble_
        rows = ens.training_rows
        if rows is None:
            sums = self._training_hessian_sums(leaves, y_enc, sample_weight)
            message = ens.check_training_rows(leaves, y_enc, sample_weight, sums)
        else:  # a split the adapter redrew: the trees saw its training part only
            weights = None if sample_weight is None else sample_weight[rows]
            message = ens.check_training_rows(leaves[rows], y_enc[rows], weights)
            if message is not None:
                message = (
                    "the model was trained on a split of the rows given to its fit (the "
                    "rest held out for validation), redrawn here from the rows given: " + message
                )
        if message is None:
            return
        message += (
            ". Pass the exact training data of the model: the same rows, in the same "
            "order, with the same sample weights. To explain the model knowingly with "
            "other rows (a subset, another sample), fit inside "
            "skinfluence.config_context(check_training_rows='warn')."
        )
        if ens.breaking_settings:
            message += " Settings of this model that may matter: " + "; ".join(
                ens.breaking_settings
            )
        if get_config()["check_training_rows"] == "raise":
            raise TrainingDataMismatchError(message)
        warnings.warn(message, UserWarning, stacklevel=3)

    def _training_hessian_sums(self, leaves, y_enc, sample_weight):
        """Per-leaf sums of the weighted hessians of the fit rows when the method
        replays them anyway (the training-row check of XGBoost's cover then needs no
        replay of its own); ``None`` here."""
        return None

    def _trained_rows(self, X, leaves, y_enc, sample_weight):
        """The fit data restricted to the rows the method explains; sets ``n_train_``,
        ``validation_indices_`` and the map of those rows to the output columns."""
        rows = self.ensemble_.training_rows
        n = _n_rows(X)
        held_out = np.ones(n, dtype=bool)
        held_out[slice(None) if rows is None else rows] = False
        self.validation_indices_ = np.flatnonzero(held_out)
        self._columns = None
        if rows is not None and self._explains_trained_rows:
            self._columns = rows
            X, leaves, y_enc = _safe_indexing(X, rows), leaves[rows], y_enc[rows]
            sample_weight = None if sample_weight is None else sample_weight[rows]
        self.n_train_ = _n_rows(X)
        # the explained rows' labels and weights, for label edits
        self._explained_labels, self._explained_weights = y_enc, sample_weight
        return X, leaves, y_enc, sample_weight

    def _to_rows(self, values):
        """Values over the explained rows (last axis) -> over all rows given to
        ``fit``, 0 for the rows the model held out."""
        cols = getattr(self, "_columns", None)
        if cols is None:
            return values
        out = np.zeros(values.shape[:-1] + (self._n_features_out,), dtype=values.dtype)
        out[..., cols] = values
        return out

    def _round_labels(self, y_enc):
        """Labels in the precision the library trained with (``ensemble_.label_dtype``)."""
        dt = self.ensemble_.label_dtype
        return y_enc if dt is None else y_enc.astype(dt).astype(np.float64)

    def _predicted_labels(self, leaves):
        """The model's predicted class indices for routed rows."""
        from ._objectives import predict_from_raw

        ens = self.ensemble_
        raw = ens.raw_from_leaves(leaves)
        if ens.tree_type == "rf" and ens.objective == "binary":
            return (raw[:, 0] > 0.5).astype(np.float64)  # a forest's raw score is P(y=1)
        return predict_from_raw(ens.objective, raw).astype(np.float64)

    @staticmethod
    def _validate_leaf_check(mode):
        if mode not in ("raise", "warn"):
            raise ValueError(f"check_leaf_model must be 'raise' or 'warn', got {mode!r}")

    def _check_leaf_model(self, leaves, y_enc, sample_weight, mode, atol, rtol, terms=None):
        self._validate_leaf_check(mode)
        ens = self.ensemble_
        # the rows themselves were checked by ``fit``; ``terms``: their leaf terms, when
        # the method computed them already
        ens.check_leaf_model(
            leaves,
            y_enc,
            sample_weight,
            atol=atol,
            rtol=rtol,
            error=(mode == "raise"),
            terms=terms,
        )

    @staticmethod
    def _row_labels(X):
        index = getattr(X, "index", None)
        if index is not None and type(X).__module__.startswith("pandas"):
            return np.asarray([str(i) for i in index], dtype=object)
        return None

    # ----------------------------------------------------------------- queries
    def _prepare(self, X, y):
        check_is_fitted(self, "ensemble_")
        X = self._validate_X(X, reset=False)
        m = _n_rows(X)
        y = self._validate_y(y, m)
        ens = self.ensemble_
        leaves = ens.leaf_ids(X)
        if y is None:
            if ens.is_regression:
                y_enc, objective = None, "value"
            else:
                y_enc, objective = self._predicted_labels(leaves), ens.objective
        else:
            y_enc, objective = self._round_labels(self._encode_y(y)), ens.objective
        q = self._query_arrays(X, leaves, y_enc, objective)
        return q, self._query_context(X, y_enc, objective), m

    def _memory_budget(self):
        """``chunk_memory_mb`` in bytes (checked)."""
        budget = float(self.chunk_memory_mb) * 2**20
        if not budget > 0:
            raise ValueError(f"chunk_memory_mb must be positive, got {self.chunk_memory_mb}")
        return budget

    def _query_row_bytes(self):
        """Memory of one query row of a block: the block and its copy."""
        return 8 * max(1, self.n_train_) * 2

    def _chunk_rows(self):
        return max(1, int(self._memory_budget() // self._query_row_bytes()))

    def _blocks(self, q, m, desc, whole=False):
        step = self._chunk_rows()
        if whole:
            step = max(step, m)
        starts = range(0, m, step)
        verbose = self.verbose if len(starts) > 1 else 0
        for start in _progress(starts, len(starts), verbose, desc):
            yield start, min(m, start + step), _slice_rows(q, start, min(m, start + step))

    def _big(self):
        """The stand-in for an infinite similarity in the output dtype
        (:func:`tie_value`)."""
        return tie_value(self._out_dtype())

    def _out_dtype(self):
        dt = np.dtype(self.dtype)
        if dt not in (np.float64, np.float32):
            raise ValueError(f"dtype must be float64 or float32, got {self.dtype!r}")
        return dt

    def transform(self, X, y=None, *, out=None):
        """Influence of every training row on every query row.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_query, n_features)
        y : array-like of shape (n_query,), default=None
            Query labels. With labels: influence on the loss at ``(x, y)``. Without:
            classifiers use the model's predicted labels (positive = the training row
            supports the prediction); regressors give the influence on the predicted
            value (positive = removing the row would lower the prediction).
        out : array-like of shape (n_query, n_train), default=None
            Where to write the result instead of a new array: anything that takes
            ``out[a:b] = block`` (a ``numpy.memmap``, a zarr or HDF5 array). It is written
            one block of queries at a time, so the memory used besides ``out`` stays
            within ``chunk_memory_mb``: an influence matrix larger than memory goes
            straight to disk. Returned as given (with the default ``set_output``).

        Returns
        -------
        influence : ndarray of shape (n_query, n_train)
            Positive = helpful: removing the training row would raise the query's
            loss.
        """
        dt = self._out_dtype()
        if self._distributed("transform", out is not None):
            return self._dask_call("transform", X, y)
        q, context, m = self._prepare(X, y)
        if out is not None:
            return self._transform_into(q, context, m, out)
        out = np.empty((m, self.n_train_), dtype=dt)
        # an estimator that writes its blocks into ``out`` needs no block memory: one
        # block then, unless a progress bar is asked for
        direct = self._fills_out and dt == np.float64
        with _numba_threads(self.n_jobs):
            for a, b, blk in self._blocks(q, m, "influence", whole=direct and not self.verbose):
                if direct:
                    self._influence_block(blk, context, out=out[a:b])  # no block copy
                else:
                    out[a:b] = self._influence_block(blk, context)
        return self._to_rows(out)

    def _transform_into(self, q, context, m, out):
        """``transform`` written block by block into ``out``."""
        shape = (m, self._n_features_out)
        got = tuple(getattr(out, "shape", ()))
        if got != shape:
            raise ValueError(
                f"out must have shape {shape} (one row per query, one column per row "
                f"given to fit), got {got or type(out).__name__}"
            )
        dt = self._out_dtype()
        with _numba_threads(self.n_jobs):
            for a, b, blk in self._blocks(q, m, "influence"):
                block = np.asarray(self._influence_block(blk, context), dtype=dt)
                out[a:b] = self._to_rows(block)
        return out

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit, then the influence of the training rows on themselves (with their
        labels): shape ``(n_train, n_train)``."""
        return self.fit(X, y, sample_weight=sample_weight).transform(X, y)

    def self_influence(self):
        """Influence of each training row on its own loss, shape ``(n_train,)``.

        Equals the diagonal of ``fit_transform(X, y)`` without computing the matrix.
        """
        check_is_fitted(self, "ensemble_")
        if self._distributed("self_influence"):
            return self._dask_call("self_influence")
        with _numba_threads(self.n_jobs):
            return self._to_rows(np.asarray(self._self_influence(), dtype=self._out_dtype()))

    def global_influence(self, X, y=None):
        """Summed influence of each training row on a set of queries.

        Equals ``transform(X, y).sum(axis=0)`` without the query x train matrix.

        Returns
        -------
        influence : ndarray of shape (n_train,)
        """
        if self._distributed("global_influence"):
            return self._dask_call("global_influence", X, y)
        q, context, m = self._prepare(X, y)
        with _numba_threads(self.n_jobs):
            out = self._global_from_queries(q, m, context)
        return self._to_rows(np.asarray(out, dtype=self._out_dtype()))

    def label_edit(self, X, y=None, *, new_labels):
        """Change of each query's loss when one training row's label is edited.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_query, n_features)
        y : array-like of shape (n_query,), default=None
            Query labels, as in :meth:`transform`.
        new_labels : scalar, array-like of shape (n_rows_fit,) or "each"
            The label each training row would get (class labels for classifiers; one
            per row given to ``fit``, or one for all). ``"each"`` (classifiers): every
            class in turn.

        Returns
        -------
        change : ndarray of shape (n_query, n_train), or (n_query, n_train, n_classes)
            ``change[e, i]`` estimates ``L_e(y_i := new_labels[i]) - L_e``, the change of
            query ``e``'s loss when row ``i`` alone is relabelled (positive: the edit
            would raise the query's loss). Rows whose new label equals their label get
            0; so do rows the model held out. With ``"each"``, ``change[e, i, c]`` is the
            change when row ``i`` takes class ``classes_[c]``.

        Raises
        ------
        NotImplementedError
            If the method has no label-edit form (see :ref:`methods-label-edit`).
        """
        check_is_fitted(self, "ensemble_")
        if isinstance(new_labels, str) and new_labels == "each":
            if self.ensemble_.is_regression:
                raise ValueError('new_labels="each" needs a classifier; give the new values')
            return np.stack(
                [self.label_edit(X, y, new_labels=c) for c in self.classes_.tolist()], axis=-1
            )
        self._distributed("label_edit", True)
        targets = self._edit_targets(new_labels)
        q, context, m = self._prepare(X, y)
        out = np.empty((m, self.n_train_), dtype=self._out_dtype())
        with _numba_threads(self.n_jobs):
            state = self._label_edit_state(targets)
            for a, b, blk in self._blocks(q, m, "label edit"):
                out[a:b] = self._label_edit_block(blk, context, state)
        return self._to_rows(out)

    def _edit_targets(self, new_labels):
        """``new_labels`` encoded (class indices or floats) for the explained rows."""
        n_fit = self._n_features_out
        labels = np.asarray(new_labels, dtype=None if np.ndim(new_labels) else object)
        if labels.ndim == 0:
            labels = np.full(n_fit, new_labels, dtype=object)
        labels = self._validate_y(labels, n_fit, name="new_labels")
        enc = self._round_labels(self._encode_y(labels, name="new_labels"))
        cols = getattr(self, "_columns", None)
        return enc if cols is None else enc[cols]

    def top_k(self, X, y=None, k=10, kind="helpful"):
        """The ``k`` most helpful (or harmful) training rows of each query.

        Parameters
        ----------
        X, y : as in :meth:`transform`
        k : int, default=10
        kind : {"helpful", "harmful"}, default="helpful"
            ``"helpful"``: largest influence first; ``"harmful"``: smallest first.
            Ties go to the lower training index.

        Returns
        -------
        indices : ndarray of shape (n_query, k), int64
        values : ndarray of shape (n_query, k)
        """
        if kind not in ("helpful", "harmful"):
            raise ValueError(f"kind must be 'helpful' or 'harmful', got {kind!r}")
        if not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        sign = -1.0 if kind == "helpful" else 1.0
        if self._distributed("top_k"):
            return self._dask_call("top_k", X, y, k, sign)
        q, context, m = self._prepare(X, y)
        k = min(int(k), self.n_train_)
        with _numba_threads(self.n_jobs):
            idx, val = self._top_k_queries(q, context, m, k, sign)
        cols = getattr(self, "_columns", None)
        return (idx if cols is None else cols[idx]), val.astype(self._out_dtype(), copy=False)

    def _top_k_queries(self, q, context, m, k, sign):
        """``top_k`` of the ``m`` prepared queries ``q``: ``(indices, values)``, float64
        values, ``sign`` -1 for the largest first, +1 for the smallest."""
        idx = np.empty((m, k), dtype=np.int64)
        val = np.empty((m, k))
        for a, b, blk in self._blocks(q, m, "top-k"):
            M = sign * self._influence_block(blk, context)
            part = (
                np.argpartition(M, k - 1, axis=1)[:, :k]
                if k < M.shape[1]
                else np.broadcast_to(np.arange(M.shape[1]), M.shape).copy()
            )
            # the k-th value may be tied with rows outside the partition: resolve
            # ties toward the lower index among all rows with that value
            kth = np.take_along_axis(M, part, 1).max(axis=1, keepdims=True)
            for r in range(M.shape[0]):
                cand = np.flatnonzero(M[r] <= kth[r])
                order = np.lexsort((cand, M[r, cand]))[:k]
                idx[a + r] = cand[order]
                val[a + r] = sign * M[r, cand[order]]
        return idx, val

    # ------------------------------------------------------------- distributed
    def _distributed(self, name, refused=False):
        """Whether the explainer was fitted on dask collections (its queries then run
        on the cluster); ``refused``: raise, ``name`` has no distributed form."""
        if getattr(self, "_dask", None) is None:
            return False
        if refused:
            hint = ": transform(X) is a dask array: store it with .to_zarr" * (name == "transform")
            raise NotImplementedError(
                f"{name}{' with out=' if hint else ''} is not available for an explainer "
                f"fitted on dask collections{hint}"
            )
        return True

    def _dask_call(self, name, *args):
        from . import _distributed

        return getattr(_distributed, name)(self, *args)

    # ------------------------------------------------------------------- names
    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: the training rows.

        The training DataFrame's index labels when ``fit`` got a pandas DataFrame,
        else ``"<method>0" .. "<method>{n_train-1}"``.
        """
        check_is_fitted(self, "ensemble_")
        if self._train_labels is not None:
            return self._train_labels.copy()
        return super().get_feature_names_out(input_features)

    # -------------------------------------------------------------------- tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    # ------------------------------------------------------------------- hooks
    def _missing_hook(self, name):
        return NotImplementedError(
            f"{type(self).__name__} does not implement the hook {name} of BaseInfluence"
        )

    def _fit_influence(self, X, leaves, y_enc, sample_weight):
        """Precompute what the queries need (see the module docstring)."""
        raise self._missing_hook("_fit_influence")

    def _query_arrays(self, X, leaves, y_enc, objective):
        """Per-query arrays of one call: ``dict[str, ndarray]``, first axis the queries."""
        raise self._missing_hook("_query_arrays")

    def _query_context(self, X, y_enc, objective):
        """What one call's queries share besides their arrays: here the query objective."""
        return objective

    def _influence_block(self, q, context, out=None):
        """The ``(m, n_train)`` influence of a block of ``m`` queries."""
        raise self._missing_hook("_influence_block")

    def _self_influence(self):
        """The ``(n_train,)`` influence of each training row on its own loss."""
        raise self._missing_hook("_self_influence")

    def _label_edit_state(self, targets):
        """What the label-edit blocks of one call share, from the explained rows' new
        labels ``targets`` (encoded)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no label-edit influence; BoostIn, LeafInfluence, "
            "LeafRefit, TREX, AXIL, LOO, SubSample, DataShapley and the similarity "
            "methods have one (see the label-edit section of the methods page)"
        )

    def _label_edit_block(self, q, context, state):
        """The ``(m, n_train)`` loss changes of a block of ``m`` queries."""
        raise self._missing_hook("_label_edit_block")

    def _global_from_queries(self, q, m, context):
        """The ``(n_train,)`` influence summed over the ``m`` queries of ``q``."""
        total = np.zeros(self.n_train_)
        for _, _, blk in self._blocks(q, m, "global influence"):
            total += self._influence_block(blk, context).sum(axis=0)
        return total
