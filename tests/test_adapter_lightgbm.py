"""Tests of the LightGBM adapter (``skinfluence._adapters._lightgbm``).

Every model is trained with ``n_jobs=1``: multi-threaded LightGBM on tiny data is
dominated by thread start-up and makes the suite slow on small machines.
"""

import copy
import functools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import skinfluence
from skinfluence import LeafModelError, UnsupportedModelError
from skinfluence._adapters._lightgbm import to_ensemble
from skinfluence.testing import quantile_classes

from .models import adapter_model
from .reference import class_index

lgb = pytest.importorskip("lightgbm")
pd = pytest.importorskip("pandas")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CATS = list("abcdefghijklmno")


def make_frame(seed, n, d, task, n_classes=3, n_levels=12, nan_frac=0.1):
    """Random pandas training data: NaNs in column 0, a categorical column ``cat``.

    Returns
    -------
    X : DataFrame of shape (n, d + 1)
    y : ndarray of shape (n,)
        Floats (regression), ``"no"``/``"yes"`` (binary) or ``0..n_classes-1``.
    """
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, d)), columns=[f"x{j}" for j in range(d)])
    levels = CATS[:n_levels]
    codes = rng.integers(0, n_levels, size=n)
    X["cat"] = pd.Categorical(np.asarray(levels)[codes], categories=levels)
    X.loc[rng.random(n) < nan_frac, "x0"] = np.nan
    z = X["x0"].fillna(0.5).to_numpy() - X["x1"].to_numpy() ** 2 + (codes % 3 - 1)
    z = z + 0.3 * rng.normal(size=n)
    if task == "regression":
        y = 3.0 * z + 10.0
    elif task == "binary":
        y = np.where(z > np.quantile(z, 0.65), "yes", "no")
    else:
        y = quantile_classes(z, n_classes)
    return X, y


# an unfitted LightGBM wrapper for a task: eight trees of up to eight leaves
model_for = functools.partial(
    adapter_model, "lightgbm", learning_rate=0.3, num_leaves=8, min_child_samples=5
)


def assert_newton(model, X, y, sample_weight=None):
    """Build the ensemble, run both checks, return it with the training leaf ids."""
    ens = to_ensemble(model, X, y, sample_weight)
    leaves = ens.check_reconstruction(X)
    assert ens.check_leaf_model(leaves, class_index(ens, y), sample_weight) == 0.0
    return ens, leaves


# ------------------------------------------------------------------ property tests
@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    task=st.sampled_from(["regression", "binary", "multiclass"]),
    n_classes=st.integers(3, 5),
    n=st.integers(80, 220),
    d=st.integers(2, 4),
    params=st.fixed_dictionaries(
        {
            "num_leaves": st.integers(2, 12),
            "max_depth": st.sampled_from([-1, 2, 4]),
            "learning_rate": st.sampled_from([0.05, 0.3, 1.0]),
            "reg_lambda": st.sampled_from([0.0, 0.5, 3.0]),
            "cat_l2": st.sampled_from([0.0, 10.0]),
            "n_estimators": st.integers(1, 12),
            "min_child_samples": st.integers(2, 30),
            "boost_from_average": st.booleans(),
        }
    ),
    n_levels=st.sampled_from([3, 12]),
    weighted=st.booleans(),
    early_stop=st.booleans(),
)
def test_random_models_reconstruct_and_are_newton_steps(
    seed, task, n_classes, n, d, params, n_levels, weighted, early_stop
):
    """Random data and hyperparameters: reconstruction and leaf-model checks pass."""
    X, y = make_frame(seed, n + 60, d, task, n_classes, n_levels)
    Xv, yv = X.iloc[n:], y[n:]
    X, y = X.iloc[:n], y[:n]
    rng = np.random.default_rng(seed + 1)
    w = rng.uniform(0.2, 3.0, size=n) if weighted else None
    model = model_for(task, **params)
    fit_kw = {}
    if early_stop:
        fit_kw = {"eval_set": [(Xv, yv)], "callbacks": [lgb.early_stopping(2, verbose=False)]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eval_set is deprecated in LightGBM 4.7
        model.fit(X, y, sample_weight=w, **fit_kw)
    ens, leaves = assert_newton(model, X, y, w)
    best = model.best_iteration_ or model.booster_.current_iteration()
    assert ens.n_rounds == best
    assert ens.n_outputs == (n_classes if task == "multiclass" else 1)
    assert ens.training_rows_recorded() == n
    assert ens.check_counts(leaves) is None


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_classes=st.integers(3, 5), n_estimators=st.integers(2, 10))
def test_multiclass_one_leaf_trees_are_constant(seed, n_classes, n_estimators):
    """Large ``min_child_samples``: one-leaf trees are flagged constant and skipped."""
    X, y = make_frame(seed, 150, 2, "multiclass", n_classes)
    model = model_for(
        "multiclass", n_estimators=n_estimators, min_child_samples=40, learning_rate=1.0
    ).fit(X, y)
    ens, _ = assert_newton(model, X, y)
    one_leaf = ens.n_leaves == 1
    np.testing.assert_array_equal(ens.constant_tree, one_leaf)
    later = one_leaf.copy()
    later[: ens.n_outputs] = False
    flat = np.repeat(later, ens.n_leaves)
    assert np.all(ens.leaf_values[flat] == 0.0)


