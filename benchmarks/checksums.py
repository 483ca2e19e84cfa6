"""Checksums of every method's output on every library and task.

A refactoring that must not change any result (bit for bit) is checked by running this
script before and after and comparing the two JSON files::

    python benchmarks/checksums.py --out before.json        # on the old commit
    python benchmarks/checksums.py --out after.json         # on the new one
    python benchmarks/checksums.py --compare before.json after.json

Each entry is the SHA-256 of the raw bytes of one output (``transform`` with and
without query labels, ``self_influence``, ``global_influence``, ``top_k``; the rows an
``InfluenceCleaner`` keeps; the evaluation protocols' tables). The models are tiny
ones from the shared factory :func:`skinfluence.testing.make_model`, with their
hyperparameters written out here, trained on the tests' synthetic data
(``tests.models.make_data``; run from the repository root with ``PYTHONPATH=$PWD``).
"""

import argparse
import hashlib
import json
import sys
import time
import warnings

import numpy as np

LIBRARIES = ("sklearn_gb", "sklearn_hgb", "sklearn_rf", "lightgbm", "xgboost", "catboost")
TASKS = ("squared_error", "binary", "multiclass")


def _data(task, n=80, seed=0):
    from skinfluence.testing import make_data

    return make_data("regression" if task == "squared_error" else task, n=n, seed=seed)


# each library's tree shape here (the factory sets trees, rate, seed, threads, quiet)
_SHAPES = {
    "sklearn_gb": {"max_depth": 3},
    "sklearn_hgb": {"max_leaf_nodes": 8, "min_samples_leaf": 5, "l2_regularization": 0.5},
    "sklearn_rf": {"n_estimators": 5, "max_depth": 3},
    "lightgbm": {"num_leaves": 8, "min_child_samples": 5, "reg_lambda": 0.5},
    "xgboost": {"max_depth": 3, "reg_lambda": 0.5},
    "catboost": {"depth": 3},
}


def _model(lib, task):
    from skinfluence.testing import make_model

    task = "regression" if task == "squared_error" else task
    return make_model(lib, task, **{"n_estimators": 6, **_SHAPES[lib]})


def _methods():
    import skinfluence as sk

    return {
        "BoostIn": lambda: sk.BoostIn(),
        "BoostIn_exact": lambda: sk.BoostIn(derivative="exact"),
        # multiclass="diagonal": the form these checksums were first taken with (the
        # default "exact" adds the cross-class terms and changes multiclass values)
        "LeafInfluence": lambda: sk.LeafInfluence(multiclass="diagonal"),
        "LeafInfluence_single": lambda: sk.LeafInfluence(update_set=0, multiclass="diagonal"),
        "LeafInfluence_top2": lambda: sk.LeafInfluence(update_set=2, multiclass="diagonal"),
        "LeafRefit": lambda: sk.LeafRefit(),
        "LeafRefit_single": lambda: sk.LeafRefit(update_set=0),
        "LeafRefit_top2": lambda: sk.LeafRefit(update_set=2),
        "LeafInfluence_blocks": lambda: sk.LeafInfluence(
            chunk_memory_mb=0.01, block_size=7, multiclass="diagonal"
        ),
        "LeafRefit_blocks": lambda: sk.LeafRefit(chunk_memory_mb=0.01, block_size=7),
        "TREX_blocks": lambda: sk.TREX(chunk_memory_mb=0.01),
        "TREX": lambda: sk.TREX(),
        "TreeSim": lambda: sk.TreeSim(),
        "LeafSim": lambda: sk.LeafSim(),
        "InputSim": lambda: sk.InputSim(),
        "RandomInfluence": lambda: sk.RandomInfluence(),
        "TargetInfluence": lambda: sk.TargetInfluence(),
        "MinorityInfluence": lambda: sk.MinorityInfluence(),
        "LossInfluence": lambda: sk.LossInfluence(),
        "LOO": lambda: sk.LOO(n_jobs=1),
        "SubSample": lambda: sk.SubSample(n_iter=12, n_jobs=1),
        "DataShapley": lambda: sk.DataShapley(max_iter=3, check_every=2, n_jobs=1),
    }


def _digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:20]


