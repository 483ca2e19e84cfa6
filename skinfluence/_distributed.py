"""The fast influence methods on a dask.distributed cluster (:doc:`distributed`).

``fit`` given dask collections (``dask.array`` / ``dask.dataframe`` training rows, labels
partitioned alike) routes each partition on the worker that holds it and keeps there, per
partition, only

* the leaf ids, as ``uint8`` (trees of at most 256 leaves), ``uint16`` (65,536) or
  ``int32``: 1, 2 or 4 bytes per (row, tree);
* the encoded labels (8 bytes per row) and the sample weights when given (8 bytes per
  row).

What the methods need beyond a partition's rows are per-leaf totals over all rows
(BoostIn and LeafInfluence with ``update_set=0``: the gradient and hessian sums behind
each leaf's derivative coefficient, BoostIn also the row counts for its leaf scaling;
LeafSim / TreeSim / TREX: the row counts of the leaves): each partition sends its
per-leaf sums (``n_leaves_total`` floats) to the client, which adds them in partition
order. The checks of the in-memory ``fit`` run the same way: the reconstruction on
every partition, the stored per-leaf statistics and the leaf model on the totals.

TREX's surrogate minimises a sum over all rows: the client runs the in-memory solver,
and each evaluation of the objective (and, for the squared error, each hessian product)
is one task per partition on features kept on its worker for the solve, the
partitions' sums added in partition order (:class:`_TrexPlan`).

A query call routes its queries on the client and broadcasts them; each partition then
rebuilds its part of the method's in-memory state from its leaf ids (the per-row
derivatives and the tiled layout of BoostIn and LeafInfluence, the tiled kernel of
LeafSim / TreeSim / TREX and TREX's representer weights: the in-memory code and
kernels, given the global per-leaf totals and the surrogate's weights) and runs the
in-memory query kernels on it. The state lives for that task only, so a worker holds at
most the full in-memory state (about 22 bytes per (row, tree) for BoostIn) of the
partitions it is processing at a time.

Everything here uses dask collections and futures; ``dask`` and ``distributed`` are
imported inside the functions (an optional extra).
"""

import copy
import operator

import numpy as np

__all__ = ["is_dask", "fit_dask"]


def is_dask(obj):
    """Whether ``obj`` is a dask collection (without importing dask)."""
    return hasattr(obj, "__dask_graph__") and type(obj).__module__.split(".")[0] == "dask"


def _client():
    try:
        from distributed import get_client
    except ImportError as exc:  # pragma: no cover - optional extra
        raise ImportError(
            "fitting on dask collections needs dask.distributed: pip install 'skinfluence[dask]'"
        ) from exc
    try:
        return get_client()
    except ValueError:
        raise ValueError(
            "fitting on dask collections needs a dask.distributed Client: create one "
            "(e.g. distributed.Client(distributed.LocalCluster())) before calling fit"
        ) from None


# --------------------------------------------------------------------- partitions
def _row_parts(obj, name):
    """The row partitions of a dask collection as a list of delayed objects, and their
    row counts when dask knows them (else None)."""
    if hasattr(obj, "divisions"):  # dask dataframe / series
        return list(obj.to_delayed()), None
    if obj.ndim == 2 and obj.numblocks[1] > 1:
        obj = obj.rechunk({1: -1})
    if obj.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D, got {obj.ndim} dimensions")
    sizes = obj.chunks[0]
    return list(np.asarray(obj.to_delayed()).ravel()), sizes


def _partitions(X, y, sample_weight):
    """Delayed row partitions of ``X``, ``y`` and ``sample_weight`` (None entries when
    not given); in-memory ``y`` / ``sample_weight`` are split like ``X``."""
    import dask.array as da

    if not is_dask(X):
        raise ValueError(
            "with dask labels or weights, X must be a dask collection partitioned alike"
        )
    xs, sizes = _row_parts(X, "X")
    out = [xs]
    for name, v in (("y", y), ("sample_weight", sample_weight)):
        if v is None:
            out.append([None] * len(xs))
            continue
        if not is_dask(v):
            if sizes is None or any(np.isnan(sizes)):
                raise ValueError(
                    f"{name} is in memory but the row partitions of X have unknown sizes: "
                    f"pass {name} as a dask collection partitioned like X"
                )
            v = da.from_array(np.asarray(v), chunks=(tuple(sizes),))
        parts, vsizes = _row_parts(v, name)
        known = sizes is not None and vsizes is not None
        if len(parts) != len(xs) or (known and tuple(vsizes) != tuple(sizes)):
            raise ValueError(
                f"X and {name} must be partitioned alike (row partitions of the same "
                f"sizes): X has {len(xs)} partitions"
                + (f" of {tuple(sizes)} rows" if sizes is not None else "")
                + f", {name} has {len(parts)}"
                + (f" of {tuple(vsizes)} rows" if vsizes is not None else "")
            )
        out.append(parts)
    return out


