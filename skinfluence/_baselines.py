"""Trivial baselines of the paper's evaluations: random, same-target random (RandomSL),
minority and training loss (Brophy et al., JMLR 2023, :ref:`methods-baselines`).

Reproducibility. Every random value is a fixed function of ``random_state``, the
query row's content and the training row's content: a counter-based generator
(splitmix64) keyed by a 64-bit hash of each row draws the value of the pair
``(i, e)``. So the draw of a query depends neither on the other queries of the batch
nor on its position (``transform(Q)[r] == transform(Q[r:r + 1])[0]``), repeated calls
give the same matrix, permuting the training rows permutes the columns, and the
self-influence is the value of the pair ``(i, i)`` (it equals the diagonal of
``fit_transform``). Identical rows get identical draws. This replaces the reference's
"seed ``random_state + e + 1`` per query position", which makes a query's values
depend on where it sits in the batch.
"""

import numbers

import numpy as np

from ._kernels import _similarity as _ksim
from ._objectives import clipped_true_proba, squared_loss
from ._objectives import loss as _model_loss
from .base import BaseInfluence

__all__ = ["LossInfluence", "MinorityInfluence", "RandomInfluence", "TargetInfluence"]

_GOLDEN = 0x9E3779B97F4A7C15


def row_keys(X):
    """A 64-bit content hash per row (numpy, pandas or polars).

    An array that does not convert to float64 (strings for a pipeline) is hashed as
    pandas hashes a DataFrame of it.
    """
    mod = type(X).__module__.split(".")[0]
    if mod not in ("pandas", "polars"):
        try:
            A = np.ascontiguousarray(np.asarray(X, dtype=np.float64).reshape(len(X), -1))
        except (TypeError, ValueError):
            import pandas as pd

            X, mod = pd.DataFrame(np.asarray(X, dtype=object).reshape(len(X), -1)), "pandas"
        else:
            return _ksim.hash_rows(A, A.view(np.uint64))
    if mod == "pandas":
        import pandas as pd

        return np.ascontiguousarray(
            pd.util.hash_pandas_object(X, index=False).to_numpy(), dtype=np.uint64
        )
    return np.ascontiguousarray(
        X.hash_rows(seed=0, seed_1=1, seed_2=2, seed_3=3).to_numpy(), dtype=np.uint64
    )


def _check_random_state(random_state):
    if random_state is None:
        return int(np.random.SeedSequence().entropy % 2**63)
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    raise ValueError(
        f"random_state must be an int or None, got {random_state!r}: the baselines draw "
        "every value from (random_state, query row, training row), not from a "
        "RandomState stream"
    )


class _RandomBaseline(BaseInfluence):
    """Shared plumbing: row keys, the seed, labels and the model's predictions."""

    #: distinguishes the streams of the baselines for one random_state
    _salt = 0

    def __init__(
        self,
        estimator=None,
        *,
        random_state=1,
        dtype=np.float64,
        chunk_memory_mb=256,
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            estimator, dtype=dtype, chunk_memory_mb=chunk_memory_mb, n_jobs=n_jobs, verbose=verbose
        )
        self.random_state = random_state

    def _fit_influence(self, X, leaves, y_enc, sample_weight):
        self.seed_ = _check_random_state(self.random_state)
        self._seed = np.uint64((self.seed_ * 2 + 1) * _GOLDEN % 2**64) ^ np.uint64(self._salt)
        self._keys = row_keys(X)
        self._y_train = np.ascontiguousarray(y_enc, dtype=np.float64)
        self._fit_baseline(leaves)

    def _fit_baseline(self, leaves):
        pass

    def _query_arrays(self, X, leaves, y_enc, objective):
        ens = self.ensemble_
        if y_enc is None:  # label-free regression query: the model's prediction
            y_enc = ens.raw_from_leaves(leaves)[:, 0]
        return {"keys": row_keys(X), "y": np.ascontiguousarray(y_enc, dtype=np.float64)}

    def _label_edit_state(self, targets):
        raise NotImplementedError(
            f"{type(self).__name__} is a random ranking baseline, not an estimate of a "
            "loss change: a label edit has no value of its own (the targeted-edit "
            "protocol ranks such baselines by transform)"
        )

    def _draws(self, keys, normal):
        return _ksim.pair_draws(self._seed, self._keys, keys, normal)

    def _diagonal(self, normal):
        return _ksim.diagonal_draws(self._seed, self._keys, normal)


