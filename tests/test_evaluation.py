"""Evaluation protocols on tiny problems whose answers are known."""

import sys

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone

from skinfluence import BoostIn
from skinfluence.evaluation import (
    LOODeltas,
    SubsetOutputs,
    counterfactual,
    linear_datamodeling_score,
    loo_correlation,
    loo_deltas,
    noise_detection,
    set_curve,
    single_query_curve,
    subset_outputs,
)
from skinfluence.evaluation._common import _to_result

from .models import hgb_classifier, hgb_regressor

pd = pytest.importorskip("pandas")


# tiny models: OpenMP pools only cost time (and oversubscribe under xdist)
pytestmark = pytest.mark.usefixtures("one_thread")


_SMALL = {"max_iter": 10, "learning_rate": 0.3, "max_leaf_nodes": 8}


def hgb_reg(**kw):
    return hgb_regressor(**{**_SMALL, "min_samples_leaf": 1, **kw})


def hgb_clf(**kw):
    return hgb_classifier(**{**_SMALL, "min_samples_leaf": 2, **kw})


def outlier_data():
    """29 rows on a line plus one far row that alone determines its region."""
    x = np.r_[np.linspace(0, 1, 29), 10.0]
    y = np.r_[np.linspace(0, 1, 29), 100.0]
    X = np.c_[x, np.zeros_like(x)]
    return X, y, np.array([[10.0, 0.0]]), np.array([100.0])


def brute_loss(model, X, y, Xq, yq):
    pred = clone(model).fit(X, y).predict(Xq)
    return 0.5 * (yq - pred) ** 2


# -------------------------------------------------------------------- single query
def test_remove_lone_leaf_row_raises_query_loss_and_matches_brute_force():
    X, y, Xq, yq = outlier_data()
    model = hgb_reg()
    res = single_query_curve(model, X, y, Xq, yq, BoostIn(), fractions=[0, 1 / 30])
    assert list(res.columns) == [
        "query",
        "fraction",
        "n_edited",
        "loss",
        "prediction",
        "loss_change",
    ]
    assert res["n_edited"].tolist() == [0, 1]
    loss0, loss1 = res["loss"].to_numpy()
    np.testing.assert_allclose(loss0, brute_loss(model, X, y, Xq, yq)[0])
    # BoostIn puts the lone row first; without it the query's region predicts ~1
    np.testing.assert_allclose(loss1, brute_loss(model, X[:-1], y[:-1], Xq, yq)[0])
    assert loss1 > 1000 * max(loss0, 1e-3) and loss1 > 4000
    assert res["loss_change"].iloc[1] == pytest.approx(loss1 - loss0)
    # removing the least helpful row instead changes almost nothing
    M = BoostIn(clone(model).fit(X, y)).fit(X, y).transform(Xq, yq)
    assert np.argmax(M[0]) == 29
    low = single_query_curve(model, X, y, Xq, yq, -M, fractions=[0, 1 / 30])
    assert low["loss"].iloc[1] < 0.01 * loss1


def test_matrix_ranking_and_explainer_agree():
    X, y, Xq, yq = outlier_data()
    model = hgb_reg()
    fitted = BoostIn(clone(model).fit(X, y)).fit(X, y)
    M = fitted.transform(Xq, yq)
    a = single_query_curve(model, X, y, Xq, yq, BoostIn(), fractions=[0, 0.1])
    b = single_query_curve(model, X, y, Xq, yq, M, fractions=[0, 0.1])
    c = single_query_curve(
        model, X, y, Xq, yq, ranking=np.argsort(-M, axis=1, kind="stable"), fractions=[0, 0.1]
    )
    d = single_query_curve(model, X, y, Xq, yq, fitted, fractions=[0, 0.1])
    for other in (b, c, d):
        pd.testing.assert_frame_equal(a, other)
    with pytest.raises(ValueError, match="shape"):
        single_query_curve(model, X, y, Xq, yq, M[:, :5])
    with pytest.raises(ValueError, match="edit must be"):
        single_query_curve(model, X, y, Xq, yq, M, edit="delete")
    with pytest.raises(ValueError, match="either influence or ranking"):
        single_query_curve(model, X, y, Xq, yq, M, ranking=np.argsort(-M, axis=1, kind="stable"))