# ------------------------------------------------------------------ model facts
@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_bias_is_subtracted_from_first_trees(task):
    """F_0 is recomputed, matches the root internal value, and the first trees keep
    the learning rate (not the shrinkage 1 of the dump)."""
    X, y = make_frame(0, 200, 3, task)
    model = model_for(task, learning_rate=0.2).fit(X, y)
    ens, _ = assert_newton(model, X, y)
    K = ens.n_outputs
    np.testing.assert_allclose(ens.learning_rates, 0.2)
    dump = model.booster_.dump_model()["tree_info"]
    root = np.array([dump[k]["tree_structure"]["internal_value"] for k in range(K)])
    np.testing.assert_allclose(ens.bias, root, rtol=1e-5, atol=1e-5)
    assert np.any(np.abs(ens.bias) > 1e-3)
    assert "recomputed" in ens.notes["bias_source"][0]


def test_bias_without_y_uses_internal_value():
    """Without y the bias comes from the dump and the reconstruction still holds."""
    X, y = make_frame(1, 200, 3, "binary")
    model = model_for("binary").fit(X, y)
    ens = to_ensemble(model, X)
    assert "internal_value" in ens.notes["bias_source"][0]
    ens.check_reconstruction(X)
    exact = to_ensemble(model, X, y)
    np.testing.assert_allclose(ens.bias, exact.bias, rtol=1e-5, atol=1e-6)


def test_boost_from_average_false_has_zero_bias():
    X, y = make_frame(2, 200, 3, "regression")
    model = model_for("regression", boost_from_average=False).fit(X, y)
    ens, _ = assert_newton(model, X, y)
    np.testing.assert_array_equal(ens.bias, [0.0])


def test_learning_rate_schedule_recovers_first_round_rate():
    """``reset_parameter`` varies the rate; the first round's is recovered from data."""
    X, y = make_frame(3, 250, 3, "binary")
    rates = [0.5, 0.3, 0.2, 0.1, 0.1, 0.05]
    model = model_for("binary", n_estimators=len(rates))
    model.fit(X, y, callbacks=[lgb.reset_parameter(learning_rate=rates)])
    ens, _ = assert_newton(model, X, y)
    np.testing.assert_allclose(ens.learning_rates, rates, rtol=1e-6)
    assert ens.breaking_settings == ()


def test_cat_l2_is_added_on_many_vs_many_children():
    """Children of a many-vs-many categorical split carry lambda_l2 + cat_l2."""
    rng = np.random.default_rng(4)
    n = 400
    X = pd.DataFrame(
        {"x0": rng.normal(size=n), "cat": pd.Categorical(rng.choice(CATS[:10], size=n))}
    )
    y = 0.1 * X["x0"].to_numpy() + 2.0 * (X["cat"].cat.codes.to_numpy() % 3)
    model = model_for("regression", reg_lambda=1.0, cat_l2=5.0).fit(X, y)
    ens, leaves = assert_newton(model, X, y)
    assert set(np.unique(ens.l2)) == {1.0, 6.0}
    ens.l2[:] = 1.0  # without the per-leaf cat_l2 the check fails
    with pytest.raises(LeafModelError):
        ens.check_leaf_model(leaves, y)


