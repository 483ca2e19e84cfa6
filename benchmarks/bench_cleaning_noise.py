"""Noisy-label cleaning benchmark: does InfluenceCleaner give a better model?

Every *setting* is one (data set, noise model, noise rate, seed, model). In it the
training targets are corrupted, every *arm* fits a model on the noisy training rows
(possibly cleaned) and is scored on the test rows with their CLEAN targets:

* binary: ROC AUC; multiclass: accuracy (log-loss also recorded); regression: R^2.

Arms (side by side, on the same split and the same corrupted labels):

* ``none``: the model on the noisy labels; ``truth``: on the true labels (ceiling);
* ``cleanlab``: ``cleanlab.classification.CleanLearning`` (5-fold out-of-fold
  probabilities of the same model, ``find_label_issues``, refit on the rest);
  regression: ``cleanlab.regression.learn.CleanLearning``;
* ``ic_default``: ``InfluenceCleaner(model, random_state=seed)``: the defaults of the
  checked-out version;
* fixed-fraction arms (``fraction=0.1``): every criterion / action / new option;
* grid arms: the cross-validated choice (3 folds, as ``GridSearchCV(cv=3)``: the
  same splits, the same default ``score``, ties to the first candidate) among
  candidate fractions. ``grid`` is the user guide's grid ``fraction in {0, .01, .05,
  .1}``, ``grid_issue`` issue 16's ``{0, .05, .1, .2}``. ``*@metric`` picks by the
  task metric (AUC / log-loss / R^2) on the noisy validation folds, ``*@trusted`` by
  the task metric on the validation folds with their CLEAN labels (what a trusted
  validation set would give; an optimistic reference, not a usable arm).

For each arm that acts on rows: precision / recall of the corrupted rows among the rows
acted on, the share of the rarest (noisy) class among them, and (scoring arms) the
ROC AUC of the ranking score for finding corrupted rows. Paired differences against
``none`` and ``cleanlab`` are summarised with t intervals over settings and with a
bootstrap over data sets (clustered: data sets resampled, settings kept together).

Noise models (rate r, share of the training rows unless said otherwise):

* ``uniform``: classification: a random other class; regression: uniform on [min y,
  max y];
* ``class``: binary: a share r of the rarest class flipped to the other class (class
  conditional, one direction); multiclass: pair noise, class c -> c + 1 (mod k) with
  probability r; regression: not used (see ``heavy``);
* ``feature``: systematic: rows chosen with probability rising with a first model's
  confusion (1 - out-of-fold probability of the true class; regression: the squared
  rank of the out-of-fold prediction), flipped to the class that model finds most
  likely among the others (regression: the target halved: large values under-reported);
* ``heavy`` (regression): y + std(y) * Cauchy noise.

Usage::

    nice -n 10 python benchmarks/bench_cleaning_noise.py --quick     # ~ minutes
    nice -n 10 python benchmarks/bench_cleaning_noise.py             # full: hours
    python benchmarks/bench_cleaning_noise.py --report-only          # table from JSON

Rows are appended to the JSON as settings finish (a partial run is usable; settings
already in the JSON are skipped, so a run can be resumed or extended).
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.metrics import accuracy_score, log_loss, r2_score, roc_auc_score
from sklearn.model_selection import check_cv, cross_val_predict, train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import _safe_indexing
from threadpoolctl import threadpool_limits

from skinfluence.cleaning import InfluenceCleaner

HERE = Path(__file__).parent
OUT_MD = HERE / "results" / "cleaning_noise.md"
OUT_JSON = HERE / "results" / "cleaning_noise.json"

DATASETS = {
    # name: (loader, task)
    "credit": ("skinfluence:credit", "binary"),
    "spam": ("skinfluence:spam", "binary"),
    "breast_cancer": ("sklearn:load_breast_cancer", "binary"),
    "digits_binary": ("sklearn:load_digits", "binary"),
    "hpc": ("skinfluence:hpc", "multiclass"),
    "wine": ("sklearn:load_wine", "multiclass"),
    "iris": ("sklearn:load_iris", "multiclass"),
    "digits": ("sklearn:load_digits", "multiclass"),
    "concrete": ("skinfluence:concrete", "regression"),
    "diabetes": ("sklearn:load_diabetes", "regression"),
}
NOISES = ("uniform", "class", "feature", "heavy")
CLF_NOISES = ("uniform", "class", "feature")
REG_NOISES = ("uniform", "heavy", "feature")
FRACTION = 0.1  # the fixed-fraction arms
GRID_FRACTIONS = (0.0, 0.01, 0.05, 0.1, 0.2)
GRIDS = {"grid": (0.0, 0.01, 0.05, 0.1), "grid_issue": (0.0, 0.05, 0.1, 0.2)}

#: the selection of the defaults for classifiers (session 8)
_DEFAULT_SEL = {"fraction": "auto", "balance": "joint", "loss_weight": 0.5}
#: fixed-fraction arms: name -> InfluenceCleaner parameters (besides fraction)
FIXED = {
    "self": {},
    "self_relabel": {"action": "relabel"},
    "validation": {"criterion": "validation"},
    "oof": {"criterion": "oof"},
    "oof_relabel": {"criterion": "oof", "action": "relabel"},
    "self_balanced": {"balance": "class"},
    "self_loss0.5": {"loss_weight": 0.5},
    "self_bal_loss0.5": {"balance": "class", "loss_weight": 0.5},
    "loss_only": {"loss_weight": 1.0},
    "bal_loss_only": {"balance": "class", "loss_weight": 1.0},
    "self_bal_loss0.5_relabel": {"balance": "class", "loss_weight": 0.5, "action": "relabel"},
    # fraction="auto": as many rows as the out-of-fold models contradict
    "auto_self": {"fraction": "auto"},
    "auto_bal_loss0.5": {"fraction": "auto", "balance": "class", "loss_weight": 0.5},
    "auto_loss_only": {"fraction": "auto", "loss_weight": 1.0, "balance": None},
    "auto_bal_loss0.5_relabel": {
        "fraction": "auto",
        "balance": "class",
        "loss_weight": 0.5,
        "action": "relabel",
    },
    # added after the first partial full run (run with --arms to add them to it)
    "self_scaled": {"balance": "scale"},
    "auto_balanced": {"fraction": "auto", "balance": "class"},
    "auto_scaled": {"fraction": "auto", "balance": "scale"},
    "auto_scaled_loss0.5": {"fraction": "auto", "balance": "scale", "loss_weight": 0.5},
    # session 7: "auto" counts the confident joint's off-diagonal rows (classifiers with
    # predict_proba); rows of the "auto" arms above that predate it used the count of
    # out-of-fold misclassified rows
    "auto_loss0.5": {"fraction": "auto", "loss_weight": 0.5, "balance": None},
    # session 8: each class acts on as many of its rows as the confident joint counts
    "auto_joint_loss0.5": {"fraction": "auto", "balance": "joint", "loss_weight": 0.5},
    "auto_joint_loss_only": {"fraction": "auto", "balance": "joint", "loss_weight": 1.0},
    # session 9: other uses of the default selection (auto_joint_loss0.5): keep every row
    # and down-weight the selected ones, repeat the cleaning, relabel the sure ones.
    # Keys starting with "_" set a private rule of the cleaner (pilot variants)
    "auto_joint_loss0.5_reweight_proba": {
        **_DEFAULT_SEL,
        "action": "reweight",
        "_reweight_rule": "proba",
    },
    "auto_joint_loss0.5_reweight_joint": {
        **_DEFAULT_SEL,
        "action": "reweight",
        "_reweight_rule": "joint",
    },
    "auto_joint_loss0.5_relabel": {**_DEFAULT_SEL, "action": "relabel"},
    "auto_joint_loss0.5_hybrid": {**_DEFAULT_SEL, "action": "hybrid"},
    "auto_joint_loss0.5_hybrid0.2": {**_DEFAULT_SEL, "action": "hybrid", "_hybrid_margin": 0.2},
    # a round acting on more rows than the round before ends the repetition (the pilot's
    # rows named auto_joint_loss0.5_rounds3_noguard were run before that rule)
    "auto_joint_loss0.5_rounds2": {**_DEFAULT_SEL, "n_rounds": 2},
    "auto_joint_loss0.5_rounds3": {**_DEFAULT_SEL, "n_rounds": 3},
    # reweighting twice: the second round cleans the rows of positive weight, weighted
    "auto_joint_loss0.5_reweight_joint_rounds2": {
        **_DEFAULT_SEL,
        "action": "reweight",
        "_reweight_rule": "joint",
        "n_rounds": 2,
    },
    # session 10: out-of-fold probabilities averaged over 2 different 5-fold splits
    # (n_repeats=2). The pilot rows of these arms (seeds 10-11) were run with a private
    # rule that drew the second split as a new KFold seed instead of
    # RepeatedStratifiedKFold; the pilot's "_cw" arms (cleanlab's class weights after
    # removal, a private rule since removed) were level with the defaults
    "auto_joint_loss0.5_rep2": {**_DEFAULT_SEL, "n_repeats": 2},
    "auto_joint_loss0.5_reweight_joint_rounds2_rep2": {
        **_DEFAULT_SEL,
        "action": "reweight",
        "_reweight_rule": "joint",
        "n_rounds": 2,
        "n_repeats": 2,
    },
    # session 10, regression diagnosis: is the budget or the ranking short of
    # cleanlab's regressor? fixed budgets of 10 and 20 % with the default ranking
    "loss0.5_rep2_f0.1": {"fraction": 0.1, "loss_weight": 0.5, "n_repeats": 2},
    "loss0.5_rep2_f0.2": {"fraction": 0.2, "loss_weight": 0.5, "n_repeats": 2},
    "auto_loss0.5_rep2": {"fraction": "auto", "loss_weight": 0.5, "balance": None, "n_repeats": 2},
}
#: trusted-set arms: a share TRUSTED of the training rows has its labels verified (true
#: labels, kept in training with them) and is given to fit as trusted_set
TRUSTED = 0.1
TRUSTED_ARMS = {
    # session 8: the verified rows are held out of X and given as trusted_set only (the
    # session-7 arm "trusted_grid" kept them in X as well: scored in-sample, every
    # candidate fits them, and the ties went to fraction 0 - that arm measured nothing)
    "trusted_heldout": {"fraction": [0.0, 0.05, 0.1, 0.2, "auto"], "loss_weight": 0.5},
}
#: grids over the fractions of a variant: name -> (InfluenceCleaner parameters,
#: candidate fractions)
VARIANT_FRACTIONS = (0.0, 0.05, 0.1, 0.2, "auto")
VARIANT_GRIDS = {
    "grid_bal_loss0.5": ({"balance": "class", "loss_weight": 0.5}, VARIANT_FRACTIONS),
    # session 8: the recommended grid with the defaults fraction="auto", loss_weight=0.5:
    # cross-validation decides between no cleaning and the default cleaning
    "grid_auto": ({"loss_weight": 0.5, "balance": None}, (0.0, "auto")),
    # the same with balance="joint" (what balance="auto", the default, is for classifiers)
    "grid_auto_joint": ({"loss_weight": 0.5, "balance": "joint"}, (0.0, "auto")),
    # session 10: the recommended grid over the checked-out defaults (nothing pinned:
    # "auto" is the default cleaning, reweighting twice for classifiers)
    "grid_defaults": ({"_defaults": True}, (0.0, "auto")),
}
QUICK_FIXED = (
    "self",
    "self_relabel",
    "oof",
    "self_balanced",
    "self_bal_loss0.5",
    "loss_only",
    "auto_self",
    "auto_bal_loss0.5",
    "auto_loss_only",
)


# ------------------------------------------------------------------------ data
def load(name, categorical="category"):
    src, task = DATASETS[name]
    lib, fn = src.split(":")
    if lib == "skinfluence":
        from skinfluence.datasets import load_dataset

        X, y, _ = load_dataset(fn, categorical=categorical)
    else:
        import sklearn.datasets as skd

        X, y = getattr(skd, fn)(return_X_y=True)
        if name == "digits_binary":
            y = (y >= 5).astype(int)
    if task != "regression":
        y = LabelEncoder().fit_transform(y)
    else:
        y = np.asarray(y, dtype=np.float64)
    return X, y, task


def split(X, y, task, n_train, seed):
    n = len(y)
    n_tr = min(n_train, int(round(n * 2 / 3)))
    n_te = min(2000, n - n_tr)
    idx_tr, idx_te = train_test_split(
        np.arange(n),
        train_size=n_tr,
        test_size=n_te,
        random_state=seed,
        stratify=y if task != "regression" else None,
    )
    return (
        _safe_indexing(X, idx_tr),
        y[idx_tr],
        _safe_indexing(X, idx_te),
        y[idx_te],
    )


def _confusion_model(task, seed):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    return cls(max_iter=50, early_stopping=False, random_state=seed)


def corrupt(X, y, task, noise, rate, seed):
    """The corrupted targets and the mask of corrupted rows."""
    rng = np.random.default_rng(seed + 1000)
    n = len(y)
    y_noisy = y.copy()
    k_rows = int(round(rate * n))
    if task == "regression":
        if noise == "uniform":
            bad = rng.choice(n, k_rows, replace=False)
            y_noisy[bad] = rng.uniform(y.min(), y.max(), size=k_rows)
        elif noise == "heavy":
            bad = rng.choice(n, k_rows, replace=False)
            y_noisy[bad] = y[bad] + y.std() * rng.standard_cauchy(k_rows)
        elif noise == "feature":
            pred = cross_val_predict(_confusion_model(task, seed), X, y, cv=3)
            w = (np.argsort(np.argsort(pred)) + 1.0) ** 2
            bad = rng.choice(n, k_rows, replace=False, p=w / w.sum())
            y_noisy[bad] = 0.5 * y[bad]
        else:
            raise ValueError(noise)
    else:
        k = int(y.max()) + 1
        if noise == "uniform":
            bad = rng.choice(n, k_rows, replace=False)
            y_noisy[bad] = (y[bad] + rng.integers(1, k, size=k_rows)) % k
        elif noise == "class":
            if k == 2:
                rare = np.argmin(np.bincount(y))
                pool = np.flatnonzero(y == rare)
                bad = rng.choice(pool, int(round(rate * len(pool))), replace=False)
                y_noisy[bad] = 1 - rare
            else:
                bad = np.flatnonzero(rng.random(n) < rate)
                y_noisy[bad] = (y[bad] + 1) % k
        elif noise == "feature":
            P = cross_val_predict(_confusion_model(task, seed), X, y, cv=3, method="predict_proba")
            w = 1.0 - P[np.arange(n), y] + 0.02
            bad = rng.choice(n, k_rows, replace=False, p=w / w.sum())
            P_other = P[bad].copy()
            P_other[np.arange(len(bad)), y[bad]] = -1.0
            y_noisy[bad] = P_other.argmax(axis=1)
        else:
            raise ValueError(noise)
    mask = np.zeros(n, dtype=bool)
    mask[bad] = True
    mask &= y_noisy != y
    return y_noisy, mask


# ---------------------------------------------------------------------- models
def make_model(kind, task, seed):
    if kind == "lightgbm":
        import lightgbm as lgb

        cls = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
        return cls(n_estimators=100, num_leaves=15, random_state=seed, n_jobs=1, verbose=-1)
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    return cls(max_iter=100, max_leaf_nodes=15, early_stopping=False, random_state=seed)


def task_metric(model, X, y, task, n_classes):
    """(primary, secondary): AUC & accuracy / accuracy & log-loss / R^2 & NaN."""
    if task == "regression":
        return float(r2_score(y, model.predict(X))), float("nan")
    P = model.predict_proba(X)
    if task == "binary":
        return float(roc_auc_score(y, P[:, 1])), float(accuracy_score(y, P.argmax(1)))
    labels = np.arange(n_classes)
    cls = np.asarray(model.classes_)
    full = np.zeros((len(y), n_classes))
    full[:, cls] = P
    acc = float(accuracy_score(y, cls[P.argmax(1)]))
    return acc, float(log_loss(y, np.clip(full, 1e-15, 1), labels=labels))


# ------------------------------------------------------------------------ arms
def _rows_stats(sel, mask, y_noisy, task):
    sel = np.asarray(sel, dtype=np.intp)
    out = {"n_sel": len(sel), "acted_share": len(sel) / len(mask)}
    out["precision"] = float(mask[sel].mean()) if len(sel) else float("nan")
    out["recall"] = float(mask[sel].sum() / max(mask.sum(), 1)) if mask.any() else float("nan")
    if task != "regression" and len(sel):
        rare = np.argmin(np.bincount(y_noisy))
        out["rare_share_sel"] = float(np.mean(y_noisy[sel] == rare))
        out["rare_share_all"] = float(np.mean(y_noisy == rare))
    return out


def _ranking_stats(cleaner, mask, y_noisy, task):
    """Detection AUC of the ranking score and (self-influence) scale per class."""
    out = {}
    harm = cleaner.harm_
    ok = ~np.isnan(harm)
    if mask[ok].any() and (~mask[ok]).any():
        out["detect_auc"] = float(roc_auc_score(mask[ok], harm[ok]))
    if task != "regression":
        rare = np.argmin(np.bincount(y_noisy))
        clean = ok & ~mask
        a = harm[clean & (y_noisy == rare)]
        b = harm[clean & (y_noisy != rare)]
        if len(a) and len(b):
            # median harm of clean rows of the rarest class over that of the others
            out["harm_rare_vs_rest"] = float(np.median(a) - np.median(b)) / (
                float(np.std(harm[ok])) + 1e-300
            )
    return out


#: the cleaner's defaults before session 8 (and the action, rounds and splits before
#: session 10), pinned so that every arm keeps its meaning (``ic_default`` alone
#: follows the current defaults)
PINNED = {"loss_weight": 0.0, "balance": None, "action": "remove", "n_rounds": 1, "n_repeats": 1}


def run_fixed(name, params, model, Xtr, y_noisy, mask, Xte, yte, task, k, seed):
    params = {"fraction": FRACTION, **PINNED, **params}
    private = {key: params.pop(key) for key in list(params) if key.startswith("_")}
    est = InfluenceCleaner(clone(model), cv=5, random_state=seed, **params)
    for key, value in private.items():
        setattr(est, key, value)
    est.fit(Xtr, y_noisy)
    score, score2 = task_metric(est, Xte, yte, task, k)
    row = {"arm": name, "score": score, "score2": score2}
    row.update(_rows_stats(est.selected_indices_, mask, y_noisy, task))
    row.update(_ranking_stats(est, mask, y_noisy, task))
    return row


def run_trusted(name, params, model, Xtr, y_noisy, y_true, mask, Xte, yte, task, k, seed):
    """A verified share of the training rows (true labels) is the trusted set, held
    out of the rows the cleaner trains on; references: no cleaning on all rows with
    the verified labels (``trusted_none``, what the user would do otherwise) and on
    the unverified rows only (``trusted_rest_none``)."""
    rng = np.random.default_rng(seed + 2000)
    n = len(y_noisy)
    verified = np.sort(rng.choice(n, int(round(TRUSTED * n)), replace=False))
    rest = np.setdiff1d(np.arange(n), verified)
    y_fit = y_noisy.copy()
    y_fit[verified] = y_true[verified]
    trusted = (_safe_indexing(Xtr, verified), y_true[verified])
    scoring = "roc_auc" if task == "binary" else None
    kw = {"action": "remove", "n_rounds": 1, "n_repeats": 1, **params}  # session-8 meaning
    est = InfluenceCleaner(clone(model), cv=5, random_state=seed, scoring=scoring, **kw)
    est.fit(_safe_indexing(Xtr, rest), y_noisy[rest], trusted_set=trusted)
    score, score2 = task_metric(est, Xte, yte, task, k)
    row = {"arm": name, "score": score, "score2": score2, "picked": est.fraction_}
    row.update(_rows_stats(est.selected_indices_, mask[rest], y_noisy[rest], task))
    s1, s2 = task_metric(clone(model).fit(Xtr, y_fit), Xte, yte, task, k)
    r1, r2 = task_metric(
        clone(model).fit(_safe_indexing(Xtr, rest), y_noisy[rest]), Xte, yte, task, k
    )
    return [
        {"arm": "trusted_none", "score": s1, "score2": s2},
        {"arm": "trusted_rest_none", "score": r1, "score2": r2},
        row,
    ]


def run_cleanlab(model, Xtr, y_noisy, mask, Xte, yte, task, k, seed):
    if task == "regression":
        from cleanlab.regression.learn import CleanLearning

        Xa = Xtr.to_numpy(dtype=np.float64) if hasattr(Xtr, "to_numpy") else Xtr
        Xb = Xte.to_numpy(dtype=np.float64) if hasattr(Xte, "to_numpy") else Xte
        cl = CleanLearning(clone(model), seed=seed).fit(Xa, y_noisy)
        issues = np.flatnonzero(cl.get_label_issues()["is_label_issue"].to_numpy())
        score, score2 = task_metric(cl, Xb, yte, task, k)
    else:
        from cleanlab.classification import CleanLearning

        cl = CleanLearning(clone(model), seed=seed, verbose=False).fit(Xtr, y_noisy)
        issues = np.flatnonzero(cl.label_issues_df["is_label_issue"].to_numpy())
        score, score2 = task_metric(cl.clf, Xte, yte, task, k)  # the refitted model
    row = {"arm": "cleanlab", "score": score, "score2": score2}
    row.update(_rows_stats(issues, mask, y_noisy, task))
    return row


def _cv_scores(est, Xtr, y_noisy, y_true, task, k):
    """Per-fold (default score noisy, task metric noisy, task metric clean)."""
    cv = check_cv(3, y_noisy, classifier=task != "regression")
    out = []
    for tr, va in cv.split(Xtr, y_noisy):
        Xa, Xv = _safe_indexing(Xtr, tr), _safe_indexing(Xtr, va)
        try:
            fitted = clone(est).fit(Xa, y_noisy[tr])
        except ValueError:  # a candidate that would empty a class: GridSearchCV's
            out.append((np.nan, np.nan, np.nan))  # error_score=nan
            continue
        default = fitted.score(Xv, y_noisy[va])
        noisy = _metric_for_grid(fitted, Xv, y_noisy[va], task, k)
        clean = _metric_for_grid(fitted, Xv, y_true[va], task, k)
        out.append((default, noisy, clean))
    return np.nanmean(np.array(out, dtype=float), axis=0)


def _metric_for_grid(model, X, y, task, k):
    """Larger is better: AUC, minus log-loss, R^2."""
    s1, s2 = task_metric(model, X, y, task, k)
    return -s2 if task == "multiclass" else s1


def run_grid(prefix, params, fractions, model, Xtr, y_noisy, y_true, mask, Xte, yte, task, k, seed):
    """The grid's candidates fitted on all training rows and cross-validated."""
    cands = []
    for f in fractions:
        kw = {} if params.get("_defaults") else {**PINNED, **params}
        est = InfluenceCleaner(clone(model), fraction=f, cv=5, random_state=seed, **kw)
        cv = _cv_scores(est, Xtr, y_noisy, y_true, task, k)
        fitted = est.fit(Xtr, y_noisy)
        test = task_metric(fitted, Xte, yte, task, k)
        stats = _rows_stats(fitted.selected_indices_, mask, y_noisy, task)
        cands.append({"fraction": f, "cv": cv.tolist(), "test": test, "stats": stats})
    return cands


