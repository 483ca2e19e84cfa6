"""Retraining-based influence: LOO, SubSample and DataShapley (:ref:`methods-retraining`).

All three refit ``clone(model)`` (same hyperparameters, same seed) on modified training
sets and measure the loss of each query from the refit model's own ``predict_proba``
(classification, probabilities clipped to ``[1e-5, 1 - 1e-5]``) or ``predict``
(regression, ``0.5 (y - y_hat)**2``, or the objective's own loss at the raw score of
the prediction, e.g. ``exp(F) - y F`` for Poisson; without labels the prediction itself,
or minus its raw score for a link other than the identity). Every refit
goes through :class:`joblib.Parallel`, so ``n_jobs`` uses local cores and
``joblib.parallel_config(backend="dask")`` runs the same tasks on a ``dask.distributed``
cluster with identical results: a task is a tiny integer (the row left out, the seed of a
subset or of a permutation) from which the worker rebuilds its training rows, the
training and query arrays are the same objects in every task of a call (joblib's dask
backend scatters them once per call, loky memory-maps them once), tasks are grouped in a
few batches per worker, and each refit runs with the model's own thread count set to 1.
"""

import numbers
import pickle
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils.validation import _num_samples
from threadpoolctl import threadpool_limits

from ._adapters import refit_template
from ._objectives import is_regression, model_loss, uninformed_loss
from ._parallel import base_seed, split_batches
from .base import BaseInfluence, _fit_model, _progress

__all__ = ["LOO", "DataShapley", "SubSample"]

#: ``keep_models="auto"`` keeps the refit models when their estimated pickled size is
#: at most this many bytes
MODEL_MEMORY_BUDGET = 1 << 30


def _reduce(L, how):
    return np.array([L.sum()]) if how == "sum" else L


def _check_finite(L, what):
    if not np.all(np.isfinite(L)):
        raise FloatingPointError(f"the refit model gave a non-finite {what} loss")


# -------------------------------------------------------------------------- workers
def _task_rows(spec, task):
    n = spec["n"]
    if spec["kind"] == "drop":
        return np.delete(np.arange(n), task)
    # "subset": seed -> uniform subset of spec["size"] rows without replacement
    return np.sort(np.random.default_rng(task).choice(n, spec["size"], replace=False))


def _refit_batch(template, X, y, w, y_enc, Xq, yq, spec, tasks):
    """Refit on the rows of each task; losses on the left-out / training / query rows.

    Returns one dict per task: ``train`` (loss at the dropped row, or at every training
    row), ``query`` (loss per query row, or summed), ``model`` (when kept), ``error``.
    """
    obj, lk = spec["objective"], spec["loss_kw"]
    out = []
    with threadpool_limits(limits=1):
        for task in tasks:
            res = {"task": task, "error": None}
            try:
                rows = _task_rows(spec, task)
                model = _fit_model(
                    clone(template),
                    _safe_indexing(X, rows),
                    y[rows],
                    None if w is None else w[rows],
                )
                if spec["train_eval"] == "dropped":
                    res["train"] = model_loss(
                        model, _safe_indexing(X, [task]), y_enc[[task]], obj, **lk
                    )
                elif spec["train_eval"] == "all":
                    res["train"] = model_loss(model, X, y_enc, obj, **lk)
                if "train" in res:
                    _check_finite(res["train"], "training")
                if Xq is not None:
                    Lq = model_loss(model, Xq, yq, spec["query_objective"], **lk)
                    _check_finite(Lq, "query")
                    res["query"] = _reduce(Lq, spec["query_reduce"])
                if spec["keep"]:
                    res["model"] = model
            except Exception as exc:  # reported by the caller, never a silent NaN
                res["error"] = f"{type(exc).__name__}: {exc}"
            out.append(res)
    return out


def _relabel_batch(template, X, y, w, y_enc, Xq, yq, spec, tasks):
    """Refit on every row with one row relabelled, per task ``(row, new label)``;
    returns one dict per task: ``query`` (loss per query row), ``error``."""
    lk = spec["loss_kw"]
    out = []
    with threadpool_limits(limits=1):
        for task, label in tasks:
            res = {"task": task, "error": None}
            try:
                y_new = np.array(y, copy=True)
                y_new[task] = label
                model = _fit_model(clone(template), X, y_new, w)
                Lq = model_loss(model, Xq, yq, spec["query_objective"], **lk)
                _check_finite(Lq, "query")
                res["query"] = Lq
            except Exception as exc:  # reported by the caller, never a silent NaN
                res["error"] = f"{type(exc).__name__}: {exc}"
            out.append(res)
    return out


def _relabelled_rows(spec, task, rows):
    """The edited rows of subset ``task`` (its ``rows``) that take their new label: each
    with probability ``relabel_frac``, drawn from the task's seed."""
    u = np.random.default_rng([task, 2]).random(spec["n"])
    return rows[(u[rows] < spec["relabel_frac"]) & spec["edited"][rows]]


class _ConstantModel:
    """The regression model of a prefix whose rows all have one target: it predicts
    that target (some libraries, e.g. CatBoost, refuse to fit such rows)."""

    def __init__(self, value):
        self.value = float(value)

    def predict(self, X):
        return np.full(_num_samples(X), self.value)


def _fit_rows(template, X, labels, w, rows, spec):
    """``clone(template)`` fitted on ``rows`` with ``labels``; a regression fit that
    fails on rows with one target (of positive weight) is the constant model."""
    yr, wr = labels[rows], None if w is None else w[rows]
    try:
        return _fit_model(clone(template), _safe_indexing(X, rows), yr, wr)
    except Exception:
        kept = yr if wr is None else yr[np.asarray(wr) > 0]
        if is_regression(spec["objective"]) and len(kept) and np.all(kept == kept[0]):
            return _ConstantModel(kept[0])
        raise


def _query_loss(template, X, labels, w, rows, Xq, yq, spec):
    """Query losses of ``clone(template)`` fit on ``rows`` with ``labels``."""
    model = _fit_rows(template, X, labels, w, rows, spec)
    Lq = model_loss(model, Xq, yq, spec["query_objective"], **spec["loss_kw"])
    _check_finite(Lq, "query")
    return Lq


