"""The training-row check of ``fit`` (issue 15, item 7): every method refuses rows that
do not reproduce the per-leaf statistics the library recorded of the model's training
rows, names what differs, and ``config_context(check_training_rows="warn")`` turns the
refusal into a warning."""

import warnings

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

import skinfluence
from skinfluence import (
    LOO,
    TREX,
    BoostIn,
    InputSim,
    LeafInfluence,
    LeafModelError,
    LeafSim,
    TargetInfluence,
    TrainingDataMismatchError,
    TreeSim,
)
from tests.models import make_data, make_model

N = 120
SUBSET = 108  # 90% of the rows
LIBS = ("sklearn_gb", "sklearn_hgb", "rf", "lightgbm", "xgboost", "catboost")
METHODS = (BoostIn, LeafInfluence, TREX, TreeSim, LeafSim, InputSim, LOO, TargetInfluence)
GRADIENT = (BoostIn, LeafInfluence)
# the query-side work of these is cheap enough to run after the escape hatch
LIGHT = (TREX, TreeSim, LeafSim, InputSim, TargetInfluence)

_cache = {}


def _data():
    X, y = make_data("binary", n=N + 30, seed=3)
    return X[:N], y[:N], X[N:], y[N:]


def _model(lib, weighted=False):
    """A tiny binary model of ``lib`` trained once per module on the first N rows."""
    key = (lib, weighted)
    if key not in _cache:
        X, y, _, _ = _data()
        if lib == "rf":
            model = RandomForestClassifier(
                n_estimators=3, max_depth=3, bootstrap=False, random_state=0
            )
        else:
            model = make_model(lib, "binary", n_estimators=5)
        w = np.random.default_rng(0).uniform(0.5, 2.0, N) if weighted else None
        _cache[key] = (model.fit(X, y, sample_weight=w), w)
    return _cache[key]


def _pairs(methods=METHODS):
    for lib in LIBS:
        for method in methods:
            if lib == "rf" and method in GRADIENT:
                continue  # refused for forests before any row check
            yield pytest.param(lib, method, id=f"{lib}-{method.__name__}")


def _no_row_warning(record):
    return not [w for w in record if "check_training_rows" in str(w.message)]


@pytest.mark.parametrize(("lib", "method"), list(_pairs()))
def test_subset_of_the_rows_is_refused(lib, method):
    model, _ = _model(lib)
    X, y, _, _ = _data()
    with pytest.raises(TrainingDataMismatchError) as info:
        method(model).fit(X[:SUBSET], y[:SUBSET])
    message = str(info.value)
    assert f"trained on {N} rows but fit received {SUBSET}" in message
    assert "trees" in message and "check_training_rows='warn'" in message


@pytest.mark.parametrize("lib", LIBS)
def test_other_rows_of_the_same_count_are_refused(lib):
    """Same number of rows, other rows: the trees and leaves that differ are named."""
    model, _ = _model(lib)
    X, y, Xo, yo = _data()
    Xb, yb = np.vstack([X[20:], Xo[:20]]), np.concatenate([y[20:], yo[:20]])
    with pytest.raises(TrainingDataMismatchError, match="are not its training rows") as info:
        TREX(model).fit(Xb, yb)
    assert "stored" in str(info.value) and "routed" in str(info.value)


@pytest.mark.parametrize("lib", LIBS)
def test_exact_rows_pass_in_any_order(lib):
    """The model's rows pass; rows and labels shuffled together are the same training
    set (the statistics cannot tell, and the output columns follow the rows given)."""
    model, _ = _model(lib)
    X, y, Xq, yq = _data()
    perm = np.random.default_rng(1).permutation(N)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for method in (TREX, TreeSim, LeafSim) + (() if lib == "rf" else (BoostIn,)):
            method(model).fit(X, y)
        a = TreeSim(model).fit(X, y).transform(Xq[:2], yq[:2])
        b = TreeSim(model).fit(X[perm], y[perm]).transform(Xq[:2], yq[:2])
    assert _no_row_warning(record)
    np.testing.assert_array_equal(a[:, perm], b)


@pytest.mark.parametrize(("lib", "method"), list(_pairs(LIGHT + GRADIENT)))
def test_escape_hatch_warns_and_explains(lib, method):
    model, _ = _model(lib)
    X, y, Xq, yq = _data()
    kwargs = {"check_leaf_model": "warn"} if method in GRADIENT else {}
    with skinfluence.config_context(check_training_rows="warn"):
        assert skinfluence.get_config()["check_training_rows"] == "warn"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the leaf-model warnings
            with pytest.warns(UserWarning, match=f"trained on {N} rows but fit received"):
                explainer = method(model, **kwargs).fit(X[:SUBSET], y[:SUBSET])
    assert skinfluence.get_config()["check_training_rows"] == "raise"
    out = explainer.transform(Xq[:3], yq[:3])
    assert out.shape == (3, SUBSET) and np.isfinite(out).all()