def grid_rows(name, cands, fractions):
    sub = [c for c in cands if c["fraction"] in fractions]
    rows = []
    for suffix, col in (("", 0), ("@metric", 1), ("@trusted", 2)):
        cv = np.array([c["cv"][col] for c in sub])
        best = sub[int(np.nanargmax(cv))] if np.isfinite(cv).any() else sub[0]
        row = {"arm": name + suffix, "score": best["test"][0], "score2": best["test"][1]}
        row["picked"] = best["fraction"]  # a number or "auto"
        row.update(best["stats"])
        if suffix == "":
            test = np.array([c["test"][0] for c in sub])
            row["oracle_fraction"] = sub[int(np.argmax(test))]["fraction"]
            row["regret"] = float(test.max() - best["test"][0])
            row["cand_test"] = test.tolist()
            row["cand_cv_default"] = cv.tolist()
            row["cand_cv_clean"] = [c["cv"][2] for c in sub]
        rows.append(row)
    return rows


def run_setting(ds, noise, rate, seed, kind, n_train, quick, only=None):
    """Every arm in one setting (``only``: just these arms, for adding arms to a run)."""
    X, y, task = load(ds)
    Xtr, ytr, Xte, yte = split(X, y, task, n_train, seed)
    y_noisy, mask = corrupt(Xtr, ytr, task, noise, rate, seed)
    k = int(y.max()) + 1 if task != "regression" else 0
    model = make_model(kind, task, seed)
    rows = []

    def want(name):
        return only is None or name in only

    def add(row):
        row["sec"] = round(time.perf_counter() - add.t, 2)
        add.t = time.perf_counter()
        rows.append(row)

    add.t = time.perf_counter()
    for arm, yy in (("none", y_noisy), ("truth", ytr)):
        if want(arm):
            fitted = clone(model).fit(Xtr, yy)
            s1, s2 = task_metric(fitted, Xte, yte, task, k)
            add({"arm": arm, "score": s1, "score2": s2})
    if want("cleanlab"):
        add(run_cleanlab(model, Xtr, y_noisy, mask, Xte, yte, task, k, seed))
    if want("ic_default"):  # seeded folds since session 10 (unseeded before)
        default = InfluenceCleaner(clone(model), random_state=seed).fit(Xtr, y_noisy)
        s1, s2 = task_metric(default, Xte, yte, task, k)
        row = {"arm": "ic_default", "score": s1, "score2": s2}
        row.update(_rows_stats(default.selected_indices_, mask, y_noisy, task))
        row.update(_ranking_stats(default, mask, y_noisy, task))
        add(row)
    for name, params in FIXED.items():
        if (quick and name not in QUICK_FIXED) or not want(name):
            continue
        if task == "regression" and params.get("balance"):
            continue
        try:
            add(run_fixed(name, params, model, Xtr, y_noisy, mask, Xte, yte, task, k, seed))
        except ValueError as exc:
            print(f"    {name}: {exc}", file=sys.stderr)
    data = (model, Xtr, y_noisy, ytr, mask, Xte, yte, task, k, seed)
    for name, params in TRUSTED_ARMS.items():
        if want(name) and not quick:
            for row in run_trusted(name, params, *data):
                add(row)
    if want("grid") or want("grid_issue"):
        cands = run_grid("grid", {}, GRID_FRACTIONS, *data)
        for gname, fr in GRIDS.items():
            rows.extend(grid_rows(gname, cands, fr))
    for gname, (params, fr) in VARIANT_GRIDS.items():
        if task == "regression" and params.get("balance"):
            continue
        if (quick and gname != "grid_bal_loss0.5") or not want(gname):
            continue
        cands = run_grid(gname, params, fr, *data)
        rows.extend(grid_rows(gname, cands, fr))
    meta = {
        "data": ds,
        "task": task,
        "noise": noise,
        "rate": rate,
        "seed": seed,
        "model": kind,
        "n_train": len(ytr),
        "n_test": len(yte),
        "n_corrupted": int(mask.sum()),
    }
    for r in rows:
        r.update(meta)
    return rows


