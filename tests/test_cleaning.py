"""InfluenceCleaner and InfluenceSampler (skinfluence.cleaning)."""

import numpy as np
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

from skinfluence import BoostIn
from skinfluence.cleaning import InfluenceCleaner, InfluenceSampler
from skinfluence.datasets import load_dataset

from .models import hgb_classifier, hgb_regressor, make_data, make_model

# the models are tiny: OpenMP threads only add overhead (and contention)
pytestmark = pytest.mark.usefixtures("one_thread")


#: one removal round on one split: the defaults before session 10 (action "auto" with
#: two rounds of reweighting on two repeated splits for classifiers since), which the
#: oracles of the removal tests below follow
ONE_ROUND = {"action": "remove", "n_rounds": 1, "n_repeats": 1}


def _remover(*args, **kw):
    return InfluenceCleaner(*args, **{**ONE_ROUND, **kw})


# ------------------------------------------------------------------- evidence
@pytest.fixture(scope="module")
def noisy_spam():
    """spam, 1000 training rows with 20% of the labels flipped, 1500 clean test rows."""
    X, y, _ = load_dataset("spam")
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, train_size=1000, test_size=1500, random_state=0, stratify=y
    )
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(y_tr), size=len(y_tr) // 5, replace=False)
    y_noisy = y_tr.copy()
    y_noisy[flipped] = np.where(y_tr[flipped] == "y", "n", "y")
    is_flipped = np.zeros(len(y_tr), dtype=bool)
    is_flipped[flipped] = True
    return X_tr, y_noisy, y_tr, is_flipped, X_te, y_te


def _overfitting_model():
    # a model flexible enough to memorise wrong labels (the case cleaning is for)
    return hgb_classifier(max_iter=100, max_leaf_nodes=31, learning_rate=0.3)


def _other_methods():
    """Influence methods other than BoostIn that exist in this checkout."""
    out = []
    try:
        from skinfluence._trex import TREX
    except ImportError:  # pragma: no cover - being written in parallel
        pass
    else:
        out.append(TREX())
    return out


def test_grid_search_chooses_cleaning_and_it_helps(noisy_spam):
    X, y_noisy, _, is_flipped, X_te, y_te = noisy_spam
    cleaner = _remover(_overfitting_model(), BoostIn(), random_state=0)
    grid = [{"fraction": [0.0, 0.1, 0.2]}]
    others = _other_methods()
    if others:
        grid.append({"method": others, "fraction": [0.2]})
    search = GridSearchCV(cleaner, grid, cv=3, error_score="raise").fit(X, y_noisy)
    assert search.best_params_["fraction"] > 0

    baseline = _overfitting_model().fit(X, y_noisy).score(X_te, y_te)
    cleaned = search.best_estimator_.score(X_te, y_te)
    assert cleaned > baseline + 0.02, (baseline, cleaned)

    best = search.best_estimator_
    n_removed = len(best.removed_indices_)
    assert n_removed == int(search.best_params_["fraction"] * len(X))
    # the removed rows are mostly the flipped ones (20% of the data)
    assert is_flipped[best.removed_indices_].mean() > 0.4
    assert len(best.kept_indices_) + n_removed == len(X)

    # every candidate's fraction is monotone in CV score here: no cleaning is worst
    res = search.cv_results_
    scores = {
        (type(p.get("method", cleaner.method)).__name__, p["fraction"]): s
        for p, s in zip(res["params"], res["mean_test_score"])
    }
    assert scores[("BoostIn", 0.0)] < max(scores[("BoostIn", 0.1)], scores[("BoostIn", 0.2)])


def test_relabel_restores_flipped_labels(noisy_spam):
    X, y_noisy, y_true, is_flipped, X_te, y_te = noisy_spam
    cleaner = _remover(
        _overfitting_model(), fraction=0.2, action="relabel", balance=None, random_state=0
    ).fit(X, y_noisy)
    idx = cleaner.relabeled_indices_
    assert len(idx) > 0 and len(cleaner.removed_indices_) == 0
    assert len(cleaner.kept_indices_) == len(X)
    assert set(idx) <= set(cleaner.selected_indices_)
    np.testing.assert_array_equal(cleaner.relabeled_from_, y_noisy[idx])
    assert np.all(cleaner.relabeled_to_ != cleaner.relabeled_from_)
    # most changed labels are flipped rows put back to their true label
    assert np.mean(cleaner.relabeled_to_ == y_true[idx]) > 0.6
    assert is_flipped[idx].mean() > 0.6
    # the final model is the model fitted on the relabelled data
    y_fixed = y_noisy.copy()
    y_fixed[idx] = cleaner.relabeled_to_
    ref = _overfitting_model().fit(X, y_fixed)
    np.testing.assert_array_equal(cleaner.predict(X_te), ref.predict(X_te))
    assert cleaner.score(X_te, y_te) > _overfitting_model().fit(X, y_noisy).score(X_te, y_te)


# ---------------------------------------------------------------- no leakage
class _RecordingBoostIn(BoostIn):
    """BoostIn that records the first-column values of every training set it sees."""

    seen = []

    def fit(self, X, y, sample_weight=None):
        type(self).seen.append(frozenset(np.asarray(X)[:, 0].tolist()))
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.mark.parametrize("criterion", ["self", "oof"])
def test_each_cv_fold_scores_influence_on_its_own_training_part(criterion):
    X, y = make_data("binary", n=120, seed=1)
    X[:, 0] = np.arange(len(X)) + 0.5  # a row id, to recognise the rows
    cv = list(KFold(3, shuffle=True, random_state=0).split(X))
    _RecordingBoostIn.seen = []
    cleaner = _remover(
        hgb_classifier(), _RecordingBoostIn(), criterion=criterion, cv=3, random_state=0
    )
    search = GridSearchCV(cleaner, {"fraction": [0.0, 0.1]}, cv=cv, refit=False).fit(X, y)
    seen = _RecordingBoostIn.seen
    per_fit = 1 if criterion == "self" else 3
    assert len(seen) == len(cv) * 2 * per_fit
    for rows in seen:
        # inside one outer training part, never a row of the matching test part
        assert any(rows <= set(X[tr, 0]) and not rows & set(X[te, 0]) for tr, te in cv)
    # the grid's scores are those of cleaners fitted on each training part alone
    for k, (tr, te) in enumerate(cv):
        for j, fraction in enumerate([0.0, 0.1]):
            alone = clone(cleaner).set_params(fraction=fraction).fit(X[tr], y[tr])
            assert search.cv_results_[f"split{k}_test_score"][j] == alone.score(X[te], y[te])


# ------------------------------------------------------------------- sampler
def test_sampler_in_an_imblearn_pipeline():
    pytest.importorskip("imblearn")
    from imblearn.pipeline import make_pipeline

    X, y = make_data("binary", n=150, seed=2)
    y[:15] = 1 - y[:15]
    sampler = InfluenceSampler(hgb_classifier(), fraction=0.1)
    pipe = make_pipeline(sampler, hgb_classifier()).fit(X, y)
    kept = pipe[0].sample_indices_
    assert len(kept) == 135 and len(pipe[0].removed_indices_) == 15
    ref = hgb_classifier().fit(X[kept], y[kept])
    # predicting does not resample: every query row gets a prediction
    np.testing.assert_array_equal(pipe.predict(X), ref.predict(X))
    np.testing.assert_allclose(pipe.predict_proba(X[:5]), ref.predict_proba(X[:5]))
    # GridSearchCV over the sampler inside the pipeline
    search = GridSearchCV(pipe, {"influencesampler__fraction": [0.0, 0.1]}, cv=3).fit(X, y)
    assert search.best_params_["influencesampler__fraction"] in (0.0, 0.1)


