"""The estimator contract shared by every influence method (DESIGN.md section 1)."""

import importlib.util

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skinfluence import BoostIn, LeafModelError, TrainingDataMismatchError

from .models import make_data, make_model


@pytest.fixture(scope="module")
def binary():
    X, y = make_data("binary", n=100, seed=0)
    model = make_model("lightgbm", "binary").fit(X, y)
    return X, y, model


def test_unfitted_model_is_cloned_and_fitted(binary):
    X, y, _ = binary
    template = make_model("sklearn_hgb", "binary")
    exp = BoostIn(template).fit(X, y)
    assert exp.estimator_ is not template
    assert not hasattr(template, "_predictors")  # the user's object is untouched
    assert exp.transform(X[:3], y[:3]).shape == (3, len(X))


def test_fitted_model_is_used_as_given(binary):
    X, y, model = binary
    exp = BoostIn(model).fit(X, y)
    assert exp.estimator_ is model
    frozen = BoostIn(FrozenEstimator(model)).fit(X, y)
    np.testing.assert_array_equal(frozen.transform(X[:4], y[:4]), exp.transform(X[:4], y[:4]))


def test_pipeline_is_explained_with_its_preprocessing():
    X, y = make_data("squared_error", n=100, seed=0)
    pipe = make_pipeline(StandardScaler(), make_model("sklearn_gb", "squared_error"))
    exp = BoostIn(pipe).fit(X, y)
    direct = BoostIn(exp.estimator_[-1]).fit(exp.estimator_[0].transform(X), y)
    np.testing.assert_allclose(
        exp.transform(X[:5], y[:5]), direct.transform(exp.estimator_[0].transform(X[:5]), y[:5])
    )


def test_clone_in_cross_validate_and_grid_search(binary):
    X, y, _ = binary
    lgb = pytest.importorskip("lightgbm")
    # every fold fits its own model and explainer; the influence matrix has one
    # column per training row, so its width differs per fold: use a fixed-size summary
    exp = BoostIn(lgb.LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1))
    cloned = clone(exp)
    assert cloned.get_params()["estimator"].get_params()["n_estimators"] == 5
    res = cross_validate(
        exp,
        X,
        y,
        cv=3,
        scoring=lambda est, Xv, yv: float(est.global_influence(Xv, yv).sum()),
    )
    assert np.all(np.isfinite(res["test_score"]))
    gs = GridSearchCV(
        exp,
        {"estimator__n_estimators": [3, 6]},
        cv=2,
        scoring=lambda est, Xv, yv: -float(np.abs(est.transform(Xv, yv)).sum()),
    )
    gs.fit(X, y)
    assert gs.best_estimator_.estimator_.n_estimators in (3, 6)


def test_pandas_and_polars_in_and_out(binary):
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    X, y, model = binary
    cols = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols, index=[f"row{i}" for i in range(len(X))])
    m2 = make_model("lightgbm", "binary").fit(df, y)
    exp = BoostIn(m2).fit(df, y)
    names = exp.get_feature_names_out()
    assert list(names[:2]) == ["row0", "row1"]
    out = exp.set_output(transform="pandas").transform(df.iloc[:3], y[:3])
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)
    assert list(out.index) == ["row0", "row1", "row2"]
    arr = BoostIn(m2).fit(df, y).transform(df.iloc[:3], y[:3])
    np.testing.assert_allclose(out.to_numpy(), arr)
    # polars in, polars out
    exp_np = BoostIn(model).fit(X, y)
    out_pl = exp_np.set_output(transform="polars").transform(pl.DataFrame(X[:3]), y[:3])
    assert isinstance(out_pl, pl.DataFrame) and out_pl.shape == (3, len(X))
    assert out_pl.columns[0] == "boostin0"


def test_errors_are_clear(binary):
    X, y, model = binary
    with pytest.raises(NotFittedError):
        BoostIn(model).transform(X)
    exp = BoostIn(model).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        exp.transform(X[:, :2])
    with pytest.raises(ValueError, match="entries but X has"):
        exp.transform(X[:5], y[:4])
    with pytest.raises(ValueError, match="never saw"):
        exp.transform(X[:2], np.array([0, 7]))
    with pytest.raises(ValueError, match="requires y"):
        BoostIn(model).fit(X, None)
    with pytest.raises(ValueError, match="derivative"):
        BoostIn(model, derivative="nope").fit(X, y)
    with pytest.raises(ValueError, match="kind"):
        exp.top_k(X[:2], kind="best")
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="random forest"):
        BoostIn(forest).fit(X, y)
    with pytest.raises(TypeError, match="not supported"):
        from sklearn.linear_model import LogisticRegression

        BoostIn(LogisticRegression().fit(X, y)).fit(X, y)
    # a training set that is not the model's
    with pytest.raises((TrainingDataMismatchError, LeafModelError)):
        BoostIn(model).fit(X[:80], y[:80])


def test_inputs_are_not_modified(binary):
    X, y, model = binary
    Xc, yc = X.copy(), y.copy()
    params = model.get_params()
    exp = BoostIn(model).fit(X, y)
    exp.transform(X[:5], y[:5])
    exp.top_k(X[:5])
    np.testing.assert_array_equal(X, Xc)
    np.testing.assert_array_equal(y, yc)
    assert model.get_params() == params


def test_string_labels_and_label_free_queries():
    X, y = make_data("multiclass", n=120, seed=0)
    labels = np.array(["a", "b", "c"])[y]
    model = make_model("sklearn_hgb", "multiclass").fit(X, labels)
    exp = BoostIn(model).fit(X, labels)
    assert list(exp.classes_) == ["a", "b", "c"]
    np.testing.assert_allclose(exp.transform(X[:4]), exp.transform(X[:4], model.predict(X[:4])))
    with pytest.raises(ValueError, match="never saw"):
        exp.transform(X[:1], ["z"])


