"""Cost of the exact multiclass LeafInfluence against the diagonal form.

Usage::

    python benchmarks/bench_multiclass_leaf_influence.py [--quick] [--repeat R]

A LightGBM 5-class model (100 rounds x 5 trees, 31 leaves, learning rate 0.1) on
n_train = 5,000 synthetic rows; both forms run side by side in one process, each
timing the best of ``R`` interleaved runs. Reports ``fit``, ``transform`` (200
queries), ``global_influence`` for ``update_set=-1`` and ``0``, and the forward mode
(``self_influence``; ``update_set=2`` fit) on the first 1,000 rows with 20 rounds, and
the exact / diagonal time ratios as a markdown table. ``--quick``: 1,000 rows, 20 rounds.
"""

import argparse

import numpy as np
from _common import lightgbm_model, timed

from skinfluence._leaf_influence import LeafInfluence

N_CLASSES = 5


def data(n, d=10, seed=0):
    """``n`` rows of ``d`` Gaussian features and a 5-class label from a noisy score."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    z = X[:, 0] + 0.5 * X[:, 1] ** 2 - X[:, 2] + X[:, 3] * X[:, 4] + 0.5 * rng.normal(size=n)
    return X, np.digitize(z, np.quantile(z, np.linspace(0, 1, N_CLASSES + 1)[1:-1]))


def cases(n_train, n_rounds, n_query, n_forward, forward_rounds):
    """(name, {form: callable}) of every timed step."""
    X, y = data(n_train + n_query)
    X, y, Xq, yq = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    model = lightgbm_model(n_estimators=n_rounds).fit(X, y)
    Xf, yf = X[:n_forward], y[:n_forward]
    small = lightgbm_model(n_estimators=forward_rounds).fit(Xf, yf)
    out = []
    for u in (-1, 0):
        fitted = {f: LeafInfluence(model, update_set=u, multiclass=f).fit(X, y) for f in FORMS}
        out += [
            (f"update_set={u} fit", {f: _fit(model, u, f, X, y) for f in FORMS}),
            (f"update_set={u} transform", {f: _call(fitted[f].transform, Xq, yq) for f in FORMS}),
            (
                f"update_set={u} global_influence",
                {f: _call(fitted[f].global_influence, Xq, yq) for f in FORMS},
            ),
        ]
    fwd = {f: LeafInfluence(small, multiclass=f).fit(Xf, yf) for f in FORMS}
    out += [
        (
            f"self_influence ({n_forward:,} rows, {forward_rounds} rounds)",
            {f: _call(fwd[f].self_influence) for f in FORMS},
        ),
        (
            f"update_set=2 fit ({n_forward:,} rows, {forward_rounds} rounds)",
            {f: _fit(small, 2, f, Xf, yf) for f in FORMS},
        ),
    ]
    return out


FORMS = ("exact", "diagonal")


def _fit(model, u, form, X, y):
    return lambda: LeafInfluence(model, update_set=u, multiclass=form).fit(X, y)


def _call(fn, *args):
    return lambda: fn(*args)


def warm_up():
    """Compile every kernel of both forms."""
    X, y = data(200)
    m = lightgbm_model(n_estimators=3, num_leaves=4).fit(X, y)
    for form in FORMS:
        for u in (-1, 0, 2):
            e = LeafInfluence(m, update_set=u, multiclass=form).fit(X, y)
            e.transform(X[:5], y[:5])
            e.global_influence(X[:5], y[:5])
            e.self_influence()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    n_train, n_rounds = (1_000, 20) if args.quick else (5_000, 100)
    n_forward, forward_rounds = (300, 10) if args.quick else (1_000, 20)
    warm_up()
    print(
        f"\n### LeafInfluence multiclass forms: LightGBM {N_CLASSES} classes, "
        f"n_train = {n_train:,}, {n_rounds} rounds x {N_CLASSES} trees, 200 queries "
        f"(best of {args.repeat})\n"
    )
    print("| step | exact (s) | diagonal (s) | exact / diagonal |")
    print("|---|---|---|---|")
    for name, fns in cases(n_train, n_rounds, 200, n_forward, forward_rounds):
        best = dict.fromkeys(FORMS, np.inf)
        for _ in range(args.repeat):  # interleaved: both forms see the same machine load
            for f in FORMS:
                best[f] = min(best[f], timed(fns[f])[0])
        ratio = best["exact"] / best["diagonal"]
        print(
            f"| {name} | {best['exact']:.3f} | {best['diagonal']:.3f} | {ratio:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
