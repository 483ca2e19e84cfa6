"""Baselines: distributions, reproducibility, row independence, the loss baseline."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator

import skinfluence as sk
from skinfluence._baselines import (
    LossInfluence,
    MinorityInfluence,
    RandomInfluence,
    TargetInfluence,
)
from skinfluence._objectives import loss

from .models import make_data, make_model
from .reference import assert_top_k

_CACHE = {}
BIG = np.finfo(np.float64).max * 2.0**-32  # the zero-distance value
RANDOM = (RandomInfluence, TargetInfluence, MinorityInfluence)


pytestmark = pytest.mark.usefixtures("one_thread")


def data(objective):
    if objective not in _CACHE:
        X, y = make_data(objective, n=150, seed=1, n_classes=4)
        Xq, yq = make_data(objective, n=25, seed=2, n_classes=4)
        _CACHE[objective] = (X, y, make_model("lightgbm", objective).fit(X, y), Xq, yq)
    return _CACHE[objective]


@pytest.mark.parametrize("objective", ["binary", "squared_error"])
def test_random_is_standard_normal_and_reproducible(objective):
    X, y, model, Xq, yq = data(objective)
    exp = RandomInfluence(model, random_state=3).fit(X, y)
    M = exp.transform(Xq, yq)
    assert stats.kstest(M.ravel(), "norm").pvalue > 1e-3
    np.testing.assert_array_equal(M, exp.transform(Xq, yq))
    np.testing.assert_array_equal(
        M, RandomInfluence(model, random_state=3).fit(X, y).transform(Xq, yq)
    )
    assert not np.allclose(M, RandomInfluence(model, random_state=4).fit(X, y).transform(Xq, yq))
    assert stats.kstest(exp.self_influence(), "norm").pvalue > 1e-3
    # draws are independent of each other (no correlation between rows or columns)
    assert abs(np.corrcoef(M[:, :-1].ravel(), M[:, 1:].ravel())[0, 1]) < 0.1


@pytest.mark.parametrize("objective", ["binary", "multiclass"])
def test_target_classification(objective):
    X, y, model, Xq, yq = data(objective)
    M = TargetInfluence(model).fit(X, y).transform(Xq, yq)
    same = y[None, :] == yq[:, None]
    assert np.all((M[same] > 0) & (M[same] < 1)) and np.all((M[~same] > -1) & (M[~same] < 0))
    assert stats.kstest(M[same], "uniform").pvalue > 1e-3


def test_target_regression():
    X, y, model, Xq, yq = data("squared_error")
    exp = TargetInfluence(model, random_state=0).fit(X, y)
    M = exp.transform(Xq, yq)
    diff = np.abs(y[None, :] - yq[:, None])
    noise = M - 1 / diff
    # one normal draw per training row, scaled by the spread of the distances
    z = noise / diff.std(axis=1, keepdims=True)
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3
    Xt = np.vstack([X[:1], Xq])
    assert TargetInfluence(model).fit(X, y).transform(Xt[:1], y[:1])[0, 0] == BIG
    np.testing.assert_array_equal(exp.self_influence(), BIG)


def test_target_regression_ties_sum_to_finite_values():
    # integer targets: every query ties with many training rows; the global influence
    # sums the zero-difference value over the queries and must stay finite
    X, y, model, Xq, yq = data("squared_error")
    y_int, yq_int = np.round(y), np.round(yq)
    with sk.config_context(check_training_rows="warn"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp = TargetInfluence(model).fit(X, y_int)
    M = exp.transform(Xq, yq_int)
    ties = y_int[None, :] == yq_int[:, None]
    assert ties.sum(axis=0).max() > 1
    assert np.all(M[ties] == BIG) and np.all(M[~ties] < BIG / 2)
    g = exp.global_influence(Xq, yq_int)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, M.sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize("objective", ["multiclass", "squared_error"])
def test_minority(objective):
    X, y, model, Xq, yq = data(objective)
    exp = MinorityInfluence(model).fit(X, y)
    M = exp.transform(Xq, yq)
    if objective == "multiclass":
        counts = np.bincount(y)
        rank = np.argsort(np.argsort(counts, kind="stable"), kind="stable")
        np.testing.assert_array_equal(exp.class_rank_, rank)
        r = rank[y][None, :]
        assert np.all((M > -r) & (M < 1 - r))
    else:
        dist = np.abs(y - np.median(y))
        z = (M - dist[None, :]) / dist.std()
        assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3


@pytest.mark.parametrize("cls", RANDOM)
@pytest.mark.parametrize("objective", ["binary", "squared_error"])
def test_self_global_topk_consistent(cls, objective):
    X, y, model, Xq, yq = data(objective)
    exp = cls(model).fit(X, y)
    y_fit = exp._y_train if objective == "squared_error" else y
    np.testing.assert_array_equal(np.diag(exp.transform(X, y_fit)), exp.self_influence())
    M = exp.transform(Xq, yq)
    np.testing.assert_allclose(exp.global_influence(Xq, yq), M.sum(0), rtol=1e-12)
    assert_top_k(exp, Xq, yq, M, k=4)


def test_loss_baseline():
    X, y, model, Xq, yq = data("multiclass")
    exp = LossInfluence(model).fit(X, y)
    raw = exp.ensemble_.raw_from_leaves(exp.ensemble_.leaf_ids(X))
    np.testing.assert_allclose(exp.self_influence(), loss("multiclass", y, raw))
    p = model.predict_proba(X)[np.arange(len(y)), y]
    np.testing.assert_allclose(exp.self_influence(), -np.log(np.clip(p, 1e-5, 1)), rtol=1e-6)
    for call in (
        lambda: exp.transform(Xq, yq),
        lambda: exp.top_k(Xq, yq),
        lambda: exp.global_influence(Xq, yq),
    ):
        with pytest.raises(NotImplementedError, match="self_influence"):
            call()
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    proba = forest.predict_proba(X)[np.arange(len(y)), y]
    np.testing.assert_allclose(
        LossInfluence(forest).fit(X, y).self_influence(),
        -np.log(np.clip(proba, 1e-5, 1 - 1e-5)),
        rtol=1e-12,
    )


def test_forests_and_label_free_queries():
    X, y, model, Xq, yq = data("binary")
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    exp = TargetInfluence(forest).fit(X, y)
    # without labels, the forest's own predicted class is the target
    np.testing.assert_array_equal(exp.transform(Xq), exp.transform(Xq, forest.predict(Xq)))


def test_random_state_validation():
    X, y, model, Xq, yq = data("binary")
    with pytest.raises(ValueError, match="random_state"):
        RandomInfluence(model, random_state=np.random.RandomState(0)).fit(X, y)
    exp = RandomInfluence(model, random_state=None).fit(X, y)
    np.testing.assert_array_equal(exp.transform(Xq), exp.transform(Xq))


@given(seed=st.integers(0, 2**16), cls=st.sampled_from(RANDOM))
def test_permuting_training_rows_permutes_columns(seed, cls):
    X, y, model, Xq, yq = data("binary")
    perm = np.random.default_rng(seed).permutation(len(X))
    a = cls(FrozenEstimator(model)).fit(X[perm], y[perm]).transform(Xq, yq)
    b = cls(model).fit(X, y).transform(Xq, yq)
    np.testing.assert_array_equal(a, b[:, perm])


@given(
    rows=st.lists(st.integers(0, 24), min_size=1, max_size=8),
    cls=st.sampled_from(RANDOM),
    objective=st.sampled_from(["binary", "squared_error"]),
)
def test_rows_are_independent(rows, cls, objective):
    X, y, model, Xq, yq = data(objective)
    exp = cls(model).fit(X, y)
    rows = np.asarray(rows)
    np.testing.assert_array_equal(exp.transform(Xq[rows], yq[rows]), exp.transform(Xq, yq)[rows])
