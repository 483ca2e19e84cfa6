"""Measures from the field (:ref:`methods-eval-measures`): the linear datamodeling score (LDS) and
the leave-one-out correlation. Their refits do not depend on the influence method and
are computed once (``subset_outputs``, ``loo_deltas``) and reused for every method."""

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from skinfluence._parallel import base_seed
from skinfluence.evaluation._common import (
    _fit,
    _fitted_explainer,
    _is_explainer,
    _prepare,
    _run,
    _to_result,
)

__all__ = [
    "LOODeltas",
    "SubsetOutputs",
    "linear_datamodeling_score",
    "loo_correlation",
    "loo_deltas",
    "subset_outputs",
]

_OUTPUTS = ("loss", "proba", "margin")


@dataclass
class SubsetOutputs:
    """Outputs of models refit on random training subsets (cached for LDS).

    Attributes
    ----------
    masks : ndarray of shape (n_subsets, n_train), bool
        ``masks[j, i]``: training row ``i`` is in subset ``j``.
    outputs : ndarray of shape (n_subsets, n_query)
        The output of each query under each subset model.
    output : {"loss", "proba", "margin"}
        What ``outputs`` measures (helpful rows lower the loss and raise the others).
    """

    masks: np.ndarray
    outputs: np.ndarray
    output: str = "loss"


@dataclass
class LOODeltas:
    """Leave-one-out loss changes of sampled training rows (cached for LOO correlation).

    Attributes
    ----------
    rows : ndarray of shape (n_rows,)
        The training rows left out.
    deltas : ndarray of shape (n_query, n_rows)
        ``L_e(model without row) - L_e(model with every row)``.
    """

    rows: np.ndarray
    deltas: np.ndarray


def _query_output(res, output):
    if output == "loss":
        return res["loss"]
    if "proba_true" not in res:
        raise ValueError(f"output={output!r} needs a classifier; use output='loss'")
    p = res["proba_true"]
    return p if output == "proba" else np.log(p) - np.log1p(-p)


def subset_outputs(
    estimator,
    X_train,
    y_train,
    X_query,
    y_query,
    *,
    n_subsets=50,
    subset_fraction=0.5,
    output="loss",
    random_state=0,
    n_jobs=None,
    verbose=0,
):
    """Refit on random subsets of the training set and record each query's output.

    Parameters
    ----------
    estimator, X_train, y_train, X_query, y_query
        As in :func:`single_query_curve`.
    n_subsets : int, default=50
    subset_fraction : float, default=0.5
        Size of each subset (drawn without replacement) as a fraction of ``n_train``.
    output : {"loss", "proba", "margin"}, default="loss"
        The query's loss, its probability of the true class, or the logit of that
        probability (classification only for the last two).
    random_state, n_jobs, verbose
        As in :func:`single_query_curve`.

    Returns
    -------
    SubsetOutputs

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn.ensemble import HistGradientBoostingRegressor
    >>> from skinfluence.evaluation import subset_outputs
    >>> X, y = make_regression(n_samples=60, n_features=3, random_state=0)
    >>> model = HistGradientBoostingRegressor(max_iter=5, random_state=0)
    >>> cache = subset_outputs(model, X[:50], y[:50], X[50:], y[50:], n_subsets=4)
    >>> cache.masks.shape, cache.outputs.shape
    ((4, 50), (4, 10))
    """
    if output not in _OUTPUTS:
        raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")
    if not 0 < subset_fraction < 1:
        raise ValueError(f"subset_fraction must be in (0, 1), got {subset_fraction!r}")
    template, task, classes, scorer, y = _prepare(estimator, X_train, y_train)
    if output != "loss" and task == "regression":
        raise ValueError(f"output={output!r} needs a classifier; use output='loss'")
    n = X_train.shape[0]
    size = max(1, int(round(subset_fraction * n)))
    rng = np.random.default_rng(base_seed(random_state))
    masks = np.zeros((int(n_subsets), n), dtype=bool)
    jobs = []
    for j in range(int(n_subsets)):
        rows = rng.choice(n, size=size, replace=False)
        masks[j, rows] = True
        jobs.append(({"drop": np.flatnonzero(~masks[j])}, None))
    res = _run(
        template,
        X_train,
        y,
        scorer,
        X_query,
        np.asarray(y_query),
        jobs,
        n_jobs,
        verbose,
        "subset refits",
    )
    outputs = np.array([_query_output(r, output) for r in res], dtype=np.float64)
    return SubsetOutputs(masks=masks, outputs=outputs.reshape(len(jobs), -1), output=output)


def _spearman_columns(a, b):
    """Spearman correlation of each column of ``a`` with the same column of ``b``."""
    ra = np.apply_along_axis(rankdata, 0, a)
    rb = np.apply_along_axis(rankdata, 0, b)
    return _pearson_columns(ra, rb)