def _leaf_dtype(ens):
    most = int(np.max(ens.n_leaves)) if ens.n_trees else 1
    if most <= 2**8:
        return np.uint8
    return np.uint16 if most <= 2**16 else np.int32


class _Part:
    """What a worker keeps of one partition: compact leaf ids, labels, weights."""

    __slots__ = ("leaves", "y", "w", "n")

    def __init__(self, leaves, y, w):
        self.leaves, self.y, self.w, self.n = leaves, y, w, len(y)

    def int_leaves(self):
        return np.ascontiguousarray(self.leaves, dtype=np.int32)


def _numba_threads(template):
    """numba threads of a worker task: ``n_jobs`` when set, else 1 (the cluster's
    workers and threads are the parallelism)."""
    from .base import _numba_threads as threads

    return threads(1 if template.n_jobs is None else template.n_jobs)


def _fit_partition(template, plan, Xp, yp, wp):
    """Route one partition, check it, and return its kept rows and per-leaf sums."""
    from sklearn.utils.validation import _check_sample_weight

    with _numba_threads(template):
        Xp = template._validate_X(Xp, reset=False)
        n = Xp.shape[0]
        yp = template._validate_y(yp, n)
        if yp is None or len(yp) != n:
            raise ValueError(f"a partition of X has {n} rows but its partition of y has none")
        ens = template.ensemble_
        leaves = ens.check_reconstruction(Xp)
        y_enc = template._round_labels(template._encode_y(yp))
        w = None
        if wp is not None:
            w = _check_sample_weight(np.asarray(wp), np.empty((n, 0)), dtype=np.float64)
            if ens.label_dtype is not None:
                w = w.astype(ens.label_dtype).astype(np.float64)
        sums = {"n": n, "w": 0.0 if w is None else float(np.sum(w))}
        if ens.leaf_stats is not None:
            sums["stats"] = ens._routed_stats(leaves, w, y_enc)[0]
        if ens.leaf_weight_sums is not None:
            ones = np.ones(n) if w is None else w
            sums["weight_sums"] = _trees().leaf_counts(leaves, ens.leaf_offsets, ones)
        sums.update(plan.leaf_sums(template, leaves, y_enc, w))
        part = _Part(np.ascontiguousarray(leaves, dtype=_leaf_dtype(ens)), y_enc, w)
    return part, sums


def _trees():
    from ._kernels import _trees

    return _trees


def _add_terms(terms):
    """Per-partition arrays (or tuples of them) added in partition order."""
    total = terms[0]
    for t in terms[1:]:
        total = tuple(a + b for a, b in zip(total, t)) if isinstance(t, tuple) else total + t
    return total


def _add_sums(sums):
    """The per-partition sums added in partition order."""
    total = {}
    for s in sums:
        for key, v in s.items():
            total[key] = v if key not in total else total[key] + v
    return total


# ---------------------------------------------------------------------- the plans
class _Plan:
    """The steps of a method's distributed fit and queries (every one a no-op or a
    refusal by default); each method's plan says what its partitions add up."""

    @staticmethod
    def check(est):
        """Validate the parameters and refuse what has no distributed form."""

    @staticmethod
    def leaf_sums(template, leaves, y_enc, w):
        """The per-leaf sums of one partition (a dict of arrays, added over partitions)."""
        return {}

    @staticmethod
    def finish(est, total):
        """The global per-leaf state from the totals, on the client."""

    @staticmethod
    def solve(est, client, parts):
        """What needs all rows beyond per-leaf sums (TREX: the surrogate's fit)."""

    @staticmethod
    def state(template, part, products=True):  # pragma: no cover - every plan has one
        raise NotImplementedError


def _one_newton_step(est, what):
    """Refuse leaves that are not one Newton step (their derivatives need more than
    the per-leaf gradient and hessian sums)."""
    ens = est.ensemble_
    if ens.full_hessian or ens.leaf_steps > 1 or ens.leaf_step_method == "gradient":
        raise NotImplementedError(
            f"{what} on dask collections needs one Newton step per leaf; "
            f"{ens.describe()} has other leaves: fit it on in-memory data"
        )