def test_sampler_keeps_pandas_types_and_relabels():
    pd = pytest.importorskip("pandas")
    X, y = make_data("binary", n=100, seed=3)
    df = pd.DataFrame(X, columns=list("abcd"), index=[f"r{i}" for i in range(100)])
    ys = pd.Series(np.where(y == 1, "yes", "no"), index=df.index, name="target")
    sampler = InfluenceSampler(hgb_classifier(), fraction=0.1)
    Xr, yr = sampler.fit_resample(df, ys)
    assert isinstance(Xr, pd.DataFrame) and isinstance(yr, pd.Series)
    assert list(Xr.index) == list(df.index[sampler.sample_indices_])
    assert list(yr.index) == list(Xr.index) and yr.name == "target"
    assert len(Xr) == 90
    np.testing.assert_array_equal(sampler.feature_names_in_, list("abcd"))

    relabel = InfluenceSampler(hgb_classifier(), fraction=0.2, action="relabel", random_state=0)
    Xr, yr = relabel.fit_resample(df, ys)
    assert len(Xr) == 100 and list(yr.index) == list(df.index)
    changed = relabel.relabeled_indices_
    np.testing.assert_array_equal(yr.iloc[changed].to_numpy(), relabel.relabeled_to_)
    unchanged = np.setdiff1d(np.arange(100), changed)
    np.testing.assert_array_equal(yr.iloc[unchanged].to_numpy(), ys.iloc[unchanged])


# --------------------------------------------------------------- behaviour
def test_criteria_and_threshold():
    X, y = make_data("binary", n=120, seed=4)
    val = _remover(
        hgb_classifier(),
        criterion="validation",
        validation_size=0.25,
        fraction=0.1,
        loss_weight=0.0,
        balance=None,
        random_state=0,
    ).fit(X, y)
    unscored = np.isnan(val.harm_)
    assert unscored.sum() == 30
    assert not set(np.flatnonzero(unscored)) & set(val.removed_indices_)
    np.testing.assert_allclose(val.harm_[~unscored], -val.influence_[~unscored])
    assert val.method_.n_train_ == 90

    oof = _remover(
        hgb_classifier(),
        criterion="oof",
        cv=4,
        fraction=1.0,
        threshold=0.0,
        loss_weight=0.0,
        balance=None,
        random_state=0,
    ).fit(X, y)
    assert np.all(np.isfinite(oof.influence_))
    np.testing.assert_array_equal(np.sort(oof.removed_indices_), np.flatnonzero(oof.influence_ < 0))

    slf = _remover(hgb_classifier(), n_rows=7, loss_weight=0.0, balance=None).fit(X, y)
    s = BoostIn(hgb_classifier().fit(X, y)).fit(X, y).self_influence()
    np.testing.assert_allclose(slf.influence_, s)
    top = np.argsort(-s, kind="stable")[:7]
    np.testing.assert_array_equal(slf.removed_indices_, top)
    assert np.all(np.diff(slf.harm_[slf.removed_indices_]) <= 0)
    ref = hgb_classifier().fit(np.delete(X, top, axis=0), np.delete(y, top))
    np.testing.assert_allclose(slf.predict_proba(X), ref.predict_proba(X))


def test_nested_params_clone_tags_and_delegation():
    cleaner = InfluenceCleaner(hgb_classifier(), BoostIn(derivative="exact"), fraction=0.1)
    params = cleaner.get_params()
    assert params["method__derivative"] == "exact" and params["estimator__max_iter"] == 10
    cleaner.set_params(method__leaf_scaling="inverse_size", estimator__max_iter=4)
    twin = clone(cleaner)
    assert twin.method.leaf_scaling == "inverse_size" and twin.estimator.max_iter == 4
    assert is_classifier(cleaner) and not is_regressor(cleaner)
    assert is_regressor(InfluenceCleaner(hgb_regressor()))
    X, y = make_data("multiclass", n=120, seed=5)
    labels = np.array(["a", "b", "c"])[y]
    cleaner.fit(X, labels)
    assert cleaner.method_.leaf_scaling == "inverse_size"
    assert cleaner.method_.estimator is not cleaner.estimator  # its model was replaced
    assert cleaner.estimator_.max_iter == 4 and cleaner.estimator.max_iter == 4
    assert list(cleaner.classes_) == ["a", "b", "c"]
    assert cleaner.predict_proba(X[:3]).shape == (3, 3)
    assert cleaner.decision_function(X[:3]).shape == (3, 3)
    assert not hasattr(InfluenceCleaner(hgb_regressor()), "predict_proba")
    search = GridSearchCV(
        cleaner, {"estimator__max_iter": [3, 5], "method__derivative": ["published", "exact"]}, cv=2
    )
    search.fit(X, labels)
    assert search.best_estimator_.estimator_.max_iter in (3, 5)


def test_pandas_categorical_input_and_sample_weight():
    pd = pytest.importorskip("pandas")
    X, y, _ = load_dataset("credit")
    X, y = X.iloc[:400], y[:400]
    model = hgb_classifier(categorical_features="from_dtype")
    w = np.random.default_rng(0).uniform(0.5, 2.0, size=len(y))
    cleaner = _remover(model, fraction=0.05).fit(X, y, sample_weight=w)
    assert isinstance(X, pd.DataFrame)
    np.testing.assert_array_equal(cleaner.feature_names_in_, X.columns)
    kept = cleaner.kept_indices_
    assert len(kept) == 380
    ref = clone(model).fit(X.iloc[kept], y[kept], sample_weight=w[kept])
    np.testing.assert_allclose(cleaner.predict_proba(X), ref.predict_proba(X))


@pytest.mark.parametrize("action", ["remove", "relabel"])
def test_regression(action):
    X, y = make_data("squared_error", n=150, seed=6)
    y[:10] += 40.0  # gross outliers
    cleaner = _remover(
        make_model("lightgbm", "squared_error"),
        criterion="oof",
        fraction=0.1,
        action=action,
        cv=3,
        random_state=0,
    ).fit(X, y)
    chosen = cleaner.selected_indices_
    assert len(chosen) == 15
    assert np.isin(np.arange(10), chosen).mean() >= 0.7  # the outliers are found
    if action == "relabel":
        assert np.all(np.abs(cleaner.relabeled_to_ - cleaner.relabeled_from_) > 0)
        assert cleaner.relabeled_to_.dtype == np.float64


def test_nothing_selected_reuses_the_scoring_model():
    X, y = make_data("binary", n=80, seed=7)
    cleaner = _remover(hgb_classifier(), fraction=0.0, loss_weight=0.0).fit(X, y)
    assert cleaner.estimator_ is cleaner.method_.estimator_
    assert len(cleaner.removed_indices_) == 0 and len(cleaner.kept_indices_) == 80


def test_progress_bar(capsys):
    pytest.importorskip("tqdm")
    X, y = make_data("binary", n=80, seed=8)
    quiet = _remover(hgb_classifier(), fraction=0.1, criterion="oof", cv=3, random_state=0).fit(
        X, y
    )
    loud = clone(quiet).set_params(verbose=1).fit(X, y)
    assert "InfluenceCleaner" in capsys.readouterr().err
    np.testing.assert_array_equal(quiet.removed_indices_, loud.removed_indices_)


