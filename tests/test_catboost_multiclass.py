"""CatBoost ``MultiClass``: full K x K Newton leaves for BoostIn, LeafInfluence and
LeafRefit, against numpy oracles (a brute-force fixed-structure refit and finite
differences of it in a row's weight)."""

import numpy as np
import pytest

import skinfluence
from skinfluence import BoostIn, LeafInfluence, LeafModelError, LeafRefit
from skinfluence._kernels import _full_hessian as _fh

cb = pytest.importorskip("catboost")

BASE = {"verbose": 0, "random_seed": 0, "thread_count": 1, "allow_writing_files": False}


def _data(n=60, d=4, K=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    logits = X[:, :K] * 1.5 + rng.normal(scale=0.8, size=(n, K))
    y = np.argmax(logits, axis=1)
    return X, y


def _f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


@pytest.fixture(scope="module")
def plain():
    X, y = _data()
    model = cb.CatBoostClassifier(
        loss_function="MultiClass", iterations=5, depth=3, learning_rate=0.4, **BASE
    ).fit(X, y)
    return model, X, y, None


@pytest.fixture(scope="module")
def weighted():
    X, y = _data(seed=1)
    w = _f32(np.random.default_rng(5).uniform(0.3, 2.5, len(y)))
    model = cb.CatBoostClassifier(
        loss_function="MultiClass", iterations=5, depth=3, learning_rate=0.4, **BASE
    ).fit(X, y, sample_weight=w)
    return model, X, y, w


@pytest.fixture(scope="module")
def four():
    """Four classes, sample weights, depthwise trees."""
    X, y = _data(K=4, seed=2)
    w = _f32(np.random.default_rng(6).uniform(0.3, 2.5, len(y)))
    model = cb.CatBoostClassifier(
        loss_function="MultiClass",
        iterations=4,
        depth=3,
        learning_rate=0.5,
        grow_policy="Depthwise",
        **BASE,
    ).fit(X, y, sample_weight=w)
    return model, X, y, w


# ------------------------------------------------------------------ numpy oracles
def _softmax(F):
    e = np.exp(F - F.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _structure(ens, X):
    """Round-leaf index ``(n, R)`` of the rows, the number of round leaves and lambda."""
    leaves = ens.leaf_ids(X)
    K = ens.n_outputs
    base = ens.leaf_offsets[:-1][::K] // K
    rl = leaves[:, ::K].astype(np.int64) + base[None, :]
    return rl, ens.n_leaves_total // K, float(ens.l2[0])


def _refit(ens, rl, n_rl, lam, y, w, only=None):
    """Brute-force fixed-structure refit with row weights ``w``: every round's leaves
    re-fitted as K x K Newton steps at the refitted scores before the round. ``only=i``:
    the single-point update set - the other rows keep their stored scores (so only
    the leaves of row ``i`` move, besides the float64 recomputation of the others).
    Returns the leaf vectors ``(n_rl, K)``."""
    K, R = ens.n_outputs, ens.n_rounds
    eta = ens.learning_rates[0]
    stored = _stored(ens)
    Y = np.eye(K)[np.asarray(y, dtype=int)]
    F = np.tile(ens.bias, (len(y), 1))
    F_stored = F.copy()
    U = stored.copy()
    for b in range(R):
        p = _softmax(F)
        for r in np.unique(rl[:, b]):
            rows = rl[:, b] == r
            pr, wr = p[rows], w[rows]
            G = (wr[:, None] * (pr - Y[rows])).sum(axis=0)
            M = np.diag((wr[:, None] * pr).sum(axis=0)) - np.einsum("j,jk,jm->km", wr, pr, pr)
            U[r] = -eta * np.linalg.solve(M + lam * np.eye(K), G)
        F_stored = F_stored + stored[rl[:, b]]
        F = F + U[rl[:, b]]
        if only is not None:  # only the row itself follows its leaves
            F_i = F[only].copy()
            F = F_stored.copy()
            F[only] = F_i
    return U


def _stored(ens):
    """Stored leaf vectors ``(n_rl, K)``."""
    K = ens.n_outputs
    out = []
    for b in range(ens.n_rounds):
        o, o1 = ens.leaf_offsets[b * K], ens.leaf_offsets[b * K + 1]
        L = o1 - o
        out.append(ens.leaf_values[o : o + K * L].reshape(K, L).T)
    return np.vstack(out)


def _scores(ens, U, rl):
    return ens.bias[None, :] + U[rl].sum(axis=1)


def _loss(F, y):
    F = F - F.max(axis=1, keepdims=True)
    return np.log(np.exp(F).sum(axis=1)) - F[np.arange(len(y)), np.asarray(y, dtype=int)]


def _setup(case):
    model, X, y, w = case
    ens = skinfluence.to_ensemble(model, X, y, w)
    rl, n_rl, lam = _structure(ens, X)
    weights = np.ones(len(y)) if w is None else w
    return ens, rl, n_rl, lam, weights


def _queries(ens, X, y, m=6):
    Xq, yq = X[-m:], y[-m:]
    rlq = _structure(ens, Xq)[0]
    F = _scores(ens, _stored(ens), rlq)
    gq = _softmax(F)
    gq[np.arange(m), yq] -= 1.0
    return Xq, yq, rlq, F, gq


def _fd_influence(ens, rl, n_rl, lam, y, weights, rows, rlq, gq, only=False, eps=1e-5):
    """``-w_i gq . dF_q / dw_i`` by central differences of the brute-force refit."""
    out = np.empty((len(rlq), len(rows)))
    for c, i in enumerate(rows):
        wp, wm = weights.copy(), weights.copy()
        wp[i] += eps
        wm[i] -= eps
        o = i if only else None
        Up = _refit(ens, rl, n_rl, lam, y, wp, only=o)
        Um = _refit(ens, rl, n_rl, lam, y, wm, only=o)
        dF = (_scores(ens, Up, rlq) - _scores(ens, Um, rlq)) / (2 * eps)
        out[:, c] = -weights[i] * (gq * dF).sum(axis=1)
    return out


ROWS = [0, 7, 21, 40, 59]


# ------------------------------------------------------------------- leaf check
@pytest.mark.parametrize("n_classes", [3, 4])
@pytest.mark.parametrize("weighted", [False, True])
def test_leaf_check_passes_on_defaults(n_classes, weighted):
    """CatBoost's default MultiClass settings (1000 rounds of depth 6, one Newton leaf
    iteration): every stored leaf is the K x K Newton step. Unweighted to 1e-12; with
    float32 sample weights to the default 1e-5 (the mean weight scaling lambda is
    computed in float32 by CatBoost; gaps about 1e-8)."""
    X, y = _data(n=50, K=n_classes, seed=n_classes)
    w = _f32(np.random.default_rng(2).uniform(0.3, 2.5, len(y))) if weighted else None
    model = cb.CatBoostClassifier(loss_function="MultiClass", **BASE).fit(X, y, sample_weight=w)
    ens = skinfluence.to_ensemble(model, X, y, w)
    assert ens.full_hessian and ens.n_outputs == n_classes and ens.breaking_settings == ()
    leaves = ens.check_reconstruction(X)
    tol = 1e-5 if weighted else 1e-12
    assert ens.check_leaf_model(leaves, y.astype(float), w, atol=tol, rtol=tol) == 0.0
    if n_classes == 3 and not weighted:  # every method out of the box
        for method in (BoostIn, LeafInfluence, LeafRefit, skinfluence.TREX):
            T = method(model).fit(X, y).transform(X[:3], y[:3])
            assert T.shape == (3, len(y)) and np.all(np.isfinite(T))


def test_default_classifier_on_three_classes_is_multiclass(plain):
    """``CatBoostClassifier()`` on 3 classes trains MultiClass: explained out of the box."""
    _, X, y, _ = plain
    model = cb.CatBoostClassifier(iterations=20, **BASE).fit(X, y)
    for method in (BoostIn, LeafInfluence, LeafRefit, skinfluence.TREX):
        assert method(model).fit(X, y).transform(X[:2], y[:2]).shape == (2, len(y))


def test_diagonal_step_does_not_reproduce_multiclass(plain):
    """The per-column step misses the stored leaves (why the flag exists)."""
    model, X, y, _ = plain
    ens = skinfluence.to_ensemble(model)
    ens.full_hessian = False
    with pytest.raises(LeafModelError, match=r"-eta\*G/\(H\+lambda\)"):
        ens.check_leaf_model(ens.leaf_ids(X), y.astype(float))


# ------------------------------------------------------------------ small algebra
def test_q_matrix_is_the_derivative_of_the_source():
    """``Q = d(g + H u)/dF`` at fixed ``u`` (central differences), and ``_qt_apply`` is
    its transpose."""
    rng = np.random.default_rng(0)
    K, y = 4, 2
    F, u = rng.normal(size=K), rng.normal(size=K)

    def source(F):
        p = _softmax(F[None])[0]
        return p - np.eye(K)[y] + p * u - p * (p @ u)

    eps = 1e-6
    fd = np.column_stack(
        [(source(F + eps * e) - source(F - eps * e)) / (2 * eps) for e in np.eye(K)]
    )
    p = _softmax(F[None])[0]
    Q = np.empty((K, K))
    QT = np.empty((K, K))
    out = np.empty(K)
    for m, e in enumerate(np.eye(K)):
        _fh._q_apply(p, u, e, out)
        Q[:, m] = out
        _fh._qt_apply(p, u, e, out)
        QT[:, m] = out
    np.testing.assert_allclose(Q, fd, atol=1e-9)
    np.testing.assert_allclose(QT, Q.T, atol=1e-15)


def test_solve_small_matches_numpy():
    rng = np.random.default_rng(1)
    for K in (1, 3, 6):
        A = rng.normal(size=(K, K)) + K * np.eye(K)
        b = rng.normal(size=K)
        x = np.empty(K)
        assert _fh.solve_small(A, b, x, np.empty((K, K + 1)))
        np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-12, atol=1e-14)
    assert not _fh.solve_small(np.zeros((2, 2)), np.ones(2), x[:2], np.empty((2, 3)))


# ------------------------------------------------------------------------ BoostIn
@pytest.mark.parametrize("case", ["plain", "weighted", "four"])
def test_boostin_exact_is_the_leaf_derivative(case, request):
    """``derivative="exact"``: ``delta[i, (b, .)] = -w_i du_l/dw_i`` of the leaf
    recomputed on the stored scores before the round (central differences in w_i)."""
    model, X, y, w = request.getfixturevalue(case)
    ens, rl, n_rl, lam, weights = _setup(request.getfixturevalue(case))
    K, eta = ens.n_outputs, ens.learning_rates[0]
    explainer = BoostIn(model, derivative="exact").fit(X, y, sample_weight=w)
    F = np.tile(ens.bias, (len(y), 1))
    stored = _stored(ens)
    Y = np.eye(K)[y]
    eps = 1e-6
    for b in range(ens.n_rounds):
        p = _softmax(F)
        for i in ROWS:
            rows = rl[:, b] == rl[i, b]

            def leaf(wi, rows=rows, i=i):
                ww = weights.copy()
                ww[i] = wi
                pr, wr = p[rows], ww[rows]
                G = (wr[:, None] * (pr - Y[rows])).sum(axis=0)
                M = np.diag((wr[:, None] * pr).sum(axis=0)) - np.einsum("j,jk,jm->km", wr, pr, pr)
                return -eta * np.linalg.solve(M + lam * np.eye(K), G)

            du = (leaf(weights[i] + eps) - leaf(weights[i] - eps)) / (2 * eps)
            got = explainer.derivatives_[i, b * K : (b + 1) * K]
            np.testing.assert_allclose(got, -weights[i] * du, rtol=1e-6, atol=1e-10)
        F = F + stored[rl[:, b]]


def test_boostin_published_and_queries(weighted):
    """``"published"`` puts the stored (shrunk) leaf vector in place of the unshrunk
    one; queries sum ``delta`` times the query gradient over the trees shared."""
    model, X, y, w = weighted
    ens, rl, n_rl, lam, weights = _setup(weighted)
    K, eta = ens.n_outputs, ens.learning_rates[0]
    pub = BoostIn(model).fit(X, y, sample_weight=w)
    exact = BoostIn(model, derivative="exact").fit(X, y, sample_weight=w)
    g, h, _, _ = ens.replay(ens.leaf_ids(X), y.astype(float))
    F = np.tile(ens.bias, (len(y), 1))
    stored = _stored(ens)
    for b in range(ens.n_rounds):
        p = _softmax(F)
        for i in ROWS:
            rows = rl[:, b] == rl[i, b]
            pr, wr = p[rows], weights[rows]
            M = np.diag((wr[:, None] * pr).sum(axis=0)) - np.einsum("j,jk,jm->km", wr, pr, pr)
            Hi = np.diag(p[i]) - np.outer(p[i], p[i])
            gi = g[i, b * K : (b + 1) * K]
            for values, ex in ((stored, pub), (stored / eta, exact)):
                want = (
                    eta
                    * weights[i]
                    * np.linalg.solve(M + lam * np.eye(K), gi + Hi @ values[rl[i, b]])
                )
                got = ex.derivatives_[i, b * K : (b + 1) * K]
                np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
        F = F + stored[rl[:, b]]
    Xq, yq, rlq, _, _ = _queries(ens, X, y)
    gq = ens.replay(ens.leaf_ids(Xq), yq.astype(float))[0]
    same = ens.leaf_ids(Xq)[:, None, :] == ens.leaf_ids(X)[None, :, :]
    want = np.einsum("et,it,eit->ei", gq, pub.derivatives_, same)
    np.testing.assert_allclose(pub.transform(Xq, yq), want, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(pub.self_influence(), np.diag(pub.transform(X, y)), atol=1e-14)


# ------------------------------------------------------------------ LeafInfluence
@pytest.mark.parametrize("case", ["plain", "weighted", "four"])
def test_leaf_influence_is_the_refit_derivative(case, request):
    """``update_set=-1``: the exact derivative with cross-class propagation, against
    central differences (step 1e-5, error O(1e-10)) of the brute-force refit."""
    model, X, y, w = request.getfixturevalue(case)
    ens, rl, n_rl, lam, weights = _setup(request.getfixturevalue(case))
    Xq, yq, rlq, F, gq = _queries(ens, X, y)
    got = LeafInfluence(model).fit(X, y, sample_weight=w).transform(Xq, yq)[:, ROWS]
    want = _fd_influence(ens, rl, n_rl, lam, y, weights, ROWS, rlq, gq)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9 * np.abs(want).max())


def test_single_point_is_the_derivative_of_its_refit(weighted):
    """``update_set=0``: the derivative of the refit in which only the row itself
    follows its leaves."""
    model, X, y, w = weighted
    ens, rl, n_rl, lam, weights = _setup(weighted)
    Xq, yq, rlq, F, gq = _queries(ens, X, y)
    got = LeafInfluence(model, update_set=0).fit(X, y, sample_weight=w).transform(Xq, yq)
    want = _fd_influence(ens, rl, n_rl, lam, y, weights, ROWS, rlq, gq, only=True)
    np.testing.assert_allclose(got[:, ROWS], want, rtol=1e-6, atol=1e-9 * np.abs(want).max())


@pytest.mark.parametrize("update_set", [-1, 0, 2])
def test_reverse_equals_forward(weighted, update_set):
    """Self-influence (forward mode) is the diagonal of ``transform`` (reverse sweep
    for -1), global influence the column sums."""
    model, X, y, w = weighted
    ex = LeafInfluence(model, update_set=update_set).fit(X, y, sample_weight=w)
    T = ex.transform(X, y)
    scale = np.abs(T).max()
    np.testing.assert_allclose(ex.self_influence(), np.diag(T), rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(
        ex.global_influence(X[:20], y[:20]), T[:20].sum(axis=0), rtol=1e-9, atol=1e-12 * scale
    )


def test_top_k_with_every_leaf_is_all_points(plain):
    """``update_set=k`` with k at least the leaves of a round selects them all."""
    model, X, y, _ = plain
    Xq, yq = X[:5], y[:5]
    full = LeafInfluence(model).fit(X, y).transform(Xq, yq)
    top = LeafInfluence(model, update_set=8).fit(X, y).transform(Xq, yq)
    np.testing.assert_allclose(top, full, rtol=1e-10, atol=1e-14)
    one = LeafInfluence(model, update_set=1).fit(X, y).transform(Xq, yq)
    assert np.all(np.isfinite(one)) and not np.allclose(one, full)


# ---------------------------------------------------------------------- LeafRefit
@pytest.mark.parametrize("case", ["plain", "weighted", "four"])
def test_leaf_refit_is_the_bruteforce_refit(case, request):
    """``update_set=-1``: the loss change of the brute-force refit without the row."""
    model, X, y, w = request.getfixturevalue(case)
    ens, rl, n_rl, lam, weights = _setup(request.getfixturevalue(case))
    Xq, yq, rlq, F, _ = _queries(ens, X, y)
    ex = LeafRefit(model).fit(X, y, sample_weight=w)
    got = ex.transform(Xq, yq)
    for c, i in enumerate(ROWS):
        w0 = weights.copy()
        w0[i] = 0.0
        want = _loss(_scores(ens, _refit(ens, rl, n_rl, lam, y, w0), rlq), yq) - _loss(F, yq)
        np.testing.assert_allclose(got[:, i], want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ex.self_influence(), np.diag(ex.transform(X, y)), atol=1e-13)


def test_leaf_refit_single_point(weighted):
    """``update_set=0``: only the removed row's own leaves are refitted, the other rows
    keep their stored scores."""
    model, X, y, w = weighted
    ens, rl, n_rl, lam, weights = _setup(weighted)
    Xq, yq, rlq, F, _ = _queries(ens, X, y)
    got = LeafRefit(model, update_set=0).fit(X, y, sample_weight=w).transform(Xq, yq)
    for i in ROWS:
        w0 = weights.copy()
        w0[i] = 0.0
        U = _refit(ens, rl, n_rl, lam, y, w0, only=i)
        want = _loss(_scores(ens, U, rlq), yq) - _loss(F, yq)
        np.testing.assert_allclose(got[:, i], want, rtol=1e-9, atol=1e-12)


def test_leaf_refit_top_k_with_every_leaf_is_the_full_refit(plain):
    model, X, y, _ = plain
    Xq, yq = X[:5], y[:5]
    full = LeafRefit(model).fit(X, y).transform(Xq, yq)
    np.testing.assert_allclose(
        LeafRefit(model, update_set=8).fit(X, y).transform(Xq, yq), full, rtol=1e-9, atol=1e-14
    )
    assert np.all(np.isfinite(LeafRefit(model, update_set=1).fit(X, y).transform(Xq, yq)))


# ------------------------------------------------------------ threads, TREX, refusals
def test_results_do_not_depend_on_threads(weighted):
    model, X, y, w = weighted
    for method, kw in ((LeafInfluence, {}), (LeafInfluence, {"update_set": 2}), (LeafRefit, {})):
        a = method(model, n_jobs=1, block_size=7, **kw).fit(X, y, sample_weight=w)
        b = method(model, n_jobs=2, **kw).fit(X, y, sample_weight=w)
        assert np.array_equal(a.transform(X[:9], y[:9]), b.transform(X[:9], y[:9]))
        assert np.array_equal(a.self_influence(), b.self_influence())


def test_trex_runs(plain):
    model, X, y, _ = plain
    assert skinfluence.TREX(model).fit(X, y).transform(X[:3], y[:3]).shape == (3, len(y))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"leaf_estimation_iterations": 3}, "leaf_estimation_iterations=3"),
        ({"leaf_estimation_method": "Gradient"}, "leaf_estimation_method='Gradient'"),
        ({"l2_leaf_reg": 0}, "l2_leaf_reg >= 1e-06"),
        ({"class_weights": [1.0, 2.0, 0.5]}, "class weights"),
    ],
)
def test_refusals(plain, params, match):
    _, X, y, _ = plain
    model = cb.CatBoostClassifier(
        loss_function="MultiClass", iterations=4, depth=3, **params, **BASE
    ).fit(X, y)
    # class weights: the training-row check names them first (the stored per-leaf
    # weights include them)
    errors = (LeafModelError, skinfluence.TrainingDataMismatchError)
    for method in (BoostIn, LeafInfluence, LeafRefit):
        with pytest.raises(errors, match=match):
            method(model).fit(X, y)


