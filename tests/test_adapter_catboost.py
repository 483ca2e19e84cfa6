"""Tests of the CatBoost adapter (``skinfluence._adapters._catboost``)."""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

catboost = pytest.importorskip("catboost")

from catboost import CatBoost, CatBoostClassifier, CatBoostRegressor  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

import skinfluence  # noqa: E402
from skinfluence import LeafModelError, UnsupportedModelError  # noqa: E402
from skinfluence._adapters import _catboost as cbad  # noqa: E402
from skinfluence.datasets import load_dataset  # noqa: E402
from skinfluence.testing import quantile_classes  # noqa: E402

from .reference import class_index  # noqa: E402

BASE = {"verbose": 0, "thread_count": 1, "allow_writing_files": False, "random_seed": 0}


def f32(a):
    """Round to float32 as CatBoost stores labels and weights."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def catboost_data(seed, n, d, task, with_cat=False, n_classes=3):
    """Random data in CatBoost's form: numpy with a NaN column and optionally a string
    categorical column (as the last column of an object array)."""
    rng = np.random.default_rng(seed)
    Xf = rng.normal(size=(n, d))
    Xf[rng.random(n) < 0.2, min(1, d - 1)] = np.nan
    signal = np.nan_to_num(Xf[:, 0]) + 0.5 * rng.normal(size=n)
    cat = rng.choice(list("abcde"), n)
    if with_cat:
        signal = signal + (cat == "a")
        X = np.empty((n, d + 1), dtype=object)
        X[:, :d] = Xf
        X[:, d] = cat
    else:
        X = Xf
    if task == "RMSE":
        y = 10.0 * signal + 3.0
    elif task == "Logloss":
        y = (signal > 0).astype(int)
    else:
        y = quantile_classes(signal, n_classes)
    return X, y


# ------------------------------------------------------------------ properties
@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(30, 150),
    d=st.integers(1, 4),
    loss=st.sampled_from(["RMSE", "Logloss", "MultiClass"]),
    params=st.fixed_dictionaries(
        {
            "depth": st.integers(1, 4),
            "learning_rate": st.floats(0.05, 0.8),
            "l2_leaf_reg": st.floats(0.0, 10.0),
            "iterations": st.integers(1, 30),
            "grow_policy": st.sampled_from(["SymmetricTree", "Depthwise", "Lossguide"]),
            "bootstrap_type": st.sampled_from(["MVS", "Bernoulli", "Bayesian", "No"]),
        }
    ),
    ordered=st.booleans(),
    weighted=st.booleans(),
    with_cat=st.booleans(),
)
def test_random_models_reconstruct_and_follow_the_leaf_model(
    seed, n, d, loss, params, ordered, weighted, with_cat
):
    X, y = catboost_data(seed, n, d, loss, with_cat=with_cat)
    kwargs = dict(BASE, loss_function=loss, **params)
    if params["bootstrap_type"] in ("MVS", "Bernoulli"):
        kwargs["subsample"] = 0.7
    if params["grow_policy"] == "Lossguide":
        kwargs["max_leaves"] = 2 + seed % 10
    if ordered and params["grow_policy"] == "SymmetricTree":
        kwargs["boosting_type"] = "Ordered"
    if loss == "Logloss":
        kwargs["leaf_estimation_iterations"] = 1
    if with_cat:
        kwargs.update(cat_features=[d], one_hot_max_size=255)
    w = np.random.default_rng(seed + 1).uniform(0.2, 3.0, n) if weighted else None
    cls = CatBoostRegressor if loss == "RMSE" else CatBoostClassifier
    model = cls(**kwargs).fit(X, y, sample_weight=w)

    ens = skinfluence.to_ensemble(model, X, y, w)
    K = 3 if loss == "MultiClass" else 1
    assert ens.n_outputs == K and ens.n_rounds == model.tree_count_
    assert np.allclose(ens.learning_rates, params["learning_rate"])
    mean_w = 1.0 if w is None else f32(w).mean()
    assert np.allclose(ens.l2, params["l2_leaf_reg"] * mean_w, rtol=1e-6)
    leaves = ens.check_reconstruction(X)
    assert leaves.shape == (n, ens.n_trees)
    wf = None if w is None else f32(w)
    assert ens.check_counts(leaves, wf) is None
    _check_paths(ens)
    y_idx = class_index(ens, y, np.float32)
    if loss == "MultiClass" and not ens.full_hessian:  # l2_leaf_reg below 1e-6
        with pytest.raises(LeafModelError, match="MultiClass"):
            ens.check_leaf_model(leaves, y_idx, wf)
    else:
        assert ens.breaking_settings == ()
        assert ens.check_leaf_model(leaves, y_idx, wf) == 0.0


def _check_paths(ens):
    """The leaf paths of every tree form one binary tree: every leaf path starts at the
    root, and every internal node splits its leaves into exactly two groups."""
    assert ens.path_indptr.shape == (ens.n_leaves_total + 1,)
    for t in range(ens.n_trees):
        lo, hi = ens.leaf_offsets[t], ens.leaf_offsets[t + 1]
        n0, n1 = ens.node_offsets[t], ens.node_offsets[t + 1]
        assert n1 - n0 == hi - lo - 1  # a binary tree has L - 1 internal nodes
        paths = [
            tuple(ens.path_nodes[ens.path_indptr[j] : ens.path_indptr[j + 1]])
            for j in range(lo, hi)
        ]
        if hi - lo == 1:
            assert paths == [()]
            continue
        assert all(p and p[0] == n0 for p in paths)
        assert all(n0 <= node < n1 for p in paths for node in p)
        for node in range(n0, n1):
            # the next step below ``node`` on each leaf path: a child node, or the leaf
            children = set()
            for j, p in enumerate(paths):
                if node in p:
                    i = p.index(node) + 1
                    children.add(p[i] if i < len(p) else ("leaf", j))
            assert len(children) == 2


# ------------------------------------------------------------ structure details
def test_oblivious_leaf_index_is_the_split_bits():
    """Leaf l of an oblivious tree has bit d set iff the row goes right at split d,
    the convention the heap-numbered paths rely on."""
    X, y = catboost_data(3, 300, 4, "RMSE")
    X = np.nan_to_num(X)
    model = CatBoostRegressor(iterations=5, depth=4, **BASE).fit(X, y)
    info = cbad._model_json(model)
    leaves = model.calc_leaf_indexes(X)
    for t, tree in enumerate(info["oblivious_trees"]):
        idx = np.zeros(len(X), dtype=np.int64)
        for d, split in enumerate(tree["splits"]):
            idx += (X[:, split["float_feature_index"]] > split["border"]).astype(int) << d
        assert np.array_equal(idx, leaves[:, t])
    paths, n_int = cbad._oblivious_paths(2)
    assert n_int == 3 and paths == ((0, 1), (0, 2), (0, 1), (0, 2))


@pytest.mark.parametrize("grow_policy", ["Depthwise", "Lossguide"])
def test_nonsymmetric_json_paths_match_catboost_node_arrays(grow_policy):
    X, y = catboost_data(5, 400, 4, "RMSE")
    model = CatBoostRegressor(
        iterations=8,
        depth=5,
        grow_policy=grow_policy,
        max_leaves=12 if grow_policy == "Lossguide" else None,
        **BASE,
    ).fit(X, y)
    info = cbad._model_json(model)
    n_checked = 0
    for b, tree in enumerate(info["trees"]):
        paths, n_int, _, weights = cbad._nonsymmetric_paths(tree)
        assert cbad._step_node_paths(model, b) == (paths, n_int)
        n_checked += 1
    assert n_checked == 8
    ens = skinfluence.to_ensemble(model)
    assert "disagreed" not in ens.notes["paths"]
    _check_paths(ens)


def test_one_leaf_trees():
    X, y = catboost_data(2, 100, 2, "RMSE")
    model = CatBoostRegressor(
        iterations=3, grow_policy="Lossguide", min_data_in_leaf=80, **BASE
    ).fit(X, y)
    ens = skinfluence.to_ensemble(model)
    assert np.any(ens.n_leaves == 1)
    leaves = ens.check_reconstruction(X)
    assert ens.check_leaf_model(leaves, f32(y)) == 0.0
    _check_paths(ens)


def test_multiclass_layout_and_bias():
    X, y = catboost_data(4, 300, 3, "MultiClass", n_classes=4)
    model = CatBoostClassifier(iterations=6, depth=3, loss_function="MultiClass", **BASE).fit(X, y)
    ens = skinfluence.to_ensemble(model)
    assert ens.n_outputs == 4 and ens.n_trees == 24
    assert np.array_equal(ens.classes, model.classes_)
    raw = np.asarray(model.get_leaf_values())
    # (round 0, column 2, leaf 5) is CatBoost's value at 5 * K + 2
    assert ens.leaf_values[ens.leaf_offsets[2] + 5] == raw[5 * 4 + 2]
    assert ens.multiclass_factor == 1.0 and "multiclass_factor" in ens.notes
    leaves = ens.check_reconstruction(X)
    assert np.array_equal(leaves[:, 0], leaves[:, 3])
    assert ens.check_counts(leaves) is None


# ---------------------------------------------------------- breaking settings
def _binary(n=300, seed=0):
    X, y = catboost_data(seed, n, 3, "Logloss")
    return X, y


def _assert_breaks(model, X, y, match, w=None):
    ens = skinfluence.to_ensemble(model, X, y, w)
    assert any(match in s for s in ens.breaking_settings)
    leaves = ens.check_reconstruction(X)
    with pytest.raises(LeafModelError, match=match):
        ens.check_leaf_model(leaves, class_index(ens, y, np.float32), w)
    return ens, leaves


def test_several_leaf_estimation_iterations_are_replayed():
    X, y = _binary()
    model = CatBoostClassifier(iterations=10, leaf_estimation_iterations=10, **BASE).fit(X, y)
    ens = skinfluence.to_ensemble(model, X, y)
    assert (ens.leaf_steps, ens.leaf_step_method) == (10, "newton")
    assert not any("leaf_estimation_iterations" in s for s in ens.breaking_settings)
    leaves = ens.check_reconstruction(X)
    assert ens.check_leaf_model(leaves, class_index(ens, y, np.float32)) == 0.0


def test_default_long_logloss_leaf_steps_are_read_from_the_model():
    X, y = _binary(n=100)
    model = CatBoostClassifier(iterations=200, depth=2, **BASE).fit(X, y)
    ens = skinfluence.to_ensemble(model)
    assert ens.leaf_steps == model.get_all_params()["leaf_estimation_iterations"]


def test_gradient_leaf_steps_are_replayed():
    X, y = _binary()
    model = CatBoostClassifier(
        iterations=10, leaf_estimation_iterations=1, leaf_estimation_method="Gradient", **BASE
    ).fit(X, y)
    ens = skinfluence.to_ensemble(model, X, y)
    assert ens.leaf_step_method == "gradient" and ens.breaking_settings == ()
    leaves = ens.check_reconstruction(X)
    assert ens.check_leaf_model(leaves, class_index(ens, y, np.float32)) == 0.0
    Xr, yr = catboost_data(1, 200, 3, "RMSE")
    reg = CatBoostRegressor(iterations=10, leaf_estimation_method="Gradient", **BASE).fit(Xr, yr)
    ens = skinfluence.to_ensemble(reg)
    assert ens.breaking_settings == ()
    assert ens.check_leaf_model(ens.check_reconstruction(Xr), f32(yr)) == 0.0


def test_model_shrink_rate_breaks():
    X, y = catboost_data(1, 300, 3, "RMSE")
    model = CatBoostRegressor(iterations=15, model_shrink_rate=0.2, **BASE).fit(X, y)
    _assert_breaks(model, X, f32(y), "model_shrink_rate")


def test_ctr_categorical_features_break():
    rng = np.random.default_rng(0)
    n = 400
    X = np.empty((n, 2), dtype=object)
    X[:, 0] = rng.normal(size=n)
    cat = rng.choice([f"c{i}" for i in range(15)], n)
    X[:, 1] = cat
    y = (
        X[:, 0].astype(float)
        + 3 * np.isin(cat, ["c1", "c2", "c3", "c4"])
        + 0.3 * rng.normal(size=n)
    )
    model = CatBoostRegressor(iterations=20, cat_features=[1], **BASE).fit(X, y)
    ens, leaves = _assert_breaks(model, X, f32(y), "CTR")
    assert isinstance(ens.check_counts(leaves), str)
    # the same feature one-hot encoded is structure only
    onehot = CatBoostRegressor(iterations=20, cat_features=[1], one_hot_max_size=20, **BASE).fit(
        X, y
    )
    ens = skinfluence.to_ensemble(onehot)
    assert ens.breaking_settings == ()
    assert ens.check_leaf_model(ens.check_reconstruction(X), f32(y)) == 0.0


def test_class_weights_break_unless_given_as_sample_weights():
    X, y = _binary(seed=3)
    y = np.where(np.arange(len(y)) % 4 == 0, 1, 0)  # imbalanced
    params = dict(BASE, iterations=10, leaf_estimation_iterations=1)
    model = CatBoostClassifier(auto_class_weights="Balanced", **params).fit(X, y)
    _assert_breaks(model, X, y, "class weights")
    cw = np.asarray(model.get_all_params()["class_weights"], dtype=np.float64)
    w = cw[y]
    # the same model checked with its class weights as row weights passes
    ens = skinfluence.to_ensemble(model, X, y, w)
    assert ens.check_leaf_model(ens.check_reconstruction(X), y, w) == 0.0
    # and a model trained on those row weights passes too
    model_w = CatBoostClassifier(**params).fit(X, y, sample_weight=w)
    ens = skinfluence.to_ensemble(model_w, X, y, w)
    assert ens.breaking_settings == ()
    assert ens.check_leaf_model(ens.check_reconstruction(X), y, w) == 0.0


# ------------------------------------------------------------- wrappers, inputs
def test_pipeline_and_frozen_estimator():
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = catboost_data(7, 200, 3, "RMSE")
    pipe = make_pipeline(StandardScaler(), CatBoostRegressor(iterations=8, **BASE))
    pipe.fit(X, y)
    ens = skinfluence.to_ensemble(pipe, X, y)
    leaves = ens.check_reconstruction(X)
    assert np.allclose(ens.raw_from_leaves(leaves)[:, 0], pipe.predict(X))
    assert ens.check_leaf_model(leaves, f32(y)) == 0.0

    model = CatBoostRegressor(iterations=8, **BASE).fit(X, y)
    frozen = skinfluence.to_ensemble(FrozenEstimator(model))
    assert np.array_equal(frozen.leaf_ids(X), skinfluence.to_ensemble(model).leaf_ids(X))
    frozen.check_reconstruction(X)


def test_numpy_pandas_polars_give_the_same_leaves():
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    X, y = catboost_data(8, 250, 3, "Logloss", with_cat=True)
    cols = ["a", "b", "c", "k"]
    df = pd.DataFrame({c: X[:, i] for i, c in enumerate(cols)})
    df[cols[:3]] = df[cols[:3]].astype(float)
    df["k"] = df["k"].astype("category")
    model = CatBoostClassifier(
        iterations=10, cat_features=["k"], one_hot_max_size=10, leaf_estimation_iterations=1, **BASE
    ).fit(df, y)
    ens = skinfluence.to_ensemble(model)
    from_pd = ens.check_reconstruction(df)
    from_np = ens.check_reconstruction(X)
    from_pl = ens.check_reconstruction(pl.from_pandas(df))
    pdf_obj = df.astype({"k": object})
    assert np.array_equal(from_pd, from_np)
    assert np.array_equal(from_pd, from_pl)
    assert np.array_equal(from_pd, ens.leaf_ids(pdf_obj))
    assert ens.n_features_in == 4
    assert ens.check_leaf_model(from_pd, class_index(ens, y, np.float32)) == 0.0


def test_unfitted_model_raises():
    for model in (CatBoostRegressor(), CatBoostClassifier(), CatBoost()):
        with pytest.raises(NotFittedError, match="not fitted"):
            skinfluence.to_ensemble(model)


@pytest.mark.parametrize("loss", ["MAE", "Quantile:alpha=0.3", "MAPE"])  # Poisson: supported
def test_unsupported_losses_are_refused(loss):
    X, y = catboost_data(0, 100, 2, "RMSE")
    y = np.abs(y) if loss == "Poisson" else y
    model = CatBoostRegressor(iterations=2, loss_function=loss, **BASE).fit(X, y)
    with pytest.raises(
        UnsupportedModelError,
        match=r"(?s)" + loss.split(":")[0] + ".*RMSE, Logloss, CrossEntropy, MultiClass",
    ):
        skinfluence.to_ensemble(model)


def test_not_a_catboost_model_is_refused():
    with pytest.raises(UnsupportedModelError):
        cbad.to_ensemble(object())


def test_plain_catboost_and_cross_entropy():
    X, y = catboost_data(9, 200, 3, "Logloss")
    plain = CatBoost(dict(BASE, loss_function="RMSE", iterations=6)).fit(X, y * 2.0)
    ens = skinfluence.to_ensemble(plain)
    assert ens.objective == "squared_error" and ens.classes is None
    assert ens.check_leaf_model(ens.check_reconstruction(X), f32(y * 2.0)) == 0.0
    soft = np.clip(y * 0.8 + 0.1, 0, 1)
    ce = CatBoost(
        dict(BASE, loss_function="CrossEntropy", iterations=6, leaf_estimation_iterations=1)
    ).fit(X, soft)
    ens = skinfluence.to_ensemble(ce)
    assert ens.objective == "binary"
    assert ens.check_leaf_model(ens.check_reconstruction(X), f32(soft)) == 0.0


def test_user_data_model_and_files_untouched(tmp_path, monkeypatch):
    pd = pytest.importorskip("pandas")
    monkeypatch.chdir(tmp_path)
    X, y = catboost_data(10, 200, 2, "RMSE", with_cat=True)
    df = pd.DataFrame(
        {"a": X[:, 0].astype(float), "b": X[:, 1].astype(float), "k": pd.Categorical(X[:, 2])}
    )
    df_copy, X_copy = df.copy(deep=True), X.copy()
    model = CatBoostRegressor(iterations=6, cat_features=["k"], one_hot_max_size=10, **BASE).fit(
        df, y
    )
    params = model.get_params()
    before = model.predict(df, prediction_type="RawFormulaVal")
    pkg = os.path.dirname(catboost.__file__)
    pkg_files = sorted(os.listdir(pkg))

    ens = skinfluence.to_ensemble(model, df, y)
    ens.check_reconstruction(df)
    ens.check_reconstruction(X)

    pd.testing.assert_frame_equal(df, df_copy)
    assert np.array_equal(X.astype(str), X_copy.astype(str))
    assert model.get_params() == params and model.tree_count_ == 6
    assert np.array_equal(model.predict(df, prediction_type="RawFormulaVal"), before)
    assert sorted(os.listdir(pkg)) == pkg_files
    assert os.listdir(tmp_path) == []


def test_count_check_on_training_rows_and_subset():
    X, y = catboost_data(11, 300, 3, "RMSE")
    w = np.random.default_rng(0).uniform(0.5, 2.0, 300)
    model = CatBoostRegressor(iterations=10, **BASE).fit(X, y, sample_weight=w)
    ens = skinfluence.to_ensemble(model, X, y, w)
    assert ens.leaf_stats_kind == "weight"
    leaves = ens.leaf_ids(X)
    assert ens.check_counts(leaves, f32(w)) is None
    msg = ens.check_counts(leaves[:250], f32(w[:250]))
    assert isinstance(msg, str) and "weights differ" in msg


def test_early_stopping_model_is_truncated():
    X, y = catboost_data(12, 400, 3, "RMSE")
    model = CatBoostRegressor(iterations=300, learning_rate=0.5, **BASE)
    model.fit(X[:300], y[:300], eval_set=(X[300:], y[300:]), early_stopping_rounds=5)
    assert model.tree_count_ == model.get_best_iteration() + 1 < 300
    ens = skinfluence.to_ensemble(model)
    assert ens.n_rounds == model.tree_count_
    leaves = ens.check_reconstruction(X[:300])
    assert ens.check_leaf_model(leaves, f32(y[:300])) == 0.0
    staged = ens.staged_raw_predictor(X[:5], 3)
    assert np.allclose(
        staged[:, 0], model.predict(X[:5], prediction_type="RawFormulaVal", ntree_end=3)
    )


def test_float32_labels_make_the_rmse_replay_exact():
    """CatBoost stores labels and weights in float32: with rounded labels the
    recomputed leaves are exact; float64 labels with a large offset fail the check."""
    X, y = catboost_data(13, 300, 3, "RMSE")
    y = y / 10.0 + 1e5
    w = np.random.default_rng(1).uniform(0.2, 3.0, 300)
    model = CatBoostRegressor(iterations=10, learning_rate=0.3, **BASE)
    model.fit(X, y, sample_weight=w)
    ens = skinfluence.to_ensemble(model, X, y, f32(w))
    leaves = ens.check_reconstruction(X)
    exact = np.abs(ens.newton_values(leaves, f32(y), f32(w))[0] - ens.leaf_values)
    assert exact.max() < 1e-12
    assert ens.check_leaf_model(leaves, f32(y), f32(w)) == 0.0
    with pytest.raises(LeafModelError):
        ens.check_leaf_model(leaves, y, f32(w))
    assert "float32" in ens.notes["labels"]


# ------------------------------------------------------------------- data sets
@pytest.mark.parametrize("name", ["concrete", "credit", "spam", "hpc"])
def test_bundled_datasets(name):
    pd = pytest.importorskip("pandas")
    X, y, task = load_dataset(name)
    rows = np.random.default_rng(0).permutation(len(y))[:1500]
    X = X.iloc[rows].copy()
    y = y[rows]
    cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    for c in cats:
        if X[c].isna().any():
            X[c] = X[c].cat.add_categories("missing").fillna("missing")
    params = dict(BASE, iterations=15, depth=4, cat_features=cats or None, one_hot_max_size=255)
    if task == "regression":
        model = CatBoostRegressor(**params).fit(X, y)
    elif task == "binary":
        model = CatBoostClassifier(leaf_estimation_iterations=1, **params).fit(X, y)
    else:
        model = CatBoostClassifier(loss_function="MultiClass", **params).fit(X, y)
    ens = skinfluence.to_ensemble(model, X, y)
    leaves = ens.check_reconstruction(X)
    assert ens.check_counts(leaves) is None
    if task == "multiclass":  # K x K Newton leaves
        assert ens.n_outputs == len(np.unique(y)) and ens.full_hessian
    assert ens.check_leaf_model(leaves, class_index(ens, y, np.float32)) == 0.0


@pytest.mark.parametrize("depth", [0, 3])
def test_symmetric_structure_from_depths_equals_the_json(depth, monkeypatch):
    """Symmetric trees without categorical features skip the JSON model: the paths,
    leaf statistics, caveat and breaking settings are those read from the JSON."""
    X, y = catboost_data(6, 200, 3, "RMSE")
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    model = CatBoostRegressor(iterations=6, depth=depth, **BASE).fit(X, y, sample_weight=w)
    fast = skinfluence.to_ensemble(model, sample_weight=w)
    assert fast.notes["paths"].startswith("from each tree's depth")
    monkeypatch.setattr(cbad, "_depth_structure", lambda *args: None)
    slow = skinfluence.to_ensemble(model, sample_weight=w)
    assert slow.notes["paths"].startswith("from the JSON model")
    for name in ("path_indptr", "path_nodes", "node_offsets", "leaf_stats", "leaf_values"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert fast.leaf_stats_caveat == slow.leaf_stats_caveat
    assert fast.breaking_settings == slow.breaking_settings
    _check_paths(fast)


def test_categorical_and_multiclass_models_read_the_json():
    X, y = catboost_data(7, 200, 3, "Logloss", with_cat=True)
    model = CatBoostClassifier(iterations=3, depth=2, cat_features=[3], **BASE).fit(X, y)
    assert cbad._depth_structure(model, model.get_tree_leaf_counts(), 1) is None
    Xm, ym = catboost_data(7, 200, 3, "MultiClass")
    multi = CatBoostClassifier(iterations=3, depth=2, loss_function="MultiClass", **BASE)
    multi.fit(Xm, ym)
    assert cbad._depth_structure(multi, multi.get_tree_leaf_counts(), 3) is None
    assert skinfluence.to_ensemble(multi).notes["paths"].startswith("from the JSON model")
