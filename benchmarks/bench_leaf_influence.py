"""Speed of LeafInfluence / LeafRefit, side by side with CatBoost's C++ implementation,
BoostIn, and a straightforward numpy implementation of the reference's forward algorithm.

Usage::

    python benchmarks/bench_leaf_influence.py [--quick]

Prints markdown tables of wall-clock seconds and ratios. ``--quick``: n_train = 1,000
only, no LeafRefit / self-influence at 10,000. ``--cpu``: also the CatBoost table
single-threaded, with process CPU times (the fairer measure on a shared machine).
"""

import argparse
import time

import numpy as np
from _common import lightgbm_model, timed

from skinfluence._leaf_influence import LeafInfluence, LeafRefit

try:
    from skinfluence import BoostIn
except ImportError:  # pragma: no cover
    from skinfluence._boostin import BoostIn


def data(n, d=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    z = X[:, 0] + 0.5 * X[:, 1] ** 2 - X[:, 2] + X[:, 3] * X[:, 4] + 0.5 * rng.normal(size=n)
    return X, (z > np.median(z)).astype(int)


def warm_up():
    X, y = data(300)
    import lightgbm as lgb

    m = lgb.LGBMClassifier(n_estimators=5, num_leaves=8, verbose=-1).fit(X, y)
    for u in (-1, 0, 2):
        e = LeafInfluence(m, update_set=u).fit(X, y)
        e.transform(X[:5], y[:5])
        e.self_influence()
        LeafRefit(m, update_set=u).fit(X, y).transform(X[:5], y[:5])
    BoostIn(m).fit(X, y).transform(X[:5], y[:5])
    try:  # the CatBoost rows compile nothing in their timings
        c = catboost_model(X, y)
    except ImportError:  # pragma: no cover
        return
    for u in CATBOOST_METHODS.values():
        LeafInfluence(c, update_set=u).fit(X, y).transform(X[:5], y[:5])


def fitted_bytes(explainer):
    """Bytes of the numpy arrays a fitted explainer holds (each buffer counted once)."""
    seen, total, stack = set(), 0, [vars(explainer)]
    while stack:
        obj = stack.pop()
        if isinstance(obj, np.ndarray):
            while isinstance(obj.base, np.ndarray):  # a view: its owner
                obj = obj.base
            if id(obj) not in seen:
                seen.add(id(obj))
                total += obj.nbytes
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("skinfluence"):
            stack.append(vars(obj))
    return total


def catboost_model(X, y):
    import catboost as cb

    return cb.CatBoostClassifier(
        iterations=100,
        depth=6,
        learning_rate=0.1,
        loss_function="Logloss",
        leaf_estimation_iterations=1,
        leaf_estimation_method="Newton",
        boosting_type="Plain",
        verbose=0,
        allow_writing_files=False,
        random_seed=0,
    ).fit(X, y)


CATBOOST_METHODS = {"SinglePoint": 0, "TopKLeaves:top=2": 2, "AllPoints": -1}


def timed_cpu(fn):
    """Wall and process CPU seconds of one call, and its result."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def bench_catboost_cpu(sizes, n_query, repeat=3, methods=None):
    """The CatBoost comparison single-threaded (``thread_count=1``, one numba thread),
    wall and process CPU seconds: on a machine shared with other jobs the CPU time is
    the fairer measure. Medians of ``repeat`` alternating runs."""
    import catboost as cb
    import numba

    numba.set_num_threads(1)
    print(
        "\n### CatBoost, single-threaded: fit + transform of "
        f"{n_query} queries, median of {repeat} alternating runs, wall (CPU) seconds\n"
    )
    print(
        "| n_train | update method | CatBoost (s) | LeafInfluence fit + transform (s) | "
        "wall ratio | CPU ratio |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for n in sizes:
        X, y = data(n)
        Xq, yq = data(n_query, seed=1)
        model = catboost_model(X, y)
        train_pool, query_pool = cb.Pool(X, y), cb.Pool(Xq, yq)
        for method, u in CATBOOST_METHODS.items():
            if methods and method.split(":")[0] not in methods:
                continue
            ours, theirs = [], []
            for _ in range(repeat):
                ours.append(
                    timed_cpu(
                        lambda u=u: (
                            LeafInfluence(model, update_set=u, n_jobs=1).fit(X, y).transform(Xq, yq)
                        )
                    )[:2]
                )
                theirs.append(
                    timed_cpu(
                        lambda method=method: model.get_object_importance(
                            query_pool,
                            train_pool,
                            type="PerObject",
                            update_method=method,
                            thread_count=1,
                        )
                    )[:2]
                )
            (ow, oc), (tw, tc) = (np.median(np.asarray(v), axis=0) for v in (ours, theirs))
            print(
                f"| {n:,} | {method} | {tw:.3f} ({tc:.3f}) | {ow:.3f} ({oc:.3f}) | "
                f"{tw / ow:.1f}x | {tc / oc:.1f}x |",
                flush=True,
            )
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def bench_catboost(sizes, n_query, max_catboost_s, repeat=3, methods=None):
    """CatBoost's ``get_object_importance`` and LeafInfluence fit + transform on the same
    model and queries, called alternately ``repeat`` times in this process: medians,
    the ratio of the medians, the largest relative gap and the fitted state's size."""
    import catboost as cb

    print(
        "\n### CatBoost (100 trees, depth 6, Logloss, 1 Newton leaf step): "
        f"{n_query} queries, fit + transform, median of {repeat} alternating runs\n"
    )
    print(
        "| n_train | update method | CatBoost get_object_importance (s) | "
        "LeafInfluence fit (s) | transform (s) | speed-up (fit + transform) | "
        "max rel. gap | fitted state (MB) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    slow = set()
    for n in sizes:
        X, y = data(n)
        Xq, yq = data(n_query, seed=1)
        model = catboost_model(X, y)
        train_pool, query_pool = cb.Pool(X, y), cb.Pool(Xq, yq)
        for method, u in CATBOOST_METHODS.items():
            if methods and method.split(":")[0] not in methods:
                continue
            if method in slow:
                print(f"| {n:,} | {method} | skipped (> {max_catboost_s:g} s before) | | | | | |")
                continue
            fits, queries, theirs_t = [], [], []
            for _ in range(repeat):
                exp = ours = None
                fit_t, exp = timed(lambda u=u: LeafInfluence(model, update_set=u).fit(X, y))
                q_t, ours = timed(lambda exp=exp: exp.transform(Xq, yq))
                t, res = timed(
                    lambda method=method: model.get_object_importance(
                        query_pool, train_pool, type="PerObject", update_method=method
                    )
                )
                fits.append(fit_t)
                queries.append(q_t)
                theirs_t.append(t)
            theirs = np.zeros_like(ours)
            np.put_along_axis(theirs, np.asarray(res[0]), np.asarray(res[1]), axis=1)
            gap = np.abs(theirs + ours).max() / np.abs(ours).max()
            fit_m, q_m, th_m = (float(np.median(v)) for v in (fits, queries, theirs_t))
            print(
                f"| {n:,} | {method} | {th_m:.3f} | {fit_m:.3f} | {q_m:.3f} | "
                f"{th_m / (fit_m + q_m):.1f}x | {gap:.1e} | {fitted_bytes(exp) / 2**20:.1f} |",
                flush=True,
            )
            if th_m > max_catboost_s:
                slow.add(method)


def numpy_forward_reference(ens, leaves, g, h, kap, rows):
    """The reference's forward algorithm, straightforwardly in numpy: for each removed
    row, propagate dF/dw_i through the trees with per-leaf boolean masks (binary, K=1).
    Returns the per-leaf derivatives D (len(rows), n_leaves_total)."""
    n = len(leaves)
    vbar = ens.unshrunk_values
    eta = ens.learning_rates
    D = np.zeros((len(rows), ens.n_leaves_total))
    masks = [[leaves[:, t] == leaf for leaf in range(ens.n_leaves[t])] for t in range(ens.n_trees)]
    for r, i in enumerate(rows):
        J = np.zeros(n)
        for t in range(ens.n_trees):
            Dt = np.zeros(ens.n_leaves[t])
            for leaf, m in enumerate(masks[t]):
                j = ens.leaf_offsets[t] + leaf
                beta = h[m, t].sum() + ens.l2[j]
                s = ((h[m, t] + vbar[j] * kap[m, t]) * J[m]).sum()
                if m[i]:
                    s += g[i, t] + vbar[j] * h[i, t]
                Dt[leaf] = -eta[t] * s / beta
            D[r, ens.leaf_offsets[t] : ens.leaf_offsets[t + 1]] = Dt
            J += Dt[leaves[:, t]]
    return D


def bench_lightgbm(quick):
    def model_for(n):
        X, y = data(n)
        return X, y, lightgbm_model().fit(X, y)

    Xq, yq = data(100, seed=1)
    print("\n### LightGBM (100 trees x 31 leaves, binary): 100 queries\n")
    print("| n_train | task | skinfluence (s) | baseline | baseline (s) | ratio |")
    print("|---:|---|---:|---|---:|---:|")
    # n = 1000: against the reference's forward algorithm in numpy
    X, y, m = model_for(1000)
    ours_t, exp = timed(lambda: LeafInfluence(m).fit(X, y))
    q_t, ours = timed(lambda: exp.transform(Xq, yq))
    ens = exp.ensemble_
    leaves = ens.leaf_ids(X)
    g, h, kap, _ = ens.replay(leaves, y.astype(float), kappa=True)
    n_ref = 20
    ref_t, D = timed(lambda: numpy_forward_reference(ens, leaves, g, h, kap, np.arange(n_ref)))
    ref_full = ref_t * len(X) / n_ref
    ql = ens.flat_leaves(ens.leaf_ids(Xq))
    gq = exp._query_arrays(Xq, ens.leaf_ids(Xq), yq.astype(float), "binary")["gfin"][:, 0]
    ref_vals = -(D[:, ql].sum(axis=2) * gq[None, :]).T  # (m, n_ref)
    gap = np.abs(ref_vals - ours[:, :n_ref]).max() / np.abs(ours[:, :n_ref]).max()
    print(
        f"| 1,000 | LeafInfluence fit + transform ({ours_t:.3f} + {q_t:.3f}) | "
        f"{ours_t + q_t:.3f} | numpy forward (reference algorithm; {n_ref} rows timed, "
        f"x{len(X) // n_ref}) | {ref_full:.1f} | {ref_full / (ours_t + q_t):,.0f}x "
        f"(transform alone {ref_full / q_t:,.0f}x; max rel. gap {gap:.0e}) |",
        flush=True,
    )
    if quick:
        return
    # n = 100,000: all-rows LeafInfluence vs BoostIn on the same queries
    X, y, m = model_for(100_000)
    li_t, _ = timed(lambda: LeafInfluence(m).fit(X, y).transform(Xq, yq))
    bi_t, _ = timed(lambda: BoostIn(m).fit(X, y).transform(Xq, yq))
    print(
        f"| 100,000 | LeafInfluence fit + transform | {li_t:.2f} | BoostIn fit + "
        f"transform | {bi_t:.2f} | {li_t / bi_t:.1f}x slower |",
        flush=True,
    )
    gl_t, _ = timed(lambda: LeafInfluence(m).fit(X, y).global_influence(Xq, yq))
    print(f"| 100,000 | LeafInfluence fit + global_influence | {gl_t:.2f} | | | |", flush=True)
    # n = 10,000: the O(N^2 T) quantities
    X, y, m = model_for(10_000)
    for name, fn in [
        ("LeafInfluence self_influence", lambda: LeafInfluence(m).fit(X, y).self_influence()),
        (
            "LeafInfluence top-2 leaves fit + transform",
            lambda: LeafInfluence(m, update_set=2).fit(X, y).transform(Xq, yq),
        ),
        ("LeafRefit fit + transform", lambda: LeafRefit(m).fit(X, y).transform(Xq, yq)),
    ]:
        t, _ = timed(fn)
        print(f"| 10,000 | {name} | {t:.1f} | | | |", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="n_train = 1,000 only")
    p.add_argument("--max-catboost-seconds", type=float, default=600.0)
    p.add_argument("--repeat", type=int, default=3, help="alternating runs per CatBoost row")
    p.add_argument("--sizes", type=int, nargs="*", help="CatBoost training sizes")
    p.add_argument(
        "--methods", nargs="*", help="CatBoost update methods (SinglePoint TopKLeaves AllPoints)"
    )
    p.add_argument("--catboost-only", action="store_true", help="skip the LightGBM table")
    p.add_argument(
        "--cpu",
        action="store_true",
        help="also the CatBoost table single-threaded with process CPU times",
    )
    args = p.parse_args()
    import os

    import numba

    print(f"numba threads: {numba.get_num_threads()}; load average {os.getloadavg()}")
    warm_up()
    sizes = args.sizes or ([1000] if args.quick else [1000, 5000, 20000])
    bench_catboost(
        sizes,
        n_query=10 if args.quick else 100,
        max_catboost_s=args.max_catboost_seconds,
        repeat=args.repeat,
        methods=args.methods,
    )
    print(f"\nload average after the CatBoost table: {os.getloadavg()}")
    if args.cpu:
        bench_catboost_cpu(
            sizes, n_query=10 if args.quick else 100, repeat=args.repeat, methods=args.methods
        )
        print(f"\nload average after the single-threaded table: {os.getloadavg()}")
    if not args.catboost_only:
        bench_lightgbm(args.quick)


if __name__ == "__main__":
    main()
