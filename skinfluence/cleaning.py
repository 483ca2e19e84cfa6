"""Act on influence: drop or relabel the training rows that hurt, inside scikit-learn.

Two estimators share one cleaning procedure:

* :class:`InfluenceCleaner`, a meta-estimator: ``fit`` scores every training row with an
  influence method, removes (or relabels) the most harmful ones and refits the model on
  the rest. Everything happens in ``fit``, so ``GridSearchCV`` can choose how much to
  clean and with which method, and every cross-validation fold scores influence on its
  own training part only.
* :class:`InfluenceSampler`, the same cleaning as a duck-typed ``fit_resample`` sampler:
  a step of an ``imblearn.pipeline.Pipeline`` (imbalanced-learn is not needed to import
  or use it outside such a pipeline).
"""

import numbers
import sys
import warnings
from typing import Any, NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.model_selection import (
    KFold,
    RepeatedKFold,
    RepeatedStratifiedKFold,
    StratifiedKFold,
    check_cv,
    train_test_split,
)
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_samples,
    check_array,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._adapters import default_model, default_model_has
from .base import _fit_model, _is_dataframe

__all__ = ["InfluenceCleaner", "InfluenceSampler", "compare_to_baseline"]

_CRITERIA = ("self", "validation", "oof")
_ACTIONS = ("remove", "relabel", "reweight", "hybrid")
#: actions that read the out-of-fold probabilities of the given and the other classes
_PROBA_ACTIONS = ("reweight", "hybrid")
_BALANCES = (None, "class", "scale", "joint", "auto")


# ------------------------------------------------------------------------- helpers
class _Steps:
    """A progress bar over the stages of one cleaning run (tqdm, optional)."""

    def __init__(self, total, verbose, desc):
        self._bar = None
        if verbose:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm is an optional extra
                return
            self._bar = tqdm(total=total, desc=desc, leave=False)

    def step(self, what):
        if self._bar is not None:
            self._bar.set_postfix_str(what, refresh=False)
            self._bar.update(1)

    def close(self):
        if self._bar is not None:
            self._bar.close()


def _outside_stacklevel():
    """The ``stacklevel`` of a warning raised in this module that points at the first
    caller outside it (the user's ``fit`` / ``fit_resample`` call, however deep the
    call chain inside the module is)."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        level += 1
        frame = frame.f_back
    return level


def _take(X, idx):
    return _safe_indexing(X, idx, axis=0)


def _estimator_has(attr):
    """``available_if`` check: the fitted model (or the template) has ``attr``."""

    def check(self):
        if hasattr(self, "estimator_"):
            getattr(self.estimator_, attr)
            return True
        if self.estimator is None:
            return default_model_has(attr)
        getattr(self.estimator, attr)
        return True

    return check


def _with_y_like(y_orig, values):
    """``values`` (a numpy array) in the container type of ``y_orig``."""
    mod = type(y_orig).__module__.split(".")[0]
    if mod == "pandas":
        import pandas as pd

        if isinstance(y_orig, pd.Series):
            return pd.Series(values, index=y_orig.index, name=y_orig.name)
        if isinstance(y_orig, pd.DataFrame):
            return pd.DataFrame(values, index=y_orig.index, columns=y_orig.columns)
    if mod == "polars":
        import polars as pl

        if isinstance(y_orig, pl.Series):
            return pl.Series(y_orig.name, values)
    return values


def _class_quota_mask(labels, budget, weights=None):
    """Mask over ``labels`` (rows in ranking order) keeping, for every class, its first
    ``q_c`` rows, where the quotas ``q_c`` share ``budget`` in proportion to the class
    counts, or to ``weights[c]`` (a mapping from class to a non-negative weight) when
    given and not all zero (largest remainders, ties to the earlier class), and never
    exceed the counts."""
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    w = counts if weights is None else np.array([weights.get(c, 0) for c in classes.tolist()])
    if w.sum() <= 0:  # no class has weight (no contradicted row): share by class size
        w = counts
    budget = min(budget, int(np.sum(np.where(w > 0, counts, 0))))
    exact = np.minimum(budget * w / w.sum(), counts)
    quota = np.floor(exact).astype(np.intp)
    rest = budget - int(quota.sum())
    while rest > 0:  # largest remainders first, only where a class has rows left
        room = np.flatnonzero((quota < counts) & (w > 0))
        room = room[np.argsort(-(exact[room] - quota[room]), kind="stable")][:rest]
        quota[room] += 1
        rest -= len(room)
    keep = np.zeros(len(labels), dtype=bool)
    for c in range(len(classes)):
        keep[np.flatnonzero(inverse == c)[: quota[c]]] = True
    return keep


def _scale_by_class(harm, y):
    """``harm`` standardised within each class: minus the class median, over the
    class's scaled median absolute deviation (``1.4826 * MAD``; its standard deviation
    if the MAD is 0, and 1 if both are). NaN (unscored) entries stay NaN."""
    out = np.full(len(harm), np.nan)
    for c in np.unique(y):
        rows = np.flatnonzero((y == c) & ~np.isnan(harm))
        if len(rows) == 0:
            continue
        h = harm[rows]
        med = np.median(h)
        spread = 1.4826 * np.median(np.abs(h - med))
        if not spread > 0:
            spread = np.std(h) if np.std(h) > 0 else 1.0
        out[rows] = (h - med) / spread
    return out


def _confidently_other(proba, codes):
    """Rows whose out-of-fold probabilities confidently name another class than their
    label (the off-diagonal of the confident joint of Northcutt et al., 2021).

    Class ``j``'s threshold is the mean probability of ``j`` over the rows labelled
    ``j``; a row is counted when, among the classes whose probability reaches their
    threshold, the most probable is not its label. ``codes``: the labels as column
    positions of ``proba``.
    """
    return _confident_class(proba, codes)[0]


def _confident_class(proba, codes):
    """``(other, best)``: the mask of :func:`_confidently_other` and, per row, the
    column of the most probable class among those reaching their threshold (the
    class the confident joint counts the row in; meaningful where ``other``)."""
    n, k = proba.shape
    thresholds = np.ones(k)
    for j in range(k):
        rows = codes == j
        if rows.any():
            thresholds[j] = proba[rows, j].mean()
    above = proba >= thresholds
    best = np.where(above, proba, -1.0).argmax(axis=1)
    return above.any(axis=1) & (best != codes), best


class _OutOfFold:
    """Out-of-fold predictions ``pred``, losses ``loss`` and (classifiers with
    ``predict_proba``) probabilities ``proba`` over the training classes, filled fold by
    fold (:meth:`put`) and completed by :meth:`finish`. A row held out by several folds
    (repeated splits) gets the mean of their probabilities (classifiers), the class of
    the largest mean probability (or the most frequent prediction without
    probabilities; ties to the first class) or the mean prediction (regressors); a row
    held out once gets the model's own prediction."""

    def __init__(self, n, classes=None):
        self.n = n
        self.classes = classes
        self.pred = None
        self.loss = None
        self.proba = None
        self._other = None
        self._count = np.zeros(n, dtype=np.intp)
        self._sum = None  # probabilities, class votes or predictions, summed
        self._has_proba = False

    def confidently_other(self, codes):
        """:func:`_confidently_other` of the filled probabilities (computed once)."""
        return self.confident_class(codes)[0]

    def confident_class(self, codes):
        """:func:`_confident_class` of the filled probabilities (computed once)."""
        if self._other is None:
            self._other = _confident_class(self.proba, codes)
        return self._other

    def put(self, rows, pred, proba, dtype):
        if self.pred is None:
            self.pred = np.empty(self.n, dtype=dtype if dtype is not None else pred.dtype)
        self.pred[rows] = pred
        self._count[rows] += 1
        if proba is not None:
            if self._sum is None:
                self._sum = np.zeros((self.n, proba.shape[1]))
                self._has_proba = True
            self._sum[rows] += proba
        elif self.classes is not None:  # classifier without probabilities: votes
            if self._sum is None:
                self._sum = np.zeros((self.n, len(self.classes)))
            self._sum[rows, np.searchsorted(self.classes, pred)] += 1.0
        else:
            if self._sum is None:
                self._sum = np.zeros(self.n)
            self._sum[rows] += pred

    def finish(self, y, with_loss):
        """Average the repeated hold-outs and compute the losses (log-loss of the
        probabilities clipped at 1e-12, 0-1 loss without them, squared error for
        regressors; NaN unless ``with_loss``). Rows never held out keep their label
        (as prediction) and get the loss 0."""
        count = self._count
        held = count > 0
        many = count > 1
        if self.pred is None:
            self.pred = np.asarray(y).copy()
        self.pred[~held] = y[~held]
        is_clf = self.classes is not None
        with_proba = self._has_proba
        if with_proba:
            self.proba = self._sum / np.maximum(count, 1)[:, None]
            self.pred[many] = self.classes[self.proba[many].argmax(axis=1)]
        elif is_clf and many.any():
            self.pred[many] = self.classes[self._sum[many].argmax(axis=1)]
        elif many.any():
            self.pred[many] = self._sum[many] / count[many]
        self.loss = np.full(self.n, np.nan)
        if with_loss:
            if not is_clf:
                self.loss = (np.asarray(y, dtype=np.float64) - self.pred) ** 2
            elif with_proba:
                p = self.proba[np.arange(self.n), np.searchsorted(self.classes, y)]
                self.loss = -np.log(np.clip(p, 1e-12, 1.0))
            else:
                self.loss = (self.pred != y).astype(np.float64)
            self.loss[~held] = 0.0
        return self