def _newton_sums(template, leaves, y_enc, w):
    """The gradient and hessian sums of the leaves over one partition's rows."""
    from ._leaf_rule import leaf_terms

    terms = leaf_terms(template.ensemble_, leaves, y_enc, w, terms=False)
    return {"G": terms.gradient_sums, "H": terms.hessian_sums}


def _newton_coef(est, total):
    """Each leaf's coefficient ``-eta / (H + lambda)`` (0 where the leaf has no
    derivative) from the totals, after the leaf-model check of the in-memory ``fit``."""
    from ._leaf_rule import LeafTerms, _single_step

    ens = est.ensemble_
    G, H = total["G"], total["H"]
    beta = H + ens.l2
    v_hat, clamped, _, _ = _single_step(ens, None, None, None, None, None, None, beta, G, False)
    eta = np.repeat(ens.learning_rates, ens.n_leaves)
    live = (beta > 0) & ~np.repeat(ens.constant_tree, ens.n_leaves) & ~clamped
    coef = np.zeros_like(beta)
    coef[live] = -eta[live] / beta[live]
    empty = np.zeros((0, 0))
    steps = (np.zeros(0, dtype=np.int64), empty)
    terms = LeafTerms(None, *(empty,) * 4, G, H, beta, coef, v_hat, None, None, *steps)
    est._check_leaf_model(None, None, None, est.check_leaf_model, est.atol, est.rtol, terms)
    return coef


class _BoostInPlan(_Plan):
    """BoostIn: the leaves' gradient and hessian sums over all rows give each leaf's
    derivative coefficient; a partition's derivatives are the in-memory kernel's."""

    @staticmethod
    def check(est):
        if est.derivative not in ("published", "exact"):
            raise ValueError(f"derivative must be 'published' or 'exact', got {est.derivative!r}")
        if est.leaf_scaling not in ("none", "inverse_size", "inverse_size_squared"):
            raise ValueError(f"leaf_scaling is not valid: {est.leaf_scaling!r}")
        est._validate_leaf_check(est.check_leaf_model)
        _one_newton_step(est, "BoostIn")

    @staticmethod
    def leaf_sums(template, leaves, y_enc, w):
        ens = template.ensemble_
        out = _newton_sums(template, leaves, y_enc, w)
        if template.leaf_scaling != "none":
            out["count"] = _trees().leaf_counts(leaves, ens.leaf_offsets, np.ones(len(leaves)))
        return out

    @staticmethod
    def finish(est, total):
        """Check the leaf model on the totals; keep each leaf's coefficient."""
        coef = _newton_coef(est, total)
        per_leaf = np.where(coef != 0, -coef, 0.0)
        if est.leaf_scaling != "none":
            counts = total["count"]
            power = 1 if est.leaf_scaling == "inverse_size" else 2
            with np.errstate(divide="ignore"):
                per_leaf = np.where(counts > 0, per_leaf / counts**power, 0.0)
        est._dask_per_leaf = np.ascontiguousarray(per_leaf)

    @staticmethod
    def state(template, part, products=True):
        """The in-memory BoostIn state of one partition's rows (``products``: with the
        tiled layout the query products need; ``self_influence`` and
        ``global_influence`` do not)."""
        from ._kernels import _leaves

        ens = template.ensemble_
        leaves = part.int_leaves()
        g, h, _, _ = ens.replay(leaves, part.y)
        w = np.ones(part.n) if part.w is None else part.w
        values = ens.unshrunk_values if template.derivative == "exact" else ens.leaf_values
        delta = _trees().boostin_derivatives(
            leaves,
            ens.leaf_offsets,
            np.ascontiguousarray(w, dtype=np.float64),
            g,
            h,
            np.ascontiguousarray(values, dtype=np.float64),
            template._dask_per_leaf,
        )
        shell = _shell(template, part.n)
        shell.derivatives_ = delta
        shell._train_leaves = leaves
        shell._self = np.multiply(g, delta, out=g).sum(axis=1)
        if products:
            shell._tiles = _leaves.tiled(leaves, ens.leaf_offsets, delta)
        return shell