# --------------------------------------------------------------------- summary
def _t_interval(d):
    from scipy import stats

    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return (float(np.mean(d)) if len(d) else np.nan), np.nan, np.nan
    m, se = d.mean(), d.std(ddof=1) / np.sqrt(len(d))
    h = stats.t.ppf(0.975, len(d) - 1) * se
    return m, m - h, m + h


def _cluster_bootstrap(d, groups, n_boot=2000, seed=0):
    d = np.asarray(d, dtype=float)
    groups = np.asarray(groups)
    ok = np.isfinite(d)
    d, groups = d[ok], groups[ok]
    names = np.unique(groups)
    if len(names) < 2:
        return np.nan, np.nan
    by = [d[groups == g] for g in names]
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(names), len(names))
        means.append(np.concatenate([by[i] for i in pick]).mean())
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _key(r):
    return (r["data"], r["noise"], r["rate"], r["seed"], r["model"])


def summarize(rows):
    by_setting = {}
    for r in rows:
        by_setting.setdefault(_key(r), {})[r["arm"]] = r
    # a setting of an --arms run that the main run has not reached has no anchor
    by_setting = {k: v for k, v in by_setting.items() if "none" in v and "cleanlab" in v}
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    lines = []
    n_set = len(by_setting)
    lines.append(
        f"{n_set} settings; score = ROC AUC (binary), accuracy (multiclass), R^2 "
        "(regression), on clean test labels. d = arm - reference, paired per setting; "
        "[t 95% interval over settings] {bootstrap 95% over data sets}; W/L = settings "
        "where the arm scores higher / lower than the reference."
    )
    # classification and regression are summarised apart: R^2 differences under
    # heavy-tailed target noise are unbounded (tens of units) and would swamp the rest
    for task in ("classification", "binary", "multiclass", "regression"):
        members = ("binary", "multiclass") if task == "classification" else (task,)
        sets = {k: v for k, v in by_setting.items() if v["none"]["task"] in members}
        if not sets:
            continue
        lines += ["", f"### {task} ({len(sets)} settings)", ""]
        lines.append(
            "| arm | mean score | d vs none | W/L vs none | d vs cleanlab | W/L vs cleanlab "
            "| precision | recall | rare-class share of rows acted on (all rows) |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for arm in arms:
            cells = [(v[arm], v["none"], v.get("cleanlab")) for v in sets.values() if arm in v]
            if not cells:
                continue
            sc = np.array([a["score"] for a, _, _ in cells])
            groups = [a["data"] for a, _, _ in cells]
            parts = [arm, f"{np.nanmean(sc):.4f}"]
            for ref in (1, 2):
                d = np.array([c[0]["score"] - c[ref]["score"] if c[ref] else np.nan for c in cells])
                m, lo, hi = _t_interval(d)
                blo, bhi = _cluster_bootstrap(d, groups)
                parts.append(f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}] {{{blo:+.4f}, {bhi:+.4f}}}")
                parts.append(f"{int(np.sum(d > 1e-12))}/{int(np.sum(d < -1e-12))}")
            prec = [a.get("precision", np.nan) for a, _, _ in cells]
            rec = [a.get("recall", np.nan) for a, _, _ in cells]
            rs = [a.get("rare_share_sel", np.nan) for a, _, _ in cells]
            ra = [a.get("rare_share_all", np.nan) for a, _, _ in cells]
            parts.append(_fmt(np.nanmean(prec) if np.isfinite(prec).any() else np.nan))
            parts.append(_fmt(np.nanmean(rec) if np.isfinite(rec).any() else np.nan))
            parts.append(
                f"{_fmt(np.nanmean(rs))} ({_fmt(np.nanmean(ra))})" if np.isfinite(rs).any() else ""
            )
            lines.append("| " + " | ".join(parts) + " |")
    return lines


