"""LOO refits: one core vs ``n_jobs=2`` (loky) vs a 2-worker dask LocalCluster.

Run from the repository root::

    python benchmarks/bench_retrain.py            # 1,000 rows x 100-tree LightGBM
    python benchmarks/bench_retrain.py --quick    # 200 rows

Model: LightGBM binary classifier, 100 trees x 31 leaves, synthetic data. ``LOO.fit``
refits the model once per training row (each refit single-threaded) and evaluates it on
the row it left out; the time reported is that fit (the N refits) with the models not
kept. The loky pool and the dask cluster are started (and warmed up by one small run)
before timing, so the times are steady-state; their start-up time is reported
separately. Parallel efficiency = sequential time / (2 x parallel time). All three runs
must give identical self-influence (checked).
"""

import argparse
import json
import os
import time

import numpy as np
from _common import N_TREES, lightgbm_model, synthetic_binary


def make(n_train, seed=0):
    X, y = synthetic_binary(n_train, seed)
    return X, y, lightgbm_model(n_jobs=1).fit(X, y)


def run(X, y, model, n_jobs=None):
    from skinfluence._retrain import LOO

    t = time.perf_counter()
    exp = LOO(model, keep_models=False, n_jobs=n_jobs).fit(X, y)
    return time.perf_counter() - t, exp.self_influence()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 rows instead of 1,000")
    args = parser.parse_args()
    import joblib
    from distributed import Client, LocalCluster

    n = 200 if args.quick else 1000
    X, y, model = make(n)
    Xw, yw, mw = make(20, seed=1)
    result = {
        "n_train": n,
        "n_trees": N_TREES,
        "cpu_count": os.cpu_count(),
        "load_average_before": os.getloadavg()[0],
    }

    t_seq, s_seq = run(X, y, model)
    result["sequential_s"] = round(t_seq, 2)
    result["per_refit_ms"] = round(1000 * t_seq / n, 1)

    t0 = time.perf_counter()
    run(Xw, yw, mw, n_jobs=2)  # start and warm up the loky pool
    result["loky_startup_s"] = round(time.perf_counter() - t0, 2)
    t_loky, s_loky = run(X, y, model, n_jobs=2)
    assert np.array_equal(s_loky, s_seq), "n_jobs=2 differs from the sequential run"
    result["loky_n_jobs_2_s"] = round(t_loky, 2)
    result["loky_efficiency"] = round(t_seq / (2 * t_loky), 3)

    t0 = time.perf_counter()
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        with joblib.parallel_config(backend="dask"):
            run(Xw, yw, mw)  # warm up: imports on the workers
            result["dask_startup_s"] = round(time.perf_counter() - t0, 2)
            t_dask, s_dask = run(X, y, model)
    assert np.array_equal(s_dask, s_seq), "the dask run differs from the sequential run"
    result["dask_2_workers_s"] = round(t_dask, 2)
    result["dask_efficiency"] = round(t_seq / (2 * t_dask), 3)
    result["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