def _unchanged(n, kept, changed, weights):
    """Did an action leave all ``n`` rows, their labels and their weights as given?"""
    same_weights = weights is None or bool(np.all(weights == 1.0))
    return len(kept) == n and len(changed) == 0 and same_weights


def _final_weights(sample_weight, kept, weights):
    """The sample weights of the final fit on the ``kept`` rows: the user's weights
    times the ``action="reweight"`` factors (either may be ``None``)."""
    if weights is None:
        return None if sample_weight is None else sample_weight[kept]
    w = weights[kept]
    return w if sample_weight is None else sample_weight[kept] * w


# ------------------------------------------------------------------- shared base
class _Cleaned(NamedTuple):
    """What :meth:`_BaseInfluenceCleaning._clean` hands to ``fit`` / ``fit_resample``."""

    #: the validated training data, labels and weights
    X: Any
    y: np.ndarray
    sample_weight: Any
    #: indices of the rows kept, ascending
    kept: np.ndarray
    #: the labels after the action (relabelled rows changed), one per input row
    y_new: np.ndarray
    #: the model fitted on all rows when nothing changed and criterion ``"self"``
    #: fitted it on all rows (the caller need not refit), else ``None``
    reusable_model: Any
    #: the unfitted model that was fitted (for the final fit)
    template: Any
    #: ``action="reweight"``: the factor of every input row's weight in the final fit
    #: (1 for the rows not selected), else ``None``
    weights: Any = None


