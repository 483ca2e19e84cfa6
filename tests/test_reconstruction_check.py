"""The reconstruction check on a covering sample of the training rows.

``fit`` compares the parsed trees with the library's raw prediction on a row reaching
each (tree, leaf) pair the training rows reach, plus 1,000 rows drawn uniformly
(``reconstruction_check="covering"``, the default), or on every row (``"all"``). One
small LightGBM model, trained once, has leaves that a single training row reaches.
"""

import copy
import functools

import numpy as np
import pandas as pd
import polars as pl
import pytest

import skinfluence
from skinfluence import BoostIn, ReconstructionError, to_ensemble
from skinfluence._ensemble import RECONSTRUCTION_SAMPLE
from skinfluence.testing import make_model

N = 3000


@functools.cache
def _fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, 4))
    y = (X[:, 0] + 0.5 * rng.normal(size=N) > 0).astype(int)
    model = make_model(
        "lightgbm",
        "binary",
        n_estimators=6,
        num_leaves=48,
        min_child_samples=1,
        min_child_weight=0.0,
        min_split_gain=0.0,
    ).fit(X, y)
    return X, y, model


class _Recording:
    """A raw predictor that records how many rows it was asked for."""

    def __init__(self, predictor):
        self.predictor, self.calls = predictor, []

    def __call__(self, X):
        self.calls.append(len(X))
        return self.predictor(X)


def _ensemble():
    X, y, model = _fitted()
    ens = to_ensemble(model)
    ens.raw_predictor = _Recording(ens.raw_predictor)
    return X, y, ens


def test_covering_rows_reach_every_leaf_and_the_library_sees_only_them():
    X, _, ens = _ensemble()
    leaves = ens.leaf_ids(X)
    rows = ens.reconstruction_rows(leaves)
    flat = ens.flat_leaves(leaves)
    np.testing.assert_array_equal(np.unique(flat[rows]), np.unique(flat))
    assert len(rows) <= ens.n_leaves_total + RECONSTRUCTION_SAMPLE < N
    np.testing.assert_array_equal(ens.check_reconstruction(X), leaves)
    assert ens.raw_predictor.calls == [len(rows)]
    with skinfluence.config_context(reconstruction_check="all"):
        assert ens.reconstruction_rows(leaves) is None
        np.testing.assert_array_equal(ens.check_reconstruction(X, leaves), leaves)
    assert ens.raw_predictor.calls == [len(rows), N]
    # up to RECONSTRUCTION_SAMPLE rows, every row is checked
    assert ens.reconstruction_rows(leaves[:RECONSTRUCTION_SAMPLE]) is None


def _lonely_leaf(ens, leaves, rows):
    """A (tree, flat leaf, row) whose leaf one training row reaches, that row outside
    the uniform sample (so only the cover checks it)."""
    flat = ens.flat_leaves(leaves)
    counts = np.bincount(flat.ravel(), minlength=ens.n_leaves_total)
    sample = np.random.default_rng(0).choice(N, RECONSTRUCTION_SAMPLE, replace=False)
    for j in np.flatnonzero(counts == 1):
        t = int(np.searchsorted(ens.leaf_offsets, j, side="right") - 1)
        row = int(np.flatnonzero(flat[:, t] == j)[0])
        if row not in sample and t >= ens.n_outputs:
            assert row in rows
            return t, int(j), row
    pytest.fail("the model has no leaf reached by one training row outside the sample")


@pytest.mark.parametrize("mode", ["covering", "all"])
def test_a_wrong_leaf_of_one_training_row_is_caught(mode):
    X, _, ens = _ensemble()
    leaves = ens.leaf_ids(X)
    t, j, row = _lonely_leaf(ens, leaves, ens.reconstruction_rows(leaves))
    bad = copy.copy(ens)
    bad.leaf_values = ens.leaf_values.copy()
    bad.leaf_values[j] += 0.25
    checked = "rows checked" if mode == "covering" else f"{N} rows;"
    with skinfluence.config_context(reconstruction_check=mode):
        with pytest.raises(ReconstructionError, match=f"on 1 of .*{checked}") as err:
            bad.check_reconstruction(X, leaves)
    message = str(err.value)
    assert f"at row {row}," in message
    # the diagnosis names the row and the round of the corrupted tree
    assert f"on row {row} the gap starts at boosting round {t // ens.n_outputs}" in message


@pytest.mark.parametrize("mode", ["covering", "all"])
def test_a_wrong_bias_is_diagnosed(mode):
    X, y, model = _fitted()
    bad = to_ensemble(model)
    bad.bias = bad.bias + 0.5
    with skinfluence.config_context(reconstruction_check=mode):
        with pytest.raises(ReconstructionError, match="the gap is the same on every row"):
            bad.check_reconstruction(X)


def test_data_frames_and_explainer_results_do_not_depend_on_the_mode():
    X, y, model = _fitted()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model_frame = make_model("lightgbm", "binary", n_estimators=3).fit(frame, y)
    ens = to_ensemble(model_frame)
    leaves = ens.check_reconstruction(frame)  # rows taken from the frame by position
    assert ens.reconstruction_rows(leaves) is not None
    # a frame with another index: positions, not labels
    shuffled = frame.set_axis(np.arange(N)[::-1] * 7)
    np.testing.assert_array_equal(ens.check_reconstruction(shuffled), leaves)
    np.testing.assert_array_equal(ens.check_reconstruction(pl.from_pandas(frame)), leaves)
    covering = BoostIn(model).fit(X, y)
    with skinfluence.config_context(reconstruction_check="all"):
        every = BoostIn(model).fit(X, y)
    np.testing.assert_array_equal(covering.derivatives_, every.derivatives_)
    assert skinfluence.get_config()["reconstruction_check"] == "covering"


def test_the_option_is_validated():
    with pytest.raises(ValueError, match="reconstruction_check must be one of"):
        skinfluence.set_config(reconstruction_check="some")
    with pytest.raises(ValueError, match="reconstruction_check"):
        with skinfluence.config_context(reconstruction_check=True):
            pass
    assert skinfluence.get_config()["reconstruction_check"] == "covering"
