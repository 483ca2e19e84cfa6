"""Comparison report: the paper's protocols for every available influence method.

Run from the repository root::

    python benchmarks/report.py --mode quick     # CI-sized (a few minutes on 2 cores)
    python benchmarks/report.py --mode medium    # about 15 minutes on 2 cores
    python benchmarks/report.py --mode full      # the paper's sizes where feasible
    python benchmarks/report.py --mode claims --out benchmarks/report_claims
                                                 # >= 10 data sets, per-query paired tests

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

Mode ``claims`` (see :func:`run_claims`) adds scikit-learn's ``wine``, ``iris`` and
``digits`` and statsmodels' ``fair`` (binary: any affair) and ``randhie`` (regression:
doctor visits), keeps every query's loss (``per_query.csv``), runs the single-query
removal refits once per distinct removed set (methods that remove the same rows share
the refit: retraining is deterministic, so this changes no number), appends its files
after every finished (data set, library) setting and skips finished settings when run
again, and adds paired tests of ``ConsensusInfluence`` against each published method.
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
    "noise_area": (True, "noisy labels: detection-curve area relative to a perfect ranking"),
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
    # the comparison at a scale that can support claims (run_claims)
    "claims": {
        "n_rows": 200,
        "n_queries": 30,
        "n_trees": 20,
        "datasets": None,
        "single_fractions": (0.005, 0.01, 0.02, 0.05),
        "set_fractions": (0.05, 0.1, 0.2),
        "noise_fractions": (0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
        "lds_subsets": 32,
        "loo_rows": 40,
        "subsample_iter": 100,
        "protocols": ("remove", "set_remove", "noise"),
    },
}
DATASETS = ("concrete", "diabetes", "credit", "spam", "breast_cancer", "hpc")
#: the claims mode's data sets: 3 regression, 4 binary, 4 multiclass
CLAIMS_DATASETS = (
    "concrete",
    "diabetes",
    "randhie",
    "credit",
    "spam",
    "breast_cancer",
    "fair",
    "hpc",
    "wine",
    "iris",
    "digits",
)
ALL_DATASETS = DATASETS + tuple(d for d in CLAIMS_DATASETS if d not in DATASETS)
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
        ("TreeSim", "skinfluence._similarity", "TreeSim", {}),
        ("InputSim", "skinfluence._similarity", "InputSim", {}),
        ("AXIL", "skinfluence._axil", "AXIL", {}),
        ("ConsensusInfluence", "skinfluence._consensus", "ConsensusInfluence", {}),
        ("LOO", "skinfluence._retrain", "LOO", {"n_jobs": cfg["n_jobs"]}),
        (
            "SubSample",
            "skinfluence._retrain",
            "SubSample",
            {"n_iter": cfg["subsample_iter"], "n_jobs": cfg["n_jobs"]},
        ),
        (
            "DataShapley",
            "skinfluence._retrain",
            "DataShapley",
            # TMC-Shapley with a fixed number of permutations (half SubSample's subsets)
            {
                "max_iter": max(cfg["subsample_iter"] // 2, 1),
                "check_every": max(cfg["subsample_iter"] // 2, 1),
                "n_jobs": cfg["n_jobs"],
            },
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
    if name in ("breast_cancer", "diabetes", "wine", "iris", "digits"):
        from sklearn import datasets

        X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
        task = {"breast_cancer": "binary", "diabetes": "regression"}.get(name, "multiclass")
    elif name in ("fair", "randhie"):
        X, y, task = _load_statsmodels(name)
    else:
        from skinfluence.datasets import load_dataset

        X, y, task = load_dataset(name, as_frame=False)
    return split_rows(X, y, task, n_rows, seed)


def split_rows(X, y, task, n_rows, seed):
    """Float64 X, integer-encoded y (classification), subsampled to ``n_rows`` training
    rows and a 20 % test split (stratified for classification):
    ``(Xtr, ytr, Xte, yte, task)``."""
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


def _load_statsmodels(name):
    """statsmodels' bundled ``fair`` (binary: any time spent in affairs) or ``randhie``
    (regression: number of doctor visits, ``mdvis``)."""
    from statsmodels import datasets as smd

    data = getattr(smd, name).load_pandas().data
    target = {"fair": "affairs", "randhie": "mdvis"}[name]
    y = data[target].to_numpy(dtype=np.float64)
    X = data.drop(columns=[target]).to_numpy(dtype=np.float64)
    if name == "fair":
        return X, (y > 0).astype(np.int64), "binary"
    return X, y, "regression"


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
def _noise_detection(model, data, template, name, task, fractions, n_jobs):
    """The noise protocol for one method: 40 % of the labels corrupted (regression 20 %),
    rows ranked by self-influence (:data:`SELF_RANKED`) or by global influence on the
    validation rows. ``data``: train, held-out and validation ``(X, y)`` pairs."""
    Xtr, ytr, Xh, yh, Xv, yv = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ev.noise_detection(
            model,
            Xtr,
            ytr,
            Xh,
            yh,
            template,
            noise_fraction=0.4 if task != "regression" else 0.2,
            fractions=fractions,
            strategy="self" if name in SELF_RANKED else "global",
            validation=(Xv, yv),
            random_state=1,
            n_jobs=n_jobs,
        )


def _record_noise(rec, name, res):
    """The share of corrupted rows found and the held-out loss after fixing, per
    checked fraction above 0."""
    for f, v, loss in zip(res["fraction"], res["fraction_found"], res["loss"]):
        if f > 0:
            rec("noise", name, f, v)
            rec("noise_fix", name, f, loss)


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
        noise_data = (Xtr, ytr, Xh, yh, Xv, yv)
        for name, template in methods.items():
            if name not in infl and name not in SELF_RANKED:
                continue  # failed above; self-influence-only methods (Loss) still run
            try:
                res = _noise_detection(model, noise_data, template, name, task, noise_f, nj)
                curves[("noise", ds, lib, name)] = res
                _record_noise(rec, name, res)
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


# -------------------------------------------------------------------------- claims
#: the published methods ConsensusInfluence is tested against (issue 17)
PUBLISHED = (
    "BoostIn",
    "BoostIn (exact)",
    "LeafInfluence",
    "LeafRefit",
    "TREX",
    "LeafSim",
    "TreeSim",
    "LOO",
    "SubSample",
)
NEW_METHOD = "ConsensusInfluence"
#: methods that refuse some tasks by design: a refusal there is "not applicable"
_APPLICABLE = {"AXIL": ("regression",)}
_CLAIMS_FILES = ("results", "per_query", "failures", "timings")


def _removal_per_query(model, Xtr, ytr, Xq, yq, rankings, counts, n_jobs):
    """Query losses after removing each method's top ``k`` rows, one refit per distinct
    (query, removed set); the same refits and scorer as ``single_query_curve``.

    Returns ``{(method, query, k): loss}``, the unedited model's query losses and the
    number of refits.
    """
    from skinfluence.evaluation._common import _fit, _prepare, _run

    template, _, _, scorer, y = _prepare(model, Xtr, ytr)
    base = scorer.evaluate(_fit(template, Xtr, y), Xq, yq)["loss"]
    jobs, index, where = [], {}, {}
    for name, R in rankings.items():
        for e in range(len(yq)):
            for k in counts:
                key = (e, tuple(sorted(R[e, :k].tolist())))
                if key not in index:
                    index[key] = len(jobs)
                    jobs.append(({"drop": R[e, :k]}, [e]))
                where[(name, e, k)] = index[key]
    results = _run(template, Xtr, y, scorer, Xq, yq, jobs, n_jobs, 0, "remove refits")
    losses = {key: float(results[j]["loss"][0]) for key, j in where.items()}
    return losses, np.asarray(base, dtype=np.float64), len(jobs)


def run_claims_setting(ds, lib, methods, cfg, log):
    """Removal (per query), set removal, noise, LDS and LOO correlation for one
    (data set, library); returns the record lists of :data:`_CLAIMS_FILES`."""
    from skinfluence.evaluation._common import _descending

    Xtr, ytr, Xte, yte, task = load(ds, cfg["n_rows"])
    model = make_model(lib, task, cfg["n_trees"])
    with threadpool_limits(limits=1):
        full = clone(model).fit(Xtr, ytr)
    rng = np.random.default_rng(1)
    q = rng.choice(len(yte), size=min(cfg["n_queries"], len(yte)), replace=False)
    Xq, yq = Xte[q], yte[q]
    # 10% validation; two rows per class when 10% has fewer rows than classes (digits)
    n_classes = 0 if task == "regression" else len(np.unique(yte))
    size = 0.1 if np.ceil(0.1 * len(yte)) >= n_classes else 2 * n_classes / len(yte)
    Xv, yv, Xh, yh = ev.split_validation(Xte, yte, validation_size=size, task=task, random_state=1)
    n, nj = len(ytr), cfg["n_jobs"]
    key = {"dataset": ds, "library": lib, "task": task}
    recs, per_query, failures, timings = [], [], [], []

    def rec(protocol, method, checkpoint, value):
        recs.append(
            {
                **key,
                "protocol": protocol,
                "method": method,
                "checkpoint": float(checkpoint),
                "value": float(value),
            }
        )

    def fail(name, stage, exc):
        status = "failure" if task in _APPLICABLE.get(name, (task,)) else "not applicable"
        msg = f"{stage}: {type(exc).__name__}: {exc}"[:300]
        failures.append({**key, "method": name, "status": status, "message": msg})
        log(f"    {name}: {status} ({msg[:120]})")

    infl = {}
    for name, template in methods.items():
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exp = clone(template).set_params(estimator=full).fit(Xtr, ytr)
                M = exp.transform(Xq, yq)
                G = exp.global_influence(Xv, yv)
            infl[name] = (M, _descending(M), G)
            timings.append({**key, "method": name, "seconds": time.perf_counter() - t0})
        except Exception as exc:
            if name not in SELF_RANKED:  # Loss has no query influence: noise only
                fail(name, "influence", exc)
    log(f"    influence of {len(infl)} methods done")
    # single-query removal: the issue's checkpoints plus the single most helpful row
    counts = {float(f): int(np.floor(f * n + 1e-9)) for f in cfg["single_fractions"]}
    ks = sorted({k for k in counts.values() if k > 0} | {1})
    t0 = time.perf_counter()
    losses, base, n_refits = _removal_per_query(
        model, Xtr, ytr, Xq, yq, {m: v[1] for m, v in infl.items()}, ks, nj
    )
    log(f"    removal: {n_refits} refits in {time.perf_counter() - t0:.0f} s")
    checkpoints = [("remove", f, k) for f, k in counts.items() if k > 0]
    for name in infl:
        for protocol, f, k in checkpoints + [("remove_1", 1.0 / n, 1)]:
            vals = [losses[(name, e, k)] for e in range(len(yq))]
            rec(protocol, name, f, np.mean(vals))
            per_query.extend(
                {
                    **key,
                    "protocol": protocol,
                    "method": name,
                    "checkpoint": f,
                    "query": e,
                    "n_removed": k,
                    "loss": v,
                    "loss_change": v - base[e],
                }
                for e, v in enumerate(vals)
            )
    # set removal by global influence (a few refits per method)
    for name, (_, _, G) in infl.items():
        try:
            res = ev.set_curve(
                model,
                Xtr,
                ytr,
                Xh,
                yh,
                G,
                validation=(Xv, yv),
                edit="remove",
                fractions=(0.0,) + tuple(cfg["set_fractions"]),
                n_jobs=nj,
            )
            for f, v in zip(res["fraction"], res["loss"]):
                if f > 0:
                    rec("set_remove", name, f, v)
        except Exception as exc:
            fail(name, "set_remove", exc)
    # noise detection (the paper's: self-influence for BoostIn and Loss)
    t0 = time.perf_counter()
    noise_f = (0.0,) + tuple(cfg["noise_fractions"])
    for name, template in methods.items():
        if name not in infl and name not in SELF_RANKED:
            continue
        try:
            res = _noise_detection(
                model, (Xtr, ytr, Xh, yh, Xv, yv), template, name, task, noise_f, nj
            )
            _record_noise(rec, name, res)
            rec("noise_area", name, 0, res.attrs["detection_area"])
        except Exception as exc:
            fail(name, "noise", exc)
    log(f"    noise: {time.perf_counter() - t0:.0f} s")
    if "lds" not in cfg["protocols"] and "loo_corr" not in cfg["protocols"]:
        return recs, per_query, failures, timings
    # the field's measures: the refits are shared by all methods
    cache = ev.subset_outputs(
        model, Xtr, ytr, Xq, yq, n_subsets=cfg["lds_subsets"], random_state=1, n_jobs=nj
    )
    deltas = ev.loo_deltas(
        model, Xtr, ytr, Xq, yq, n_rows=cfg["loo_rows"], random_state=1, n_jobs=nj
    )
    for name, (M, _, _) in infl.items():
        lds = ev.linear_datamodeling_score(influence=M, subsets=cache).attrs["mean_lds"]
        corr = ev.loo_correlation(influence=M, deltas=deltas).attrs["mean_correlation"]
        for protocol, value in (("lds", lds), ("loo_corr", corr)):
            if np.isfinite(value):
                rec(protocol, name, 0, value)
    return recs, per_query, failures, timings


def _append(out, name, rows):
    """Append ``rows`` to ``out/<name>.csv`` (header when the file is new)."""
    if not rows:
        return
    path = out / f"{name}.csv"
    pd.DataFrame(rows).to_csv(path, mode="a", header=not path.exists(), index=False)


def _read_claims(out):
    """The claims files restricted to finished settings (a crash mid-setting leaves
    none of its rows: the marker is written last)."""
    done_path = out / "done.csv"
    done = (
        pd.read_csv(done_path)
        if done_path.exists()
        else pd.DataFrame(columns=["dataset", "library", "minutes"])
    )
    keys = set(zip(done["dataset"], done["library"]))
    frames = {}
    for name in _CLAIMS_FILES:
        path = out / f"{name}.csv"
        df = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["dataset", "library"])
        ok = [k in keys for k in zip(df["dataset"], df["library"])]
        frames[name] = df[np.asarray(ok, dtype=bool)].reset_index(drop=True)
    return frames, done


def run_claims(cfg, methods, out, log=print):
    """Every (data set, library) setting not yet in ``out/done.csv``; files appended."""
    _, done = _read_claims(out)
    finished = set(zip(done["dataset"], done["library"]))
    for name in _CLAIMS_FILES:  # drop the rows of a setting that crashed half-way
        path = out / f"{name}.csv"
        if path.exists():
            df = pd.read_csv(path)
            keep = [k in finished for k in zip(df["dataset"], df["library"])]
            df[np.asarray(keep, dtype=bool)].to_csv(path, index=False)
    t_all = time.time()
    # library by library, so that a run stopped early covers every data set; digits
    # (10 classes: 10 trees per round) last
    order = [(ds, lib) for lib in cfg["libraries"] for ds in cfg["datasets"]]
    order.sort(key=lambda s: s[0] == "digits")
    for ds, lib in order:
        if (ds, lib) in finished:
            continue
        log(f"{ds} / {lib} ({(time.time() - t_all) / 60:.1f} min)")
        t0 = time.time()
        tables = run_claims_setting(ds, lib, methods, cfg, log)
        for name, rows in zip(_CLAIMS_FILES, tables):
            _append(out, name, rows)
        done = [{"dataset": ds, "library": lib, "minutes": (time.time() - t0) / 60}]
        _append(out, "done", done)


# --------------------------------------------------------------- claims statistics
def query_ranks(pq, exclude=("Random",)):
    """Per-query ranks: methods ranked per (data set, library, protocol, checkpoint,
    query) by the query's loss after removal (1 = highest loss = best, ties averaged)."""
    pq = pq[~pq["method"].isin(exclude)].copy()
    keys = ["dataset", "library", "protocol", "checkpoint", "query"]
    pq["rank"] = pq.groupby(keys)["loss"].rank(ascending=False, method="average")
    return pq


