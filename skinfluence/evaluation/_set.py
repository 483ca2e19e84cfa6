"""Set protocols (:ref:`methods-eval-set`): remove / relabel / poison by global influence on a
validation set, and noisy-label detection."""

import numpy as np
from sklearn.model_selection import train_test_split

from skinfluence._parallel import base_seed
from skinfluence.evaluation._common import (
    _check_fractions,
    _descending,
    _edit_job,
    _fit,
    _fitted_explainer,
    _is_explainer,
    _mean_row,
    _prepare,
    _random_labels,
    _run,
    _to_result,
)

__all__ = ["noise_detection", "set_curve", "split_validation"]

SET_FRACTIONS = tuple(np.round(np.arange(0, 0.501, 0.05), 2))
NOISE_FRACTIONS = tuple(np.round(np.arange(0, 0.301, 0.05), 2))
_EDITS = ("remove", "relabel", "poison")


def split_validation(X_test, y_test, *, validation_size=0.1, task=None, random_state=0):
    """Split a test set into a validation part and a held-out part (the paper's 10/90,
    stratified for classification).

    Parameters
    ----------
    X_test, y_test : array-like
    validation_size : float, default=0.1
    task : {"regression", "binary", "multiclass"}, default=None
        Stratify unless ``"regression"`` (None: stratify when ``y_test`` is not float).
    random_state : int, default=0

    Returns
    -------
    X_val, y_val, X_held, y_held

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.evaluation import split_validation
    >>> X, y = np.zeros((50, 2)), np.arange(50) % 2
    >>> [len(a) for a in split_validation(X, y)]
    [5, 5, 45, 45]
    """
    y_test = np.asarray(y_test)
    if task is None:
        task = "regression" if y_test.dtype.kind == "f" else "classification"
    strat = None if task == "regression" else y_test
    X_val, X_held, y_val, y_held = train_test_split(
        X_test, y_test, train_size=validation_size, stratify=strat, random_state=random_state
    )
    return X_val, y_val, X_held, y_held


def _validation_and_held_out(X_test, y_test, validation, validation_size, task, seed):
    """``(X_val, y_val, X_held, y_held)``: the given ``validation`` set and every test
    row held out, or the test rows split by :func:`split_validation`."""
    if validation is None:
        return split_validation(
            X_test, y_test, validation_size=validation_size, task=task, random_state=seed
        )
    X_val, y_val = validation
    return X_val, y_val, X_test, np.asarray(y_test)


def _set_labels(rng, y, task, idx):
    """label_set relabelling: binary flip, multiclass a random different class,
    regression Uniform[min, max]."""
    if task == "regression":
        return _random_labels(rng, y, task, len(idx))
    return _random_labels(rng, y, task, len(idx), different_from=np.asarray(y)[idx])


def _global_ranking(influence, ranking, model, X, y, X_val, y_val):
    n = X.shape[0]
    if ranking is not None:
        if influence is not None:
            raise ValueError("pass either influence or ranking, not both")
        R = np.asarray(ranking)
        if R.ndim != 1 or not np.issubdtype(R.dtype, np.integer):
            raise ValueError("ranking must be a 1-D integer array of training rows")
        return R
    if influence is None:
        raise ValueError("pass an influence estimator, a global-influence vector or a ranking")
    if _is_explainer(influence):
        exp = _fitted_explainer(influence, model, X, y)
        influence = exp.global_influence(X_val, y_val)
    g = np.asarray(influence, dtype=np.float64)
    if g.shape != (n,):
        raise ValueError(f"global influence must have shape (n_train,) = ({n},), got {g.shape}")
    return _descending(g)


def _metric_columns(results):
    keys = list(results[0])
    return {k: np.array([r[k] for r in results], dtype=np.float64) for k in keys}