class _BaseInfluenceCleaning(MetaEstimatorMixin, BaseEstimator):
    """Parameters and the cleaning procedure shared by the cleaner and the sampler."""

    def __init__(
        self,
        estimator=None,
        method=None,
        *,
        fraction="auto",
        n_rows=None,
        threshold=None,
        criterion="self",
        action="auto",
        balance="auto",
        loss_weight=0.5,
        n_rounds="auto",
        validation_size=0.2,
        cv=5,
        n_repeats=2,
        scoring=None,
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.method = method
        self.fraction = fraction
        self.n_rows = n_rows
        self.threshold = threshold
        self.criterion = criterion
        self.action = action
        self.balance = balance
        self.loss_weight = loss_weight
        self.n_rounds = n_rounds
        self.validation_size = validation_size
        self.cv = cv
        self.n_repeats = n_repeats
        self.scoring = scoring
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ validation
    def _check_params(self):
        if self.criterion not in _CRITERIA:
            raise ValueError(f"criterion must be one of {_CRITERIA}, got {self.criterion!r}")
        if self.action != "auto" and self.action not in _ACTIONS:
            raise ValueError(f"action must be 'auto' or one of {_ACTIONS}, got {self.action!r}")
        b = self.balance
        if not (b is None or (isinstance(b, str) and b in _BALANCES)):
            raise ValueError(f"balance must be one of {_BALANCES}, got {self.balance!r}")
        w = self.loss_weight
        if not isinstance(w, numbers.Real) or isinstance(w, bool) or not 0 <= w <= 1:
            raise ValueError(f"loss_weight must be a number in [0, 1], got {w!r}")
        for f in self._candidates():
            auto = isinstance(f, str) and f == "auto"
            if not auto and (
                not isinstance(f, numbers.Real) or isinstance(f, bool) or not 0 <= f <= 1
            ):
                raise ValueError(
                    "fraction must be a number in [0, 1] or 'auto', or a non-empty list of "
                    f"those (candidates compared on a trusted set), got {self.fraction!r}"
                )
        r = self.n_rounds
        if not (isinstance(r, str) and r == "auto") and (
            not isinstance(r, numbers.Integral) or isinstance(r, bool) or r < 1
        ):
            raise ValueError(f"n_rounds must be a positive integer or 'auto', got {r!r}")
        if not isinstance(r, str) and r > 1 and isinstance(self.fraction, (list, tuple)):
            raise ValueError(
                f"n_rounds={r} repeats the cleaning with one fraction; it cannot be "
                f"combined with a list of candidate fractions ({self.fraction!r})"
            )
        m = self.n_repeats
        if not isinstance(m, numbers.Integral) or isinstance(m, bool) or m < 1:
            raise ValueError(f"n_repeats must be a positive integer, got {m!r}")
        k = self.n_rows
        if k is not None and (not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 0):
            raise ValueError(f"n_rows must be None or a non-negative integer, got {k!r}")
        t = self.threshold
        if t is not None and (
            not isinstance(t, numbers.Real) or isinstance(t, bool) or np.isnan(t)
        ):
            raise ValueError(f"threshold must be None or a number, got {t!r}")
        from sklearn.frozen import FrozenEstimator

        est = self.estimator
        if est is not None and (isinstance(est, FrozenEstimator) or not hasattr(est, "fit")):
            raise TypeError(
                f"{type(self).__name__} refits its model on the cleaned rows, so "
                f"estimator must be a model that can be fitted again (an unfitted or "
                f"fitted scikit-learn-style estimator); got {type(est).__name__}. Pass "
                "the model's class with its parameters instead of a frozen model or a "
                "library's raw trained-model object"
            )

    def _validate_input(self, X, y, sample_weight):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        allow_nan = get_tags(self).input_tags.allow_nan
        if _is_dataframe(X):
            validate_data(self, X, skip_check_array=True, reset=True)
        else:
            X = validate_data(
                self,
                X,
                reset=True,
                dtype=None,
                ensure_all_finite="allow-nan" if allow_nan else True,
            )
        n = X.shape[0]
        if n == 0:
            raise ValueError("Found array with 0 sample(s); at least 1 is required.")
        y_arr = column_or_1d(
            check_array(y, ensure_2d=False, dtype=None, ensure_all_finite=True, input_name="y"),
            warn=True,
        )
        if len(y_arr) != n:
            raise ValueError(
                f"y has {len(y_arr)} entries but X has {n} rows; pass one label per row"
            )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, np.empty((n, 0)), dtype=np.float64)
        if is_classifier(self._template(y_arr)):
            check_classification_targets(y_arr)
            weighted = y_arr if sample_weight is None else y_arr[sample_weight > 0]
            if len(np.unique(weighted)) < 2:
                found = np.unique(weighted).tolist()
                raise ValueError(
                    f"{type(self).__name__} needs at least 2 classes with positive "
                    f"weight in y, got {len(found)} class(es): {found}"
                )
        return X, y_arr, sample_weight

    def _template(self, y):
        est = self.estimator
        return default_model(y) if est is None else est

    def _splitter(self, is_clf, y):
        if isinstance(self.cv, numbers.Integral) and not isinstance(self.cv, bool):
            if self.cv < 2:
                raise ValueError(f"cv must be at least 2, got {self.cv}")
            k, m, rs = self.cv, self.n_repeats, self.random_state
            stratified = False
            if is_clf:
                _, counts = np.unique(y, return_counts=True)
                stratified = counts.min() >= k
            if m > 1:
                kind = RepeatedStratifiedKFold if stratified else RepeatedKFold
                return kind(n_splits=k, n_repeats=m, random_state=rs)
            if stratified:
                return StratifiedKFold(k, shuffle=True, random_state=rs)
            return KFold(k, shuffle=True, random_state=rs)
        return check_cv(self.cv, y, classifier=is_clf)

    def _method_for(self, model):
        if self.method is None:
            from ._boostin import BoostIn

            method = BoostIn()
        else:
            method = clone(self.method)
        if "estimator" not in method.get_params(deep=False):
            raise TypeError(
                f"method must be an influence estimator of skinfluence (with an "
                f"'estimator' parameter), got {type(method).__name__}"
            )
        return method.set_params(estimator=model)

    # -------------------------------------------------------------- cleaning
    def _clean(self, X, y, sample_weight, trusted_set=None):
        """Score, select and act (``n_rounds`` times at most); sets the fitted
        attributes. Returns a :class:`_Cleaned`."""
        self._check_params()
        X, y, sample_weight = self._validate_input(X, y, sample_weight)
        trusted_set = self._check_trusted(trusted_set, X.shape[0])
        self.__dict__.pop("round_sizes_", None)
        self._resolve_auto(self._template(y))
        res = self._clean_round(X, y, sample_weight, trusted_set)
        if self._n_rounds > 1:
            return self._more_rounds(res)
        self.round_sizes_ = np.array([len(self.selected_indices_)], dtype=np.intp)
        return res

    #: can the action be "reweight" (an :class:`InfluenceCleaner` fits with weights; an
    #: :class:`InfluenceSampler` returns rows)
    _weights_rows = True

    def _resolve_auto(self, template):
        """``action_`` and the number of rounds, with ``"auto"`` resolved: reweight
        (2 rounds) for a classifier with ``predict_proba`` where rows can be weighted,
        remove (1 round) otherwise."""
        action = self.action
        if action == "auto":
            proba = is_classifier(template) and hasattr(template, "predict_proba")
            action = "reweight" if proba and self._weights_rows else "remove"
        rounds = self.n_rounds
        if isinstance(rounds, str):  # "auto"
            several = isinstance(self.fraction, (list, tuple))
            rounds = 2 if action == "reweight" and not several else 1
        self.action_ = self._action = action
        self._n_rounds = rounds

    def _clean_round(self, X, y, sample_weight, trusted_set):
        """One round of scoring, selection and action on validated data."""
        n = X.shape[0]
        template = self._template(y)
        is_clf = is_classifier(template)
        self._classes = np.unique(y) if is_clf else None

        self._balance = self.balance
        if self.balance == "auto":  # per class by the confident joint where it exists
            joint = is_clf and hasattr(template, "predict_proba")
            self._balance = "joint" if joint else None
        self._check_model_for_options(template, is_clf)
        oof_folds = (
            self.criterion == "oof"
            or self.loss_weight > 0
            or self._auto()
            or self._balance == "joint"
        )
        folds = None
        if oof_folds:
            folds = list(self._splitter(is_clf, y).split(np.empty((n, 1)), y))
        steps = {"self": 3, "validation": 3, "oof": 1}[self.criterion]
        steps += len(folds) if oof_folds else 0
        steps += len(self._candidates()) if trusted_set is not None else 0
        bar = _Steps(steps, self.verbose, type(self).__name__)
        try:
            influence, oof, full_model = self._score(X, y, sample_weight, template, folds, bar)
            if oof is None and oof_folds:
                oof = self._oof_predict(X, y, sample_weight, template, is_clf, folds, bar)
            harm = -influence if self.criterion != "self" else influence.copy()
            self._joint_counts = self._per_class_contradicted(y, oof)
            self.__dict__.pop("oof_loss_", None)
            self.__dict__.pop("auto_budget_", None)
            if self.loss_weight > 0:
                self.oof_loss_ = oof.loss
                harm = self._blend(harm, oof.loss)
            if self._balance == "scale":
                harm = _scale_by_class(harm, y)
            self.__dict__.pop("fraction_", None)
            self.__dict__.pop("trusted_scores_", None)
            if trusted_set is None:
                selected = self._select(harm, y, self._budget(n, y, oof, is_clf, self.fraction))
                kept, y_new, changed, weights = self._act(
                    X, y, sample_weight, template, selected, oof, is_clf, bar
                )
                if not _unchanged(n, kept, changed, weights):
                    full_model = None
            else:
                if oof is None and self._action != "remove":
                    oof = self._oof_predict(X, y, sample_weight, template, is_clf, folds, bar)
                selected, kept, y_new, changed, weights, full_model = self._choose_on_trusted(
                    (X, y, sample_weight, template, is_clf), harm, oof, full_model, trusted_set, bar
                )
        finally:
            bar.close()
        self.influence_ = influence
        self.harm_ = harm
        self._set_action_attributes(y, selected, kept, y_new, changed, weights)
        return _Cleaned(X, y, sample_weight, kept, y_new, full_model, template, weights)

    def _check_model_for_options(self, template, is_clf):
        """Refuse the options the model cannot serve (per class, probabilities)."""
        proba = is_clf and hasattr(template, "predict_proba")
        if self._balance is not None and not is_clf:
            raise ValueError(
                f"balance={self.balance!r} works per class and needs a classifier; the "
                f"model {type(template).__name__} is a regressor (use balance=None)"
            )
        if self._balance == "joint" and not hasattr(template, "predict_proba"):
            raise ValueError(
                'balance="joint" shares the budget by the confident joint of out-of-fold '
                f"probabilities; {type(template).__name__} has no predict_proba (use "
                'balance="class")'
            )
        if self._action in _PROBA_ACTIONS and not proba:
            raise ValueError(
                f"action={self._action!r} reads the out-of-fold class probabilities and "
                f"needs a classifier with predict_proba; {type(template).__name__} is "
                "not one (use action='remove' or 'relabel')"
            )

    def _set_action_attributes(self, y, selected, kept, y_new, changed, weights):
        """``selected_indices_``, ``removed_indices_``, ``relabeled_*``,
        ``row_weights_`` and ``kept_indices_`` of one round."""
        self.selected_indices_ = selected
        self.__dict__.pop("row_weights_", None)
        if self._action == "remove":
            self.removed_indices_ = selected
            self.relabeled_indices_ = np.empty(0, dtype=np.intp)
        elif self._action == "reweight":
            self.removed_indices_ = np.empty(0, dtype=np.intp)
            self.relabeled_indices_ = np.empty(0, dtype=np.intp)
            self.row_weights_ = weights
        else:
            self.removed_indices_ = selected[~np.isin(selected, changed)].astype(np.intp)
            if self._action == "relabel":
                self.removed_indices_ = np.empty(0, dtype=np.intp)
            self.relabeled_indices_ = changed
            self.relabeled_from_ = y[changed]
            self.relabeled_to_ = y_new[changed]
        self.kept_indices_ = kept

    def _more_rounds(self, res):
        """Rounds 2..``n_rounds``: the cleaning repeated on the rows (and labels) the
        previous round left, until a round changes nothing. A round that would fail
        (e.g. leave a class without rows) or act on more rows than the round before
        is not applied and ends the repetition. The fitted attributes are mapped to
        the positions of the input rows. ``action="reweight"``: a round cleans the
        rows of positive weight, weighted by the factors so far, and multiplies
        them."""
        X, y, sw = res.X, res.y, res.sample_weight
        n = len(y)
        pos, y_cur = res.kept, res.y_new
        factor = None if res.weights is None else res.weights.copy()
        if factor is not None:
            pos = np.flatnonzero(factor > 0)
        selected, removed = [self.selected_indices_], [self.removed_indices_]
        touched = [self.relabeled_indices_]
        sizes = [len(self.selected_indices_)]
        budget = getattr(self, "auto_budget_", None)
        changed_last = not _unchanged(n, res.kept, self.relabeled_indices_, factor)
        reusable = res.reusable_model
        for _ in range(1, self._n_rounds):
            if not changed_last:
                break
            state = dict(self.__dict__)
            swr = None if sw is None else sw[pos]
            if factor is not None:
                swr = factor[pos] if swr is None else swr * factor[pos]
            try:
                sub = self._clean_round(_take(X, pos), y_cur[pos], swr, None)
            except ValueError:
                sub = None
            if sub is None or len(self.selected_indices_) > sizes[-1]:
                # failed, or not converging: the models of the smaller data contradict
                # more rows than the round before acted on
                self.__dict__.clear()
                self.__dict__.update(state)
                break
            selected.append(pos[self.selected_indices_])
            removed.append(pos[self.removed_indices_])
            touched.append(pos[self.relabeled_indices_])
            sizes.append(len(self.selected_indices_))
            if budget is not None:
                budget += self.auto_budget_
            changed_last = not _unchanged(len(pos), sub.kept, self.relabeled_indices_, sub.weights)
            y_cur = y_cur.astype(np.result_type(y_cur.dtype, sub.y_new.dtype), copy=True)
            y_cur[pos] = sub.y_new
            reusable = sub.reusable_model
            influence, harm = np.full(n, np.nan), np.full(n, np.nan)
            influence[pos], harm[pos] = self.influence_, self.harm_
            self.influence_, self.harm_ = influence, harm
            if "oof_loss_" in self.__dict__:
                loss = np.full(n, np.nan)
                loss[pos] = self.oof_loss_
                self.oof_loss_ = loss
            pos = pos[sub.kept]
            if factor is not None:
                factor[pos] *= sub.weights
                pos = pos[factor[pos] > 0]
        if factor is not None:  # the final fit: every row, weighted (as with one round)
            pos, reusable = np.arange(n, dtype=np.intp), None
            self.row_weights_ = factor
        self.selected_indices_ = np.concatenate(selected).astype(np.intp)
        self.removed_indices_ = np.concatenate(removed).astype(np.intp)
        if self._action != "remove":
            rows = np.unique(np.concatenate(touched))
            rows = rows[np.isin(rows, pos) & (y_cur[rows] != y[rows])].astype(np.intp)
            self.relabeled_indices_ = rows
            self.relabeled_from_, self.relabeled_to_ = y[rows], y_cur[rows]
        self.kept_indices_ = pos
        self.round_sizes_ = np.asarray(sizes, dtype=np.intp)
        if budget is not None:
            self.auto_budget_ = budget
        return _Cleaned(X, y, sw, pos, y_cur, reusable, res.template, factor)

    def _check_trusted(self, trusted_set, n):
        """``trusted_set`` as ``(X, y, sample_weight or None)``, or None; a list of
        fractions needs one."""
        many = isinstance(self.fraction, (list, tuple))
        if trusted_set is None:
            if many:
                raise ValueError(
                    f"fraction={self.fraction!r} lists candidates to compare on rows "
                    "whose labels you trust: pass them to fit as trusted_set=(X_trusted, "
                    "y_trusted); without such rows, give one fraction and let "
                    "GridSearchCV compare them"
                )
            return None
        if not isinstance(trusted_set, (tuple, list)) or len(trusted_set) not in (2, 3):
            raise ValueError(
                "trusted_set must be a tuple (X_trusted, y_trusted) or (X_trusted, "
                f"y_trusted, sample_weight_trusted), got {type(trusted_set).__name__}"
                + (f" of length {len(trusted_set)}" if hasattr(trusted_set, "__len__") else "")
            )
        Xt, yt = trusted_set[0], trusted_set[1]
        swt = trusted_set[2] if len(trusted_set) == 3 else None
        n_x, n_y = _num_samples(Xt), _num_samples(yt)
        if n_x != n_y or n_x == 0:
            raise ValueError(
                f"trusted_set has {n_x} rows of X and {n_y} targets; pass one target per "
                "row (and at least one row)"
            )
        if swt is not None and _num_samples(swt) != n_x:
            raise ValueError(
                f"trusted_set's sample weights have {_num_samples(swt)} entries for {n_x} rows"
            )
        return Xt, yt, swt

    def _choose_on_trusted(self, data, harm, oof, full_model, trusted_set, bar):
        """Act as each candidate fraction says, refit, score on the trusted rows and keep
        the best (ties: the earlier candidate). Sets ``fraction_`` and
        ``trusted_scores_``."""
        from sklearn.metrics import check_scoring

        X, y, sample_weight, template, is_clf = data
        n = len(y)
        scorer = check_scoring(template, scoring=self.scoring)
        Xt, yt, swt = trusted_set
        scores, best = [], None
        for f in self._candidates():
            selected = self._select(harm, y, self._budget(n, y, oof, is_clf, f))
            try:
                kept, y_new, changed, weights = self._act(
                    X, y, sample_weight, template, selected, oof, is_clf, bar
                )
            except ValueError:  # would leave a class without rows: not a candidate
                scores.append(np.nan)
                bar.step("candidate")
                continue
            if _unchanged(n, kept, changed, weights) and full_model is not None:
                model = full_model
            else:
                sw = _final_weights(sample_weight, kept, weights)
                model = _fit_model(clone(template), _take(X, kept), y_new[kept], sw)
            extra = {} if swt is None else {"sample_weight": swt}
            scores.append(float(scorer(model, Xt, yt, **extra)))
            bar.step("candidate")
            if best is None or scores[-1] > best[0]:
                best = (scores[-1], f, selected, kept, y_new, changed, weights, model)
        if best is None:
            raise ValueError(
                f"every candidate fraction {self.fraction!r} would leave a class without "
                "rows; include smaller fractions"
            )
        self.trusted_scores_ = np.asarray(scores)
        self.fraction_ = best[1]
        finite = self.trusted_scores_[np.isfinite(self.trusted_scores_)]
        if len(finite) > 1 and np.all(finite == finite[0]):
            warnings.warn(
                f"every candidate fraction scored {finite[0]:.6g} on the {len(yt)} trusted "
                f"rows, so they cannot tell the candidates apart (kept the first, "
                f"{best[1]!r}). If the trusted rows are also in X, every candidate is "
                "scored on rows it trained on: hold them out of X. Otherwise use more "
                'trusted rows or a finer scoring (e.g. scoring="roc_auc").',
                UserWarning,
                stacklevel=_outside_stacklevel(),
            )
        return best[2:]

    def _score(self, X, y, sample_weight, template, folds, bar):
        """Influence of every row (NaN where unscored), the out-of-fold predictions
        and losses ``(pred, loss)`` if computed (else ``None``), and the model fitted
        on all rows if one was."""
        n = X.shape[0]
        sw = (lambda idx: None) if sample_weight is None else (lambda idx: sample_weight[idx])
        influence = np.full(n, np.nan)
        if self.criterion == "self":
            model = _fit_model(clone(template), X, y, sample_weight)
            bar.step("model")
            method = self._method_for(model).fit(X, y, sample_weight=sample_weight)
            influence[:] = method.self_influence()
            bar.step("influence")
            self.method_ = method
            return influence, None, model
        if self.criterion == "validation":
            strat = y if (is_classifier(template) and self._stratifiable(y)) else None
            tr, va = train_test_split(
                np.arange(n),
                test_size=self.validation_size,
                random_state=self.random_state,
                stratify=strat,
            )
            tr, va = np.sort(tr), np.sort(va)
            Xtr = _take(X, tr)
            model = _fit_model(clone(template), Xtr, y[tr], sw(tr))
            bar.step("model")
            method = self._method_for(model).fit(Xtr, y[tr], sample_weight=sw(tr))
            influence[tr] = method.global_influence(_take(X, va), y[va])
            bar.step("influence")
            self.method_ = method
            return influence, None, None
        # out-of-fold: each row's influence on the held-out folds of the models that
        # were trained with it, averaged over those models
        total = np.zeros(n)
        count = np.zeros(n)
        is_clf = is_classifier(template)
        oof = _OutOfFold(n, self._classes)
        for tr, va in folds:
            Xtr = _take(X, tr)
            model = _fit_model(clone(template), Xtr, y[tr], sw(tr))
            method = self._method_for(model).fit(Xtr, y[tr], sample_weight=sw(tr))
            Xva = _take(X, va)
            total[tr] += method.global_influence(Xva, y[va])
            count[tr] += 1
            oof.put(va, *self._fold_predict(model, Xva, is_clf), y.dtype if is_clf else None)
            bar.step("fold")
        scored = count > 0
        influence[scored] = total[scored] / count[scored]
        return influence, oof.finish(y, self.loss_weight > 0), None

    @staticmethod
    def _stratifiable(y):
        _, counts = np.unique(y, return_counts=True)
        return counts.min() >= 2

    def _blend(self, harm, loss):
        """``(1 - w) * rank(harm) + w * rank(loss)``, ranks scaled to (0, 1]."""
        from scipy.stats import rankdata

        w = self.loss_weight
        out = np.full(len(harm), np.nan)
        scored = np.flatnonzero(~np.isnan(harm))
        m = len(scored)
        if m:
            r_harm = rankdata(harm[scored]) / m
            r_loss = rankdata(loss[scored]) / m
            out[scored] = (1.0 - w) * r_harm + w * r_loss
        return out

    def _candidates(self):
        """The candidate fractions: ``fraction`` itself, or its entries when a list."""
        f = self.fraction
        if isinstance(f, (list, tuple)):
            return list(f) if len(f) else [None]
        return [f]

    def _per_class_contradicted(self, y, oof):
        """``balance="joint"``: class -> number of its rows the out-of-fold
        probabilities confidently assign to another class (else ``None``)."""
        if self._balance != "joint":
            return None
        other = oof.confidently_other(np.searchsorted(self._classes, y))
        return {c: int(np.sum(other & (y == c))) for c in self._classes.tolist()}

    def _auto(self):
        return any(isinstance(f, str) and f == "auto" for f in self._candidates())

    def _budget(self, n, y, oof, is_clf, fraction):
        """How many rows to act on: ``n_rows``, ``floor(fraction * n)`` or, with
        ``fraction="auto"``, the rows the out-of-fold models contradict."""
        if self.n_rows is not None:
            return self.n_rows
        if not (isinstance(fraction, str) and fraction == "auto"):
            return int(np.floor(fraction * n + 1e-9))
        pred = oof.pred
        if is_clf and oof.proba is not None:
            self.auto_budget_ = int(oof.confidently_other(np.searchsorted(self._classes, y)).sum())
        elif is_clf:
            self.auto_budget_ = int(np.sum(pred != y))
        else:
            res = np.asarray(y, dtype=np.float64) - pred
            mad = np.median(np.abs(res - np.median(res)))
            self.auto_budget_ = int(np.sum(np.abs(res - np.median(res)) > 3 * 1.4826 * mad))
        return self.auto_budget_

    def _select(self, harm, y, budget):
        """Indices of the rows to act on, most harmful first (ties: lower index)."""
        n = len(harm)
        if budget > n:
            raise ValueError(
                f"n_rows={self.n_rows} exceeds the {n} training rows; use fraction to "
                "scale with the data (e.g. inside GridSearchCV)"
            )
        scored = np.flatnonzero(~np.isnan(harm))
        order = scored[np.lexsort((scored, -harm[scored]))]
        if self._balance in ("class", "joint"):
            weights = self._joint_counts if self._balance == "joint" else None
            chosen = order[_class_quota_mask(y[order], min(budget, len(order)), weights)]
        else:
            chosen = order[:budget]
        if self.threshold is not None:
            chosen = chosen[harm[chosen] > self.threshold]
        return chosen.astype(np.intp)

    def _act(self, X, y, sample_weight, template, selected, oof, is_clf, bar):
        n = len(y)
        if self._action == "remove":
            kept = np.setdiff1d(np.arange(n), selected).astype(np.intp)
            if len(kept) == 0:
                raise ValueError(
                    f"cleaning would remove all {n} training rows; lower fraction or "
                    "n_rows, or set a threshold"
                )
            if is_clf:
                self._check_classes(y, y[kept], len(selected))
            return kept, y, np.empty(0, dtype=np.intp), None
        # relabel, reweight, hybrid
        kept = np.arange(n, dtype=np.intp)
        if len(selected) == 0:
            weights = np.ones(n) if self._action == "reweight" else None
            return kept, y, np.empty(0, dtype=np.intp), weights
        if oof is None:
            oof = self._oof_predict(X, y, sample_weight, template, is_clf, None, bar)
        if self._action == "reweight":
            return kept, y, np.empty(0, dtype=np.intp), self._reweight(y, selected, oof)
        if self._action == "hybrid":
            return self._hybrid(y, selected, oof)
        new = oof.pred[selected]
        y_new = y.astype(np.result_type(y.dtype, new.dtype), copy=True) if not is_clf else y.copy()
        y_new[selected] = new
        changed = selected[y_new[selected] != y[selected]]
        if is_clf:
            self._check_classes(y, y_new, len(selected), verb="relabelling")
        return kept, y_new, changed, None

    #: ``action="hybrid"``: a selected row is relabelled when the out-of-fold
    #: probability of the class the confident joint names exceeds that of its label by
    #: at least this much
    _hybrid_margin = 0.5
    #: ``action="reweight"``: ``"joint"``, 0 for the selected rows the confident joint
    #: counts in another class and the out-of-fold probability of the label for the
    #: others (the documented rule); ``"proba"``, that probability for every selected
    #: row (the cleaning benchmark's pilot: worse than removal, kept for it)
    _reweight_rule = "joint"

    def _reweight(self, y, selected, oof):
        """``action="reweight"``: the weight factor of every row (1 if not selected)."""
        codes = np.searchsorted(self._classes, y)
        weights = np.ones(len(y))
        weights[selected] = oof.proba[selected, codes[selected]]
        if self._reweight_rule == "joint":
            other = oof.confidently_other(codes)
            weights[selected[other[selected]]] = 0.0
        return weights

    def _hybrid(self, y, selected, oof):
        """``action="hybrid"``: relabel the selected rows whose out-of-fold
        probabilities name another class surely, remove the others."""
        n = len(y)
        codes = np.searchsorted(self._classes, y)
        other, best = oof.confident_class(codes)
        p = oof.proba
        s_codes, s_best = codes[selected], best[selected]
        gap = p[selected, s_best] - p[selected, s_codes]
        sure = other[selected] & (gap >= self._hybrid_margin)
        changed = selected[sure].astype(np.intp)
        y_new = y.copy()
        y_new[changed] = self._classes[best[changed]]
        kept = np.setdiff1d(np.arange(n), selected[~sure]).astype(np.intp)
        if len(kept) == 0:
            raise ValueError(
                f"cleaning would remove all {n} training rows; lower fraction or "
                "n_rows, or set a threshold"
            )
        self._check_classes(y, y_new[kept], len(selected), verb="relabelling or removing")
        return kept, y_new, changed, None

    def _check_classes(self, y, y_after, k, verb="removing"):
        present = set(np.unique(y_after).tolist())
        for c in self._classes.tolist():
            if c not in present:
                n_c = int(np.sum(y == c))
                raise ValueError(
                    f"cleaning would leave no row of class {c!r} ({n_c} row(s) before, "
                    f"{verb} {k} of {len(y)} rows); lower fraction or n_rows, or set a "
                    "threshold"
                )

    def _oof_predict(self, X, y, sample_weight, template, is_clf, folds, bar):
        """Out-of-fold predictions, per-row losses and (classifiers) probabilities,
        as an :class:`_OutOfFold`."""
        n = len(y)
        if folds is None:
            folds = self._splitter(is_clf, y).split(np.empty((n, 1)), y)
        oof = _OutOfFold(n, self._classes)
        for tr, va in folds:
            sw = None if sample_weight is None else sample_weight[tr]
            model = _fit_model(clone(template), _take(X, tr), y[tr], sw)
            oof.put(
                va, *self._fold_predict(model, _take(X, va), is_clf), y.dtype if is_clf else None
            )
            bar.step("out-of-fold fit")
        return oof.finish(y, self.loss_weight > 0)

    def _fold_predict(self, model, X, is_clf):
        """The model's predictions on held-out rows and (classifiers with
        ``predict_proba``) their probabilities over all training classes (``None``
        otherwise)."""
        pred = np.asarray(model.predict(X)).reshape(-1)
        proba = None
        if is_clf and hasattr(model, "predict_proba"):
            P = np.asarray(model.predict_proba(X))
            proba = np.zeros((len(pred), len(self._classes)))
            proba[:, np.searchsorted(self._classes, np.asarray(model.classes_))] = P
        return pred, proba

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.input_tags.sparse = False
        if self.estimator is None:
            tags.input_tags.allow_nan = True
        else:
            tags.input_tags.allow_nan = get_tags(self.estimator).input_tags.allow_nan
        return tags