def _query_units(pqr):
    """protocol label -> DataFrame indexed by (data set, library, query), one rank
    column per method."""
    units = {}
    rem = pqr[pqr["protocol"] == "remove"]
    for f in sorted(rem["checkpoint"].unique()):
        g = rem[rem["checkpoint"] == f]
        units[f"remove {100 * f:g}%"] = g.pivot_table(
            index=["dataset", "library", "query"], columns="method", values="rank"
        )
    # all four checkpoints: the query's rank averaged over them (settings where a
    # checkpoint removes no row average over the others)
    units["remove 0.5-5% (mean)"] = rem.pivot_table(
        index=["dataset", "library", "query"], columns="method", values="rank", aggfunc="mean"
    )
    one = pqr[pqr["protocol"] == "remove_1"]
    units["remove_1"] = one.pivot_table(
        index=["dataset", "library", "query"], columns="method", values="rank"
    )
    return units


def _paired(d, sign):
    """One-sided Wilcoxon signed-rank test (zero differences dropped) of ``d`` > 0,
    mean with a 95% t interval, wins/ties/losses."""
    from scipy import stats

    d = np.asarray(d, dtype=np.float64) * sign
    nz = d[d != 0]
    p = stats.wilcoxon(nz, alternative="greater").pvalue if len(nz) >= 5 else np.nan
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return {
        "n": len(d),
        "wins": int((d > 0).sum()),
        "ties": int((d == 0).sum()),
        "losses": int((d < 0).sum()),
        "mean_diff": d.mean(),
        "ci_low": d.mean() - half,
        "ci_high": d.mean() + half,
        "p_value": p,
    }