class _SimilarityPlan(_Plan):
    """LeafSim / TreeSim: the leaves' row counts over all rows weigh the kernel; a
    partition's state is the in-memory fit of its rows with those counts."""

    @staticmethod
    def leaf_sums(template, leaves, y_enc, w):
        ens = template.ensemble_
        return {"count": _trees().leaf_counts(leaves, ens.leaf_offsets, np.ones(len(leaves)))}

    @staticmethod
    def finish(est, total):
        est._global_leaf_counts = total["count"]
        # the leaf-level part of the state (the kernel's entries) on the client
        none = np.zeros((0, est.ensemble_.n_trees), dtype=np.int32)
        est._fit_influence(None, none, np.zeros(0), None)

    @staticmethod
    def state(template, part, products=True):
        shell = _shell(template, part.n)
        shell._fit_influence(None, part.int_leaves(), part.y, part.w)
        return shell


class _SinglePointPlan(_Plan):
    """LeafInfluence(update_set=0): a row's leaf derivatives involve its own leaves
    and, per leaf, the coefficient ``-eta / (H + lambda)`` of all rows' hessian sums;
    a partition's state is the in-memory single-point fit of its rows with those
    coefficients (the update set's own code, run on the partition's rows)."""

    @staticmethod
    def check(est):
        est._validate_params_leaf()
        est._validate_leaf_check(est.check_leaf_model)
        if int(est.update_set) != 0:
            raise NotImplementedError(
                f"LeafInfluence(update_set={est.update_set}) has no distributed path: on "
                "dask collections LeafInfluence supports update_set=0 only, where a row's "
                "derivatives involve its own leaves and per-leaf sums over all rows. "
                "update_set=-1 and k >= 1 propagate each removal through the other rows "
                "of the later trees' leaves, which couples rows of all partitions: fit "
                "those on in-memory data"
            )
        _one_newton_step(est, "LeafInfluence(update_set=0)")

    @staticmethod
    def leaf_sums(template, leaves, y_enc, w):
        return _newton_sums(template, leaves, y_enc, w)

    @staticmethod
    def finish(est, total):
        est._dask_coef = np.ascontiguousarray(_newton_coef(est, total))

    @staticmethod
    def state(template, part, products=True):
        from ._kernels import _leaf_influence as _li
        from ._leaf_rule import leaf_terms
        from ._leaf_update_sets import update_set_for
        from ._objectives import gradient

        ens = template.ensemble_
        leaves = part.int_leaves()
        # as LeafInfluence._fit_influence with update_set=0: the cross-class form from
        # the derivative terms, else the one-step kernel from the replay
        cross = template.multiclass == "exact" and ens.objective == "multiclass"
        terms = leaf_terms(ens, leaves, part.y, part.w, kappa=True, terms=cross)
        terms = terms._replace(coef=template._dask_coef)  # the leaves' coefficients of all rows
        empty = np.empty((0, 0), dtype=leaves.dtype)
        no_groups = (np.zeros(1, dtype=np.int64), np.empty(0, dtype=np.int32))
        train = _li.TrainLeaves(leaves, empty, ens.leaf_offsets, *no_groups, ens.n_outputs)
        final = gradient(ens.objective, part.y, terms.final_scores, ens.objective_param)
        update = update_set_for(
            0, ens, train, terms.weights, np.ascontiguousarray(final), template.multiclass
        )
        if cross:
            update.fit(terms.coef, terms.source, terms.propagation, None, None)
        else:
            update.fit_one_step(terms.coef, part.y)
        shell = _shell(template, part.n)
        shell._update, shell._train = update, update.train
        return shell


class _SurrogateRows:
    """One partition's part of the TREX surrogate's fit: its feature rows ``Phi``
    (CSR) and targets ``Y``, kept on its worker while the surrogate is solved."""

    __slots__ = ("Phi", "Y")

    def __init__(self, Phi, Y):
        self.Phi, self.Y = Phi, Y


def _surrogate_part(template, part):
    from ._trex import _surrogate_targets

    with _numba_threads(template):
        leaves = part.int_leaves()
        Y = _surrogate_targets(template.ensemble_, leaves, part.y, template.target)
        return _SurrogateRows(template._kernel.features(leaves), Y)


def _objective_part(rows, w, n, objective, param):
    """A partition's loss sum and ``Phi^T G`` at the weights ``w``."""
    from ._trex import surrogate_rows

    K = rows.Y.shape[1]
    return surrogate_rows(objective, rows.Phi, rows.Phi.T, rows.Y, w.reshape(-1, K), n, param)


def _normal_part(rows, v):
    """``Phi^T Phi v`` of a partition (the squared error's hessian product), or
    ``Phi^T y`` (the right-hand side) with ``v`` None."""
    if v is None:
        return rows.Phi.T @ rows.Y[:, 0]
    return rows.Phi.T @ (rows.Phi @ v)


