"""BoostIn speed and memory, side by side with the reference's dense algorithm.

Run from the repository root::

    python benchmarks/bench_boostin.py            # n_train in {1e3, 1e4, 1e5}
    python benchmarks/bench_boostin.py --quick    # n_train in {1e3, 1e4}
    python benchmarks/bench_boostin.py --interleaved 20   # speed-up at 1e5, 20 rounds
    python benchmarks/bench_boostin.py --fit-ratio 9      # fit / LightGBM routing at 1e5,
                                                          # and 1- and 100-row transforms
    python benchmarks/bench_boostin.py --fit-ratio 9 --library xgboost   # XGBoost's

Model: LightGBM binary classifier, 100 trees x 31 leaves, on synthetic data. Queries:
1,000 rows. The baseline is a straightforward numpy implementation of the reference
algorithm (tree_influence's BoostIn query): for each query row, a dense
``(n_train, n_trees)`` same-leaf mask multiplied by the derivatives and the query's
per-tree gradients, summed over trees. It uses the derivatives skinfluence computed, so
both produce the same matrix (checked below) and only the query algorithm differs. The
dense baseline is timed on a subset of the queries (its cost is linear in the number of
queries), three times, and reported per query next to ours. ``transform`` is timed five
times, each run allocating its output afresh (first-touch page faults of a fresh 763 MiB
output vary from 0.1 to 0.4 s on the benchmark machine). Speed-ups are given best
against best and median against median. The last column divides the transform time by the
multiply-adds the exact sparse product has to do (times the number of threads): the
kernel's cost per unit of unavoidable work.

``fit`` is timed against LightGBM's own routing, ``predict(X, pred_leaf=True)`` on the
same rows, alternating the two in one process (three rounds per size in the table,
``--fit-ratio`` for more at 100,000 rows): the ratio of each round and their median.
Since session 9 ``fit`` routes the rows of a LightGBM model whose splits are all
numeric with skinfluence's own kernel (LightGBM's decision rule, int32 leaves), checks
those leaves against ``predict(X, pred_leaf=True)`` and the parsed trees against the
library's raw prediction (``predict(X, raw_score=True)``) on a covering sample of the
rows (a row reaching each leaf plus 1,000 uniform rows; on every row with
``reconstruction_check="all"``); before, it routed every row with ``pred_leaf`` itself.
``--fit-ratio`` also times the raw prediction of all rows, for reference.
``--library xgboost`` times the same against XGBoost's routing,
``Booster.predict(DMatrix(X), pred_leaf=True)``, the DMatrix built in the call as
``fit`` builds it (XGBoost models are routed by XGBoost). Each ``--fit-ratio`` round
also times, on the explainer it fitted, a one-row ``transform`` (median of 21 calls)
and a 100-row ``transform`` (best of 3), so that the fit ratio and the query times come
from the same run; the load average is printed with them.

Peak memory is the growth of the process's maximum resident set size during the call,
measured in a fresh subprocess per (n_train, step).
"""

import argparse
import json
import sys

import numpy as np
from _common import (
    N_LEAVES,
    N_TREES,
    child_peak_mb,
    peak_growth_mb,
    timed,
    timed_all,
    train_and_queries,
)

N_QUERIES = 1000


def dense_reference(exp, Xq, yq):
    """Per query row: dense (n_train, n_trees) mask x derivatives (the reference)."""
    ens = exp.ensemble_
    train_leaves = ens.leaf_ids(exp._bench_X)
    q_leaves = ens.leaf_ids(Xq)
    gq, _, _, _ = ens.replay(q_leaves, yq.astype(float))
    out = np.empty((len(Xq), exp.n_train_))
    for e in range(len(Xq)):
        mask = train_leaves == q_leaves[e][None, :]
        out[e] = (mask * exp.derivatives_ * gq[e][None, :]).sum(axis=1)
    return out


