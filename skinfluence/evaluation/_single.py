"""Single-query protocols (:ref:`methods-eval-single`): remove, relabel, poison, targeted edit and
counterfactual, each query independently."""

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.utils import _safe_indexing
from threadpoolctl import threadpool_limits

from skinfluence._parallel import base_seed, split_batches
from skinfluence.evaluation._common import (
    _adversarial_labels,
    _apply_edit,
    _check_fractions,
    _descending,
    _edit_job,
    _fit,
    _fitted_explainer,
    _is_explainer,
    _mean_row,
    _prepare,
    _progress,
    _random_labels,
    _run,
    _to_result,
)

__all__ = ["counterfactual", "single_query_curve"]

SINGLE_FRACTIONS = (0.0, 0.001, 0.005, 0.01, 0.015, 0.02)
TARGETED_FRACTIONS = tuple(np.round(np.arange(0, 0.0201, 0.002), 4))
_EDITS = ("remove", "relabel", "poison", "targeted")


def _query_rankings(influence, ranking, model, X, y, Xq, yq, need):
    """Per-query training rows by descending influence, shape (n_query, >= need)."""
    m = Xq.shape[0]
    if ranking is not None:
        if influence is not None:
            raise ValueError("pass either influence or ranking, not both")
        R = np.asarray(ranking)
        if R.ndim == 1:
            R = R[None, :]
        if R.shape[0] != m or not np.issubdtype(R.dtype, np.integer):
            raise ValueError(f"ranking must be an integer array of shape (n_query={m}, k)")
        if R.shape[1] < need:
            raise ValueError(
                f"ranking has {R.shape[1]} columns but the protocol edits up to {need} rows"
            )
        return R
    if influence is None:
        raise ValueError("pass an influence estimator, an influence matrix or a ranking")
    if _is_explainer(influence):
        exp = _fitted_explainer(influence, model, X, y)
        if need < X.shape[0] and hasattr(exp, "top_k") and need > 0:
            return exp.top_k(Xq, yq, k=need)[0]
        influence = exp.transform(Xq, yq)
    M = np.asarray(influence, dtype=np.float64)
    if M.ndim == 1:
        M = M[None, :]
    if M.shape != (m, X.shape[0]):
        raise ValueError(
            f"an influence matrix must have shape (n_query, n_train) = "
            f"{(m, X.shape[0])}, got {M.shape}"
        )
    return _descending(M)