def test_class_weights_passed_as_sample_weights(plain):
    """Class weights given to fit as each row's weight: explained (gaps ~1e-8, float32)."""
    _, X, y, _ = plain
    cw = np.array([1.0, 2.0, 0.5])
    model = cb.CatBoostClassifier(
        loss_function="MultiClass", iterations=4, depth=3, class_weights=list(cw), **BASE
    ).fit(X, y)
    w = _f32(cw[y])
    assert LeafRefit(model).fit(X, y, sample_weight=w).self_influence().shape == (len(y),)


# ------------------------------------------------- numpy references of the kernels
def _select(sums, n_top):
    """The kernels' top-k rule: largest sums, ties (within 1e-12 relative) to the lower
    leaf id."""
    selected = np.zeros(len(sums), dtype=bool)
    for _ in range(min(n_top, len(sums))):
        best = -1
        for l in range(len(sums)):
            if not selected[l] and (
                best < 0 or sums[l] > sums[best] + 1e-12 * max(sums[l], sums[best])
            ):
                best = l
        selected[best] = True
    return selected


def _leaf_sums_by_round(rl, b, base, L, values):
    sums = np.zeros(L)
    for row in range(len(rl)):
        sums[rl[row, b] - base] += np.abs(values[row]).sum()
    return sums


