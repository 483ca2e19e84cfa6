"""TREX: representer points adapted to tree ensembles (Brophy et al., JMLR 2023), and
the tree-kernel feature maps it shares with :class:`~skinfluence.TreeSim`."""

import warnings

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.sparse.linalg import LinearOperator, cg
from scipy.special import expit, log_softmax, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from ._kernels import _leaves, _trees
from ._kernels import _similarity as _ksim
from ._objectives import (
    gradient,
    is_regression,
    loss,
    predict_from_raw,
    regression_hessian,
    unclipped_loss,
)
from .base import BaseInfluence

__all__ = ["TREX"]

#: kernel codes of :ref:`methods-trex-kernels`: tree outputs, leaf kernels, path kernels
KERNELS = ("to_", "lp_", "lpw", "lo_", "low", "fp_", "fpw", "fo_", "fow")
_LEAF_KERNELS = ("lp_", "lpw", "lo_", "low")
_PATH_KERNELS = ("fp_", "fpw", "fo_", "fow")
_TARGETS = ("actual", "predicted")


def _inverse(counts):
    """``1 / counts``, 0 where a leaf or node has no training row."""
    out = np.zeros_like(counts, dtype=np.float64)
    np.divide(1.0, counts, out=out, where=counts > 0)
    return out


class _TreeKernel:
    """The tree-kernel feature map ``phi`` of one ensemble (:ref:`methods-trex-kernels`).

    Every flat leaf ``j`` owns a short list of ``(column, value)`` entries (CSR
    ``entry_indptr``, ``entry_cols``, ``entry_vals``): one entry for the tree-output and
    leaf kernels, the ancestors plus the leaf for the path kernels. A row's feature
    vector concatenates the entries of the leaves it reaches, so ``phi`` is sparse with
    one (leaf kernels, ``to_``) or ``depth + 1`` (path kernels) nonzeros per tree.
    Weights use the routing counts of the training rows (unweighted); a
    leaf or node no training row reaches gets weight 0.

    Columns: ``to_``: one per tree. Leaf kernels: one per flat leaf. Path kernels: per
    tree, its internal nodes then its leaves, trees one after the other.
    """

    def __init__(self, ens, train_leaves, kernel, counts=None):
        # counts: the leaves' training-row counts when ``train_leaves`` is a part of
        # the training rows (a partition on a cluster); else counted here
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        self.kernel = kernel
        self.offsets = ens.leaf_offsets
        n = len(train_leaves)
        if counts is None:
            counts = _trees.leaf_counts(train_leaves, ens.leaf_offsets, np.ones(n))
        self.leaf_counts = counts
        n_total = ens.n_leaves_total
        values = ens.leaf_values
        if kernel == "to_":
            cols = np.repeat(np.arange(ens.n_trees, dtype=np.int32), ens.n_leaves)
            self._set_entries(np.arange(n_total + 1), cols, values, ens.n_trees)
        elif kernel in _LEAF_KERNELS:
            coef = {
                "lp_": np.ones(n_total),
                "lpw": _inverse(counts),
                "lo_": values,
                "low": values * _inverse(counts),
            }[kernel]
            self._set_entries(
                np.arange(n_total + 1), np.arange(n_total, dtype=np.int32), coef, n_total
            )
        else:
            self._path_entries(ens, counts, kernel)
        self.is_leaf_kernel = kernel in _LEAF_KERNELS
        self.n_train = n
        self.train_sq_norms = self.squared_norms(train_leaves)
        if self.is_leaf_kernel:
            # training rows grouped by leaf, with their leaf's feature value in leaf order
            self.leaf_coef = np.ascontiguousarray(self.entry_vals)
            flat = train_leaves.astype(np.int64) + self.offsets[:-1]
            self._tiles = _leaves.tiled(train_leaves, self.offsets, self.leaf_coef[flat])
            self.train_features = None
        else:
            self.train_features = self.features(train_leaves)

    def _set_entries(self, indptr, cols, vals, n_columns):
        self.entry_indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        self.entry_cols = np.ascontiguousarray(cols, dtype=np.int32)
        self.entry_vals = np.ascontiguousarray(vals, dtype=np.float64)
        self.n_columns = int(n_columns)

    def _path_entries(self, ens, counts, kernel):
        if ens.path_indptr is None or ens.path_nodes is None or ens.node_offsets is None:
            raise ValueError(
                f"kernel {kernel!r} needs the leaf-ancestor paths of the trees, which the "
                f"adapter could not recover for {ens.describe()}; use a leaf kernel "
                "('lpw', 'lp_', 'lo_', 'low') or 'to_'"
            )
        p_indptr = np.asarray(ens.path_indptr, dtype=np.int64)
        p_nodes = np.asarray(ens.path_nodes, dtype=np.int64)
        node_off = np.asarray(ens.node_offsets, dtype=np.int64)
        n_nodes = int(node_off[-1])
        depth = np.diff(p_indptr)
        # a node's count is the sum of the counts of the leaves below it
        node_counts = np.zeros(n_nodes)
        np.add.at(node_counts, p_nodes, np.repeat(counts, depth))
        tree_of_leaf = np.repeat(np.arange(ens.n_trees), ens.n_leaves)
        block = node_off[:-1] + ens.leaf_offsets[:-1]  # first column of each tree
        n_int = np.diff(node_off)
        local_leaf = np.arange(ens.n_leaves_total) - ens.leaf_offsets[tree_of_leaf]
        leaf_col = block[tree_of_leaf] + n_int[tree_of_leaf] + local_leaf
        tree_of_node = np.repeat(np.arange(ens.n_trees), n_int)
        node_col = block[tree_of_node] + np.arange(n_nodes) - node_off[tree_of_node]
        weighted = kernel in ("fpw", "fow")
        node_val = _inverse(node_counts) if weighted else np.ones(n_nodes)
        leaf_val = {
            "fp_": np.ones(ens.n_leaves_total),
            "fpw": _inverse(counts),
            "fo_": ens.leaf_values,
            "fow": ens.leaf_values * _inverse(counts),
        }[kernel]
        # entries of leaf j: its ancestors (sorted by column), then the leaf itself
        owner = np.repeat(np.arange(ens.n_leaves_total), depth)
        anc_cols = node_col[p_nodes]
        order = np.lexsort((anc_cols, owner))
        anc_cols, anc_vals = anc_cols[order], node_val[p_nodes][order]
        indptr = np.zeros(ens.n_leaves_total + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(depth + 1)
        cols = np.empty(indptr[-1], dtype=np.int64)
        vals = np.empty(indptr[-1])
        leaf_pos = indptr[1:] - 1
        is_leaf_entry = np.zeros(indptr[-1], dtype=bool)
        is_leaf_entry[leaf_pos] = True
        cols[is_leaf_entry], vals[is_leaf_entry] = leaf_col, leaf_val
        cols[~is_leaf_entry], vals[~is_leaf_entry] = anc_cols, anc_vals
        self._set_entries(indptr, cols, vals, n_nodes + ens.n_leaves_total)

    def _flat(self, leaves):
        return np.ascontiguousarray(leaves.astype(np.int64) + self.offsets[:-1])

    def features(self, leaves):
        """``phi`` of rows with leaf ids ``leaves``: CSR ``(n, n_columns)``."""
        indptr, indices, data = _ksim.expand_leaf_entries(
            self._flat(leaves), self.entry_indptr, self.entry_cols, self.entry_vals
        )
        return sp.csr_matrix((data, indices, indptr), shape=(len(leaves), self.n_columns))

    def squared_norms(self, leaves):
        return _ksim.squared_norms_from_leaves(
            self._flat(leaves), self.entry_indptr, self.entry_vals
        )

    def gram(self, q_leaves):
        """Kernel values ``k(x_e, x_i)`` of query rows against the training rows,
        ``(m, n_train)`` dense."""
        m = len(q_leaves)
        if self.is_leaf_kernel:
            out = np.empty((m, self.n_train))
            q_coef = np.ascontiguousarray(self.leaf_coef[self._flat(q_leaves)])
            _leaves.tiled_product(
                np.ascontiguousarray(q_leaves, dtype=np.int32),
                q_coef,
                self.offsets,
                *self._tiles,
                self.n_train,
                _leaves.TILE,
                out,
            )
            return out
        q_dense = self.features(q_leaves).T.toarray()  # (n_columns, m)
        return np.ascontiguousarray((self.train_features @ q_dense).T)


class _KernelFeaturesMixin:
    def kernel_features(self, X):
        """The tree-kernel feature map ``phi(X)`` of the fitted kernel.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        phi : scipy.sparse.csr_matrix of shape (n_samples, n_kernel_columns)
            ``phi(x) . phi(x')`` is the kernel value; weights use the routing counts
            of the training rows given to ``fit``.
        """
        check_is_fitted(self, "ensemble_")
        X = self._validate_X(X, reset=False)
        return self._kernel.features(self.ensemble_.leaf_ids(X))


def _surrogate_targets(ens, leaves, y_enc, target):
    """Targets ``(n, K)`` of the surrogate (:ref:`methods-trex-surrogate`)."""
    n, K = len(leaves), ens.n_outputs
    if target == "actual":
        if ens.objective == "multiclass":
            Y = np.zeros((n, K))
            Y[np.arange(n), y_enc.astype(np.intp)] = 1.0
            return Y
        return np.asarray(y_enc, dtype=np.float64).reshape(n, 1)
    raw = ens.raw_from_leaves(leaves)
    if ens.tree_type == "rf" or ens.objective == "squared_error":
        return raw.reshape(n, K).astype(np.float64)  # forests: probabilities already
    if ens.is_regression:  # the mean the objective's loss is minimal at
        return predict_from_raw(ens.objective, raw).reshape(n, 1)
    if ens.objective == "binary":
        return expit(raw)
    return softmax(raw, axis=1)


def surrogate_rows(objective, Phi, PhiT, Y, W, n, param=0.0):
    """The rows' part of the surrogate objective at ``W`` ``(n_col, K)``: the sum of the
    rows' losses and ``PhiT @ G`` ``(n_col, K)``, ``G`` the losses' gradients divided by
    ``n`` (the number of all training rows: the rows may be a part of them)."""
    Z = Phi @ W
    if objective == "squared_error":
        R = Z - Y
        return (R * R).sum(), PhiT @ (R * (2.0 / n))
    if objective == "binary":
        return (np.logaddexp(0.0, Z) - Y * Z).sum(), PhiT @ ((expit(Z) - Y) / n)
    if is_regression(objective):
        f = unclipped_loss(objective, Y[:, 0], Z, param).sum()
        return f, PhiT @ (gradient(objective, Y[:, 0], Z, param) / n)
    f = -(Y * log_softmax(Z, axis=1)).sum()
    return f, PhiT @ ((softmax(Z, axis=1) - Y) / n)


def surrogate_objective(loss_sum, PhiT_G, w, n, lmbd):
    """``(f, gradient)`` of the objective ``(1/N) sum_i l(y_i, f_i) + lmbd ||W||^2``
    from the rows' part (:func:`surrogate_rows`) and the flat weights ``w``."""
    grad = PhiT_G + 2.0 * lmbd * w.reshape(PhiT_G.shape)
    return loss_sum / n + lmbd * float(w @ w), grad.ravel()


def _surrogate_loss_grad(objective, Phi, PhiT, Y, lmbd, param=0.0):
    """Objective ``(1/N) sum_i l(y_i, f_i) + lmbd ||W||^2`` and its gradient (``l``:
    twice the squared error, the log-losses, or the regression objective's own loss
    with parameter ``param``)."""
    n = Phi.shape[0]
    K = Y.shape[1]

    def fun(w):
        rows = surrogate_rows(objective, Phi, PhiT, Y, w.reshape(-1, K), n, param)
        return surrogate_objective(*rows, w, n, lmbd)

    return fun


def fit_surrogate(objective, Phi, Y, lmbd, tol, max_iter, param=0.0):
    """L-BFGS fit of the kernel surrogate from ``W = 0`` (float64).

    Stops when the largest gradient entry falls below ``tol`` times its value at
    ``W = 0`` (or after ``max_iter`` iterations). For the squared error, conjugate
    gradients on the normal equations continue from the L-BFGS solution when L-BFGS
    stops at rounding level above ``tol``. Returns ``(W, n_iter, grad_max,
    grad_max_0)``.
    """
    PhiT = Phi.T.tocsr()
    fun = _surrogate_loss_grad(objective, Phi, PhiT, Y, lmbd, param)
    n = Phi.shape[0]

    def normal_equations():
        def matvec(v):
            return (PhiT @ (Phi @ v)) * (2.0 / n) + 2.0 * lmbd * v

        return matvec, (PhiT @ Y[:, 0]) * (2.0 / n)

    return minimize_surrogate(
        objective, fun, Phi.shape[1], Y.shape[1], lmbd, tol, max_iter, normal_equations
    )


def minimize_surrogate(objective, fun, n_col, K, lmbd, tol, max_iter, normal_equations):
    """:func:`fit_surrogate` given the objective ``fun(w) -> (f, gradient)`` and, for
    the squared error, ``normal_equations() -> (matvec, b)``: the product with the
    objective's hessian and the right-hand side (the rows may live elsewhere)."""
    w0 = np.zeros(n_col * K)
    g0 = np.abs(fun(w0)[1]).max() if w0.size else 0.0
    if g0 == 0.0:
        return w0.reshape(-1, K), 0, 0.0, 0.0
    res = minimize(
        fun,
        w0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": int(max_iter), "gtol": float(tol) * g0, "ftol": 0.0, "maxcor": 20},
    )
    w, gmax, nit = res.x, float(np.abs(res.jac).max()), int(res.nit)
    if objective == "squared_error" and gmax > tol * g0:
        # L-BFGS stalls once the objective's decrease is at rounding level; the
        # problem is quadratic, so conjugate gradients on the normal equations
        # (driven by residuals, not by objective values) finish the job
        matvec, b = normal_equations()
        A = LinearOperator((w.size, w.size), matvec=matvec, dtype=np.float64)
        w, _ = cg(A, b, x0=w, rtol=0.0, atol=float(tol) * g0, maxiter=max(1, int(max_iter) - nit))
        gmax = float(np.abs(fun(w)[1]).max())
    return w.reshape(-1, K), nit, gmax, float(g0)


def representer_weights(ens, f, Y, lmbd, n):
    """``alpha`` ``(rows, K)`` of rows with surrogate output ``f`` and targets ``Y``
    (``n``: the number of all training rows)."""
    if ens.objective == "squared_error":
        return np.ascontiguousarray((f - Y) / (-lmbd * n))
    if ens.objective == "binary":
        alpha = (expit(f) - Y) / (-2.0 * lmbd * n)
    elif ens.is_regression:
        alpha = gradient(ens.objective, Y[:, 0], f, ens.objective_param) / (-2.0 * lmbd * n)
    else:
        alpha = (softmax(f, axis=1) - Y) / (-2.0 * lmbd * n)
    return np.ascontiguousarray(alpha)


def _surrogate_label_move(ens, y, targets, f):
    """For every training row: the change ``dG`` ``(n, K)`` of its surrogate-loss
    gradient when its label becomes ``targets[i]`` (at its surrogate output ``f``), and
    the surrogate loss's second derivative ``D`` ``(n, K)`` (multiclass: the softmax
    probabilities, whose Jacobian ``diag(p) - p p^T`` is the curvature)."""
    obj, a = ens.objective, ens.objective_param
    n = len(y)
    if obj == "multiclass":
        K = ens.n_outputs
        old = np.zeros((n, K))
        old[np.arange(n), y.astype(np.intp)] = 1.0
        new = np.zeros((n, K))
        new[np.arange(n), np.asarray(targets).astype(np.intp)] = 1.0
        return old - new, softmax(f, axis=1)
    t = np.asarray(targets, dtype=np.float64)
    if obj == "squared_error":  # the surrogate's loss (y - f)^2 has no factor 1/2
        return (2.0 * (y - t))[:, None], np.full((n, 1), 2.0)
    if obj == "binary":
        p = expit(f[:, 0])
        return (y - t)[:, None], (p * (1 - p))[:, None]
    dG = gradient(obj, t, f, a) - gradient(obj, y, f, a)
    if obj == "huber":
        D = (np.abs(f[:, 0] - y) <= a).astype(np.float64)[:, None]
    else:  # the exact second derivative (no Poisson hessian offset)
        D = regression_hessian(obj, y, f, 0.0 if obj == "poisson" else a)
    return dG, D


def _curvature(D, U):
    """The surrogate loss's curvature applied row by row: ``D * U`` for one output,
    ``(diag(p) - p p^T) U`` for softmax probabilities ``D = p`` (``U``: (n, K, r))."""
    if D.shape[1] == 1:
        return D[:, :, None] * U
    PU = D[:, :, None] * U
    return PU - D[:, :, None] * PU.sum(axis=1, keepdims=True)


def _newton_matvec(X, state, lmbd):
    """``H X`` with ``H = Phi^T C Phi / N + 2 lmbd I`` the surrogate objective's
    hessian (``X``: (n_col K, r))."""
    Phi, PhiT, D = state["phi"], state["phiT"], state["D"]
    n, n_col = Phi.shape
    K, r = D.shape[1], X.shape[1]
    U = (Phi @ X.reshape(n_col, K * r)).reshape(n, K, r)
    HX = (PhiT @ _curvature(D, U).reshape(n, K * r)) / n
    return HX.reshape(n_col * K, r) + 2.0 * lmbd * X


def _newton_diagonal(Phi, D, lmbd):
    """Diagonal of the surrogate objective's hessian, ``(n_col, K)`` (preconditioner)."""
    n = Phi.shape[0]
    C = D if D.shape[1] == 1 else D * (1.0 - D)
    return np.asarray(Phi.multiply(Phi).T @ C) / n + 2.0 * lmbd


def _pcg(matvec, B, diag, rtol, max_iter):
    """Jacobi-preconditioned conjugate gradients for ``H X = B``, every column on its
    own (``H`` symmetric positive definite); stops when each column's residual is at
    most ``rtol`` times its right-hand side, else after ``max_iter`` iterations with a
    ``ConvergenceWarning``."""
    X = np.zeros_like(B)
    R = B.copy()
    Z = R / diag[:, None]
    P = Z.copy()
    rz = (R * Z).sum(axis=0)
    target = rtol * np.sqrt((B * B).sum(axis=0))
    for _ in range(max_iter):
        if np.all(np.sqrt((R * R).sum(axis=0)) <= target):
            return X
        HP = matvec(P)
        pHp = (P * HP).sum(axis=0)
        step = np.divide(rz, pHp, out=np.zeros_like(rz), where=pHp > 0)
        X += step * P
        R -= step * HP
        Z = R / diag[:, None]
        rz_new = (R * Z).sum(axis=0)
        beta = np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz > 0)
        P = Z + beta * P
        rz = rz_new
    if not np.all(np.sqrt((R * R).sum(axis=0)) <= target):
        warnings.warn(
            f"TREX label edit: the Newton solve did not reach tol={rtol:g} in "
            f"{max_iter} iterations; increase max_iter or lmbd",
            ConvergenceWarning,
            stacklevel=4,
        )
    return X