def paired_tests(pq, results, new=NEW_METHOD, others=PUBLISHED):
    """``new`` against each of ``others``, per protocol.

    Single-query protocols: unit = one query of one (data set, library); difference =
    the other method's per-query rank minus ``new``'s (positive: ``new`` better).
    Noise: unit = one (data set, library); difference = ``new``'s detection area minus
    the other's. Set removal, LDS and LOO correlation: unit = one (data set, library);
    difference = the other's setting-level rank (averaged over checkpoints) minus
    ``new``'s. Also the number of settings in which ``new``'s mean is better.
    """
    out = []
    pqr = query_ranks(pq)
    for label, tab in _query_units(pqr).items():
        if new not in tab:
            continue
        per_setting = tab.groupby(level=["dataset", "library"]).mean()
        for m in others:
            if m not in tab:
                continue
            both = tab[[new, m]].dropna()
            ps = per_setting[[new, m]].dropna()
            row = _paired(both[m] - both[new], 1.0)
            row.update(
                protocol=label,
                method=m,
                unit="query",
                measure="rank",
                settings_won=int((ps[m] > ps[new]).sum()),
                settings=len(ps),
            )
            out.append(row)
    # setting-level protocols
    res = results[~results["method"].isin(["Random"])]
    for proto in ("noise_area", "set_remove", "lds", "loo_corr"):
        g = res[res["protocol"] == proto]
        if g.empty:
            continue
        if proto == "noise_area":
            tab = g.pivot_table(index=["dataset", "library"], columns="method", values="value")
            measure, sign = "detection area", -1.0  # d = other - new, flipped
        else:
            higher = PROTOCOLS[proto][0]
            r = g.groupby(["dataset", "library", "checkpoint"])["value"].rank(
                ascending=not higher, method="average"
            )
            tab = g.assign(rank=r).pivot_table(
                index=["dataset", "library"], columns="method", values="rank", aggfunc="mean"
            )
            measure, sign = "rank", 1.0
        if new not in tab:
            continue
        for m in others:
            if m not in tab:
                continue
            both = tab[[new, m]].dropna()
            if len(both) < 2:
                continue
            row = _paired(both[m] - both[new], sign)
            row.update(
                protocol=proto,
                method=m,
                unit="setting",
                measure=measure,
                settings_won=row["wins"],
                settings=len(both),
            )
            out.append(row)
    df = pd.DataFrame(out)
    if not df.empty:  # Holm's correction over the published methods, per protocol
        df["p_holm"] = df.groupby("protocol")["p_value"].transform(_holm)
    return df


