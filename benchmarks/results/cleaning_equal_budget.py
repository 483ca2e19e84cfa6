"""Cleaning noisy labels: which ranking and which budget, side by side with cleanlab.

Session-7 study behind ``fraction="auto"``'s confident-joint count. In each setting
(data set x noise model x rate x seed; LightGBM 100 trees x 15 leaves, 1,000 training
rows, as in ``bench_cleaning_noise.py`` whose loaders, splits, corruptions and metric
it reuses) it fits cleanlab's ``CleanLearning`` and then removes, from the same noisy
rows, the top ``m`` rows of several rankings and refits:

* rankings: ``loss`` (out-of-fold log-loss, 5 stratified folds), ``self`` (BoostIn
  self-influence of the model fitted on all rows), ``avg`` (sum of the ranks of the two:
  ``InfluenceCleaner(loss_weight=0.5)``), ``loo`` (in-sample loss plus self-influence),
  ``avg3`` (ranks of loss, self and loo);
* budgets ``m``: ``cl`` (as many rows as cleanlab flagged), ``cj`` (the off-diagonal
  count of the confident joint from the same out-of-fold probabilities: what
  ``fraction="auto"`` now uses), ``auto`` (the rows the out-of-fold model misclassifies:
  the previous ``"auto"``); ``cjset``: remove exactly the rows the confident joint
  counts.

Usage (appends one JSON line per setting; environment ``SCORES=loss,avg`` and ``NB=2``
restrict the rankings and budgets; ``REPEATS=2`` averages the out-of-fold probabilities of
two differently shuffled 5-fold runs)::

    python benchmarks/results/cleaning_equal_budget.py 0.2 0,1 [data sets] [out.jsonl]
    python benchmarks/results/cleaning_equal_budget.py --report out.jsonl ...
"""

import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_cleaning_noise import DATASETS, corrupt, load, make_model, split, task_metric  # noqa: E402

from skinfluence import BoostIn  # noqa: E402

HERE = Path(__file__).parent


def confident_other(P, y):
    """Reference of the confident joint's off-diagonal rows (independent of the package)."""
    k = P.shape[1]
    t = np.array([P[y == j, j].mean() if np.any(y == j) else 1.0 for j in range(k)])
    above = P >= t
    best = np.where(above, P, -1).argmax(1)
    return above.any(1) & (best != y)


def fit_score(model, X, y, keep, Xte, yte, task, k):
    Xk = X.iloc[keep] if hasattr(X, "iloc") else X[keep]
    return task_metric(clone(model).fit(Xk, y[keep]), Xte, yte, task, k)[0]


def rankings(model, Xtr, yn, seed):
    allr = np.arange(len(yn))
    repeats = int(os.environ.get("REPEATS", "1"))  # out-of-fold runs averaged
    P = np.mean(
        [
            cross_val_predict(
                clone(model),
                Xtr,
                yn,
                cv=StratifiedKFold(5, shuffle=True, random_state=seed + 7919 * r),
                method="predict_proba",
            )
            for r in range(repeats)
        ],
        axis=0,
    )
    loss_oof = -np.log(np.clip(P[allr, yn], 1e-15, 1))
    full = clone(model).fit(Xtr, yn)
    loss_in = -np.log(np.clip(full.predict_proba(Xtr)[allr, yn], 1e-15, 1))
    bi = BoostIn(full).fit(Xtr, yn).self_influence()
    scores = {
        "loss": loss_oof,
        "self": bi,
        "avg": rankdata(loss_oof) + rankdata(bi),
        "loo": loss_in + bi,
        "avg3": rankdata(loss_oof) + rankdata(bi) + rankdata(loss_in + bi),
    }
    return P, scores