class TREX(_KernelFeaturesMixin, BaseInfluence):
    """TREX: representer points of a kernel surrogate of the tree ensemble.

    A linear model ``f(x) = W . phi(x)`` on tree-kernel features (which leaves, or
    which root-to-leaf paths, a row reaches) is fitted to the training labels (or to
    the model's predictions) with an L2 penalty. At its optimum the surrogate is a sum
    of one term per training row, ``f(x) = sum_i alpha_i k(x_i, x)``, with
    ``k(x, x') = phi(x) . phi(x')``: the representer theorem. The influence of
    training row ``i`` on query ``e`` is the change of the query's loss when row
    ``i``'s term is removed from the surrogate:
    ``I(i, e) = L(y_e, f_e - alpha_i k(x_i, x_e)) - L(y_e, f_e)``.

    Parameters
    ----------
    estimator : object, default=None
        A tree ensemble of LightGBM, XGBoost, CatBoost or scikit-learn
        (gradient boosting, random forest or extra trees): fitted models are explained
        as given, unfitted ones are cloned and fitted in ``fit``, ``None`` fits a small
        ``HistGradientBoosting`` model.
    kernel : str, default="lpw"
        The feature map ``phi``, one block per tree: ``"to_"`` the tree's output;
        ``"lp_"`` 1 on the reached leaf; ``"lpw"`` 1 / (training rows in the leaf);
        ``"lo_"`` the leaf value; ``"low"`` leaf value / leaf size; ``"fp_"`` 1 on
        every node of the root-to-leaf path; ``"fpw"`` 1 / (training rows through the
        node); ``"fo_"``, ``"fow"`` as ``"fp_"``, ``"fpw"`` with the leaf entry
        replaced by the leaf value (divided by the leaf size for ``"fow"``). The
        paper's choice is ``"lpw"``, for which
        ``k(x, x') = sum_t 1[same leaf] / n_leaf**2``.
    target : {"actual", "predicted"}, default="actual"
        What the surrogate fits: the training labels (one-hot for multiclass), or the
        model's predictions (regression) / probabilities (classification).
    lmbd : float, default=0.003
        L2 penalty ``lmbd * ||W||^2`` of the surrogate (the paper's value).
    tol : float, default=1e-10
        Stop the solver when the largest entry of the objective's gradient is below
        ``tol`` times its value at ``W = 0``.
    max_iter : int, default=1000
        Maximum number of L-BFGS iterations; a :class:`ConvergenceWarning` is raised
        when it is reached before ``tol``.
    dtype, chunk_memory_mb, n_jobs, verbose
        See :class:`~skinfluence.base.BaseInfluence`.

    Attributes
    ----------
    estimator_ : object
        The model explained.
    ensemble_ : TreeEnsemble
        Its framework-neutral view.
    classes_ : ndarray
        Class labels (classifiers).
    n_train_ : int
        Number of training rows.
    surrogate_coef_ : ndarray of shape (n_kernel_columns, n_outputs)
        The surrogate's weights ``W``.
    representer_weights_ : ndarray of shape (n_train, n_outputs)
        ``alpha``: regression ``(f_i - y_i) / (-lmbd N)``; classification
        ``(p_i - y_i) / (-2 lmbd N)`` with ``p`` the sigmoid / softmax of ``f``.
    fidelity_ : float
        Pearson correlation between the surrogate's raw output and the model's raw
        scores on the training rows (all columns together; probabilities for random
        forests).
    n_iter_ : int
        Iterations of the solver.
    n_features_in_ : int
    feature_names_in_ : ndarray

    Notes
    -----
    ``phi`` is a ``scipy.sparse`` matrix with one nonzero per tree (``to_`` and the
    leaf kernels) or ``depth + 1`` per tree (path kernels): ``fit`` never builds a
    dense ``n_train x n_leaves`` matrix. Each solver iteration costs
    O(nnz(phi) K) = O(N T K) (N training rows, T trees, K raw-score columns), and the
    surrogate is fitted in float64 with L-BFGS from ``W = 0`` to a small gradient, so
    ``sum_i alpha_i k(x_i, x)`` reproduces ``f(x)`` to the solver's accuracy.
    Memory of ``fit``: the sparse features (12 bytes per nonzero) plus, for the leaf
    kernels, the training rows grouped by leaf within tiles (10 bytes per (row, tree)).

    A query costs, for the leaf kernels, one multiply-add per training row sharing
    one of its leaves (``sum_t n_leaf_t(e) <= N T``, the co-occurrence kernel of
    :class:`~skinfluence.BoostIn`), for ``to_`` and the path kernels a sparse-dense
    product O(nnz(phi)) per query, plus O(N K) loss evaluations, in blocks of
    ``chunk_memory_mb`` and in parallel (over tiles of training rows, or query rows).
    ``self_influence`` is O(N T K) by the formula
    ``L(y_i, f_i - alpha_i k(x_i, x_i)) - L(y_i, f_i)``; ``global_influence`` sums the
    query blocks.

    The loss ``L`` is the model's objective applied to the surrogate's raw output
    (squared error with the factor 1/2, log-loss, softmax cross-entropy, or another
    regression objective's own loss such as ``exp(f) - y f`` for Poisson; probabilities
    clipped to [1e-5, 1 - 1e-5]). For those other regression objectives the surrogate
    is fitted with the objective's own loss, to the model's mean prediction
    (``target="predicted"``, e.g. ``exp(F)``) or to the labels. Without query labels,
    classifiers use the model's predicted labels; regressors give
    ``I(i, e) = alpha_i k(x_i, x_e)``, the part of the surrogate's prediction carried by
    row ``i`` (positive = removing the row lowers the prediction). Sample weights are
    not used by the surrogate. Random forests are accepted (the surrogate then explains
    the forest's averaged leaves).

    ``label_edit`` (``target="actual"``) asks the surrogate what relabelling row ``i``
    does: the Newton step of the surrogate's objective from its optimum with row
    ``i``'s label replaced, ``dW = -H^{-1} phi(x_i) dg_i / N`` (``H`` the objective's
    hessian, ``dg_i`` the change of row ``i``'s loss gradient at its surrogate output),
    and the query's loss change ``L(y_e, f_e + phi(x_e) . dW) - L(y_e, f_e)``. For the
    squared error the objective is quadratic and this is the refitted surrogate
    exactly; for the other losses it is exact to first order in the label (checked:
    the refitted surrogate for the squared error to 1e-8 relative, central differences
    of refits with soft labels for binary, 3-class and Poisson to 1e-6). Cost: one
    Jacobi-preconditioned conjugate-gradient solve with the hessian per query and
    output (each iteration O(nnz(phi) K)), then O(N K) per query; the training leaves
    are kept for it (4 bytes per row and tree). ``target="predicted"`` is refused: its
    surrogate never sees the labels.

    Unlike the reference implementation, the regression representer weights are not
    halved (the squared loss of the surrogate has no factor 1/2, so stationarity
    gives ``-lmbd N``), and the surrogate is solved in float64 from zero rather than
    by float32 gradient descent from a random start.

    References
    ----------
    .. [1] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023.
    .. [2] C.-K. Yeh, J. S. Kim, I. E. H. Yen and P. Ravikumar. Representer Point
       Selection for Explaining Deep Neural Networks. NeurIPS 2018.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skinfluence import TREX
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    >>> explainer = TREX(model).fit(X, y)
    >>> explainer.transform(X[:2], y[:2]).shape
    (2, 569)
    >>> bool(explainer.fidelity_ > 0.5)
    True
    """

    _accepts_forests = True

    def __init__(
        self,
        estimator=None,
        *,
        kernel="lpw",
        target="actual",
        lmbd=0.003,
        tol=1e-10,
        max_iter=1000,
        dtype=np.float64,
        chunk_memory_mb=256,
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            estimator, dtype=dtype, chunk_memory_mb=chunk_memory_mb, n_jobs=n_jobs, verbose=verbose
        )
        self.kernel = kernel
        self.target = target
        self.lmbd = lmbd
        self.tol = tol
        self.max_iter = max_iter

    def _check_params(self):
        if self.target not in _TARGETS:
            raise ValueError(f"target must be one of {_TARGETS}, got {self.target!r}")
        if not (np.isscalar(self.lmbd) and self.lmbd > 0):
            raise ValueError(f"lmbd must be a positive number, got {self.lmbd!r}")
        if not (np.isscalar(self.tol) and self.tol > 0):
            raise ValueError(f"tol must be a positive number, got {self.tol!r}")
        if not (np.isscalar(self.max_iter) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")

    def _warn_unconverged(self, n_iter, gmax, g0, stacklevel):
        if n_iter >= self.max_iter and gmax > self.tol * g0:
            warnings.warn(
                f"TREX: the surrogate did not converge in {n_iter} iterations (largest "
                f"gradient entry {gmax:.3g}, {gmax / g0:.3g} of its initial value, tol "
                f"{self.tol:g}); the representer values reconstruct the surrogate only "
                "approximately. Increase max_iter or lmbd.",
                ConvergenceWarning,
                stacklevel=stacklevel + 1,
            )

    def _fit_influence(self, X, leaves, y_enc, sample_weight):
        self._check_params()
        ens = self.ensemble_
        kern = _TreeKernel(ens, leaves, self.kernel)
        Phi = kern.train_features if kern.train_features is not None else kern.features(leaves)
        Y = _surrogate_targets(ens, leaves, y_enc, self.target)
        lmbd = float(self.lmbd)
        W, n_iter, gmax, g0 = fit_surrogate(
            ens.objective, Phi, Y, lmbd, self.tol, self.max_iter, ens.objective_param
        )
        self._warn_unconverged(n_iter, gmax, g0, stacklevel=3)
        n = len(leaves)
        f = Phi @ W
        alpha = representer_weights(ens, f, Y, lmbd, n)
        raw = ens.raw_from_leaves(leaves)
        with np.errstate(invalid="ignore", divide="ignore"):
            fid = np.corrcoef(f.ravel(), raw.ravel())[0, 1] if n > 1 else np.nan
        self._kernel = kern
        self.surrogate_coef_ = W
        self.representer_weights_ = alpha
        self.n_iter_ = n_iter
        self.fidelity_ = float(fid)
        # W in representer form (phi^T alpha): f_e = phi_e . w_rep = sum_i R_{i,e}
        self._w_rep = np.asarray(Phi.T @ self.representer_weights_)
        self._f_train = np.ascontiguousarray(Phi @ self._w_rep)
        self._y_train = np.ascontiguousarray(y_enc, dtype=np.float64)
        self._train_leaves = leaves  # rebuilds phi for label edits

    def surrogate_decision_function(self, X):
        """Raw output ``phi(x) @ W`` of the fitted surrogate, shape ``(n, n_outputs)``."""
        return np.asarray(self.kernel_features(X) @ self.surrogate_coef_)

    def _query_arrays(self, X, leaves, y_enc, objective):
        m = len(leaves)
        f = np.ascontiguousarray(self._kernel.features(leaves) @ self._w_rep)
        y = np.zeros(m) if y_enc is None else np.ascontiguousarray(y_enc, dtype=np.float64)
        return {"leaves": leaves, "f": f, "y": y}

    def _influence_block(self, q, context):
        from ._objectives import OBJECTIVE_CODE

        kv = self._kernel.gram(q["leaves"])
        _ksim.representer_loss_change(
            kv,
            self.representer_weights_,
            q["f"],
            q["y"],
            OBJECTIVE_CODE[context],
            self.ensemble_.objective_param,
            kv,
        )
        return kv

    def _label_edit_state(self, targets):
        if self.target != "actual":
            raise NotImplementedError(
                f"TREX(target={self.target!r}) fits its surrogate to the model's "
                "predictions, which do not involve the training labels: through the "
                "surrogate a label edit changes nothing. Use target='actual' for label edits"
            )
        ens = self.ensemble_
        Phi = self._kernel.features(self._train_leaves)
        dG, D = _surrogate_label_move(ens, self._y_train, targets, self._f_train)
        return {
            "phi": Phi,
            "phiT": Phi.T.tocsr(),
            "dG": dG,
            "D": D,
            "diag": _newton_diagonal(Phi, D, float(self.lmbd)),
            "edited": np.flatnonzero(np.any(dG != 0.0, axis=1)),
        }

    def _label_edit_block(self, q, context, state):
        """Newton step of the surrogate with row ``i`` relabelled, for every row: one
        preconditioned conjugate-gradient solve per query and output."""
        ens, n = self.ensemble_, self.n_train_
        K = ens.n_outputs
        m = len(q["leaves"])
        out = np.zeros((m, n))
        if m == 0 or len(state["edited"]) == 0:
            return out
        Phi_q = self._kernel.features(q["leaves"])
        n_col = Phi_q.shape[1]
        # queries per solve so that the solver's arrays stay within chunk_memory_mb
        per_query = 8 * K * (K * (6 * n_col + 2 * n) + 2 * n)
        step = max(1, int(self._memory_budget() // per_query))
        for a in range(0, m, step):
            b = min(m, a + step)
            df = self._newton_changes(Phi_q[a:b], state)  # (r, n, K)
            out[a:b] = self._edit_losses(df, q["f"][a:b], q["y"][a:b], context)
        out[:, np.setdiff1d(np.arange(n), state["edited"])] = 0.0
        return out

    def _newton_changes(self, Phi_q, state):
        """``df[e, i, k]``: change of the surrogate's output ``k`` at query ``e`` by the
        Newton step of its objective with row ``i`` relabelled."""
        n, K, r = self.n_train_, self.ensemble_.n_outputs, Phi_q.shape[0]
        n_col = Phi_q.shape[1]
        # right-hand sides phi_e (x) e_k: (n_col, K, r K)
        B = np.zeros((n_col, K, r * K))
        dense = Phi_q.T.toarray()
        for k in range(K):
            B[:, k, k::K] = dense
        V = _pcg(
            lambda X: _newton_matvec(X, state, float(self.lmbd)),
            B.reshape(n_col * K, -1),
            state["diag"].reshape(-1),
            float(self.tol),
            int(self.max_iter),
        ).reshape(n_col, K, r * K)
        S = (state["phi"] @ V.reshape(n_col, -1)).reshape(n, K, r, K)  # [i, l, e, k]
        df = -np.einsum("il,ilek->eik", state["dG"], S) / n
        return df

    def _edit_losses(self, df, f, y, objective):
        """``L(y_e, f_e + df[e, i]) - L(y_e, f_e)`` for a block, ``(r, n)``."""
        from ._objectives import OBJECTIVE_CODE

        r, n, K = df.shape
        out = np.empty((r, n))
        if K == 1:
            _ksim.representer_loss_change(
                np.ascontiguousarray(df[:, :, 0]),
                -np.ones((n, 1)),
                f,
                y,
                OBJECTIVE_CODE[objective],
                self.ensemble_.objective_param,
                out,
            )
            return out
        base = loss(objective, y, f)
        for e in range(r):
            out[e] = loss(objective, np.full(n, y[e]), f[e] + df[e]) - base[e]
        return out

    def _self_influence(self):
        return _ksim.representer_self_change(
            self._kernel.train_sq_norms,
            self.representer_weights_,
            self._f_train,
            self._y_train,
            self.ensemble_.objective_code,
            self.ensemble_.objective_param,
        )
