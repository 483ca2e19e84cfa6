"""Session-7 study: weight rows instead of (or besides) removing them.

``w_p``: every row weighted by its out-of-fold probability of its label (clipped at
0.05); ``cj_w``: the confident joint's rows removed, the rest weighted so; ``cj_wt``: the
same with the probability relative to the class threshold (capped at 1). 20% noise, 2
seeds, the classification sets of ``bench_cleaning_noise.py``. Writes
``cleaning_equal_budget_weights.jsonl``; compare with ``cleaning_equal_budget.jsonl`` (the
same settings).
"""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
from bench_cleaning_noise import DATASETS, corrupt, load, make_model, split, task_metric  # noqa: E402
from cleaning_equal_budget import confident_other  # noqa: E402


def run(name, X, y, task, noise, seed):
    k = int(y.max()) + 1
    Xtr, ytr, Xte, yte = split(X, y, task, 1000, seed)
    yn, _ = corrupt(Xtr, ytr, task, noise, 0.2, seed)
    model = make_model("lightgbm", task, seed)
    rows = np.arange(len(yn))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    P = cross_val_predict(clone(model), Xtr, yn, cv=folds, method="predict_proba")
    p = P[rows, yn]
    t = np.array([P[yn == j, j].mean() for j in range(P.shape[1])])
    keep = np.flatnonzero(~confident_other(P, yn))

    def score(kept, w):
        Xk = Xtr.iloc[kept] if hasattr(Xtr, "iloc") else Xtr[kept]
        fitted = clone(model).fit(Xk, yn[kept], sample_weight=w[kept])
        return task_metric(fitted, Xte, yte, task, k)[0]

    out = {"ds": name, "noise": noise, "seed": seed}
    out["w_p"] = score(rows, np.clip(p, 0.05, 1))
    out["cj_w"] = score(keep, np.clip(p, 0.05, 1))
    out["cj_wt"] = score(keep, np.clip(p / t[yn], 0.05, 1))
    return out


def main():
    warnings.filterwarnings("ignore")
    names = [n for n, (_, t) in DATASETS.items() if t != "regression"]
    with threadpool_limits(1), open(HERE / "cleaning_equal_budget_weights.jsonl", "a") as fh:
        for name in names:
            X, y, task = load(name)
            for noise in ("uniform", "class", "feature"):
                for seed in (0, 1):
                    fh.write(json.dumps(run(name, X, y, task, noise, seed)) + "\n")
                    fh.flush()


if __name__ == "__main__":
    main()
