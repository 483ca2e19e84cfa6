"""Demo: ``python -m skinfluence`` explains a boosted model trained on real data.

Trains a model on a bundled data set (or your CSV), checks that skinfluence reproduces
it exactly, shows the training rows behind a few test predictions, then flips some
training labels and shows how many of them BoostIn's self-influence finds, and what
removing the top-ranked rows does to the held-out score.
"""

import argparse
import sys
import time

import numpy as np

from . import BoostIn
from ._leaf_rule import describe_rule
from .datasets import DATASETS, load_dataset
from .testing import TYPICAL_SHAPES, fit_native, make_model, native_input, native_labels

# the demo's --library choices -> the factory's keys ("sklearn": its histogram model)
_LIBRARY_KEYS = {key.split("_")[0]: key for key in TYPICAL_SHAPES}


# CatBoost as users train it: its own learning rate, depth and leaf steps (None: unset)
_CATBOOST_DEFAULTS = {
    "learning_rate": None,
    "depth": None,
    "leaf_estimation_iterations": None,
    "leaf_estimation_method": None,
}


def _model(key, task, seed, n_trees):
    """The demo's unfitted model: the library's own thread count, categorical columns;
    CatBoost with its own defaults but for one-hot categorical splits."""
    params = {"learning_rate": 0.1, **TYPICAL_SHAPES[key]}
    if key == "catboost":
        params = _CATBOOST_DEFAULTS
    return make_model(
        key,
        task,
        n_estimators=n_trees,
        random_state=seed,
        n_jobs=None,
        categorical=True,
        **params,
    )


def _load(args):
    import pandas as pd

    if args.csv:
        df = pd.read_csv(args.csv)
        if args.target not in df.columns:
            sys.exit(f"column {args.target!r} not in {args.csv}; columns: {list(df.columns)}")
        y = df.pop(args.target).to_numpy()
        for c in df.columns:
            if not pd.api.types.is_numeric_dtype(df[c]):
                df[c] = df[c].astype("category")
        n_unique = len(np.unique(y))
        task = (
            "regression"
            if np.issubdtype(y.dtype, np.number) and n_unique > 20
            else "binary"
            if n_unique == 2
            else "multiclass"
        )
        return df, y, task, args.csv
    X, y, task = load_dataset(args.dataset)
    return X, y, task, args.dataset


def _describe_row(X, y, i):
    vals = ", ".join(f"{c}={X.iloc[i][c]}" for c in X.columns[:6])
    return f"row {i:5d}  y={y[i]!s:>8}  {vals}{' ...' if X.shape[1] > 6 else ''}"


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m skinfluence",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--dataset",
        default="credit",
        choices=sorted(DATASETS),
        help="bundled data set (default: credit, binary with categoricals and NaN)",
    )
    p.add_argument("--csv", help="your own CSV file instead of a bundled data set")
    p.add_argument("--target", help="target column of --csv")
    p.add_argument("--library", default="sklearn", choices=list(_LIBRARY_KEYS))
    p.add_argument("--derivative", default="published", choices=["published", "exact"])
    p.add_argument("--queries", type=int, default=2, help="test predictions to explain")
    p.add_argument("--noise", type=float, default=0.1, help="fraction of labels to flip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--quick", action="store_true", help="at most 1,000 rows and 30 trees (a smoke run)"
    )
    return p


def _split(args):
    """The data set (subsampled with --quick), split 75/25: Xtr, Xte, ytr, yte, task, name."""
    from sklearn.model_selection import train_test_split

    X, y, task, name = _load(args)
    if args.quick:
        keep = np.random.default_rng(args.seed).permutation(len(y))[:1000]
        X, y = X.iloc[np.sort(keep)].reset_index(drop=True), y[np.sort(keep)]
    y = native_labels(_LIBRARY_KEYS[args.library], task, y)
    strat = y if task != "regression" else None
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.25, random_state=args.seed, stratify=strat
    )
    return Xtr.reset_index(drop=True), Xte.reset_index(drop=True), ytr, yte, task, name