def _holm(p):
    p = np.asarray(p, dtype=np.float64)
    ok = np.isfinite(p)
    out = np.full_like(p, np.nan)
    if ok.any():
        q = p[ok]
        order = np.argsort(q)
        adj = np.minimum(1.0, np.maximum.accumulate(q[order] * (len(q) - np.arange(len(q)))))
        res = np.empty_like(q)
        res[order] = adj
        out[ok] = res
    return out


def query_mean_ranks(pq):
    """Mean per-query rank per protocol label and method, with a 95% interval."""
    rows = []
    for label, tab in _query_units(query_ranks(pq)).items():
        for m in tab:
            v = tab[m].dropna()
            half = 1.96 * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan
            rows.append(
                {"protocol": label, "method": m, "mean_rank": v.mean(), "ci95": half, "n": len(v)}
            )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------- claims report
def _fmt_p(p):
    return "–" if not np.isfinite(p) else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}")


def _fmt_tests(tests):
    lines = [
        "| protocol | vs method | unit | n | mean diff [95% CI] | wins/ties/losses | "
        "settings won | p (one-sided) | p (Holm) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in tests.iterrows():
        lines.append(
            f"| {r['protocol']} | {r['method']} | {r['unit']} ({r['measure']}) | {r['n']} | "
            f"{r['mean_diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] | "
            f"{r['wins']}/{r['ties']}/{r['losses']} | {r['settings_won']}/{r['settings']} | "
            f"{_fmt_p(r['p_value'])} | {_fmt_p(r['p_holm'])} |"
        )
    return "\n".join(lines)


def _fmt_query_ranks(qr):
    protos = list(dict.fromkeys(qr["protocol"]))
    methods = (
        qr[qr["protocol"] == "remove 0.5-5% (mean)"].sort_values("mean_rank")["method"].tolist()
    )
    methods += [m for m in dict.fromkeys(qr["method"]) if m not in methods]
    lines = ["| method | " + " | ".join(protos) + " |", "|---|" + "---|" * len(protos)]
    for m in methods:
        cells = []
        for p in protos:
            r = qr[(qr["protocol"] == p) & (qr["method"] == m)]
            cells.append(
                "–" if r.empty else f"{r['mean_rank'].iloc[0]:.2f} ±{r['ci95'].iloc[0]:.2f}"
            )
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt_by_dataset(pq):
    """Per data set: the new method's mean per-query rank over the removal checkpoints
    (0.5-5%, all libraries) and the best method's."""
    pqr = query_ranks(pq)
    rem = pqr[pqr["protocol"] == "remove"]
    lines = [
        f"| data set | task | {NEW_METHOD} | best method | 2nd |",
        "|---|---|---|---|---|",
    ]
    for ds, g in rem.groupby("dataset", sort=False):
        r = g.groupby("method")["rank"].mean().sort_values()
        new = (
            f"{r[NEW_METHOD]:.2f} (#{list(r.index).index(NEW_METHOD) + 1})"
            if NEW_METHOD in r
            else "–"
        )
        lines.append(
            f"| {ds} | {g['task'].iloc[0]} | {new} | {r.index[0]} {r.iloc[0]:.2f} | "
            f"{r.index[1]} {r.iloc[1]:.2f} |"
        )
    return "\n".join(lines)


def claims_headline(df, ranks, timings, tests, cfg):
    """The paper's findings (``headline``) plus its speed claim and the issue's bar."""
    out = [headline(df, ranks)]
    t = timings.groupby("method")["seconds"].median() if not timings.empty else pd.Series()
    if "BoostIn" in t and "LeafInfluence" in t:
        ratio = t["LeafInfluence"] / t["BoostIn"]
        out.append(
            f"* **Speed (BoostIn vs LeafInfluence)**: median explainer time (fit + query and "
            f"validation influence) {t['BoostIn']:.3f} s vs {t['LeafInfluence']:.3f} s, "
            f"LeafInfluence/BoostIn = {ratio:.1f}x. The paper reports BoostIn orders of "
            "magnitude faster at its sizes; here "
            f"({cfg['n_rows']} rows, {cfg['n_trees']} trees) this "
            + ("**agrees** in direction" if ratio > 1 else "**disagrees**")
            + " (the gap grows with the number of rows; see benchmarks/results/boostin.md)."
        )
    # BoostIn "as good as or better than" the other published methods on removal
    rem = ranks[ranks["protocol"] == "remove"].set_index("method")["mean_rank"]
    pub = [m for m in PUBLISHED if m in rem and m != "BoostIn"]
    if "BoostIn" in rem and pub:
        better = [m for m in pub if rem[m] < rem["BoostIn"]]
        out.append(
            f"* **BoostIn among the published methods (remove, mean rank)**: BoostIn "
            f"{rem['BoostIn']:.2f}; ranked ahead of it: "
            + (", ".join(f"{m} {rem[m]:.2f}" for m in better) or "none")
            + ". The paper's 'BoostIn as good as or better than existing methods' "
            + ("**agrees**." if not better else "**disagrees** for the methods listed.")
        )
    if not tests.empty:
        need = [
            p for p in tests["protocol"].unique() if p.startswith("remove ") and "mean" not in p
        ]
        need += ["noise_area"]
        sub = tests[tests["protocol"].isin(need)]
        worst = sub.loc[sub["p_value"].fillna(1).idxmax()] if not sub.empty else None
        met = not sub.empty and bool((sub["p_value"] < 0.01).all())
        out.append(
            f"* **Issue 17's bar for {NEW_METHOD}** (better than every published method "
            "at 0.5, 1, 2, 5% removal and on noise detection, p < 0.01): "
            + ("**met**." if met else "**not met**")
            + (
                ""
                if worst is None
                else f" (largest p: {_fmt_p(worst['p_value'])}, {worst['protocol']} vs "
                f"{worst['method']})."
            )
        )
    return "\n".join(out)


def make_claims_plots(ranks, qranks, tests, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = make_plots(pd.DataFrame(columns=["protocol", "method"]), ranks, {}, out)
    labels = list(dict.fromkeys(qranks["protocol"]))
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 4.2), squeeze=False)
    for ax, p in zip(axes.ravel(), labels):
        r = qranks[qranks["protocol"] == p].sort_values("mean_rank")
        colors = ["tab:red" if m == NEW_METHOD else "tab:blue" for m in r["method"]]
        ax.barh(r["method"], r["mean_rank"], xerr=r["ci95"], color=colors)
        ax.invert_yaxis()
        ax.set_title(p, fontsize=10)
        ax.set_xlabel("mean per-query rank (1 = best)")
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "query_ranks.png", dpi=90)
    plt.close(fig)
    files.append(("Mean per-query rank, single-query removal", "query_ranks.png"))
    if not tests.empty:
        protos = list(dict.fromkeys(tests["protocol"]))
        fig, axes = plt.subplots(1, len(protos), figsize=(3.4 * len(protos), 3.6), squeeze=False)
        for ax, p in zip(axes.ravel(), protos):
            t = tests[tests["protocol"] == p]
            y = np.arange(len(t))
            ax.errorbar(
                t["mean_diff"],
                y,
                xerr=[t["mean_diff"] - t["ci_low"], t["ci_high"] - t["mean_diff"]],
                fmt="o",
            )
            ax.axvline(0, color="grey", lw=0.8)
            ax.set_yticks(y, t["method"], fontsize=7)
            ax.invert_yaxis()
            ax.set_title(p, fontsize=9)
            ax.set_xlabel(f"{t['measure'].iloc[0]} diff (> 0: {NEW_METHOD} better)", fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "consensus_paired.png", dpi=90)
        plt.close(fig)
        files.append(
            (f"{NEW_METHOD} minus each published method (95% intervals)", "consensus_paired.png")
        )
    return files


