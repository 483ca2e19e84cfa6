"""Every cell of the models table (``tests/model_table.py``, shown in
``doc/models.rst``): "exact" against the brute-force oracles of ``tests/oracles.py``,
"refused" by its error message, and TREX by its representer reconstruction."""

from pathlib import Path

import numpy as np
import pytest

import skinfluence as sk
from skinfluence._adapters._base import UnsupportedModelError

from . import model_table, oracles

ROWS = model_table.rows()
#: how fit refuses a model: the adapter (unsupported objective) or the leaf check
REFUSALS = (ValueError, UnsupportedModelError)
IDS = [f"{r.library}-{r.objective}-{r.setting}" for r in ROWS]


@pytest.fixture(scope="module", params=ROWS, ids=IDS)
def row(request):
    r = request.param
    X, y = model_table.data(r.task)
    return r, model_table.make(r).fit(X, y), X, y


def test_page_shows_the_table():
    page = (Path(__file__).parents[1] / "doc" / "models.rst").read_text()
    assert model_table.rst() in page, "regenerate with python -m tests.model_table"


def _take(X, rows):
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


def _oracle_inputs(est, X, y):
    """The explained rows (the model's training rows), their leaves, labels as the
    library holds them, weights, and the kept step scales."""
    ens = est.ensemble_
    rows = np.setdiff1d(np.arange(len(y)), est.validation_indices_)
    leaves = ens.leaf_ids(_take(X, rows))
    yy = np.asarray(y[rows], dtype=np.float64)
    if ens.label_dtype is not None:
        yy = yy.astype(ens.label_dtype).astype(np.float64)
    w = np.ones(len(rows))
    return ens, rows, leaves, yy, w, oracles.kept_scales(ens, leaves, yy, w)


@pytest.mark.parametrize("method", model_table.GRADIENT)
def test_gradient_cells(row, method):
    r, model, X, y = row
    est = getattr(sk, method)(model, **({"derivative": "exact"} if method == "BoostIn" else {}))
    if r.refused is not None:
        with pytest.raises(REFUSALS, match=r.refused[0]):
            est.fit(X, y)
        return
    est.fit(X, y)
    ens, rows, leaves, yy, w, scales = _oracle_inputs(est, X, y)
    q = slice(0, 3)
    if method == "BoostIn":
        for p in (0, 17):
            fd = oracles.leaf_derivatives(ens, leaves, yy, w, p, scales)
            got = est.derivatives_[p]
            np.testing.assert_allclose(got, fd, rtol=1e-4, atol=1e-6 * np.abs(got).max() + 1e-12)
        return
    got = est.transform(_take(X, rows[q]), y[rows][q])[:, rows]
    scale = np.abs(got).max()
    for p in (0, 17):
        if method == "LeafInfluence":
            ref = oracles.finite_difference(ens, leaves, yy, w, p, leaves[q], yy[q], scales)
            np.testing.assert_allclose(got[:, p], ref, rtol=1e-4, atol=1e-6 * scale + 1e-12)
        else:
            ref = oracles.removal(ens, leaves, yy, w, p, leaves[q], yy[q], scales)
            np.testing.assert_allclose(got[:, p], ref, rtol=1e-4, atol=1e-5 * scale + 1e-12)


def test_trex_cell(row):
    r, model, X, y = row
    if r.everywhere:
        with pytest.raises(REFUSALS, match=r.refused[0]):
            sk.TREX(model).fit(X, y)
        return
    est = sk.TREX(model).fit(X, y)
    Xt = _take(X, np.setdiff1d(np.arange(len(y)), est.validation_indices_))
    phi = est.kernel_features(Xt)
    f = est.surrogate_decision_function(Xt)
    rec = (phi @ phi.T).toarray() @ est.representer_weights_
    np.testing.assert_allclose(rec, f, rtol=0, atol=1e-6 * max(1.0, np.abs(f).max()))
    assert np.isfinite(est.transform(_take(X, np.arange(3)), y[:3])).all()
