"""Comparison report: the paper's protocols for every available influence method.

Run from the repository root::

    python benchmarks/report.py --mode quick     # CI-sized (a few minutes on 2 cores)
    python benchmarks/report.py --mode medium    # about 15 minutes on 2 cores
    python benchmarks/report.py --mode full      # the paper's sizes where feasible

Writes ``benchmarks/report/README.md`` (the report, with the exact command at the top),
``benchmarks/report/results.csv`` (every number behind it) and PNG plots.

Data: the bundled ``concrete``, ``credit``, ``spam`` and ``hpc`` sets
(``skinfluence.datasets``; categorical columns as integer codes) plus scikit-learn's
``load_breast_cancer`` and ``load_diabetes``; each is subsampled, split 80/20 (seed 1,
stratified for classification) and the test part split again into validation (10%) and
held-out (90%) for the set protocols. Models: LightGBM, XGBoost, CatBoost and
scikit-learn HistGradientBoosting, small and single-threaded. Methods: every estimator
importable from ``skinfluence`` and its private method modules; a missing module or a
method that raises on a (data set, library) pair is skipped and listed in the report.

Aggregation as in the paper (METHODS.md 12.3): per (protocol, data set, library,
checkpoint) the methods are ranked (1 = best; Random excluded from the ranks, reported
separately as the share of settings in which a method beats it), and the ranks are
averaged with a 95% normal interval.
"""

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from skinfluence import evaluation as ev  # noqa: E402
from skinfluence import testing  # noqa: E402

