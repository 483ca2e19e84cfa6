"""Tests of the XGBoost adapter (``skinfluence._adapters._xgboost``).

The adapter must reproduce XGBoost's own raw margins from the parsed trees (the
reconstruction check) and, for models trained without breaking settings, every stored
leaf must be one Newton step on the training rows (the leaf-model check).
"""

import functools
import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

xgb = pytest.importorskip("xgboost")
pd = pytest.importorskip("pandas")

import skinfluence  # noqa: E402
from skinfluence import LeafModelError, UnsupportedModelError  # noqa: E402
from skinfluence._adapters._xgboost import to_ensemble  # noqa: E402
from skinfluence.datasets import load_dataset  # noqa: E402
from skinfluence.testing import quantile_classes  # noqa: E402

from .models import adapter_model, xgboost_task  # noqa: E402
from .reference import class_index  # noqa: E402

BINARY_OBJECTIVES = ("binary:logistic", "binary:logitraw")
MULTI_OBJECTIVES = ("multi:softprob", "multi:softmax")


# --------------------------------------------------------------------------- helpers
def xgboost_data(seed, n, p, task, n_classes=3, nan=False, cat=False):
    """Random data in XGBoost's form: numpy X, or a DataFrame with a pandas categorical
    column when ``cat``.

    Returns ``X, y`` with integer labels ``0..n_classes-1`` (all present) for
    classification.
    """
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, p))
    signal = Z[:, 0] - 0.5 * Z[:, -1]
    if nan:
        Z[rng.random(Z.shape) < 0.15] = np.nan
    X = Z
    if cat:
        codes = rng.integers(0, 5, n)
        signal = signal + (codes == 2) - 0.7 * (codes == 4)
        X = pd.DataFrame(Z, columns=[f"x{j}" for j in range(p)])
        X["c"] = pd.Categorical.from_codes(codes, categories=list("abcde"))
    noise = rng.normal(scale=0.5, size=n)
    if task == "regression":
        y = signal + noise
    elif task == "binary":
        y = (signal + noise > 0).astype(np.int64)
        y[:2] = [0, 1]
    else:
        y = quantile_classes(signal + noise, n_classes).astype(np.int64)
        y[:n_classes] = np.arange(n_classes)
    return X, y


# an unfitted XGBoost wrapper for an objective string
model_for = functools.partial(adapter_model, "xgboost")


def assert_ensemble_exact(ens, X, y, sample_weight=None):
    """Reconstruction and leaf-model checks pass; return the leaf ids."""
    leaves = ens.check_reconstruction(X)
    assert leaves.shape == (len(y), ens.n_trees)
    worst = ens.check_leaf_model(leaves, class_index(ens, y), sample_weight)
    assert worst == 0.0
    return leaves


# ------------------------------------------------------------ property-based tests
@st.composite
def xgb_cases(draw):
    """A random small data set and a random XGBoost configuration."""
    task = draw(st.sampled_from(["regression", "binary", "multiclass"]))
    if task == "regression":
        objective = "reg:squarederror"
    elif task == "binary":
        objective = draw(st.sampled_from(BINARY_OBJECTIVES))
    else:
        objective = draw(st.sampled_from(MULTI_OBJECTIVES))
    n_classes = draw(st.integers(3, 5))
    data = {
        "seed": draw(st.integers(0, 2**31 - 1)),
        "n": draw(st.integers(40, 120)),
        "p": draw(st.integers(1, 4)),
        "task": task,
        "n_classes": n_classes,
        "nan": draw(st.booleans()),
        "cat": draw(st.booleans()),
    }
    params = {
        "n_estimators": draw(st.integers(1, 8)),
        "learning_rate": draw(st.sampled_from([0.05, 0.3, 0.7, 1.0])),
        "reg_lambda": draw(st.sampled_from([0.0, 0.5, 1.0, 3.0])),
        "min_child_weight": draw(st.sampled_from([0.0, 0.5, 1.0, 3.0])),
        "gamma": draw(st.sampled_from([0.0, 0.0, 0.3])),
        "colsample_bytree": draw(st.sampled_from([0.6, 1.0])),
        "tree_method": draw(
            st.sampled_from(["hist", "approx"] if data["cat"] else ["hist", "approx", "exact"])
        ),
        "max_bin": draw(st.sampled_from([16, 256])),
    }
    if params["tree_method"] != "exact" and draw(st.booleans()):
        params.update(grow_policy="lossguide", max_depth=0, max_leaves=draw(st.integers(2, 8)))
    else:
        params["max_depth"] = draw(st.integers(1, 4))
    if draw(st.booleans()):
        if objective == "binary:logistic":
            params["base_score"] = draw(st.sampled_from([0.2, 0.5, 0.66]))
        else:
            params["base_score"] = draw(st.sampled_from([-0.7, 0.0, 0.4]))
    early = draw(st.booleans())
    weighted = draw(st.booleans())
    return objective, data, params, early, weighted


