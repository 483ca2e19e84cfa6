"""Shared machinery of the evaluation protocols: refits, losses, edits, rankings.

Every protocol refits ``clone(model)`` (same hyperparameters and seed, the model's own
thread count set to 1) on an edited copy of the training set and measures the loss of
query rows from the refit model's ``predict_proba`` (classification, probabilities
clipped to ``[1e-5, 1 - 1e-5]``) or ``predict`` (regression, ``0.5 (y - y_hat)**2``, or
the objective's own loss at the raw score of the prediction for the other regression
objectives, e.g. Poisson), as in :ref:`methods-evaluation`. Refits go through
:class:`joblib.Parallel`.
"""

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.utils import _safe_indexing
from sklearn.utils.multiclass import type_of_target
from threadpoolctl import threadpool_limits

from .._adapters import is_fitted, refit_template, to_ensemble  # one refit policy everywhere
from .._objectives import (
    clipped_true_proba,
    model_loss,
    model_prediction,
    model_proba,
    squared_loss,
)
from .._parallel import split_batches
from ..base import _progress


# ------------------------------------------------------------------------- results
def _to_result(columns, attrs=None):
    """A pandas DataFrame (with ``attrs``) when pandas is installed, else a dict."""
    columns = {k: np.asarray(v) for k, v in columns.items()}
    attrs = dict(attrs or {})
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is an optional extra
        out = dict(columns)
        out["attrs"] = attrs
        return out
    df = pd.DataFrame(columns)
    df.attrs.update(attrs)
    return df


def _columns(result):
    """Columns of a result (DataFrame or dict) as a dict of numpy arrays."""
    if hasattr(result, "columns") and hasattr(result, "to_numpy"):
        return {c: result[c].to_numpy() for c in result.columns}
    return {k: np.asarray(v) for k, v in result.items() if k != "attrs"}


def _attrs(result):
    if hasattr(result, "attrs") and not isinstance(result, dict):
        return dict(result.attrs)
    return dict(result.get("attrs", {}))


# --------------------------------------------------------------------------- models
def _final(model):
    from sklearn.pipeline import Pipeline

    return model.steps[-1][1] if isinstance(model, Pipeline) else model


def _task(model, y):
    """``"regression"``, ``"binary"`` or ``"multiclass"`` from the model and labels."""
    final = _final(model)
    if is_regressor(final):
        return "regression"
    kind = type_of_target(y)
    if is_classifier(final) or kind in ("binary", "multiclass"):
        return "binary" if len(np.unique(y)) <= 2 else "multiclass"
    return "regression"


def _fit(template, X, y):
    with threadpool_limits(limits=1):
        return clone(template).fit(X, y)


def _regression_loss(estimator):
    """How :func:`model_loss` scores a regressor whose objective is not the squared
    error (``objective``, ``param``, ``link``), read from the fitted model; None for
    the squared error, or when the model cannot be read (unfitted, unsupported)."""
    try:
        if not is_fitted(estimator):
            return None
        ens = to_ensemble(estimator)
    except Exception:  # any model the adapters refuse is scored by the squared error
        return None
    if not ens.is_regression or ens.objective == "squared_error":
        return None
    link = None if ens.predicts_raw else ens.objective
    return {"objective": ens.objective, "param": ens.objective_param, "link": link}


class _Scorer:
    """Loss, prediction and true-class output of a fitted model on labelled rows
    (``regression_loss``: see :func:`_regression_loss`)."""

    def __init__(self, task, classes=None, regression_loss=None):
        self.task = task
        self.classes = None if classes is None else np.asarray(classes)
        self.regression_loss = regression_loss

    def evaluate(self, model, X, y):
        """Dict of per-row ``loss``, ``prediction`` (label or value), ``proba_true`` and
        the full ``proba`` matrix (classification)."""
        with threadpool_limits(limits=1):
            return self._evaluate(model, X, y)

    def _evaluate(self, model, X, y):
        if self.task == "regression":
            pred = model_prediction(model, X)
            spec = self.regression_loss
            if spec is None:
                return {"loss": squared_loss(y, pred), "prediction": pred}
            yf = np.asarray(y, dtype=np.float64)
            loss = model_loss(model, X, yf, spec["objective"], None, spec["param"], spec["link"])
            return {"loss": loss, "prediction": pred}
        # a refit that lost a class has probability 0 for it
        P = model_proba(model, X, self.classes)
        p = clipped_true_proba(P, np.searchsorted(self.classes, np.asarray(y)))
        return {
            "loss": -np.log(p),
            "prediction": self.classes[np.argmax(P, axis=1)],
            "proba_true": p,
            "proba": P,
        }


