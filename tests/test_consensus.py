"""ConsensusInfluence: equals the scaled sum of its three members, computed here from
the public members themselves, for local, global and self influence; invariants; and
its refusals.

Oracle: each member (BoostIn, LeafSim, LeafInfluence) is fitted on its own and its
output divided by its standard deviation over the training rows (per query for
``transform``); the sum must equal the estimator's to float64 rounding (the same
operations in the same order, so 1e-12 of the largest value).
"""

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from skinfluence import BoostIn, ConsensusInfluence, LeafInfluence, LeafSim

from .models import forest, gradient_cases, make_data, make_model

CASES = [
    ("lightgbm", "binary"),
    ("lightgbm", "squared_error"),
    ("sklearn_hgb", "multiclass"),
]
_MEMBERS = (BoostIn, LeafSim, LeafInfluence)


def _scaled(a):
    sd = a.std(axis=-1, keepdims=True)
    return a / np.where(sd > 0, sd, 1.0)


def _setup(lib, objective, n=60):
    # CASES are chosen among the models every member supports: fail, never skip
    assert (lib, objective) in gradient_cases(), f"{lib} {objective} is not a gradient case"
    X, y = make_data(objective, n=n, seed=1)
    Xq, yq = make_data(objective, n=7, seed=2)
    model = make_model(lib, objective).fit(X, y)
    return X, y, Xq, yq, model


@pytest.mark.parametrize(("lib", "objective"), CASES)
def test_transform_global_self_equal_scaled_members(lib, objective):
    X, y, Xq, yq, model = _setup(lib, objective)
    members = [cls(model).fit(X, y) for cls in _MEMBERS]
    exp = ConsensusInfluence(model).fit(X, y)

    want = sum(_scaled(m.transform(Xq, yq)) for m in members)
    got = exp.transform(Xq, yq)
    assert got.shape == (len(yq), len(y))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())

    want_g = sum(_scaled(m.global_influence(Xq, yq)) for m in members)
    np.testing.assert_allclose(
        exp.global_influence(Xq, yq), want_g, rtol=0, atol=1e-12 * np.abs(want_g).max()
    )
    if lib == "lightgbm" and objective == "binary":  # LeafInfluence's is O(N^2 T)
        want_s = sum(_scaled(m.self_influence()) for m in members)
        np.testing.assert_allclose(
            exp.self_influence(), want_s, rtol=0, atol=1e-12 * np.abs(want_s).max()
        )


def test_invariants_blocks_and_unlabelled_queries():
    """Per-query scaling: a query's row does not depend on the other queries of the
    call (blocks of one query give the same matrix); unlabelled classifier queries
    explain the predicted label, as the members do."""
    X, y, Xq, yq, model = _setup("lightgbm", "binary")
    full = ConsensusInfluence(model).fit(X, y)
    one = ConsensusInfluence(model, chunk_memory_mb=8 * len(y) * 2 / 2**20).fit(X, y)
    np.testing.assert_allclose(one.transform(Xq, yq), full.transform(Xq, yq), rtol=0, atol=1e-12)
    pred = model.predict(Xq)
    np.testing.assert_array_equal(full.transform(Xq), full.transform(Xq, pred))
    # each row of a query is on the scale of three unit-deviation members
    sd = full.transform(Xq, yq).std(axis=1)
    assert np.all(sd <= 3 + 1e-9) and np.all(sd > 0)


def test_refuses_forests():
    X, y = make_data("binary", n=60, seed=1)
    model = forest("binary").fit(X, y)
    with pytest.raises(ValueError, match="needs a gradient-boosted model"):
        ConsensusInfluence(model).fit(X, y)


def test_refuses_early_stopping_split():
    X, y = make_data("binary", n=200, seed=1)
    model = HistGradientBoostingClassifier(
        max_iter=5, early_stopping=True, n_iter_no_change=50, random_state=0
    ).fit(X, y)
    with pytest.raises(ValueError, match="held .* out \\(early stopping\\)"):
        ConsensusInfluence(model).fit(X, y)


def test_bad_leaf_check_mode():
    X, y, Xq, yq, model = _setup("lightgbm", "binary", n=40)
    with pytest.raises(ValueError, match="check_leaf_model"):
        ConsensusInfluence(model, check_leaf_model="ignore").fit(X, y)