def _unit_scale(a, axis):
    """Divide by the largest magnitude along ``axis`` (correlations are invariant to a
    positive scale; this keeps huge influence values from overflowing)."""
    a = np.asarray(a, dtype=np.float64)
    m = np.max(np.abs(a), axis=axis, keepdims=True)
    return a / np.where(np.isfinite(m) & (m > 0), m, 1.0)


def _pearson_columns(a, b):
    a, b = _unit_scale(a, 0), _unit_scale(b, 0)
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    den = np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=0) / den
    return np.where(den > 0, r, np.nan)


def _influence_matrix(influence, estimator, X_train, y_train, X_query, y_query):
    """The ``(n_query, n_train)`` influence: given as an array, or computed by an explainer
    of the model refit on the full training set."""
    if not _is_explainer(influence):
        return np.asarray(influence, dtype=np.float64)
    template, _, _, _, y = _prepare(estimator, X_train, y_train)
    exp = _fitted_explainer(influence, _fit(template, X_train, y), X_train, y)
    return exp.transform(X_query, np.asarray(y_query))


def _per_query_result(protocol, column, values, **attrs):
    """One row per query (``query``, ``column``); ``attrs["mean_<column>"]`` is the
    NaN-ignoring mean over queries."""
    mean = float(np.nanmean(values)) if np.any(np.isfinite(values)) else np.nan
    return _to_result(
        {"query": np.arange(len(values)), column: values},
        {"protocol": protocol, f"mean_{column}": mean, **attrs},
    )


def linear_datamodeling_score(
    estimator=None,
    X_train=None,
    y_train=None,
    X_query=None,
    y_query=None,
    influence=None,
    *,
    subsets=None,
    n_subsets=50,
    subset_fraction=0.5,
    output="loss",
    random_state=0,
    n_jobs=None,
    verbose=0,
):
    """Linear datamodeling score (LDS; Park et al., ICML 2023) of an influence method.

    For random training subsets ``S_j``, the additive prediction of query ``e``'s
    output is ``-sum_{i in S_j} I(i, e)`` for the loss (helpful rows lower it) or
    ``+sum`` for the probability / margin of the true class; ``LDS_e`` is the Spearman
    correlation, over the subsets, of that prediction with the output of the model
    refit on ``S_j``. 1 = the method ranks subsets exactly as retraining does.

    Parameters
    ----------
    estimator, X_train, y_train, X_query, y_query
        As in :func:`single_query_curve` (only ``X_train``, ``y_train``, ``X_query``,
        ``y_query`` and ``estimator`` for fitting an explainer are needed when
        ``subsets`` is given).
    influence : estimator or array-like of shape (n_query, n_train)
        An influence estimator (fitted on the full training set as in
        :func:`single_query_curve`) or a precomputed influence matrix.
    subsets : SubsetOutputs, default=None
        Cached subset refits (:func:`subset_outputs`); computed when None with
        ``n_subsets``, ``subset_fraction``, ``output``, ``random_state``.
    n_subsets, subset_fraction, output, random_state, n_jobs, verbose
        See :func:`subset_outputs`.

    Returns
    -------
    result : DataFrame or dict of arrays
        One row per query: ``query``, ``lds`` (NaN when the outputs are constant over
        the subsets). ``attrs["mean_lds"]``: the NaN-ignoring mean over queries.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.evaluation import SubsetOutputs, linear_datamodeling_score
    >>> rng = np.random.default_rng(0)
    >>> masks = rng.random((20, 6)) < 0.5
    >>> I = rng.normal(size=(2, 6))
    >>> cache = SubsetOutputs(masks, 3.0 - masks @ I.T, "loss")  # exactly additive
    >>> linear_datamodeling_score(influence=I, subsets=cache)["lds"].tolist()
    [1.0, 1.0]
    """
    if subsets is None:
        subsets = subset_outputs(
            estimator,
            X_train,
            y_train,
            X_query,
            y_query,
            n_subsets=n_subsets,
            subset_fraction=subset_fraction,
            output=output,
            random_state=random_state,
            n_jobs=n_jobs,
            verbose=verbose,
        )
    M = _influence_matrix(influence, estimator, X_train, y_train, X_query, y_query)
    masks = np.asarray(subsets.masks, dtype=np.float64)
    if M.ndim != 2 or M.shape != (subsets.outputs.shape[1], masks.shape[1]):
        raise ValueError(
            f"influence must have shape (n_query, n_train) = "
            f"{(subsets.outputs.shape[1], masks.shape[1])}, got {M.shape}"
        )
    sign = -1.0 if subsets.output == "loss" else 1.0
    pred = sign * masks @ _unit_scale(M, 1).T  # (n_subsets, n_query)
    lds = _spearman_columns(pred, subsets.outputs)
    return _per_query_result("lds", "lds", lds, output=subsets.output, n_subsets=masks.shape[0])


