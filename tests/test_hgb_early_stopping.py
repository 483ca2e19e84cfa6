"""HistGradientBoosting with early stopping: the validation split is redrawn exactly.

With early stopping on, scikit-learn grows the trees on a split of the rows given to
``fit``. The oracle of the recovery: a refit on the recovered training rows, in their
order, without early stopping and with ``max_iter=n_iter_`` grows the same trees (bit
for bit). The oracle of the explainers: the same method explaining that refit on the
training rows alone gives the same training columns (bit for bit); the held-out rows
get 0.
"""

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

import skinfluence
from skinfluence import LOO, TREX, BoostIn, LeafInfluence, LeafRefit, TreeSim
from skinfluence._adapters._sklearn import hgb_training_split
from skinfluence._ensemble import LeafModelError, TrainingDataMismatchError

TASKS = ["binary", "multi3", "regression"]


def _data(task, n, seed=0, weighted=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    score = X[:, 0] + 0.5 * X[:, 1] * X[:, 2] + 0.7 * rng.normal(size=n)
    if task == "regression":
        y = score
    elif task == "binary":
        y = (score > 0).astype(int)
    else:
        y = np.digitize(score, [-0.5, 0.5])
    w = rng.uniform(0.5, 2.0, size=n) if weighted else None
    return X, y, w


def _model(task, **params):
    cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    base = {
        "early_stopping": True,
        "max_iter": 12,
        "learning_rate": 0.3,
        "max_leaf_nodes": 7,
        "n_iter_no_change": 3,
        "random_state": 0,
    }
    return cls(**{**base, **params})


def _raw(model, X):
    if hasattr(model, "decision_function"):
        return model.decision_function(X)
    return model.predict(X)


def _refit(model, X, y, w, train):
    """The oracle model: fit on the training rows in the order the model saw them."""
    refit = clone(model).set_params(early_stopping=False, max_iter=model.n_iter_)
    return refit.fit(X[train], y[train], sample_weight=None if w is None else w[train])


def _fit(method, model, X, y, w):
    return method(model).fit(X, y, sample_weight=w)


@pytest.fixture(scope="module", params=[(t, wt) for t in TASKS for wt in (False, True)])
def case(request):
    task, weighted = request.param
    X, y, w = _data(task, 700, seed=1, weighted=weighted)
    model = _model(task).fit(X, y, sample_weight=w)
    train, val = hgb_training_split(model, X, y)
    return model, X, y, w, train, val


def test_recovered_split_reproduces_the_model(case):
    model, X, y, w, train, val = case
    assert model.do_early_stopping_
    assert len(val) == int(np.ceil(0.1 * len(X)))
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(len(X)))
    refit = _refit(model, X, y, w, train)
    assert refit.n_iter_ == model.n_iter_
    np.testing.assert_array_equal(_raw(refit, X), _raw(model, X))
    ens = skinfluence.to_ensemble(model, X=X, y=y, sample_weight=w)
    np.testing.assert_array_equal(ens.training_rows, np.sort(train))
    assert not any("early stopping" in s for s in ens.breaking_settings)


@pytest.mark.parametrize("method", [BoostIn, LeafInfluence, TREX])
def test_explainer_uses_the_training_rows(case, method):
    model, X, y, w, train, val = case
    rows = np.sort(train)
    explainer = _fit(method, model, X, y, w)
    oracle = _fit(
        method, _refit(model, X, y, w, train), X[rows], y[rows], None if w is None else w[rows]
    )
    np.testing.assert_array_equal(explainer.validation_indices_, np.sort(val))
    assert explainer.n_train_ == len(rows)
    Xq, yq = X[::35], y[::35]
    got = explainer.transform(Xq, yq)
    assert got.shape == (len(Xq), len(X))
    np.testing.assert_array_equal(got[:, val], 0.0)
    np.testing.assert_array_equal(got[:, rows], oracle.transform(Xq, yq))
    assert len(explainer.get_feature_names_out()) == len(X)

    self_inf = explainer.self_influence()
    np.testing.assert_array_equal(self_inf[val], 0.0)
    np.testing.assert_array_equal(self_inf[rows], oracle.self_influence())
    total = explainer.global_influence(Xq, yq)
    np.testing.assert_array_equal(total[val], 0.0)
    np.testing.assert_array_equal(total[rows], oracle.global_influence(Xq, yq))
    idx, vals = explainer.top_k(Xq, yq, k=5)
    o_idx, o_vals = oracle.top_k(Xq, yq, k=5)
    np.testing.assert_array_equal(idx, rows[o_idx])
    np.testing.assert_array_equal(vals, o_vals)


@pytest.mark.parametrize("method", [LeafRefit, TreeSim])
def test_other_methods_use_the_training_rows(method):
    X, y, w = _data("binary", 400, seed=2, weighted=True)
    model = _model("binary", max_iter=6).fit(X, y, sample_weight=w)
    train, val = hgb_training_split(model, X, y)
    rows = np.sort(train)
    got = _fit(method, model, X, y, w).transform(X[:10], y[:10])
    oracle = _fit(method, _refit(model, X, y, w, train), X[rows], y[rows], w[rows])
    np.testing.assert_array_equal(got[:, val], 0.0)
    np.testing.assert_array_equal(got[:, rows], oracle.transform(X[:10], y[:10]))