def test_errors_are_clear():
    X, y = make_data("binary", n=60, seed=9)
    with pytest.raises(ValueError, match="fraction"):
        InfluenceCleaner(hgb_classifier(), fraction=1.5).fit(X, y)
    with pytest.raises(ValueError, match="criterion"):
        InfluenceCleaner(hgb_classifier(), criterion="loss").fit(X, y)
    with pytest.raises(ValueError, match="action"):
        InfluenceCleaner(hgb_classifier(), action="drop").fit(X, y)
    with pytest.raises(ValueError, match="n_rows"):
        InfluenceCleaner(hgb_classifier(), n_rows=61).fit(X, y)
    with pytest.raises(ValueError, match="remove all 60 training rows"):
        _remover(hgb_classifier(), fraction=1.0).fit(X, y)
    with pytest.raises(ValueError, match="no row of class"):
        _remover(hgb_classifier(), n_rows=59).fit(X, y)
    with pytest.raises(TypeError, match="fitted again"):
        InfluenceCleaner(FrozenEstimator(hgb_classifier().fit(X, y))).fit(X, y)
    with pytest.raises(TypeError, match="influence estimator"):
        InfluenceCleaner(hgb_classifier(), method=hgb_classifier()).fit(X, y)
    with pytest.raises(ValueError, match="requires y"):
        InfluenceCleaner(hgb_classifier()).fit(X, None)
    with pytest.raises(ValueError, match="entries but X has"):
        InfluenceCleaner(hgb_classifier()).fit(X, y[:-1])
    with pytest.raises(NotFittedError):
        InfluenceCleaner(hgb_classifier()).predict(X)


# ------------------------------------------------------- balance, loss_weight
def test_balance_class_gives_every_class_its_share_of_the_budget():
    X, y = make_data("binary", n=150, seed=10)
    y = np.where(np.arange(150) < 30, 1, 0)  # 30 rows of class 1, 120 of class 0
    y[:5] = 0
    base = _remover(hgb_classifier(), n_rows=20, loss_weight=0.0).fit(X, y)
    bal = clone(base).set_params(balance="class").fit(X, y)
    # the same scores, a different selection
    np.testing.assert_array_equal(bal.harm_, base.harm_)
    sel = bal.selected_indices_
    counts = {c: int(np.sum(y == c)) for c in (0, 1)}
    assert counts == {0: 125, 1: 25}
    # quotas 20 * 125/150 = 16.67 -> 17 and 20 * 25/150 = 3.33 -> 3 (largest remainder)
    assert int(np.sum(y[sel] == 0)) == 17 and int(np.sum(y[sel] == 1)) == 3
    for c in (0, 1):
        rows = np.flatnonzero(y == c)
        top = rows[np.lexsort((rows, -base.harm_[rows]))][: int(np.sum(y[sel] == c))]
        np.testing.assert_array_equal(np.sort(sel[y[sel] == c]), np.sort(top))
    # acted on most harmful first, as without balance
    assert np.all(np.diff(bal.harm_[sel]) <= 0)
    ref = hgb_classifier().fit(np.delete(X, sel, axis=0), np.delete(y, sel))
    np.testing.assert_allclose(bal.predict_proba(X), ref.predict_proba(X))


def test_balance_scale_standardises_the_harm_within_each_class():
    X, y = make_data("multiclass", n=150, seed=15)
    base = _remover(hgb_classifier(), n_rows=15, loss_weight=0.0).fit(X, y)
    scaled = clone(base).set_params(balance="scale").fit(X, y)
    np.testing.assert_array_equal(scaled.influence_, base.influence_)
    for c in np.unique(y):
        h = base.harm_[y == c]
        med = np.median(h)
        expect = (h - med) / (1.4826 * np.median(np.abs(h - med)))
        np.testing.assert_allclose(scaled.harm_[y == c], expect, rtol=1e-12)
    top = np.lexsort((np.arange(150), -scaled.harm_))[:15]
    np.testing.assert_array_equal(scaled.selected_indices_, top)
    # a constant score within a class: no division by zero
    Xs, ys = make_data("binary", n=60, seed=15)
    from skinfluence.cleaning import _scale_by_class

    out = _scale_by_class(np.where(ys == 0, 2.0, np.arange(60.0)), ys)
    assert np.all(out[ys == 0] == 0) and np.all(np.isfinite(out))


def test_loss_weight_one_ranks_by_the_out_of_fold_loss():
    from sklearn.model_selection import StratifiedKFold

    X, y = make_data("multiclass", n=150, seed=11)
    y[:12] = (y[:12] + 1) % 3
    cleaner = _remover(
        hgb_classifier(), n_rows=15, loss_weight=1.0, balance=None, cv=3, random_state=0
    ).fit(X, y)
    # the out-of-fold log-loss, recomputed from the same folds
    loss = np.empty(150)
    for tr, va in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y):
        P = hgb_classifier().fit(X[tr], y[tr]).predict_proba(X[va])
        loss[va] = -np.log(np.clip(P[np.arange(len(va)), y[va]], 1e-12, 1))
    np.testing.assert_allclose(cleaner.oof_loss_, loss, rtol=1e-12)
    top = np.lexsort((np.arange(150), -loss))[:15]
    np.testing.assert_array_equal(cleaner.selected_indices_, top)
    assert np.all((cleaner.harm_ > 0) & (cleaner.harm_ <= 1))
    # the corrupted rows are found far above chance (15 of 150 rows selected: 0.1)
    assert np.isin(np.arange(12), cleaner.selected_indices_).mean() >= 0.3
    # refitting without the loss forgets it
    cleaner.set_params(loss_weight=0.0).fit(X, y)
    assert not hasattr(cleaner, "oof_loss_")


def test_loss_weight_blends_ranks_and_reuses_oof_folds():
    from scipy.stats import rankdata

    X, y = make_data("squared_error", n=120, seed=12)
    y[:8] += 30.0
    model = make_model("lightgbm", "squared_error")
    oof = _remover(model, criterion="oof", cv=3, random_state=0, n_rows=10).fit(X, y)
    mixed = clone(oof).set_params(loss_weight=0.5).fit(X, y)
    np.testing.assert_array_equal(mixed.influence_, oof.influence_)
    expect = 0.5 * rankdata(-oof.influence_) / 120 + 0.5 * rankdata(mixed.oof_loss_) / 120
    np.testing.assert_allclose(mixed.harm_, expect, rtol=1e-12)
    # the out-of-fold squared residuals of the fold models (the same folds as oof)
    loss = np.empty(120)
    for tr, va in KFold(3, shuffle=True, random_state=0).split(X):
        loss[va] = (y[va] - clone(model).fit(X[tr], y[tr]).predict(X[va])) ** 2
    np.testing.assert_allclose(mixed.oof_loss_, loss, rtol=1e-10)
    # the residual ranking alone finds every outlier; the blend half (chance: 1 in 12)
    only = clone(oof).set_params(loss_weight=1.0).fit(X, y)
    assert np.isin(np.arange(8), only.selected_indices_).all()
    assert np.isin(np.arange(8), mixed.selected_indices_).mean() >= 0.5
    # validation criterion: unscored rows stay unscored and are never selected
    val = _remover(model, criterion="validation", loss_weight=0.5, n_rows=10, random_state=0).fit(
        X, y
    )
    assert np.isnan(val.harm_).sum() == 24 and np.all(np.isfinite(val.oof_loss_))
    assert not np.isnan(val.harm_[val.selected_indices_]).any()