def test_progress_bar_runs(binary, capsys):
    pytest.importorskip("tqdm")
    X, y, model = binary
    exp = BoostIn(model, verbose=1, chunk_memory_mb=0.001).fit(X, y)
    np.testing.assert_array_equal(
        exp.transform(X[:20], y[:20]), BoostIn(model).fit(X, y).transform(X[:20], y[:20])
    )


def test_direct_transform_runs_one_block_unless_verbose(binary, monkeypatch):
    """BoostIn writes into the output: the block budget bounds nothing there, so the
    queries run as one block (the progress bar still gets blocks)."""
    X, y, model = binary
    calls = []
    original = BoostIn._influence_block

    def counting(self, q, context, out=None):
        calls.append(len(q["leaves"]))
        return original(self, q, context, out=out)

    monkeypatch.setattr(BoostIn, "_influence_block", counting)
    whole = BoostIn(model, chunk_memory_mb=0.001).fit(X, y).transform(X[:20], y[:20])
    assert calls == [20]
    calls.clear()
    if importlib.util.find_spec("tqdm") is not None:
        paced = BoostIn(model, chunk_memory_mb=0.001, verbose=1).fit(X, y)
        np.testing.assert_array_equal(paced.transform(X[:20], y[:20]), whole)
        assert len(calls) > 1 and sum(calls) == 20
        calls.clear()
    # float32 output: blocks are computed in float64 and copied, under the budget
    BoostIn(model, chunk_memory_mb=0.001, dtype=np.float32).fit(X, y).transform(X[:20])
    assert len(calls) > 1 and sum(calls) == 20


def test_a_missing_hook_is_named(binary):
    """A subclass that leaves out a hook of the contract gets an error naming it."""
    from skinfluence.base import BaseInfluence

    class Incomplete(BaseInfluence):
        def _fit_influence(self, X, leaves, y_enc, sample_weight):
            pass

        def _query_arrays(self, X, leaves, y_enc, objective):
            return {"leaves": leaves}

    X, y, model = binary
    exp = Incomplete(model).fit(X, y)
    with pytest.raises(NotImplementedError, match="Incomplete .* hook _influence_block"):
        exp.transform(X[:3])
    with pytest.raises(NotImplementedError, match="hook _self_influence"):
        exp.self_influence()


@pytest.mark.parametrize("lib", ["sklearn_gb", "sklearn_hgb", "lightgbm", "xgboost", "catboost"])
def test_fitted_explainer_pickles(lib):
    import pickle

    X, y = make_data("binary", n=80, seed=4)
    model = make_model(lib, "binary").fit(X, y)
    exp = BoostIn(model).fit(X, y)
    back = pickle.loads(pickle.dumps(exp))
    np.testing.assert_array_equal(back.transform(X[:5], y[:5]), exp.transform(X[:5], y[:5]))


def test_fitted_state_of_another_layout_is_refused(binary):
    """A fitted explainer saved with another fitted-state layout (an older version) is
    refused when loaded, with a message that says what to do; unfitted ones load."""
    import pickle

    X, y, model = binary
    state = BoostIn(model).fit(X, y).__getstate__()
    for fmt in (None, BoostIn._STATE_FORMAT - 1):
        old = dict(state, _skinfluence_state_format=fmt)
        if fmt is None:
            del old["_skinfluence_state_format"]
        with pytest.raises(ValueError, match="fit a new explainer"):
            BoostIn.__new__(BoostIn).__setstate__(old)
    unfitted = pickle.loads(pickle.dumps(BoostIn(model, n_jobs=1)))
    assert unfitted.get_params()["n_jobs"] == 1


@pytest.mark.parametrize("lib", ["sklearn_hgb", "lightgbm", "xgboost", "catboost"])
def test_real_data_with_categoricals_and_missing_values(lib):
    """The credit data (string categoricals, NaN) as the user has it, in every library."""
    pytest.importorskip("pandas")
    from skinfluence.datasets import load_dataset

    X, y, _ = load_dataset("credit")
    X, y = X.iloc[:600].reset_index(drop=True), y[:600]
    assert X.isna().to_numpy().any()
    cats = [c for c in X.columns if str(X[c].dtype) == "category"]
    if lib == "sklearn_hgb":
        model = make_model(lib, "binary", categorical_features="from_dtype").fit(X, y)
    elif lib == "xgboost":
        model = make_model(lib, "binary", enable_categorical=True, tree_method="hist")
        model.fit(X, np.searchsorted(np.unique(y), y))
        y = np.searchsorted(np.unique(y), y)
    elif lib == "catboost":
        X = X.copy()
        for c in cats:  # CatBoost takes categories as strings, missing ones included
            X[c] = X[c].astype(object).where(X[c].notna(), "missing").astype(str)
        model = make_model(lib, "binary", one_hot_max_size=255).fit(X, y, cat_features=cats)
    else:
        model = make_model(lib, "binary").fit(X, y)
    exp = BoostIn(model).fit(X, y)
    M = exp.transform(X.iloc[:20], y[:20])
    assert M.shape == (20, len(X)) and np.isfinite(M).all()
    np.testing.assert_allclose(
        np.diag(exp.transform(X, y)), exp.self_influence(), rtol=1e-9, atol=1e-12
    )
    assert list(exp.get_feature_names_out()[:2]) == ["0", "1"]