def test_paths_match_the_tree_structure():
    """Every leaf's ancestors are internal nodes of its own tree, root first."""
    X, y = make_frame(5, 200, 3, "multiclass")
    ens = to_ensemble(model_for("multiclass", num_leaves=6).fit(X, y), X, y)
    assert len(ens.path_indptr) == ens.n_leaves_total + 1
    np.testing.assert_array_equal(np.diff(ens.node_offsets), ens.n_leaves - 1)
    for t in range(ens.n_trees):
        first, stop = ens.leaf_offsets[t], ens.leaf_offsets[t + 1]
        lo, hi = ens.node_offsets[t], ens.node_offsets[t + 1]
        seen = set()
        for j in range(first, stop):
            path = ens.path_nodes[ens.path_indptr[j] : ens.path_indptr[j + 1]]
            assert np.all((path >= lo) & (path < hi))
            if ens.n_leaves[t] > 1:
                assert path[0] == lo  # split_index 0 is the root
            assert len(set(path.tolist())) == len(path)
            seen.update(path.tolist())
        assert len(seen) == ens.n_leaves[t] - 1


def _dump_reference(booster, max_onehot=4):
    """Slow oracle from ``Booster.dump_model()``: per tree, its leaves' values and counts
    by leaf index, each leaf's ancestors (split_index, root first) and whether its parent
    is a categorical (``==``) split on a feature with more than ``max_onehot`` bins."""
    dump = booster.dump_model()
    infos = dump["feature_infos"]
    n_bins = [len((infos.get(name) or {}).get("values") or []) for name in dump["feature_names"]]
    out = []
    for tree in dump["tree_info"]:
        leaves = {}
        stack = [(tree["tree_structure"], [], False)]
        while stack:
            node, path, cat = stack.pop()
            if "split_index" not in node:
                leaves[node.get("leaf_index", 0)] = (
                    node["leaf_value"],
                    node.get("leaf_count", 0),
                    path,
                    cat,
                )
                continue
            here = [*path, node["split_index"]]
            many = node["decision_type"] == "==" and n_bins[node["split_feature"]] > max_onehot
            stack += [(node["left_child"], here, many), (node["right_child"], here, many)]
        out.append([leaves[i] for i in range(tree["num_leaves"])])
    return out


@pytest.mark.parametrize(
    "case", ["regression", "binary-early-stop", "multiclass-one-leaf", "constant-column"]
)
def test_tree_arrays_match_the_json_dump(case):
    """The arrays parsed from the model text equal those walked from the JSON dump:
    leaf values (bitwise), counts, ancestor paths, many-vs-many children, one-leaf trees,
    the early-stopping iteration and the multiclass tree order."""
    task = "regression" if case == "constant-column" else case.split("-")[0]
    X, y = make_frame(20, 300, 3, task, n_classes=4)
    params = {"cat_l2": 4.0, "reg_lambda": 0.5}
    if case == "multiclass-one-leaf":
        params.update(min_split_gain=2.0, learning_rate=1.0)
    if case == "constant-column":  # an unused feature before the categorical one, which
        # the dump's feature_infos skip: cat_l2 must follow the feature index
        rng = np.random.default_rng(20)
        codes = rng.integers(0, 10, size=len(X))
        X = pd.DataFrame(
            {
                "x0": rng.normal(size=len(X)),
                "const": 1.0,
                "cat": pd.Categorical(np.asarray(CATS)[codes]),
            }
        )
        y = 0.1 * X["x0"].to_numpy() + 2.0 * (codes % 3)
    if case == "binary-early-stop":  # a booster holding more rounds than the best
        y = (y == "yes").astype(float)
        Xv, yv = make_frame(21, 100, 3, task)
        train_params = {
            "objective": "binary",
            "num_leaves": 8,
            "min_data_in_leaf": 5,
            "learning_rate": 0.3,
            "verbose": -1,
            "num_threads": 1,
            **params,
        }
        model = lgb.train(
            train_params,
            lgb.Dataset(X, y),
            60,
            keep_training_booster=True,
            valid_sets=[lgb.Dataset(Xv, (yv == "yes").astype(float))],
            callbacks=[lgb.early_stopping(2, verbose=False)],
        )
        booster = model
    else:
        model = model_for(task, **params).fit(X, y)
        booster = model.booster_
    ens, _ = assert_newton(model, X, y)
    if case == "binary-early-stop":
        assert 0 < ens.n_rounds == booster.best_iteration < booster.current_iteration()
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=ens.n_rounds))
    if case == "multiclass-one-leaf":
        assert ens.constant_tree[ens.n_outputs :].any()
    reference = _dump_reference(booster)
    assert len(reference) == ens.n_trees
    for t, leaves in enumerate(reference):
        o, e = ens.leaf_offsets[t], ens.leaf_offsets[t + 1]
        values = np.array([leaf[0] for leaf in leaves])
        if t < ens.n_outputs and not np.array_equal(values, ens.leaf_values[o:e]):
            values = values - ens.bias[t]  # the folded initial score
        np.testing.assert_array_equal(ens.leaf_values[o:e], values)
        np.testing.assert_array_equal(ens.leaf_stats[o:e], [leaf[1] for leaf in leaves])
        np.testing.assert_array_equal(ens.l2[o:e], [4.5 if leaf[3] else 0.5 for leaf in leaves])
        for j, leaf in enumerate(leaves):
            path = ens.path_nodes[ens.path_indptr[o + j] : ens.path_indptr[o + j + 1]]
            np.testing.assert_array_equal(path, ens.node_offsets[t] + np.array(leaf[2], int))
    if case == "constant-column":  # cat_l2 sits on the categorical feature's children
        assert ens.notes["cat_l2_leaves"] > 0