def _round_leaves(ens):
    """First round-leaf index and number of leaves of each round."""
    K = ens.n_outputs
    return ens.leaf_offsets[:-1][::K] // K, ens.n_leaves[::K]


def _forward_reference(ens, rl, lam, y, w, i, n_top):
    """Forward mode of LeafInfluence for removed row ``i`` with explicit K x K matrices:
    ``Q_j = d(g_j + H_j ubar)/dF_j`` formed as ``H + diag(ubar - s) H - p (H ubar)^T``.
    Returns ``D`` ``(n_rl, K)``."""
    K, R, n = ens.n_outputs, ens.n_rounds, len(y)
    eta = ens.learning_rates[0]
    stored = _stored(ens)
    ubar = stored / eta
    Y = np.eye(K)[np.asarray(y, dtype=int)]
    F = np.tile(ens.bias, (n, 1))
    J = np.zeros((n, K))
    D = np.zeros_like(stored)
    starts, Ls = _round_leaves(ens)
    for b in range(R):
        p = _softmax(F)
        base, L = starts[b], Ls[b]
        selected = np.zeros(L, dtype=bool)
        if n_top > 0:
            selected = _select(_leaf_sums_by_round(rl, b, base, L, J), n_top)
        full = [n_top < 0 or selected[l] for l in range(L)]
        for l in range(L):
            r = base + l
            rows = np.flatnonzero(rl[:, b] == r)
            if not full[l] and i not in rows:
                continue
            Hs = [np.diag(p[j]) - np.outer(p[j], p[j]) for j in range(n)]
            M = sum(w[j] * Hs[j] for j in rows) + lam * np.eye(K)
            s = np.zeros(K)
            for j in rows if full[l] else [i]:
                Hu = Hs[j] @ ubar[r]
                Q = Hs[j] + np.diag(ubar[r] - p[j] @ ubar[r]) @ Hs[j] - np.outer(p[j], Hu)
                s += w[j] * Q @ J[j]
            if i in rows:
                s += p[i] - Y[i] + Hs[i] @ ubar[r]
            D[r] = -eta * np.linalg.solve(M, s)
        for l in range(L):
            r = base + l
            rows = np.flatnonzero(rl[:, b] == r)
            if full[l]:
                J[rows] += D[r]
            elif i in rows:
                J[i] += D[r]
        F = F + stored[rl[:, b]]
    return D