@pytest.mark.parametrize("edit", ["poison", "targeted", "relabel"])
def test_edits_of_the_lone_row(edit):
    X, y, Xq, yq = outlier_data()
    ranking = np.argsort(-np.r_[np.zeros(29), 1.0])[None, :]
    res = single_query_curve(
        hgb_reg(), X, y, Xq, yq, ranking=ranking, edit=edit, fractions=[0, 1 / 30], random_state=3
    )
    loss0, loss1 = res["loss"].to_numpy()
    if edit == "targeted":
        # the adversarial label of y=100 is the training quartile below the median
        q25 = np.quantile(y, 0.25)
        expected = brute_loss(hgb_reg(), X, np.r_[y[:-1], q25], Xq, yq)[0]
        np.testing.assert_allclose(loss1, expected)
        assert loss1 > 4000
    elif edit == "poison":
        # mean features: the query's region has no training row left
        assert loss1 > 4000 > loss0
    else:
        # a random label in [0, 100] (seeded): the loss is that of the brute-force refit
        rng = np.random.default_rng([3, 0])
        label = rng.uniform(y.min(), y.max(), size=1)[0]
        expected = brute_loss(hgb_reg(), X, np.r_[y[:-1], label], Xq, yq)[0]
        np.testing.assert_allclose(loss1, expected)


def test_dataframe_input_poison_with_an_integer_column():
    X, y, Xq, yq = outlier_data()
    df = pd.DataFrame({"x": X[:, 0], "k": np.arange(30) % 3}, index=np.arange(30) + 100)
    dq = pd.DataFrame({"x": Xq[:, 0], "k": [0]})
    ranking = np.r_[29, np.arange(29)][None, :]
    res = single_query_curve(
        hgb_reg(), df, y, dq, yq, ranking=ranking, edit="poison", fractions=[0, 1 / 30]
    )
    assert res["loss"].iloc[1] > 4000 > res["loss"].iloc[0]
    assert df["k"].dtype.kind == "i"  # the caller's frame is not modified


def test_relabel_draws_differ_between_queries():
    """The reference gave every query the same random labels; we do not."""
    X, y, Xq, yq = outlier_data()
    Xq2, yq2 = np.r_[Xq, Xq], np.r_[yq, yq]
    ranking = np.tile(np.r_[29, np.arange(29)], (2, 1))
    res = single_query_curve(
        hgb_reg(), X, y, Xq2, yq2, ranking=ranking, edit="relabel", fractions=[1 / 30]
    )
    assert res["loss"].iloc[0] != res["loss"].iloc[1]


def cluster_data():
    """Class 0 on [0, 1]; class 1 on [5, 6] (rows 40..49) and on [10, 11]."""
    X = np.r_[np.linspace(0, 1, 40), np.linspace(5, 6, 10), np.linspace(10, 11, 10)]
    y = np.r_[np.zeros(40), np.ones(10), np.ones(10)].astype(int)
    return X[:, None], y


def test_counterfactual_flips_after_relabelling_the_supporting_cluster():
    X, y = cluster_data()
    Xq, yq = np.array([[5.5], [0.5], [5.5]]), np.array([1, 0, 0])
    model = hgb_clf()
    ranking = np.tile(np.r_[np.arange(40, 50), np.arange(40), np.arange(50, 60)], (3, 1))
    res = counterfactual(model, X, y, Xq, yq, ranking=ranking, step=10, max_fraction=0.2)
    assert list(res.columns) == ["query", "correct", "flipped", "n_edited", "fraction_edited"]
    assert res["correct"].tolist() == [True, True, False]
    assert res["flipped"].iloc[0] and res["n_edited"].iloc[0] == 10
    assert res["fraction_edited"].iloc[0] == pytest.approx(10 / 60)
    # query 1 (class 0) relabels its top rows (the class-1 cluster) to class 1: too far
    assert not res["flipped"].iloc[1]
    assert res["fraction_edited"].iloc[1] == pytest.approx(0.2)
    assert np.isnan(res["fraction_edited"].iloc[2]) and res["n_edited"].iloc[2] == -1
    # the same protocol with the worst ranking fails and counts as max_fraction
    bad = counterfactual(
        model, X, y, Xq[:1], yq[:1], ranking=ranking[:1, ::-1], step=10, max_fraction=0.2
    )
    assert not bad["flipped"].iloc[0] and bad["fraction_edited"].iloc[0] == 0.2