def test_new_parameters_in_a_grid_and_their_errors():
    X, y = make_data("binary", n=120, seed=13)
    cleaner = _remover(hgb_classifier(), fraction=0.1, cv=3, random_state=0)
    params = cleaner.get_params()
    assert params["balance"] == "auto" and params["loss_weight"] == 0.5
    search = GridSearchCV(
        cleaner, {"balance": [None, "class"], "loss_weight": [0.0, 0.5]}, cv=2, error_score="raise"
    ).fit(X, y)
    assert search.best_params_["balance"] in (None, "class")
    with pytest.raises(ValueError, match="balance must be one of"):
        clone(cleaner).set_params(balance="classes").fit(X, y)
    with pytest.raises(ValueError, match="balance must be one of"):
        clone(cleaner).set_params(balance=["class"]).fit(X, y)
    for bad in (1.5, -0.1, "half", True):
        with pytest.raises(ValueError, match="loss_weight must be a number"):
            clone(cleaner).set_params(loss_weight=bad).fit(X, y)
    Xr, yr = make_data("squared_error", n=60, seed=13)
    for balance in ("class", "scale"):
        with pytest.raises(ValueError, match="needs a classifier"):
            _remover(hgb_regressor(), fraction=0.1, balance=balance).fit(Xr, yr)


def test_defaults_clean_the_confident_joint_count_by_influence_and_loss():
    X, y = make_data("binary", n=200, seed=16)
    flipped = np.random.default_rng(16).choice(200, 30, replace=False)
    y[flipped] = 1 - y[flipped]
    default = InfluenceCleaner(hgb_classifier(), random_state=0)
    params = default.get_params()
    assert params["fraction"] == "auto" and params["loss_weight"] == 0.5
    assert params["criterion"] == "self" and params["action"] == "auto"
    assert params["balance"] == "auto" and params["n_rounds"] == "auto"
    assert params["n_repeats"] == 2 and params["cv"] == 5
    default.fit(X, y)
    # a classifier with predict_proba: reweighting, two rounds, two repeated splits
    explicit = InfluenceCleaner(
        hgb_classifier(),
        fraction="auto",
        loss_weight=0.5,
        balance="joint",
        action="reweight",
        n_rounds=2,
        n_repeats=2,
        random_state=0,
    ).fit(X, y)
    assert default.action_ == "reweight" and 1 <= len(default.round_sizes_) <= 2
    for name in ("selected_indices_", "row_weights_", "round_sizes_", "harm_"):
        np.testing.assert_array_equal(getattr(default, name), getattr(explicit, name))
    np.testing.assert_array_equal(default.predict_proba(X), explicit.predict_proba(X))
    assert len(default.selected_indices_) == default.auto_budget_ > 0
    assert np.all(np.isfinite(default.oof_loss_[default.row_weights_ > 0]))
    # what the defaults act on was flipped far more often than the 15% base rate, and
    # the rows they drop (weight 0) more often still
    precision = np.isin(default.selected_indices_, flipped).mean()
    assert precision >= 0.45, precision
    dropped = np.flatnonzero(default.row_weights_ == 0)
    assert np.isin(dropped, flipped).mean() >= precision


def test_auto_action_and_rounds_follow_the_model_and_the_step():
    X, y = make_data("binary", n=160, seed=17)
    y[:20] = 1 - y[:20]
    kw = {"random_state": 0, "cv": 3}
    explicit = {"action": "remove", "n_rounds": 1}
    # a sampler returns rows: removal, one round
    sampler = InfluenceSampler(hgb_classifier(), **kw).fit(X, y)
    ref = InfluenceSampler(hgb_classifier(), **explicit, **kw).fit(X, y)
    assert sampler.action_ == "remove" and len(sampler.round_sizes_) == 1
    np.testing.assert_array_equal(sampler.sample_indices_, ref.sample_indices_)
    # a regressor: removal, one round (the residual rule), on two repeated splits
    Xr, yr = make_data("squared_error", n=120, seed=17)
    yr[:10] += 50.0
    reg = InfluenceCleaner(hgb_regressor(), **kw).fit(Xr, yr)
    ref = InfluenceCleaner(hgb_regressor(), **explicit, n_repeats=2, **kw).fit(Xr, yr)
    assert reg.action_ == "remove" and len(reg.round_sizes_) == 1
    np.testing.assert_array_equal(reg.removed_indices_, ref.removed_indices_)
    assert np.isin(np.arange(10), reg.removed_indices_).mean() >= 0.8
    # candidate fractions on a trusted set: one round of reweighting
    listed = InfluenceCleaner(hgb_classifier(), fraction=[0.0, "auto"], **kw)
    listed.fit(X[:120], y[:120], trusted_set=(X[120:], y[120:]))
    assert listed.action_ == "reweight" and len(listed.round_sizes_) == 1
    for bad in (0, 1.5, "twice"):
        with pytest.raises(ValueError, match="n_rounds must be a positive integer or 'auto'"):
            InfluenceCleaner(hgb_classifier(), n_rounds=bad).fit(X, y)


def test_balance_joint_gives_each_class_its_confidently_contradicted_rows():
    from sklearn.model_selection import StratifiedKFold

    X, y = make_data("multiclass", n=180, seed=17)
    y[:20] = (y[:20] + 1) % 3
    cleaner = _remover(
        hgb_classifier(), fraction="auto", balance="joint", cv=3, random_state=0
    ).fit(X, y)
    P = np.empty((180, 3))
    for tr, va in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y):
        P[va] = hgb_classifier().fit(X[tr], y[tr]).predict_proba(X[va])
    t = [P[y == j, j].mean() for j in range(3)]
    per_class = np.zeros(3, dtype=int)
    for i in range(180):  # the confident joint's off-diagonal, row by row
        confident = [j for j in range(3) if P[i, j] >= t[j]]
        if confident and max(confident, key=lambda j: P[i, j]) != y[i]:
            per_class[y[i]] += 1
    sel = cleaner.selected_indices_
    assert cleaner.auto_budget_ == per_class.sum() == len(sel)
    np.testing.assert_array_equal(np.bincount(y[sel], minlength=3), per_class)
    for c in range(3):  # each class's own most harmful rows
        rows = np.flatnonzero(y == c)
        top = rows[np.lexsort((rows, -cleaner.harm_[rows]))][: per_class[c]]
        np.testing.assert_array_equal(np.sort(sel[y[sel] == c]), np.sort(top))
    # a fixed budget is shared in the same proportions (largest remainders)
    fixed = clone(cleaner).set_params(fraction=0.0, n_rows=10).fit(X, y)
    exact = 10 * per_class / per_class.sum()
    got = np.bincount(y[fixed.selected_indices_], minlength=3)
    assert got.sum() == 10 and np.all(np.abs(got - exact) < 1)
    # no contradicted row anywhere: the budget is shared by class size, as "class" does
    from skinfluence.cleaning import _class_quota_mask

    labels = np.repeat([0, 1, 2], [50, 30, 20])
    none = _class_quota_mask(labels, 10, {0: 0, 1: 0, 2: 0})
    np.testing.assert_array_equal(none, _class_quota_mask(labels, 10))
    assert np.bincount(labels[none]).tolist() == [5, 3, 2]


