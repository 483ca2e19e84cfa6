"""Session-8 cleaning study: the new defaults and the recommended grid, per noise rate.

Reads the result files of the runs below (``bench_cleaning_noise.py --arms ...``: the
same seeded splits, corruptions and models as the other cleaning results, so arms of
different files are paired per setting) and writes ``cleaning_defaults.md``::

    ARMS="none truth cleanlab auto_loss0.5 auto_loss_only grid_auto"  # (+ trusted_grid:
    # the session-7 arm with the verified rows also in X, superseded by trusted_heldout)
    python benchmarks/bench_cleaning_noise.py --models lightgbm --seeds 2 --n-train 1000 \\
        --rates 0.2 --arms $ARMS --json benchmarks/results/cleaning_defaults_20.json
    # likewise --rates 0.05 (_05), 0.4 (_40) and --rates 0.0 --noises uniform (_00);
    # balance="joint" arms (classification only) into cleaning_defaults_joint.json,
    # trusted_heldout trusted_none trusted_rest_none into cleaning_defaults_trusted.json,
    # grid_auto_joint (classification) into cleaning_defaults_gridjoint.json
    python benchmarks/results/cleaning_defaults.py

The defaults ``InfluenceCleaner(model)`` are ``fraction="auto", loss_weight=0.5,
balance="auto"`` (``"joint"`` for classifiers, ``None`` for regressors): the arm
``default`` is ``auto_joint_loss0.5`` for classifiers and ``auto_loss0.5`` for regressors
(``cv=5``, the fold seed of the setting). The recommended grid
``GridSearchCV(InfluenceCleaner(model), {"fraction": [0, "auto"]}, cv=3)`` (default
``score``: accuracy / R^2) is ``default_grid``: ``grid_auto_joint`` for classifiers,
``grid_auto`` (``balance=None``) for regressors; ``*@trusted`` picks on the validation
folds' clean labels (an optimistic reference). ``trusted_heldout`` verifies 10 % of the
training rows, holds them out of the cleaner's training rows and gives them as
``trusted_set``; ``fraction=[0, 0.05, 0.1, 0.2, "auto"], loss_weight=0.5`` (scoring
ROC AUC for binary tasks); references: no cleaning on all rows with the verified labels
(``trusted_none``) and on the unverified rows only (``trusted_rest_none``).
"""

import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).parent
FILES = ["cleaning_defaults_00", "cleaning_defaults_05", "cleaning_defaults_20"]
FILES += ["cleaning_defaults_40", "cleaning_defaults_joint", "cleaning_defaults_trusted"]
FILES += ["cleaning_defaults_gridjoint"]
ARMS = ["default", "default_grid", "auto_loss0.5", "grid_auto", "grid_auto_joint"]
ARMS += ["grid_auto@trusted", "grid_auto_joint@trusted", "auto_loss_only"]
ARMS += ["auto_joint_loss0.5", "auto_joint_loss_only", "cleanlab"]
#: composite arms: name -> (arm for classifiers, arm for regressors)
DEFAULTS = {
    "default": ("auto_joint_loss0.5", "auto_loss0.5"),
    "default_grid": ("grid_auto_joint", "grid_auto"),
}
NOISE_ARMS = ("cleanlab", "auto_loss0.5", "auto_loss_only", "auto_joint_loss0.5")


def load():
    settings = {}
    for f in FILES:
        path = HERE / f"{f}.json"
        if not path.exists():
            continue
        for r in json.loads(path.read_text())["rows"]:
            key = (r["data"], r["noise"], r["rate"], r["seed"], r["model"])
            settings.setdefault(key, {})[r["arm"]] = r
    settings = {k: v for k, v in settings.items() if "none" in v and "cleanlab" in v}
    for v in settings.values():  # the defaults: balance="auto" is "joint" for classifiers
        clf = v["none"]["task"] != "regression"
        for name, (c, r) in DEFAULTS.items():
            if (c if clf else r) in v:
                v[name] = v[c if clf else r]
    return settings


def interval(d):
    d = np.asarray(d, dtype=float)
    m = float(d.mean())
    if len(d) < 2 or d.std() == 0:
        return m, m, m
    h = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return m, m - h, m + h


def paired(sets, arm, ref):
    d = [v[arm]["score"] - v[ref]["score"] for v in sets if arm in v and ref in v]
    if not d:
        return "", ""
    m, lo, hi = interval(d)
    w, lost = int(np.sum(np.array(d) > 1e-12)), int(np.sum(np.array(d) < -1e-12))
    return f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]", f"{w}/{lost} of {len(d)}"