# ------------------------------------------------------------------------- set
def test_set_remove_and_flip_match_brute_force():
    X, y = cluster_data()
    Xv, yv = np.array([[5.5]]), np.array([1])
    Xh, yh = np.array([[5.2], [5.8], [0.5]]), np.array([1, 1, 0])
    model = hgb_clf()
    ranking = np.r_[np.arange(40, 50), np.arange(40), np.arange(50, 60)]
    res = set_curve(model, X, y, Xh, yh, ranking=ranking, validation=(Xv, yv), fractions=[0, 1 / 6])
    assert list(res.columns) == ["fraction", "n_edited", "loss", "accuracy", "roc_auc"]
    assert res["n_edited"].tolist() == [0, 10]
    assert res["accuracy"].iloc[0] == 1.0 and res["accuracy"].iloc[1] < 1.0
    assert res["loss"].iloc[1] > 5 * res["loss"].iloc[0]
    keep = np.r_[np.arange(40), np.arange(50, 60)]
    p = np.clip(clone(model).fit(X[keep], y[keep]).predict_proba(Xh), 1e-5, 1 - 1e-5)
    assert res["loss"].iloc[1] == pytest.approx(-np.log(p[np.arange(3), yh]).mean())
    flip = set_curve(
        model, X, y, Xh, yh, ranking=ranking, validation=(Xv, yv), edit="relabel", fractions=[1 / 6]
    )
    y_flip = y.copy()
    y_flip[40:50] = 0
    p = np.clip(clone(model).fit(X, y_flip).predict_proba(Xh), 1e-5, 1 - 1e-5)
    expected = -np.log(p[np.arange(3), yh]).mean()
    assert flip["loss"].iloc[0] == pytest.approx(expected)


def test_set_with_boostin_global_influence_regression():
    X, y, _, _ = outlier_data()
    Xt = np.array([[10.0, 0.0]] * 10 + [[0.5, 0.0]] * 10)
    yt = np.r_[np.full(10, 100.0), np.full(10, 0.5)]
    res = set_curve(
        hgb_reg(),
        X,
        y,
        Xt,
        yt,
        BoostIn(),
        edit="poison",
        fractions=[0, 1 / 30],
        validation_size=0.5,
    )
    assert list(res.columns) == ["fraction", "n_edited", "loss", "rmse", "r2"]
    assert res["loss"].iloc[1] > 100 * res["loss"].iloc[0]


# ----------------------------------------------------------------------- noise
def test_noise_detection_with_a_perfect_ranking_finds_everything():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    y = (X[:, 0] > 0).astype(int)
    Xt = rng.normal(size=(60, 3))
    yt = (Xt[:, 0] > 0).astype(int)

    def oracle(model, X_train, y_noisy):
        return (y_noisy != y).astype(float)

    res = noise_detection(
        hgb_clf(), X, y, Xt, yt, oracle, noise_fraction=0.2, fractions=[0, 0.1, 0.2, 0.3]
    )
    assert list(res.columns) == [
        "fraction",
        "n_checked",
        "n_found",
        "fraction_found",
        "loss",
        "accuracy",
        "roc_auc",
    ]
    # drawn without replacement: exactly 20 distinct rows were flipped, all found
    assert res.attrs["n_noisy"] == 20
    assert res["n_found"].tolist() == [0, 10, 20, 20]
    assert res["fraction_found"].tolist() == [0, 0.5, 1.0, 1.0]
    assert res.attrs["roc_auc"] == 1.0 and res.attrs["average_precision"] == 1.0
    assert res.attrs["detection_area"] == pytest.approx(1.0)
    # fixing every noisy row restores the clean model exactly
    assert res["loss"].iloc[2] == pytest.approx(res.attrs["clean_loss"])
    assert res["loss"].iloc[0] > res["loss"].iloc[2]