def _subset_relabel_batch(template, X, y, w, y_enc, Xq, yq, spec, tasks):
    """Per subset seed: the query-loss change ``(m,)`` when its relabelled rows take
    their new labels (0 without refit when none does); ``error`` as in
    :func:`_refit_batch`."""
    out = []
    with threadpool_limits(limits=1):
        for task in tasks:
            res = {"task": task, "error": None, "query": np.zeros(len(yq))}
            try:
                rows = _task_rows(spec, task)
                moved = _relabelled_rows(spec, task, rows)
                if len(moved):
                    y_new = np.array(y, copy=True)
                    y_new[moved] = spec["new_labels"][moved]
                    res["query"] = _query_loss(
                        template, X, y_new, w, rows, Xq, yq, spec
                    ) - _query_loss(template, X, y, w, rows, Xq, yq, spec)
            except Exception as exc:  # reported by the caller, never a silent NaN
                res["error"] = f"{type(exc).__name__}: {exc}"
            out.append(res)
    return out


def _tmc_relabel_batch(template, X, y, w, y_enc, Xq, yq, spec, iterations):
    """Per permutation: its first ``n_prefix`` rows and, at the position of each edited
    row, the query-loss change ``(n_prefix, m)`` when that row enters the prefix with
    its new label instead of its label (an invalid prefix: the uninformed loss)."""
    n, P, K = spec["n"], spec["n_prefix"], spec["n_classes"]
    new_y, new_enc, edited = spec["new_labels"], spec["new_enc"], spec["edited"]
    out = []
    with threadpool_limits(limits=1):
        q0 = model_loss(None, Xq, yq, spec["query_objective"], **spec["loss_kw"])
        for it in iterations:
            perm = np.random.default_rng(spec["seed"] + it).permutation(n)[:P]
            counts = np.zeros(max(K, 1), dtype=np.int64)
            marg, n_pos = np.zeros((P, len(yq))), 0
            for k in range(1, P + 1):
                added = perm[k - 1]
                positive = w is None or w[added] > 0
                n_pos += positive
                if K and positive:
                    counts[int(y_enc[added])] += 1
                if not edited[added]:
                    continue
                moved = counts.copy()
                if K and positive:
                    moved[int(y_enc[added])] -= 1
                    moved[int(new_enc[added])] += 1
                y_new = np.array(y, copy=True)
                y_new[added] = new_y[added]
                rows = perm[:k]
                try:
                    before, after = (
                        _query_loss(template, X, lab, w, rows, Xq, yq, spec)
                        if _prefix_valid(spec, n_pos, c)
                        else q0
                        for lab, c in ((y, counts), (y_new, moved))
                    )
                except Exception as exc:
                    raise RuntimeError(
                        f"DataShapley: a refit on the first {k} rows of permutation {it} "
                        f"(row {added} relabelled or not) failed: {type(exc).__name__}: {exc}"
                    ) from exc
                marg[k - 1] = after - before
            out.append((perm, marg))
    return out


def _prefix_valid(spec, n_rows, counts):
    """At least 2 rows (regression) or every class (classification), counting only rows
    of positive weight."""
    if is_regression(spec["objective"]):
        return n_rows >= 2
    return bool(np.all(counts > 0))


def _tmc_batch(template, X, y, w, y_enc, Xq, yq, spec, iterations):
    """Truncated Monte-Carlo permutations: refit on each prefix of each permutation.

    Returns, per permutation: the first ``n_prefix`` rows of the permutation, the
    marginal of each row on its own loss (``self``), the marginals on the queries
    ``(n_prefix, m)`` and the prefix models (when kept; ``None`` before validity).
    """
    n, P, K = spec["n"], spec["n_prefix"], spec["n_classes"]
    obj, classes, qobj = spec["objective"], spec["classes"], spec.get("query_objective")
    lk = spec["loss_kw"]
    L0 = uninformed_loss(obj, classes)
    out = []
    with threadpool_limits(limits=1):
        for it in iterations:
            perm = np.random.default_rng(spec["seed"] + it).permutation(n)[:P]
            counts = np.zeros(max(K, 1), dtype=np.int64)
            self_marg = np.zeros(P) if spec["self"] else None
            q_loss = None
            if Xq is not None:
                q0 = _reduce(model_loss(None, Xq, yq, qobj, **lk), spec["query_reduce"])
                q_loss = np.empty((P + 1, len(q0)))
                q_loss[0] = q0
            models = [] if spec["keep"] else None
            prev_next = L0  # loss of the previous prefix model at the row added next
            model, n_pos = None, 0
            for k in range(1, P + 1):
                added = perm[k - 1]
                if w is None or w[added] > 0:
                    n_pos += 1
                    if K:
                        counts[int(y_enc[added])] += 1
                rows = perm[:k]
                if model is not None or _prefix_valid(spec, n_pos, counts):
                    try:
                        model = _fit_rows(template, X, y, w, rows, spec)
                        if self_marg is not None:
                            pair = perm[k - 1 : k + 1]
                            Ls = model_loss(model, _safe_indexing(X, pair), y_enc[pair], obj, **lk)
                            _check_finite(Ls, "training")
                            self_marg[k - 1] = prev_next - Ls[0]
                            prev_next = Ls[1] if len(Ls) > 1 else L0
                        if q_loss is not None:
                            Lq = model_loss(model, Xq, yq, qobj, **lk)
                            _check_finite(Lq, "query")
                            q_loss[k] = _reduce(Lq, spec["query_reduce"])
                    except Exception as exc:
                        raise RuntimeError(
                            f"DataShapley: the refit on the first {k} rows of permutation "
                            f"{it} (seed {spec['seed'] + it}; rows {rows.tolist()[:20]}"
                            f"{' ...' if k > 20 else ''}) failed: {type(exc).__name__}: "
                            f"{exc}"
                        ) from exc
                else:  # not valid yet: the uninformed model, marginal 0
                    if q_loss is not None:
                        q_loss[k] = q_loss[0]
                if models is not None:
                    models.append(model)
            q_marg = None if q_loss is None else q_loss[:-1] - q_loss[1:]
            out.append((perm, self_marg, q_marg, models))
    return out


