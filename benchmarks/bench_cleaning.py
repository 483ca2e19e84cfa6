"""Label-noise cleaning benchmark: does GridSearchCV over InfluenceCleaner help?

For every bundled data set (``skinfluence.datasets``) and every installed library
(sklearn HistGradientBoosting, LightGBM, XGBoost, CatBoost): split train / test, corrupt
20% of the training targets (binary: the other class; multiclass: a random other class;
regression: uniform on [min y, max y], as METHODS.md 12.4), then for every influence
method let ``GridSearchCV`` choose the fraction of rows to remove among
``{0, 0.1, 0.2}`` and report

* ``before``: held-out score (accuracy or R^2, on clean test labels) of the model fitted
  on the noisy data;
* ``after``: held-out score of the grid search's best cleaner;
* ``frac``: the fraction it chose;
* ``prec@20``: share of corrupted rows among the 20% rows the method removes first
  (chance = 0.20).

Usage::

    python benchmarks/bench_cleaning.py --quick        # small subsamples, ~minutes
    python benchmarks/bench_cleaning.py                # larger subsamples, all methods
"""

import argparse
import importlib
import time
import warnings

import numpy as np
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.preprocessing import LabelEncoder
from threadpoolctl import threadpool_limits

from skinfluence import BoostIn, testing
from skinfluence.cleaning import InfluenceCleaner
from skinfluence.datasets import DATASETS, load_dataset

LIBRARIES = ("sklearn_hgb", "lightgbm", "xgboost", "catboost")
FRACTIONS = (0.0, 0.1, 0.2)
NOISE = 0.2


def methods(quick):
    """(name, influence estimator, criterion) for every importable method."""
    out = [("BoostIn", BoostIn(), "self"), ("BoostIn-oof", BoostIn(), "oof")]
    wanted = [
        ("skinfluence._trex", "TREX", {}),
        ("skinfluence._leaf_influence", "LeafInfluence", {}),
        ("skinfluence._similarity", "LeafSim", {}),
        ("skinfluence._baselines", "LossInfluence", {}),
    ]
    if not quick:
        wanted += [
            ("skinfluence._leaf_influence", "LeafRefit", {}),
            ("skinfluence._retrain", "SubSample", {"n_iter": 200}),
        ]
    for module, name, kw in wanted:
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        out.append((name, cls(**kw), "self"))
    return out


# each library's tree shape: about 31 leaves
_SHAPE = {
    "sklearn_hgb": {"max_leaf_nodes": 31},
    "lightgbm": {"num_leaves": 31, "min_child_samples": 5},
    "xgboost": {"max_depth": 5, "tree_method": "hist"},
    "catboost": {"depth": 5},
}


def make_model(lib, task, n_estimators):
    # CatBoost gets the categorical columns as numeric codes (see noisy_split)
    return testing.make_model(
        lib,
        task,
        n_estimators=n_estimators,
        categorical=lib != "catboost",
        **_SHAPE[lib],
    )


def noisy_split(name, lib, n_train, n_test, seed=0):
    # CatBoost takes categoricals as numeric codes here (no CTRs, NaN allowed)
    X, y, task = load_dataset(name, categorical="codes" if lib == "catboost" else "category")
    strat = y if task != "regression" else None
    X_tr, X_te, y_tr, y_te = train_test_split(
        X,
        y,
        train_size=min(n_train, len(y) // 2),
        test_size=min(n_test, len(y) // 2),
        random_state=seed,
        stratify=strat,
    )
    if task != "regression":
        enc = LabelEncoder().fit(y)
        y_tr, y_te = enc.transform(y_tr), enc.transform(y_te)
    rng = np.random.default_rng(seed)
    n = len(y_tr)
    bad = rng.choice(n, size=int(NOISE * n), replace=False)
    y_noisy = y_tr.copy()
    if task == "regression":
        y_noisy[bad] = rng.uniform(y_tr.min(), y_tr.max(), size=len(bad))
    else:
        k = int(y_tr.max()) + 1
        y_noisy[bad] = (y_tr[bad] + rng.integers(1, k, size=len(bad))) % k
    flipped = np.zeros(n, dtype=bool)
    flipped[bad] = True
    return X_tr, y_noisy, flipped, X_te, y_te, task


def run(args):
    rows = []
    n_train, n_test, n_est = (400, 1000, 50) if args.quick else (1500, 2000, 100)
    datasets = args.datasets or list(DATASETS)
    libs = [lib for lib in (args.libraries or LIBRARIES) if lib in testing.available_libraries()]
    header = (
        f"{'data':9s} {'library':12s} {'method':14s} {'before':>7s} {'after':>7s} "
        f"{'gain':>7s} {'frac':>5s} {'prec@20':>7s} {'sec':>6s}"
    )
    print(header)
    print("-" * len(header))
    for name in datasets:
        for lib in libs:
            X, y, flipped, X_te, y_te, task = noisy_split(name, lib, n_train, n_test)
            model = make_model(lib, task, n_est)
            before = model.fit(X, y).score(X_te, y_te)
            for mname, method, criterion in methods(args.quick):
                t0 = time.perf_counter()
                cleaner = InfluenceCleaner(model, method, criterion=criterion, cv=3, random_state=0)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        search = GridSearchCV(
                            cleaner,
                            {"fraction": list(FRACTIONS)},
                            cv=3,
                            error_score=np.nan,
                            n_jobs=args.n_jobs,
                        )
                        search.fit(X, y)
                        best = search.best_estimator_
                        top = (
                            best
                            if best.fraction == 0.2
                            else cleaner.set_params(fraction=0.2).fit(X, y)
                        )
                except Exception as exc:  # a method that refuses this model (every
                    # candidate failed, e.g. BoostIn on CatBoost multiclass)
                    msg = f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}"
                    print(f"{name:9s} {lib:12s} {mname:14s} {'n/a':>7s}  {msg}")
                    continue
                after = best.score(X_te, y_te)
                prec = float(flipped[top.removed_indices_].mean())
                sec = time.perf_counter() - t0
                rows.append((name, lib, mname, before, after, best.fraction, prec))
                print(
                    f"{name:9s} {lib:12s} {mname:14s} {before:7.4f} {after:7.4f} "
                    f"{after - before:+7.4f} {best.fraction:5.2f} {prec:7.3f} {sec:6.1f}",
                    flush=True,
                )
    if rows:
        print("\nper method (mean over data sets x libraries):")
        for mname in dict.fromkeys(r[2] for r in rows):
            sel = [r for r in rows if r[2] == mname]
            gain = np.mean([r[4] - r[3] for r in sel])
            prec = np.mean([r[6] for r in sel])
            wins = sum(r[4] > r[3] for r in sel)
            print(f"  {mname:14s} gain {gain:+.4f}  prec@20 {prec:.3f}  improved {wins}/{len(sel)}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick", action="store_true", help="400 training rows, 50 trees, fast methods only"
    )
    p.add_argument("--datasets", nargs="*", choices=list(DATASETS))
    p.add_argument("--libraries", nargs="*", choices=list(LIBRARIES))
    p.add_argument("--n-jobs", type=int, default=1, help="GridSearchCV n_jobs")
    args = p.parse_args()
    with threadpool_limits(1):
        run(args)


if __name__ == "__main__":
    main()