def set_curve(
    estimator,
    X_train,
    y_train,
    X_test,
    y_test,
    influence=None,
    *,
    ranking=None,
    validation=None,
    validation_size=0.1,
    edit="remove",
    fractions=SET_FRACTIONS,
    random_state=0,
    n_jobs=None,
    verbose=0,
):
    """Edit the training rows most helpful to a validation set, refit, and record the
    held-out loss (:ref:`methods-eval-set`).

    Rows are ranked by **descending** global influence ``sum_{v in V} I(i, v)`` on a
    validation set ``V``; for each fraction ``f`` the top ``floor(f * n_train)`` rows
    are removed, relabelled (binary: flipped; multiclass: a random different class;
    regression: ``Uniform[min y, max y]``) or poisoned (training-mean features plus the
    relabelling), ``clone(estimator)`` is refit and scored on the held-out rows. A
    better method raises the held-out loss more.

    Parameters
    ----------
    estimator, X_train, y_train
        As in :func:`single_query_curve`.
    X_test, y_test : array-like
        Test rows. Without ``validation`` they are split by :func:`split_validation`
        into the validation set (``validation_size``) and the held-out set.
    influence : estimator or array-like of shape (n_train,), default=None
        An influence estimator (its ``global_influence`` on the validation set is used)
        or a precomputed global influence.
    ranking : int array-like of shape (k,), default=None
        Instead of ``influence``: training rows, most helpful first.
    validation : tuple (X_val, y_val), default=None
        An explicit validation set; then all of ``X_test`` is held out.
    validation_size : float, default=0.1
    edit : {"remove", "relabel", "poison"}, default="remove"
    fractions : sequence of float, default=(0, .05, ..., .5)
    random_state : int, default=0
        Seed of the split and of the random labels.
    n_jobs, verbose
        As in :func:`single_query_curve`.

    Returns
    -------
    result : DataFrame or dict of arrays
        One row per fraction: ``fraction``, ``n_edited``, ``loss`` (mean held-out loss)
        and ``accuracy``, ``roc_auc`` (classification) or ``rmse``, ``r2``
        (regression).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skinfluence import BoostIn
    >>> from skinfluence.evaluation import set_curve
    >>> X, y = make_classification(n_samples=120, n_features=4, random_state=0)
    >>> model = HistGradientBoostingClassifier(max_iter=5, random_state=0)
    >>> res = set_curve(model, X[:80], y[:80], X[80:], y[80:], BoostIn(),
    ...                 fractions=[0, 0.2])
    >>> res["n_edited"].tolist()
    [0, 16]
    """
    if edit not in _EDITS:
        raise ValueError(f"edit must be one of {_EDITS}, got {edit!r}")
    fractions = _check_fractions(fractions)
    template, task, classes, scorer, y = _prepare(estimator, X_train, y_train)
    seed = base_seed(random_state)
    X_val, y_val, X_held, y_held = _validation_and_held_out(
        X_test, y_test, validation, validation_size, task, seed
    )
    n = X_train.shape[0]
    counts = np.floor(fractions * n + 1e-9).astype(int)
    full = _fit(template, X_train, y)
    R = _global_ranking(influence, ranking, full, X_train, y, X_val, np.asarray(y_val))
    need = int(counts.max())
    if len(R) < need:
        raise ValueError(f"ranking has {len(R)} rows but the protocol edits up to {need}")
    top = np.asarray(R[:need])
    labels = _set_labels(np.random.default_rng([seed, 1]), y, task, top)
    jobs = [(_edit_job(edit, top, labels, k), "metrics") for k in counts]
    mean_row = _mean_row(X_train) if edit == "poison" else None
    res = _run(
        template,
        X_train,
        y,
        scorer,
        X_held,
        np.asarray(y_held),
        jobs,
        n_jobs,
        verbose,
        f"{edit}_set refits",
        mean_row=mean_row,
    )
    cols = {"fraction": fractions, "n_edited": counts}
    cols.update(_metric_columns(res))
    return _to_result(cols, {"edit": edit, "task": task, "protocol": "set"})


def _noise_scores(influence, strategy, model, X, y_noisy, X_val, y_val):
    """Suspicion scores (higher = checked first) of the noisy training rows."""
    if callable(influence) and not _is_explainer(influence):
        s = influence(model, X, y_noisy)
    elif _is_explainer(influence):
        exp = _fitted_explainer(influence, model, X, y_noisy)
        if strategy == "self":
            s = exp.self_influence()
        else:
            s = -np.asarray(exp.global_influence(X_val, y_val))
    else:
        raise ValueError(
            "noise_detection needs an influence estimator or a callable "
            "scores(model, X_train, y_noisy), since the influence must be "
            "computed on the noisy data"
        )
    s = np.asarray(s, dtype=np.float64)
    if s.shape != (X.shape[0],):
        raise ValueError(f"scores must have shape (n_train,), got {s.shape}")
    return s