def _explain(exp, model, Xtr, ytr, Xte_m, yte, n_queries):
    """Print the reconstruction gap, the held-out score and the top rows of a few queries."""
    ens = exp.ensemble_
    gap = np.abs(ens.raw_from_leaves(ens.leaf_ids(Xte_m)) - ens.raw_predict(Xte_m)).max()
    print(
        f"Reconstruction: {ens.n_trees} trees reproduce the library's raw scores on the "
        f"test rows to {gap:.1e}; every leaf is reproduced from the training rows by "
        f"{describe_rule(ens)}."
    )
    print(f"Score on held-out rows: {model.score(Xte_m, yte):.4f}")
    for q in range(min(n_queries, len(Xte_m))):
        pred = model.predict(Xte_m.iloc[[q]])[0]
        print(f"\n-- test row {q}: true {yte[q]!s}, predicted {pred!s}")
        for kind in ("helpful", "harmful"):
            idx, val = exp.top_k(Xte_m.iloc[[q]], yte[q : q + 1], k=3, kind=kind)
            print(f"   most {kind} training rows:")
            for i, v in zip(idx[0], val[0]):
                print(f"     {v:+.3e}  {_describe_row(Xtr, ytr, i)}")


def _flip_labels(y, noise, seed):
    """A copy of ``y`` with a fraction ``noise`` of its labels set to another class."""
    rng = np.random.default_rng(seed)
    flip = rng.choice(len(y), int(noise * len(y)), replace=False)
    classes = np.unique(y)
    noisy = y.copy()
    for i in flip:
        noisy[i] = rng.choice(classes[classes != y[i]])
    flipped = np.zeros(len(y), bool)
    flipped[flip] = True
    return noisy, flipped


def _find_flipped(args, fit, Xtr, Xtr_m, ytr, Xte_m, yte):
    """Flip some labels, rank the rows by self-influence, retrain without the top ones."""
    noisy, flipped = _flip_labels(ytr, args.noise, args.seed)
    n_flip = int(flipped.sum())
    noisy_model, _ = fit(Xtr, noisy)
    noisy_exp = BoostIn(noisy_model, derivative=args.derivative).fit(Xtr_m, noisy)
    ranking = np.argsort(-noisy_exp.self_influence(), kind="stable")
    print(
        f"\n== Flipped {n_flip} training labels ({args.noise:.0%}). Rows ranked by "
        "BoostIn self-influence:"
    )
    for frac in (0.05, 0.1, 0.2):
        k = int(frac * len(ytr))
        print(
            f"   top {frac:4.0%} ({k:5d} rows) contain {flipped[ranking[:k]].sum():4d} of the "
            f"{n_flip} flipped rows (random: about {int(frac * n_flip)})"
        )
    k = n_flip
    keep = np.sort(ranking[k:])
    cleaned, _ = fit(Xtr.iloc[keep].reset_index(drop=True), noisy[keep])
    print(f"   held-out score trained on noisy labels:        {noisy_model.score(Xte_m, yte):.4f}")
    print(f"   after removing the {k} top-ranked rows:        {cleaned.score(Xte_m, yte):.4f}")


def main(argv=None):
    p = _parser()
    args = p.parse_args(argv)
    if args.csv and not args.target:
        p.error("--csv needs --target")
    t0 = time.perf_counter()
    Xtr, Xte, ytr, yte, task, name = _split(args)
    n_trees = 30 if args.quick else 100
    print(
        f"== {name}: {task}, {len(Xtr)} training rows, {Xtr.shape[1]} features; "
        f"model: {args.library}"
    )

    key = _LIBRARY_KEYS[args.library]

    def fit(X, y):
        return fit_native(_model(key, task, args.seed, n_trees), key, X, y)

    model, Xtr_m = fit(Xtr, ytr)
    Xte_m = native_input(key, Xte)[0]
    exp = BoostIn(model, derivative=args.derivative, verbose=1).fit(Xtr_m, ytr)
    _explain(exp, model, Xtr, ytr, Xte_m, yte, args.queries)
    if task != "regression" and args.noise > 0:
        _find_flipped(args, fit, Xtr, Xtr_m, ytr, Xte_m, yte)
    print(f"\nDone in {time.perf_counter() - t0:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
