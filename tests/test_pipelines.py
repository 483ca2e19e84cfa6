"""Models inside scikit-learn pipelines (issue 15, items 5 and 6).

The explainer of a ``Pipeline`` receives what the pipeline receives: its number of
columns, its feature names, its dtypes (strings into a ``ColumnTransformer``). The
pipeline's steps may change the number of columns. Oracle: the same method explaining
the pipeline's final model on the transformed rows, which must give identical results.
An explainer of a nested pipeline pickles (pickle, joblib, process-based ``n_jobs``).
"""

import pickle

import joblib
import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.feature_selection import SelectKBest
from sklearn.model_selection import cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import skinfluence
from skinfluence import TREX, BoostIn, LeafInfluence

from .models import make_data, make_model

METHODS = {"boostin": BoostIn, "trex": TREX, "leafinfluence": LeafInfluence}
N_TRAIN, N_QUERY = 80, 7


def _numeric_data():
    X, y = make_data("binary", n=N_TRAIN + N_QUERY, d=6, seed=3)
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


def _object_data():
    """A string column and two numeric ones, as one numpy object array."""
    X, y = make_data("binary", n=N_TRAIN + N_QUERY, d=3, seed=4)
    colour = np.where(X[:, 0] > 0.3, "red", np.where(X[:, 0] < -0.3, "blue", "green"))
    Xo = np.empty(X.shape, dtype=object)
    Xo[:, 0] = colour
    Xo[:, 1:] = X[:, 1:]
    return Xo[:N_TRAIN], y[:N_TRAIN], Xo[N_TRAIN:], y[N_TRAIN:]


def _column_transformer(column):
    return ColumnTransformer(
        [("onehot", OneHotEncoder(sparse_output=False), [column])], remainder="passthrough"
    )


def _model():
    return make_model("sklearn_gb", "binary")


def _build(case):
    """(pipeline fitted on the training rows, X, y, X_query, y_query)."""
    if case == "select_k_best":
        X, y, Xq, yq = _numeric_data()
        pipe = make_pipeline(StandardScaler(), SelectKBest(k=3), _model())
    elif case == "pca":
        X, y, Xq, yq = _numeric_data()
        pipe = make_pipeline(PCA(n_components=2), _model())
    elif case == "nested":
        X, y, Xq, yq = _numeric_data()
        inner = Pipeline([("scale", StandardScaler()), ("select", SelectKBest(k=3))])
        pipe = Pipeline([("prep", inner), ("model", _model())])
    elif case == "onehot_numpy":
        X, y, Xq, yq = _object_data()
        pipe = make_pipeline(_column_transformer(0), _model())
    elif case == "onehot_pandas":
        pd = pytest.importorskip("pandas")
        Xo, y, Xoq, yq = _object_data()
        X, Xq = (pd.DataFrame(a, columns=["colour", "a", "b"]) for a in (Xo, Xoq))
        X[["a", "b"]] = X[["a", "b"]].astype(float)
        Xq[["a", "b"]] = Xq[["a", "b"]].astype(float)
        pipe = make_pipeline(_column_transformer("colour"), _model())
    else:  # pragma: no cover
        raise ValueError(case)
    return pipe.fit(X, y), X, y, Xq, yq


CASES = ("select_k_best", "pca", "nested", "onehot_numpy", "onehot_pandas")
_FITTED = {}


def _fitted(case):
    """Pipelines trained once per module."""
    if case not in _FITTED:
        _FITTED[case] = _build(case)
    return _FITTED[case]