class RandomInfluence(_RandomBaseline):
    """Random baseline: i.i.d. standard normal influence values.

    Parameters
    ----------
    estimator : object, default=None
        Any supported model (it is only validated and routed, never used for the
        values); see :class:`~skinfluence.base.BaseInfluence`.
    random_state : int or None, default=1
        Seed. ``None`` draws one at ``fit`` (kept in ``seed_``).
    dtype, chunk_memory_mb, n_jobs, verbose
        See :class:`~skinfluence.base.BaseInfluence`.

    Attributes
    ----------
    estimator_ : object
    ensemble_ : TreeEnsemble
    classes_ : ndarray
    n_train_ : int
    seed_ : int
        The seed used.
    n_features_in_ : int
    feature_names_in_ : ndarray

    Notes
    -----
    The value of ``(i, e)`` is a standard normal drawn by a counter-based generator
    from ``random_state`` and 64-bit hashes of the two rows (see the module notes):
    rows are independent, calls are reproducible, permuting the training rows permutes
    the columns, and ``self_influence()`` equals the diagonal of ``fit_transform``.
    Identical rows get identical values. O(N) per query row, O(N) for
    ``self_influence``.

    References
    ----------
    .. [1] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023 ("Random").

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skinfluence import RandomInfluence
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = HistGradientBoostingClassifier(max_iter=5).fit(X, y)
    >>> explainer = RandomInfluence(model, random_state=0).fit(X, y)
    >>> M = explainer.transform(X[:3], y[:3])
    >>> bool(np.array_equal(M, explainer.transform(X[:3], y[:3])))
    True
    """

    _salt = 0x52414E44

    def _influence_block(self, q, context):
        return self._draws(q["keys"], True)

    def _self_influence(self):
        return self._diagonal(True)


class TargetInfluence(_RandomBaseline):
    """Same-target random baseline (the paper's "RandomSL").

    Classification: training rows with the query's label get Uniform(0, 1), the
    others Uniform(-1, 0), so every same-label row ranks above every other row, in
    random order. Regression: ``1 / |y_i - y_e|`` (a zero difference maps to
    ``2**-32`` times the largest finite value of the output dtype, about 4.2e298 in
    float64, and the similarity never exceeds half of that) plus a normal draw per
    training row with standard deviation ``std_i |y_i - y_e|`` (over the training
    rows).

    Parameters
    ----------
    estimator : object, default=None
        Any supported model; see :class:`~skinfluence.base.BaseInfluence`.
    random_state : int or None, default=1
        Seed. ``None`` draws one at ``fit`` (kept in ``seed_``).
    dtype, chunk_memory_mb, n_jobs, verbose
        See :class:`~skinfluence.base.BaseInfluence`.

    Attributes
    ----------
    estimator_ : object
    ensemble_ : TreeEnsemble
    classes_ : ndarray
    n_train_ : int
    seed_ : int
        The seed used.
    n_features_in_ : int
    feature_names_in_ : ndarray

    Notes
    -----
    Without query labels, classifiers use the model's predicted label and regressors
    the model's prediction as ``y_e``. Draws are keyed by the two rows' contents (see
    :class:`RandomInfluence`), so ``self_influence()`` equals the diagonal of
    ``fit_transform``: Uniform(0, 1) for classifiers, the zero-difference value for
    regressors. O(N) per query row; O(N) for ``self_influence``.

    The reference drew one scalar of noise for all rows of a regression query (a no-op
    for rankings) and returned inf on ties.

    References
    ----------
    .. [1] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023 ("RandomSL").

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skinfluence import TargetInfluence
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = HistGradientBoostingClassifier(max_iter=5).fit(X, y)
    >>> M = TargetInfluence(model).fit(X, y).transform(X[:1], y[:1])
    >>> bool(np.all((M > 0) == (y == y[0])))
    True
    """

    _salt = 0x54415247

    def _influence_block(self, q, context):
        yt, ye = self._y_train, q["y"]
        if not self.ensemble_.is_regression:
            u = self._draws(q["keys"], False)
            u[yt[None, :] != ye[:, None]] -= 1.0
            return u
        z = self._draws(q["keys"], True)
        diff = np.abs(yt[None, :] - ye[:, None])
        big = self._big()
        with np.errstate(divide="ignore", over="ignore"):
            sim = np.where(diff > 0, np.minimum(1.0 / diff, 0.5 * big), big)
        return sim + z * diff.std(axis=1, keepdims=True)

    def _self_influence(self):
        if not self.ensemble_.is_regression:
            return self._diagonal(False)
        return np.full(self.n_train_, self._big())


