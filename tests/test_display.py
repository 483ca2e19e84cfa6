"""The Display objects and the tabular helper of skinfluence.plotting: what is drawn.

Every test checks the drawn artists (bar widths, tick labels, marker positions, line
data, legend entries, axis labels) against a numpy computation from the same inputs.
One tiny model is trained per module on bundled data.
"""

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib import colors as mcolors
from matplotlib import pyplot as plt
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

import skinfluence
from skinfluence import LOO, BoostIn, InfluenceCleaner, LeafSim
from skinfluence.datasets import load_dataset
from skinfluence.plotting import (
    CleaningCurveDisplay,
    CounterfactualDisplay,
    EditCurveDisplay,
    InfluenceDisplay,
    LDSDisplay,
    LOOCorrelationDisplay,
    NoiseDetectionDisplay,
    QueryScoresDisplay,
    SelfInfluenceDisplay,
    top_influences_frame,
)

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("one_thread")


def _model():
    return HistGradientBoostingClassifier(max_iter=8, max_leaf_nodes=6, random_state=0)


@pytest.fixture(scope="module")
def credit():
    """200 rows of the credit data (numeric and categorical columns, string labels,
    an index that is not 0..n-1), a fitted model, BoostIn on it and one query."""
    X, y, _ = load_dataset("credit")
    X, y = X.iloc[:200].copy(), y[:200]
    X.index = X.index + 1000
    model = _model().fit(X, y)
    explainer = BoostIn(model).fit(X, y)
    Xq, yq = load_dataset("credit")[0].iloc[[300]], load_dataset("credit")[1][300]
    return X, y, model, explainer, Xq, yq


def _top(values, k):
    """Numpy reference: positions of the k largest positive and k smallest negative
    values, decreasing, ties to the lower position."""
    pos = np.arange(len(values))
    helpful = [i for i in sorted(pos, key=lambda i: (-values[i], i))[:k] if values[i] > 0]
    harmful = [i for i in sorted(pos, key=lambda i: (values[i], i))[:k] if values[i] < 0]
    return np.array(helpful + harmful[::-1], dtype=int)


def _texts(items):
    return [t.get_text() for t in items]


# ------------------------------------------------------------------ InfluenceDisplay
def test_influence_display_draws_the_top_rows(credit):
    X, y, _, explainer, Xq, yq = credit
    inf = explainer.transform(Xq, [yq])[0]
    disp = InfluenceDisplay.from_estimator(explainer, Xq, yq, X_train=X, y_train=y, k=4)
    top = _top(inf, 4)
    assert len(disp.bars_) == len(top) == 8
    np.testing.assert_allclose([b.get_width() for b in disp.bars_], inf[top])
    # the same rows as top_k (positive ones helpful, negative ones harmful)
    idx_h, val_h = explainer.top_k(Xq, [yq], k=4, kind="helpful")
    idx_m, val_m = explainer.top_k(Xq, [yq], k=4, kind="harmful")
    np.testing.assert_array_equal(top, np.r_[idx_h[0][val_h[0] > 0], idx_m[0][val_m[0] < 0][::-1]])
    labels = _texts(disp.ax_.get_yticklabels())
    for text, i in zip(labels, top):
        assert text.startswith(f"#{X.index[i]} (y={y[i]}): ")  # DataFrame index label
    # the most helpful on top: y ticks 0.. from the top down
    assert disp.ax_.get_ylim()[0] > disp.ax_.get_ylim()[1]
    blue, red = mcolors.to_rgba("tab:blue"), mcolors.to_rgba("tab:red")
    assert [b.get_facecolor() for b in disp.bars_] == [blue if v > 0 else red for v in inf[top]]
    assert _texts(disp.ax_.get_legend().get_texts()) == ["helpful", "harmful"]
    assert "helpful" in disp.ax_.get_xlabel()
    assert disp.ax_.get_title() == f"query label: {yq}"
    assert disp.zero_line_.get_xdata()[0] == 0
    assert disp.figure_ is disp.ax_.figure