def _tmc_from_models(models, perm, Xq, yq, qobj, reduce, lk):
    """Query marginals of one permutation from its kept prefix models."""
    q0 = _reduce(model_loss(None, Xq, yq, qobj, **lk), reduce)
    q_loss = np.empty((len(models) + 1, len(q0)))
    q_loss[0] = q0
    for k, model in enumerate(models, start=1):
        q_loss[k] = q0 if model is None else _reduce(model_loss(model, Xq, yq, qobj, **lk), reduce)
    return q_loss[:-1] - q_loss[1:]


def _eval_models_batch(models, Xq, yq, qobj, reduce, lk):
    with threadpool_limits(limits=1):
        return [_reduce(model_loss(m, Xq, yq, qobj, **lk), reduce) for m in models]


# ------------------------------------------------------------------------ base class
class _Queries:
    """The queries of one call (the context of the retraining methods' hooks).

    The influence matrix is evaluated lazily: without kept models every query of the
    call is answered by one round of refits, whatever the blocks; with kept models each
    block costs predictions only.

    Parameters
    ----------
    owner : _RetrainInfluence
        The fitted explainer, whose ``_query_matrix`` computes the values.
    X : array-like of shape (m, n_features)
        The queries as given (validated).
    y : ndarray of shape (m,)
        Their encoded labels (zeros for label-free regression).
    objective : str
        The query objective (``"value"``: the predicted value).
    """

    def __init__(self, owner, X, y, objective):
        self.owner, self.X, self.y, self.objective = owner, X, y, objective
        self._matrix = None

    def block(self, rows):
        """The ``(len(rows), n_train)`` influence of the queries ``rows``."""
        if self.owner.models_ is not None:  # predictions only, block by block
            return self.owner._query_matrix(
                _safe_indexing(self.X, rows), self.y[rows], self.objective
            )
        if self._matrix is None:  # refit once for every query of the call
            self._matrix = self.owner._query_matrix(self.X, self.y, self.objective)
        return self._matrix[rows]

    def total(self):
        """The ``(n_train,)`` influence summed over all queries of the call."""
        return self.owner._query_matrix(self.X, self.y, self.objective, reduce="sum")[0]


class _RetrainInfluence(BaseInfluence):
    """Shared machinery of the retraining methods (not public).

    A subclass implements ``_fit_influence`` (setting ``_self``, the self-influence,
    and ``models_``, the kept models or ``None``) and
    ``_query_matrix(self, Xq, yq, objective, reduce="rows") -> ndarray``: the
    ``(m, n_train)`` influence on the queries, or with ``reduce="sum"`` its
    ``(1, n_train)`` column sums. The query hooks of :class:`BaseInfluence` pass the
    queries as a :class:`_Queries` context, with the query row indices as the only
    per-query array.
    """

    _accepts_forests = True
    # refits redo the whole training procedure on the rows given, including any
    # validation split the library draws from them
    _explains_trained_rows = False

    def __init__(
        self,
        estimator=None,
        *,
        keep_models="auto",
        dtype=np.float64,
        chunk_memory_mb=256,
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            estimator, dtype=dtype, chunk_memory_mb=chunk_memory_mb, n_jobs=n_jobs, verbose=verbose
        )
        self.keep_models = keep_models

    # ----------------------------------------------------------------- helpers
    def _setup(self, X, y_enc, sample_weight):
        self._template = refit_template(self.estimator_)
        ens = self.ensemble_
        self._objective = ens.objective
        self._classes = getattr(self, "classes_", None)
        # how model_loss scores a refit model (the objective's parameter and link)
        self._loss_kw = {
            "classes": self._classes,
            "param": ens.objective_param,
            "link": None if ens.objective == "squared_error" or ens.predicts_raw else ens.objective,
        }
        if ens.is_regression:
            self._y_fit = np.asarray(y_enc, dtype=np.float64)
        else:
            self._y_fit = np.asarray(self._classes)[np.asarray(y_enc).astype(np.intp)]
        self._X = X
        self._y_enc = np.asarray(y_enc, dtype=np.float64)
        self._w = None if sample_weight is None else np.asarray(sample_weight, float)

    def _decide_keep(self, n_models):
        keep = self.keep_models
        if keep == "auto":
            try:
                size = len(pickle.dumps(self.estimator_, protocol=pickle.HIGHEST_PROTOCOL))
            except Exception:  # unpicklable model: do not keep
                return False
            return n_models * size <= MODEL_MEMORY_BUDGET
        if not isinstance(keep, (bool, np.bool_)):
            raise ValueError(f"keep_models must be True, False or 'auto', got {keep!r}")
        return bool(keep)

    def _spec(self, **kw):
        spec = {
            "n": self.n_train_,
            "objective": self._objective,
            "classes": self._classes,
            "n_classes": 0 if self._classes is None else len(self._classes),
            "loss_kw": self._loss_kw,
        }
        spec.update(kw)
        return spec

    def _run(self, func, spec, tasks, Xq=None, yq=None, desc="refits"):
        """Dispatch ``func`` over batches of tasks; yields the results in task order."""
        batches = split_batches(list(tasks), self.n_jobs)
        # the same objects in every call: scattered / memory-mapped once per Parallel call
        X, y, w, y_enc, template = self._X, self._y_fit, self._w, self._y_enc, self._template
        gen = Parallel(n_jobs=self.n_jobs, return_as="generator")(
            delayed(func)(template, X, y, w, y_enc, Xq, yq, spec, b) for b in batches
        )
        for out in _progress(gen, len(batches), self.verbose, desc):
            yield from out

    def _eval_models(self, models, Xq, yq, objective, reduce):
        """Losses of the kept models on queries, in threads (no model is shipped)."""
        n = len(models)
        batches = split_batches(models, self.n_jobs)
        res = Parallel(n_jobs=self.n_jobs, backend="threading")(
            delayed(_eval_models_batch)(b, Xq, yq, objective, reduce, self._loss_kw)
            for b in batches
        )
        return np.array([r for part in res for r in part]).reshape(n, -1)

    def _label_edit_state(self, targets):
        targets = np.asarray(targets, dtype=np.float64)
        labels = targets if self._classes is None else self._classes[targets.astype(np.intp)]
        return {"enc": targets, "labels": labels, "edited": targets != self._y_enc, "matrix": None}

    def _label_edit_block(self, q, context, state):
        # every query of the call at once: one round of refits, whatever the blocks
        if state["matrix"] is None:
            m = len(context.y)
            if not state["edited"].any():
                state["matrix"] = np.zeros((m, self.n_train_))
            else:
                state["matrix"] = self._edit_matrix(context, state)
        return state["matrix"][q["rows"]]

    def _query_arrays(self, X, leaves, y_enc, objective):
        return {"rows": np.arange(X.shape[0])}

    def _query_context(self, X, y_enc, objective):
        y = np.zeros(X.shape[0]) if y_enc is None else np.asarray(y_enc, dtype=np.float64)
        return _Queries(self, X, y, objective)

    def _influence_block(self, q, context):
        return context.block(q["rows"])

    def _global_from_queries(self, q, m, context):
        return context.total()

    def _self_influence(self):
        return self._self.copy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.estimator is not None:
            # refits feed X to the model itself: NaN only where the model takes it
            try:
                tags.input_tags.allow_nan = get_tags(self.estimator).input_tags.allow_nan
            except Exception:  # a model without tags (refused at fit if it cannot refit)
                pass
        return tags


