"""BoostIn: kernels against the numpy reference, the derivative forms, properties."""

from functools import partial

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator

from skinfluence import BoostIn

from . import reference as ref
from .models import fitted_explainer, gradient_cases, make_data, make_model

CASES = gradient_cases()
fitted = partial(fitted_explainer, BoostIn)


def _encode(exp, y):
    """Labels as fit holds them (CatBoost: float32 targets)."""
    return exp._round_labels(ref.encode_labels(exp, y))


@pytest.mark.parametrize("derivative", ["published", "exact"])
@pytest.mark.parametrize("lib,objective", CASES)
def test_transform_matches_dense_reference(lib, objective, derivative):
    X, y, model, exp, Xq, yq = fitted(lib, objective, derivative=derivative)
    ens = exp.ensemble_
    tl, ql = ens.leaf_ids(X), ens.leaf_ids(Xq)
    expected = ref.boostin_matrix(
        ens, tl, _encode(exp, y), ql, _encode(exp, yq), derivative=derivative
    )
    got = exp.transform(Xq, yq)
    assert got.shape == (len(Xq), len(X)) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert np.abs(got).max() > 0


@pytest.mark.parametrize("scaling", ["inverse_size", "inverse_size_squared"])
@pytest.mark.parametrize("lib,objective", [("lightgbm", "binary"), ("sklearn_gb", "multiclass")])
def test_leaf_scaling_matches_reference(lib, objective, scaling):
    X, y, model, exp, Xq, yq = fitted(lib, objective, leaf_scaling=scaling)
    ens = exp.ensemble_
    expected = ref.boostin_matrix(
        ens, ens.leaf_ids(X), _encode(exp, y), ens.leaf_ids(Xq), _encode(exp, yq), scaling=scaling
    )
    np.testing.assert_allclose(exp.transform(Xq, yq), expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("lib,objective", CASES)
def test_self_global_topk_consistent(lib, objective):
    X, y, model, exp, Xq, yq = fitted(lib, objective)
    full = exp.transform(X, y)
    np.testing.assert_allclose(np.diag(full), exp.self_influence(), rtol=1e-10, atol=1e-13)
    M = exp.transform(Xq, yq)
    np.testing.assert_allclose(exp.global_influence(Xq, yq), M.sum(0), rtol=1e-9, atol=1e-12)
    ref.assert_top_k(exp, Xq, yq, M, k=5)
    idx_h, val_h = exp.top_k(Xq, yq, k=3, kind="harmful")
    np.testing.assert_allclose(val_h, np.sort(M, axis=1)[:, :3])


@pytest.mark.parametrize("lib,objective", CASES)
def test_label_free_queries(lib, objective):
    X, y, model, exp, Xq, yq = fitted(lib, objective)
    ens = exp.ensemble_
    ql = ens.leaf_ids(Xq)
    if objective == "squared_error":
        expected = ref.boostin_matrix(
            ens, ens.leaf_ids(X), _encode(exp, y), ql, np.zeros(len(Xq)), objective="value"
        )
        # influence on the prediction: -sum of shared-leaf derivatives
        np.testing.assert_allclose(exp.transform(Xq), expected, rtol=1e-10, atol=1e-12)
    else:
        pred = model.predict(Xq)
        np.testing.assert_allclose(
            exp.transform(Xq), exp.transform(Xq, pred), rtol=1e-12, atol=1e-14
        )


@pytest.mark.parametrize(
    "lib,objective",
    [("lightgbm", "binary"), ("sklearn_gb", "squared_error"), ("xgboost", "multiclass")],
)
def test_exact_form_is_finite_difference_of_newton_leaf(lib, objective):
    """delta_exact[i, t] = -w_i d v_t / d w_i with the other rows' gradients fixed."""
    X, y, model, exp, Xq, yq = fitted(lib, objective, derivative="exact")
    ens = exp.ensemble_
    leaves = ens.leaf_ids(X)
    g, h, _ = ref.replay(ens, leaves, _encode(exp, y))
    rng = np.random.default_rng(0)
    eps = 1e-4
    for _ in range(20):
        i, t = rng.integers(len(X)), rng.integers(ens.n_trees)
        if ens.constant_tree[t]:
            continue
        mask = leaves[:, t] == leaves[i, t]
        j = ens.leaf_offsets[t] + leaves[i, t]

        def leaf_value(wi, mask=mask, t=t, i=i, j=j):
            w = np.ones(len(X))
            w[i] = wi
            return (
                -ens.learning_rates[t]
                * (w[mask] * g[mask, t]).sum()
                / ((w[mask] * h[mask, t]).sum() + ens.l2[j])
            )

        fd = -(leaf_value(1 + eps) - leaf_value(1 - eps)) / (2 * eps)
        np.testing.assert_allclose(exp.derivatives_[i, t], fd, rtol=1e-6, atol=1e-9)


def test_forms_coincide_at_learning_rate_one():
    X, y = make_data("binary", n=100, seed=3)
    model = make_model("lightgbm", "binary", learning_rate=1.0).fit(X, y)
    a = BoostIn(model, derivative="published").fit(X, y).transform(X[:10], y[:10])
    b = BoostIn(model, derivative="exact").fit(X, y).transform(X[:10], y[:10])
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    model = make_model("lightgbm", "binary", learning_rate=0.3).fit(X, y)
    a = BoostIn(model, derivative="published").fit(X, y).transform(X[:10], y[:10])
    b = BoostIn(model, derivative="exact").fit(X, y).transform(X[:10], y[:10])
    assert not np.allclose(a, b)


def test_published_closed_form():
    """published - exact = eta(1-eta) sum_t 1[same leaf] g_e h_i G_l / (H_l + lambda)^2."""
    X, y, model, pub, Xq, yq = fitted("sklearn_hgb", "binary")
    exact = BoostIn(model, derivative="exact").fit(X, y)
    ens = pub.ensemble_
    tl, ql = ens.leaf_ids(X), ens.leaf_ids(Xq)
    g, h, _ = ref.replay(ens, tl, y.astype(float))
    gq, _, _ = ref.replay(ens, ql, yq.astype(float))
    expected = np.zeros((len(Xq), len(X)))
    for t in range(ens.n_trees):
        eta = ens.learning_rates[t]
        for leaf in range(ens.n_leaves[t]):
            m = tl[:, t] == leaf
            if not m.any():
                continue
            G, H = g[m, t].sum(), h[m, t].sum() + ens.l2[ens.leaf_offsets[t] + leaf]
            qm = ql[:, t] == leaf
            expected[np.ix_(qm, m)] += (
                eta * (1 - eta) * gq[qm, t][:, None] * h[m, t][None, :] * G / H**2
            )
    diff = pub.transform(Xq, yq) - exact.transform(Xq, yq)
    np.testing.assert_allclose(diff, expected, rtol=1e-6, atol=1e-9)


def test_sample_weights_match_reference():
    X, y = make_data("binary", n=120, seed=5)
    w = np.random.default_rng(0).uniform(0.2, 3, size=len(y))
    model = make_model("lightgbm", "binary").fit(X, y, sample_weight=w)
    exp = BoostIn(model).fit(X, y, sample_weight=w)
    ens = exp.ensemble_
    expected = ref.boostin_matrix(
        ens, ens.leaf_ids(X), y.astype(float), ens.leaf_ids(X[:7]), y[:7].astype(float), w=w
    )
    np.testing.assert_allclose(exp.transform(X[:7], y[:7]), expected, rtol=1e-10, atol=1e-13)
    with pytest.raises(Exception, match="Newton"):
        BoostIn(model).fit(X, y)  # weights not passed: the leaves do not match


# ------------------------------------------------------------------ properties
@given(seed=st.integers(0, 2**16), case=st.sampled_from(CASES))
def test_permuting_training_rows_permutes_columns(seed, case):
    X, y, model, exp, Xq, yq = fitted(*case)
    perm = np.random.default_rng(seed).permutation(len(X))
    exp_p = BoostIn(FrozenEstimator(model)).fit(X[perm], y[perm])
    np.testing.assert_allclose(
        exp_p.transform(Xq, yq), exp.transform(Xq, yq)[:, perm], rtol=1e-9, atol=1e-12
    )


@given(rows=st.lists(st.integers(0, 24), min_size=1, max_size=8), case=st.sampled_from(CASES))
def test_rows_are_independent(rows, case):
    X, y, model, exp, Xq, yq = fitted(*case)
    full = exp.transform(Xq, yq)
    rows = np.asarray(rows)
    np.testing.assert_allclose(exp.transform(Xq[rows], yq[rows]), full[rows], rtol=0, atol=1e-12)


@given(chunk=st.floats(1e-4, 1.0), case=st.sampled_from(CASES))
def test_chunking_and_float32(chunk, case):
    X, y, model, exp, Xq, yq = fitted(*case)
    full = exp.transform(Xq, yq)
    small = clone(exp).set_params(estimator=model, chunk_memory_mb=chunk, dtype=np.float32)
    small.fit(X, y)
    out = small.transform(Xq, yq)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, full, rtol=1e-5, atol=1e-6 * np.abs(full).max())