def test_balance_joint_needs_predict_proba():
    from sklearn.ensemble import HistGradientBoostingClassifier

    class NoProba(HistGradientBoostingClassifier):
        @property
        def predict_proba(self):
            raise AttributeError("no predict_proba")

    X, y = make_data("binary", n=80, seed=18)
    with pytest.raises(ValueError, match='balance="joint" shares the budget.*NoProba'):
        _remover(NoProba(max_iter=5), fraction="auto", balance="joint", loss_weight=0.0, cv=3).fit(
            X, y
        )


def test_fraction_auto_acts_on_as_many_rows_as_the_folds_contradict():
    from sklearn.model_selection import StratifiedKFold

    X, y = make_data("binary", n=150, seed=14)
    y[:15] = 1 - y[:15]
    cleaner = _remover(hgb_classifier(), fraction="auto", cv=3, random_state=0)
    cleaner.fit(X, y)
    P = np.empty((150, 2))
    for tr, va in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y):
        P[va] = hgb_classifier().fit(X[tr], y[tr]).predict_proba(X[va])
    # the confident joint's off-diagonal count, row by row
    t = [P[y == j, j].mean() for j in range(2)]
    count = 0
    for i in range(150):
        confident = [j for j in range(2) if P[i, j] >= t[j]]
        if confident and max(confident, key=lambda j: P[i, j]) != y[i]:
            count += 1
    assert cleaner.auto_budget_ == count > 0
    assert count < int(np.sum(P.argmax(1) != y)) + 15  # not the plain disagreement count
    assert len(cleaner.removed_indices_) == cleaner.auto_budget_
    # the most harmful rows by self-influence, as with a fixed budget
    fixed = clone(cleaner).set_params(fraction=0.0, n_rows=cleaner.auto_budget_).fit(X, y)
    np.testing.assert_array_equal(cleaner.removed_indices_, fixed.removed_indices_)
    assert not hasattr(fixed, "auto_budget_")

    Xr, yr = make_data("squared_error", n=120, seed=14)
    yr[:6] += 50.0
    reg = _remover(
        make_model("lightgbm", "squared_error"),
        fraction="auto",
        loss_weight=1.0,
        cv=3,
        random_state=0,
    ).fit(Xr, yr)
    res = np.empty(120)
    for tr, va in KFold(3, shuffle=True, random_state=0).split(Xr):
        model = make_model("lightgbm", "squared_error").fit(Xr[tr], yr[tr])
        res[va] = yr[va] - model.predict(Xr[va])
    dev = np.abs(res - np.median(res))
    assert reg.auto_budget_ == int(np.sum(dev > 3 * 1.4826 * np.median(dev)))
    assert 6 <= reg.auto_budget_ <= 20
    assert np.isin(np.arange(6), reg.removed_indices_).all()
    with pytest.raises(ValueError, match="or 'auto'"):
        clone(cleaner).set_params(fraction="all").fit(X, y)


_NEW_OPTIONS = [
    InfluenceCleaner(
        hgb_classifier(max_iter=5), fraction=0.1, balance="class", loss_weight=0.5, cv=3
    ),
    InfluenceCleaner(hgb_regressor(), fraction="auto", loss_weight=1.0, cv=3),
    InfluenceSampler(hgb_classifier(max_iter=5), fraction="auto", balance="class", cv=3),
    InfluenceCleaner(hgb_classifier(max_iter=5), fraction=0.1, balance="scale"),
    InfluenceCleaner(hgb_classifier(max_iter=5), fraction=0.1, action="reweight", cv=3),
    InfluenceCleaner(hgb_classifier(max_iter=5), fraction=0.1, action="hybrid", n_rounds=2, cv=3),
]


@parametrize_with_checks(
    _NEW_OPTIONS,
    expected_failed_checks=lambda est: (
        {}
        if isinstance(est, InfluenceSampler)
        else {
            "check_sample_weight_equivalence_on_dense_data": (
                "the budget counts rows: weight 2 and a repeated row clean differently"
            )
        }
    ),
    xfail_strict=True,
)
def test_new_options_are_scikit_learn_compatible(estimator, check):
    check(estimator)


# ----------------------------------------------------------------- trusted rows
def _trusted_data():
    X, y = make_data("binary", n=360, seed=21)
    X_tr, X_t, y_tr, y_t = X[:240], X[240:], y[:240].copy(), y[240:]
    y_tr[:36] = 1 - y_tr[:36]  # 15% wrong labels in training, none in the trusted rows
    return X_tr, y_tr, X_t, y_t


def test_trusted_set_compares_every_candidate_by_refitting():
    from sklearn.metrics import log_loss

    X, y, X_t, y_t = _trusted_data()
    cands = [0.0, 0.05, 0.15, "auto"]
    cleaner = _remover(
        hgb_classifier(),
        fraction=cands,
        loss_weight=0.5,
        cv=3,
        scoring="neg_log_loss",
        random_state=0,
    ).fit(X, y, trusted_set=(X_t, y_t))
    expected = []
    for f in cands:
        one = clone(cleaner).set_params(fraction=f).fit(X, y)
        expected.append(-log_loss(y_t, one.predict_proba(X_t)))
        if f == cleaner.fraction_:
            chosen = one
    np.testing.assert_allclose(cleaner.trusted_scores_, expected, rtol=1e-12)
    assert cleaner.fraction_ == cands[int(np.argmax(expected))]
    np.testing.assert_array_equal(cleaner.removed_indices_, chosen.removed_indices_)
    np.testing.assert_allclose(cleaner.predict_proba(X_t), chosen.predict_proba(X_t))
    assert cleaner.auto_budget_ > 0  # "auto" was a candidate
    # one fraction and a trusted set: its score is recorded, nothing else changes
    single = clone(cleaner).set_params(fraction=0.05).fit(X, y, trusted_set=(X_t, y_t))
    np.testing.assert_allclose(single.trusted_scores_, [expected[1]], rtol=1e-12)
    assert single.fraction_ == 0.05
    # the model's own score (accuracy) by default, trusted sample weights honoured
    w = np.linspace(0.5, 2.0, len(y_t))
    acc = clone(cleaner).set_params(scoring=None).fit(X, y, trusted_set=(X_t, y_t, w))
    for f, score in zip(cands, acc.trusted_scores_):
        one = clone(cleaner).set_params(fraction=f).fit(X, y)
        assert score == pytest.approx(one.score(X_t, y_t, sample_weight=w))


@pytest.mark.filterwarnings("ignore:every candidate fraction scored")  # 2 trusted rows
def test_trusted_set_reaches_the_cleaner_through_metadata_routing():
    import sklearn

    X, y, X_t, y_t = _trusted_data()
    base = _remover(hgb_classifier(), fraction=[0.0, 0.1], balance=None, cv=3, random_state=0)
    direct = clone(base).fit(X, y, trusted_set=(X_t, y_t))
    with sklearn.config_context(enable_metadata_routing=True):
        cleaner = clone(base).set_fit_request(trusted_set=True)
        search = GridSearchCV(cleaner, {"balance": [None]}, cv=KFold(3)).fit(
            X, y, trusted_set=(X_t, y_t)
        )
        refit = search.best_estimator_
        np.testing.assert_allclose(refit.trusted_scores_, direct.trusted_scores_)
        assert refit.fraction_ == direct.fraction_
        # a trusted set as long as X is still given whole to every fold, not split
        X2, y2 = X[:120], y[:120]
        X2_t, y2_t = X_t[:2], y_t[:2]
        sampler = InfluenceSampler(hgb_classifier(), fraction=[0.0, 0.1], cv=3)
        sampler.set_fit_request(trusted_set=True)
        res = sampler.fit(X2, y2, trusted_set=(X2_t, y2_t))
        assert len(res.trusted_scores_) == 2