@settings(max_examples=15, deadline=None)
@given(case=xgb_cases())
def test_random_models_reconstruct_and_are_newton_steps(case):
    objective, data, params, early, weighted = case
    X, y = xgboost_data(**data)
    n = len(y)
    if data["cat"]:
        params["enable_categorical"] = True
    rng = np.random.default_rng(data["seed"] + 1)
    w = rng.uniform(0.2, 3.0, size=n) if weighted else None
    fit_kw = {"sample_weight": w}
    if early:
        Xv, yv = xgboost_data(**{**data, "seed": data["seed"] + 2, "n": 40})
        params.update(early_stopping_rounds=2, n_estimators=params["n_estimators"] + 10)
        fit_kw.update(eval_set=[(Xv, yv)], verbose=False)
    model = model_for(objective, **params).fit(X, y, **fit_kw)
    ens = to_ensemble(model)

    booster = model.get_booster()
    n_rounds = booster.num_boosted_rounds()
    if early:
        n_rounds = model.best_iteration + 1
    assert ens.n_rounds == n_rounds
    K = data["n_classes"] if data["task"] == "multiclass" else 1
    assert ens.n_outputs == K and ens.n_trees == n_rounds * K
    assert ens.multiclass_factor == (2.0 if K > 1 else 1.0)
    np.testing.assert_array_equal(ens.classes, getattr(model, "classes_", None))
    assert ens.leaf_stats_kind == "hessian"
    assert ens.breaking_settings == ()
    assert ens.l2[0] == np.float32(params["reg_lambda"])
    np.testing.assert_allclose(ens.learning_rates, np.float32(params["learning_rate"]))

    leaves = assert_ensemble_exact(ens, X, y, w)
    # the same trees as the wrapper's own predict (which honours best_iteration)
    np.testing.assert_allclose(
        ens.raw_predict(X),
        model.predict(X, output_margin=True).reshape(n, -1),
        rtol=1e-6,
        atol=1e-6,
    )
    # XGBoost's cover is the leaf hessian sum at the scores before the tree
    _, _, H = ens.newton_values(leaves, class_index(ens, y), w)
    keep = np.repeat(~ens.constant_tree, ens.n_leaves)
    np.testing.assert_allclose(ens.leaf_stats[keep], H[keep], rtol=1e-4, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_classes=st.integers(3, 5),
    objective=st.sampled_from(MULTI_OBJECTIVES),
    base_score=st.sampled_from([None, 0.3]),
)
def test_multiclass_bias_is_read_from_config(seed, n_classes, objective, base_score):
    X, y = xgboost_data(seed, 90, 3, "multiclass", n_classes=n_classes, nan=True)
    model = model_for(objective, n_estimators=3, max_depth=2, base_score=base_score)
    model.fit(X, y)
    ens = to_ensemble(model)
    assert ens.bias.shape == (n_classes,)
    if base_score is not None:  # a given scalar is broadcast to every class margin
        np.testing.assert_allclose(ens.bias, base_score, rtol=1e-6)
    # the bias is the margin of a model without trees
    margin0 = model.get_booster().predict(
        xgb.DMatrix(X[:3]), output_margin=True, iteration_range=(0, 1)
    )
    leaves = ens.leaf_ids(X[:3])
    np.testing.assert_allclose(
        margin0 - ens.leaf_values[ens.leaf_offsets[:n_classes] + leaves[:, :n_classes]],
        np.tile(ens.bias, (3, 1)),
        atol=1e-5,
    )
    assert_ensemble_exact(ens, X, y)