def _refit_reference(ens, rl, lam, y, w, i, n_top):
    """The fixed-structure refit without row ``i`` with update set ``n_top``, as the
    kernel defines it (rows outside the update set keep their stored scores; the top-k
    leaves are chosen by the summed absolute change against the float64 Newton step of
    the unperturbed leaves). Returns ``v' - v`` ``(n_rl, K)``."""
    K, R, n = ens.n_outputs, ens.n_rounds, len(y)
    eta = ens.learning_rates[0]
    stored = _stored(ens)
    Y = np.eye(K)[np.asarray(y, dtype=int)]
    F = np.tile(ens.bias, (n, 1))
    delta, sel = np.zeros((n, K)), np.zeros((n, K))
    changed = np.zeros(n, dtype=bool)
    dv = np.zeros_like(stored)
    starts, Ls = _round_leaves(ens)

    def newton(rows, p):
        G = (w[rows, None] * (p[rows] - Y[rows])).sum(axis=0)
        M = np.diag((w[rows, None] * p[rows]).sum(axis=0)) - np.einsum(
            "j,jk,jm->km", w[rows], p[rows], p[rows]
        )
        return -eta * np.linalg.solve(M + lam * np.eye(K), G)

    for b in range(R):
        p0 = _softmax(F)
        p1 = np.where(changed[:, None], _softmax(F + delta), p0)
        base, L = starts[b], Ls[b]
        selected = np.zeros(L, dtype=bool)
        if n_top > 0:
            selected = _select(_leaf_sums_by_round(rl, b, base, L, sel), n_top)
        for l in range(L):
            r = base + l
            rows = np.flatnonzero(rl[:, b] == r)
            full = n_top < 0 or selected[l]
            keep = rows[rows != i]
            new = newton(keep, p1 if full else p0)
            dv[r] = new - stored[r]
            if full and np.any(dv[r] != 0):
                delta[keep] += dv[r]
                changed[keep] = True
                if n_top > 0:
                    v0 = newton(rows, p0)
                    ds = new - v0
                    ds[np.abs(ds) <= 1e-10 * np.maximum(np.abs(new), np.abs(v0))] = 0.0
                    sel[keep] += ds
        F = F + stored[rl[:, b]]
    return dv