def test_trusted_set_errors_and_candidates_that_empty_a_class():
    X, y, X_t, y_t = _trusted_data()
    cleaner = _remover(hgb_classifier(), fraction=[0.0, 0.1], cv=3)
    with pytest.raises(ValueError, match="trusted_set=\\(X_trusted, y_trusted\\)"):
        cleaner.fit(X, y)
    with pytest.raises(ValueError, match="tuple \\(X_trusted, y_trusted\\)"):
        cleaner.fit(X, y, trusted_set=X_t)
    with pytest.raises(ValueError, match="120 rows of X and 119 targets"):
        cleaner.fit(X, y, trusted_set=(X_t, y_t[:-1]))
    with pytest.raises(ValueError, match="sample weights have 3 entries"):
        cleaner.fit(X, y, trusted_set=(X_t, y_t, np.ones(3)))
    with pytest.raises(ValueError, match="non-empty list"):
        clone(cleaner).set_params(fraction=[0.1, 2.0]).fit(X, y, trusted_set=(X_t, y_t))
    # a candidate that would remove a whole class scores NaN and is never chosen
    y_rare = y.copy()
    y_rare[:] = 0
    y_rare[-6:] = 1
    rare = clone(cleaner).set_params(fraction=[0.0, 0.9], balance=None)
    rare.fit(X, y_rare, trusted_set=(X_t, y_t))
    assert np.isnan(rare.trusted_scores_[1]) and rare.fraction_ == 0.0
    with pytest.raises(ValueError, match="every candidate fraction"):
        clone(rare).set_params(fraction=[0.9]).fit(X, y_rare, trusted_set=(X_t, y_t))


def test_trusted_rows_that_cannot_rank_the_candidates_are_reported():
    X, y, _, _ = _trusted_data()
    cleaner = _remover(hgb_classifier(), fraction=[0.0, 0.05], balance=None, cv=3, random_state=0)
    # rows of X itself, all fitted correctly by every candidate: accuracy 1.0 for all
    fitted = clone(cleaner).set_params(fraction=0.0).fit(X, y)
    right = np.flatnonzero(fitted.predict(X) == y)[:20]
    with pytest.warns(
        UserWarning, match="cannot tell the candidates apart.*hold them out of X"
    ) as record:
        cleaner.fit(X, y, trusted_set=(X[right], y[right]))
    assert cleaner.fraction_ == 0.0 and np.all(cleaner.trusted_scores_ == 1.0)
    # the warning points at the caller's line, for the cleaner and the sampler alike
    assert {w.filename for w in record} == {__file__}
    sampler = InfluenceSampler(
        hgb_classifier(), fraction=[0.0, 0.05], balance=None, cv=3, random_state=0
    )
    with pytest.warns(UserWarning, match="cannot tell the candidates apart") as record:
        sampler.fit_resample(X, y, trusted_set=(X[right], y[right]))
    assert {w.filename for w in record} == {__file__}


def test_trusted_choice_helps_on_real_noisy_labels(noisy_spam):
    """The trusted rows are 300 held-out rows; the judge is the other 1,200 rows."""
    X, y_noisy, _, _, X_te, y_te = noisy_spam
    X_t, y_t, X_judge, y_judge = X_te[:300], y_te[:300], X_te[300:], y_te[300:]
    cleaner = _remover(
        _overfitting_model(),
        fraction=[0.0, 0.05, 0.1, 0.2, "auto"],
        loss_weight=0.5,
        random_state=0,
    ).fit(X, y_noisy, trusted_set=(X_t, y_t))
    none = _overfitting_model().fit(X, y_noisy)
    assert cleaner.fraction_ != 0.0
    assert cleaner.score(X_judge, y_judge) > none.score(X_judge, y_judge) + 0.01


class _FakeSearch:
    """A fitted search's results, written by hand (3 folds, 3 candidates)."""

    def __init__(self, scores, best, params):
        self.cv_results_ = {"params": params}
        for i, col in enumerate(np.asarray(scores, dtype=float).T):
            self.cv_results_[f"split{i}_test_score"] = col
        self.best_index_ = best
        self.n_splits_ = len(scores[0])


def test_compare_to_baseline_is_the_corrected_paired_t_interval():
    from scipy import stats

    from skinfluence.cleaning import compare_to_baseline

    params = [{"fraction": 0.1}, {"fraction": 0.0}, {"fraction": "auto"}]
    scores = [[0.80, 0.84, 0.79], [0.78, 0.80, 0.78], [0.90, 0.91, 0.92]]
    rep = compare_to_baseline(_FakeSearch(scores, 2, params))
    assert rep["baseline"] == 1 and rep["best"] == 2
    d = np.array(scores[2]) - np.array(scores[1])
    # Nadeau & Bengio: variance times (1/k + n_test/n_train), 3 folds: 1/3 + 1/2
    half = stats.t.ppf(0.975, 2) * np.sqrt(d.var(ddof=1) * (1 / 3 + 1 / 2))
    assert rep["difference"][2] == pytest.approx(d.mean())
    assert rep["low"][2] == pytest.approx(d.mean() - half)
    assert rep["high"][2] == pytest.approx(d.mean() + half)
    assert rep["distinguishable"].tolist() == [False, False, True]
    assert "beyond the fold-to-fold noise" in rep["verdict"]
    # a pick within the noise says so and points at the trusted set
    noisy = [[0.80, 0.84, 0.79], [0.81, 0.80, 0.80], [0.79, 0.86, 0.80]]
    rep = compare_to_baseline(_FakeSearch(noisy, 2, params))
    assert not rep["distinguishable"][2] and "trusted_set" in rep["verdict"]
    # the baseline by parameters or index; routed parameter names are found
    routed = [{"cleaner__fraction": p["fraction"]} for p in params]
    assert compare_to_baseline(_FakeSearch(scores, 1, routed))["verdict"] == (
        "the search picked the baseline"
    )
    assert compare_to_baseline(_FakeSearch(scores, 2, params), {"fraction": 0.1})["baseline"] == 0
    assert compare_to_baseline(_FakeSearch(scores, 2, params), 2)["baseline"] == 2
    with pytest.raises(ValueError, match="no candidate has fraction=0"):
        compare_to_baseline(_FakeSearch(scores, 2, [{"fraction": 0.1}] * 3))
    with pytest.raises(ValueError, match="not a candidate index"):
        compare_to_baseline(_FakeSearch(scores, 2, params), 5)
    with pytest.raises(TypeError, match="baseline must be"):
        compare_to_baseline(_FakeSearch(scores, 2, params), "zero")
    with pytest.raises(NotFittedError):
        compare_to_baseline(GridSearchCV(InfluenceCleaner(), {"fraction": [0.0]}))