def _pipeline_and_oracle(case, method):
    """The explainer of the pipeline and that of its final model on transformed rows."""
    pipe, X, y, Xq, yq = _fitted(case)
    explainer = METHODS[method](pipe).fit(X, y)
    oracle = METHODS[method](pipe[-1]).fit(pipe[:-1].transform(X), y)
    return explainer, oracle, pipe, X, y, Xq, yq


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("case", CASES)
def test_pipeline_is_explained_as_its_final_model_on_transformed_rows(case, method):
    explainer, oracle, pipe, X, y, Xq, yq = _pipeline_and_oracle(case, method)
    Zq = pipe[:-1].transform(Xq)
    np.testing.assert_array_equal(explainer.transform(Xq, yq), oracle.transform(Zq, yq))
    np.testing.assert_array_equal(explainer.transform(Xq), oracle.transform(Zq))
    for got, want in zip(explainer.top_k(Xq, yq, k=5), oracle.top_k(Zq, yq, k=5)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(explainer.self_influence(), oracle.self_influence())
    np.testing.assert_array_equal(
        explainer.global_influence(Xq, yq), oracle.global_influence(Zq, yq)
    )


@pytest.mark.parametrize("case", CASES)
def test_explainer_describes_the_pipeline_input(case):
    pipe, X, y, _, _ = _fitted(case)
    explainer = BoostIn(pipe).fit(X, y)
    assert explainer.n_features_in_ == X.shape[1] == pipe.n_features_in_
    if hasattr(X, "columns"):
        np.testing.assert_array_equal(explainer.feature_names_in_, pipe.feature_names_in_)
    else:
        assert not hasattr(explainer, "feature_names_in_")


def test_unfitted_pipeline_is_fitted_on_the_raw_rows():
    pipe, X, y, Xq, yq = _fitted("select_k_best")
    unfitted = make_pipeline(StandardScaler(), SelectKBest(k=3), _model())
    explainer = BoostIn(unfitted).fit(X, y)
    assert explainer.estimator_ is not unfitted
    given = BoostIn(pipe).fit(X, y)
    np.testing.assert_array_equal(explainer.transform(Xq, yq), given.transform(Xq, yq))


@pytest.mark.parametrize("case", ["select_k_best", "nested", "onehot_numpy"])
def test_wrong_number_of_columns_names_the_pipeline_input(case):
    pipe, X, y, Xq, yq = _fitted(case)
    d = X.shape[1]
    with pytest.raises(ValueError, match=f"X has 2 features but the pipeline takes {d}"):
        BoostIn(pipe).fit(X[:, :2], y)
    explainer = BoostIn(pipe).fit(X, y)
    with pytest.raises(ValueError, match=f"X has 2 features, but BoostIn is expecting {d}"):
        explainer.transform(Xq[:, :2], yq)


def test_strings_still_refused_without_a_pipeline():
    pipe, X, y, _, _ = _fitted("onehot_numpy")
    model = _model().fit(pipe[:-1].transform(X), y)
    with pytest.raises(ValueError, match="could not convert string to float"):
        BoostIn(model).fit(X, y)
    n = model.n_features_in_
    with pytest.raises(ValueError, match=f"X has 2 features but the model was trained on {n}"):
        BoostIn(model).fit(X[:, 1:].astype(float), y)


def test_object_array_reaches_the_pipeline_unconverted():
    pipe, X, y, Xq, yq = _fitted("onehot_numpy")
    explainer = BoostIn(pipe).fit(X, y)
    with pytest.raises(ValueError, match="unknown categor"):
        # a category the encoder never saw: the pipeline's own error, not a float cast
        bad = Xq.copy()
        bad[0, 0] = "purple"
        explainer.transform(bad, yq)


@pytest.mark.parametrize("name", ["LeafRefit", "LOO", "TreeSim", "LeafSim", "InputSim"])
def test_other_methods_take_strings_into_the_pipeline(name):
    pipe, X, y, Xq, yq = _fitted("onehot_numpy")
    cls = getattr(skinfluence, name)
    explainer = cls(pipe).fit(X, y)
    # LOO refits the whole pipeline: every category stays in every refit's rows, so
    # the encoding and hence the refit models equal those of the final model alone
    oracle = cls(pipe[-1]).fit(pipe[:-1].transform(X), y)
    Zq = pipe[:-1].transform(Xq)
    np.testing.assert_array_equal(explainer.transform(Xq, yq), oracle.transform(Zq, yq))


@pytest.mark.parametrize("name", ["RandomInfluence", "TargetInfluence", "MinorityInfluence"])
def test_baselines_key_rows_of_strings(name):
    pipe, X, y, Xq, yq = _fitted("onehot_numpy")
    explainer = getattr(skinfluence, name)(pipe, random_state=0).fit(X, y)
    M = explainer.transform(X[:6], y[:6])
    np.testing.assert_array_equal(explainer.transform(X[:6], y[:6]), M)
    # the draws follow row contents: the training rows as queries meet themselves
    np.testing.assert_array_equal(np.diag(M[:, :6]), explainer.self_influence()[:6])
    assert explainer.transform(Xq, yq).shape == (len(Xq), N_TRAIN)


def test_catboost_categorical_numpy_object_array_matches_dataframe():
    cb = pytest.importorskip("catboost")
    pd = pytest.importorskip("pandas")
    _, X, y, Xq, yq = _fitted("onehot_numpy")
    assert cb  # the factory's CatBoost model, with the string column one-hot encoded
    model = make_model("catboost", "binary", cat_features=[0], one_hot_max_size=4).fit(X, y)
    explainer = BoostIn(model).fit(X, y)
    frame = BoostIn(model).fit(pd.DataFrame(X), y)
    np.testing.assert_array_equal(
        explainer.transform(Xq, yq), frame.transform(pd.DataFrame(Xq), yq)
    )


# ------------------------------------------------------------------------- pickling
@pytest.fixture(scope="module")
def nested_explainers():
    pipe, X, y, Xq, yq = _fitted("nested")
    return {m: METHODS[m](pipe).fit(X, y) for m in ("boostin", "trex")}, Xq, yq


@pytest.mark.parametrize("method", ["boostin", "trex"])
def test_nested_pipeline_explainer_pickles(nested_explainers, method, tmp_path):
    explainers, Xq, yq = nested_explainers
    explainer = explainers[method]
    want = explainer.transform(Xq, yq)
    restored = pickle.loads(pickle.dumps(explainer))
    np.testing.assert_array_equal(restored.transform(Xq, yq), want)
    joblib.dump(explainer, tmp_path / "explainer.joblib")
    loaded = joblib.load(tmp_path / "explainer.joblib")
    np.testing.assert_array_equal(loaded.transform(Xq, yq), want)
    np.testing.assert_array_equal(loaded.self_influence(), explainer.self_influence())


def test_nested_pipeline_explainer_in_worker_processes(nested_explainers):
    explainers, Xq, yq = nested_explainers
    explainer = explainers["boostin"]
    # process-based workers receive the fitted explainer pickled
    parts = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(explainer.transform)(Xq[i : i + 4], yq[i : i + 4]) for i in (0, 4)
    )
    np.testing.assert_array_equal(np.vstack(parts), explainer.transform(Xq, yq))


def test_nested_pipeline_in_cross_validate_with_process_workers():
    _, X, y, _, _ = _fitted("nested")
    inner = Pipeline([("scale", StandardScaler()), ("select", SelectKBest(k=3))])
    explainer = BoostIn(Pipeline([("prep", inner), ("model", _model())]))
    res = cross_validate(
        explainer,
        X,
        y,
        cv=2,
        n_jobs=2,
        return_estimator=True,
        scoring=lambda est, Xv, yv: float(est.global_influence(Xv, yv).sum()),
    )
    assert np.all(np.isfinite(res["test_score"]))
    for fold in res["estimator"]:  # fitted explainers pickled back from the workers
        assert fold.n_features_in_ == X.shape[1]
        assert fold.transform(X[:2], y[:2]).shape == (2, fold.n_train_)