def measure_memory(n_train, step):
    """Run in a subprocess: peak RSS growth (MiB) of one step."""
    from skinfluence import BoostIn

    X, y, Xq, yq, model = train_and_queries(n_train, N_QUERIES)
    exp = BoostIn(model)
    if step == "fit":
        return peak_growth_mb(lambda: exp.fit(X, y))
    exp.fit(X, y)
    exp.transform(Xq[:5], yq[:5])  # compile outside the measurement
    if step == "transform":
        return peak_growth_mb(lambda: exp.transform(Xq, yq))
    return peak_growth_mb(exp.self_influence)


def xgboost_model(X, y):
    """An XGBoost binary classifier of the LightGBM model's shape (100 trees, at most 31
    leaves grown leaf-wise, learning rate 0.1) fitted on ``X, y``."""
    import xgboost as xgb

    return xgb.XGBClassifier(
        n_estimators=N_TREES,
        max_leaves=N_LEAVES,
        max_depth=0,
        grow_policy="lossguide",
        tree_method="hist",
        learning_rate=0.1,
        random_state=0,
    ).fit(X, y)


def library_calls(model):
    """The model's own routing and raw prediction over all rows, as ``fit`` calls them:
    LightGBM ``predict(X, pred_leaf=True)`` / ``raw_score=True``; XGBoost
    ``Booster.predict(DMatrix(X), pred_leaf=True)`` / ``output_margin=True`` (the
    DMatrix built in the call)."""
    if type(model).__module__.startswith("xgboost"):
        import xgboost as xgb

        booster = model.get_booster()
        return (
            lambda X: booster.predict(xgb.DMatrix(X), pred_leaf=True),
            lambda X: booster.predict(xgb.DMatrix(X), output_margin=True),
        )
    return (
        lambda X: model.predict(X, pred_leaf=True),
        lambda X: model.predict(X, raw_score=True),
    )


def fit_ratios(X, y, model, rounds, raw=False, queries=None):
    """``rounds`` alternations of ``BoostIn(model).fit(X, y)`` and the model's own
    routing ``predict(X, pred_leaf=True)`` (and, with ``raw``, its raw prediction):
    arrays of fit times, routing times, raw-prediction times and fit / routing ratios.

    With ``queries = (Xq, yq)``, each round also times, on the explainer just fitted,
    a one-row ``transform`` (median of 21 calls) and a ``transform`` of the first 100
    query rows (best of 3): ``(fits, routes, raws, ratios, one_row, hundred)``.
    """
    from skinfluence import BoostIn

    route, raw_score = library_calls(model)
    fits, routes, raws, one, hundred = [], [], [], [], []
    for _ in range(rounds):
        t_fit, exp = timed(lambda: BoostIn(model).fit(X, y))
        fits.append(t_fit)
        routes.append(timed(lambda: route(X))[0])
        if raw:
            raws.append(timed(lambda: raw_score(X))[0])
        if queries is not None:
            Xq, yq = queries
            one.append(timed_all(lambda: exp.transform(Xq[:1], yq[:1]), repeat=21)[1])
            hundred.append(timed(lambda: exp.transform(Xq[:100], yq[:100]), repeat=3)[0])
        exp = None  # its state is freed before the next fit
    fits, routes = np.array(fits), np.array(routes)
    out = fits, routes, np.array(raws), fits / routes
    return out if queries is None else out + (np.array(one), np.array(hundred))