def test_trajectory_and_leaf_sums_kernels(weighted):
    model, X, y, w = weighted
    ens, rl, n_rl, lam, weights = _setup(weighted)
    leaves = ens.leaf_ids(X)
    K = ens.n_outputs
    scores, proba = _fh.trajectory(leaves, ens.leaf_offsets, ens.leaf_values, ens.bias, K)
    G, M = _fh.round_leaf_sums(leaves, ens.leaf_offsets, K, proba, y.astype(float), weights)
    stored, F = _stored(ens), np.tile(ens.bias, (len(y), 1))
    for b in range(ens.n_rounds):
        np.testing.assert_allclose(scores[:, b], F, rtol=1e-14, atol=1e-15)
        p = _softmax(F)
        np.testing.assert_allclose(proba[:, b], p, rtol=1e-13, atol=1e-16)
        for r in np.unique(rl[:, b]):
            rows = rl[:, b] == r
            wr, pr = weights[rows], p[rows]
            Gr = (wr[:, None] * (pr - np.eye(K)[y[rows]])).sum(axis=0)
            Mr = np.diag((wr[:, None] * pr).sum(axis=0)) - np.einsum("j,jk,jm->km", wr, pr, pr)
            np.testing.assert_allclose(G[r], Gr, rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(M[r], Mr, rtol=1e-12, atol=1e-13)
        F = F + stored[rl[:, b]]


def _as_round_leaves(ens, flat_values):
    from skinfluence._full_hessian import round_leaf_flat

    return flat_values[round_leaf_flat(ens)]


@pytest.mark.parametrize("update_set", [-1, 0, 1, 2])
def test_forward_kernel_matches_numpy(weighted, update_set):
    """Every leaf's derivative (not only those queries reach) against the explicit
    matrix recursion; the single-point kernel against the same recursion."""
    model, X, y, w = weighted
    ens, rl, n_rl, lam, weights = _setup(weighted)
    ex = LeafInfluence(model, update_set=update_set).fit(X, y, sample_weight=w)
    rows = np.array(ROWS, dtype=np.int64)
    gfin = np.zeros((len(rows), ens.n_outputs))
    D, _ = _fh.forward_block(rows, ex._train, ex._update.full, update_set, gfin)
    for p, i in enumerate(ROWS):
        want = _forward_reference(ens, rl, lam, y, weights, i, update_set)
        got = _as_round_leaves(ens, D[p])
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-13)
        if update_set == 0:
            K = ens.n_outputs
            own = want[rl[i]].reshape(-1)  # round by round, column inner
            np.testing.assert_allclose(ex.derivatives_[i], own, rtol=1e-9, atol=1e-13)
            assert K * ens.n_rounds == own.size


@pytest.mark.parametrize("update_set", [-1, 0, 1, 2])
def test_refit_kernel_matches_numpy(weighted, update_set):
    model, X, y, w = weighted
    ens, rl, n_rl, lam, weights = _setup(weighted)
    ex = LeafRefit(model, update_set=update_set).fit(X, y, sample_weight=w)
    rows = np.array(ROWS, dtype=np.int64)
    dv, dself = _fh.refit_block(rows, ex._train, ex._refit, update_set)
    for p, i in enumerate(ROWS):
        want = _refit_reference(ens, rl, lam, y, weights, i, update_set)
        np.testing.assert_allclose(_as_round_leaves(ens, dv[p]), want, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(dself[p], want[rl[i]].sum(axis=0), rtol=1e-9, atol=1e-12)