def test_noise_detection_boostin_beats_chance():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    Xt = rng.normal(size=(100, 4))
    yt = (Xt[:, 0] + 0.5 * Xt[:, 1] > 0).astype(int)
    model = hgb_clf(max_iter=20)
    res = noise_detection(
        model, X, y, Xt, yt, BoostIn(), noise_fraction=0.2, fractions=[0, 0.1, 0.2]
    )
    assert res.attrs["roc_auc"] > 0.75
    assert res["fraction_found"].iloc[2] > 0.4  # random ranking: 0.2 expected
    glob = noise_detection(
        model, X, y, Xt, yt, BoostIn(), noise_fraction=0.2, fractions=[0, 0.2], strategy="global"
    )
    assert glob.attrs["strategy"] == "global" and glob["fraction_found"].iloc[1] > 0.2
    with pytest.raises(ValueError, match="noisy data"):
        noise_detection(model, X, y, Xt, yt, np.zeros(200))


# ------------------------------------------------------------------ measures
class MeanRegressor(RegressorMixin, BaseEstimator):
    """Predicts the mean training target: its subset outputs are exactly ordered by
    the sum of the subset's targets when the subsets have a fixed size."""

    def fit(self, X, y):
        self.mean_ = float(np.mean(y))
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


def test_lds_of_an_additive_utility_is_one():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = rng.uniform(0, 1, size=40)
    Xq, yq = np.zeros((2, 2)), np.array([5.0, 7.0])  # above every target
    cache = subset_outputs(MeanRegressor(), X, y, Xq, yq, n_subsets=30)
    assert cache.masks.shape == (30, 40) and cache.masks.sum(1).tolist() == [20] * 30
    # a larger y_i lowers the query loss: I(i, e) = y_i is exactly "additive"
    I = np.tile(y, (2, 1))
    res = linear_datamodeling_score(influence=I, subsets=cache)
    assert list(res.columns) == ["query", "lds"]
    np.testing.assert_allclose(res["lds"], 1.0)
    assert res.attrs["mean_lds"] == pytest.approx(1.0)
    # invariant to the scale of the influence, even near the float range
    np.testing.assert_allclose(
        linear_datamodeling_score(influence=1e300 * I, subsets=cache)["lds"], 1.0
    )
    # the opposite sign convention is perfectly wrong
    np.testing.assert_allclose(linear_datamodeling_score(influence=-I, subsets=cache)["lds"], -1.0)
    # for an output that helpful rows raise (proba / margin) the sign flips
    up = SubsetOutputs(cache.masks, -cache.outputs, "proba")
    np.testing.assert_allclose(linear_datamodeling_score(influence=I, subsets=up)["lds"], 1.0)
    with pytest.raises(ValueError, match="shape"):
        linear_datamodeling_score(influence=I[:, :5], subsets=cache)


def test_lds_end_to_end_with_an_explainer():
    X, y, _, _ = outlier_data()
    Xq, yq = np.array([[10.0, 0.0], [0.5, 0.0]]), np.array([100.0, 0.5])
    res = linear_datamodeling_score(hgb_reg(), X, y, Xq, yq, BoostIn(), n_subsets=12)
    assert res["lds"].shape == (2,)
    # the outlier's query: its loss is driven by whether the lone row is in the subset
    assert res["lds"].iloc[0] > 0.5
    clf = subset_outputs(
        hgb_clf(), *cluster_data(), np.array([[5.5]]), np.array([1]), n_subsets=4, output="margin"
    )
    assert clf.output == "margin" and clf.outputs.shape == (4, 1)
    with pytest.raises(ValueError, match="classifier"):
        subset_outputs(hgb_reg(), X, y, Xq, yq, n_subsets=2, output="proba")