def run(n_train, dense_queries):
    import numba

    from skinfluence import BoostIn

    X, y, Xq, yq, model = train_and_queries(n_train, N_QUERIES)
    exp = BoostIn(model)
    t_fit, _ = timed(lambda: exp.fit(X, y))
    _, t_route, _, fit_ratio = fit_ratios(X, y, model, rounds=3)
    exp.transform(Xq[:5], yq[:5])  # numba compilation / cache load
    t_tr, t_tr_median, M = timed_all(lambda: exp.transform(Xq, yq), repeat=5)
    t_self, _ = timed(lambda: exp.self_influence(), repeat=3)
    t_glob, _ = timed(lambda: exp.global_influence(Xq, yq), repeat=3)
    exp._bench_X = X
    # work of the sparse product: training rows sharing a leaf with each query, summed
    # over trees, as a share of the dense algorithm's n_train x n_trees per query
    ens = exp.ensemble_
    sizes = np.bincount(ens.flat_leaves(exp._train_leaves).ravel(), minlength=ens.n_leaves_total)
    shared = sizes[ens.flat_leaves(ens.leaf_ids(Xq))].sum() / (N_QUERIES * n_train * ens.n_trees)
    k = min(dense_queries, N_QUERIES)
    t_dense, t_dense_median, D = timed_all(lambda: dense_reference(exp, Xq[:k], yq[:k]), repeat=3)
    np.testing.assert_allclose(M[:k], D, rtol=1e-9, atol=1e-12)
    return {
        "n_train": n_train,
        "fit_s": t_fit,
        "route_s": float(np.median(t_route)),
        "fit_ratio": float(np.median(fit_ratio)),
        "transform_s": t_tr,
        "transform_median_s": t_tr_median,
        "ns_per_shared": 1e9
        * t_tr
        * numba.get_num_threads()
        / (shared * N_QUERIES * n_train * ens.n_trees),
        "transform_per_query_ms": 1e3 * t_tr / N_QUERIES,
        "dense_per_query_ms": 1e3 * t_dense / k,
        "dense_queries_timed": k,
        "speedup": (t_dense / k) / (t_tr / N_QUERIES),
        "speedup_median": (t_dense_median / k) / (t_tr_median / N_QUERIES),
        "self_influence_s": t_self,
        "global_influence_s": t_glob,
        "output_mb": M.nbytes / 2**20,
        "shared_share": shared,
    }