def _fmt(x):
    return "" if not np.isfinite(x) else f"{x:.3f}"


def per_group_table(rows, arms):
    """Mean score over seeds per data set x noise x rate x model, for a few arms."""
    groups = {}
    for r in rows:
        groups.setdefault((r["data"], r["noise"], r["rate"], r["model"]), {}).setdefault(
            r["arm"], []
        ).append(r["score"])
    lines = [
        "| data | noise | rate | model | seeds | " + " | ".join(arms) + " |",
        "|---" * (5 + len(arms)) + "|",
    ]
    for g, v in sorted(groups.items()):
        if "none" not in v:
            continue
        cells = [f"{np.mean(v[a]):.4f}" if a in v else "" for a in arms]
        lines.append(
            f"| {g[0]} | {g[1]} | {g[2]} | {g[3]} | {len(v['none'])} | " + " | ".join(cells) + " |"
        )
    return lines


def diagnostics(rows):
    lines = [
        "| task | arm | detection AUC of the ranking score | clean rare-class rows: median harm "
        "minus "
        "the others', in sd of harm | share of rows acted on | grid: best fraction on the "
        "clean test | grid: regret of the pick |",
        "|---|---|---|---|---|---|---|",
    ]
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    for task, arm in [(t, a) for t in ("binary", "multiclass", "regression") for a in arms]:
        sel = [r for r in rows if r["arm"] == arm and r["task"] == task]
        da = [r.get("detect_auc", np.nan) for r in sel]
        hr = [r.get("harm_rare_vs_rest", np.nan) for r in sel]
        pf = [r.get("acted_share", np.nan) for r in sel]
        of = [r.get("oracle_fraction", np.nan) for r in sel]
        of = [x if isinstance(x, float) else np.nan for x in of]
        rg = [r.get("regret", np.nan) for r in sel]
        if not any(np.isfinite(x).any() for x in (da, hr, pf)):
            continue
        vals = [_fmt(np.nanmean(x)) if np.isfinite(x).any() else "" for x in (da, hr, pf, of, rg)]
        lines.append(f"| {task} | {arm} | " + " | ".join(vals) + " |")
    return lines