def single_query_curve(
    estimator,
    X_train,
    y_train,
    X_query,
    y_query,
    influence=None,
    *,
    ranking=None,
    edit="remove",
    fractions=None,
    random_state=0,
    n_jobs=None,
    verbose=0,
):
    """Edit each query's most helpful training rows, refit, and record its loss.

    For each query ``e`` independently, training rows are ranked by **descending**
    influence ``I(., e)`` (most helpful first) and, for each fraction ``f``, the top
    ``floor(f * n_train)`` rows are edited, ``clone(estimator)`` is refit on the edited
    set, and the loss of ``e`` is recorded (:ref:`methods-eval-single`). A better method raises the
    loss more.

    Parameters
    ----------
    estimator : estimator
        The model (fitted or not; it is refit with ``clone``, its own thread count set
        to 1). A ``Pipeline`` ending in a model and a ``FrozenEstimator`` are accepted.
    X_train, y_train : array-like
        The training set.
    X_query, y_query : array-like
        The query rows and their labels.
    influence : estimator or array-like of shape (n_query, n_train), default=None
        An influence estimator (unfitted: cloned, given ``estimator=`` the model refit
        on the full training set and fitted; fitted: used as given) or a precomputed
        influence matrix.
    ranking : int array-like of shape (n_query, k), default=None
        Instead of ``influence``: the training rows of each query, most helpful first
        (``k`` at least the largest number of edited rows).
    edit : {"remove", "relabel", "poison", "targeted"}, default="remove"
        ``"remove"``: delete the rows. ``"relabel"``: random labels (uniform over the
        label set, possibly unchanged; regression ``Uniform[min y, max y]``), drawn
        independently for every query. ``"poison"``: training-mean features plus
        ``"relabel"``'s labels. ``"targeted"``: the adversarial label of the query
        (binary: the other class; multiclass: the most probable other class;
        regression: the training quartile on the other side of the median); an
        estimator with a label-edit form (:ref:`methods-label-edit`) then ranks the rows
        by its label-edit influence toward that label, as the paper's LE methods do
        (``attrs["ranked_by"]`` says which ranking was used).
    fractions : sequence of float, default=None
        Fractions of the training set to edit; default ``(0, .001, .005, .01, .015,
        .02)`` and, for ``"targeted"``, ``(0, .002, ..., .02)``.
    random_state : int or RandomState, default=0
        Seed of the random labels.
    n_jobs : int, default=None
        Refits run at once through :class:`joblib.Parallel`.
    verbose : int, default=0
        Progress bar over refit batches (needs ``tqdm``).

    Returns
    -------
    result : DataFrame or dict of arrays
        One row per (query, fraction): ``query``, ``fraction``, ``n_edited``, ``loss``,
        ``prediction`` (label or value), ``correct`` (classification: predicted label ==
        label) and ``loss_change`` (loss minus the unedited model's loss). ``attrs``
        hold ``edit``, ``task`` and ``ranked_by`` (``"label_edit"`` or ``"removal"``).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skinfluence import BoostIn
    >>> from skinfluence.evaluation import single_query_curve
    >>> X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    >>> model = HistGradientBoostingClassifier(max_iter=5, random_state=0)
    >>> res = single_query_curve(model, X[:60], y[:60], X[60:62], y[60:62], BoostIn(),
    ...                          fractions=[0, 0.1])
    >>> res[["query", "fraction", "n_edited"]].to_numpy().tolist()
    [[0.0, 0.0, 0.0], [0.0, 0.1, 6.0], [1.0, 0.0, 0.0], [1.0, 0.1, 6.0]]
    """
    if edit not in _EDITS:
        raise ValueError(f"edit must be one of {_EDITS}, got {edit!r}")
    fractions = _check_fractions(
        (TARGETED_FRACTIONS if edit == "targeted" else SINGLE_FRACTIONS)
        if fractions is None
        else fractions
    )
    template, task, classes, scorer, y = _prepare(estimator, X_train, y_train)
    yq = np.asarray(y_query)
    n, m = X_train.shape[0], X_query.shape[0]
    counts = np.floor(fractions * n + 1e-9).astype(int)
    need = int(counts.max())
    full = _fit(template, X_train, y)
    base = scorer.evaluate(full, X_query, yq)
    seed = base_seed(random_state)
    if edit == "targeted":
        adv = _adversarial_labels(task, classes, yq, base.get("proba"), y)
    ranked_by = "removal"
    R = None
    if edit == "targeted" and ranking is None and _is_explainer(influence):
        R = _label_edit_rankings(influence, full, X_train, y, X_query, yq, adv)
        ranked_by = "removal" if R is None else "label_edit"
    if R is None:
        R = _query_rankings(influence, ranking, full, X_train, y, X_query, yq, need)
    mean_row = _mean_row(X_train) if edit == "poison" else None

    jobs, keys = [], []
    for e in range(m):
        top = np.asarray(R[e, :need])
        labels = None  # "remove" keeps the labels
        if edit in ("relabel", "poison"):
            labels = _random_labels(np.random.default_rng([seed, e]), y, task, need)
        elif edit == "targeted":
            labels = np.repeat(adv[e : e + 1], need)
        for k in sorted(set(counts.tolist()) - {0}):
            jobs.append((_edit_job(edit, top, labels, k), [e]))
            keys.append((e, k))
    results = _run(
        template,
        X_train,
        y,
        scorer,
        X_query,
        yq,
        jobs,
        n_jobs,
        verbose,
        f"{edit} refits",
        mean_row=mean_row,
    )
    by_key = dict(zip(keys, results))

    cols = {c: [] for c in ("query", "fraction", "n_edited", "loss", "prediction")}
    for e in range(m):
        for f, k in zip(fractions, counts):
            if k == 0:
                loss, pred = base["loss"][e], base["prediction"][e]
            else:
                res = by_key[(e, k)]
                loss, pred = res["loss"][0], res["prediction"][0]
            cols["query"].append(e)
            cols["fraction"].append(f)
            cols["n_edited"].append(k)
            cols["loss"].append(loss)
            cols["prediction"].append(pred)
    q = np.asarray(cols["query"])
    cols["loss"] = np.asarray(cols["loss"], dtype=np.float64)
    cols["loss_change"] = cols["loss"] - base["loss"][q]
    cols["prediction"] = np.asarray(cols["prediction"])
    if task != "regression":
        cols["correct"] = cols["prediction"] == yq[q]
    attrs = {"edit": edit, "task": task, "protocol": "single_query", "ranked_by": ranked_by}
    return _to_result(cols, attrs)


def _label_edit_rankings(influence, model, X, y, Xq, yq, adv):
    """Per-query training rows by descending label-edit influence toward the query's
    adversarial label, or None when the method has no label-edit form."""
    exp = _fitted_explainer(influence, model, X, y)
    R = np.empty((Xq.shape[0], X.shape[0]), dtype=np.int64)
    for label in np.unique(adv):
        rows = np.flatnonzero(adv == label)
        try:
            change = exp.label_edit(_safe_indexing(Xq, rows), yq[rows], new_labels=label)
        except NotImplementedError:
            return None
        R[rows] = _descending(change)
    return R