def test_in_memory_booster_keeps_full_precision():
    """The model text writes shrinkage and internal values with 6 digits; a booster still
    holding the trees it trained has them exactly, and the ensemble reads them so."""
    X, y = make_frame(22, 250, 3, "regression")
    params = {
        "objective": "regression",
        "num_leaves": 6,
        "learning_rate": 0.0734829374,
        "verbose": -1,
        "num_threads": 1,
    }
    booster = lgb.train(params, lgb.Dataset(X, y), 6, keep_training_booster=True)
    dump = booster.dump_model()["tree_info"]
    ens = to_ensemble(booster)
    np.testing.assert_array_equal(ens.learning_rates[1:], 0.0734829374)
    assert ens.bias[0] == dump[0]["tree_structure"]["internal_value"]
    assert_newton(booster, X, y)
    reloaded = lgb.Booster(model_str=booster.model_to_string())
    ens = to_ensemble(reloaded)  # the text's 6 digits are all the reloaded model has
    np.testing.assert_array_equal(ens.learning_rates[1:], 0.0734829)
    assert ens.bias[0] == float(f"{dump[0]['tree_structure']['internal_value']:.6g}")
    assert_newton(reloaded, X, y)


def test_schedule_of_an_in_memory_booster_is_exact():
    """Schedule rates with many digits are read from the dump, not the 6-digit text."""
    X, y = make_frame(23, 250, 3, "binary")
    y01 = (y == "yes").astype(float)
    rates = [0.3 * 0.9**i for i in range(6)]
    params = {"objective": "binary", "num_leaves": 6, "verbose": -1, "num_threads": 1}
    booster = lgb.train(
        params,
        lgb.Dataset(X, y01),
        6,
        keep_training_booster=True,
        callbacks=[lgb.reset_parameter(learning_rate=rates)],
    )
    ens, _ = assert_newton(booster, X, y01)
    np.testing.assert_array_equal(ens.learning_rates[1:], rates[1:])
    np.testing.assert_allclose(ens.learning_rates[0], rates[0], rtol=1e-6)  # from the data


def test_linear_trees_are_refused_from_the_trees_themselves():
    """A model text whose parameters lost ``linear_tree`` is still refused."""
    X, y = make_frame(24, 150, 3, "regression", nan_frac=0.0)
    model = model_for("regression", linear_tree=True).fit(X.drop(columns="cat"), y)
    text = model.booster_.model_to_string().replace("[linear_tree: 1]", "[linear_tree: 0]")
    with pytest.raises(UnsupportedModelError, match="linear_tree"):
        to_ensemble(lgb.Booster(model_str=text))


# ------------------------------------------------------------------ breaking settings
BREAKING = [
    ("bagging_fraction", "regression", {"subsample": 0.5, "subsample_freq": 1}),
    ("goss", "binary", {"data_sample_strategy": "goss", "learning_rate": 0.5}),
    ("dart", "regression", {"boosting_type": "dart", "n_estimators": 12}),
    ("lambda_l1", "regression", {"reg_alpha": 5.0}),
    (
        "monotone_constraints",
        "regression",
        {"monotone_constraints": [1, 0, 0, 0], "num_leaves": 16},
    ),
    ("is_unbalance", "binary", {"is_unbalance": True}),
    ("scale_pos_weight", "binary", {"scale_pos_weight": 3.0}),
    ("path_smooth", "regression", {"path_smooth": 20.0}),
]