# ------------------------------------------------- other uses of the selection
def _noisy_binary(n=240, seed=31, flips=36):
    X, y = make_data("binary", n=n, seed=seed)
    flipped = np.random.default_rng(seed).choice(n, flips, replace=False)
    y[flipped] = 1 - y[flipped]
    return X, y


def test_reweight_keeps_every_row_and_down_weights_the_selected_ones():
    from sklearn.model_selection import StratifiedKFold

    from skinfluence.cleaning import _confident_class

    X, y = _noisy_binary()
    kw = {"random_state": 0, "cv": 3}
    removing = _remover(hgb_classifier(), **kw).fit(X, y)
    cleaner = _remover(hgb_classifier(), action="reweight", **kw).fit(X, y)
    sel = cleaner.selected_indices_
    # the same selection as removal, but every row is kept
    np.testing.assert_array_equal(sel, removing.selected_indices_)
    assert len(sel) > 0 and len(cleaner.removed_indices_) == 0
    np.testing.assert_array_equal(cleaner.kept_indices_, np.arange(len(y)))
    w = cleaner.row_weights_
    assert w.shape == (len(y),) and np.all((w >= 0) & (w <= 1))
    rest = np.setdiff1d(np.arange(len(y)), sel)
    assert np.all(w[rest] == 1.0) and np.all(w[sel] < 1.0)
    # a selected row the confident joint counts in another class weighs 0, another
    # its out-of-fold probability of its label (the out-of-fold log-loss of the same
    # folds is minus its log)
    P = np.empty((len(y), 2))
    for tr, va in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y):
        P[va] = hgb_classifier().fit(X[tr], y[tr]).predict_proba(X[va])
    other = _confident_class(P, y)[0][sel]
    assert 0 < other.sum() < len(sel)
    assert np.all(w[sel[other]] == 0.0)
    np.testing.assert_allclose(w[sel[~other]], np.exp(-cleaner.oof_loss_[sel[~other]]), rtol=1e-12)
    np.testing.assert_allclose(w[sel[~other]], P[sel[~other], y[sel[~other]]], rtol=1e-12)
    # the final fit receives the weights, times the user's own
    ref = hgb_classifier().fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(cleaner.predict_proba(X), ref.predict_proba(X))
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    weighted = _remover(hgb_classifier(), action="reweight", **kw).fit(X, y, sw)
    ref = hgb_classifier().fit(X, y, sample_weight=sw * weighted.row_weights_)
    np.testing.assert_array_equal(weighted.predict_proba(X), ref.predict_proba(X))
    # two rounds: the second cleans the rows of positive weight, weighted, and the
    # weights multiply
    twice = _remover(hgb_classifier(), action="reweight", n_rounds=2, **kw).fit(X, y)
    live = np.flatnonzero(w > 0)
    second = _remover(hgb_classifier(), action="reweight", **kw)
    second.fit(X[live], y[live], sample_weight=w[live])
    assert twice.round_sizes_[0] == len(sel)
    np.testing.assert_array_equal(twice.round_sizes_, [len(sel), len(second.selected_indices_)])
    product = w.copy()
    product[live] *= second.row_weights_
    np.testing.assert_array_equal(twice.row_weights_, product)
    np.testing.assert_array_equal(twice.kept_indices_, np.arange(len(y)))
    ref = hgb_classifier().fit(X, y, sample_weight=product)
    np.testing.assert_array_equal(twice.predict_proba(X), ref.predict_proba(X))
    # nothing selected: every factor 1 and the scoring model is reused
    none = _remover(hgb_classifier(), action="reweight", fraction=0.0, **kw).fit(X, y)
    assert np.all(none.row_weights_ == 1.0)


def test_hybrid_relabels_the_sure_rows_and_removes_the_rest():
    from skinfluence.cleaning import _confident_class

    X, y = _noisy_binary()
    kw = {"random_state": 0, "cv": 3}
    cleaner = _remover(hgb_classifier(), action="hybrid", **kw).fit(X, y)
    removing = _remover(hgb_classifier(), **kw).fit(X, y)
    sel = cleaner.selected_indices_
    np.testing.assert_array_equal(sel, removing.selected_indices_)
    fixed, dropped = cleaner.relabeled_indices_, cleaner.removed_indices_
    assert len(fixed) > 0 and len(dropped) > 0
    np.testing.assert_array_equal(np.sort(np.concatenate([fixed, dropped])), np.sort(sel))
    np.testing.assert_array_equal(cleaner.kept_indices_, np.setdiff1d(np.arange(len(y)), dropped))
    # the relabelled rows: counted by the confident joint in another class, whose
    # out-of-fold probability beats their label's by the margin (0.5)
    P = np.empty((len(y), 2))
    from sklearn.model_selection import StratifiedKFold

    for tr, va in StratifiedKFold(3, shuffle=True, random_state=0).split(X, y):
        P[va] = hgb_classifier().fit(X[tr], y[tr]).predict_proba(X[va])
    other, best = _confident_class(P, y)
    assert np.all(other[fixed])
    assert np.all(P[fixed, best[fixed]] - P[fixed, y[fixed]] >= 0.5)
    sure_rest = other[dropped] & (P[dropped, best[dropped]] - P[dropped, y[dropped]] >= 0.5)
    assert not sure_rest.any()
    np.testing.assert_array_equal(cleaner.relabeled_to_, best[fixed])
    np.testing.assert_array_equal(cleaner.relabeled_from_, y[fixed])
    y_fit = y.copy()
    y_fit[fixed] = best[fixed]
    kept = cleaner.kept_indices_
    ref = hgb_classifier().fit(X[kept], y_fit[kept])
    np.testing.assert_array_equal(cleaner.predict_proba(X), ref.predict_proba(X))


def test_n_rounds_repeats_the_cleaning_on_the_rows_left():
    X, y = _noisy_binary()
    kw = {"random_state": 0, "cv": 3}
    once = _remover(hgb_classifier(), **kw).fit(X, y)
    one = _remover(hgb_classifier(), n_rounds=1, **kw).fit(X, y)
    for name in ("selected_indices_", "kept_indices_", "harm_", "influence_", "oof_loss_"):
        np.testing.assert_array_equal(getattr(once, name), getattr(one, name))
    np.testing.assert_array_equal(once.predict_proba(X), one.predict_proba(X))
    np.testing.assert_array_equal(one.round_sizes_, [len(one.selected_indices_)])
    three = _remover(hgb_classifier(), n_rounds=3, **kw).fit(X, y)
    sizes = three.round_sizes_
    assert 2 <= len(sizes) <= 3 and sizes[0] == len(once.selected_indices_)
    # a round acting on more rows than the one before is not applied
    assert np.all(np.diff(sizes) <= 0)
    # round 1 is the single-round cleaning; round 2 is a fresh cleaning of the rows left
    np.testing.assert_array_equal(three.selected_indices_[: sizes[0]], once.selected_indices_)
    left = once.kept_indices_
    again = _remover(hgb_classifier(), **kw).fit(X[left], y[left])
    np.testing.assert_array_equal(
        three.selected_indices_[sizes[0] : sizes[0] + sizes[1]], left[again.selected_indices_]
    )
    assert len(np.unique(three.selected_indices_)) == sizes.sum() == len(three.removed_indices_)
    np.testing.assert_array_equal(
        three.kept_indices_, np.setdiff1d(np.arange(len(y)), three.removed_indices_)
    )
    assert three.auto_budget_ == sizes.sum()
    assert np.all(np.isnan(three.harm_[three.removed_indices_]))
    ref = hgb_classifier().fit(X[three.kept_indices_], y[three.kept_indices_])
    np.testing.assert_array_equal(three.predict_proba(X), ref.predict_proba(X))
    # relabelling in rounds: labels are changed against the input labels
    relabel = _remover(hgb_classifier(), action="relabel", n_rounds=2, **kw).fit(X, y)
    idx = relabel.relabeled_indices_
    assert len(idx) and np.all(relabel.relabeled_to_ != y[idx])
    np.testing.assert_array_equal(relabel.relabeled_from_, y[idx])


