"""Session-9 cleaning study with scikit-learn's HistGradientBoosting (the cleaner's
default model): the defaults against no cleaning and cleanlab.

Reads ``cleaning_hgb.json``, written by::

    python benchmarks/bench_cleaning_noise.py --models hgb --seeds 2 --n-train 1000 \\
        --rates 0.05 0.2 0.4 --arms none cleanlab auto_joint_loss0.5 auto_loss0.5 \\
        --json benchmarks/results/cleaning_hgb.json
    python benchmarks/results/cleaning_hgb.py      # writes cleaning_hgb.md

``HistGradientBoostingClassifier`` / ``Regressor`` with 100 iterations x 15 leaves (the
benchmark's ``hgb`` model), the 10 data sets x 3 noise models of the session-8 study,
noise rates 5, 20 and 40 %, 2 seeds. ``default`` is ``InfluenceCleaner(model)``:
``auto_joint_loss0.5`` for classifiers, ``auto_loss0.5`` for regressors. The tables and
the per-cell check are those of ``cleaning_defaults.py``.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from cleaning_defaults import DEFAULTS, cells, paired, table  # noqa: E402


def load(path):
    settings = {}
    for r in json.loads(path.read_text())["rows"]:
        key = (r["data"], r["noise"], r["rate"], r["seed"], r["model"])
        settings.setdefault(key, {})[r["arm"]] = r
    settings = {k: v for k, v in settings.items() if "none" in v and "cleanlab" in v}
    for v in settings.values():
        clf = v["none"]["task"] != "regression"
        for name, (c, r) in DEFAULTS.items():
            if (c if clf else r) in v:
                v[name] = v[c if clf else r]
    return settings


def main():
    settings = load(HERE / "cleaning_hgb.json")
    n = len(settings)
    lines = [
        "# Cleaning with HistGradientBoosting (session 9)",
        "",
        __doc__.split("\n\n", 1)[1].strip(),
        "",
        f"{n} settings. Score: ROC AUC (binary), accuracy (multiclass), R^2 (regression) "
        "on clean test targets; d = arm - reference per setting, mean [95% t interval]; "
        "W/L = settings won/lost.",
        "",
    ]
    clf = [v for v in settings.values() if v["none"]["task"] != "regression"]
    for ref in ("cleanlab", "none"):
        d, wl = paired(clf, "default", ref)
        lines.append(f"Classification, all noisy rates: default vs {ref} {d}, {wl}.")
    lines.append("")
    lines += table(settings, "Classification", lambda t: t != "regression")
    lines += table(settings, "Regression", lambda t: t == "regression")
    lines += ["## Per data set x noise model x rate: the defaults against no cleaning", ""]
    lines += cells(settings, "default")
    (HERE / "cleaning_hgb.md").write_text("\n".join(lines))
    print("\n".join(lines[:60]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