# --------------------------------------------------------------------- cleaner
class InfluenceCleaner(_BaseInfluenceCleaning):
    """Fit a model on training data cleaned by influence: down-weight, drop or relabel
    harmful rows.

    ``fit`` fits a clone of ``estimator``, scores every training row with an influence
    method (``method``, BoostIn by default), down-weights, removes or relabels the most
    harmful rows and fits a fresh clone of ``estimator`` on the result. Because everything
    happens inside ``fit``, :class:`~sklearn.model_selection.GridSearchCV` can choose
    how much to clean and by which method, and each cross-validation fold scores
    influence on its own training part only.

    Parameters
    ----------
    estimator : object, default=None
        The model to clean for: any model skinfluence supports (LightGBM, XGBoost,
        CatBoost, scikit-learn gradient boosting and forests, or a ``Pipeline`` ending
        in one). A fitted model is cloned (its fitted state is not used). ``None``:
        a small ``HistGradientBoostingClassifier`` / ``Regressor`` for the task.
    method : influence estimator, default=None
        How rows are scored, e.g. ``BoostIn()`` (the default), ``LeafInfluence()`` or
        ``TREX()``. Its own ``estimator`` parameter is replaced by the model fitted
        here; its other parameters are kept (``method__<param>`` in a grid).
    fraction : float in [0, 1], "auto" or list of those, default="auto"
        Share of the training rows to act on (the ``floor(fraction * n_samples)`` most
        harmful). ``0`` fits the model on the data as given (the baseline a grid search
        compares with). The default, ``"auto"`` with ``loss_weight=0.5``, is
        the setting the cleaning benchmark supports (see the user guide's page on
        cleaning noisy labels). A list, e.g. ``[0.0, 0.05, 0.1, "auto"]``: candidates compared
        on rows whose labels you trust, given to ``fit`` as ``trusted_set``; each
        candidate's cleaned model is fitted and scored by ``scoring`` on them, and the
        best is kept (``fraction_``; ties: the earlier candidate). ``"auto"``: as many
        rows as the out-of-fold models (``cv`` folds) contradict. Classifiers with
        ``predict_proba``: the rows that the out-of-fold probabilities confidently
        assign to another class (each class ``j`` has the threshold ``t_j``, the mean
        out-of-fold probability of ``j`` over the rows labelled ``j``; a row counts
        when, among the classes whose probability reaches their threshold, the most
        probable is not its label: the off-diagonal count of the confident joint of
        Northcutt et al. [2]_); other classifiers, the rows whose out-of-fold predicted
        class is not their label; regressors, the rows whose out-of-fold residual is
        more than 3 scaled median absolute deviations (``3 * 1.4826 * MAD``) from the
        median residual. The count is ``auto_budget_``; the rows acted on are still the
        most harmful by ``criterion`` (and ``loss_weight``), not necessarily the
        contradicted ones.
    n_rows : int, default=None
        Number of rows to act on; overrides ``fraction``.
    threshold : float, default=None
        Act only on rows whose harm (see ``harm_``) exceeds it, among the rows allowed
        by ``fraction`` / ``n_rows``. With ``fraction=1``: act on every row above it.
    criterion : {"self", "validation", "oof"}, default="self"
        How harm is measured.

        - ``"self"``: the row's self-influence, from the model fitted on all rows
          (largest first: rows the model fits only by memorising them, typical of
          wrong labels). One model fit and one influence fit.
        - ``"validation"``: minus the row's global influence on an internal validation
          split of ``validation_size`` (its total effect on the validation loss, most
          negative first). Validation rows are not scored and never acted on.
        - ``"oof"``: out of fold. For each of the ``cv`` folds, a model and method
          fitted on the other folds give the global influence of their rows on the
          fold; each row's influence is averaged over the models that saw it. Every
          row is scored; ``cv`` model and influence fits.
    action : {"auto", "remove", "relabel", "reweight", "hybrid"}, default="auto"
        What happens to the selected rows. ``"auto"``: ``"reweight"`` for a classifier
        with ``predict_proba`` in :class:`InfluenceCleaner`, ``"remove"`` otherwise
        (regressors, other classifiers, :class:`InfluenceSampler`); the action applied
        is ``action_``. ``"remove"``: drop them. ``"relabel"``:
        replace their target by the out-of-fold prediction of the model
        (classification: the predicted class; regression: the predicted value) and
        keep every row. ``"reweight"``: fit the final model on every row with sample
        weights: a selected row that the confident joint (see ``fraction``) counts in
        another class gets weight 0 (it is removed in effect), any other selected row
        has its weight multiplied by its out-of-fold probability of its own label (in
        [0, 1]), the rows not selected keep theirs (a ``sample_weight`` given to
        ``fit`` is multiplied, not replaced); see ``row_weights_``. ``"hybrid"``:
        relabel the selected rows that the confident joint counts in another class
        and whose out-of-fold probability of that class exceeds the probability of
        their label by at least 0.5, to that class, and remove the other selected
        rows.
        ``"reweight"`` and ``"hybrid"`` need a classifier with ``predict_proba``
        (``cv`` extra model fits unless the out-of-fold predictions are made anyway);
        :class:`InfluenceSampler`, which returns rows, refuses ``"reweight"``.
    balance : {"auto", None, "class", "scale", "joint"}, default="auto"
        How the budget is shared among classes (classifiers only). ``"auto"``:
        ``"joint"`` for classifiers with ``predict_proba``, ``None`` otherwise (and for
        regressors). ``None``: the most harmful rows overall. ``"class"``: every class
        gets a share of the budget proportional to its number of rows (largest
        remainders), filled with its own most harmful rows, so cleaning does not thin
        out one class (influence scales differ between classes: on imbalanced data the
        rarer class tends to have the larger self-influence). ``"scale"``: the harm is
        standardised within each class (minus the class median, over ``1.4826`` times
        the class's median absolute deviation) and the most harmful rows overall are
        taken, so a class gets more of the budget only where its rows stand out from
        their own class. ``"joint"``: every class gets a share of the budget
        proportional to the number of its rows that the out-of-fold probabilities
        confidently assign to another class (the rows of the confident joint's
        off-diagonal, see ``fraction``; by class size when no row is), filled with its
        own most harmful rows; with ``fraction="auto"`` each class acts on exactly that
        many rows. Needs a
        classifier with ``predict_proba``; ``cv`` extra model fits unless they are made
        anyway.
    loss_weight : float in [0, 1], default=0.5
        Blend the influence ranking with the out-of-fold loss of each row: the
        ranking score becomes ``(1 - loss_weight) * r_harm + loss_weight * r_loss``,
        where ``r_harm`` and ``r_loss`` are the ranks (scaled to (0, 1]) of the harm
        and of the row's loss under a model fitted on the other ``cv`` folds
        (log-loss of the predicted probabilities for classifiers, squared error for
        regressors). ``0``: influence only (no extra fits); ``1``: the out-of-fold
        loss only (the loss/residual baseline). With ``criterion="oof"`` the fold
        models are reused; otherwise ``cv`` extra model fits.
    n_rounds : int or "auto", default="auto"
        Repeat the cleaning up to this many times. ``"auto"``: 2 when the action is
        ``"reweight"`` (and ``fraction`` is not a list), else 1. Each round after the
        first scores, selects and acts afresh (new influence and out-of-fold fits) on the rows and
        labels the previous round left, so the budget (e.g. ``fraction="auto"``) is
        recomputed on the cleaner data. The repetition stops early when a round
        changes nothing (e.g. the ``"auto"`` budget is 0); a round after the first that
        would act on more rows than the round before (the cleaning is not converging:
        on the smaller data the out-of-fold models contradict more rows, as happens on
        a few hundred rows or fewer) or would fail (e.g. leave a class without rows)
        is not applied and ends it.
        ``1``: one round (the cleaning of earlier versions, unchanged). Each round
        costs what one ``fit`` of the cleaning costs. With ``action="reweight"`` a
        round cleans the rows of positive weight, fitted with the weights so far, and
        multiplies the weights (``row_weights_`` is the product). Not with a list of
        candidate fractions.
    validation_size : float or int, default=0.2
        Size of the internal validation split (``criterion="validation"``), as in
        :func:`~sklearn.model_selection.train_test_split`.
    cv : int or cross-validation splitter, default=5
        Folds of the out-of-fold models (``criterion="oof"``, ``loss_weight``,
        ``fraction="auto"``, ``balance="joint"`` and the actions other than
        ``"remove"`` read their predictions). An integer gives shuffled (stratified
        when every class has enough rows) folds seeded by ``random_state``. A splitter
        that holds a row out more than once (e.g.
        :class:`~sklearn.model_selection.RepeatedStratifiedKFold`) gives it the mean
        of those models' probabilities (the mean prediction for regressors).
    n_repeats : int, default=2
        With an integer ``cv``: split into ``cv`` folds this many times, each time
        differently (:class:`~sklearn.model_selection.RepeatedStratifiedKFold`, or
        :class:`~sklearn.model_selection.RepeatedKFold` for regressors), and average
        each row's out-of-fold probabilities over the repeats. The average is less
        noisy than one split's, so the confident joint and the losses single out the
        mislabelled rows more reliably; each repeat costs ``cv`` more model fits per
        round. Not used when ``cv`` is a splitter (it defines the folds).
    scoring : str or callable, default=None
        How candidate fractions are compared on ``trusted_set`` (only then), as
        :func:`~sklearn.metrics.check_scoring` takes it: ``None`` is the model's own
        ``score`` (accuracy or R^2); ``"roc_auc"`` tells small differences apart on
        fewer trusted rows than accuracy does. Log-loss is a poor judge here: a model
        fitted to noisy labels hedges its probabilities, which log-loss rewards even
        when cleaning raised accuracy and AUC.
    random_state : int, RandomState instance or None, default=None
        Seed of the validation split and of the folds (not of the model: set the
        model's own seed).
    verbose : int, default=0
        Show a progress bar over the stages of ``fit`` (needs ``tqdm``).

    Attributes
    ----------
    estimator_ : object
        The model fitted on the cleaned training data.
    action_ : str
        The action applied (``action`` with ``"auto"`` resolved).
    method_ : influence estimator
        The fitted influence estimator that scored the rows (criteria ``"self"`` and
        ``"validation"``; with ``"oof"`` one estimator per fold is used and discarded).
    influence_ : ndarray of shape (n_samples,)
        The raw measurement (package sign: positive = helpful): the self-influence, or
        the global influence on the validation split or the held-out folds. NaN for
        rows that were not scored. With ``n_rounds > 1``, ``influence_``, ``harm_``
        and ``oof_loss_`` are those of the last round applied (NaN for the rows
        removed before it).
    harm_ : ndarray of shape (n_samples,)
        The ranking score, larger = more harmful: ``influence_`` for ``"self"``,
        ``-influence_`` otherwise; with ``loss_weight > 0`` the blended rank score
        (in (0, 1]); with ``balance="scale"`` standardised within each class. NaN for
        rows that were not scored.
    oof_loss_ : ndarray of shape (n_samples,)
        Each row's out-of-fold loss (only when ``loss_weight > 0``).
    auto_budget_ : int
        The number of rows ``fraction="auto"`` allowed (only then; summed over the
        rounds with ``n_rounds > 1``).
    fraction_ : float or "auto"
        The candidate fraction chosen on ``trusted_set`` (only when one was given).
    trusted_scores_ : ndarray of shape (n_candidates,)
        The score of each candidate of ``fraction`` on ``trusted_set`` (NaN for a
        candidate that would leave a class without rows; only when one was given).
    selected_indices_ : ndarray of int
        Positions of the rows acted on, most harmful first (round after round with
        ``n_rounds > 1``).
    removed_indices_ : ndarray of int
        Positions of the removed rows (empty with ``"relabel"`` and ``"reweight"``),
        most harmful first.
    kept_indices_ : ndarray of int
        Positions (sorted) of the rows the final model was fitted on.
    relabeled_indices_ : ndarray of int
        Positions of the rows whose label was changed (``action="relabel"`` or
        ``"hybrid"``; a selected row whose out-of-fold prediction equals its label is
        unchanged; with ``n_rounds > 1``, the kept rows whose final label differs from
        the given one, ascending).
    relabeled_from_, relabeled_to_ : ndarray
        Their old and new labels (``action="relabel"`` or ``"hybrid"`` only).
    row_weights_ : ndarray of shape (n_samples,)
        ``action="reweight"`` only: the factor of each row's weight in the final fit
        (0 for the selected rows the confident joint counts in another class, the
        out-of-fold probability of its label for the other selected rows, 1 for the
        rows not selected).
    round_sizes_ : ndarray of int
        The number of rows acted on in each round applied (one entry when
        ``n_rounds=1``).
    classes_ : ndarray
        Class labels of the fitted model (classifiers).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (DataFrame input only).

    See Also
    --------
    InfluenceSampler : the same cleaning as a ``fit_resample`` step of an imblearn
        pipeline.
    skinfluence.BoostIn : the default influence method.

    Notes
    -----
    Row positions are 0-based positions in the ``X`` given to ``fit`` (not DataFrame
    index labels). The cost of ``fit`` is the scoring (``"self"`` and ``"validation"``:
    one model fit plus one influence fit and a self- or global-influence pass;
    ``"oof"``: ``cv`` of each) plus the final fit. ``loss_weight > 0`` and
    ``fraction="auto"`` add ``cv * n_repeats`` model fits for out-of-fold predictions
    unless ``criterion="oof"`` (whose fold models are reused); so does relabelling with
    ``"self"`` or ``"validation"`` when some row is selected. All this is per round:
    the defaults for a classifier (2 rounds, ``cv=5``, ``n_repeats=2``) make up to 23
    model fits and 2 influence fits: on 1,000 rows with LightGBM, about 4 times what
    cleanlab's ``CleanLearning`` costs and 3 times the single removal round of earlier
    versions (5 times cleanlab with HistGradientBoosting). With ``"self"`` and nothing
    selected, the scoring model is reused as ``estimator_``. Memory is that of the
    influence method's ``fit`` (BoostIn: about 20 bytes per training row and tree);
    no ``n x n`` matrix is formed.

    Cleaning that would leave a class without rows, or no rows at all, raises a
    ``ValueError``; inside ``GridSearchCV`` such a candidate gets ``error_score``.

    References
    ----------
    .. [1] J. Brophy, Z. Hammoudeh and D. Lowd. Adapting and Evaluating
       Influence-Estimation Methods for Gradient-Boosted Decision Trees. JMLR 24(154),
       2023 (section on fixing noisy labels by self-influence).
    .. [2] C. Northcutt, L. Jiang and I. Chuang. Confident Learning: Estimating
       Uncertainty in Dataset Labels. Journal of Artificial Intelligence Research 70,
       2021 (the confident joint).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skinfluence import BoostIn
    >>> from skinfluence.cleaning import InfluenceCleaner
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 4))
    >>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
    >>> y[:30] = 1 - y[:30]                          # 10% wrong labels
    >>> model = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    >>> cleaner = InfluenceCleaner(model, BoostIn(), random_state=0).fit(X, y)
    >>> cleaner.action_, cleaner.round_sizes_       # the defaults: reweight, 2 rounds
    ('reweight', array([27,  4]))
    >>> dropped = np.flatnonzero(cleaner.row_weights_ == 0)
    >>> len(dropped), int((dropped < 30).sum())     # weight 0: 20 of 26 were flipped
    (26, 20)
    >>> cleaner.predict(X[:3]).shape
    (3,)
    >>> remover = InfluenceCleaner(model, BoostIn(), fraction=0.1, action="remove")
    >>> remover.fit(X, y).removed_indices_.shape, remover.kept_indices_.shape
    ((30,), (270,))
    >>> search = GridSearchCV(remover, {"fraction": [0.0, 0.05, 0.1]}, cv=3).fit(X, y)
    >>> search.best_params_["fraction"] in (0.0, 0.05, 0.1)
    True
    """

    def fit(self, X, y, sample_weight=None, trusted_set=None):
        """Score the training rows, clean them and fit the model on the result.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training data, in any format the model takes (numpy, pandas, polars; NaN
            and categoricals as the model allows).
        y : array-like of shape (n_samples,)
            Target.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights, given to the model, to the influence method and (for the kept
            rows) to the final fit.
        trusted_set : tuple (X_trusted, y_trusted[, sample_weight_trusted]), default=None
            Rows, not in ``X``, whose labels you trust (a small hand-checked sample is
            enough to rank a few candidates): the candidates of a list ``fraction``
            are compared on them. They are only scored, never trained on. Inside a
            ``Pipeline`` or ``GridSearchCV`` it reaches this step by scikit-learn's
            metadata routing (``set_fit_request(trusted_set=True)``), unsplit by the
            folds; ``X_trusted`` must be in the format this step receives.

        Returns
        -------
        self : object
        """
        res = self._clean(X, y, sample_weight, trusted_set)
        if res.reusable_model is not None:
            self.estimator_ = res.reusable_model
        else:
            kept = res.kept
            sw = _final_weights(res.sample_weight, kept, res.weights)
            self.estimator_ = _fit_model(
                clone(res.template), _take(res.X, kept), res.y_new[kept], sw
            )
        return self

    @property
    def classes_(self):
        """Class labels of the fitted model."""
        return self.estimator_.classes_

    @available_if(_estimator_has("predict"))
    def predict(self, X):
        """Predict with the model fitted on the cleaned data.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities of the model fitted on the cleaned data.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        """Log class probabilities of the model fitted on the cleaned data.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X):
        """Decision function of the model fitted on the cleaned data.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self.estimator_.decision_function(X)

    @available_if(_estimator_has("score"))
    def score(self, X, y, sample_weight=None):
        """The fitted model's own ``score`` (accuracy or R^2) on ``(X, y)``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        if sample_weight is None:
            return self.estimator_.score(X, y)
        return self.estimator_.score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.estimator is not None:
            sub = get_tags(self.estimator)
            tags.estimator_type = sub.estimator_type
            tags.classifier_tags = sub.classifier_tags
            tags.regressor_tags = sub.regressor_tags
        return tags