@pytest.mark.parametrize("name,task,params", BREAKING, ids=[b[0] for b in BREAKING])
def test_breaking_settings_are_named(name, task, params):
    X, y = make_frame(6, 300, 3, task, nan_frac=0.0)
    if name == "monotone_constraints":
        y = np.sin(3 * X["x0"].to_numpy()) + 0.1 * X["x1"].to_numpy()
    model = model_for(task, **params).fit(X, y)
    ens = to_ensemble(model, X, y)
    leaves = ens.check_reconstruction(X)
    assert any(name in s for s in ens.breaking_settings)
    with pytest.raises(LeafModelError, match=name):
        ens.check_leaf_model(leaves, class_index(ens, y))


def test_class_weight_as_sample_weight_passes():
    """``class_weight`` becomes per-row weights: given to fit they pass the check."""
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = make_frame(7, 300, 3, "binary")
    y = np.where(X["x1"].to_numpy() > 0.7, "yes", "no")
    model = model_for("binary", class_weight="balanced").fit(X, y)
    w = compute_sample_weight("balanced", y)
    ens, _ = assert_newton(model, X, y, w)
    assert ens.breaking_settings == ()
    bare = to_ensemble(model, X, y)
    with pytest.raises(LeafModelError, match="class_weight"):
        bare.check_leaf_model(bare.leaf_ids(X), class_index(bare, y))


def test_wrong_weights_are_reported_through_the_bias():
    """Weights other than the training ones give another F_0, which is reported."""
    X, y = make_frame(8, 300, 3, "binary")
    w = np.random.default_rng(0).uniform(0.2, 3.0, size=300)
    model = model_for("binary").fit(X, y, sample_weight=w)
    ens = to_ensemble(model, X, y)  # weights forgotten
    assert any("initial score" in s for s in ens.breaking_settings)
    with pytest.raises(LeafModelError):
        ens.check_leaf_model(ens.leaf_ids(X), class_index(ens, y))


# ------------------------------------------------------------------ inputs and wrappers
def test_booster_input():
    X, y = make_frame(9, 200, 3, "multiclass", nan_frac=0.0)
    Xn = X.drop(columns="cat").to_numpy()
    params = {
        "objective": "multiclass",
        "num_class": 3,
        "num_leaves": 6,
        "learning_rate": 0.3,
        "verbose": -1,
        "num_threads": 1,
    }
    booster = lgb.train(params, lgb.Dataset(Xn, y), num_boost_round=5)
    ens, _ = assert_newton(booster, Xn, y)
    assert ens.classes is None and ens.model_name == "Booster"
    assert ens.n_features_in == Xn.shape[1]
    assert ens.multiclass_factor == pytest.approx(1.5)


def test_binary_booster_with_numeric_labels():
    X, y = make_frame(10, 200, 3, "binary", nan_frac=0.0)
    y01 = (y == "yes").astype(float)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_threads": 1},
        lgb.Dataset(X, y01),
        num_boost_round=4,
    )
    assert_newton(booster, X, y01)


def test_pipeline_and_frozen_estimator():
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_frame(11, 200, 3, "binary", nan_frac=0.0)
    Xn = X.drop(columns="cat").to_numpy()
    pipe = make_pipeline(StandardScaler(), model_for("binary")).fit(Xn, y)
    for wrapped in (pipe, FrozenEstimator(pipe)):
        ens = skinfluence.to_ensemble(wrapped, Xn, y)
        leaves = ens.check_reconstruction(Xn)
        assert ens.check_leaf_model(leaves, class_index(ens, y)) == 0.0
        np.testing.assert_array_equal(ens.classes, ["no", "yes"])
    frozen = FrozenEstimator(model_for("regression").fit(Xn, y == "yes"))
    ens = skinfluence.to_ensemble(frozen, Xn, (y == "yes").astype(float))
    ens.check_reconstruction(Xn)


