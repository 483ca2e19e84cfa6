"""The recipe of doc/adding_a_library.rst, followed for a toy library.

``toylib`` has one model, a regression stump boosted for one round. Its adapter is
the module below: the hooks ``to_ensemble``, ``is_fitted`` and ``refit_template``, and
one registry entry. Nothing else in skinfluence learns about the library, yet the
influence estimators explain its models.
"""

import sys
import types

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skinfluence
from skinfluence import LOO, BoostIn, UnsupportedModelError
from skinfluence._adapters import _registered, is_fitted, refit_template
from skinfluence._ensemble import TreeEnsemble


# ------------------------------------------------------------------ the toy library
class Stump(RegressorMixin, BaseEstimator):
    """One round of boosting on squared error: bias plus a stump on feature 0."""

    def __init__(self, learning_rate=0.5, n_jobs=None):
        self.learning_rate = learning_rate
        self.n_jobs = n_jobs

    def fit(self, X, y, sample_weight=None):
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        self.bias_ = float(np.average(y, weights=w))
        self.threshold_ = float(np.median(X[:, 0]))
        side = self.apply(X)
        g = w * (self.bias_ - y)  # gradient of 0.5 (y - F)^2 at F = bias; hessian w
        self.values_ = np.array(
            [-self.learning_rate * g[side == s].sum() / w[side == s].sum() for s in (0, 1)]
        )
        self.n_features_in_ = X.shape[1]
        return self

    def apply(self, X):
        return (np.asarray(X, dtype=np.float64)[:, 0] > self.threshold_).astype(np.int32)

    def predict(self, X):
        return self.bias_ + self.values_[self.apply(X)]


Stump.__module__ = "toylib"  # as if the class came from an installed library


# ------------------------------------------------------------------ its adapter
class _StumpCalls:
    """Picklable routing and raw prediction over one stump."""

    def __init__(self, model):
        self.model = model

    def leaf_ids(self, X):
        return self.model.apply(X)[:, None]

    def raw(self, X):
        return self.model.predict(X)[:, None]


def _to_ensemble(model, X=None, y=None, sample_weight=None):
    if not isinstance(model, Stump):
        raise UnsupportedModelError(f"toylib model {type(model).__name__} is not supported")
    calls = _StumpCalls(model)
    return TreeEnsemble(
        library="toylib",
        library_version="0.1",
        model_name=type(model).__name__,
        objective="squared_error",
        tree_type="gbdt",
        n_outputs=1,
        leaf_offsets=np.array([0, 2]),
        leaf_values=model.values_,
        learning_rates=np.array([model.learning_rate]),
        bias=np.array([model.bias_]),
        l2=0.0,
        router=calls.leaf_ids,
        raw_predictor=calls.raw,
        n_features_in=model.n_features_in_,
    )


def _is_fitted(model):
    return hasattr(model, "values_")


def _refit_template(model):
    return clone(model).set_params(n_jobs=1)


@pytest.fixture
def toylib(monkeypatch):
    """The adapter module, importable, and its one registry entry."""
    adapter = types.ModuleType("toylib_adapter")
    adapter.to_ensemble = _to_ensemble
    adapter.is_fitted = _is_fitted
    adapter.refit_template = _refit_template
    monkeypatch.setitem(sys.modules, "toylib_adapter", adapter)
    with _registered("toylib", "toylib_adapter"):
        yield adapter


def _data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, 2.0 * (X[:, 0] > 0) + rng.normal(scale=0.3, size=n)


# ------------------------------------------------------------------------ tests
def test_unregistered_library_is_refused():
    X, y = _data()
    with pytest.raises(UnsupportedModelError, match="toylib.Stump"):
        skinfluence.to_ensemble(Stump().fit(X, y))


def test_registry_entry_is_removed_after_the_block(toylib):
    from skinfluence._adapters import _REGISTRY

    assert _REGISTRY["toylib"] == "toylib_adapter"
    with _registered("other", "toylib_adapter"):
        assert "other" in _REGISTRY
    assert "other" not in _REGISTRY


def test_to_ensemble_reads_the_fake_model(toylib):
    X, y = _data()
    model = Stump().fit(X, y)
    ens = skinfluence.to_ensemble(model, X, y)
    assert ens.library == "toylib" and ens.n_trees == 1
    leaves = ens.check_reconstruction(X)
    assert float(ens.check_leaf_model(leaves, y)) < 1e-12
    # the wrappers are peeled before the hooks see the model
    pipe = make_pipeline(StandardScaler(), Stump()).fit(X, y)
    skinfluence.to_ensemble(FrozenEstimator(pipe), X, y).check_reconstruction(X)


def test_hooks_dispatch(toylib, monkeypatch):
    X, y = _data()
    seen = []
    monkeypatch.setattr(toylib, "is_fitted", lambda m: seen.append("fit") or _is_fitted(m))
    assert not is_fitted(Stump())
    assert is_fitted(FrozenEstimator(Stump().fit(X, y)))
    assert seen == ["fit", "fit"]
    template = refit_template(FrozenEstimator(Stump(n_jobs=4).fit(X, y)))
    assert isinstance(template, Stump) and template.n_jobs == 1 and not is_fitted(template)
    with pytest.raises(NotFittedError, match="not fitted"):
        skinfluence.to_ensemble(Stump())


def test_influence_estimators_explain_the_fake_model(toylib):
    X, y = _data()
    model = Stump().fit(X, y)
    given = BoostIn(model).fit(X, y)
    values = given.transform(X[:4])
    assert values.shape == (4, len(X)) and np.all(np.isfinite(values))
    # an unfitted model is cloned and fitted by the estimator: same influence
    trained = BoostIn(Stump()).fit(X, y)
    np.testing.assert_array_equal(trained.transform(X[:4]), values)
    # the retraining methods refit the template of the refit_template hook
    loo = LOO(model).fit(X, y).transform(X[:2], y[:2])
    assert loo.shape == (2, len(X)) and np.all(np.isfinite(loo))