def write_claims_report(cfg, missing, command, out):
    """README.md, mean_ranks.csv, query_ranks.csv, paired_tests.csv and plots from the
    appended files in ``out``."""
    frames, done = _read_claims(out)
    df, pq, failures, timings = (frames[k] for k in _CLAIMS_FILES)
    ranks = mean_ranks(df)
    br = beats_random(df)
    qranks = query_mean_ranks(pq)
    tests = paired_tests(pq, df)
    files = make_claims_plots(ranks, qranks, tests, out)
    settings = sorted(zip(done["dataset"], done["library"]))
    tasks = df.drop_duplicates("dataset").set_index("dataset")["task"].to_dict()
    ds_list = ", ".join(f"{d} ({tasks.get(d, '?')})" for d in dict.fromkeys(done["dataset"]))
    lines = [
        "# skinfluence: influence methods compared at a scale that can support claims",
        "",
        "Generated by (resumable: finished settings are kept in `done.csv`):",
        "",
        "```bash",
        command,
        "```",
        "",
        f"{len(settings)} settings ({len(set(done['dataset']))} data sets x "
        f"{len(set(done['library']))} libraries), {done['minutes'].sum():.0f} min of "
        f"compute in total (2 shared cores, `nice -n 10`, n_jobs={cfg['n_jobs']}); Python "
        f"{platform.python_version()}. Data sets: {ds_list}. Libraries: "
        f"{', '.join(dict.fromkeys(done['library']))}. Models: {cfg['n_trees']} trees of about "
        f"15 leaves, learning rate 0.1, up to {cfg['n_rows']} training rows (80/20 split of a "
        f"subsample, seed 1, stratified for classification), {cfg['n_queries']} random test "
        "queries per setting (seed 1). Raw numbers: `results.csv` (setting level), "
        "`per_query.csv` (every query's loss after removal), `failures.csv`, `timings.csv`.",
        "",
        "Protocols: single-query removal of each query's top 0.5, 1, 2, 5% training rows "
        "(floor of the fraction times the rows; a checkpoint that removes no row on a small "
        "data set is left out) and of its single most helpful row (`remove_1`), refit, query "
        "loss (higher = better); set removal of the top 5/10/20% by global influence on a "
        "validation split; noise detection (40% of the labels corrupted, regression 20%; "
        "BoostIn, BoostIn (exact) and Loss rank by self-influence as in the paper, the "
        "others by global influence; checked fractions "
        f"{list(cfg['noise_fractions'])}; `noise_area` = detection-curve area relative to a "
        "perfect ranking)"
        + (
            f"; LDS over {cfg['lds_subsets']} half-size subsets; LOO correlation over "
            f"{cfg['loo_rows']} rows"
            if "lds" in cfg["protocols"]
            else ""
        )
        + ". Methods that remove the same rows for a query share one refit (retraining is "
        "deterministic). At 200 training rows the 0.5% checkpoint removes one row, the "
        "same as `remove_1`; on iris (120 rows) and wine (142) 0.5% removes none and is "
        "left out. Explainers use their default settings; `TreeSim` with its defaults "
        "gives the same rankings as `LeafSim` here (the paper's 'TreeSim' is our LeafSim), "
        "so the two tie everywhere.",
        "",
        "## Headline findings against the paper",
        "",
        claims_headline(df, ranks, timings, tests, cfg),
        "",
        "## Mean rank per protocol (setting level, as in the paper)",
        "",
        "Methods ranked per (data set, library, checkpoint) by the mean over the queries "
        "(1 = best; Random not ranked; in parentheses the share of settings in which the "
        "method beats Random); ±95% normal interval. AXIL is ranked only on the regression "
        "settings (it refuses the others by design), where 13 methods are ranked, not 12.",
        "",
        _fmt_rank_table(ranks, br),
        "",
        "## Mean per-query rank, single-query removal",
        "",
        "Methods ranked per (data set, library, checkpoint, query) by that query's loss "
        "after removal (ties averaged: methods that remove the same rows tie); "
        "`remove 0.5-5% (mean)` averages a query's ranks over the four checkpoints. "
        "±95% normal interval over the queries.",
        "",
        _fmt_query_ranks(qranks),
        "",
        f"## {NEW_METHOD} against each published method: paired tests",
        "",
        "Single-query protocols: the unit is one query of one (data set, library), pooled "
        "over all data sets and libraries; the paired quantity is the **per-query rank** "
        f"(the other method's minus {NEW_METHOD}'s, so > 0 means {NEW_METHOD} raised the "
        "query's loss more). Ranks, not losses, because losses are on different scales "
        "across data sets. `remove 0.5-5% (mean)` pairs a query's rank averaged over the "
        "four checkpoints (one unit per query; the per-checkpoint rows are not independent "
        "of it). Noise: the unit is one (data set, library), the quantity the detection "
        f"area ({NEW_METHOD}'s minus the other's). Set removal, LDS, LOO correlation: the "
        "unit is one setting, the quantity the setting-level rank averaged over "
        "checkpoints. Test: one-sided Wilcoxon signed-rank (H1: "
        f"{NEW_METHOD} better), zero differences dropped; Holm's correction over the nine "
        "published methods within a protocol. Mean difference with a 95% t interval. "
        "'settings won': settings in which its mean over the queries is better. Caveat: "
        "queries of one setting share a model, so the pooled per-query test treats "
        "correlated units as independent; the settings-won column is the cluster-level "
        "check.",
        "",
        _fmt_tests(tests) if not tests.empty else "No tests (the method did not run).",
        "",
        f"### Where {NEW_METHOD} wins and loses (removal 0.5-5%, per data set)",
        "",
        "Mean per-query rank over the four checkpoints and the four libraries (its place "
        "among the methods in parentheses):",
        "",
        _fmt_by_dataset(pq),
        "",
    ]
    if not timings.empty:
        t = timings.groupby("method")["seconds"].agg(["median", "mean"]).sort_values("median")
        lines += [
            "## Explainer cost",
            "",
            "Seconds per setting to fit the explainer and compute the query and validation "
            "influence (retraining methods include their refits); loaded machine.",
            "",
            "| method | median s | mean s |",
            "|---|---|---|",
        ]
        lines += [f"| {m} | {r['median']:.3f} | {r['mean']:.3f} |" for m, r in t.iterrows()]
        lines.append("")
    lines += ["## Plots", ""]
    lines += [f"### {title}\n\n![{title}]({name})\n" for title, name in files]
    lines += ["## Not applicable, skipped and failed", ""]
    if missing:
        lines += [f"* **{n}** not importable: `{r}`" for n, r in missing]
    if not failures.empty:
        # a refusal by design: one line per method, the message up to the model's name
        failures = failures.assign(
            short=[
                msg.split(", got ")[0] if status == "not applicable" else msg[:200]
                for msg, status in zip(failures["message"], failures["status"])
            ]
        )
        for (m, status, msg), g in failures.groupby(["method", "status", "short"]):
            where = ", ".join(f"{d}/{lib}" for d, lib in zip(g["dataset"], g["library"]))
            if status == "not applicable":
                where = (
                    f"{len(g)} settings ({', '.join(dict.fromkeys(g['dataset']))}; "
                    f"{', '.join(dict.fromkeys(g['library']))})"
                )
            lines.append(f"* **{m}** {status} on {where}: `{msg}`")
    if not missing and failures.empty:
        lines.append("None.")
    lines.append("")
    (out / "README.md").write_text("\n".join(lines))
    ranks.to_csv(out / "mean_ranks.csv", index=False)
    qranks.to_csv(out / "query_ranks.csv", index=False)
    tests.to_csv(out / "paired_tests.csv", index=False)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=sorted(MODES), default="quick")
    p.add_argument("--datasets", nargs="*", default=None, choices=ALL_DATASETS)
    p.add_argument("--libraries", nargs="*", default=None, choices=LIBRARIES)
    p.add_argument("--methods", nargs="*", default=None)
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--out", default=None, help="default benchmarks/report(_claims)")
    p.add_argument("--n-rows", type=int, default=None, help="override the mode's rows")
    p.add_argument("--n-queries", type=int, default=None)
    p.add_argument("--n-trees", type=int, default=None)
    p.add_argument("--subsample-iter", type=int, default=None)
    p.add_argument(
        "--report-only", action="store_true", help="claims: rewrite the report from the files"
    )
    args = p.parse_args(argv)
    cfg = dict(MODES[args.mode], mode=args.mode, n_jobs=args.n_jobs, methods=args.methods)
    for name in ("n_rows", "n_queries", "n_trees", "subsample_iter"):
        if getattr(args, name) is not None:
            cfg[name] = getattr(args, name)
    default_ds = CLAIMS_DATASETS if args.mode == "claims" else DATASETS
    cfg["datasets"] = args.datasets or list(cfg["datasets"] or default_ds)
    libs = []
    for lib in args.libraries or LIBRARIES:
        if lib == "sklearn_hgb" or importlib.util.find_spec(lib) is not None:
            libs.append(lib)
    cfg["libraries"] = libs
    sub = "report_claims" if args.mode == "claims" else "report"
    out = Path(args.out or ROOT / "benchmarks" / sub)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/report.py " + " ".join(argv if argv is not None else sys.argv[1:])
    methods, missing = available_methods(cfg)
    print(f"methods: {list(methods)}; missing: {[m for m, _ in missing]}", flush=True)
    if args.mode == "claims":
        if not args.report_only:
            run_claims(cfg, methods, out, lambda s: print(s, flush=True))
        write_claims_report(cfg, missing, command.strip(), out)
        print(f"wrote {out / 'README.md'}")
        return
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