def _representer_part(template, rows, part, W, n):
    """A partition's ``Phi^T alpha`` and the moments of its surrogate output ``f`` and
    the model's raw scores (for the fidelity: count, means, centred sums)."""
    from ._trex import representer_weights

    with _numba_threads(template):
        ens = template.ensemble_
        f = rows.Phi @ W
        alpha = representer_weights(ens, f, rows.Y, float(template.lmbd), n)
        phi_alpha = np.asarray(rows.Phi.T @ alpha)
        if part.n == 0:
            return phi_alpha, (0, 0.0, 0.0, 0.0, 0.0, 0.0)
        a = f.ravel()
        b = ens.raw_from_leaves(part.int_leaves()).reshape(f.shape).ravel()
        ca, cb = a - a.mean(), b - b.mean()
        return phi_alpha, (a.size, a.mean(), b.mean(), ca @ ca, cb @ cb, ca @ cb)


def _merge_moments(parts):
    """Pearson correlation from per-partition (count, means, centred sums), merged
    pairwise in partition order (the parallel form of the two-pass formula)."""
    n, ma, mb, saa, sbb, sab = 0, 0.0, 0.0, 0.0, 0.0, 0.0
    for k, pa, pb, qaa, qbb, qab in parts:
        if k == 0:
            continue
        tot = n + k
        da_, db_ = pa - ma, pb - mb
        saa += qaa + da_ * da_ * n * k / tot
        sbb += qbb + db_ * db_ * n * k / tot
        sab += qab + da_ * db_ * n * k / tot
        ma, mb, n = ma + da_ * k / tot, mb + db_ * k / tot, tot
    if n <= 1:
        return np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.clip(sab / np.sqrt(saa * sbb), -1.0, 1.0))


#: TREX's weights larger than this go once to every worker, not with every task
_INLINE_BYTES = 2**20


class _TrexPlan(_Plan):
    """TREX: the leaves' row counts over all rows weigh the kernel; the surrogate's
    weights ``W`` are solved on the client by the in-memory solver, each evaluation
    of its objective (and, for the squared error, each hessian product) a sum of
    per-partition terms computed by the workers; then each row's representer weight
    and surrogate output are per-row functions of ``W`` and of ``Phi^T alpha``, a sum
    over partitions."""

    @staticmethod
    def check(est):
        est._check_params()

    @staticmethod
    def leaf_sums(template, leaves, y_enc, w):
        return _SimilarityPlan.leaf_sums(template, leaves, y_enc, w)

    @staticmethod
    def finish(est, total):
        from ._trex import _TreeKernel

        ens = est.ensemble_
        est._global_leaf_counts = total["count"]
        none = np.zeros((0, ens.n_trees), dtype=np.int32)
        # the leaf-level part of the kernel (its entries) on the client
        est._kernel = _TreeKernel(ens, none, est.kernel, total["count"])

    @staticmethod
    def solve(est, client, parts):
        from ._trex import minimize_surrogate, surrogate_objective

        ens, n, lmbd = est.ensemble_, est.n_train_, float(est.lmbd)
        template = client.scatter([est], broadcast=True, hash=False)[0]
        rows = [client.submit(_surrogate_part, template, p, pure=False) for p in parts]

        # one round trip per evaluation: the weights (n_columns x K floats) go with
        # each partition's task as its argument, or once to every worker when large
        def total(func, v, *args):  # per-partition terms, added in partition order
            if v is not None and v.nbytes > _INLINE_BYTES and len(rows) > len(client.nthreads()):
                v = client.scatter([v], broadcast=True, hash=False)[0]
            futures = [client.submit(func, r, v, *args, pure=False) for r in rows]
            return _add_terms(client.gather(futures))

        def fun(w):
            part = (n, ens.objective, ens.objective_param)
            loss_sum, phi_g = total(_objective_part, w, *part)
            return surrogate_objective(loss_sum, phi_g, w, n, lmbd)

        def normal_equations():
            def matvec(v):
                return total(_normal_part, v) * (2.0 / n) + 2.0 * lmbd * v

            return matvec, total(_normal_part, None) * (2.0 / n)

        K = ens.n_outputs
        W, n_iter, gmax, g0 = minimize_surrogate(
            ens.objective,
            fun,
            est._kernel.n_columns,
            K,
            lmbd,
            est.tol,
            est.max_iter,
            normal_equations,
        )
        est._warn_unconverged(n_iter, gmax, g0, stacklevel=4)  # the caller of fit
        reps = client.gather(
            [
                client.submit(_representer_part, template, r, p, W, n, pure=False)
                for r, p in zip(rows, parts)
            ]
        )
        est.surrogate_coef_, est.n_iter_ = W, n_iter
        est._w_rep = _add_terms([r[0] for r in reps])
        est.fidelity_ = _merge_moments([r[1] for r in reps])

    @staticmethod
    def state(template, part, products=True):
        from ._trex import _surrogate_targets, _TreeKernel, representer_weights

        ens = template.ensemble_
        leaves = part.int_leaves()
        shell = _shell(template, part.n)
        kern = _TreeKernel(ens, leaves, template.kernel, template._global_leaf_counts)
        Phi = kern.train_features if kern.train_features is not None else kern.features(leaves)
        Y = _surrogate_targets(ens, leaves, part.y, template.target)
        f = Phi @ template.surrogate_coef_
        # alpha of the partition's rows (divided by the number of all rows)
        n, lmbd = template.n_train_, float(template.lmbd)
        shell.representer_weights_ = representer_weights(ens, f, Y, lmbd, n)
        shell._kernel = kern
        shell._f_train = np.ascontiguousarray(Phi @ template._w_rep)
        shell._y_train = np.ascontiguousarray(part.y, dtype=np.float64)
        return shell