# ------------------------------------------------------------- breaking settings
BREAKING = {
    "subsample": ("reg:squarederror", {"subsample": 0.5}),
    "reg_alpha": ("reg:squarederror", {"reg_alpha": 5.0}),
    "monotone_constraints": ("reg:squarederror", {"monotone_constraints": "(-1,1,0)"}),
    "dart": ("reg:squarederror", {"booster": "dart", "rate_drop": 0.5}),
    "num_parallel_tree": ("multi:softprob", {"num_parallel_tree": 3}),
}


@pytest.mark.parametrize("setting", sorted(BREAKING))
def test_breaking_settings_are_named(setting):
    objective, params = BREAKING[setting]
    X, y = xgboost_data(3, 200, 3, xgboost_task(objective))
    model = model_for(objective, n_estimators=8, max_depth=3, random_state=0, **params)
    model.fit(X, y)
    ens = to_ensemble(model)
    (msg,) = [s for s in ens.breaking_settings if setting in s]
    leaves = ens.check_reconstruction(X)  # the trees still reproduce the margins
    with pytest.raises(LeafModelError, match=setting):
        ens.check_leaf_model(leaves, class_index(ens, y))


def _binary_with_one_setting(seed, n, **params):
    """Data, the ensemble of a binary:logistic model fitted on it with ``params``, and
    the one setting that ensemble names."""
    X, y = xgboost_data(seed, n, 3, "binary")
    ens = to_ensemble(model_for("binary:logistic", **params).fit(X, y))
    (msg,) = ens.breaking_settings
    return X, y, ens, msg


def test_max_delta_step_is_the_leaf_rule():
    """A clamp is part of the leaf rule (not a breaking setting), binding or not."""
    for mds in (50, 0.05):
        X, y = xgboost_data(4, 150, 3, "binary")
        model = model_for("binary:logistic", n_estimators=5, max_depth=2, max_delta_step=mds)
        ens = to_ensemble(model.fit(X, y))
        assert ens.breaking_settings == () and ens.max_delta_step == pytest.approx(mds)
        assert_ensemble_exact(ens, X, y)


def test_scale_pos_weight_is_a_row_weight_on_positives():
    X, y, ens, msg = _binary_with_one_setting(
        5, 200, n_estimators=6, max_depth=3, scale_pos_weight=3
    )
    assert "scale_pos_weight=3" in msg and "sample_weight" in msg
    leaves = ens.check_reconstruction(X)
    with pytest.raises(LeafModelError, match="scale_pos_weight"):
        ens.check_leaf_model(leaves, y)
    w = np.where(y == 1, 3.0, 1.0)
    assert ens.check_leaf_model(leaves, y, w) == 0.0


def test_dart_weight_drop_is_folded_into_leaves():
    X, y = xgboost_data(6, 150, 3, "multiclass", n_classes=3)
    model = model_for(
        "multi:softprob", booster="dart", rate_drop=0.5, n_estimators=6, max_depth=2, random_state=1
    )
    ens = to_ensemble(model.fit(X, y))
    weights = json.loads(model.get_booster().save_raw("json"))["learner"]["gradient_booster"][
        "weight_drop"
    ]
    assert np.ptp(weights) > 0  # the test needs trees rescaled by dropout
    ens.check_reconstruction(X)


