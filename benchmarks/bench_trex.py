"""TREX speed and memory, side by side with a dense-feature surrogate; LeafSim, TreeSim
and BoostIn query times.

Run from the repository root::

    python benchmarks/bench_trex.py            # n_train in {1e4, 1e5}
    python benchmarks/bench_trex.py --quick    # n_train = 1e4, fewer queries

Model: LightGBM binary classifier, 100 trees x 31 leaves, on synthetic data. TREX uses
its defaults (kernel ``lpw``, target ``actual``, lmbd 0.003). The dense baseline is the
same surrogate with a dense ``(n_train, n_leaves)`` float64 feature matrix (the
reference's representation), fitted by the same scipy L-BFGS from ``W = 0`` with the
same stopping rule; its representer weights are checked against ours. The dense query
is a dense ``(m, n_leaves) @ (n_leaves, n_train)`` kernel followed by the same loss
differences in numpy.

Peak memory is the growth of the process's resident set size during the call (sampled
every millisecond), measured in a fresh subprocess per (n_train, step).
"""

import argparse
import json
import sys

import numpy as np
from _common import N_LEAVES, N_TREES, child_peak_mb, peak_growth_mb, timed, train_and_queries


# ------------------------------------------------------------------ dense baseline
class DenseTREX:
    """The same surrogate with dense lpw features (float64, n_train x n_leaves)."""

    def __init__(self, model, lmbd=0.003, tol=1e-10, max_iter=1000):
        from skinfluence import to_ensemble

        self.model, self.lmbd, self.tol, self.max_iter = model, lmbd, tol, max_iter
        self.ens = to_ensemble(model)

    def _phi(self, leaves):
        flat = leaves.astype(np.int64) + self.ens.leaf_offsets[:-1]
        P = np.zeros((len(leaves), self.ens.n_leaves_total))
        np.put_along_axis(P, flat, self.inv[flat], axis=1)
        return P

    def fit(self, X, y):
        from scipy.optimize import minimize
        from scipy.special import expit

        leaves = self.ens.leaf_ids(X)
        counts = np.bincount(
            (leaves.astype(np.int64) + self.ens.leaf_offsets[:-1]).ravel(),
            minlength=self.ens.n_leaves_total,
        ).astype(float)
        self.inv = np.divide(1.0, counts, out=np.zeros_like(counts), where=counts > 0)
        P = self._phi(leaves)
        n, lmbd, Y = len(P), self.lmbd, y.astype(float)

        def fun(w):
            z = P @ w
            g = P.T @ ((expit(z) - Y) / n) + 2 * lmbd * w
            return (np.logaddexp(0, z) - Y * z).sum() / n + lmbd * w @ w, g

        w0 = np.zeros(P.shape[1])
        g0 = np.abs(fun(w0)[1]).max()
        res = minimize(
            fun,
            w0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter, "gtol": self.tol * g0, "ftol": 0.0, "maxcor": 20},
        )
        self.alpha = (expit(P @ res.x) - Y) / (-2 * lmbd * n)
        self.P = P
        return self

    def transform(self, Xq, yq):
        from scipy.special import expit

        Kq = self._phi(self.ens.leaf_ids(Xq)) @ self.P.T  # (m, n) dense
        f = Kq @ self.alpha
        R = Kq * self.alpha[None, :]
        y = yq[:, None].astype(float)

        def L(z):
            p = np.clip(expit(z), 1e-5, 1 - 1e-5)
            return -(y * np.log(p) + (1 - y) * np.log1p(-p))

        return L(f[:, None] - R) - L(f[:, None])


# ------------------------------------------------------------------ measurement
def measure_memory(n_train, step, n_query):
    from skinfluence._trex import TREX

    X, y, Xq, yq, model = train_and_queries(n_train, n_query)
    if step == "fit":
        return peak_growth_mb(lambda: TREX(model).fit(X, y))
    if step == "dense_fit":
        return peak_growth_mb(lambda: DenseTREX(model).fit(X, y))
    exp = TREX(model).fit(X, y)
    exp.transform(Xq[:5], yq[:5])
    return peak_growth_mb(lambda: exp.transform(Xq, yq))


