"""The public hypothesis strategies of ``skinfluence.testing``."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import skinfluence
from skinfluence.testing import make_data, make_model
from skinfluence.testing import strategies as sfs


def test_importing_skinfluence_does_not_import_hypothesis():
    code = (
        "import sys, skinfluence, skinfluence.cleaning, skinfluence.testing, skinfluence.__main__;"
        "skinfluence.testing.make_model('sklearn_gb', 'binary');"
        "print('hypothesis' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_testing_exports_the_strategies_on_first_use():
    import skinfluence.testing as testing

    assert testing.fitted_models is sfs.fitted_models and testing.Dataset is sfs.Dataset
    assert sfs.available_libraries is testing.available_libraries
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        testing.nope


def test_make_model_errors_are_clear(monkeypatch):
    from skinfluence.testing import make_model

    with pytest.raises(ValueError, match="unknown library 'sklearn_foo'"):
        make_model("sklearn_foo", "binary")
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        make_model("sklearn_gb", "ranking")
    with pytest.raises(ValueError, match="sklearn_rf cannot take categorical"):
        make_model("sklearn_rf", "binary", categorical=True)
    monkeypatch.setitem(sys.modules, "catboost", None)  # as if not installed
    with pytest.raises(ImportError, match=r"needs the catboost package \(pip install catboost\)"):
        make_model("catboost", "binary")


def test_available_libraries_lists_installed_ones():
    libs = sfs.available_libraries()
    assert {"sklearn_gb", "sklearn_hgb", "sklearn_rf", "sklearn_et"} <= set(libs)
    for lib in ("lightgbm", "xgboost", "catboost"):
        try:
            __import__(lib)
        except ImportError:
            assert lib not in libs
        else:
            assert lib in libs
    assert not set(sfs.available_libraries(forests=False)) & {"sklearn_rf", "sklearn_et"}


@settings(max_examples=30, deadline=None)
@given(sfs.datasets(nan=None, categorical=None))
def test_datasets_are_valid(data):
    pd = pytest.importorskip("pandas")
    X, y = data.X, data.y
    assert X.shape[0] == len(y) >= 20
    assert data.task in sfs.TASKS
    if data.task == "regression":
        assert y.dtype == np.float64 and np.all(np.isfinite(y))
    else:
        classes, counts = np.unique(y, return_counts=True)
        np.testing.assert_array_equal(classes, np.arange(len(classes)))
        assert len(classes) == (2 if data.task == "binary" else len(classes)) >= 2
        assert counts.min() >= 2
    if data.categorical:
        assert isinstance(X, pd.DataFrame)
        for name in data.categorical:
            assert isinstance(X[name].dtype, pd.CategoricalDtype)
            assert not X[name].isna().any()
    numeric = (
        X[[c for c in X.columns if c not in data.categorical]].to_numpy()
        if hasattr(X, "columns")
        else X
    )
    assert bool(np.isnan(numeric).any()) == data.has_nan


def test_strategy_arguments_are_checked():
    with pytest.raises(ValueError, match="task"):
        sfs.datasets(task="ranking").example()
    with pytest.raises(ValueError, match="min_rows"):
        sfs.datasets(min_rows=50, max_rows=10).example()
    with pytest.raises(ValueError, match="unknown libraries"):
        data = sfs.Dataset(np.zeros((4, 1)), np.zeros(4), "regression")
        sfs.models(data, libraries=["sklearn_foo"]).example()


def _check_model(case):
    assert case.library in sfs.LIBRARIES
    ens = skinfluence.to_ensemble(case.model, case.X, case.y)
    leaves = ens.check_reconstruction(case.X)
    assert leaves.shape[0] == len(case.y)
    assert np.asarray(case.model.predict(case.X)).shape[0] == len(case.y)


@pytest.mark.parametrize("library", sfs.available_libraries())
@pytest.mark.parametrize("task", sfs.TASKS)
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_every_library_and_task_reconstructs(library, task, data):
    case = data.draw(sfs.fitted_models(task=task, libraries=[library]))
    assert case.task == task and case.library == library
    _check_model(case)


@settings(max_examples=15, deadline=None)
@given(sfs.fitted_models(nan=True))
def test_models_with_nan_reconstruct(case):
    assert case.library not in ("sklearn_gb",)  # cannot take NaN: never drawn
    _check_model(case)


@settings(max_examples=15, deadline=None)
@given(sfs.fitted_models(categorical=True, nan=None))
def test_models_with_categoricals_reconstruct(case):
    pytest.importorskip("pandas")
    assert case.library in ("sklearn_hgb", "lightgbm", "xgboost", "catboost")
    _check_model(case)


@settings(max_examples=10, deadline=None)
@given(
    sfs.fitted_models(
        forests=False,
        task=("regression", "binary"),
        libraries=("sklearn_gb", "sklearn_hgb", "lightgbm", "xgboost"),
    )
)
def test_boostin_runs_on_drawn_gradient_boosted_models(case):
    # a property a user might write: self-influence equals the diagonal of the matrix
    exp = skinfluence.BoostIn(case.model).fit(case.X, case.y)
    diag = np.diag(exp.transform(case.X, case.y))
    np.testing.assert_allclose(exp.self_influence(), diag, rtol=1e-9, atol=1e-12)


_METHODS = [
    skinfluence.BoostIn,
    skinfluence.LeafInfluence,
    skinfluence.LeafRefit,
    skinfluence.TREX,
    skinfluence.TreeSim,
    skinfluence.LeafSim,
    skinfluence.LOO,
]


@pytest.mark.parametrize("method", _METHODS, ids=lambda m: m.__name__)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_models_drawn_for_a_method_are_accepted_by_it(method, data):
    tiny = sfs.datasets(max_rows=24, max_features=3, max_classes=3)
    case = data.draw(sfs.fitted_models(tiny, max_estimators=3, max_depth=2, method=method))
    if not method._accepts_forests:
        assert case.library not in ("sklearn_rf", "sklearn_et")
    method(case.model).fit(case.X, case.y)  # never refused


def _multiclass_data():
    X, y = make_data("multiclass", n=30, d=3)
    return sfs.Dataset(X, y, "multiclass")


def test_models_for_a_method_leave_out_what_it_refuses():
    pytest.importorskip("catboost")
    data = _multiclass_data()
    model = make_model("catboost", "multiclass", n_estimators=2, depth=2).fit(data.X, data.y)
    try:
        skinfluence.BoostIn(model).fit(data.X, data.y)
    except skinfluence.LeafModelError:
        refused = True
    else:  # pragma: no cover - once CatBoost MultiClass is explained exactly
        refused = False
    seen = {"BoostIn": set(), "TREX": set()}

    @settings(max_examples=10, deadline=None)
    @given(st.data())
    def draw_models(draw):
        for method in (skinfluence.BoostIn, skinfluence.TREX):
            libs = ("catboost", "sklearn_gb")
            strategy = sfs.models(data, libraries=libs, max_estimators=2, method=method)
            library, _ = draw.draw(strategy)
            seen[method.__name__].add(library)

    draw_models()
    assert seen["TREX"] == {"catboost", "sklearn_gb"}
    assert seen["BoostIn"] == ({"sklearn_gb"} if refused else {"catboost", "sklearn_gb"})


def test_a_method_instance_decides_with_its_settings():
    pytest.importorskip("catboost")
    data = _multiclass_data()
    lenient = skinfluence.BoostIn(check_leaf_model="warn")  # approximates instead of refusing

    @settings(max_examples=3, deadline=None)
    @given(sfs.models(data, libraries="catboost", max_estimators=2, method=lenient))
    def draw_catboost(drawn):
        assert drawn[0] == "catboost"

    draw_catboost()


def test_method_must_be_an_influence_estimator():
    for method in (object, "BoostIn", make_model):
        with pytest.raises(TypeError, match="method must be a skinfluence influence estimator"):
            sfs.fitted_models(method=method).example()


@pytest.mark.parametrize("method", [skinfluence.SubSample, skinfluence.DataShapley])
def test_retraining_methods_are_checked_without_their_refits(method, monkeypatch):
    from skinfluence import _retrain

    def no_refits(*args, **kwargs):  # pragma: no cover - failing only
        raise AssertionError("the strategy's check refit the model")

    monkeypatch.setattr(_retrain._RetrainInfluence, "_run", no_refits)
    seen = set()

    @settings(max_examples=5, deadline=None)
    @given(sfs.fitted_models(max_estimators=2, method=method))
    def draw(case):
        seen.add(case.library)

    draw()
    assert seen