def test_min_child_weight_root_is_a_constant_tree():
    # once the total hessian drops below min_child_weight, XGBoost stores 0 in the root
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    model = model_for(
        "binary:logistic",
        n_estimators=30,
        max_depth=3,
        learning_rate=1,
        reg_lambda=0,
        min_child_weight=1.5,
    )
    ens = to_ensemble(model.fit(X, y))
    assert ens.constant_tree.any()
    const = np.repeat(ens.constant_tree, ens.n_leaves)
    assert np.all(ens.leaf_values[const] == 0) and np.all(ens.leaf_stats[const] < 1.5)
    assert_ensemble_exact(ens, X, y)


# ---------------------------------------------------------- boosters and wrappers
def test_booster_from_train_honours_best_iteration():
    X, y = xgboost_data(7, 300, 4, "regression", nan=True)
    dtrain = xgb.DMatrix(X[:200], label=y[:200])
    dvalid = xgb.DMatrix(X[200:], label=y[200:])
    booster = xgb.train(
        {"eta": 0.8, "max_depth": 5, "nthread": 1, "lambda": 0},
        dtrain,
        100,
        evals=[(dvalid, "valid")],
        early_stopping_rounds=2,
        verbose_eval=False,
    )
    assert booster.best_iteration + 1 < booster.num_boosted_rounds()
    ens = skinfluence.to_ensemble(booster)
    assert ens.model_name == "Booster" and ens.classes is None
    assert ens.n_rounds == booster.best_iteration + 1
    assert ens.n_features_in == 4
    best = booster.predict(
        dtrain, output_margin=True, iteration_range=(0, booster.best_iteration + 1)
    )
    np.testing.assert_allclose(ens.raw_predict(X[:200])[:, 0], best)
    assert not np.allclose(booster.predict(dtrain, output_margin=True), best)
    assert_ensemble_exact(ens, X[:200], y[:200])
    # the staged predictor agrees with the cumulative sums of the parsed trees
    staged = ens.staged_raw_predictor(X[:5], 2)
    leaves = ens.leaf_ids(X[:5])
    ours = ens.bias + ens.leaf_values[ens.leaf_offsets[:2] + leaves[:, :2]].sum(axis=1)
    np.testing.assert_allclose(staged[:, 0], ours, atol=1e-5)


def test_booster_multiclass_without_wrapper():
    X, y = xgboost_data(8, 150, 3, "multiclass", n_classes=4)
    booster = xgb.train(
        {"objective": "multi:softmax", "num_class": 4, "max_depth": 3, "nthread": 1},
        xgb.DMatrix(X, label=y),
        4,
    )
    ens = to_ensemble(booster)
    assert ens.n_outputs == 4 and ens.classes is None
    info = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["tree_info"]
    np.testing.assert_array_equal(info, ens.tree_column)  # round-major, class-inner
    assert_ensemble_exact(ens, X, y)


def test_pipeline_and_frozen_estimator():
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = xgboost_data(9, 150, 3, "binary")
    X = X * 10 + 3
    pipe = make_pipeline(StandardScaler(), model_for("binary:logistic", n_estimators=4))
    pipe.fit(X, y)
    ens = skinfluence.to_ensemble(pipe)
    assert ens.preprocess is not None
    leaves = assert_ensemble_exact(ens, X, y)
    inner = to_ensemble(pipe[-1])
    np.testing.assert_array_equal(leaves, inner.leaf_ids(pipe[:-1].transform(X)))
    margin = pipe.predict(X, output_margin=True)
    np.testing.assert_allclose(ens.raw_predict(X)[:, 0], margin)

    frozen = skinfluence.to_ensemble(FrozenEstimator(pipe[-1]))
    np.testing.assert_array_equal(frozen.leaf_values, inner.leaf_values)
    np.testing.assert_array_equal(frozen.classes, pipe.classes_)