def loo_deltas(
    estimator,
    X_train,
    y_train,
    X_query,
    y_query,
    *,
    rows=None,
    n_rows=50,
    random_state=0,
    n_jobs=None,
    verbose=0,
):
    """Refit without each of a sample of training rows; record the query loss changes.

    Parameters
    ----------
    estimator, X_train, y_train, X_query, y_query
        As in :func:`single_query_curve`.
    rows : array-like of int, default=None
        The training rows to leave out; default a random sample of ``n_rows`` rows
        (all rows when ``n_train <= n_rows``).
    n_rows : int, default=50
    random_state, n_jobs, verbose
        As in :func:`single_query_curve`.

    Returns
    -------
    LOODeltas

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from sklearn.ensemble import HistGradientBoostingRegressor
    >>> from skinfluence.evaluation import loo_deltas
    >>> X, y = make_regression(n_samples=40, n_features=3, random_state=0)
    >>> model = HistGradientBoostingRegressor(max_iter=5, random_state=0)
    >>> loo_deltas(model, X[:30], y[:30], X[30:], y[30:], n_rows=5).deltas.shape
    (10, 5)
    """
    template, task, classes, scorer, y = _prepare(estimator, X_train, y_train)
    n = X_train.shape[0]
    if rows is None:
        rng = np.random.default_rng(base_seed(random_state))
        rows = np.arange(n) if n <= n_rows else np.sort(rng.choice(n, n_rows, replace=False))
    rows = np.asarray(rows, dtype=np.int64)
    yq = np.asarray(y_query)
    jobs = [({}, None)] + [({"drop": np.array([i])}, None) for i in rows]
    res = _run(
        template, X_train, y, scorer, X_query, yq, jobs, n_jobs, verbose, "leave-one-out refits"
    )
    full = res[0]["loss"]
    deltas = np.array([r["loss"] - full for r in res[1:]]).reshape(len(rows), -1).T
    return LOODeltas(rows=rows, deltas=np.ascontiguousarray(deltas))


def loo_correlation(
    estimator=None,
    X_train=None,
    y_train=None,
    X_query=None,
    y_query=None,
    influence=None,
    *,
    deltas=None,
    rows=None,
    n_rows=50,
    method="pearson",
    random_state=0,
    n_jobs=None,
    verbose=0,
):
    """Correlation of an influence method with actual leave-one-out retraining.

    For each query ``e``, the correlation over sampled training rows ``i`` of
    ``I(i, e)`` with ``L_e(without i) - L_e(full)`` (:ref:`methods-eval-loo`). With the
    package's sign (positive = helpful = removing raises the loss) a faithful method
    correlates positively.

    Parameters
    ----------
    estimator, X_train, y_train, X_query, y_query
        As in :func:`single_query_curve`.
    influence : estimator or array-like of shape (n_query, n_train)
    deltas : LOODeltas, default=None
        Cached refits (:func:`loo_deltas`); computed when None from ``rows``,
        ``n_rows``, ``random_state``.
    method : {"pearson", "spearman"}, default="pearson"
    rows, n_rows, random_state, n_jobs, verbose
        See :func:`loo_deltas`.

    Returns
    -------
    result : DataFrame or dict of arrays
        One row per query: ``query``, ``correlation`` (NaN when either side is
        constant). ``attrs["mean_correlation"]``: the NaN-ignoring mean.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.evaluation import LOODeltas, loo_correlation
    >>> deltas = LOODeltas(rows=np.array([0, 2]), deltas=np.array([[0.1, 0.3]]))
    >>> I = np.array([[1.0, 9.0, 2.0]])
    >>> loo_correlation(influence=I, deltas=deltas)["correlation"].tolist()
    [1.0]
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"method must be 'pearson' or 'spearman', got {method!r}")
    if deltas is None:
        deltas = loo_deltas(
            estimator,
            X_train,
            y_train,
            X_query,
            y_query,
            rows=rows,
            n_rows=n_rows,
            random_state=random_state,
            n_jobs=n_jobs,
            verbose=verbose,
        )
    M = _influence_matrix(influence, estimator, X_train, y_train, X_query, y_query)
    if M.ndim != 2 or M.shape[0] != deltas.deltas.shape[0]:
        raise ValueError(
            f"influence must have {deltas.deltas.shape[0]} query rows, got shape {M.shape}"
        )
    a = M[:, deltas.rows].T
    b = deltas.deltas.T
    corr = _spearman_columns(a, b) if method == "spearman" else _pearson_columns(a, b)
    return _per_query_result(
        "loo_correlation", "correlation", corr, method=method, n_rows=len(deltas.rows)
    )