def _held_out_metrics(scorer, model, X, y):
    """Mean loss and task scores on a held-out set."""
    out = scorer.evaluate(model, X, y)
    res = {"loss": float(out["loss"].mean())}
    if scorer.task == "regression":
        err = np.asarray(y, dtype=np.float64) - out["prediction"]
        res["rmse"] = float(np.sqrt(np.mean(err**2)))
        var = np.var(np.asarray(y, dtype=np.float64))
        res["r2"] = float(1 - np.mean(err**2) / var) if var > 0 else np.nan
        return res
    from sklearn.metrics import roc_auc_score

    res["accuracy"] = float(np.mean(out["prediction"] == np.asarray(y)))
    P = out["proba"]
    try:
        if scorer.task == "binary":
            res["roc_auc"] = float(roc_auc_score(np.asarray(y) == scorer.classes[1], P[:, 1]))
        else:
            rows = P / np.clip(P.sum(axis=1, keepdims=True), 1e-300, None)
            res["roc_auc"] = float(
                roc_auc_score(np.asarray(y), rows, multi_class="ovr", labels=scorer.classes)
            )
    except ValueError:  # a class absent from the held-out rows
        res["roc_auc"] = np.nan
    return res


# ---------------------------------------------------------------------------- edits
def _mean_row(X):
    """The training-mean feature vector (mode for non-numeric DataFrame columns)."""
    if hasattr(X, "columns") and hasattr(X, "iloc"):
        import pandas as pd

        vals = {}
        for c in X.columns:
            col = X[c]
            if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
                vals[c] = col.mean()
            else:
                vals[c] = col.mode(dropna=True).iloc[0]
        return vals
    return np.nanmean(np.asarray(X, dtype=np.float64), axis=0)


def _apply_edit(X, y, edit, mean_row):
    """The training set after ``edit``: a dict with optional ``drop`` (indices),
    ``relabel`` (indices, labels) and ``poison`` (indices set to the mean row)."""
    relabel = edit.get("relabel")
    poison = edit.get("poison")
    if relabel is not None:
        idx, labels = relabel
        y = np.array(y, copy=True)
        if len(idx):
            y[np.asarray(idx)] = labels
    if poison is not None and len(poison):
        poison = np.asarray(poison)
        if hasattr(X, "columns") and hasattr(X, "iloc"):
            X = X.copy()
            for j, c in enumerate(X.columns):
                value = mean_row[c]
                if isinstance(value, float) and X[c].dtype.kind in "iub":
                    X[c] = X[c].astype(np.float64)  # the mean of an integer column
                X.iloc[poison, j] = value
        else:
            X = np.array(X, copy=True)
            X[poison] = mean_row
    drop = edit.get("drop")
    if drop is not None and len(drop):
        keep = np.ones(len(y), dtype=bool)
        keep[np.asarray(drop)] = False
        X, y = _safe_indexing(X, keep), np.asarray(y)[keep]
    return X, y


def _edit_job(edit, top, labels, k):
    """The edit of the first ``k`` rows of ``top``: ``"remove"`` drops them, the others
    relabel them to ``labels[:k]`` and ``"poison"`` also gives them the training-mean
    features (see :func:`_apply_edit`)."""
    idx = top[:k]
    if edit == "remove":
        return {"drop": idx}
    job = {"relabel": (idx, labels[:k])}
    if edit == "poison":
        job["poison"] = idx
    return job


def _random_labels(rng, y, task, n, different_from=None):
    """Random labels: uniform over the label set (or over the classes other than
    ``different_from``), or Uniform[min y, max y] for regression."""
    if task == "regression":
        y = np.asarray(y, dtype=np.float64)
        return rng.uniform(y.min(), y.max(), size=n)
    classes = np.unique(y)
    if different_from is None:
        return classes[rng.integers(len(classes), size=n)]
    cur = np.searchsorted(classes, np.asarray(different_from))
    shift = rng.integers(1, len(classes), size=n)
    return classes[(cur + shift) % len(classes)]