def _check_int(name, value, low):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


_SHARED_PARAMS = """    keep_models : bool or "auto", default="auto"
        Keep the refit models after ``fit``, so that queries cost predictions only.
        ``False``: keep nothing and refit for every query call (``transform``,
        ``top_k``, ``global_influence``; each call refits once for all its queries,
        not once per block). ``"auto"``: keep them when the number of models times the
        pickled size of the explained model is at most 1 GiB. Results do not depend on
        it.
    dtype, chunk_memory_mb
        See :class:`~skinfluence.base.BaseInfluence`.
    n_jobs : int, default=None
        Number of refits run at once through :class:`joblib.Parallel` (None: 1 unless
        in a :func:`joblib.parallel_config` context; -1: all cores). Any joblib
        backend works, e.g. ``joblib.parallel_config(backend="dask")`` with a
        ``dask.distributed.Client`` to refit on a cluster. Each refit runs with the
        model's own thread count set to 1 (``n_jobs``, ``nthread``, ``thread_count``
        and OpenMP/BLAS pools). Results do not depend on ``n_jobs`` or the backend.
    verbose : int, default=0
        Show a progress bar over the refits (needs ``tqdm``)."""


# ----------------------------------------------------------------------------- LOO
class LOO(_RetrainInfluence):
    __doc__ = f"""Leave-one-out influence: refit the model without each training row.

    ``I(i, e) = L(y_e, f_{{-i}}(x_e)) - L(y_e, f(x_e))`` where ``f`` is the explained
    model and ``f_{{-i}}`` is ``clone(f)`` (same hyperparameters and seed) refit on the
    training rows without ``i`` (with their sample weights). The trees may change
    completely, so LOO mixes the effect of the row with structural noise; it is exact
    ground truth for "what happens if I drop this row" and works for every supported
    model, random forests included.

    Parameters
    ----------
    estimator : object, default=None
        A supported model (LightGBM, XGBoost, CatBoost or scikit-learn gradient
        boosting, random forest or extra trees; fitted, ``FrozenEstimator``,
        ``Pipeline``, or unfitted and fitted in ``fit``). Raw Boosters cannot be
        refit: pass the scikit-learn wrapper.
{_SHARED_PARAMS}

    Attributes
    ----------
    estimator_ : object
        The model explained.
    ensemble_ : TreeEnsemble
        Its framework-neutral view (used for validation only).
    classes_ : ndarray
        Class labels (classifiers).
    n_train_ : int
        Number of training rows.
    models_ : list of N fitted models or None
        ``models_[i]`` is the refit without row ``i`` (``None`` when not kept).
    n_refits_ : int
        Refits done by ``fit`` (N).
    n_features_in_ : int
    feature_names_in_ : ndarray

    Notes
    -----
    Cost in retrains: ``fit`` refits N models and evaluates each one on the row it left
    out, which gives ``self_influence()`` with no further refit. With the models kept,
    ``transform``, ``top_k`` and ``global_influence`` cost N predictions of the query
    rows (no refit); without them, N refits per call (all queries of the call at
    once). Memory: the N models when kept (about N times the pickled size of the
    model), else nothing but a reference to the training data; ``transform`` without
    kept models holds its ``n_query x n_train`` result.

    A refit that fails (e.g. removing the only row of a class leaves a single class)
    raises a ``RuntimeError`` that names the row. A class missing from a refit gets
    probability 0 (clipped to 1e-5).

    Sign: positive = helpful (removing the row would raise the query's loss). Without
    query labels, classifiers use the explained model's predicted labels and
    regressors the prediction itself, or its raw score under a log or logit link
    (positive = removing the row lowers it).

    References
    ----------
    .. [1] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023.
    .. [2] R. D. Cook. Detection of Influential Observation in Linear Regression.
       Technometrics 19(1), 1977.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import GradientBoostingRegressor
    >>> from skinfluence import LOO
    >>> X, y = load_diabetes(return_X_y=True)
    >>> X, y = X[:30], y[:30]
    >>> model = GradientBoostingRegressor(n_estimators=5, random_state=0).fit(X, y)
    >>> explainer = LOO(model).fit(X, y)
    >>> explainer.transform(X[:2], y[:2]).shape
    (2, 30)
    >>> explainer.self_influence().shape
    (30,)
    """

    def _fit_influence(self, X, leaves, y_enc, sample_weight):
        self._setup(X, y_enc, sample_weight)
        n = self.n_train_
        if n < 2:
            raise ValueError(f"LOO needs at least 2 training rows, got n_samples={n}")
        keep = self._decide_keep(n)
        spec = self._spec(kind="drop", train_eval="dropped", keep=keep)
        base = model_loss(self.estimator_, X, self._y_enc, self._objective, **self._loss_kw)
        own = np.empty(n)
        models = [] if keep else None
        for res in self._run(_refit_batch, spec, range(n), desc="LOO refits"):
            i = res["task"]
            if res["error"] is not None:
                raise RuntimeError(
                    f"LOO: the refit without training row {i} failed: {res['error']}"
                )
            own[i] = res["train"][0]
            if keep:
                models.append(res["model"])
        self._self = own - base
        self.models_ = models
        self.n_refits_ = n

    def _label_edit_state(self, targets):
        return np.asarray(targets, dtype=np.float64)

    def _label_edit_block(self, q, context, targets):
        # one refit per edited row, on every row with that row relabelled
        Xq, yq = _safe_indexing(context.X, q["rows"]), context.y[q["rows"]]
        base = model_loss(self.estimator_, Xq, yq, context.objective, **self._loss_kw)
        out = np.zeros((len(base), self.n_train_))
        edited = np.flatnonzero(targets != self._y_enc)
        labels = targets if self._classes is None else self._classes[targets.astype(np.intp)]
        spec = self._spec(query_objective=context.objective)
        tasks = [(int(i), labels[i]) for i in edited]
        for res in self._run(_relabel_batch, spec, tasks, Xq, yq, desc="relabelled refits"):
            if res["error"] is not None:
                raise RuntimeError(
                    f"LOO: the refit with training row {res['task']} relabelled failed: "
                    f"{res['error']}"
                )
            out[:, res["task"]] = res["query"] - base
        return out

    def _query_matrix(self, Xq, yq, objective, reduce="rows"):
        base = _reduce(model_loss(self.estimator_, Xq, yq, objective, **self._loss_kw), reduce)
        if self.models_ is not None:
            L = self._eval_models(self.models_, Xq, yq, objective, reduce)
        else:
            spec = self._spec(
                kind="drop",
                train_eval="none",
                keep=False,
                query_objective=objective,
                query_reduce=reduce,
            )
            L = np.empty((self.n_train_, len(base)))
            for res in self._run(
                _refit_batch, spec, range(self.n_train_), Xq, yq, desc="LOO refits"
            ):
                if res["error"] is not None:
                    raise RuntimeError(
                        f"LOO: the refit without training row {res['task']} failed: {res['error']}"
                    )
                L[res["task"]] = res["query"]
        return (L - base).T