def test_library_default_early_stopping_on_many_rows():
    """``early_stopping="auto"`` turns early stopping on above 10,000 rows."""
    X, y, _ = _data("binary", 12_000, seed=3)
    model = HistGradientBoostingClassifier(max_iter=15).fit(X, y)  # random_state=None
    assert model.early_stopping == "auto" and model.do_early_stopping_
    train, val = hgb_training_split(model, X, y)
    refit = _refit(model, X, y, None, train)
    np.testing.assert_array_equal(_raw(refit, X), _raw(model, X))
    explainer = BoostIn(model).fit(X, y)
    np.testing.assert_array_equal(explainer.validation_indices_, np.sort(val))
    got = explainer.transform(X[:5], y[:5])
    assert got.shape == (5, len(X))
    np.testing.assert_array_equal(got[:, val], 0.0)
    rows = np.sort(train)
    oracle = BoostIn(refit).fit(X[rows], y[rows])
    np.testing.assert_array_equal(got[:, rows], oracle.transform(X[:5], y[:5]))


def test_pandas_output_columns_stay_the_rows_given():
    pd = pytest.importorskip("pandas")
    X, y, _ = _data("regression", 300, seed=4)
    frame = pd.DataFrame(X, columns=["a", "b", "c"], index=[f"r{i}" for i in range(300)])
    model = _model("regression", max_iter=5).fit(frame, y)
    explainer = BoostIn(model).fit(frame, y)
    names = explainer.get_feature_names_out()
    assert names.tolist() == frame.index.tolist()
    got = explainer.transform(frame.iloc[:4], y[:4])
    assert got.shape == (4, 300)
    np.testing.assert_array_equal(got[:, explainer.validation_indices_], 0.0)


def test_retraining_methods_refit_on_all_rows():
    """Retraining methods refit the whole procedure, split included, on the rows given."""
    X, y, _ = _data("regression", 60, seed=5)
    model = _model("regression", max_iter=4, min_samples_leaf=5).fit(X, y)
    explainer = LOO(model).fit(X, y)
    assert explainer.n_train_ == len(X)
    assert len(explainer.validation_indices_) == 6
    got = explainer.transform(X[:3], y[:3])
    assert got.shape == (3, len(X))
    # column i: loss of the refit without row i minus loss of the model
    i = int(explainer.validation_indices_[0])
    keep = np.arange(len(X)) != i
    without = clone(model).fit(X[keep], y[keep])
    expected = (without.predict(X[:3]) - y[:3]) ** 2 - (model.predict(X[:3]) - y[:3]) ** 2
    np.testing.assert_allclose(got[:, i], 0.5 * expected, rtol=1e-9, atol=1e-12)


def test_no_split_without_early_stopping():
    X, y, _ = _data("binary", 300, seed=6)
    model = _model("binary", early_stopping=False, max_iter=4).fit(X, y)
    assert skinfluence.to_ensemble(model, X=X, y=y).training_rows is None
    explainer = BoostIn(model).fit(X, y)
    assert explainer.validation_indices_.size == 0 and explainer.n_train_ == len(X)
    with pytest.raises(skinfluence.UnsupportedModelError, match="no validation split"):
        hgb_training_split(model, X, y)


# ---------------------------------------------------------------------- refusals
def test_shuffled_rows_are_refused():
    X, y, _ = _data("multi3", 500, seed=7)
    model = _model("multi3", max_iter=5).fit(X, y)
    perm = np.random.default_rng(0).permutation(len(X))
    for method in (BoostIn, TREX):
        with pytest.raises(TrainingDataMismatchError, match="split of the rows"):
            method(model).fit(X[perm], y[perm])


def test_unrecoverable_split_is_named():
    X, y, _ = _data("binary", 500, seed=8)
    model = _model("binary", max_iter=5).fit(X, y)
    # without data the split cannot be redrawn
    ens = skinfluence.to_ensemble(model)
    assert any("needed to redraw" in s for s in ens.breaking_settings)
    # other rows (a subset): the split has the wrong size
    with pytest.raises(LeafModelError, match="could not recover that split"):
        BoostIn(model).fit(X[:400], y[:400])


@pytest.mark.skipif(
    tuple(int(p) for p in sklearn.__version__.split(".")[:2]) < (1, 7),
    reason="X_val in fit needs scikit-learn >= 1.7",
)
def test_validation_data_passed_to_fit():
    """With ``X_val`` given to fit, all rows of ``X`` trained the trees."""
    X, y, _ = _data("binary", 400, seed=9)
    model = _model("binary", max_iter=5).fit(X[:300], y[:300], X_val=X[300:], y_val=y[300:])
    assert model.do_early_stopping_
    explainer = BoostIn(model).fit(X[:300], y[:300])
    assert explainer.validation_indices_.size == 0
    assert explainer.transform(X[:3], y[:3]).shape == (3, 300)