#: protocol -> (higher value is better, description)
PROTOCOLS = {
    "remove": (True, "single query: remove the top rows; query loss"),
    "remove_1": (True, "single query: remove the single most helpful row; query loss"),
    "relabel": (True, "single query: random labels for the top rows; query loss"),
    "poison": (True, "single query: mean features + random labels; query loss"),
    "targeted": (True, "single query: adversarial label for the top rows; query loss"),
    "counterfactual": (False, "single query: share of rows relabelled to flip"),
    "set_remove": (True, "set: remove top rows by global influence; held-out loss"),
    "set_relabel": (True, "set: relabel top rows by global influence; held-out loss"),
    "set_poison": (True, "set: poison top rows by global influence; held-out loss"),
    "noise": (True, "noisy labels: share of flipped rows found"),
    "noise_fix": (False, "noisy labels: held-out loss after fixing the checked rows"),
    "lds": (True, "linear datamodeling score (Spearman)"),
    "loo_corr": (True, "Pearson correlation with leave-one-out retraining"),
}
# every protocol the report can run (the others are read off these runs)
_ALL_PROTOCOLS = tuple(p for p in PROTOCOLS if p not in ("remove_1", "noise_fix"))
MODES = {
    # n_train cap, queries, trees, protocols
    "quick": {
        "n_rows": 200,
        "n_queries": 4,
        "n_trees": 20,
        "datasets": ("concrete", "diabetes", "spam", "breast_cancer"),
        "single_fractions": (0.005, 0.01, 0.02),
        "set_fractions": (0.05, 0.1, 0.2),
        "noise_fractions": (0.05, 0.1, 0.2),
        "lds_subsets": 24,
        "loo_rows": 30,
        "subsample_iter": 200,
        "protocols": ("remove", "targeted", "set_remove", "noise", "lds", "loo_corr"),
    },
    "medium": {
        "n_rows": 300,
        "n_queries": 6,
        "n_trees": 30,
        "datasets": None,
        "single_fractions": (0.005, 0.01, 0.02),
        "set_fractions": (0.05, 0.1, 0.2),
        "noise_fractions": (0.05, 0.1, 0.2),
        "lds_subsets": 32,
        "loo_rows": 40,
        "subsample_iter": 300,
        "protocols": tuple(p for p in _ALL_PROTOCOLS if p != "set_poison"),
    },
    "full": {
        "n_rows": 2000,
        "n_queries": 100,
        "n_trees": 100,
        "datasets": None,
        "single_fractions": (0.001, 0.005, 0.01, 0.015, 0.02),
        "set_fractions": (0.05, 0.1, 0.2, 0.3, 0.4, 0.5),
        "noise_fractions": (0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
        "lds_subsets": 100,
        "loo_rows": 100,
        "subsample_iter": 4000,
        "protocols": _ALL_PROTOCOLS,
    },
}
DATASETS = ("concrete", "diabetes", "credit", "spam", "breast_cancer", "hpc")
LIBRARIES = ("lightgbm", "xgboost", "catboost", "sklearn_hgb")
#: methods that rank noisy rows by self-influence (the paper's choice); others by
#: global influence on the validation set, most harmful first
SELF_RANKED = {"BoostIn", "BoostIn (exact)", "Loss"}


# ----------------------------------------------------------------------- methods
def available_methods(cfg):
    """name -> unfitted estimator, and a list of (name, reason) for missing ones."""
    specs = [
        ("BoostIn", "skinfluence._boostin", "BoostIn", {}),
        ("BoostIn (exact)", "skinfluence._boostin", "BoostIn", {"derivative": "exact"}),
        ("LeafInfluence", "skinfluence._leaf_influence", "LeafInfluence", {}),
        ("LeafRefit", "skinfluence._leaf_influence", "LeafRefit", {}),
        ("TREX", "skinfluence._trex", "TREX", {}),
        ("LeafSim", "skinfluence._similarity", "LeafSim", {}),
        ("InputSim", "skinfluence._similarity", "InputSim", {}),
        ("LOO", "skinfluence._retrain", "LOO", {"n_jobs": cfg["n_jobs"]}),
        (
            "SubSample",
            "skinfluence._retrain",
            "SubSample",
            {"n_iter": cfg["subsample_iter"], "n_jobs": cfg["n_jobs"]},
        ),
        ("Target", "skinfluence._baselines", "TargetInfluence", {}),
        ("Loss", "skinfluence._baselines", "LossInfluence", {}),
        ("Random", "skinfluence._baselines", "RandomInfluence", {}),
    ]
    methods, missing = {}, []
    for name, module, cls, params in specs:
        try:
            klass = getattr(importlib.import_module(module), cls)
            methods[name] = klass(**params)
        except Exception as exc:  # a module still being written: skip and say so
            missing.append((name, f"{module}.{cls}: {type(exc).__name__}: {exc}"))
    if cfg["methods"]:
        methods = {k: v for k, v in methods.items() if k in cfg["methods"]}
    return methods, missing


# -------------------------------------------------------------------------- data
def load(name, n_rows, seed=1):
    """Numeric X, integer-encoded y, task; subsampled to ``n_rows`` training rows."""
    if name in ("breast_cancer", "diabetes"):
        from sklearn import datasets

        X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
        task = "binary" if name == "breast_cancer" else "regression"
    else:
        from skinfluence.datasets import load_dataset

        X, y, task = load_dataset(name, as_frame=False)
    X = np.asarray(X, dtype=np.float64)
    if task != "regression":
        y = np.unique(y, return_inverse=True)[1].astype(np.int64)
    else:
        y = np.asarray(y, dtype=np.float64)
    strat = None if task == "regression" else y
    n_total = min(len(y), int(np.ceil(n_rows / 0.8)))
    if n_total < len(y):
        X, _, y, _ = train_test_split(X, y, train_size=n_total, stratify=strat, random_state=seed)
        strat = None if task == "regression" else y
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=strat, random_state=seed)
    return Xtr, ytr, Xte, yte, task


# each library's tree shape: about 15 leaves
_SHAPE = {
    "sklearn_hgb": {"max_leaf_nodes": 15, "min_samples_leaf": 5},
    "lightgbm": {"num_leaves": 15, "min_child_samples": 5},
    "xgboost": {"max_depth": 4, "tree_method": "hist"},
    "catboost": {"depth": 4},
}


def make_model(lib, task, n_trees):
    """Small single-threaded models whose leaves are single Newton steps."""
    return testing.make_model(
        lib, task, n_estimators=n_trees, learning_rate=0.1, random_state=1, **_SHAPE[lib]
    )


