"""What the speed and memory benchmarks share: the synthetic task, timing, memory
(in this process, and in a fresh child process).

The benchmarks are run as scripts (``python benchmarks/bench_boostin.py``), so this
module is imported as ``_common`` from their folder.
"""

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

#: the benchmarks' LightGBM model: 100 trees x 31 leaves
N_TREES, N_LEAVES = 100, 31


def synthetic_binary(n, seed=0):
    """``n`` rows of 10 Gaussian features and a noisy nonlinear binary label."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 10))
    logit = X[:, 0] - X[:, 1] * X[:, 2] + 0.5 * np.sin(3 * X[:, 3]) + 0.5 * rng.normal(size=n)
    return X, (logit > 0).astype(int)


def lightgbm_model(**params):
    """The benchmarks' unfitted LightGBM classifier (``params`` override or add)."""
    import lightgbm as lgb

    base = {
        "n_estimators": N_TREES,
        "num_leaves": N_LEAVES,
        "learning_rate": 0.1,
        "min_child_samples": 5,
        "verbose": -1,
        "random_state": 0,
    }
    return lgb.LGBMClassifier(**{**base, **params})


def train_and_queries(n_train, n_query, seed=0):
    """Training rows, query rows and the model fitted on the training rows."""
    X, y = synthetic_binary(n_train + n_query, seed)
    model = lightgbm_model().fit(X[:n_train], y[:n_train])
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:], model


def timed_all(fn, repeat=1):
    """Best and median of ``repeat`` runs (the previous result is freed before each run,
    so every run allocates its output afresh), and the last result."""
    times, out = [], None
    for _ in range(repeat):
        out = None
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), float(np.median(times)), out


def timed(fn, repeat=1):
    """Best time of ``repeat`` runs and the last result."""
    best, _, out = timed_all(fn, repeat)
    return best, out


def rss_mb():
    """Resident set size of this process (MiB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_growth_mb(fn):
    """Peak resident-set growth (MiB) while ``fn`` runs, sampled every millisecond."""
    base = rss_mb()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            done.wait(0.001)

    th = threading.Thread(target=sample)
    th.start()
    try:
        fn()
    finally:
        done.set()
        th.join()
    return max(peak[0], rss_mb()) - base


def child_peak_mb(script, *args):
    """The peak memory growth (MiB) that ``script`` prints as the last line of its
    output when run in a fresh process as ``script --memory-child *args``."""
    out = subprocess.run(
        [sys.executable, script, "--memory-child", *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