def _plan(est):
    from ._boostin import BoostIn
    from ._leaf_influence import LeafInfluence
    from ._similarity import _TreeSimilarity
    from ._trex import TREX

    if isinstance(est, BoostIn):
        return _BoostInPlan
    if isinstance(est, _TreeSimilarity):
        return _SimilarityPlan
    if isinstance(est, TREX):
        return _TrexPlan
    if isinstance(est, LeafInfluence):
        return _SinglePointPlan
    raise NotImplementedError(
        f"{type(est).__name__} has no distributed path yet: BoostIn, LeafSim, TreeSim, "
        "TREX and LeafInfluence(update_set=0) fit on dask collections; compute X and y "
        f"into memory (X.compute()) for {type(est).__name__}, or use a retraining "
        "method with joblib.parallel_config(backend='dask')"
    )


def _shell(template, n):
    """A copy of the client's explainer for the ``n`` rows of one partition."""
    shell = copy.copy(template)
    shell.n_train_ = n
    shell._n_features_out = n
    shell._columns = None
    shell.verbose = 0
    return shell


class DaskFit:
    """The distributed state of a fitted explainer: the partitions' futures (kept on
    the workers), their sizes, and the client's explainer broadcast to the workers."""

    def __init__(self, client, parts, sizes, template, plan):
        self.client, self.parts, self.plan = client, parts, plan
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.template = template

    def __getstate__(self):
        raise TypeError(
            "an explainer fitted on dask collections keeps its state on the cluster's "
            "workers and cannot be pickled; fit it again on the dask collections where it "
            "is needed"
        )

    def kept_bytes(self):
        """Bytes kept on the workers per partition (leaf ids, labels, weights)."""
        return np.asarray(self.client.gather(self.client.map(_part_bytes, self.parts)))

    def __repr__(self):
        return f"DaskFit({len(self.parts)} partitions, {int(self.sizes.sum())} rows)"


def _part_bytes(part):
    return part.leaves.nbytes + part.y.nbytes + (0 if part.w is None else part.w.nbytes)


# ---------------------------------------------------------------------------- fit
def _set_features(est, X):
    """``n_features_in_`` (and ``feature_names_in_`` of a dataframe) from X's metadata."""
    from sklearn.utils.validation import validate_data

    if hasattr(X, "divisions"):
        validate_data(est, X._meta, skip_check_array=True, reset=True)
        return
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got a dask array of shape {X.shape}")
    est.n_features_in_ = int(X.shape[1])
    est.__dict__.pop("feature_names_in_", None)


def _gather_labels(client, futures):
    """The labels (or weights) of all partitions, concatenated on the client."""
    return np.concatenate([np.asarray(v).ravel() for v in client.gather(futures)])