def table(settings, title, pick):
    lines = [f"### {title}", ""]
    lines += ["| rate | arm | d vs none | W/L vs none | d vs cleanlab | W/L vs cleanlab |"]
    lines += ["|---|---|---|---|---|---|"]
    for rate in sorted({k[2] for k in settings}):
        sets = [v for k, v in settings.items() if k[2] == rate and pick(v["none"]["task"])]
        if not sets:
            continue
        for arm in ARMS:
            a, b = paired(sets, arm, "none")
            c, e = paired(sets, arm, "cleanlab") if arm != "cleanlab" else ("", "")
            if a:
                lines.append(f"| {rate:.2f} | {arm} | {a} | {b} | {c} | {e} |")
        for ref in ("trusted_none", "trusted_rest_none"):
            a, b = paired(sets, "trusted_heldout", ref)
            c, e = paired(sets, "trusted_heldout", "cleanlab")
            if a:
                lines.append(f"| {rate:.2f} | trusted_heldout (vs {ref}) | {a} | {b} | {c} | {e} |")
    return lines + [""]


def cells(settings, arm):
    """Per data set x noise model x noisy rate, over the seeds: is ``arm`` within noise
    of (the 95% interval reaches 0) or better than no cleaning? The noise of a cell's
    mean is the seed-to-seed standard deviation of a cleaner's paired difference to no
    cleaning, pooled over every cell of the same data set (its test set fixes how
    finely a score moves) and over the cleaners that always act (``NOISE_ARMS``; a
    grid that keeps picking 0 has no spread of its own), over the square root of the
    cell's size."""
    groups, spread = {}, {}
    for k, v in settings.items():
        if k[2] == 0:
            continue
        if arm in v:
            groups.setdefault((k[0], k[1], k[2]), []).append(v[arm]["score"] - v["none"]["score"])
        for a in NOISE_ARMS:
            if a in v:
                d = v[a]["score"] - v["none"]["score"]
                spread.setdefault(k[0], {}).setdefault((a, k[1], k[2]), []).append(d)
    pooled = {}
    for data, members in spread.items():
        res = [x - np.mean(d) for d in members.values() for x in d]
        dof = sum(len(d) - 1 for d in members.values())
        pooled[data] = float(np.sqrt(np.sum(np.square(res)) / dof)) if dof else np.nan
    head = f"### {arm} against no cleaning, per data set x noise model x rate (rates > 0)"
    sds = ", ".join(f"{k} {sd:.4f}" for k, sd in sorted(pooled.items()))
    lines = [head, "", f"Pooled seed-to-seed sd of the difference: {sds}.", ""]
    lines += ["| data | noise | rate | n | d vs none [95%, pooled sd] | verdict |"]
    lines += ["|---|---|---|---|---|---|"]
    worse = 0
    for (data, noise, rate), d in sorted(groups.items()):
        sd = pooled[data]
        if not np.isfinite(sd):
            continue
        m, h = float(np.mean(d)), 1.96 * sd / np.sqrt(len(d))
        verdict = "better" if m - h > 0 else ("within noise" if m + h >= 0 else "**worse**")
        worse += verdict == "**worse**"
        ci = f"{m:+.4f} [{m - h:+.4f}, {m + h:+.4f}]"
        lines.append(f"| {data} | {noise} | {rate:.2f} | {len(d)} | {ci} | {verdict} |")
    return lines + ["", f"{worse} cell(s) significantly worse than no cleaning.", ""]


def rst_table(settings):
    """The doc page's summary: the defaults and the grid against no cleaning and
    cleanlab per noise rate, classification and regression apart."""
    out = []
    for kind, pick in (("classification", lambda t: t != "regression"), ("regression", None)):
        pick = pick or "regression".__eq__
        for rate in sorted({k[2] for k in settings} | {-1.0}):
            sets = [
                v
                for k, v in settings.items()
                if pick(v["none"]["task"]) and (k[2] == rate or (rate == -1.0 and k[2] > 0))
            ]
            if not sets:
                continue
            label = "all > 0" if rate == -1.0 else f"{rate:.0%}"
            for arm in ("default", "default_grid", "cleanlab"):
                a, b = paired(sets, arm, "none")
                c, e = paired(sets, arm, "cleanlab") if arm != "cleanlab" else ("", "")
                if a:
                    out.append(f"   * - {kind}\n     - {label}\n     - ``{arm}``")
                    out[-1] += (
                        f"\n     - {a} ({b})\n     - {c} ({e})"
                        if c
                        else f"\n     - {a} ({b})\n     -"
                    )
    return out


def main():
    settings = load()
    md = ["# The cleaning defaults and the recommended grid (session 8)", ""]
    md += [__doc__.split("\n\n", 1)[1].strip(), ""]
    md += [f"{len(settings)} settings (data set x noise model x rate x seed), LightGBM."]
    md += ["d = arm - reference per setting, mean [95% t interval]; W/L = settings won/lost.", ""]
    clf = ("binary", "multiclass")
    md += table(settings, "classification (ROC AUC binary, accuracy multiclass)", clf.__contains__)
    md += table(settings, "binary (ROC AUC)", "binary".__eq__)
    md += table(settings, "multiclass (accuracy)", "multiclass".__eq__)
    md += table(settings, "regression (R^2)", "regression".__eq__)
    for arm in ("default", "default_grid"):
        md += cells(settings, arm)
    if "--rst" in sys.argv:
        print("\n".join(rst_table(settings)))
        return 0
    out = HERE / "cleaning_defaults.md"
    out.write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
