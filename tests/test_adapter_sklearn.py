"""Tests of the scikit-learn adapter (GradientBoosting, HistGradientBoosting, forests).

The HistGradientBoosting routing kernel is compared with a plain-Python traversal of
the model's predictor nodes; every family must reproduce the library's raw prediction
(reconstruction check), and the boosters must pass the single-Newton-step leaf-model
check unless a breaking setting was used, which must then be named.
"""

import copy
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import (
    AdaBoostClassifier,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.class_weight import compute_sample_weight
from threadpoolctl import threadpool_limits

import skinfluence
from skinfluence import LeafModelError, ReconstructionError, UnsupportedModelError
from skinfluence._adapters._sklearn_routing import HGBNodes, hgb_apply
from skinfluence.datasets import load_dataset

from .reference import class_index

pd = pytest.importorskip("pandas")

TASKS = ("regression", "binary", "multi3", "multi4", "multi5")


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread():
    """Fit the tiny HistGradientBoosting models on one OpenMP thread.

    Their OpenMP threads spin-wait; on a loaded machine that makes a 20 ms fit take
    seconds.
    """
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


# ----------------------------------------------------------------------- helpers
def _n_classes(task):
    return (
        {"regression": 0, "binary": 2}.get(task, None)
        if task in ("regression", "binary")
        else int(task[-1])
    )


def _make_data(seed, n, p, task, nan_frac=0.0, cat_levels=0):
    """Random data; column 0 holds integer categories when ``cat_levels`` > 0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    if cat_levels:
        X[:, 0] = rng.integers(0, cat_levels, n)
    signal = X[:, -1] + 0.5 * X[:, 0] + 0.3 * rng.normal(size=n)
    K = _n_classes(task)
    if K == 0:
        y = signal
    else:
        # every class present; labels loosely tied to the signal
        order = np.argsort(signal + rng.normal(size=n))
        y = np.empty(n, dtype=np.int64)
        y[order] = np.arange(n) * K // n
    if nan_frac:
        X[rng.random(X.shape) < nan_frac] = np.nan
    return X, y


def _weights(seed, n, weighted):
    if not weighted:
        return None
    return np.random.default_rng(seed + 1).uniform(0.2, 3.0, n)


def _expected_path(ens, t, is_leaf_lib, visited):
    """Flat internal-node indices of a visited node list (library ids, root first)."""
    internal = np.flatnonzero(~is_leaf_lib)
    rank = np.full(len(is_leaf_lib), -1, dtype=np.int64)
    rank[internal] = np.arange(len(internal))
    return [int(ens.node_offsets[t] + rank[v]) for v in visited if not is_leaf_lib[v]]


def _assert_path(ens, t, leaf, expected):
    j = ens.leaf_offsets[t] + leaf
    got = ens.path_nodes[ens.path_indptr[j] : ens.path_indptr[j + 1]].tolist()
    assert got == expected, (t, leaf, got, expected)


def _check_sklearn_paths(ens, trees_of_t, X, leaves, max_trees=4):
    """Compare the CSR leaf paths with ``decision_path`` of the underlying trees."""
    assert len(ens.path_indptr) == ens.n_leaves_total + 1
    for t in range(min(ens.n_trees, max_trees)):
        est = trees_of_t(t)
        indicator = est.decision_path(X).tocsr()
        is_leaf = est.tree_.children_left < 0
        for i in range(0, X.shape[0], 7):
            visited = indicator.indices[indicator.indptr[i] : indicator.indptr[i + 1]]
            _assert_path(ens, t, leaves[i, t], _expected_path(ens, t, is_leaf, visited))


# ------------------------------------------ plain-Python HistGradientBoosting routing
def _in_bitset(bits, row, cat):
    return (int(bits[row, cat // 32]) >> (cat % 32)) & 1


def _reference_hgb(model, Xp):
    """Leaf ids and visited nodes from the predictor nodes, one row at a time.

    ``Xp`` is the model's preprocessed input. Returns ``(leaves (n, T), visited)``
    where ``visited[t][i]`` lists the node ids row ``i`` passes in tree ``t``.
    """
    known, fmap = model._bin_mapper.make_known_categories_bitsets()
    leaves, visited = [], []
    for predictors in model._predictors:
        for pred in predictors:
            nodes = pred.nodes
            rows = [dict(zip(nodes.dtype.names, rec, strict=True)) for rec in nodes.tolist()]
            leaf_rank = np.cumsum(nodes["is_leaf"]) - 1
            bits = pred.raw_left_cat_bitsets
            col, vis = [], []
            for x in Xp:
                node, path = 0, []
                while True:
                    path.append(node)
                    nd = rows[node]
                    if nd["is_leaf"]:
                        break
                    v = x[nd["feature_idx"]]
                    if np.isnan(v):
                        left = bool(nd["missing_go_to_left"])
                    elif nd["is_categorical"]:
                        c = int(v) if 0 <= v < 256 else -1
                        if c < 0:
                            left = bool(nd["missing_go_to_left"])
                        elif _in_bitset(bits, nd["bitset_idx"], c):
                            left = True
                        elif _in_bitset(known, fmap[nd["feature_idx"]], c):
                            left = False
                        else:
                            left = bool(nd["missing_go_to_left"])
                    else:
                        left = v <= nd["num_threshold"]
                    node = nd["left"] if left else nd["right"]
                col.append(int(leaf_rank[node]))
                vis.append(path)
            leaves.append(col)
            visited.append(vis)
    return np.array(leaves, dtype=np.int32).T.reshape(len(Xp), -1), visited


def _hgb_kernel(ens, Xp):
    """The ensemble's HistGradientBoosting router on rows that are already preprocessed
    (so that the test can feed raw codes the preprocessor would have mapped to NaN)."""
    router = copy.copy(ens.router)
    router.model = SimpleNamespace(_preprocess_X=lambda X, reset: X)
    return router(Xp)


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    levels=st.integers(3, 12),
    nan_frac=st.sampled_from([0.0, 0.1, 0.3]),
    task=st.sampled_from(TASKS[:3]),
    max_leaf_nodes=st.integers(2, 12),
)
def test_hgb_kernel_matches_reference(seed, levels, nan_frac, task, max_leaf_nodes):
    X, y = _make_data(seed, 150, 4, task, nan_frac=nan_frac, cat_levels=levels)
    X[:, 0] = 10.0 * X[:, 0] + 5.0  # raw categories 5, 15, ... to be encoded
    cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    model = cls(
        max_iter=4,
        max_leaf_nodes=max_leaf_nodes,
        min_samples_leaf=5,
        categorical_features=[0],
        early_stopping=False,
        random_state=0,
    ).fit(X, y)
    ens = skinfluence.to_ensemble(model)
    rng = np.random.default_rng(seed + 7)
    # queries with unknown, negative and non-integer raw categories and NaN
    Xq = X[rng.permutation(len(X))[:60]].copy()
    Xq[:20, 0] = rng.choice([-10.0, 7.5, 1e3, 10.0 * levels + 5.0, np.nan], 20)
    Xq[rng.random(Xq.shape) < 0.1] = np.nan
    for data in (X, Xq):
        Xp = model._preprocess_X(data, reset=False)
        ref, visited = _reference_hgb(model, Xp)
        leaves = ens.check_reconstruction(data)
        np.testing.assert_array_equal(leaves, ref)
        for t in range(ens.n_trees):
            is_leaf = (
                model._predictors[t // ens.n_outputs][t % ens.n_outputs]
                .nodes["is_leaf"]
                .astype(bool)
            )
            for i in range(0, len(Xp), 5):
                _assert_path(ens, t, ref[i, t], _expected_path(ens, t, is_leaf, visited[t][i]))
    # the kernel on raw codes the preprocessor would have mapped to NaN: unknown codes
    # (>= levels), negative, >= 256 and non-integer values take the reference's path
    Xp = np.asarray(model._preprocess_X(Xq, reset=False)).copy()
    Xp[:30, 0] = rng.choice(
        [-1.0, -0.5, 0.0, 1.7, levels + 0.0, levels + 3.0, 255.0, 256.0, 300.0, np.nan], 30
    )
    ref, _ = _reference_hgb(model, Xp)
    np.testing.assert_array_equal(_hgb_kernel(ens, Xp), ref)


def test_hgb_kernel_hand_built_categorical_tree():
    """One categorical split: {1, 3} left, known {0..4}, missing right."""
    left_bits = np.zeros((1, 8), dtype=np.uint32)
    left_bits[0, 0] = (1 << 1) | (1 << 3)
    known = np.zeros((1, 8), dtype=np.uint32)
    known[0, 0] = 0b11111
    X = np.array([[1.0], [3.0], [0.0], [4.0], [2.9], [5.0], [-1.0], [np.nan], [3.5], [256.0]])
    out = hgb_apply(
        X,
        HGBNodes(
            np.array([0, 3]),
            np.array([1, 0, 0]),
            np.array([2, 0, 0]),
            np.zeros(3, dtype=np.int64),
            np.zeros(3),
            np.zeros(3, dtype=np.uint8),
            np.array([0, 1, 1], dtype=np.uint8),
            np.array([1, 0, 0], dtype=np.uint8),
            np.zeros(3, dtype=np.int64),
            np.array([-1, 0, 1], dtype=np.int32),
            left_bits,
            known,
            np.zeros(1, dtype=np.int64),
        ),
    )
    # 2.9 -> 2 (right), 3.5 -> 3 (left), unknown/negative/NaN/256 -> missing (right)
    np.testing.assert_array_equal(out[:, 0], [0, 0, 1, 1, 1, 1, 1, 1, 0, 1])


# ----------------------------------------------------------------- property tests
@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(40, 160),
    p=st.integers(1, 5),
    task=st.sampled_from(TASKS),
    params=st.fixed_dictionaries(
        {
            "max_depth": st.integers(1, 4),
            "max_leaf_nodes": st.sampled_from([None, 2, 5]),
            "learning_rate": st.sampled_from([0.05, 0.3, 1.0]),
            "n_estimators": st.integers(1, 6),
            "min_samples_leaf": st.integers(1, 8),
            "max_features": st.sampled_from([None, 0.5]),
            "ccp_alpha": st.sampled_from([0.0, 0.01]),
        }
    ),
    weighted=st.booleans(),
)
def test_gradient_boosting_property(seed, n, p, task, params, weighted):
    X, y = _make_data(seed, n, p, task)
    w = _weights(seed, n, weighted)
    cls = GradientBoostingRegressor if task == "regression" else GradientBoostingClassifier
    model = cls(**params, random_state=seed).fit(X, y, sample_weight=w)
    ens = skinfluence.to_ensemble(model, X)
    K = _n_classes(task)
    assert ens.n_outputs == (K if K > 2 else 1)
    assert ens.multiclass_factor == pytest.approx(K / (K - 1) if K > 2 else 1.0)
    leaves = ens.check_reconstruction(X)
    assert ens.check_leaf_model(leaves, class_index(ens, y), w) == 0.0
    assert ens.check_counts(leaves) is None
    assert ens.training_rows_recorded() == n
    K = ens.n_outputs
    _check_sklearn_paths(
        ens, lambda t: model.estimators_[t // K, t % K], X.astype(np.float32), leaves
    )


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(60, 200),
    p=st.integers(2, 5),
    task=st.sampled_from(TASKS),
    params=st.fixed_dictionaries(
        {
            "max_depth": st.sampled_from([None, 2, 4]),
            "max_leaf_nodes": st.integers(2, 16),
            "learning_rate": st.sampled_from([0.1, 0.5, 1.0]),
            "l2_regularization": st.sampled_from([0.0, 0.5, 3.0]),
            "max_iter": st.integers(1, 6),
            "min_samples_leaf": st.integers(2, 20),
            "max_features": st.sampled_from([1.0, 0.5]),
        }
    ),
    nan_frac=st.sampled_from([0.0, 0.15]),
    categorical=st.booleans(),
    weighted=st.booleans(),
)
def test_hist_gradient_boosting_property(seed, n, p, task, params, nan_frac, categorical, weighted):
    X, y = _make_data(seed, n, p, task, nan_frac=nan_frac, cat_levels=6 if categorical else 0)
    w = _weights(seed, n, weighted)
    cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    model = cls(
        **params,
        categorical_features=[0] if categorical else None,
        early_stopping=False,
        random_state=seed,
    ).fit(X, y, sample_weight=w)
    ens = skinfluence.to_ensemble(model)
    assert ens.multiclass_factor == 1.0
    assert np.all(ens.l2 == params["l2_regularization"])
    leaves = ens.check_reconstruction(X)
    assert ens.check_leaf_model(leaves, class_index(ens, y), w) == 0.0
    assert ens.check_counts(leaves) is None
    assert ens.training_rows_recorded() == n


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(30, 150),
    p=st.integers(1, 4),
    task=st.sampled_from(TASKS[:4]),
    extra=st.booleans(),
    params=st.fixed_dictionaries(
        {
            "bootstrap": st.booleans(),
            "n_estimators": st.integers(1, 6),
            "max_depth": st.sampled_from([None, 1, 3]),
            "max_features": st.sampled_from([None, "sqrt", 0.5]),
        }
    ),
    nan_frac=st.sampled_from([0.0, 0.1]),
    weighted=st.booleans(),
)
def test_forest_property(seed, n, p, task, extra, params, nan_frac, weighted):
    X, y = _make_data(seed, n, p, task, nan_frac=nan_frac)
    w = _weights(seed, n, weighted)
    if task == "regression":
        cls = ExtraTreesRegressor if extra else RandomForestRegressor
    else:
        cls = ExtraTreesClassifier if extra else RandomForestClassifier
    model = cls(**params, random_state=seed).fit(X, y, sample_weight=w)
    ens = skinfluence.to_ensemble(model)
    assert ens.tree_type == "rf"
    K = _n_classes(task)
    assert ens.n_outputs == (K if K > 2 else 1)
    assert ens.n_trees == params["n_estimators"] * ens.n_outputs
    leaves = ens.check_reconstruction(X)
    with pytest.raises(LeafModelError, match="random forest"):
        ens.check_leaf_model(leaves, class_index(ens, y), w)
    if not params["bootstrap"]:
        assert ens.check_counts(leaves) is None
        assert ens.training_rows_recorded() == n
    else:
        assert ens.leaf_stats is None
    _check_sklearn_paths(
        ens, lambda t: model.estimators_[t // ens.n_outputs], X.astype(np.float32), leaves
    )


# -------------------------------------------------------------- breaking settings
def _fitted(model, task, n=300, seed=0, **fit):
    X, y = _make_data(seed, n, 3, task)
    return model.fit(X, y, **fit), X, y


@pytest.mark.parametrize(
    ("model", "task", "setting"),
    [
        (
            GradientBoostingClassifier(subsample=0.5, n_estimators=5, random_state=0),
            "binary",
            "subsample=0.5",
        ),
        (
            GradientBoostingRegressor(n_iter_no_change=2, n_estimators=30, random_state=0),
            "regression",
            "n_iter_no_change=2",
        ),
        (
            HistGradientBoostingClassifier(early_stopping=True, max_iter=5, random_state=0),
            "multi3",
            "early stopping",
        ),
        (
            HistGradientBoostingClassifier(class_weight="balanced", max_iter=5),
            "multi3",
            "class_weight='balanced'",
        ),
        (
            HistGradientBoostingRegressor(monotonic_cst=[1, 0, -1], max_iter=5),
            "regression",
            "monotonic_cst",
        ),
    ],
    ids=[
        "gb-subsample",
        "gb-n_iter_no_change",
        "hgb-early_stopping",
        "hgb-class_weight",
        "hgb-monotonic_cst",
    ],
)
def test_breaking_settings_are_named(model, task, setting):
    if setting == "class_weight='balanced'":
        # imbalanced classes, so that the class weights differ
        X, _ = _make_data(0, 300, 3, task)
        y = np.repeat([0, 1, 2], [200, 70, 30])
        model.fit(X, y)
    elif setting == "monotonic_cst":
        # a non-monotone target makes the constraints bind
        rng = np.random.default_rng(1)
        X = rng.normal(size=(400, 3))
        y = np.sin(3 * X[:, 0]) + 2 * X[:, 0] * X[:, 1] + 0.1 * rng.normal(size=400)
        model.fit(X, y)
    else:
        model, X, y = _fitted(model, task)
    ens = skinfluence.to_ensemble(model)
    assert any(setting in s for s in ens.breaking_settings)
    leaves = ens.check_reconstruction(X)
    with pytest.raises(LeafModelError, match=setting.replace("[", r"\[")):
        ens.check_leaf_model(leaves, class_index(ens, y))
    if "subsample" in setting:
        assert "bagging" in ens.check_counts(leaves)


@pytest.mark.parametrize("weighted", [False, True])
def test_class_weight_passed_as_sample_weight(weighted):
    X, _ = _make_data(3, 300, 3, "binary")
    y = np.repeat([0, 1], [240, 60])
    sw = _weights(3, 300, weighted)
    model = HistGradientBoostingClassifier(class_weight={0: 1.0, 1: 4.0}, max_iter=5)
    model.fit(X, y, sample_weight=sw)
    ens = skinfluence.to_ensemble(model)
    leaves = ens.check_reconstruction(X)
    w = compute_sample_weight({0: 1.0, 1: 4.0}, y) * (1.0 if sw is None else sw)
    assert ens.check_leaf_model(leaves, y, w) == 0.0


def test_breaking_free_defaults_list_nothing():
    for model, task in [
        (GradientBoostingClassifier(n_estimators=3), "multi3"),
        (HistGradientBoostingRegressor(max_iter=3), "regression"),
    ]:
        model, _, _ = _fitted(model, task)
        assert skinfluence.to_ensemble(model).breaking_settings == ()


# ------------------------------------------------------------------ bias and init
def test_gb_init_variants():
    X, y = _make_data(4, 200, 3, "regression")
    zero = GradientBoostingRegressor(init="zero", n_estimators=4).fit(X, y)
    ens = skinfluence.to_ensemble(zero, X)
    np.testing.assert_array_equal(ens.bias, [0.0])
    assert ens.check_leaf_model(ens.check_reconstruction(X), y) == 0.0

    median = GradientBoostingRegressor(init=DummyRegressor(strategy="median"), n_estimators=4).fit(
        X, y
    )
    ens = skinfluence.to_ensemble(median, X)
    assert ens.bias[0] == pytest.approx(np.median(y))
    assert ens.check_leaf_model(ens.check_reconstruction(X), y) == 0.0

    linear = GradientBoostingRegressor(init=LinearRegression(), n_estimators=4)
    linear.fit(X, y)
    with pytest.raises(UnsupportedModelError, match="non-constant init"):
        skinfluence.to_ensemble(linear, X)


@pytest.mark.parametrize("task", ["binary", "multi4"])
def test_gb_bias_matches_private_init(task):
    X, y = _make_data(5, 200, 3, task)
    w = _weights(5, 200, True)
    model = GradientBoostingClassifier(n_estimators=2).fit(X, y, sample_weight=w)
    ens = skinfluence.to_ensemble(model)
    np.testing.assert_allclose(ens.bias, model._raw_predict_init(X[:1])[0], rtol=1e-15)
    prior = np.bincount(y, weights=w) / w.sum()
    if task == "binary":
        expected = [np.log(prior[1] / prior[0])]
    else:
        expected = np.log(prior) - np.log(prior).mean()
    np.testing.assert_allclose(ens.bias, expected, rtol=1e-12)


# --------------------------------------------------------- wrappers and input types
def test_pipeline_and_frozen_estimator():
    X, y = _make_data(6, 200, 4, "multi3")
    X = X * [1.0, 10.0, 100.0, 0.1] + 3.0
    pipe = make_pipeline(StandardScaler(), GradientBoostingClassifier(n_estimators=4))
    pipe.fit(X, y)
    ens = skinfluence.to_ensemble(pipe, X, y)
    assert ens.preprocess is not None
    leaves = ens.check_reconstruction(X)
    np.testing.assert_array_equal(leaves, ens.router(pipe[:-1].transform(X)))
    assert ens.check_leaf_model(leaves, y) == 0.0

    hgb = HistGradientBoostingClassifier(max_iter=4).fit(X, y)
    ens = skinfluence.to_ensemble(FrozenEstimator(hgb))
    assert ens.model_name == "HistGradientBoostingClassifier"
    assert ens.check_leaf_model(ens.check_reconstruction(X), y) == 0.0


def _frame(X, cat=None):
    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    if cat is not None:
        df["f0"] = pd.Categorical.from_codes(
            np.where(np.isnan(X[:, 0]), -1, X[:, 0]).astype(int), categories=cat
        )
    return df


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize("family", ["gb", "hgb", "rf"])
def test_numpy_pandas_polars_give_identical_leaves(family):
    pl = pytest.importorskip("polars")
    X, y = _make_data(
        8,
        200,
        4,
        "binary",
        nan_frac=0.0 if family == "gb" else 0.1,
        cat_levels=4 if family == "hgb" else 0,
    )
    if family == "gb":
        model = GradientBoostingClassifier(n_estimators=4)
        frames = [X, _frame(X), pl.from_pandas(_frame(X))]
    elif family == "hgb":
        model = HistGradientBoostingClassifier(max_iter=4, categorical_features="from_dtype")
        df = _frame(X, cat=list("abcd"))
        frames = [df, pl.from_pandas(df)]
    else:
        model = RandomForestClassifier(n_estimators=4, random_state=0)
        frames = [X, _frame(X), pl.from_pandas(_frame(X))]
    model.fit(frames[1] if family != "hgb" else frames[0], y)
    ens = skinfluence.to_ensemble(model)
    all_leaves = [ens.check_reconstruction(f) for f in frames]
    for other in all_leaves[1:]:
        np.testing.assert_array_equal(all_leaves[0], other)
    if family == "hgb":  # unknown categories at query time go the missing way
        q = frames[0].iloc[:5].copy()
        q["f0"] = pd.Categorical(["zz", "a", None, "yy", "b"])
        ens.check_reconstruction(q)


def test_input_and_model_unchanged():
    X, y = _make_data(9, 150, 3, "binary", nan_frac=0.1, cat_levels=3)
    df = _frame(X, cat=["u", "v", "w"])
    for model, data in [
        (HistGradientBoostingClassifier(max_iter=3, categorical_features="from_dtype"), df),
        (GradientBoostingClassifier(n_estimators=3), np.nan_to_num(X)),
        (RandomForestClassifier(n_estimators=3, random_state=0), X),
    ]:
        model.fit(data, y)
        before_model = pickle.dumps(model)
        before_data = data.copy()
        ens = skinfluence.to_ensemble(model, data, y)
        leaves = ens.check_reconstruction(data)
        if ens.tree_type == "gbdt":
            ens.check_leaf_model(leaves, y)
            ens.staged_raw_predictor(data, 2)
        if hasattr(data, "iloc"):
            pd.testing.assert_frame_equal(data, before_data)
        else:
            np.testing.assert_array_equal(data, before_data)
        assert pickle.dumps(model) == before_model
        # the ensemble pickles (its callables hold only the model)
        again = pickle.loads(pickle.dumps(ens))
        np.testing.assert_array_equal(again.leaf_ids(data), leaves)


# ------------------------------------------------------------ errors and refusals
@pytest.mark.parametrize(
    "model",
    [
        GradientBoostingRegressor(),
        HistGradientBoostingClassifier(),
        RandomForestRegressor(),
        ExtraTreesClassifier(),
    ],
)
def test_unfitted_raises_not_fitted(model):
    with pytest.raises(NotFittedError, match="not fitted"):
        skinfluence.to_ensemble(model)


@pytest.mark.parametrize(
    ("model", "task"),
    [
        (LogisticRegression(), "binary"),
        (AdaBoostClassifier(n_estimators=2), "binary"),
        (DecisionTreeRegressor(max_depth=2), "regression"),
        (GradientBoostingRegressor(loss="huber", n_estimators=2), "regression"),
        (GradientBoostingRegressor(loss="absolute_error", n_estimators=2), "regression"),
        (GradientBoostingRegressor(loss="quantile", n_estimators=2), "regression"),
        (GradientBoostingClassifier(loss="exponential", n_estimators=2), "binary"),
        (HistGradientBoostingRegressor(loss="quantile", quantile=0.3, max_iter=2), "regression"),
        (HistGradientBoostingRegressor(loss="absolute_error", max_iter=2), "regression"),
    ],
)
def test_unsupported_models_and_losses(model, task):
    X, y = _make_data(10, 100, 3, "regression" if task == "poisson" else task)
    if task == "poisson":
        y = np.exp(y / 3)
    model.fit(X, y)
    with pytest.raises(UnsupportedModelError, match="not supported"):
        skinfluence.to_ensemble(model)


def test_multi_output_forest_refused():
    X, y = _make_data(11, 80, 3, "regression")
    model = RandomForestRegressor(n_estimators=2).fit(X, np.column_stack([y, -y]))
    with pytest.raises(UnsupportedModelError, match="2 outputs"):
        skinfluence.to_ensemble(model)


def test_hgb_missing_private_attributes_is_a_clear_error():
    model, _, _ = _fitted(HistGradientBoostingRegressor(max_iter=2), "regression")
    broken = copy.deepcopy(model)
    del broken._bin_mapper
    with pytest.raises(UnsupportedModelError, match="_bin_mapper"):
        skinfluence.to_ensemble(broken)


# --------------------------------------------------- counts, staged predictions
@pytest.mark.parametrize(
    "model",
    [GradientBoostingClassifier(n_estimators=4), HistGradientBoostingClassifier(max_iter=4)],
)
def test_count_check_and_recorded_rows(model):
    model, X, y = _fitted(model, "multi3", n=240)
    ens = skinfluence.to_ensemble(model)
    leaves = ens.leaf_ids(X)
    assert ens.check_counts(leaves) is None
    assert ens.training_rows_recorded() == 240
    message = ens.check_counts(leaves[:80])
    assert message is not None and "differ" in message


@pytest.mark.parametrize(
    "model", [GradientBoostingRegressor(n_estimators=5), HistGradientBoostingClassifier(max_iter=5)]
)
def test_staged_predictor_and_divergence_diagnosis(model):
    model, X, y = _fitted(
        model, "regression" if "Regressor" in type(model).__name__ else "multi3", n=200
    )
    ens = skinfluence.to_ensemble(model)
    leaves = ens.check_reconstruction(X)
    K = ens.n_outputs
    for b in (0, 1, 3, 5):
        sub = copy.copy(ens)
        sub.leaf_offsets = ens.leaf_offsets[: b * K + 1]
        sub.leaf_values = ens.leaf_values[: sub.leaf_offsets[-1]]
        ours = sub.raw_from_leaves(np.ascontiguousarray(leaves[:, : b * K]))
        np.testing.assert_allclose(ens.staged_raw_predictor(X, b), ours, atol=1e-9)
    # corrupt one leaf of round 3: the diagnosis locates the round
    bad = copy.copy(ens)
    bad.leaf_values = ens.leaf_values.copy()
    t = 3 * K
    bad.leaf_values[ens.leaf_offsets[t] + leaves[0, t]] += 1.0
    with pytest.raises(ReconstructionError, match="round 3"):
        bad.check_reconstruction(X)


# ------------------------------------------------------------ bundled data sets
@pytest.mark.parametrize("name", ["concrete", "credit", "spam", "hpc"])
def test_bundled_datasets(name):
    X, y, task = load_dataset(name)
    Xn, _, _ = load_dataset(name, as_frame=False)
    regression = task == "regression"

    hgb = (HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier)(
        max_iter=10, categorical_features="from_dtype", random_state=0
    ).fit(X, y)
    ens = skinfluence.to_ensemble(hgb)
    leaves = ens.check_reconstruction(X)
    assert ens.check_leaf_model(leaves, class_index(ens, y)) == 0.0
    assert ens.check_counts(leaves) is None

    # GradientBoosting does not take NaN: impute inside a pipeline
    gb = make_pipeline(
        SimpleImputer(strategy="median"),
        (GradientBoostingRegressor if regression else GradientBoostingClassifier)(
            n_estimators=8, random_state=0
        ),
    )
    gb.fit(Xn, y)
    ens = skinfluence.to_ensemble(gb)
    leaves = ens.check_reconstruction(Xn)
    assert ens.check_leaf_model(leaves, class_index(ens, y)) == 0.0
    assert ens.check_counts(leaves) is None

    # forests route NaN natively
    rf = (RandomForestRegressor if regression else RandomForestClassifier)(
        n_estimators=5, max_depth=8, random_state=0
    ).fit(Xn, y)
    skinfluence.to_ensemble(rf).check_reconstruction(Xn)


def test_hist_gradient_boosting_unsplit_root_is_a_constant_tree():
    """A tree whose root the grower never splits (here: the one feature drawn by
    max_features has no valid split) keeps the root's initial value 0, not a Newton
    step: the adapter marks it constant, and the leaf model holds on the other trees."""
    X, y = _make_data(1, 60, 2, "multi3", nan_frac=0.15, cat_levels=6)
    model = HistGradientBoostingClassifier(
        max_leaf_nodes=2,
        max_iter=2,
        min_samples_leaf=2,
        max_features=0.5,
        categorical_features=[0],
        early_stopping=False,
        random_state=1,
    ).fit(X, y)
    ens = skinfluence.to_ensemble(model)
    single = ens.n_leaves == 1
    assert single.any() and not single.all()
    np.testing.assert_array_equal(ens.constant_tree, single)
    assert np.all(ens.leaf_values[np.repeat(single, ens.n_leaves)] == 0.0)
    leaves = ens.check_reconstruction(X)
    g = ens.replay(leaves, class_index(ens, y))[0]
    t = int(np.flatnonzero(single[ens.n_outputs :])[0]) + ens.n_outputs
    assert abs(g[:, t].sum()) > 1e-3  # a Newton step would not be 0 here
    assert ens.check_leaf_model(leaves, class_index(ens, y)) == 0.0