def test_numpy_pandas_polars_give_identical_leaves():
    pl = pytest.importorskip("polars")
    X, y = make_frame(12, 200, 3, "regression")
    ens = to_ensemble(model_for("regression").fit(X, y), X, y)
    by_pandas = ens.check_reconstruction(X)
    np.testing.assert_array_equal(ens.check_reconstruction(pl.from_pandas(X)), by_pandas)

    Xn = X.drop(columns="cat").to_numpy()
    ens = to_ensemble(model_for("regression").fit(Xn, y), Xn, y)
    frame = pd.DataFrame(Xn, columns=["a", "b", "c"])
    leaves = ens.check_reconstruction(Xn)
    np.testing.assert_array_equal(ens.leaf_ids(frame), leaves)
    np.testing.assert_array_equal(ens.leaf_ids(pl.from_numpy(Xn)), leaves)


def test_unfitted_model_raises_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        skinfluence.to_ensemble(lgb.LGBMClassifier())
    with pytest.raises(NotFittedError):
        skinfluence.to_ensemble(lgb.LGBMRegressor())


@pytest.mark.parametrize(
    "params,match",
    [
        ({"objective": "mape"}, "mape"),  # huber is supported (test_objectives_more)
        ({"objective": "quantile"}, "quantile"),
        ({"objective": "regression_l1"}, "regression_l1"),
        ({"boosting_type": "rf", "subsample": 0.5, "subsample_freq": 1}, "rf"),
        ({"linear_tree": True}, "linear_tree"),
    ],
)
def test_unsupported_regressors(params, match):
    X, y = make_frame(13, 150, 3, "regression", nan_frac=0.0)
    model = model_for("regression", **params).fit(X.drop(columns="cat"), y)
    with pytest.raises(UnsupportedModelError, match=match):
        to_ensemble(model)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"objective": "multiclassova"}, "multiclassova"),
        ({"objective": "binary", "sigmoid": 2.0}, "sigmoid"),
    ],
)
def test_unsupported_classifiers(params, match):
    X, y = make_frame(14, 150, 3, "multiclass")
    if params["objective"] == "binary":
        y = y > 0
    model = model_for("multiclass", **params).fit(X, y)
    with pytest.raises(UnsupportedModelError, match=match) as info:
        to_ensemble(model)
    assert "Supported objectives" in str(info.value)


def test_custom_objective_is_refused():
    X, y = make_frame(15, 150, 3, "regression")

    def l2(y_true, y_pred):
        return y_pred - y_true, np.ones_like(y_pred)

    model = model_for("regression", objective=l2).fit(X, y)
    with pytest.raises(UnsupportedModelError, match="custom"):
        to_ensemble(model)


def test_inputs_and_model_are_not_modified():
    X, y = make_frame(16, 200, 3, "binary")
    X_before = X.copy(deep=True)
    model = model_for("binary").fit(X, y)
    text, params = model.booster_.model_to_string(), model.get_params()
    ens = to_ensemble(model, X, y)
    ens.check_reconstruction(X)
    ens.check_leaf_model(ens.leaf_ids(X), class_index(ens, y))
    pd.testing.assert_frame_equal(X, X_before)
    assert model.booster_.model_to_string() == text
    assert model.get_params() == params


def test_count_check_and_recorded_rows():
    X, y = make_frame(17, 250, 3, "multiclass")
    ens = to_ensemble(model_for("multiclass").fit(X, y), X, y)
    assert ens.leaf_stats_kind == "count"
    assert ens.training_rows_recorded() == 250
    assert ens.check_counts(ens.leaf_ids(X)) is None
    msg = ens.check_counts(ens.leaf_ids(X.iloc[:100]))
    assert isinstance(msg, str) and "100 rows" in msg


def test_bagging_is_caught_by_the_count_check():
    X, y = make_frame(18, 250, 3, "regression")
    model = model_for("regression", subsample=0.6, subsample_freq=1).fit(X, y)
    ens = to_ensemble(model, X, y)
    assert ens.check_counts(ens.check_reconstruction(X)) is not None


# ------------------------------------------------------------------ bundled data sets
@pytest.mark.parametrize("name", ["concrete", "credit", "spam", "hpc"])
def test_bundled_datasets(name):
    from skinfluence.datasets import load_dataset

    X, y, task = load_dataset(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = model_for(task, n_estimators=10, num_leaves=16, min_child_samples=20)
        model.fit(X, y)
    X_before = copy.deepcopy(X)
    ens, leaves = assert_newton(model, X, y)
    assert ens.check_counts(leaves) is None
    assert ens.training_rows_recorded() == len(X)
    pd.testing.assert_frame_equal(X, X_before)
