"""Why does removal by self-influence hurt where it hurts? Decompose the removed set.

For each setting (LightGBM, 20 % noise, uniform and class-conditional, seeds 0 and 1,
the splits and noise of ``bench_cleaning_noise.py``), the rows that
``InfluenceCleaner(fraction=0.1)`` removes are split into the corrupted ones (tp) and
the clean ones (fp); the model is refitted without each part, without as many randomly
chosen corrupted rows, and without the rows of highest out-of-fold loss. Also recorded:
the rarer class's share of each part and the out-of-fold probability of the given
label. Run (about 5 minutes)::

    PYTHONPATH=. python benchmarks/results/cleaning_noise_decompose.py \
        credit,spam,breast_cancer,hpc,wine

Results: ``cleaning_noise_decompose.json`` (summarised in ``doc/cleaning.rst``).
"""

# ruff: noqa: E402, C408  (a script: the benchmark folder goes on sys.path before its import)

import sys
import warnings

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
warnings.simplefilter("ignore")
import bench_cleaning_noise as B
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.utils import _safe_indexing as take
from threadpoolctl import threadpool_limits

from skinfluence.cleaning import InfluenceCleaner


def fit_score(model, X, y, keep, Xte, yte, task, k):
    m = clone(model).fit(take(X, keep), y[keep])
    return B.task_metric(m, Xte, yte, task, k)[0]


out = []
with threadpool_limits(1):
    for ds in sys.argv[1].split(","):
        for noise in ("uniform", "class"):
            for seed in (0, 1):
                X, y, task = B.load(ds)
                Xtr, ytr, Xte, yte = B.split(X, y, task, 1000, seed)
                yn, mask = B.corrupt(Xtr, ytr, task, noise, 0.2, seed)
                k = int(y.max()) + 1
                model = B.make_model("lightgbm", task, seed)
                n = len(yn)
                ic = InfluenceCleaner(clone(model), fraction=0.1).fit(Xtr, yn)
                sel = ic.selected_indices_
                tp, fp = sel[mask[sel]], sel[~mask[sel]]
                rng = np.random.default_rng(seed)
                all_ = np.arange(n)
                P = cross_val_predict(
                    clone(model),
                    Xtr,
                    yn,
                    cv=StratifiedKFold(5, shuffle=True, random_state=0),
                    method="predict_proba",
                )
                p_given = P[np.arange(n), yn]
                # loss-ranked with the same number of true positives
                loss_order = np.argsort(-(-np.log(np.clip(p_given, 1e-12, 1))), kind="stable")
                loss_sel = loss_order[: len(sel)]
                rand_flipped = rng.choice(np.flatnonzero(mask), len(tp), replace=False)
                rare = np.argmin(np.bincount(yn))
                r = dict(
                    ds=ds,
                    noise=noise,
                    seed=seed,
                    n_sel=len(sel),
                    prec=len(tp) / max(len(sel), 1),
                    none=fit_score(model, Xtr, yn, all_, Xte, yte, task, k),
                    self=fit_score(model, Xtr, yn, np.setdiff1d(all_, sel), Xte, yte, task, k),
                    tp_only=fit_score(model, Xtr, yn, np.setdiff1d(all_, tp), Xte, yte, task, k),
                    fp_only=fit_score(model, Xtr, yn, np.setdiff1d(all_, fp), Xte, yte, task, k),
                    rand_flipped_same_n=fit_score(
                        model, Xtr, yn, np.setdiff1d(all_, rand_flipped), Xte, yte, task, k
                    ),
                    loss=fit_score(model, Xtr, yn, np.setdiff1d(all_, loss_sel), Xte, yte, task, k),
                    loss_prec=float(mask[loss_sel].mean()),
                    fp_rare=float(np.mean(yn[fp] == rare)) if len(fp) else np.nan,
                    tp_rare=float(np.mean(yn[tp] == rare)) if len(tp) else np.nan,
                    rare_all=float(np.mean(yn == rare)),
                    fp_oof_pgiven=float(np.median(p_given[fp])) if len(fp) else np.nan,
                    clean_oof_pgiven=float(np.median(p_given[~mask])),
                    tp_oof_pgiven=float(np.median(p_given[tp])) if len(tp) else np.nan,
                    flipped_missed_oof_pgiven=float(
                        np.median(p_given[np.setdiff1d(np.flatnonzero(mask), tp)])
                    ),
                )
                out.append(r)
                print(
                    {kk: (round(v, 4) if isinstance(v, float) else v) for kk, v in r.items()},
                    flush=True,
                )
import json

json.dump(out, open(__file__.replace(".py", ".json"), "w"))