# ----------------------------------------------------------------------- SubSample
class SubSample(_RetrainInfluence):
    __doc__ = f"""Subsampling influence (Feldman and Zhang; a data-Shapley estimate).

    Train ``n_iter`` models on uniform random subsets of ``floor(sub_frac * N)`` rows
    drawn without replacement (subset ``t`` from the seed ``random_state + t``). For a
    query ``e``, with ``in_i`` the models whose subset contains ``i`` and ``out_i`` the
    others::

        I(i, e) = mean_{{m in out_i}} L_e(m) - mean_{{m in in_i}} L_e(m)

    an unbiased estimate of the expected loss change when ``i`` joins a random subset
    of that size. A row never in, or never out, of a successful subset gets 0 and a
    warning.

    Parameters
    ----------
    estimator : object, default=None
        A supported model (see :class:`LOO`).
    n_iter : int, default=4000
        Number of subset models.
    sub_frac : float, default=0.7
        Fraction of the training rows in each subset (in (0, 1)).
    relabel_frac : float, default=0.1
        For :meth:`label_edit` only: the probability that an edited row of a subset
        takes its new label in that subset's relabelled refit (in (0, 1)).
    random_state : int, RandomState or None, default=1
        Seed of the subsets (an int ``s`` gives subset ``t`` the seed ``s + t``).
{_SHARED_PARAMS}

    Attributes
    ----------
    estimator_, ensemble_, classes_, n_train_, n_features_in_, feature_names_in_
        As in :class:`LOO`.
    subset_masks_ : ndarray of shape (n_models, n_train), bool
        Membership of each training row in the subset of each successful model.
    models_ : list of fitted models or None
        The successful subset models (``None`` when not kept).
    n_failed_fits_ : int
        Subsets whose refit failed (e.g. a single class); they are skipped, counted
        here and reported by a warning. All failing raises an error.
    failed_iterations_ : ndarray of int
        The iterations ``t`` of the failed subsets.
    in_counts_, out_counts_ : ndarray of shape (n_train,), int
        Number of successful models with / without each row.

    Notes
    -----
    Cost in retrains: ``fit`` refits ``n_iter`` models and evaluates each on all N
    training rows, which gives ``self_influence()`` with no further refit
    (``n_iter * N`` predictions). With the models kept, each query call costs
    ``n_iter`` predictions of the queries; without them, ``n_iter`` refits per call
    (all queries at once). Memory: ``subset_masks_`` (``n_iter * N`` bytes), the kept
    models (about ``n_iter`` times the pickled model), and two ``(block, N)``
    accumulators per query block.

    ``label_edit`` compares relabelled with unrelabelled subsets rather than refitting
    once per edited row (that is :class:`LOO`'s form): every successful subset is refit
    with each of its edited rows taking its new label with probability
    ``relabel_frac`` (seeded by the subset), and paired with the subset's refit with
    its labels. For row ``i``, the mean query-loss change over the subsets where ``i``
    was relabelled minus that over the subsets where ``i`` was in with its label: an
    unbiased estimate of the expected change when ``i`` is relabelled in a random
    subset in which each other edited row is relabelled with probability
    ``relabel_frac`` (only row ``i`` edited: exactly its own relabelling). Cost:
    ``2 n_iter`` refits per call (subsets with no relabelled row are skipped); checked
    against a replay by ``clone(model).fit`` to 1e-10.

    Reference deviation: the reference divided every value by the number of queries and
    stopped after five fits (:ref:`methods-reference-deviations`).

    References
    ----------
    .. [1] V. Feldman and C. Zhang. What Neural Networks Memorize and Why: Discovering
       the Long Tail via Influence Estimation. NeurIPS 2020.
    .. [2] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import GradientBoostingRegressor
    >>> from skinfluence import SubSample
    >>> X, y = load_diabetes(return_X_y=True)
    >>> X, y = X[:30], y[:30]
    >>> model = GradientBoostingRegressor(n_estimators=5, random_state=0).fit(X, y)
    >>> explainer = SubSample(model, n_iter=40, sub_frac=0.5).fit(X, y)
    >>> explainer.transform(X[:2], y[:2]).shape
    (2, 30)
    >>> explainer.subset_masks_.shape
    (40, 30)
    """

    def __init__(
        self,
        estimator=None,
        *,
        n_iter=4000,
        sub_frac=0.7,
        relabel_frac=0.1,
        random_state=1,
        keep_models="auto",
        dtype=np.float64,
        chunk_memory_mb=256,
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            estimator,
            keep_models=keep_models,
            dtype=dtype,
            chunk_memory_mb=chunk_memory_mb,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        self.n_iter = n_iter
        self.sub_frac = sub_frac
        self.relabel_frac = relabel_frac
        self.random_state = random_state

    def _fit_influence(self, X, leaves, y_enc, sample_weight):
        n_iter = _check_int("n_iter", self.n_iter, 1)
        if not (isinstance(self.sub_frac, numbers.Real) and 0 < self.sub_frac < 1):
            raise ValueError(f"sub_frac must be in (0, 1), got {self.sub_frac!r}")
        self._setup(X, y_enc, sample_weight)
        n = self.n_train_
        size = int(np.floor(self.sub_frac * n))
        if size < 1:
            raise ValueError(
                f"sub_frac={self.sub_frac} puts no row in a subset of n_samples={n} rows"
            )
        seed = base_seed(self.random_state)
        keep = self._decide_keep(n_iter)
        self._sub_spec = self._spec(kind="subset", size=size, keep=keep)
        spec = dict(self._sub_spec, train_eval="all")
        in_sum, out_sum = np.zeros(n), np.zeros(n)
        masks, models, tasks, failed, first_err = [], [] if keep else None, [], [], None
        for res in self._run(
            _refit_batch, spec, [seed + t for t in range(n_iter)], desc="SubSample refits"
        ):
            t = res["task"] - seed
            if res["error"] is not None:
                failed.append(t)
                first_err = first_err or res["error"]
                continue
            mask = np.zeros(n, dtype=bool)
            mask[_task_rows(spec, res["task"])] = True
            L = res["train"]
            in_sum += np.where(mask, L, 0.0)
            out_sum += np.where(mask, 0.0, L)
            masks.append(mask)
            tasks.append(res["task"])
            if keep:
                models.append(res["model"])
        self.n_failed_fits_ = len(failed)
        self.failed_iterations_ = np.asarray(failed, dtype=np.int64)
        if not masks:
            raise RuntimeError(
                f"SubSample: every one of the {n_iter} subset refits "
                f"failed; the first error: {first_err}"
            )
        if failed:
            warnings.warn(
                f"SubSample: {len(failed)} of {n_iter} subset refits failed and were "
                f"skipped (iterations {failed[:10]}{' ...' if len(failed) > 10 else ''}); "
                f"first error: {first_err}",
                UserWarning,
                stacklevel=3,
            )
        self.subset_masks_ = np.array(masks)
        self._tasks = np.asarray(tasks, dtype=np.int64)
        self.models_ = models
        self.in_counts_ = self.subset_masks_.sum(axis=0)
        self.out_counts_ = len(masks) - self.in_counts_
        bad = (self.in_counts_ == 0) | (self.out_counts_ == 0)
        if bad.any():
            warnings.warn(
                f"SubSample: {int(bad.sum())} training row(s) were never in, or never out "
                f"of, a successful subset (e.g. rows {np.flatnonzero(bad)[:10].tolist()}); "
                "their influence is 0. Increase n_iter or move sub_frac away from 0 and 1.",
                UserWarning,
                stacklevel=3,
            )
        self._self = self._in_out(in_sum[None], out_sum[None])[0]

    def _edit_matrix(self, context, state):
        """Label edits: every successful subset refit again with each of its edited rows
        relabelled with probability ``relabel_frac``; per row, the mean query-loss
        change over the subsets where it was relabelled minus that over the subsets
        where it was in and kept its label."""
        frac = self.relabel_frac
        if not (isinstance(frac, numbers.Real) and 0 < frac < 1):
            raise ValueError(f"relabel_frac must be in (0, 1), got {frac!r}")
        spec = dict(
            self._sub_spec,
            keep=False,
            query_objective=context.objective,
            new_labels=state["labels"],
            edited=state["edited"],
            relabel_frac=float(frac),
        )
        tasks = self._tasks.tolist()
        D = np.empty((len(tasks), len(context.y)))
        moved = np.zeros(self.subset_masks_.shape, dtype=bool)
        for t, res in enumerate(
            self._run(
                _subset_relabel_batch, spec, tasks, context.X, context.y, "SubSample relabelled"
            )
        ):
            if res["error"] is not None:
                raise RuntimeError(
                    f"SubSample: the relabelled refit of subset seed {res['task']} failed: "
                    f"{res['error']}"
                )
            D[t] = res["query"]
            moved[t, _relabelled_rows(spec, tasks[t], _task_rows(spec, tasks[t]))] = True
        kept = self.subset_masks_ & ~moved & state["edited"]
        n_moved, n_kept = moved.sum(axis=0), kept.sum(axis=0)
        ok = (n_moved > 0) & (n_kept > 0)
        bad = state["edited"] & ~ok
        if bad.any():
            warnings.warn(
                f"SubSample: {int(bad.sum())} edited row(s) were never relabelled, or "
                "never in a subset with their label (e.g. rows "
                f"{np.flatnonzero(bad)[:10].tolist()}); their label-edit value is 0. "
                "Increase n_iter or move relabel_frac away from 0 and 1.",
                UserWarning,
                stacklevel=4,
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            val = (D.T @ moved) / n_moved - (D.T @ kept) / n_kept
        return np.where(ok, val, 0.0)

    def _in_out(self, in_sum, out_sum):
        cin, cout = self.in_counts_, self.out_counts_
        with np.errstate(divide="ignore", invalid="ignore"):
            val = out_sum / cout - in_sum / cin
        return np.where((cin > 0) & (cout > 0), val, 0.0)

    def _query_matrix(self, Xq, yq, objective, reduce="rows"):
        if self.models_ is not None:
            L = self._eval_models(self.models_, Xq, yq, objective, reduce)
        else:
            spec = dict(
                self._sub_spec,
                train_eval="none",
                keep=False,
                query_objective=objective,
                query_reduce=reduce,
            )
            parts = []
            for res in self._run(
                _refit_batch, spec, self._tasks.tolist(), Xq, yq, desc="SubSample refits"
            ):
                if res["error"] is not None:  # deterministic refits: cannot happen
                    raise RuntimeError(
                        f"SubSample: a refit that succeeded in fit failed: {res['error']}"
                    )
                parts.append(res["query"])
            L = np.array(parts)
        S = self.subset_masks_.astype(np.float64)
        in_sum = L.T @ S
        out_sum = L.sum(axis=0)[:, None] - in_sum
        return self._in_out(in_sum, out_sum)


# --------------------------------------------------------------------- DataShapley
class DataShapley(_RetrainInfluence):
    __doc__ = f"""Data Shapley values by truncated Monte-Carlo permutations (TMC-Shapley).

    For a permutation of the training rows, rows are added one at a time and the model
    is refit on each prefix; the marginal of the added row is (loss of the previous
    prefix model) - (loss of the new one). Only the first ``ceil(trunc_frac * N)``
    rows of each permutation are added (hard truncation; later rows get marginal 0 but
    count in the mean). No refit happens until the prefix is valid (at least 2 rows for
    regression, every class for classification); until then the loss is the
    "uninformed" loss (0 for regression, ln 2 binary, ln K multiclass), so the rows
    before validity get 0 and the row that makes the prefix valid gets the whole first
    gain. A regression prefix whose rows all have one target and that the library
    refuses to fit (CatBoost) is the model predicting that target. ``I(i, e)`` is the
    mean marginal over the permutations; permutation ``t`` uses the seed
    ``random_state + t``.

    Because the queries are not known at ``fit``, the convergence rule runs at ``fit``
    on the self-influence vector (the marginal of each row on its own loss, see the
    Methods page): permutations run in batches of ``check_every``; after each batch the error is
    the largest, over the running means of the batch, of the mean over rows of
    ``|v_i - v_i^last| / (|v_i^last| + 1e-12)``; it stops when the error is below
    ``tol`` or after ``max_iter`` permutations (``ConvergenceWarning``). Every query
    then uses the same ``n_permutations_`` permutations, so a query's values depend on
    that query only and ``transform(X_train, y_train)`` has ``self_influence()`` as its
    diagonal. With ``trunc_frac=1`` the values of each query sum exactly to
    (uninformed loss) - (loss of the refit on all rows) (efficiency).

    Parameters
    ----------
    estimator : object, default=None
        A supported model (see :class:`LOO`).
    trunc_frac : float, default=0.25
        Fraction of each permutation that is added (in (0, 1]).
    check_every : int, default=100
        Permutations per batch between convergence checks.
    tol : float, default=0.1
        Convergence threshold of the relative error.
    max_iter : int, default=1000
        Maximum number of permutations.
    random_state : int, RandomState or None, default=1
        Seed of the permutations.
{_SHARED_PARAMS}

    Attributes
    ----------
    estimator_, ensemble_, classes_, n_train_, n_features_in_, feature_names_in_
        As in :class:`LOO`.
    n_permutations_ : int
        Permutations used (for ``self_influence`` and every query).
    n_iter_ : int
        Same as ``n_permutations_`` (the scikit-learn name).
    converged_ : bool
        Whether the convergence rule was met before ``max_iter``.
    convergence_error_ : float
        The error at the last check.
    stderr_ : ndarray of shape (n_train,)
        Standard error of each row's self-influence (sample standard deviation of its
        marginals over the permutations divided by the square root of
        ``n_permutations_``; ``inf`` with a single permutation).
        :meth:`transform_with_stderr` gives those of any query.
    models_ : list or None
        Per permutation, its prefix models (``None`` for invalid prefixes), when kept.

    Notes
    -----
    Cost in retrains: ``fit`` refits ``n_permutations_ * ceil(trunc_frac * N)`` models
    (at most ``max_iter`` times that) and evaluates each on two training rows, which
    gives ``self_influence()`` and ``stderr_`` with no further refit. With the models
    kept, a query call costs that many predictions; without them, that many refits
    per call (all queries at once; ``global_influence`` evaluates the summed loss). A
    failed refit of a valid prefix raises a ``RuntimeError`` naming the permutation
    and the prefix. Memory: ``check_every * N`` marginals during ``fit``; per query
    call two ``(n_query, N)`` accumulators (values and squares); the kept models
    (``"auto"`` keeps them only when ``max_iter * ceil(trunc_frac * N)`` models fit in
    1 GiB).

    ``label_edit``: along the same ``n_permutations_`` permutations, at the position of
    each edited row, the prefix with the row is refit with and without its new label
    (an invalid prefix has the uninformed loss); the value is the mean over the
    permutations of the query-loss change (0 where the row lies beyond the truncation).
    This is the row's Shapley value with its label minus its Shapley value with the
    new label, the other rows' labels fixed (checked: equal to ``DataShapley`` on the
    original rows minus ``DataShapley`` on the rows with ``i`` relabelled, to 1e-10).
    Cost: two refits per (permutation, edited row in its truncated prefix), at most
    ``2 n_permutations_ ceil(trunc_frac N)`` per call.

    Deviation: the reference implementation freezes each query column by its own convergence; here
    the number of permutations is fixed at ``fit`` (queries are unknown then), which
    keeps query rows independent and the results reproducible; use
    :meth:`transform_with_stderr` to see the precision of each value.

    References
    ----------
    .. [1] A. Ghorbani and J. Zou. Data Shapley: Equitable Valuation of Data for
       Machine Learning. ICML 2019.
    .. [2] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.ensemble import GradientBoostingRegressor
    >>> from skinfluence import DataShapley
    >>> X, y = load_diabetes(return_X_y=True)
    >>> X, y = X[:20], y[:20]
    >>> model = GradientBoostingRegressor(n_estimators=5, random_state=0).fit(X, y)
    >>> explainer = DataShapley(model, check_every=5, max_iter=10).fit(X, y)
    >>> explainer.n_permutations_ <= 10
    True
    >>> values, stderr = explainer.transform_with_stderr(X[:2], y[:2])
    >>> values.shape, stderr.shape
    ((2, 20), (2, 20))
    """

    def __init__(
        self,
        estimator=None,
        *,
        trunc_frac=0.25,
        check_every=100,
        tol=0.1,
        max_iter=1000,
        random_state=1,
        keep_models="auto",
        dtype=np.float64,
        chunk_memory_mb=256,
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            estimator,
            keep_models=keep_models,
            dtype=dtype,
            chunk_memory_mb=chunk_memory_mb,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        self.trunc_frac = trunc_frac
        self.check_every = check_every
        self.tol = tol
        self.max_iter = max_iter
        self.random_state = random_state

    def _fit_influence(self, X, leaves, y_enc, sample_weight):
        if not (isinstance(self.trunc_frac, numbers.Real) and 0 < self.trunc_frac <= 1):
            raise ValueError(f"trunc_frac must be in (0, 1], got {self.trunc_frac!r}")
        check_every = _check_int("check_every", self.check_every, 1)
        max_iter = _check_int("max_iter", self.max_iter, 1)
        if not (isinstance(self.tol, numbers.Real) and self.tol > 0):
            raise ValueError(f"tol must be positive, got {self.tol!r}")
        self._setup(X, y_enc, sample_weight)
        n = self.n_train_
        P = min(n, int(np.ceil(self.trunc_frac * n)))
        keep = self._decide_keep(max_iter * P)
        self._tmc_spec = self._spec(n_prefix=P, seed=base_seed(self.random_state), keep=keep)
        spec = dict(self._tmc_spec, self=True)
        S, Q = np.zeros(n), np.zeros(n)
        models = [] if keep else None
        T, err, converged = 0, np.inf, False
        while T < max_iter:
            b = min(check_every, max_iter - T)
            marg = np.zeros((b, n))
            for r, (perm, own, _, pm) in enumerate(
                self._run(_tmc_batch, spec, range(T, T + b), desc="DataShapley refits")
            ):
                marg[r, perm] = own
                if keep:
                    models.append(pm)
            csum = S + np.cumsum(marg, axis=0)
            means = csum / np.arange(T + 1, T + b + 1)[:, None]
            S = csum[-1]
            Q += (marg**2).sum(axis=0)
            T += b
            last = means[-1]
            err = float(np.max(np.mean(np.abs(means - last) / (np.abs(last) + 1e-12), axis=1)))
            if err < self.tol:
                converged = True
                break
        if not converged:
            warnings.warn(
                f"DataShapley did not converge in max_iter={max_iter} permutations "
                f"(error {err:.3g} >= tol={self.tol}); increase max_iter or see stderr_",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.n_permutations_ = T
        self.n_iter_ = T
        self.converged_ = converged
        self.convergence_error_ = err
        self.models_ = models
        self._self = S / T
        self.stderr_ = self._stderr(S, Q, T)

    def _edit_matrix(self, context, state):
        """Label edits: along the ``n_permutations_`` permutations, the mean change of
        the query loss when each edited row enters its prefix with its new label."""
        spec = dict(
            self._tmc_spec,
            keep=False,
            query_objective=context.objective,
            new_labels=state["labels"],
            new_enc=state["enc"],
            edited=state["edited"],
        )
        T = self.n_permutations_
        S = np.zeros((len(context.y), self.n_train_))
        for perm, marg in self._run(
            _tmc_relabel_batch, spec, range(T), context.X, context.y, "DataShapley relabelled"
        ):
            S[:, perm] += marg.T
        return S / T

    @staticmethod
    def _stderr(S, Q, T):
        if T < 2:
            return np.full(S.shape, np.inf)
        var = np.maximum(Q / T - (S / T) ** 2, 0.0) * T / (T - 1)
        return np.sqrt(var / T)

    def _sums(self, Xq, yq, objective, reduce):
        m = 1 if reduce == "sum" else len(yq)
        n, T = self.n_train_, self.n_permutations_
        S, Q = np.zeros((m, n)), np.zeros((m, n))
        if self.models_ is not None:
            seed = self._tmc_spec["seed"]
            for t in range(T):
                perm = np.random.default_rng(seed + t).permutation(n)[: len(self.models_[t])]
                qm = _tmc_from_models(
                    self.models_[t], perm, Xq, yq, objective, reduce, self._loss_kw
                )
                S[:, perm] += qm.T
                Q[:, perm] += qm.T**2
        else:
            spec = dict(
                self._tmc_spec,
                self=False,
                keep=False,
                query_objective=objective,
                query_reduce=reduce,
            )
            for perm, _, qm, _ in self._run(
                _tmc_batch, spec, range(T), Xq, yq, desc="DataShapley refits"
            ):
                S[:, perm] += qm.T
                Q[:, perm] += qm.T**2
        return S, Q

    def _query_matrix(self, Xq, yq, objective, reduce="rows"):
        S, _ = self._sums(Xq, yq, objective, reduce)
        return S / self.n_permutations_

    def transform_with_stderr(self, X, y=None):
        """Influence of every training row on every query, with standard errors.

        Parameters
        ----------
        X, y : as in :meth:`transform`

        Returns
        -------
        influence : ndarray of shape (n_query, n_train)
            The same values as :meth:`transform`.
        stderr : ndarray of shape (n_query, n_train)
            Standard error of each value over the ``n_permutations_`` permutations.
        """
        _, queries, _ = self._prepare(X, y)
        S, Q = self._sums(queries.X, queries.y, queries.objective, "rows")
        T = self.n_permutations_
        dt = self._out_dtype()
        return (S / T).astype(dt, copy=False), self._stderr(S, Q, T).astype(dt, copy=False)