def _resolve(est, client, ys, ws):
    """Build the ensemble of the (fitted) model on the client."""
    from ._adapters import is_fitted, to_ensemble

    model = est.estimator
    if model is None or not is_fitted(model):
        raise ValueError(
            f"{type(est).__name__} on dask collections explains a fitted model: train it "
            "first (e.g. with its library's own dask interface) and pass it fitted"
        )
    yf = client.compute(ys)
    wf = client.compute(ws) if ws[0] is not None else None
    # the labels and weights as given, once: some libraries do not store their initial
    # score, which the adapter recomputes from them (8-16 bytes per row, then dropped)
    y_all = _gather_labels(client, yf)
    w_all = None if wf is None else _gather_labels(client, wf).astype(np.float64)
    ens = to_ensemble(model, y=est._validate_y(y_all, len(y_all)), sample_weight=w_all)
    del y_all, w_all
    if ens.tree_type == "rf" and not est._accepts_forests:
        raise ValueError(
            f"{type(est).__name__} needs a gradient-boosted model, got {ens.describe()}"
        )
    if ens.training_rows is not None:
        raise NotImplementedError(
            f"{ens.describe()} held rows out of its training itself (a validation split): "
            "the distributed path needs a model trained on all the rows given to fit"
        )
    est.estimator_, est.ensemble_ = model, ens
    if ens.classes is not None:
        est.classes_ = np.asarray(ens.classes)
    elif not ens.is_regression:
        est.classes_ = np.arange(max(2, ens.n_outputs))
    return yf, wf


def fit_dask(est, X, y, sample_weight=None):
    """``est.fit(X, y, sample_weight)`` on dask collections (see the module docstring).

    Sets the fitted attributes of the in-memory ``fit`` (``estimator_``, ``ensemble_``,
    ``classes_``, ``n_train_``, ``n_features_in_``) and ``est._dask``, the partitions
    kept on the workers. Returns ``est``.
    """
    plan = _plan(est)
    client = _client()
    xs, ys, ws = _partitions(X, y, sample_weight)
    est.__dict__.pop("_dask", None)
    _set_features(est, X)
    yf, wf = _resolve(est, client, ys, ws)
    plan.check(est)
    template = client.scatter([est], broadcast=True, hash=False)[0]
    xf = client.compute(xs)
    both = [
        client.submit(
            _fit_partition, template, plan, x, yy, None if wf is None else wf[i], pure=False
        )
        for i, (x, yy) in enumerate(zip(xf, yf))
    ]
    parts = [client.submit(operator.getitem, f, 0, pure=False) for f in both]
    sums = client.gather([client.submit(operator.getitem, f, 1, pure=False) for f in both])
    del both, xf, yf, wf
    total = _add_sums(sums)
    _check_rows(est, total)
    plan.finish(est, total)
    n = int(total["n"])
    est.n_train_ = est._n_features_out = n
    est._train_labels = est._columns = None
    est._explained_labels = est._explained_weights = None
    est.validation_indices_ = np.zeros(0, dtype=np.int64)
    plan.solve(est, client, parts)
    template = client.scatter([est], broadcast=True, hash=False)[0]
    est._dask = DaskFit(client, parts, [s["n"] for s in sums], template, plan)
    return est


def _check_rows(est, total):
    """The stored per-leaf statistics against the totals of all partitions (the
    comparisons of the in-memory check); raise or warn as configured."""
    import warnings

    from ._config import get_config
    from ._ensemble import _STAT_NAMES, TrainingDataMismatchError

    ens = est.ensemble_
    if ens.leaf_stats is None or ens.leaf_stats_caveat is not None or ens.n_trees == 0:
        return
    keep = np.repeat(~ens.constant_tree, ens.n_leaves)
    n, kind, theirs, ours = int(total["n"]), ens.leaf_stats_kind, ens.leaf_stats, total["stats"]
    if kind == "hessian":
        diff = np.abs(ours - theirs) > 1e-4 * np.abs(theirs) + 1e-8
    elif kind == "count":
        diff = np.abs(ours - theirs) >= 0.5
    else:
        diff = np.abs(ours - theirs) > 1e-4 * np.maximum(1.0, np.abs(theirs))
    message = None
    if (diff & keep).any():
        message = f"{ens.describe()}: " + ens._differing_leaves(
            _STAT_NAMES[kind], theirs, ours, diff & keep, n
        )
    elif "weight_sums" in total:
        theirs, ours = ens.leaf_weight_sums, total["weight_sums"]
        diff = np.abs(ours - theirs) > 1e-7 * np.maximum(1.0, np.abs(theirs))
        if (diff & keep).any():
            message = f"{ens.describe()}: " + ens._differing_leaves(
                "sums of sample weights", theirs, ours, diff & keep, n
            )
    if message is None:
        return
    message += (
        ". Pass the exact training data of the model (the same rows and sample weights, "
        "in any partitioning), or fit inside "
        "skinfluence.config_context(check_training_rows='warn')."
    )
    if get_config()["check_training_rows"] == "raise":
        raise TrainingDataMismatchError(message)
    warnings.warn(message, UserWarning, stacklevel=4)