def interleaved_ratios(n_train, rounds, dense_queries=20):
    """Speed-up measured ``rounds`` times with ours and the dense baseline alternating,
    so that both see the same machine state: one ratio per round."""
    from skinfluence import BoostIn

    X, y, Xq, yq, model = train_and_queries(n_train, N_QUERIES)
    exp = BoostIn(model).fit(X, y)
    exp._bench_X = X
    exp.transform(Xq[:5], yq[:5])
    k = dense_queries
    dense_reference(exp, Xq[:2], yq[:2])
    ratios = []
    for _ in range(rounds):
        t_ours, _ = timed(lambda: exp.transform(Xq, yq))
        t_dense, _ = timed(lambda: dense_reference(exp, Xq[:k], yq[:k]))
        ratios.append((t_dense / k) / (t_ours / N_QUERIES))
    return np.array(ratios)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    p.add_argument(
        "--interleaved",
        type=int,
        metavar="ROUNDS",
        help="only the speed-up at n_train=100,000, measured ROUNDS times alternating "
        "ours (1,000 queries) and the dense baseline (20 queries)",
    )
    p.add_argument(
        "--fit-ratio",
        type=int,
        metavar="ROUNDS",
        help="only fit against LightGBM's predict(pred_leaf=True) at n_train=100,000, "
        "ROUNDS alternating rounds",
    )
    p.add_argument(
        "--library",
        choices=("lightgbm", "xgboost"),
        default="lightgbm",
        help="the model of --fit-ratio (xgboost: the same data, 100 trees of at most 31 leaves)",
    )
    args = p.parse_args()
    if args.fit_ratio:
        import os

        from skinfluence import BoostIn

        X, y, Xq, yq, model = train_and_queries(100_000, N_QUERIES)
        if args.library == "xgboost":
            model = xgboost_model(X, y)
        # numba compilation / cache load, first touch
        BoostIn(model).fit(X, y).transform(Xq[:2], yq[:2])
        load = os.getloadavg()[0]
        f, r, raw, ratio, one, hundred = fit_ratios(
            X, y, model, args.fit_ratio, raw=True, queries=(Xq, yq)
        )
        q1, med, q3 = np.percentile(ratio, [25, 50, 75])
        print(
            f"{args.library}, n_train=100,000, {len(ratio)} alternating rounds "
            f"(load average {load:.1f} before, {os.getloadavg()[0]:.1f} after): "
            f"fit median {np.median(f):.3f} s, "
            f"predict(pred_leaf=True) median {np.median(r):.3f} s, "
            f"predict(raw_score=True) median {np.median(raw):.3f} s; "
            f"fit / pred_leaf median {med:.2f}x, quartiles {q1:.2f}x-{q3:.2f}x, "
            f"range {ratio.min():.2f}x-{ratio.max():.2f}x"
        )
        print("rounds: " + ", ".join(f"{x:.2f}x" for x in ratio))
        print(
            f"transform, same rounds: one row median {1e3 * np.median(one):.2f} ms "
            f"(range {1e3 * one.min():.2f}-{1e3 * one.max():.2f} ms), 100 rows median "
            f"{1e3 * np.median(hundred):.1f} ms "
            f"(range {1e3 * hundred.min():.1f}-{1e3 * hundred.max():.1f} ms)"
        )
        return
    if args.interleaved:
        r = interleaved_ratios(100_000, args.interleaved)
        q1, med, q3 = np.percentile(r, [25, 50, 75])
        print(
            f"n_train=100,000, {len(r)} interleaved rounds: speed-up median {med:.0f}x, "
            f"quartiles {q1:.0f}x-{q3:.0f}x, range {r.min():.0f}x-{r.max():.0f}x"
        )
        print("rounds: " + ", ".join(f"{x:.0f}x" for x in r))
        return
    if args.memory_child:
        print(json.dumps(measure_memory(int(args.memory_child[0]), args.memory_child[1])))
        return
    sizes = [1000, 10000] if args.quick else [1000, 10000, 100000]
    import numba

    print(
        f"# BoostIn benchmark: LightGBM binary, {N_TREES} trees x {N_LEAVES} leaves, "
        f"{N_QUERIES} queries, {numba.get_num_threads()} numba threads\n"
    )
    # numba compilation (or loading its cache) happens once per process: not in the fits
    from skinfluence import BoostIn

    X, y, Xq, yq, model = train_and_queries(200, N_QUERIES)
    BoostIn(model).fit(X, y).transform(Xq[:3], yq[:3])
    rows = []
    for n in sizes:
        r = run(n, dense_queries=200 if n <= 10000 else 50)
        for step in ("fit", "transform", "self"):
            r[f"peak_{step}_mb"] = child_peak_mb(__file__, n, step)
        rows.append(r)
        print(f"n_train={n}: done", file=sys.stderr)
    print(
        "| n_train | fit (s) | pred_leaf (s) | fit / pred_leaf, median of 3 "
        "| transform 1000 q, best of 5 (s) | median (s) "
        "| ours / query (ms) | dense / query (ms) | speed-up (best) | speed-up (medians) "
        "| self_influence (s) "
        "| global_influence (s) | output (MiB) | peak transform (MiB) | peak fit (MiB) "
        "| shared-leaf work / dense work | ns per shared multiply-add and thread |"
    )
    print("|" + "---|" * 17)
    for r in rows:
        print(
            f"| {r['n_train']:,} | {r['fit_s']:.2f} | {r['route_s']:.3f} | "
            f"{r['fit_ratio']:.2f}x | {r['transform_s']:.3f} | "
            f"{r['transform_median_s']:.3f} | "
            f"{r['transform_per_query_ms']:.3f} | {r['dense_per_query_ms']:.2f} | "
            f"{r['speedup']:.0f}x | {r['speedup_median']:.0f}x | "
            f"{r['self_influence_s']:.4f} | "
            f"{r['global_influence_s']:.4f} | {r['output_mb']:.0f} | "
            f"{r['peak_transform_mb']:.0f} | {r['peak_fit_mb']:.0f} | "
            f"{r['shared_share']:.2f} | {r['ns_per_shared']:.2f} |"
        )
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        scale = b["n_train"] / a["n_train"]
        print(
            f"\nScaling from n_train={a['n_train']:,} to {b['n_train']:,} (x{scale:.0f}): "
            f"transform x{b['transform_s'] / a['transform_s']:.1f}, "
            f"fit x{b['fit_s'] / a['fit_s']:.1f}, "
            f"self_influence x{b['self_influence_s'] / a['self_influence_s']:.1f}"
        )


if __name__ == "__main__":
    main()