def test_numpy_pandas_polars_give_identical_leaves():
    pl = pytest.importorskip("polars")
    X, y = xgboost_data(10, 200, 3, "multiclass", n_classes=3, nan=True, cat=True)
    model = model_for(
        "multi:softprob", n_estimators=5, max_depth=3, enable_categorical=True, max_cat_to_onehot=1
    ).fit(X, y)
    ens = to_ensemble(model)
    leaves = assert_ensemble_exact(ens, X, y)
    # the categorical column is split on
    trees = json.loads(model.get_booster().save_raw("json"))["learner"]["gradient_booster"][
        "model"
    ]["trees"]
    assert any(t["categories_nodes"] for t in trees)
    np.testing.assert_array_equal(ens.leaf_ids(pl.from_pandas(X)), leaves)
    # an array with the categories as integer codes, in the model's column order
    codes = X["c"].cat.codes.to_numpy().astype(np.float64)
    Xn = np.column_stack([X.drop(columns="c").to_numpy(), codes])
    np.testing.assert_array_equal(ens.leaf_ids(Xn), leaves)
    # pandas categories in another order are re-coded by XGBoost
    Xr = X.assign(c=X["c"].cat.reorder_categories(list("edcba")))
    np.testing.assert_array_equal(ens.leaf_ids(Xr), leaves)


def test_user_data_and_model_unchanged():
    X, y = xgboost_data(11, 120, 3, "binary", nan=True, cat=True)
    X_before = X.copy()
    model = model_for(
        "binary:logistic", n_estimators=4, enable_categorical=True, early_stopping_rounds=1
    )
    model.fit(X, y, eval_set=[(X, y)], verbose=False)
    params_before = model.get_params()
    raw_before = bytes(model.get_booster().save_raw("json"))
    config_before = model.get_booster().save_config()
    ens = skinfluence.to_ensemble(model)
    leaves = ens.check_reconstruction(X)
    ens.check_leaf_model(leaves, y)
    ens.staged_raw_predictor(X, 1)
    pd.testing.assert_frame_equal(X, X_before)
    assert model.get_params() == params_before
    assert bytes(model.get_booster().save_raw("json")) == raw_before
    assert model.get_booster().save_config() == config_before


def test_wrapper_missing_value_is_used_for_routing():
    X, y = xgboost_data(16, 200, 3, "regression", nan=True)
    X = np.where(np.isnan(X), -999.0, X)
    model = model_for("reg:squarederror", n_estimators=5, max_depth=3, missing=-999.0)
    ens = to_ensemble(model.fit(X, y))
    # routed with missing=NaN, the -999 rows would not be the rows the leaves were
    # fitted on: the leaf-model check would fail
    assert_ensemble_exact(ens, X, y)
    np.testing.assert_allclose(ens.raw_predict(X)[:, 0], model.predict(X, output_margin=True))


def test_staged_predictor_locates_a_wrong_round():
    from skinfluence import ReconstructionError

    X, y = xgboost_data(17, 150, 3, "multiclass", n_classes=3)
    ens = to_ensemble(model_for("multi:softprob", n_estimators=5, max_depth=2).fit(X, y))
    leaves = ens.check_reconstruction(X)
    t = 3 * ens.n_outputs + 1  # round 3, column 1
    ens.leaf_values[ens.leaf_offsets[t]] += 0.5
    with pytest.raises(ReconstructionError, match="starts at boosting round 3"):
        ens.check_reconstruction(X, leaves)


def test_ensemble_pickles():
    X, y = xgboost_data(12, 100, 3, "regression")
    ens = to_ensemble(model_for("reg:squarederror", n_estimators=3).fit(X, y))
    clone = pickle.loads(pickle.dumps(ens))
    np.testing.assert_array_equal(clone.leaf_ids(X), ens.leaf_ids(X))
    np.testing.assert_array_equal(clone.raw_predict(X), ens.raw_predict(X))