# ---------------------------------------------------------------------- protocols
def run_setting(ds, lib, methods, cfg, log):
    """All protocols for one (data set, library); returns tidy records and curves."""
    Xtr, ytr, Xte, yte, task = load(ds, cfg["n_rows"])
    model = make_model(lib, task, cfg["n_trees"])
    with threadpool_limits(limits=1):
        full = clone(model).fit(Xtr, ytr)
    rng = np.random.default_rng(1)
    q = rng.choice(len(yte), size=min(cfg["n_queries"], len(yte)), replace=False)
    Xq, yq = Xte[q], yte[q]
    Xv, yv, Xh, yh = ev.split_validation(Xte, yte, task=task, random_state=1)
    n = len(ytr)
    one = 1.0 / n + 1e-9
    single_f = (0.0, one) + tuple(cfg["single_fractions"])
    set_f = (0.0,) + tuple(cfg["set_fractions"])
    noise_f = (0.0,) + tuple(cfg["noise_fractions"])
    nj = cfg["n_jobs"]
    recs, curves, failures, timings = [], {}, [], []

    def rec(protocol, method, checkpoint, value):
        recs.append(
            {
                "dataset": ds,
                "library": lib,
                "task": task,
                "protocol": protocol,
                "method": method,
                "checkpoint": float(checkpoint),
                "value": float(value),
            }
        )

    # explainers on the full model: influence on the queries and on the validation set
    infl = {}
    for name, template in methods.items():
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exp = clone(template).set_params(estimator=full).fit(Xtr, ytr)
                M = exp.transform(Xq, yq)
                G = exp.global_influence(Xv, yv)
            infl[name] = (M, G)
            timings.append((ds, lib, name, time.perf_counter() - t0))
        except Exception as exc:
            why = "local influence" if isinstance(exc, NotImplementedError) else "fit"
            failures.append((ds, lib, name, f"{why}: {type(exc).__name__}: {exc}"[:200]))
            log(f"    {name}: skipped ({type(exc).__name__}: {str(exc)[:120]})")
    protos = cfg["protocols"]
    for name, (M, G) in infl.items():
        log(f"    {name}")
        try:
            for edit in ("remove", "relabel", "poison", "targeted"):
                if edit not in protos:
                    continue
                fr = (
                    single_f
                    if edit != "targeted"
                    else (0.0,) + tuple(2 * np.asarray(cfg["single_fractions"]))
                )
                res = ev.single_query_curve(
                    model, Xtr, ytr, Xq, yq, M, edit=edit, fractions=fr, n_jobs=nj
                )
                curves[(edit, ds, lib, name)] = res
                mean = res.groupby("fraction")["loss"].mean()
                for f, v in mean.items():
                    if f == 0:
                        continue
                    if edit == "remove" and abs(f - one) < 1e-12:
                        rec("remove_1", name, f, v)
                    else:
                        rec(edit, name, f, v)
            if "counterfactual" in protos:
                res = ev.counterfactual(
                    model, Xtr, ytr, Xq, yq, M, step=max(1, n // 100), max_fraction=0.05, n_jobs=nj
                )
                ok = res["correct"].to_numpy()
                if ok.any():
                    rec("counterfactual", name, 0, res["fraction_edited"][ok].mean())
                curves[("counterfactual", ds, lib, name)] = res
            for edit in ("remove", "relabel", "poison"):
                if f"set_{edit}" not in protos:
                    continue
                res = ev.set_curve(
                    model,
                    Xtr,
                    ytr,
                    Xh,
                    yh,
                    G,
                    validation=(Xv, yv),
                    edit=edit,
                    fractions=set_f,
                    n_jobs=nj,
                )
                curves[(f"set_{edit}", ds, lib, name)] = res
                for f, v in zip(res["fraction"], res["loss"]):
                    if f > 0:
                        rec(f"set_{edit}", name, f, v)
        except Exception as exc:
            failures.append((ds, lib, name, f"protocol: {type(exc).__name__}: {exc}"[:200]))
            log(f"    {name}: protocol failed: {exc}")
            traceback.print_exc()

    if "noise" in protos:
        for name, template in methods.items():
            if name not in infl and name not in SELF_RANKED:
                continue  # failed above; self-influence-only methods (Loss) still run
            strategy = "self" if name in SELF_RANKED else "global"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = ev.noise_detection(
                        model,
                        Xtr,
                        ytr,
                        Xh,
                        yh,
                        template,
                        noise_fraction=0.4 if task != "regression" else 0.2,
                        fractions=noise_f,
                        strategy=strategy,
                        validation=(Xv, yv),
                        random_state=1,
                        n_jobs=nj,
                    )
                curves[("noise", ds, lib, name)] = res
                for f, v, loss in zip(res["fraction"], res["fraction_found"], res["loss"]):
                    if f > 0:
                        rec("noise", name, f, v)
                        rec("noise_fix", name, f, loss)
            except Exception as exc:
                failures.append((ds, lib, name, f"noise: {type(exc).__name__}: {exc}"[:200]))
                log(f"    {name}: noise failed: {exc}")

    def score_all(protocol, score, summary):
        """One number per method: the ``summary`` attribute of ``score(M)``."""
        for name, (M, _) in infl.items():
            res = score(M)
            curves[(protocol, ds, lib, name)] = res
            if np.isfinite(res.attrs[summary]):
                rec(protocol, name, 0, res.attrs[summary])

    if "lds" in protos and infl:
        cache = ev.subset_outputs(
            model, Xtr, ytr, Xq, yq, n_subsets=cfg["lds_subsets"], random_state=1, n_jobs=nj
        )
        lds = lambda M: ev.linear_datamodeling_score(influence=M, subsets=cache)  # noqa: E731
        score_all("lds", lds, "mean_lds")
    if "loo_corr" in protos and infl:
        deltas = ev.loo_deltas(
            model, Xtr, ytr, Xq, yq, n_rows=cfg["loo_rows"], random_state=1, n_jobs=nj
        )
        corr = lambda M: ev.loo_correlation(influence=M, deltas=deltas)  # noqa: E731
        score_all("loo_corr", corr, "mean_correlation")
    return recs, curves, failures, timings


# ---------------------------------------------------------------------- aggregate
def mean_ranks(df, exclude=("Random",)):
    """Mean rank (1 = best) per protocol and method with a 95% interval."""
    out = []
    for proto, g in df[~df["method"].isin(exclude)].groupby("protocol"):
        higher = PROTOCOLS[proto][0]
        r = g.groupby(["dataset", "library", "checkpoint"])["value"].rank(
            ascending=not higher, method="average"
        )
        g = g.assign(rank=r)
        for m, gm in g.groupby("method"):
            k = len(gm)
            half = 1.96 * gm["rank"].std(ddof=1) / np.sqrt(k) if k > 1 else np.nan
            out.append(
                {
                    "protocol": proto,
                    "method": m,
                    "mean_rank": gm["rank"].mean(),
                    "ci95": half,
                    "n": k,
                }
            )
    return pd.DataFrame(out, columns=["protocol", "method", "mean_rank", "ci95", "n"])


def beats_random(df):
    """Share of settings where each method beats Random (no rows without Random)."""
    out = []
    rnd = df[df["method"] == "Random"].set_index(["protocol", "dataset", "library", "checkpoint"])[
        "value"
    ]
    for (proto, m), g in df[df["method"] != "Random"].groupby(["protocol", "method"]):
        higher = PROTOCOLS[proto][0]
        key = list(zip(g["protocol"], g["dataset"], g["library"], g["checkpoint"]))
        base = rnd.reindex(key).to_numpy()
        ok = np.isfinite(base)
        if not ok.any():
            continue
        v = g["value"].to_numpy()[ok]
        win = (v > base[ok]) if higher else (v < base[ok])
        out.append({"protocol": proto, "method": m, "beats_random": win.mean()})
    # the columns even when empty: a run without Random still writes its report
    return pd.DataFrame(out, columns=["protocol", "method", "beats_random"])


def pairwise(df, a, b, protocol):
    """Share of settings where method ``a`` is at least as good as ``b``."""
    g = df[df["protocol"] == protocol].pivot_table(
        index=["dataset", "library", "checkpoint"], columns="method", values="value"
    )
    if a not in g or b not in g:
        return None
    g = g[[a, b]].dropna()
    if g.empty:
        return None
    higher = PROTOCOLS[protocol][0]
    win = (g[a] >= g[b]) if higher else (g[a] <= g[b])
    return float(win.mean()), len(g), float((g[a] - g[b]).mean())


# --------------------------------------------------------------------------- plots
def make_plots(df, ranks, curves, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skinfluence import plotting

    files = []
    protos = [p for p in PROTOCOLS if p in set(ranks["protocol"])]
    ncol = 3
    nrow = int(np.ceil(len(protos) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 3.6 * nrow), squeeze=False)
    for ax, p in zip(axes.ravel(), protos):
        r = ranks[ranks["protocol"] == p].sort_values("mean_rank")
        ax.barh(r["method"], r["mean_rank"], xerr=r["ci95"].fillna(0), color="tab:blue")
        ax.invert_yaxis()
        ax.set_title(p, fontsize=10)
        ax.set_xlabel("mean rank (1 = best)")
    for ax in axes.ravel()[len(protos) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "mean_ranks.png", dpi=90)
    plt.close(fig)
    files.append(("Mean rank per protocol", "mean_ranks.png"))

    # example curves on one setting per task
    settings = sorted({(k[1], k[2]) for k in curves})
    picks = [s for s in settings if s[1] == "lightgbm"][:2] or settings[:2]
    for ds, lib in picks:
        fig, axes = plt.subplots(1, 4, figsize=(20, 3.8))
        for ax, (proto, fn) in zip(
            axes,
            [
                (
                    "remove",
                    lambda r, ax: plotting.EditCurveDisplay.from_results(
                        r, metric="loss_change", ax=ax
                    ),
                ),
                ("set_remove", lambda r, ax: plotting.EditCurveDisplay.from_results(r, ax=ax)),
                ("noise", lambda r, ax: plotting.NoiseDetectionDisplay.from_results(r, ax=ax)),
                ("lds", lambda r, ax: plotting.LDSDisplay.from_results(r, ax=ax)),
            ],
        ):
            sel = {k[3]: v for k, v in curves.items() if k[:3] == (proto, ds, lib)}
            if sel:
                fn(sel, ax)
                ax.set_title(f"{proto}: {ds} / {lib}", fontsize=10)
                if ax.get_legend() is not None:
                    ax.legend(fontsize=6)
            else:
                ax.axis("off")
        fig.tight_layout()
        name = f"curves_{ds}_{lib}.png"
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        files.append((f"Curves on {ds} / {lib}", name))

    # BoostIn published vs exact on removal, per fraction
    sub = df[
        (df["protocol"].isin(["remove", "remove_1"]))
        & df["method"].isin(["BoostIn", "BoostIn (exact)", "Random"])
    ]
    if not sub.empty:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for m, g in sub.groupby("method"):
            rel = g.groupby("checkpoint")["value"].mean()
            ax.plot(100 * rel.index, rel.to_numpy(), marker="o", label=m)
        ax.set_xlabel("training rows removed (%)")
        ax.set_ylabel("mean query loss (all settings)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "boostin_forms.png", dpi=90)
        plt.close(fig)
        files.append(("BoostIn published vs exact (removal)", "boostin_forms.png"))
    return files


# -------------------------------------------------------------------------- report
def _fmt_rank_table(ranks, br):
    protos = [p for p in PROTOCOLS if p in set(ranks["protocol"])]
    methods = ranks.groupby("method")["mean_rank"].mean().sort_values().index.tolist()
    lines = ["| method | " + " | ".join(protos) + " |", "|---|" + "---|" * len(protos)]
    for m in methods:
        cells = []
        for p in protos:
            r = ranks[(ranks["protocol"] == p) & (ranks["method"] == m)]
            if r.empty:
                cells.append("–")
                continue
            r = r.iloc[0]
            ci = "" if not np.isfinite(r["ci95"]) else f" ±{r['ci95']:.1f}"
            b = br[(br["protocol"] == p) & (br["method"] == m)]
            win = "" if b.empty else f" ({100 * b['beats_random'].iloc[0]:.0f}%)"
            cells.append(f"{r['mean_rank']:.2f}{ci}{win}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def headline(df, ranks):
    out = []

    def rank_of(m, p):
        r = ranks[(ranks["protocol"] == p) & (ranks["method"] == m)]
        return None if r.empty else float(r["mean_rank"].iloc[0])

    def n_methods(p):
        return int((ranks["protocol"] == p).sum())

    # 1. BoostIn vs LeafInfluence at removal
    for p in ("remove", "remove_1"):
        pw = pairwise(df, "BoostIn", "LeafInfluence", p)
        if pw is None:
            out.append(
                f"* **BoostIn vs LeafInfluence ({p})**: not measured (LeafInfluence "
                "unavailable or failed on every setting)."
            )
            continue
        share, k, diff = pw
        verdict = "agrees" if share >= 0.5 else "disagrees"
        out.append(
            f"* **BoostIn vs LeafInfluence ({p})**: BoostIn's query loss after removal is "
            f"at least LeafInfluence's in {100 * share:.0f}% of {k} settings (mean "
            f"difference {diff:+.4g}); mean ranks {rank_of('BoostIn', p):.2f} vs "
            f"{rank_of('LeafInfluence', p):.2f}. This **{verdict}** with the paper's "
            "finding that BoostIn is as good as or better than LeafInfluence at removal."
        )
    # 2. LOO: best for the single row, poor for sets
    r1, rs = rank_of("LOO", "remove_1"), rank_of("LOO", "set_remove")
    if r1 is not None:
        best1 = ranks[ranks["protocol"] == "remove_1"].sort_values("mean_rank").iloc[0]
        out.append(
            f"* **LOO on the single most helpful row (remove_1)**: mean rank {r1:.2f} of "
            f"{n_methods('remove_1')} (best: {best1['method']} {best1['mean_rank']:.2f}). "
            + (
                "This **agrees** with the paper (LOO best for the single most influential row)."
                if best1["method"] == "LOO"
                else "The paper found LOO best here; **we do not reproduce that** on these "
                "small models (see the note below)."
            )
        )
    if rs is not None:
        out.append(
            f"* **LOO on sets (set_remove)**: mean rank {rs:.2f} of "
            f"{n_methods('set_remove')}; "
            + (
                "**agrees** with the paper (LOO poor for sets)."
                if rs > (n_methods("set_remove") + 1) / 2
                else "**disagrees** with the paper's finding that LOO is poor for sets."
            )
        )
    # 3. BoostIn published vs exact
    for p in ("remove", "remove_1"):
        pw = pairwise(df, "BoostIn", "BoostIn (exact)", p)
        if pw is None:
            continue
        share, k, diff = pw
        out.append(
            f"* **BoostIn published vs exact ({p})**: the published form's query loss "
            f"after removal is at least the exact form's in {100 * share:.0f}% of {k} "
            f"settings (mean difference {diff:+.4g}; mean ranks "
            f"{rank_of('BoostIn', p):.2f} vs {rank_of('BoostIn (exact)', p):.2f}). "
            + (
                "As expected, the published form removes at least as well."
                if share >= 0.5
                else "Unlike expected, the exact form removes better."
            )
        )
    return "\n".join(out)


def write_report(df, failures, missing, timings, files, cfg, command, elapsed, out):
    ranks = mean_ranks(df)
    br = beats_random(df)
    per_method_time = (
        pd.DataFrame(timings, columns=["dataset", "library", "method", "s"])
        .groupby("method")["s"]
        .mean()
        .sort_values()
    )
    lines = [
        "# skinfluence: comparison of influence methods on the paper's protocols",
        "",
        "Generated by:",
        "",
        "```bash",
        command,
        "```",
        "",
        f"Mode `{cfg['mode']}`: up to {cfg['n_rows']} training rows per data set, "
        f"{cfg['n_queries']} queries, {cfg['n_trees']} trees, n_jobs={cfg['n_jobs']}; "
        f"{elapsed / 60:.1f} min on {os.cpu_count()} cores (Python "
        f"{platform.python_version()}). Data sets: {', '.join(cfg['datasets'])}. "
        f"Libraries: {', '.join(cfg['libraries'])}. Single-query fractions "
        f"{list(cfg['single_fractions'])} plus one row (`remove_1`); set fractions "
        f"{list(cfg['set_fractions'])}; noise: 40% of labels flipped (regression 20%) "
        f"without replacement, checked fractions {list(cfg['noise_fractions'])}; LDS "
        f"over {cfg['lds_subsets']} half-size subsets; LOO correlation over "
        f"{cfg['loo_rows']} sampled rows. Raw numbers: `results.csv`.",
        "",
        "## Headline findings against the paper",
        "",
        headline(df, ranks),
        "",
        "Caveat: these are small models on small subsamples with few queries (the "
        "paper used 100 queries, tuned models and full data sets); quick-mode rankings "
        "have wide intervals and single-row retraining effects of GBDTs are noisy.",
        "",
        "## Mean rank per protocol",
        "",
        "Rank 1 = best, averaged over (data set, library, checkpoint) settings, ±95% "
        "interval; in parentheses the share of settings in which the method beats "
        "Random (Random itself is not ranked). Protocols:",
        "",
    ]
    for p, (higher, desc) in PROTOCOLS.items():
        if p in set(ranks["protocol"]):
            lines.append(f"* `{p}`: {desc} ({'higher' if higher else 'lower'} is better)")
    lines += ["", _fmt_rank_table(ranks, br), ""]
    if not per_method_time.empty:
        lines += [
            "## Explainer cost",
            "",
            "Mean seconds per setting to fit the explainer and compute the query and "
            "validation influence (including refits for retraining methods):",
            "",
            "| method | seconds |",
            "|---|---|",
        ]
        lines += [f"| {m} | {s:.2f} |" for m, s in per_method_time.items()]
        lines.append("")
    lines += ["## Plots", ""]
    lines += [f"### {title}\n\n![{title}]({name})\n" for title, name in files]
    lines += ["## Skipped methods and failures", ""]
    if missing:
        lines += [f"* **{n}** not importable: `{r}`" for n, r in missing]
    if failures:
        agg = {}
        for ds, lib, m, msg in failures:
            agg.setdefault(
                (m, msg.split(":")[0] + ":" + msg.split(":")[1][:90] if ":" in msg else msg), []
            ).append(f"{ds}/{lib}")
        for (m, msg), where in sorted(agg.items()):
            lines.append(f"* **{m}** skipped on {', '.join(where)}: `{msg.strip()}`")
    if not missing and not failures:
        lines.append("None.")
    lines.append("")
    (out / "README.md").write_text("\n".join(lines))
    ranks.to_csv(out / "mean_ranks.csv", index=False)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=sorted(MODES), default="quick")
    p.add_argument("--datasets", nargs="*", default=None, choices=DATASETS)
    p.add_argument("--libraries", nargs="*", default=None, choices=LIBRARIES)
    p.add_argument("--methods", nargs="*", default=None)
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "report"))
    args = p.parse_args(argv)
    cfg = dict(MODES[args.mode], mode=args.mode, n_jobs=args.n_jobs, methods=args.methods)
    cfg["datasets"] = args.datasets or list(cfg["datasets"] or DATASETS)
    libs = []
    for lib in args.libraries or LIBRARIES:
        if lib == "sklearn_hgb" or importlib.util.find_spec(lib) is not None:
            libs.append(lib)
    cfg["libraries"] = libs
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/report.py " + " ".join(argv if argv is not None else sys.argv[1:])
    methods, missing = available_methods(cfg)
    print(f"methods: {list(methods)}; missing: {[m for m, _ in missing]}", flush=True)
    t0 = time.time()
    recs, curves, failures, timings = [], {}, [], []
    for ds in cfg["datasets"]:
        for lib in libs:
            print(f"{ds} / {lib} ({(time.time() - t0) / 60:.1f} min)", flush=True)
            r, c, f, t = run_setting(ds, lib, methods, cfg, lambda s: print(s, flush=True))
            recs += r
            curves.update(c)
            failures += f
            timings += t
    df = pd.DataFrame(recs)
    df.to_csv(out / "results.csv", index=False)
    files = make_plots(df, mean_ranks(df), curves, out)
    write_report(df, failures, missing, timings, files, cfg, command.strip(), time.time() - t0, out)
    print(f"wrote {out / 'README.md'} in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