# --------------------------------------------------------------------- sampler
class InfluenceSampler(_BaseInfluenceCleaning):
    """Drop or relabel harmful training rows as a ``fit_resample`` step.

    The cleaning of :class:`InfluenceCleaner` without the final fit: ``fit_resample(X,
    y)`` returns the cleaned ``(X, y)``. It follows imbalanced-learn's sampler
    interface by duck typing, so it is a step of an ``imblearn.pipeline.Pipeline``
    (which calls ``fit_resample`` during ``fit`` only, and skips the step when
    predicting) without making imbalanced-learn a dependency of skinfluence.

    Parameters
    ----------
    estimator, method, fraction, n_rows, threshold, criterion, action, balance, \
loss_weight, n_rounds, validation_size, cv, n_repeats, scoring, random_state, verbose
        As in :class:`InfluenceCleaner`; ``estimator`` is the model used for scoring
        (and for the out-of-fold predictions of ``action="relabel"``).
        ``action="reweight"`` is refused (a sampler returns rows, not weights).

    Attributes
    ----------
    sample_indices_ : ndarray of int
        Positions of the rows returned by ``fit_resample`` (as in imbalanced-learn).
    kept_indices_, removed_indices_, selected_indices_, relabeled_indices_, \
relabeled_from_, relabeled_to_, influence_, harm_, oof_loss_, auto_budget_, method_, \
fraction_, trusted_scores_, round_sizes_, action_
        As in :class:`InfluenceCleaner` (``action_`` is never ``"reweight"``).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (DataFrame input only).

    See Also
    --------
    InfluenceCleaner : the same cleaning followed by a fit, as a predictor.

    Notes
    -----
    The output keeps the input types: a pandas DataFrame / Series stays one (with its
    index restricted to the kept rows), likewise polars. Costs as in
    :class:`InfluenceCleaner` without the final fit.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skinfluence.cleaning import InfluenceSampler
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> sampler = InfluenceSampler(HistGradientBoostingClassifier(max_iter=10),
    ...                            fraction=0.05)
    >>> X_res, y_res = sampler.fit_resample(X, y)
    >>> X_res.shape, sampler.sample_indices_.shape
    ((190, 3), (190,))

    In an imbalanced-learn pipeline (cleaning happens in ``fit`` only)::

        from imblearn.pipeline import make_pipeline
        pipe = make_pipeline(InfluenceSampler(model, fraction=0.1), clone(model))
    """

    _weights_rows = False

    def fit(self, X, y, trusted_set=None):
        """Score and select the rows; ``fit_resample`` also returns them.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        trusted_set : tuple (X_trusted, y_trusted[, sample_weight_trusted]), default=None
            As in :meth:`InfluenceCleaner.fit`.

        Returns
        -------
        self : object
        """
        self._fit(X, y, trusted_set)
        return self

    def _fit(self, X, y, trusted_set=None):
        if self.action == "reweight":
            raise ValueError(
                "InfluenceSampler returns rows, not weights, so it cannot apply "
                "action='reweight' (that keeps every row and fits the model with "
                "weights); use InfluenceCleaner(action='reweight'), or 'remove', "
                "'relabel' or 'hybrid' here"
            )
        res = self._clean(X, y, None, trusted_set)
        self.sample_indices_ = res.kept
        return res.X, res.kept, res.y_new

    def fit_resample(self, X, y, trusted_set=None):
        """Clean ``(X, y)``: the kept rows, with their (possibly relabelled) targets.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        trusted_set : tuple (X_trusted, y_trusted[, sample_weight_trusted]), default=None
            As in :meth:`InfluenceCleaner.fit`.

        Returns
        -------
        X_resampled : same type as X, shape (n_kept, n_features)
        y_resampled : same type as y, shape (n_kept,)
        """
        X_val, kept, y_new = self._fit(X, y, trusted_set)
        X_out = _take(X if _is_dataframe(X) or hasattr(X, "shape") else X_val, kept)
        y_out = _with_y_like(y, y_new)
        return X_out, _take(y_out, kept)