def write_report(rows, config, out_md):
    key_arms = ["none", "truth", "cleanlab", "self", "oof", "self_bal_loss0.5", "loss_only"]
    key_arms += ["auto_bal_loss0.5", "grid", "grid@trusted", "grid_bal_loss0.5"]
    md = ["# Cleaning noisy labels: benchmark results", ""]
    md += ["Produced by `benchmarks/bench_cleaning_noise.py`; configuration:", ""]
    md += ["```", json.dumps(config, indent=1), "```", ""]
    md += ["## Paired differences", ""] + summarize(rows)
    md += ["", "## Diagnostics", ""] + diagnostics(rows)
    md += ["", "## Per data set x noise (mean over seeds)", ""] + per_group_table(rows, key_arms)
    Path(out_md).write_text("\n".join(md) + "\n")


# ------------------------------------------------------------------------ main
def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1 seed, uniform 20%%, 500 rows")
    p.add_argument("--datasets", nargs="*", choices=list(DATASETS))
    p.add_argument("--noises", nargs="*", choices=list(NOISES))
    p.add_argument("--rates", nargs="*", type=float)
    p.add_argument("--seeds", type=int, help="number of seeds")
    p.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed..seeds-1")
    p.add_argument("--models", nargs="*", choices=["lightgbm", "hgb"])
    p.add_argument("--n-train", type=int)
    p.add_argument("--json", help="results file (default: results/cleaning_noise[_quick].json)")
    p.add_argument("--report-only", action="store_true")
    p.add_argument(
        "--arms",
        nargs="*",
        help="run only these arms (to add arms to the settings of an earlier run: the "
        "splits, noise and models are seeded, so the arms stay paired); their rows go to "
        "--json, read together with --extra-json files by the report",
    )
    p.add_argument("--extra-json", nargs="*", default=[], help="more result files to report")
    args = p.parse_args()
    quick = args.quick
    config = {
        "mode": "quick" if quick else "full",
        "datasets": args.datasets or list(DATASETS),
        "noises": args.noises or (["uniform"] if quick else list(NOISES)),
        "rates": args.rates or ([0.2] if quick else [0.05, 0.2, 0.4]),
        "seeds": args.seeds or (1 if quick else 5),
        "models": args.models or (["lightgbm"] if quick else ["lightgbm", "hgb"]),
        "n_train": args.n_train or (500 if quick else 2000),
        "fixed_fraction": FRACTION,
        "grids": GRIDS,
        "variant_grids": VARIANT_GRIDS,
        "variant_grid_fractions": VARIANT_FRACTIONS,
    }
    stem = "_quick" if quick else ""
    path = Path(args.json or str(OUT_JSON).replace(".json", f"{stem}.json"))
    out_md = path.with_suffix(".md")
    stored = json.loads(path.read_text()) if path.exists() else {"rows": []}
    rows = stored["rows"]
    if args.report_only and "config" in stored:
        config = stored["config"]  # what was run, not this command line's defaults
    extra = [r for f in args.extra_json for r in json.loads(Path(f).read_text())["rows"]]
    only = set(args.arms) if args.arms else None
    if not args.report_only:
        done = {_key(r) for r in rows if only is None or r["arm"] in only}
        warnings.simplefilter("ignore")
        os.environ.setdefault("PYTHONWARNINGS", "ignore")
        with threadpool_limits(1):
            todo = [
                (ds, noise, rate, seed, kind)
                for seed in range(
                    args.first_seed, config["seeds"]
                )  # seeds outermost: a partial run
                for rate in config["rates"]  # covers every data set and noise model
                for noise in config["noises"]
                for ds in config["datasets"]
                for kind in config["models"]
                if noise in (REG_NOISES if DATASETS[ds][1] == "regression" else CLF_NOISES)
            ]
            for ds, noise, rate, seed, kind in todo:
                if (ds, noise, rate, seed, kind) in done:
                    continue
                t = time.perf_counter()
                new = run_setting(ds, noise, rate, seed, kind, config["n_train"], quick, only)
                rows.extend(new)
                path.write_text(json.dumps({"config": config, "rows": rows}))
                if only is None:
                    write_report(rows + extra, config, out_md)
                scores = " ".join(f"{r['arm']} {r['score']:.4f}" for r in new[:6])
                print(
                    f"{ds:13s} {noise:8s} {rate:.2f} s{seed} {kind:8s} {scores} "
                    f"{time.perf_counter() - t:6.1f}s",
                    flush=True,
                )
    if only is None:
        write_report(rows + extra, config, out_md)
        print("\n".join(summarize(rows + extra)))


if __name__ == "__main__":
    main()