def _adversarial_labels(task, classes, y_ref, proba=None, y_train=None):
    """The label that works against ``y_ref`` per row: binary, the other class;
    multiclass, the most probable class other than ``y_ref`` (the second most probable
    when the prediction is right); regression, the quartile of the training target on
    the other side of its median (not the reference's sign-fragile median +- median/2).
    """
    y_ref = np.asarray(y_ref)
    if task == "regression":
        yt = np.asarray(y_train, dtype=np.float64)
        q25, med, q75 = np.quantile(yt, [0.25, 0.5, 0.75])
        return np.where(y_ref.astype(np.float64) >= med, q25, q75)
    if task == "binary":
        return np.where(y_ref == classes[0], classes[1], classes[0])
    P = np.array(proba, dtype=np.float64, copy=True)
    P[np.arange(len(P)), np.searchsorted(classes, y_ref)] = -np.inf
    return classes[np.argmax(P, axis=1)]


# ------------------------------------------------------------------------- rankings
def _descending(scores):
    """Row indices by descending score, ties to the lower index (per row if 2-D)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        raise ValueError("influence scores must be finite")
    return np.argsort(-scores, axis=-1, kind="stable")


def _is_explainer(obj):
    return hasattr(obj, "fit") and (hasattr(obj, "transform") or hasattr(obj, "global_influence"))


def _fitted_explainer(influence, model, X, y):
    """A fitted explainer of ``model``: a fitted one is used as given; an unfitted one
    is cloned, pointed at ``model`` (``estimator=model``) and fitted on ``(X, y)``."""
    if hasattr(influence, "ensemble_") or hasattr(influence, "n_train_"):
        return influence
    exp = clone(influence)
    if "estimator" in exp.get_params(deep=False):
        exp.set_params(estimator=model)
    return exp.fit(X, y)


def _check_fractions(fractions, name="fractions", high=1.0):
    f = np.atleast_1d(np.asarray(fractions, dtype=np.float64))
    if f.ndim != 1 or len(f) == 0 or np.any(f < 0) or np.any(f > high):
        raise ValueError(
            f"{name} must be a non-empty list of values in [0, {high}], got {fractions!r}"
        )
    return f


def _prepare(estimator, X, y):
    """Template, task, class list, scorer and the refit of the full training set."""
    y = np.asarray(y)
    if len(y) != X.shape[0]:
        raise ValueError(f"y has {len(y)} entries but X has {X.shape[0]} rows")
    template = refit_template(estimator)
    task = _task(template, y)
    classes = None if task == "regression" else np.unique(y)
    spec = _regression_loss(estimator) if task == "regression" else None
    return template, task, classes, _Scorer(task, classes, spec), y


# ------------------------------------------------------------------------- parallel
def _fit_eval_batch(template, X, y, mean_row, scorer, Xe, ye, jobs):
    """Refit on each edited training set; evaluate on rows of ``(Xe, ye)``.

    ``jobs``: list of ``(edit, rows)`` with ``rows`` the evaluation rows (None: all).
    Returns one dict per job: per-row outputs on the evaluation rows, or the held-out
    metrics when ``rows == "metrics"``.
    """
    out = []
    with threadpool_limits(limits=1):
        for edit, rows in jobs:
            Xt, yt = _apply_edit(X, y, edit, mean_row)
            model = clone(template).fit(Xt, yt)
            if isinstance(rows, str):
                out.append(_held_out_metrics(scorer, model, Xe, ye))
            else:
                Xr = Xe if rows is None else _safe_indexing(Xe, rows)
                yr = ye if rows is None else np.asarray(ye)[rows]
                res = scorer.evaluate(model, Xr, yr)
                res.pop("proba", None)
                out.append(res)
    return out


def _run(template, X, y, scorer, Xe, ye, jobs, n_jobs, verbose, desc, mean_row=None):
    """Run ``jobs`` in batches through joblib; results in job order."""
    if mean_row is None:
        mean_row = _mean_row(X)
    if not jobs:
        return []
    batches = split_batches(jobs, n_jobs, n_serial=50)  # serial: a finer progress bar
    gen = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(_fit_eval_batch)(template, X, y, mean_row, scorer, Xe, ye, b) for b in batches
    )
    out = []
    for part in _progress(gen, len(batches), verbose, desc):
        out.extend(part)
    return out