def test_results_do_not_depend_on_threads():
    X, y, model, exp, Xq, yq = fitted("lightgbm", "multiclass")
    one = clone(exp).set_params(estimator=model, n_jobs=1).fit(X, y)
    np.testing.assert_array_equal(one.transform(Xq, yq), exp.transform(Xq, yq))
    np.testing.assert_array_equal(one.self_influence(), exp.self_influence())


@pytest.mark.parametrize("objective", ["binary", "multiclass"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cover_check_takes_the_fit_replay(objective, weighted, monkeypatch):
    """XGBoost records hessian sums (cover): BoostIn's training-row check reads them off
    the replay its derivatives need (one replay per fit), with the message and the
    values of the check's own replay."""
    from skinfluence import TrainingDataMismatchError
    from skinfluence._ensemble import TreeEnsemble

    X, y = make_data(objective, n=150, seed=1)
    w = np.linspace(0.5, 2.0, len(y)) if weighted else None
    model = make_model("xgboost", objective).fit(X, y, sample_weight=w)
    expected = BoostIn(model).fit(X, y, sample_weight=w)
    assert expected.ensemble_.leaf_stats_kind == "hessian"
    replays = []
    original = TreeEnsemble.replay
    monkeypatch.setattr(
        TreeEnsemble, "replay", lambda self, *a, **k: replays.append(1) or original(self, *a, **k)
    )
    with monkeypatch.context() as m:
        m.setattr(BoostIn, "_training_hessian_sums", lambda self, *a: None)
        own = BoostIn(model).fit(X, y, sample_weight=w)
    assert replays  # the check's own replay
    np.testing.assert_array_equal(own.derivatives_, expected.derivatives_)
    np.testing.assert_array_equal(own.self_influence(), expected.self_influence())
    replays.clear()
    again = BoostIn(model).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(again.derivatives_, expected.derivatives_)
    assert not hasattr(again, "_fit_terms")
    if objective == "multiclass":  # several columns: the general replay, once
        assert len(replays) == 1
    else:
        assert not replays
    # other rows: the same message as the check's own replay gives
    X_wrong, y_wrong = X.copy(), y.copy()
    X_wrong[:20], y_wrong[:20] = X[20:40], y[20:40]
    messages = []
    for hook in (None, lambda self, *a: None):
        with monkeypatch.context() as m:
            if hook is not None:
                m.setattr(BoostIn, "_training_hessian_sums", hook)
            exp = BoostIn(model)
            with pytest.raises(TrainingDataMismatchError) as info:
                exp.fit(X_wrong, y_wrong, sample_weight=w)
            messages.append(str(info.value))
            assert not hasattr(exp, "_fit_terms")
    assert messages[0] == messages[1] and "hessian" in messages[0]