def run_setting(name, X, y, task, noise, rate, seed):
    from cleanlab.classification import CleanLearning

    k = int(y.max()) + 1
    Xtr, ytr, Xte, yte = split(X, y, task, 1000, seed)
    yn, mask = corrupt(Xtr, ytr, task, noise, rate, seed)
    model = make_model("lightgbm", task, seed)
    allr = np.arange(len(yn))
    row = {"ds": name, "noise": noise, "rate": rate, "seed": seed, "n_noisy": int(mask.sum())}
    row["none"] = fit_score(model, Xtr, yn, allr, Xte, yte, task, k)
    cl = CleanLearning(clone(model), seed=seed, cv_n_folds=5).fit(Xtr, yn)
    row["cleanlab"] = task_metric(cl.clf, Xte, yte, task, k)[0]
    issues = np.asarray(cl.label_issues_df["is_label_issue"].values)
    row["m_cleanlab"] = m_cl = int(issues.sum())
    row["prec_cleanlab"] = float(mask[issues].mean()) if m_cl and mask.any() else np.nan
    P, scores = rankings(model, Xtr, yn, seed)
    off = confident_other(P, yn)
    budgets = [("cl", m_cl), ("cj", int(off.sum())), ("auto", int((P.argmax(1) != yn).sum()))]
    row["m_cj"], row["m_auto"] = budgets[1][1], budgets[2][1]
    if os.environ.get("SCORES"):
        scores = {s: v for s, v in scores.items() if s in os.environ["SCORES"].split(",")}
    for sname, s in scores.items():
        order = np.lexsort((allr, -s))
        for bname, m in budgets[: int(os.environ.get("NB", "3"))]:
            sel = order[:m]
            row[f"{sname}@{bname}"] = fit_score(
                model, Xtr, yn, np.setdiff1d(allr, sel), Xte, yte, task, k
            )
            row[f"prec_{sname}@{bname}"] = float(mask[sel].mean()) if m else np.nan
    row["cjset"] = fit_score(model, Xtr, yn, np.flatnonzero(~off), Xte, yte, task, k)
    row["prec_cjset"] = float(mask[off].mean()) if off.any() else np.nan
    return row


def report(paths):
    rows = [json.loads(line) for p in paths for line in open(p)]
    seen, uniq = set(), []
    for r in rows:  # rate 0 is the same setting under every noise model
        key = (r["ds"], r["noise"] if r["rate"] > 0 else "-", r["rate"], r["seed"])
        if key not in seen:
            seen.add(key)
            uniq.append(r)
    out = []
    for rate in sorted({r["rate"] for r in uniq}):
        sub = [r for r in uniq if r["rate"] == rate]
        out.append(f"\n### noise rate {rate:g} ({len(sub)} settings)\n")
        out.append("| arm | d vs none [95% t] | W/L | d vs cleanlab [95% t] | W/L | precision |")
        out.append("|---|---|---|---|---|---|")
        arms = [a for a in sub[0] if "@" in a and not a.startswith("prec")]
        for arm in ["cleanlab", *arms, "cjset"]:
            if any(arm not in r for r in sub):
                continue
            cells = [arm]
            for ref in ("none", "cleanlab"):
                d = np.array([r[arm] - r[ref] for r in sub])
                h = 1.96 * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.nan
                cells += [f"{d.mean():+.4f} [{d.mean() - h:+.4f}, {d.mean() + h:+.4f}]"]
                cells += [f"{int((d > 0).sum())}/{int((d < 0).sum())}"]
            prec = [r.get("prec_" + arm, np.nan) for r in sub]
            cells.append(f"{np.nanmean(prec):.3f}" if np.isfinite(prec).any() else "")
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main():
    if sys.argv[1] == "--report":
        print(report(sys.argv[2:]))
        return
    warnings.filterwarnings("ignore")
    rates = [float(r) for r in sys.argv[1].split(",")]
    seeds = [int(s) for s in sys.argv[2].split(",")]
    clf = [n for n, (_, t) in DATASETS.items() if t != "regression"]
    names = sys.argv[3].split(",") if len(sys.argv) > 3 else clf
    out = sys.argv[4] if len(sys.argv) > 4 else HERE / "cleaning_equal_budget.jsonl"
    with threadpool_limits(1), open(out, "a") as fh:
        for name in names:
            X, y, task = load(name)
            for noise in ("uniform", "class", "feature"):
                for rate in rates:
                    for seed in seeds:
                        t0 = time.time()
                        row = run_setting(name, X, y, task, noise, rate, seed)
                        row["t"] = time.time() - t0
                        fh.write(json.dumps(row) + "\n")
                        fh.flush()


if __name__ == "__main__":
    main()