def test_influence_display_differences_name_features(credit):
    X, y, _, explainer, Xq, yq = credit
    disp = InfluenceDisplay.from_estimator(
        explainer, Xq, yq, X_train=X, y_train=y, k=2, n_differences=3
    )
    for text, i in zip(disp.differences, _top(explainer.transform(Xq, [yq])[0], 2)):
        parts = text.split(", ")
        assert len(parts) == 3
        for part in parts:  # "name=value (query value)", values read from the data
            name = part.split("=")[0]
            assert part == f"{name}={_fmt(X.iloc[i][name])} (query {_fmt(Xq.iloc[0][name])})"


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def test_differences_are_ranked_in_standard_deviations():
    X = np.array([[0.0, 0.0, 1.0], [10.0, 1.0, 1.0], [0.0, 1.0, np.nan], [0.0, 0.0, 1.0]])
    inf = np.array([3.0, 2.0, 1.0, -1.0])
    disp = InfluenceDisplay.from_influence(
        inf, X_train=X, y_train=None, x_query=X[0], k=4, feature_names=["a", "b", "c"]
    )
    # row 1: a differs by 10 / std(a) = 2.31 std, b by 1 / std(b) = 2 std; row 2: b by
    # 2 std, c by 1 (one missing side counts as one std)
    assert disp.differences == [
        "same features as the query",
        "a=10 (query 0), b=1 (query 0)",
        "b=1 (query 0), c=NaN (query 1)",
        "same features as the query",
    ]
    assert _texts(disp.ax_.get_yticklabels())[1] == "#1: a=10 (query 0), b=1 (query 0)"
    # regression labels are shown with 4 significant digits
    reg = InfluenceDisplay.from_influence(
        inf, X_train=X, y_train=np.array([1 / 3, 2.0, 3.0, 4.0]), x_query=X[0], k=1
    )
    assert _texts(reg.ax_.get_yticklabels()) == [
        "#0 (y=0.3333): same features as the query",
        "#3 (y=4): same features as the query",
    ]


def test_sign_helpful_means_removal_raises_the_query_loss():
    """Bars labelled helpful are rows whose removal raises the query's loss (exact
    leave-one-out retraining on 40 rows), harmful ones lower it."""
    X, y, _ = load_dataset("spam", as_frame=False)
    rng = np.random.default_rng(1)
    rows = rng.choice(len(y), 40, replace=False)
    X, y = X[rows], y[rows]
    model = _model().fit(X, y)
    loo = LOO(model).fit(X, y)
    xq, yq = X[[0]], y[0]
    disp = InfluenceDisplay.from_estimator(loo, xq, yq, X_train=X, y_train=y, k=2)
    col = list(model.classes_).index(yq)
    loss = -np.log(model.predict_proba(xq)[0, col])
    red = mcolors.to_rgba("tab:red")
    for bar, i in zip(disp.bars_, disp.rows):
        keep = np.arange(len(y)) != i
        refit = clone(model).fit(X[keep], y[keep])
        change = -np.log(refit.predict_proba(xq)[0, col]) - loss
        assert np.sign(change) == np.sign(bar.get_width())
        assert (bar.get_facecolor() == red) == (change < 0)


def test_from_influence_matches_from_estimator_and_uses_given_axes(credit):
    X, y, _, explainer, Xq, yq = credit
    inf = explainer.transform(Xq, [yq])[0]
    fig, ax = plt.subplots()
    a = InfluenceDisplay.from_influence(inf, X_train=X, y_train=y, x_query=Xq, k=3, ax=ax)
    b = InfluenceDisplay.from_estimator(explainer, Xq, yq, X_train=X, y_train=y, k=3)
    assert a.ax_ is ax and a.figure_ is fig and b.ax_ is not ax
    np.testing.assert_array_equal(a.rows, b.rows)
    assert (
        _texts(a.ax_.get_yticklabels())[0].split(":")[0]
        == _texts(b.ax_.get_yticklabels())[0].split(":")[0]
    )
    # a Series (df.iloc[i], categorical columns as objects) is one query row too
    c = InfluenceDisplay.from_estimator(explainer, Xq.iloc[0], yq, X_train=X, y_train=y, k=3)
    assert c.differences == a.differences
    np.testing.assert_allclose(c.influence, a.influence)
    # plot() again on other axes keeps the data and moves the artists
    fig2, ax2 = plt.subplots()
    assert a.plot(ax=ax2, helpful_color="green").ax_ is ax2
    assert a.bars_[0].get_facecolor() == mcolors.to_rgba("green")