# ------------------------------------------------------------ search diagnosis
def compare_to_baseline(search, baseline=None, *, confidence=0.95):
    """Can the search's folds tell its candidates from the baseline? Paired per fold.

    For every candidate of a fitted :class:`~sklearn.model_selection.GridSearchCV` (or
    any search with ``cv_results_`` and per-split test scores), the difference of its
    test score to the baseline candidate's, fold by fold, with the corrected resampled
    t interval of Nadeau and Bengio [1]_ (fold scores share training rows, so the plain
    t interval is too narrow: the variance is inflated by ``1/k + n_test/n_train``).

    Parameters
    ----------
    search : fitted search object
        E.g. ``GridSearchCV(InfluenceCleaner(...), {"fraction": [0, 0.05, "auto"]})``
        after ``fit``.
    baseline : dict or int, default=None
        The baseline candidate: its parameters (a dict that the candidate's parameters
        contain) or its index in ``cv_results_``. ``None``: the candidate whose
        ``fraction`` parameter (any parameter named ``fraction`` or ending in
        ``__fraction``) is 0.
    confidence : float, default=0.95
        Level of the intervals.

    Returns
    -------
    report : dict
        ``"params"`` (list of the candidates' parameters), ``"difference"`` (mean
        difference to the baseline per candidate), ``"low"``, ``"high"`` (interval
        bounds), ``"distinguishable"`` (interval excludes 0), ``"baseline"`` (index),
        ``"best"`` (``search.best_index_``) and ``"verdict"``: a sentence saying whether
        the search's pick beats the baseline beyond the fold-to-fold noise.

    Notes
    -----
    Noisy validation labels add noise the folds cannot average away; when the verdict
    says the pick is not distinguishable, compare the candidates on rows whose labels
    you trust (``InfluenceCleaner(fraction=[...]).fit(X, y, trusted_set=...)``).

    References
    ----------
    .. [1] C. Nadeau and Y. Bengio. Inference for the Generalization Error. Machine
       Learning 52, 239-281, 2003.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skinfluence.cleaning import InfluenceCleaner, compare_to_baseline
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 4))
    >>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
    >>> y[:45] = 1 - y[:45]
    >>> model = HistGradientBoostingClassifier(max_iter=20, random_state=0)
    >>> search = GridSearchCV(InfluenceCleaner(model), {"fraction": [0.0, 0.15]}, cv=3)
    >>> report = compare_to_baseline(search.fit(X, y))
    >>> report["baseline"], len(report["difference"])
    (0, 2)
    """
    from scipy import stats

    if not hasattr(search, "cv_results_"):
        from sklearn.exceptions import NotFittedError

        raise NotFittedError(f"this {type(search).__name__} has no cv_results_: call its fit first")
    res = search.cv_results_
    params = list(res["params"])
    k = sum(1 for key in res if key.startswith("split") and key.endswith("_test_score"))
    if k < 2:
        raise ValueError(
            "compare_to_baseline needs the per-fold test scores of at least 2 folds in "
            f"cv_results_ (found {k}); refit the search with cv >= 2"
        )
    if not isinstance(search.best_index_, numbers.Integral):
        raise ValueError("compare_to_baseline needs a search with a single metric")
    folds = np.array([res[f"split{i}_test_score"] for i in range(k)], dtype=float).T
    b = _baseline_index(params, baseline)
    diff = folds - folds[b]
    mean = diff.mean(axis=1)
    n = getattr(search, "n_splits_", k)
    ratio = 1.0 / (n - 1)  # test / train rows of k-fold splits
    var = diff.var(axis=1, ddof=1) * (1.0 / k + ratio)
    half = stats.t.ppf(0.5 + confidence / 2, k - 1) * np.sqrt(var)
    low, high = mean - half, mean + half
    best = int(search.best_index_)
    sure = bool(low[best] > 0 or high[best] < 0) and best != b
    if best == b:
        verdict = "the search picked the baseline"
    elif sure:
        verdict = (
            f"the pick differs from the baseline by {mean[best]:+.4g} "
            f"[{low[best]:+.4g}, {high[best]:+.4g}]: beyond the fold-to-fold noise"
        )
    else:
        verdict = (
            f"the pick differs from the baseline by {mean[best]:+.4g} "
            f"[{low[best]:+.4g}, {high[best]:+.4g}]: the folds cannot tell them apart; "
            "compare the candidates on rows whose labels you trust (trusted_set)"
        )
    return {
        "params": params,
        "difference": mean,
        "low": low,
        "high": high,
        "distinguishable": (low > 0) | (high < 0),
        "baseline": b,
        "best": best,
        "verdict": verdict,
    }


def _baseline_index(params, baseline):
    if isinstance(baseline, numbers.Integral) and not isinstance(baseline, bool):
        if not 0 <= baseline < len(params):
            raise ValueError(f"baseline={baseline} is not a candidate index (0..{len(params) - 1})")
        return int(baseline)
    if baseline is None:
        hits = [
            i
            for i, p in enumerate(params)
            if any(
                (name == "fraction" or name.endswith("__fraction"))
                and isinstance(v, numbers.Real)
                and not isinstance(v, bool)
                and v == 0
                for name, v in p.items()
            )
        ]
        what = "no candidate has fraction=0"
    elif isinstance(baseline, dict):
        hits = [i for i, p in enumerate(params) if all(p.get(q) == v for q, v in baseline.items())]
        what = f"no candidate has the parameters {baseline!r}"
    else:
        raise TypeError(f"baseline must be None, a dict or an index, got {type(baseline).__name__}")
    if not hits:
        raise ValueError(f"{what}; pass baseline= (its parameters or index)")
    return hits[0]