def run(n_train, n_query, dense_queries):
    from skinfluence import BoostIn
    from skinfluence._similarity import LeafSim, TreeSim
    from skinfluence._trex import TREX

    X, y, Xq, yq, model = train_and_queries(n_train, n_query)
    exp = TREX(model)
    t_fit, _ = timed(lambda: exp.fit(X, y))
    exp.transform(Xq[:5], yq[:5])  # numba cache load
    t_tr, M = timed(lambda: exp.transform(Xq, yq), repeat=2)
    t_self, _ = timed(exp.self_influence, repeat=2)
    dense = DenseTREX(model)
    t_dfit, _ = timed(lambda: dense.fit(X, y))
    np.testing.assert_allclose(
        dense.alpha,
        exp.representer_weights_[:, 0],
        rtol=1e-4,
        atol=1e-6 * np.abs(dense.alpha).max(),
    )
    k = min(dense_queries, n_query)
    t_dtr, D = timed(lambda: dense.transform(Xq[:k], yq[:k]))
    np.testing.assert_allclose(M[:k], D, rtol=1e-3, atol=1e-6 * np.abs(D).max())
    dense = D = None  # free the dense matrices before the next estimators
    res = {
        "n_train": n_train,
        "n_query": n_query,
        "trex_fit_s": t_fit,
        "trex_iters": exp.n_iter_,
        "fidelity": exp.fidelity_,
        "dense_fit_s": t_dfit,
        "trex_transform_s": t_tr,
        "trex_per_query_ms": 1e3 * t_tr / n_query,
        "dense_per_query_ms": 1e3 * t_dtr / k,
        "self_s": t_self,
    }
    for name, est in (
        ("leafsim", LeafSim(model)),
        ("treesim", TreeSim(model)),
        ("boostin", BoostIn(model)),
    ):
        t_f, _ = timed(lambda est=est: est.fit(X, y))
        est.transform(Xq[:5], yq[:5])
        t_q, _ = timed(lambda est=est: est.transform(Xq, yq), repeat=2)
        res[f"{name}_fit_s"], res[f"{name}_transform_s"] = t_f, t_q
    return res


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        n, step, m = args.memory_child
        print(json.dumps(measure_memory(int(n), step, int(m))))
        return
    sizes = [10000] if args.quick else [10000, 100000]
    n_query = 200 if args.quick else 1000
    import numba

    print(
        f"# TREX benchmark: LightGBM binary, {N_TREES} trees x {N_LEAVES} leaves, "
        f"{n_query} queries, {numba.get_num_threads()} numba threads\n"
    )
    rows = []
    for n in sizes:
        r = run(n, n_query, dense_queries=200 if n <= 10000 else 50)
        for step in ("fit", "dense_fit", "transform"):
            r[f"peak_{step}_mb"] = child_peak_mb(__file__, n, step, n_query)
        rows.append(r)
        print(f"n_train={n}: done", file=sys.stderr)
    print(
        "| n_train | TREX fit (s) | dense fit (s) | fit speed-up | TREX fit peak (MiB) "
        "| dense fit peak (MiB) | memory ratio | L-BFGS iters | fidelity |"
    )
    print("|" + "---|" * 9)
    for r in rows:
        print(
            f"| {r['n_train']:,} | {r['trex_fit_s']:.2f} | {r['dense_fit_s']:.2f} | "
            f"{r['dense_fit_s'] / r['trex_fit_s']:.1f}x | {r['peak_fit_mb']:.0f} | "
            f"{r['peak_dense_fit_mb']:.0f} | "
            f"{r['peak_dense_fit_mb'] / max(r['peak_fit_mb'], 1):.1f}x | "
            f"{r['trex_iters']} | {r['fidelity']:.3f} |"
        )
    print(
        f"\n| n_train | TREX transform {n_query} q (s) | TREX / query (ms) | dense / query "
        "(ms) | speed-up | transform peak (MiB) | self_influence (s) |"
    )
    print("|" + "---|" * 7)
    for r in rows:
        print(
            f"| {r['n_train']:,} | {r['trex_transform_s']:.3f} | "
            f"{r['trex_per_query_ms']:.3f} | {r['dense_per_query_ms']:.2f} | "
            f"{r['dense_per_query_ms'] / r['trex_per_query_ms']:.0f}x | "
            f"{r['peak_transform_mb']:.0f} | {r['self_s']:.4f} |"
        )
    print(
        f"\n| n_train | LeafSim transform {n_query} q (s) | TreeSim (lpw) (s) | BoostIn (s) "
        "| LeafSim fit (s) | TreeSim fit (s) | BoostIn fit (s) |"
    )
    print("|" + "---|" * 7)
    for r in rows:
        print(
            f"| {r['n_train']:,} | {r['leafsim_transform_s']:.3f} | "
            f"{r['treesim_transform_s']:.3f} | {r['boostin_transform_s']:.3f} | "
            f"{r['leafsim_fit_s']:.2f} | {r['treesim_fit_s']:.2f} | "
            f"{r['boostin_fit_s']:.2f} |"
        )


if __name__ == "__main__":
    main()