def test_influence_display_does_not_modify_inputs(credit):
    X, y, _, explainer, Xq, yq = credit
    X0, y0, Xq0 = X.copy(), y.copy(), Xq.copy()
    inf = explainer.transform(Xq, [yq])[0]
    inf0 = inf.copy()
    InfluenceDisplay.from_estimator(explainer, Xq, yq, X_train=X, y_train=y)
    InfluenceDisplay.from_influence(inf, X_train=X, y_train=y, x_query=Xq)
    top_influences_frame(explainer, Xq, yq, X_train=X, y_train=y)
    pd.testing.assert_frame_equal(X, X0)
    pd.testing.assert_frame_equal(Xq, Xq0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(inf, inf0)


def test_influence_display_errors(credit):
    X, y, model, explainer, Xq, yq = credit
    with pytest.raises(NotFittedError):
        InfluenceDisplay.from_estimator(BoostIn(model), Xq, X_train=X, y_train=y)
    with pytest.raises(TypeError, match="influence estimator"):
        InfluenceDisplay.from_estimator(model, Xq, X_train=X, y_train=y)
    with pytest.raises(ValueError, match="one query row; got 2 rows"):
        InfluenceDisplay.from_estimator(explainer, X.iloc[:2], X_train=X, y_train=y)
    with pytest.raises(ValueError, match="X_train has 199 rows but the explainer was fitted"):
        InfluenceDisplay.from_estimator(explainer, Xq, X_train=X.iloc[1:], y_train=y[1:])
    with pytest.raises(ValueError, match="y_query must be one label"):
        InfluenceDisplay.from_estimator(explainer, Xq, y[:2], X_train=X, y_train=y)
    inf = np.zeros(len(y))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        InfluenceDisplay.from_influence(inf, X_train=X, y_train=y, x_query=Xq, k=0)
    with pytest.raises(ValueError, match="influence has 199 values"):
        InfluenceDisplay.from_influence(inf[1:], X_train=X, y_train=y, x_query=Xq)
    with pytest.raises(ValueError, match=r"influence of one query \(shape \(n_train,\)\)"):
        InfluenceDisplay.from_influence(np.zeros((2, 200)), X_train=X, y_train=y, x_query=Xq)
    with pytest.raises(ValueError, match="y_train must be 1-D"):
        InfluenceDisplay.from_influence(inf, X_train=X, y_train=y[1:], x_query=Xq)
    with pytest.raises(ValueError, match="x_query has 2 features but X_train has 3"):
        InfluenceDisplay.from_influence(
            np.ones(2), X_train=np.ones((2, 3)), y_train=None, x_query=np.ones(2)
        )
    with pytest.raises(ValueError, match="NaN"):
        InfluenceDisplay.from_influence(
            np.array([np.nan, 1]), X_train=np.ones((2, 1)), y_train=None, x_query=[1.0]
        )


def test_top_influences_frame(credit):
    X, y, _, explainer, Xq, yq = credit
    frame = top_influences_frame(explainer, Xq, yq, X_train=X, y_train=y, k=3)
    disp = InfluenceDisplay.from_estimator(explainer, Xq, yq, X_train=X, y_train=y, k=3)
    assert list(frame.columns[:5]) == ["row", "influence", "direction", "label", "differences"]
    assert list(frame.columns[5:]) == list(X.columns)
    np.testing.assert_array_equal(frame["row"], disp.rows)
    np.testing.assert_allclose(frame["influence"], [b.get_width() for b in disp.bars_])
    assert list(frame["direction"]) == ["helpful"] * 3 + ["harmful"] * 3
    np.testing.assert_array_equal(frame["label"], y[X.index.get_indexer(frame["row"])])
    expected = X.loc[frame["row"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(frame[list(X.columns)], expected)  # dtypes kept
    assert frame["differences"].tolist() == disp.differences
    # numpy input: positions and x0.. names; no label column without y_train
    Xn = X.select_dtypes("number").to_numpy()
    model = _model().fit(Xn, y)
    exp = BoostIn(model).fit(Xn, y)
    f2 = top_influences_frame(exp, Xn[0], X_train=Xn, y_train=None, k=2, feature_names=None)
    assert "label" not in f2.columns and f2.columns[-1] == f"x{Xn.shape[1] - 1}"
    np.testing.assert_array_equal(f2.iloc[:, 4:].to_numpy(), Xn[f2["row"].to_numpy()])


# -------------------------------------------------------------- SelfInfluenceDisplay
def _pr_reference(scores, noisy):
    order = sorted(np.flatnonzero(~np.isnan(scores)), key=lambda i: (-scores[i], i))
    found = [noisy[order[: k + 1]].sum() for k in range(len(order))]
    k = np.arange(1, len(order) + 1)
    return np.array(order), k / len(scores), np.array(found) / k, np.array(found) / noisy.sum()


def test_self_influence_display_from_estimator(credit):
    X, y, _, explainer, _, _ = credit
    noisy = np.zeros(len(y), dtype=bool)
    noisy[::7] = True
    s = explainer.self_influence()
    disp = SelfInfluenceDisplay.from_estimator(explainer, X, y, fraction=0.1, noisy=noisy)
    order, inspected, precision, recall = _pr_reference(s, noisy)
    np.testing.assert_array_equal(disp.order_, order)
    # the ranked line and the 20 selected rows (the top 10 %) at ranks 1..20
    np.testing.assert_allclose(disp.line_.get_ydata(), s[order])
    np.testing.assert_allclose(disp.line_.get_xdata(), np.arange(1, len(y) + 1))
    sel = np.asarray(disp.selected_.get_offsets())
    np.testing.assert_allclose(sel[:, 0], np.arange(1, 21))
    np.testing.assert_allclose(sel[:, 1], s[order[:20]])
    # noisy rows marked at their ranks
    rank = np.empty(len(y))
    rank[order] = np.arange(1, len(y) + 1)
    np.testing.assert_allclose(np.asarray(disp.noisy_.get_offsets())[:, 0], np.sort(rank[noisy]))
    # precision / recall of the noisy rows against the share inspected
    np.testing.assert_allclose(disp.precision_, precision)
    np.testing.assert_allclose(disp.recall_, recall)
    np.testing.assert_allclose(disp.precision_line_.get_xdata(), 100 * inspected)
    np.testing.assert_allclose(disp.recall_line_.get_ydata(), recall)
    np.testing.assert_allclose(disp.chance_level_.get_ydata(), noisy.mean())
    assert disp.recall_[-1] == 1.0
    assert _texts(disp.pr_ax_.get_legend().get_texts()) == [
        "precision",
        "recall",
        "noise rate (random order)",
    ]
    assert _texts(disp.ax_.get_legend().get_texts()) == ["noisy", "selected"]
    assert disp.ax_.get_ylabel() == "self-influence"
    assert disp.pr_ax_.get_xlabel() == "training rows inspected (%)"
    assert disp.pr_ax_.figure is disp.figure_


def test_self_influence_display_from_predictions():
    scores = np.array([0.5, np.nan, 2.0, 0.5, -1.0, 3.0])
    noisy_pos = np.array([2, 4])
    fig, (a1, a2) = plt.subplots(1, 2)
    scores0 = scores.copy()
    disp = SelfInfluenceDisplay.from_predictions(
        scores, selected=[0, 4], noisy=noisy_pos, ax=(a1, a2)
    )
    np.testing.assert_array_equal(scores, scores0)
    assert disp.ax_ is a1 and disp.pr_ax_ is a2 and disp.figure_ is fig
    np.testing.assert_array_equal(disp.order_, [5, 2, 0, 3, 4])  # NaN left out, ties by position
    np.testing.assert_allclose(np.asarray(disp.selected_.get_offsets())[:, 0], [3, 5])
    np.testing.assert_allclose(disp.inspected_, np.arange(1, 6) / 6)
    np.testing.assert_allclose(disp.precision_, [0, 1 / 2, 1 / 3, 1 / 4, 2 / 5])
    np.testing.assert_allclose(disp.recall_, [0, 0.5, 0.5, 0.5, 1.0])
    # without noise: one axes, no precision/recall; a mask equals positions
    d2 = SelfInfluenceDisplay.from_predictions(scores, selected=scores > 1)
    assert d2.pr_ax_ is None and d2.precision_ is None and d2.noisy_ is None
    np.testing.assert_array_equal(d2.selected, [False, False, True, False, False, True])
    d3 = SelfInfluenceDisplay.from_predictions(scores, fraction=0.5)
    np.testing.assert_array_equal(np.flatnonzero(d3.selected), [0, 2, 5])
    assert d3.ax_.get_legend() is not None
    d4 = SelfInfluenceDisplay.from_predictions(scores, fraction=0.5).plot(score_name="harm")
    assert d4.ax_.get_ylabel() == "harm"


def test_self_influence_display_from_cleaner(credit):
    X, y, _, _, _, _ = credit
    cleaner = InfluenceCleaner(_model(), fraction=0.05, balance="class").fit(X, y)
    disp = SelfInfluenceDisplay.from_estimator(cleaner, X, y)
    np.testing.assert_array_equal(np.flatnonzero(disp.selected), np.sort(cleaner.selected_indices_))
    np.testing.assert_array_equal(disp.scores, cleaner.harm_)


def test_self_influence_display_errors(credit):
    X, y, model, explainer, _, _ = credit
    with pytest.raises(NotFittedError):
        SelfInfluenceDisplay.from_estimator(BoostIn(model), X, y)
    with pytest.raises(ValueError, match="X has 199 rows but the explainer was fitted on 200"):
        SelfInfluenceDisplay.from_estimator(explainer, X.iloc[1:], y[1:])
    with pytest.raises(ValueError, match="X has 200 rows but y has 199"):
        SelfInfluenceDisplay.from_estimator(explainer, X, y[1:])
    with pytest.raises(ValueError, match="fraction must be a number"):
        SelfInfluenceDisplay.from_estimator(explainer, X, y, fraction=1.5)
    with pytest.raises(ValueError, match="scores must be 1-D"):
        SelfInfluenceDisplay.from_predictions(np.ones((2, 2)))
    with pytest.raises(ValueError, match="give selected or fraction"):
        SelfInfluenceDisplay.from_predictions(np.ones(3), selected=[0], fraction=0.1)
    with pytest.raises(ValueError, match="noisy must be a boolean mask of shape"):
        SelfInfluenceDisplay.from_predictions(np.ones(3), noisy=[True, False])
    with pytest.raises(ValueError, match="positions outside"):
        SelfInfluenceDisplay.from_predictions(np.ones(3), selected=[3])
    with pytest.raises(ValueError, match="noisy marks no row"):
        SelfInfluenceDisplay.from_predictions(np.ones(3), noisy=np.zeros(3, bool))
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="a pair of Axes"):
        SelfInfluenceDisplay.from_predictions(np.ones(3), noisy=[0], ax=ax)


# ------------------------------------------------------------ evaluation protocols
def test_edit_curve_display():
    res = pd.DataFrame({"fraction": [0, 0, 0.1, 0.1], "loss": [1.0, 2.0, 3.0, np.nan]})
    res0 = res.copy()
    fig, ax = plt.subplots()
    disp = EditCurveDisplay.from_results({"A": res, "B": res}, ax=ax, color="k")
    pd.testing.assert_frame_equal(res, res0)
    assert disp.ax_ is ax and len(disp.lines_) == 2 and len(ax.lines) == 2
    np.testing.assert_allclose(disp.lines_[0].get_xdata(), [0, 10])
    np.testing.assert_allclose(disp.lines_[0].get_ydata(), [1.5, 3.0])  # NaN ignored
    assert disp.lines_[1].get_color() == "k"
    assert _texts(ax.get_legend().get_texts()) == ["A", "B"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("training rows edited (%)", "mean loss")
    one = EditCurveDisplay.from_results(res, metric="loss")
    assert one.ax_.get_legend() is None and one.name == [None]
    with pytest.raises(ValueError, match="no column 'accuracy'"):
        EditCurveDisplay.from_results(res, metric="accuracy")
    with pytest.raises(TypeError, match="evaluation result"):
        EditCurveDisplay.from_results({"A": 3})
    with pytest.raises(ValueError, match="empty mapping"):
        EditCurveDisplay.from_results({})
    manual = EditCurveDisplay(fraction=[np.array([0, 0.5])], values=[np.array([1, 2])]).plot()
    np.testing.assert_allclose(manual.lines_[0].get_xdata(), [0, 50])


def test_counterfactual_and_noise_displays():
    cf = pd.DataFrame(
        {
            "correct": [True, True, True, False],
            "flipped": [True, True, False, True],
            "fraction_edited": [0.05, 0.02, 0.1, 0.01],
        }
    )
    disp = CounterfactualDisplay.from_results({"m": cf})
    np.testing.assert_allclose(disp.lines_[0].get_xdata(), [0, 2, 5])
    np.testing.assert_allclose(disp.lines_[0].get_ydata(), [0, 1 / 3, 2 / 3])
    assert disp.lines_[0].get_drawstyle() == "steps-post"
    assert disp.ax_.get_ylabel() == "predictions flipped"
    noise = {"fraction": np.array([0, 0.1]), "fraction_found": np.array([0, 0.4])}
    nd = NoiseDetectionDisplay.from_results({"m": noise, "r": noise}, metric="fraction_found")
    np.testing.assert_allclose(nd.lines_[1].get_ydata(), [0, 0.4])
    assert _texts(nd.ax_.get_legend().get_texts()) == ["m", "r"]  # no area: plain names
    assert nd.ax_.get_xlabel() == "training rows checked (%)"


def test_query_score_displays():
    res = {"a": pd.DataFrame({"lds": [0.1, np.nan, 0.3]}), "b": pd.DataFrame({"lds": [0.5]})}
    disp = LDSDisplay.from_results(res)
    assert isinstance(disp, QueryScoresDisplay) and disp.column == "lds"
    assert len(disp.boxplot_["boxes"]) == 2
    np.testing.assert_allclose(disp.boxplot_["medians"][0].get_ydata(), [0.2, 0.2])
    assert _texts(disp.ax_.get_xticklabels()) == ["a", "b"]
    assert disp.zero_line_.get_ydata()[0] == 0
    loo = LOOCorrelationDisplay.from_results(pd.DataFrame({"correlation": [0.2, 0.4]}))
    assert loo.ax_.get_ylabel() == "correlation"
    np.testing.assert_allclose(loo.scores[0], [0.2, 0.4])
    with pytest.raises(ValueError, match="no column 'lds'"):
        LDSDisplay.from_results({"correlation": np.array([0.1])})


# ------------------------------------------------------------ CleaningCurveDisplay
@pytest.fixture(scope="module")
def search(credit):
    """A search over the cleaned fraction of a cleaner inside a Pipeline."""
    X, y, _, _, _, _ = credit
    pipe = Pipeline([("cleaner", InfluenceCleaner(_model()))])
    grid = {"cleaner__fraction": [0.0, 0.05, 0.1]}
    return GridSearchCV(pipe, grid, cv=2).fit(X, y)


def test_cleaning_curve_from_search(search):
    cv = search.cv_results_
    fig, ax = plt.subplots()
    disp = CleaningCurveDisplay.from_cv_results(
        search, baseline={"no cleaning": 0.7, "cleanlab": np.array([0.6, 0.7])}, ax=ax
    )
    assert disp.param == "cleaner__fraction"  # found by the name it ends with
    assert disp.ax_ is ax and disp.figure_ is fig and len(disp.lines_) == 1
    np.testing.assert_allclose(disp.lines_[0].get_xdata(), [0, 5, 10])
    np.testing.assert_allclose(disp.lines_[0].get_ydata(), cv["mean_test_score"])
    band = disp.bands_[0].get_paths()[0].vertices
    lo, hi = (
        cv["mean_test_score"] - cv["std_test_score"],
        cv["mean_test_score"] + cv["std_test_score"],
    )
    np.testing.assert_allclose([band[:, 1].min(), band[:, 1].max()], [lo.min(), hi.max()])
    best = search.best_params_["cleaner__fraction"]
    np.testing.assert_allclose(disp.best_.get_xdata(), [100 * best])
    np.testing.assert_allclose(disp.best_.get_ydata(), [search.best_score_])
    np.testing.assert_allclose(disp.level_lines_[0].get_ydata(), 0.7)
    np.testing.assert_allclose(disp.level_lines_[1].get_ydata(), 0.65)
    assert _texts(ax.get_legend().get_texts()) == [
        "cleaned",
        f"chosen (fraction={best:g})",
        "no cleaning",
        "cleanlab",
    ]
    assert ax.get_xlabel() == "training rows cleaned (%)"
    assert ax.get_ylabel().startswith("held-out score")


def _cv_results(params, mean):
    mean = np.asarray(mean, dtype=float)
    return {"params": params, "mean_test_score": mean, "std_test_score": 0.1 * mean}


def test_cleaning_curve_groups_routed_and_other_params():
    a, b = BoostIn(), LeafSim()
    params = [
        {"cleaner__fraction": f, "cleaner__method": m, "model__max_iter": 5}
        for m in (a, b)
        for f in (0.1, 0.0, "auto")
    ]
    cv = _cv_results(params, [0.8, 0.7, 0.75, 0.6, 0.65, 0.9])
    mean0 = cv["mean_test_score"].copy()
    disp = CleaningCurveDisplay.from_cv_results(cv)  # "fraction" found as the routed name
    np.testing.assert_array_equal(cv["mean_test_score"], mean0)
    assert cv["params"][0]["cleaner__fraction"] == 0.1
    assert disp.param == "cleaner__fraction" and disp.best is None
    assert disp.name == ["cleaner__method=BoostIn", "cleaner__method=LeafSim"]
    np.testing.assert_allclose(disp.lines_[0].get_xdata(), [0, 10])  # sorted
    np.testing.assert_allclose(disp.lines_[0].get_ydata(), [0.7, 0.8])
    np.testing.assert_allclose(disp.lines_[1].get_ydata(), [0.65, 0.6])
    assert list(disp.levels) == [
        "cleaner__method=BoostIn, cleaner__fraction='auto'",
        "cleaner__method=LeafSim, cleaner__fraction='auto'",
    ]
    np.testing.assert_allclose(disp.level_lines_[1].get_ydata(), 0.9)
    assert len(disp.ax_.get_legend().get_texts()) == 4


def test_cleaning_curve_errors_and_metrics(search):
    with pytest.raises(ValueError, match="no parameter 'n_rows'.*'cleaner__fraction'"):
        CleaningCurveDisplay.from_cv_results(search, param="n_rows")
    no_fraction = _cv_results([{"C": 1.0}, {"C": 2.0}], [0.5, 0.6])
    with pytest.raises(ValueError, match="no parameter 'fraction'.*\\['C'\\]"):
        CleaningCurveDisplay.from_cv_results(no_fraction)
    with pytest.raises(ValueError, match="no candidate of the search has a numeric fraction"):
        CleaningCurveDisplay.from_cv_results(_cv_results([{"fraction": "auto"}], [0.5]))
    with pytest.raises(NotFittedError):
        CleaningCurveDisplay.from_cv_results(GridSearchCV(InfluenceCleaner(), {"fraction": [0]}))
    multi = {
        "params": [{"fraction": 0.0}, {"fraction": 0.1}],
        "mean_test_acc": np.array([0.5, 0.6]),
        "std_test_acc": np.zeros(2),
        "mean_test_auc": np.array([0.7, 0.8]),
        "std_test_auc": np.zeros(2),
    }
    with pytest.raises(ValueError, match=r"several metrics \['acc', 'auc'\]"):
        CleaningCurveDisplay.from_cv_results(multi)
    with pytest.raises(ValueError, match="no metric 'f1'"):
        CleaningCurveDisplay.from_cv_results(multi, scoring="f1")
    disp = CleaningCurveDisplay.from_cv_results(multi, scoring="auc", baseline=0.5)
    np.testing.assert_allclose(disp.lines_[0].get_ydata(), [0.7, 0.8])
    assert disp.ax_.get_ylabel().startswith("held-out auc")
    assert _texts(disp.ax_.get_legend().get_texts()) == ["cleaned", "baseline"]
    # n_rows (not a fraction): plain x values and the parameter as the x label
    rows = CleaningCurveDisplay.from_cv_results(
        _cv_results([{"n_rows": 0}, {"n_rows": 5}], [0.5, 0.6]), param="n_rows"
    )
    np.testing.assert_allclose(rows.lines_[0].get_xdata(), [0, 5])
    assert rows.ax_.get_xlabel() == "n_rows"


def test_cleaning_curve_param_names(search):
    full = CleaningCurveDisplay.from_cv_results(search, param="cleaner__fraction")
    short = CleaningCurveDisplay.from_cv_results(search, param="fraction")
    np.testing.assert_allclose(full.lines_[0].get_ydata(), short.lines_[0].get_ydata())
    assert full.best == short.best and full.best is not None


# ------------------------------------------------------------------------ packaging
def test_displays_are_exported_and_matplotlib_is_optional(monkeypatch):
    for name in skinfluence.plotting.__all__:
        if name.endswith("Display"):
            assert getattr(skinfluence, name) is getattr(skinfluence.plotting, name)
            assert name in skinfluence.__all__
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install skinfluence\[plot\]"):
        EditCurveDisplay.from_results({"fraction": np.array([0.0]), "loss": np.array([1.0])})
    with pytest.raises(ImportError, match="InfluenceDisplay.from_influence needs matplotlib"):
        InfluenceDisplay.from_influence([1.0], X_train=[[1.0]], y_train=None, x_query=[1.0])