def _outputs(explainer, X, y, Xq, yq):
    est = explainer.fit(X, y)
    calls = {
        "transform_y": lambda: est.transform(Xq, yq),
        "transform": lambda: est.transform(Xq),
        "global": lambda: est.global_influence(Xq, yq),
        "top_k": lambda: est.top_k(Xq, yq, k=5),
        "self": lambda: est.self_influence(),
    }
    out = {}
    for name, call in calls.items():
        try:
            res = call()
        except (NotImplementedError, ValueError) as exc:  # a refusal is a result too
            out[name] = f"refused: {type(exc).__name__}"
            continue
        out[name] = _digest(*res) if isinstance(res, tuple) else _digest(res)
    return out


def _cleaning(X, y):
    import skinfluence as sk
    from skinfluence.evaluation import noise_detection, set_curve

    model = _model("lightgbm", "binary")
    out = {}
    for crit in ("self", "oof"):  # one removal round: the defaults before session 10
        cl = sk.InfluenceCleaner(
            model,
            sk.BoostIn(),
            fraction=0.1,
            criterion=crit,
            action="remove",
            n_rounds=1,
            n_repeats=1,
            random_state=0,
        ).fit(X, y)
        out[f"cleaner_{crit}"] = _digest(cl.predict_proba(X))
    cl = sk.InfluenceCleaner(model, random_state=0).fit(X, y)  # the defaults
    out["cleaner_default"] = _digest(cl.predict_proba(X), cl.row_weights_)
    Xt, yt = X[:40] + 0.05, y[:40]
    res = set_curve(model, X, y, Xt, yt, influence=sk.BoostIn(), fractions=[0.1, 0.2], n_jobs=1)
    out["set_curve"] = _digest(*[np.asarray(v, dtype=float) for v in _table(res)])
    res = noise_detection(
        model, X, y, Xt, yt, sk.BoostIn(), noise_fraction=0.2, fractions=[0.1], n_jobs=1
    )
    out["noise_detection"] = _digest(*[np.asarray(v, dtype=float) for v in _table(res)])
    return out


def _table(res):
    cols = res.to_dict("list") if hasattr(res, "to_dict") else res
    return [cols[k] for k in sorted(cols) if k != "attrs" and _numeric(cols[k])]


def _numeric(v):
    try:
        np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        return False
    return True


def run(only=None):
    results = {}
    for lib in LIBRARIES:
        for task in TASKS:
            X, y = _data(task)
            Xq, yq = X[:12] + 0.05, y[:12]
            model = _model(lib, task).fit(X, y)
            for name, make in _methods().items():
                if only and name not in only:
                    continue
                key = f"{lib}/{task}/{name}"
                est = make().set_params(estimator=model)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        results[key] = _outputs(est, X, y, Xq, yq)
                except Exception as exc:  # a refusal is a result too
                    results[key] = {"refused": f"{type(exc).__name__}: {str(exc)[:80]}"}
    for lib in ("lightgbm", "xgboost", "sklearn_hgb", "catboost"):  # sample weights
        X, y = _data("binary")
        w = np.random.default_rng(3).uniform(0.5, 2.0, size=len(y))
        model = _model(lib, "binary").fit(X, y, sample_weight=w)
        for name in ("BoostIn", "LeafInfluence", "LeafRefit", "TREX"):
            if only and name not in only:
                continue
            est = _methods()[name]().set_params(estimator=model).fit(X, y, sample_weight=w)
            results[f"{lib}/binary_weighted/{name}"] = {
                "transform_y": _digest(est.transform(X[:12], y[:12]))
            }
    if not only:
        X, y = _data("binary", n=120, seed=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results["cleaning_evaluation"] = _cleaning(X, y)
    return results


def compare(a, b):
    A, B = (json.load(open(p)) for p in (a, b))
    keys = sorted(set(A) | set(B))
    same = sum(A.get(k) == B.get(k) for k in keys)
    for k in keys:
        if A.get(k) != B.get(k):
            print(f"DIFFERS {k}: {A.get(k)} -> {B.get(k)}")
    n_out = sum(len(v) for v in A.values())
    print(f"{same}/{len(keys)} cases identical ({n_out} outputs in {a})")
    return same == len(keys)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="checksums.json")
    p.add_argument("--only", nargs="*", help="method names to run")
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = p.parse_args(argv)
    if args.compare:
        return 0 if compare(*args.compare) else 1
    t0 = time.perf_counter()
    res = run(args.only)
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=1, sort_keys=True)
    print(f"{len(res)} cases in {time.perf_counter() - t0:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