def noise_detection(
    estimator,
    X_train,
    y_train,
    X_test,
    y_test,
    influence,
    *,
    noise_fraction=0.4,
    fractions=NOISE_FRACTIONS,
    strategy="self",
    validation=None,
    validation_size=0.1,
    random_state=0,
    n_jobs=None,
    verbose=0,
):
    """Flip labels, rank the training rows, check and fix the top ones (:ref:`methods-eval-noise`).

    ``floor(noise_fraction * n_train)`` distinct rows (drawn **without** replacement)
    get corrupted labels (binary: flipped; multiclass: a random different class;
    regression: ``Uniform[min y, max y]``). The model and the explainer are fitted on
    the noisy data; rows are ranked by self-influence descending (``strategy="self"``)
    or by global influence on a validation set ascending (``"global"``: most harmful
    first). For each checked fraction ``f``, the true labels of the top
    ``floor(f * n_train)`` rows are restored, the model is refit and scored on held-out
    rows.

    Parameters
    ----------
    estimator, X_train, y_train
        As in :func:`single_query_curve`; ``y_train`` holds the clean labels.
    X_test, y_test : array-like
        Test rows (split into validation / held-out as in :func:`set_curve`).
    influence : estimator or callable
        An influence estimator (cloned with ``estimator=`` the noisy model and fitted
        on the noisy data), or ``scores(noisy_model, X_train, y_noisy) -> (n_train,)``
        with higher = more suspicious.
    noise_fraction : float, default=0.4
    fractions : sequence of float, default=(0, .05, ..., .3)
        Checked fractions of the training set.
    strategy : {"self", "global"}, default="self"
    validation, validation_size, random_state, n_jobs, verbose
        As in :func:`set_curve`.

    Returns
    -------
    result : DataFrame or dict of arrays
        One row per checked fraction: ``fraction``, ``n_checked``, ``n_found``,
        ``fraction_found`` (noisy rows among the checked / all noisy rows) and the
        held-out ``loss`` (+ ``accuracy``, ``roc_auc`` or ``rmse``, ``r2``) after
        fixing. ``attrs``: ``detection_area`` (area under the detection curve over the
        checked fractions divided by that of a perfect ranking), ``roc_auc`` and
        ``average_precision`` of noisy-vs-clean against the scores, ``clean_loss``
        (the model on clean data), ``n_noisy``.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skinfluence import BoostIn
    >>> from skinfluence.evaluation import noise_detection
    >>> X, y = make_classification(n_samples=120, n_features=4, random_state=0)
    >>> model = HistGradientBoostingClassifier(max_iter=5, random_state=0)
    >>> res = noise_detection(model, X[:80], y[:80], X[80:], y[80:], BoostIn(),
    ...                       noise_fraction=0.2, fractions=[0, 0.1, 0.2])
    >>> res["n_checked"].tolist(), res.attrs["n_noisy"]
    ([0, 8, 16], 16)
    """
    if strategy not in ("self", "global"):
        raise ValueError(f"strategy must be 'self' or 'global', got {strategy!r}")
    fractions = _check_fractions(fractions)
    noise_fraction = float(_check_fractions(noise_fraction, "noise_fraction")[0])
    template, task, classes, scorer, y = _prepare(estimator, X_train, y_train)
    seed = base_seed(random_state)
    X_val, y_val, X_held, y_held = _validation_and_held_out(
        X_test, y_test, validation, validation_size, task, seed
    )
    y_held = np.asarray(y_held)
    n = X_train.shape[0]
    n_noisy = int(np.floor(noise_fraction * n + 1e-9))
    rng = np.random.default_rng([seed, 2])
    noisy = rng.choice(n, size=n_noisy, replace=False)  # without replacement
    y_noisy = np.array(y, copy=True)
    y_noisy[noisy] = _set_labels(rng, y, task, noisy)
    is_noisy = np.zeros(n, dtype=bool)
    is_noisy[noisy] = True

    model = _fit(template, X_train, y_noisy)
    scores = _noise_scores(influence, strategy, model, X_train, y_noisy, X_val, np.asarray(y_val))
    order = _descending(scores)
    counts = np.floor(fractions * n + 1e-9).astype(int)
    found = np.cumsum(is_noisy[order])
    n_found = np.array([found[k - 1] if k else 0 for k in counts])

    jobs = [({"relabel": (order[:k], y[order[:k]])}, "metrics") for k in counts]
    jobs.append(({"relabel": (noisy, y[noisy])}, "metrics"))  # clean labels: reference
    res = _run(
        template, X_train, y_noisy, scorer, X_held, y_held, jobs, n_jobs, verbose, "noise refits"
    )
    clean = res.pop()
    cols = {
        "fraction": fractions,
        "n_checked": counts,
        "n_found": n_found,
        "fraction_found": n_found / max(n_noisy, 1),
    }
    cols.update(_metric_columns(res))

    attrs = {
        "task": task,
        "protocol": "noise",
        "strategy": strategy,
        "n_noisy": n_noisy,
        "noise_fraction": noise_fraction,
        "clean_loss": clean["loss"],
    }
    # area under the detection curve on the checked range, relative to a perfect ranking
    grid = np.arange(0, int(counts.max()) + 1)
    if len(grid) > 1:
        got = np.concatenate([[0], found])[grid]
        best = np.minimum(grid, n_noisy)
        attrs["detection_area"] = float(got.sum() / best.sum()) if best.sum() else np.nan
    else:
        attrs["detection_area"] = np.nan
    if 0 < n_noisy < n:
        from sklearn.metrics import average_precision_score, roc_auc_score

        attrs["roc_auc"] = float(roc_auc_score(is_noisy, scores))
        attrs["average_precision"] = float(average_precision_score(is_noisy, scores))
    else:
        attrs["roc_auc"] = attrs["average_precision"] = np.nan
    return _to_result(cols, attrs)