def test_reweight_hybrid_and_n_rounds_errors():
    X, y = _noisy_binary(n=120)
    cleaner = _remover(hgb_classifier(), cv=3, random_state=0)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="n_rounds must be a positive integer"):
            clone(cleaner).set_params(n_rounds=bad).fit(X, y)
    with pytest.raises(ValueError, match="cannot be combined with a list of candidate"):
        clone(cleaner).set_params(n_rounds=2, fraction=[0.0, 0.1]).fit(
            X, y, trusted_set=(X[:10], y[:10])
        )
    with pytest.raises(ValueError, match="action must be 'auto' or one of"):
        clone(cleaner).set_params(action="weight").fit(X, y)
    with pytest.raises(ValueError, match="InfluenceSampler returns rows, not weights"):
        InfluenceSampler(hgb_classifier(), action="reweight").fit_resample(X, y)
    Xr, yr = make_data("squared_error", n=60, seed=13)
    for action in ("reweight", "hybrid"):
        with pytest.raises(ValueError, match="needs a classifier with predict_proba"):
            _remover(hgb_regressor(), action=action).fit(Xr, yr)
    # the sampler relabels and removes with action="hybrid"
    sampler = InfluenceSampler(hgb_classifier(), action="hybrid", cv=3, random_state=0)
    Xs, ys = sampler.fit_resample(X, y)
    assert len(ys) == len(y) - len(sampler.removed_indices_)


class _ScriptedBudget(InfluenceCleaner):
    """A cleaner whose rounds act on scripted numbers of rows (tests the stopping)."""

    def _budget(self, n, y, oof, is_clf, fraction):
        self._round = getattr(self, "_round", 0) + 1
        return min(self.script[self._round - 1], n)


@pytest.mark.parametrize(
    "script, applied",
    [((10, 5, 8), (10, 5)), ((10, 5, 5), (10, 5, 5)), ((10, 0, 3), (10, 0)), ((10, 10**6), (10,))],
)
def test_n_rounds_stops_when_a_round_grows_or_fails(script, applied):
    X, y = _noisy_binary(n=120)
    cleaner = _ScriptedBudget(
        hgb_classifier(), balance=None, loss_weight=0.0, **{**ONE_ROUND, "n_rounds": 3}
    )
    cleaner.script = script
    cleaner.fit(X, y)
    np.testing.assert_array_equal(cleaner.round_sizes_, applied)
    assert len(cleaner.kept_indices_) == 120 - sum(applied)
    # the attributes are those of the last round applied: the rows it scored
    scored = np.isfinite(cleaner.harm_)
    assert scored.sum() == 120 - sum(applied[:-1])


def test_n_repeats_averages_the_out_of_fold_probabilities_of_repeated_splits():
    from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

    from skinfluence.cleaning import _confidently_other

    X, y = _noisy_binary()
    kw = {"random_state": 0, "cv": 3}
    twice = _remover(hgb_classifier(), n_repeats=2, **kw).fit(X, y)
    # the oracle: every row's probabilities averaged over the 2 x 3 held-out folds
    P, count = np.zeros((len(y), 2)), np.zeros(len(y))
    for tr, va in RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=0).split(X, y):
        P[va] += hgb_classifier().fit(X[tr], y[tr]).predict_proba(X[va])
        count[va] += 1
    assert np.all(count == 2)
    P /= 2
    loss = -np.log(np.clip(P[np.arange(len(y)), y], 1e-12, 1.0))
    np.testing.assert_allclose(twice.oof_loss_, loss, rtol=1e-12)
    assert twice.auto_budget_ == _confidently_other(P, y).sum()
    once = _remover(hgb_classifier(), **kw).fit(X, y)
    assert not np.allclose(once.oof_loss_, twice.oof_loss_)
    # the same as giving the repeated splitter as cv (n_repeats then is not used)
    splitter = RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=0)
    for n_repeats in (1, 5):
        given = _remover(hgb_classifier(), cv=splitter, n_repeats=n_repeats).fit(X, y)
        np.testing.assert_array_equal(given.oof_loss_, twice.oof_loss_)
        np.testing.assert_array_equal(given.selected_indices_, twice.selected_indices_)
    # regressors: the squared error of the mean out-of-fold prediction
    Xr, yr = make_data("squared_error", n=90, seed=13)
    reg = InfluenceCleaner(hgb_regressor(), n_repeats=3, **kw).fit(Xr, yr)
    pred, count = np.zeros(len(yr)), np.zeros(len(yr))
    for tr, va in RepeatedKFold(n_splits=3, n_repeats=3, random_state=0).split(Xr):
        pred[va] += hgb_regressor().fit(Xr[tr], yr[tr]).predict(Xr[va])
        count[va] += 1
    np.testing.assert_allclose(reg.oof_loss_, (yr - pred / count) ** 2, rtol=1e-10)
    for bad in (0, -2, 1.5, True, "2"):
        with pytest.raises(ValueError, match="n_repeats must be a positive integer"):
            InfluenceCleaner(hgb_classifier(), n_repeats=bad).fit(X, y)


def test_rows_held_out_twice_or_never_by_a_splitter():
    from skinfluence.cleaning import _OutOfFold

    classes = np.array([0, 1, 2])
    y = np.array([0, 1, 2, 2])
    oof = _OutOfFold(4, classes)
    oof.put(np.array([0, 1]), np.array([0, 0]), np.array([[0.6, 0.4, 0], [0.5, 0.3, 0.2]]), y.dtype)
    oof.put(np.array([1, 2]), np.array([1, 2]), np.array([[0.1, 0.8, 0.1], [0, 0, 1.0]]), y.dtype)
    oof.finish(y, with_loss=True)
    # row 1: the mean probabilities pick class 1; row 3 was never held out
    np.testing.assert_allclose(oof.proba[1], [0.3, 0.55, 0.15])
    np.testing.assert_array_equal(oof.pred, [0, 1, 2, 2])
    np.testing.assert_allclose(oof.loss[:3], -np.log([0.6, 0.55, 1.0]))
    assert oof.loss[3] == 0.0 and np.all(oof.proba[3] == 0.0)
    # without probabilities: votes (ties to the first class), 0-1 loss
    votes = _OutOfFold(3, classes)
    votes.put(np.array([0, 1, 2]), np.array([2, 1, 0]), None, y.dtype)
    votes.put(np.array([0, 1, 2]), np.array([2, 0, 1]), None, y.dtype)
    votes.finish(np.array([2, 1, 1]), with_loss=True)
    np.testing.assert_array_equal(votes.pred, [2, 0, 0])
    np.testing.assert_array_equal(votes.loss, [0.0, 1.0, 1.0])
    assert votes.proba is None
