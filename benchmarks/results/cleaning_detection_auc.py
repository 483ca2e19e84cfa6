"""Detection ROC AUC of per-row scores for finding corrupted labels (session-7 study).

Scores: in-sample and out-of-fold log-loss, BoostIn and LeafInfluence self-influence, and
in-sample loss plus self-influence; ``@p`` columns: precision among as many top rows as
there are corrupted rows. Usage: ``python benchmarks/results/cleaning_detection_auc.py
0.2 2`` (rates, number of seeds); writes ``cleaning_detection_auc.json`` beside it.
"""

import json
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from bench_cleaning_noise import DATASETS, corrupt, load, make_model, split
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from skinfluence import BoostIn, LeafInfluence

warnings.filterwarnings("ignore")
out = []
rates = [float(r) for r in sys.argv[1].split(",")] if len(sys.argv) > 1 else [0.2]
seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 2


def logloss_rows(P, y):
    return -np.log(np.clip(P[np.arange(len(y)), y], 1e-15, 1))


with threadpool_limits(1):
    for name, (_, task) in DATASETS.items():
        if task == "regression":
            continue
        X, y, task = load(name)
        for noise in ("uniform", "class", "feature"):
            for rate in rates:
                for seed in range(seeds):
                    t0 = time.time()
                    Xtr, ytr, Xte, yte = split(X, y, task, 1000, seed)
                    yn, mask = corrupt(Xtr, ytr, task, noise, rate, seed)
                    model = make_model("lightgbm", task, seed)
                    full = clone(model).fit(Xtr, yn)
                    P_in = full.predict_proba(Xtr)
                    P_oof = cross_val_predict(
                        clone(model),
                        Xtr,
                        yn,
                        cv=StratifiedKFold(5, shuffle=True, random_state=seed),
                        method="predict_proba",
                    )
                    s = {}
                    s["loss_in"] = logloss_rows(P_in, yn)
                    s["loss_oof"] = logloss_rows(P_oof, yn)
                    bi = BoostIn(full).fit(Xtr, yn).self_influence()
                    s["boostin_self"] = bi
                    s["loo_boostin"] = s["loss_in"] + bi
                    li = LeafInfluence(full).fit(Xtr, yn).self_influence()
                    s["leafinf_self"] = li
                    s["loo_leafinf"] = s["loss_in"] + li
                    # margin-type: 1 - p(label) oof
                    s["conf_oof"] = 1 - P_oof[np.arange(len(yn)), yn]
                    row = {
                        "ds": name,
                        "noise": noise,
                        "rate": rate,
                        "seed": seed,
                        "n_noisy": int(mask.sum()),
                    }
                    for k, v in s.items():
                        row[k] = (
                            float(roc_auc_score(mask, v))
                            if 0 < mask.sum() < len(mask)
                            else float("nan")
                        )
                        # precision at true noise count
                        m = int(mask.sum())
                        top = np.argsort(-v, kind="stable")[:m]
                        row[k + "@p"] = float(mask[top].mean()) if m else float("nan")
                    row["t"] = time.time() - t0
                    out.append(row)
                    print(json.dumps(row), flush=True)
json.dump(out, open(__import__("pathlib").Path(__file__).with_suffix(".json"), "w"))