def test_loo_correlation_of_exact_loo_is_one():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    y = X[:, 0] + 0.1 * rng.normal(size=30)
    Xq, yq = rng.normal(size=(4, 2)), rng.normal(size=4)
    model = hgb_reg(min_samples_leaf=3)
    d = loo_deltas(model, X, y, Xq, yq, n_rows=50)
    assert d.rows.tolist() == list(range(30)) and d.deltas.shape == (4, 30)
    # brute-force LOO: the deltas themselves
    full = brute_loss(model, X, y, Xq, yq)
    exact = np.array(
        [brute_loss(model, np.delete(X, i, 0), np.delete(y, i), Xq, yq) - full for i in range(30)]
    ).T
    np.testing.assert_allclose(d.deltas, exact, atol=1e-12)
    res = loo_correlation(influence=exact, deltas=d)
    np.testing.assert_allclose(res["correlation"], 1.0)
    np.testing.assert_allclose(
        loo_correlation(influence=exact, deltas=d, method="spearman")["correlation"], 1.0
    )
    # the package's LOO estimator, when present, is exactly retraining
    retrain = pytest.importorskip("skinfluence._retrain")
    sub = loo_correlation(model, X, y, Xq, yq, retrain.LOO(), rows=np.arange(0, 30, 3))
    np.testing.assert_allclose(sub["correlation"], 1.0, atol=1e-9)
    assert sub.attrs["n_rows"] == 10


def test_loo_correlation_sign_and_nan():
    d = LOODeltas(rows=np.array([0, 1, 2]), deltas=np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]))
    I = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    res = loo_correlation(influence=I, deltas=d)
    assert res["correlation"].iloc[0] == pytest.approx(-1.0)
    assert np.isnan(res["correlation"].iloc[1])
    assert res.attrs["mean_correlation"] == pytest.approx(-1.0)


# ------------------------------------------------------------------ plumbing
def test_parallel_matches_serial():
    X, y = cluster_data()
    Xq, yq = np.array([[5.5], [0.2]]), np.array([1, 0])
    M = np.random.default_rng(0).normal(size=(2, 60))
    a = single_query_curve(
        hgb_clf(), X, y, Xq, yq, M, edit="relabel", fractions=[0, 0.05, 0.1], n_jobs=1
    )
    b = single_query_curve(
        hgb_clf(), X, y, Xq, yq, M, edit="relabel", fractions=[0, 0.05, 0.1], n_jobs=2
    )
    pd.testing.assert_frame_equal(a, b)
    assert a["correct"].dtype == bool and len(a) == 6


def test_dict_result_without_pandas(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    out = _to_result({"a": [1, 2]}, {"k": 3})
    assert isinstance(out, dict) and out["attrs"] == {"k": 3}
    np.testing.assert_array_equal(out["a"], [1, 2])
    plotting = pytest.importorskip("skinfluence.plotting")
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    ax = plotting.EditCurveDisplay.from_results(
        {"m": {"fraction": np.array([0.0, 0.1]), "loss": np.array([1.0, 2.0]), "attrs": {}}}
    ).ax_
    assert len(ax.lines) == 1


def test_evaluation_displays():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skinfluence import plotting

    X, y = cluster_data()
    Xq, yq = np.array([[5.5], [0.2]]), np.array([1, 0])
    M = np.random.default_rng(0).normal(size=(2, 60))
    single = single_query_curve(hgb_clf(), X, y, Xq, yq, M, fractions=[0, 0.1])
    ax = plotting.EditCurveDisplay.from_results({"random": single, "other": single}).ax_
    assert len(ax.lines) == 2 and ax.get_legend() is not None
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [0, 10])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), single.groupby("fraction")["loss"].mean())
    cf = pd.DataFrame(
        {
            "query": [0, 1],
            "correct": [True, True],
            "flipped": [True, False],
            "fraction_edited": [0.05, 0.1],
        }
    )
    ax = plotting.CounterfactualDisplay.from_results({"m": cf}).ax_
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0, 0.5])
    noise = pd.DataFrame({"fraction": [0, 0.1], "fraction_found": [0, 0.5]})
    noise.attrs["detection_area"] = 0.5
    ax = plotting.NoiseDetectionDisplay.from_results({"m": noise}).ax_
    assert "area 0.50" in ax.get_legend().get_texts()[0].get_text()
    ax = plotting.LDSDisplay.from_results(
        {"a": pd.DataFrame({"lds": [0.1, np.nan, 0.3]}), "b": pd.DataFrame({"lds": [0.5]})}
    ).ax_
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    ax = plotting.LOOCorrelationDisplay.from_results(pd.DataFrame({"correlation": [0.2, 0.4]})).ax_
    assert ax.get_ylabel() == "correlation"
    plt.close("all")