# ------------------------------------------------------------------------ queries
def _state(template, plan, part):
    with _numba_threads(template):
        return plan.state(template, part)


def _block_task(shell, q, a, b, context, dtype):
    from .base import _slice_rows

    with _numba_threads(shell):
        return np.asarray(shell._influence_block(_slice_rows(q, a, b), context), dtype=dtype)


def _top_k_task(template, plan, part, q, context, m, k, sign):
    with _numba_threads(template):
        shell = plan.state(template, part)
        return shell._top_k_queries(q, context, m, min(k, part.n), sign)


def _global_task(template, plan, part, q, context, m, dtype):
    with _numba_threads(template):
        shell = plan.state(template, part, products=False)
        return np.asarray(shell._global_from_queries(q, m, context), dtype=dtype)


def _self_task(template, plan, part, dtype):
    with _numba_threads(template):
        shell = plan.state(template, part, products=False)
        return np.asarray(shell._self_influence(), dtype=dtype)


def _broadcast_queries(est, X, y):
    """Route and prepare the queries on the client; scatter them to every worker."""
    X = X.compute() if is_dask(X) else X
    y = y.compute() if is_dask(y) else y
    q, context, m = est._prepare(X, y)
    return est._dask.client.scatter([q], broadcast=True, hash=False)[0], context, m


def _by_partition(fit, tasks, shape_of, dtype):
    """One lazy dask array of the per-partition results ``tasks`` (delayed), chunked
    by training partition along the last axis."""
    import dask.array as da

    arrays = [
        da.from_delayed(t, shape=shape_of(int(n)), dtype=dtype) for t, n in zip(tasks, fit.sizes)
    ]
    return da.concatenate(arrays, axis=-1)


def transform(est, X, y=None):
    """Lazy ``(n_query, n_train)`` dask array: blocks of queries x training partitions."""
    import dask
    import dask.array as da

    fit = est._dask
    qf, context, m = _broadcast_queries(est, X, y)
    dt = est._out_dtype()
    budget = est._memory_budget()
    cols = []
    for part, n_p in zip(fit.parts, fit.sizes):
        state = dask.delayed(_state, pure=True)(fit.template, fit.plan, part)
        step = max(1, int(budget // (16 * max(1, int(n_p)))))
        blocks = [
            da.from_delayed(
                dask.delayed(_block_task, pure=True)(state, qf, a, min(m, a + step), context, dt),
                shape=(min(m, a + step) - a, int(n_p)),
                dtype=dt,
            )
            for a in range(0, m, step)
        ]
        cols.append(da.concatenate(blocks, axis=0))
    return da.concatenate(cols, axis=1)


def top_k(est, X, y, k, sign):
    """Per-partition ``top_k``, merged: ``(indices, values)`` as the in-memory method."""
    fit = est._dask
    qf, context, m = _broadcast_queries(est, X, y)
    k = min(int(k), est.n_train_)
    futures = [
        fit.client.submit(
            _top_k_task, fit.template, fit.plan, p, qf, context, m, k, sign, pure=False
        )
        for p in fit.parts
    ]
    results = fit.client.gather(futures)
    idx = np.concatenate([r[0] + s for r, s in zip(results, fit.starts)], axis=1)
    val = np.concatenate([r[1] for r in results], axis=1)
    # the lowest (sign x value), ties to the lower training index, as in memory
    order = np.lexsort((idx, sign * val), axis=-1)[:, :k]
    idx = np.take_along_axis(idx, order, 1)
    return idx, np.take_along_axis(val, order, 1).astype(est._out_dtype())


def global_influence(est, X, y=None):
    """Lazy ``(n_train,)`` dask array of per-partition global influences."""
    import dask

    fit = est._dask
    qf, context, m = _broadcast_queries(est, X, y)
    dt = est._out_dtype()
    tasks = [
        dask.delayed(_global_task, pure=True)(fit.template, fit.plan, p, qf, context, m, dt)
        for p in fit.parts
    ]
    return _by_partition(fit, tasks, lambda n: (n,), dt)


def self_influence(est):
    """Lazy ``(n_train,)`` dask array of per-partition self-influences."""
    import dask

    fit = est._dask
    dt = est._out_dtype()
    tasks = [dask.delayed(_self_task, pure=True)(fit.template, fit.plan, p, dt) for p in fit.parts]
    return _by_partition(fit, tasks, lambda n: (n,), dt)