def _counterfactual_worker(template, X, y, Xq, task, median, jobs):
    out = []
    with threadpool_limits(limits=1):
        for e, top, label, pred0, steps in jobs:
            found = None
            for k in steps:
                Xt, yt = _apply_edit(X, y, {"relabel": (top[:k], np.repeat(label, k))}, None)
                model = clone(template).fit(Xt, yt)
                pred = np.asarray(model.predict(_safe_indexing(Xq, [e]))).ravel()[0]
                if task == "regression":
                    flipped = (pred >= median) != (pred0 >= median)
                else:
                    flipped = pred != pred0
                if flipped:
                    found = k
                    break
            out.append(found)
    return out


def counterfactual(
    estimator,
    X_train,
    y_train,
    X_query,
    y_query,
    influence=None,
    *,
    ranking=None,
    step=10,
    max_fraction=0.1,
    n_jobs=None,
    verbose=0,
):
    """Smallest number of relabelled most-helpful rows that flips each prediction.

    For each correctly predicted query (regression: prediction and label on the same
    side of the training median), relabel its top ``step``, ``2 step``, ... training
    rows (descending influence) to the adversarial label (binary: the other class;
    multiclass: the second most probable class; regression: the training quartile on
    the other side of the median), refit and stop when the predicted label flips (for
    regression: when the prediction crosses the median), up to
    ``max_fraction * n_train`` rows. Lower is better (:ref:`methods-eval-single`).

    Parameters
    ----------
    estimator, X_train, y_train, X_query, y_query, influence, ranking
        As in :func:`single_query_curve`.
    step : int, default=10
        Rows added per refit.
    max_fraction : float, default=0.1
        Give up after editing this fraction of the training set.
    n_jobs, verbose
        As in :func:`single_query_curve` (parallel over queries).

    Returns
    -------
    result : DataFrame or dict of arrays
        One row per query: ``query``, ``correct`` (evaluated), ``flipped``,
        ``n_edited`` (rows edited at the flip; ``-1`` when not flipped or not
        evaluated) and ``fraction_edited`` (failures count as ``max_fraction``; NaN
        for queries not evaluated).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skinfluence import BoostIn
    >>> from skinfluence.evaluation import counterfactual
    >>> X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    >>> model = HistGradientBoostingClassifier(max_iter=5, random_state=0)
    >>> res = counterfactual(model, X[:60], y[:60], X[60:62], y[60:62], BoostIn(),
    ...                      step=5, max_fraction=0.2)
    >>> sorted(res.columns)
    ['correct', 'flipped', 'fraction_edited', 'n_edited', 'query']
    """
    if not (isinstance(step, (int, np.integer)) and step >= 1):
        raise ValueError(f"step must be a positive integer, got {step!r}")
    max_fraction = float(_check_fractions(max_fraction, "max_fraction")[0])
    template, task, classes, scorer, y = _prepare(estimator, X_train, y_train)
    yq = np.asarray(y_query)
    n, m = X_train.shape[0], X_query.shape[0]
    limit = int(np.floor(max_fraction * n + 1e-9))
    steps = list(range(step, limit + 1, step))
    full = _fit(template, X_train, y)
    base = scorer.evaluate(full, X_query, yq)
    median = float(np.median(np.asarray(y, dtype=np.float64))) if task == "regression" else None
    if task == "regression":
        correct = (base["prediction"] >= median) == (yq.astype(np.float64) >= median)
        adv = _adversarial_labels(task, classes, base["prediction"], y_train=y)
    else:
        correct = base["prediction"] == yq
        adv = _adversarial_labels(task, classes, yq, base["proba"], y)
    R = _query_rankings(influence, ranking, full, X_train, y, X_query, yq, max(1, limit))

    jobs = [
        (e, np.asarray(R[e, :limit]), adv[e], base["prediction"][e], steps)
        for e in range(m)
        if correct[e]
    ]
    batches = split_batches(jobs, n_jobs)
    gen = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_counterfactual_worker)(template, X_train, y, X_query, task, median, b)
        for b in batches
    )
    found = []
    for part in _progress(gen, len(batches), verbose, "counterfactual"):
        found.extend(part)
    n_edited = np.full(m, -1, dtype=np.int64)
    flipped = np.zeros(m, dtype=bool)
    frac = np.full(m, np.nan)
    for (e, *_), k in zip(jobs, found):
        flipped[e] = k is not None
        n_edited[e] = -1 if k is None else k
        frac[e] = max_fraction if k is None else k / n
    return _to_result(
        {
            "query": np.arange(m),
            "correct": correct,
            "flipped": flipped,
            "n_edited": n_edited,
            "fraction_edited": frac,
        },
        {"task": task, "protocol": "counterfactual", "max_fraction": max_fraction},
    )