def test_gradient_methods_need_their_own_hatch_too():
    """With the row check relaxed, the leaf-model check still guards the gradient
    methods: the leaves are no Newton steps on other rows."""
    model, _ = _model("lightgbm")
    X, y, _, _ = _data()
    with skinfluence.config_context(check_training_rows="warn"):
        with pytest.warns(UserWarning, match="rows but fit received"):
            with pytest.raises(LeafModelError):
                BoostIn(model).fit(X[:SUBSET], y[:SUBSET])


def test_lightgbm_message_names_the_rows_before_the_initial_score():
    """LightGBM recomputes its initial score from the labels given: the message for a
    subset speaks of the rows first (the score is only listed as a consequence)."""
    model, _ = _model("lightgbm")
    X, y, _, _ = _data()
    for method in (BoostIn, LeafInfluence, TREX):
        with pytest.raises(TrainingDataMismatchError) as info:
            method(model).fit(X[:SUBSET], y[:SUBSET])
        message = str(info.value)
        assert message.index("rows but fit received") < message.find("initial score") or (
            "initial score" not in message
        )


@pytest.mark.parametrize("lib", ["xgboost", "catboost", "sklearn_gb", "rf"])
def test_sample_weights_are_checked_where_stored(lib):
    """XGBoost's cover (hessian sums), CatBoost's leaf weights and scikit-learn's
    ``weighted_n_node_samples`` record the sample weights: the right rows without (or
    with other) weights are refused."""
    model, w = _model(lib, weighted=True)
    X, y, _, _ = _data()
    TREX(model).fit(X, y, sample_weight=w)
    sklearn = lib in ("sklearn_gb", "rf")
    with pytest.raises(TrainingDataMismatchError, match="sample weight") as info:
        TREX(model).fit(X, y)
    assert ("but not its sample weights" if sklearn else "total sample weight") in str(info.value)
    other = w[::-1].copy()  # same total, other rows carry it
    with pytest.raises(TrainingDataMismatchError, match="not its"):
        TREX(model).fit(X, y, sample_weight=other)


@pytest.mark.parametrize("lib", ["sklearn_hgb", "lightgbm"])
def test_counts_do_not_see_sample_weights(lib):
    """Row counts are all LightGBM and HistGradientBoosting record: weights pass."""
    model, w = _model(lib, weighted=True)
    X, y, _, _ = _data()
    TREX(model).fit(X, y, sample_weight=w)
    TREX(model).fit(X, y)


def test_bootstrap_forest_has_nothing_to_check():
    X, y, _, _ = _data()
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    assert skinfluence.to_ensemble(forest).leaf_stats is None
    assert TREX(forest).fit(X[:SUBSET], y[:SUBSET]).n_train_ == SUBSET


def test_model_fitted_by_the_explainer_is_not_checked():
    X, y, _, _ = _data()
    explainer = TREX(make_model("lightgbm", "binary", n_estimators=3)).fit(X[:SUBSET], y[:SUBSET])
    assert explainer.n_train_ == SUBSET


def test_config_is_validated_and_restored():
    with pytest.raises(ValueError, match="check_training_rows"):
        skinfluence.set_config(check_training_rows="ignore")
    with pytest.raises(ValueError, match="check_training_rows"):
        with skinfluence.config_context(check_training_rows=False):
            pass
    assert skinfluence.get_config() == {
        "check_training_rows": "raise",
        "reconstruction_check": "covering",
    }
    skinfluence.set_config(check_training_rows="warn")
    try:
        assert skinfluence.get_config()["check_training_rows"] == "warn"
    finally:
        skinfluence.set_config(check_training_rows="raise")


@pytest.mark.parametrize("lib", LIBS)
def test_zero_weight_rows_pass(lib):
    """scikit-learn's trees drop rows of weight 0 before counting: not a mismatch."""
    X, y, _, _ = _data()
    w = np.ones(N)
    w[:10] = 0.0
    model, _ = _model(lib)
    fitted = type(model)(**model.get_params()).fit(X, y, sample_weight=w)
    TREX(fitted).fit(X, y, sample_weight=w)
    with pytest.raises(TrainingDataMismatchError):
        TREX(fitted).fit(X[:SUBSET], y[:SUBSET], sample_weight=w[:SUBSET])


@pytest.mark.parametrize("lib", ["lightgbm", "xgboost", "catboost", "sklearn_hgb"])
@pytest.mark.parametrize("objective", ["squared_error", "multiclass"])
def test_other_objectives(lib, objective):
    X, y = make_data(objective, n=N, seed=5)
    model = make_model(lib, objective, n_estimators=4).fit(X, y)
    TREX(model).fit(X, y)
    with pytest.raises(TrainingDataMismatchError, match=f"trained on {N} rows but fit"):
        TREX(model).fit(X[:SUBSET], y[:SUBSET])