def test_leaf_paths_match_the_json_trees():
    X, y = xgboost_data(13, 200, 4, "regression", nan=True)
    model = model_for(
        "reg:squarederror",
        n_estimators=6,
        grow_policy="lossguide",
        max_leaves=7,
        max_depth=0,
        gamma=0.5,
    ).fit(X, y)
    ens = to_ensemble(model)
    trees = json.loads(model.get_booster().save_raw("json"))["learner"]["gradient_booster"][
        "model"
    ]["trees"]
    assert len(ens.path_indptr) == ens.n_leaves_total + 1
    assert len(ens.node_offsets) == ens.n_trees + 1
    for t, tree in enumerate(trees):
        left, parents = tree["left_children"], tree["parents"]
        leaf_nodes = sorted(i for i in range(len(left)) if left[i] == -1)
        depths = []
        for node in leaf_nodes:  # the depth of each leaf from the JSON parent links
            d = 0
            while parents[node] != 2147483647:
                node, d = parents[node], d + 1
            depths.append(d)
        lo, hi = ens.leaf_offsets[t], ens.leaf_offsets[t + 1]
        lengths = np.diff(ens.path_indptr[lo : hi + 1])
        np.testing.assert_array_equal(lengths, depths)
        n_int = ens.node_offsets[t + 1] - ens.node_offsets[t]
        assert n_int == ens.n_leaves[t] - 1  # a full binary tree
        nodes = ens.path_nodes[ens.path_indptr[lo] : ens.path_indptr[hi]]
        if n_int:
            own = range(ens.node_offsets[t], ens.node_offsets[t + 1])
            assert set(nodes) == set(own)
            roots = ens.path_nodes[ens.path_indptr[lo:hi]]
            assert np.all(roots == roots[0])  # root first, shared by every leaf


# -------------------------------------------------------------------- refusals
@pytest.mark.parametrize("cls", ["XGBClassifier", "XGBRegressor"])
def test_unfitted_model_raises_not_fitted(cls):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        skinfluence.to_ensemble(getattr(xgb, cls)())
    with pytest.raises(NotFittedError):
        skinfluence.to_ensemble(getattr(xgb, cls)())


@pytest.mark.parametrize("objective", ["reg:absoluteerror", "reg:squaredlogerror", "binary:hinge"])
def test_unsupported_objective(objective):
    X, y = xgboost_data(14, 60, 2, "binary")
    model = model_for(objective, n_estimators=2).fit(X, y)
    with pytest.raises(UnsupportedModelError, match=objective) as info:
        to_ensemble(model)
    assert "reg:squarederror" in str(info.value)
    assert "multi:softmax" in str(info.value)


def test_gblinear_and_ranker_are_refused():
    X, y = xgboost_data(15, 60, 2, "regression")
    linear = model_for("reg:squarederror", booster="gblinear", n_estimators=2).fit(X, y)
    with pytest.raises(UnsupportedModelError, match="gblinear"):
        to_ensemble(linear)
    ranker = xgb.XGBRanker(n_estimators=2, n_jobs=1).fit(
        X, (y > 0).astype(int), qid=np.repeat([0, 1], 30)
    )
    with pytest.raises(UnsupportedModelError, match="XGBRanker"):
        to_ensemble(ranker)


# ------------------------------------------------------------- bundled data sets
@pytest.mark.parametrize("name", ["concrete", "credit", "spam", "hpc"])
def test_bundled_datasets(name):
    X, y, task = load_dataset(name)
    rows = np.sort(np.random.default_rng(0).permutation(len(y))[:1500])
    X, y = X.iloc[rows], y[rows]
    if task == "regression":
        model = model_for("reg:squarederror", enable_categorical=True)
        labels = y
    else:
        classes, labels = np.unique(y, return_inverse=True)
        objective = "binary:logistic" if len(classes) == 2 else "multi:softprob"
        model = model_for(objective, enable_categorical=True)
    model.set_params(n_estimators=15, max_depth=4, learning_rate=0.3)
    ens = to_ensemble(model.fit(X, labels))
    assert ens.n_features_in == X.shape[1]
    assert_ensemble_exact(ens, X, labels)