class MinorityInfluence(_RandomBaseline):
    """Minority baseline: rows of rarer classes (or unusual targets) first.

    Classification: the classes sorted by ascending training count (ties: class
    order), the ``r``-th (``r = 0``: the minority class) gets Uniform(-r, 1 - r), so
    the rarer a row's class, the higher it ranks, in random order within a class.
    Regression: ``|y_i - median(y)|`` plus a normal draw per row with the standard
    deviation of those distances. The same for every query apart from the draws.

    Parameters
    ----------
    estimator : object, default=None
        Any supported model; see :class:`~skinfluence.base.BaseInfluence`.
    random_state : int or None, default=1
        Seed. ``None`` draws one at ``fit`` (kept in ``seed_``).
    dtype, chunk_memory_mb, n_jobs, verbose
        See :class:`~skinfluence.base.BaseInfluence`.

    Attributes
    ----------
    estimator_ : object
    ensemble_ : TreeEnsemble
    classes_ : ndarray
    n_train_ : int
    seed_ : int
        The seed used.
    class_rank_ : ndarray of shape (n_classes,)
        Rank ``r`` of each class (0 = fewest training rows); classifiers only.
    n_features_in_ : int
    feature_names_in_ : ndarray

    Notes
    -----
    Draws are keyed by the two rows' contents (see :class:`RandomInfluence`);
    ``self_influence()`` equals the diagonal of ``fit_transform``. O(N) per query row.
    The reference drew one scalar of noise for all rows in regression.

    References
    ----------
    .. [1] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023 ("Minority").

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skinfluence import MinorityInfluence
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = HistGradientBoostingClassifier(max_iter=5).fit(X, y)
    >>> explainer = MinorityInfluence(model).fit(X, y)
    >>> explainer.class_rank_  # class 0 (malignant) is the minority
    array([0, 1])
    """

    _salt = 0x4D494E4F

    def _fit_baseline(self, leaves):
        yt = self._y_train
        if not self.ensemble_.is_regression:
            counts = np.bincount(yt.astype(np.intp), minlength=len(self.classes_))
            order = np.argsort(counts, kind="stable")
            rank = np.empty(len(counts), dtype=np.intp)
            rank[order] = np.arange(len(counts))
            self.class_rank_ = rank
            self._offset = -rank[yt.astype(np.intp)].astype(np.float64)
        else:
            dist = np.abs(yt - np.median(yt))
            self._offset = dist
            self._scale = float(dist.std())

    def _influence_block(self, q, context):
        if not self.ensemble_.is_regression:
            return self._draws(q["keys"], False) + self._offset[None, :]
        return self._offset[None, :] + self._scale * self._draws(q["keys"], True)

    def _self_influence(self):
        if not self.ensemble_.is_regression:
            return self._diagonal(False) + self._offset
        return self._offset + self._scale * self._diagonal(True)


class LossInfluence(BaseInfluence):
    """Training-loss baseline: each training row's own loss under the model.

    Self-influence only: ``self_influence()`` returns ``L(y_i, model(x_i))`` (log-loss
    of the predicted probabilities, clipped to [1e-5, 1 - 1e-5], for classifiers;
    ``(y - prediction)**2 / 2`` for regressors), the "self" ranking of the paper's
    noisy-label experiment: high loss = suspicious. There is no local influence:
    ``transform``, ``top_k`` and ``global_influence`` raise ``NotImplementedError``.

    Parameters
    ----------
    estimator : object, default=None
        Any supported model; see :class:`~skinfluence.base.BaseInfluence`.
    dtype, chunk_memory_mb, n_jobs, verbose
        See :class:`~skinfluence.base.BaseInfluence`.

    Attributes
    ----------
    estimator_ : object
    ensemble_ : TreeEnsemble
    classes_ : ndarray
    n_train_ : int
    training_loss_ : ndarray of shape (n_train,)
        The per-row training loss.
    n_features_in_ : int
    feature_names_in_ : ndarray

    Notes
    -----
    O(N T) at ``fit`` (the model's raw scores from the leaf ids); no randomness.

    References
    ----------
    .. [1] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023 ("Loss").

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skinfluence import LossInfluence
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = HistGradientBoostingClassifier(max_iter=5).fit(X, y)
    >>> suspicious = np.argsort(-LossInfluence(model).fit(X, y).self_influence())[:5]
    >>> suspicious.shape
    (5,)
    """

    def _fit_influence(self, X, leaves, y_enc, sample_weight):
        ens = self.ensemble_
        raw = ens.raw_from_leaves(leaves)
        y = np.asarray(y_enc, dtype=np.float64)
        if ens.tree_type != "rf":
            self.training_loss_ = _model_loss(ens.objective, y, raw, ens.objective_param)
        elif ens.objective == "squared_error":
            self.training_loss_ = squared_loss(y, raw[:, 0])
        else:  # forests predict probabilities
            P = np.column_stack([1 - raw[:, 0], raw[:, 0]]) if ens.objective == "binary" else raw
            self.training_loss_ = -np.log(clipped_true_proba(P, y.astype(np.intp)))

    def _query_arrays(self, X, leaves, y_enc, objective):
        raise NotImplementedError(
            "LossInfluence has no local influence: it ranks the training rows by their "
            "own loss. Use self_influence(); for influence on queries use another "
            "method (e.g. BoostIn, TREX, LeafSim)."
        )

    def _self_influence(self):
        return self.training_loss_.copy()
