"""Held-out score against the fraction cleaned: :class:`CleaningCurveDisplay`."""

import numbers

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._common import get_axes

_ABSENT = object()


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _short(v):
    """A compact text of a parameter value (estimators by their class name)."""
    if hasattr(v, "get_params"):
        return type(v).__name__
    return repr(v) if isinstance(v, str) else str(v)


def _resolve_param(params, param):
    """The searched parameter's full name: ``param`` itself, or the one routed name
    ending in ``__param`` (``param=None``: ``"fraction"``)."""
    names = sorted({k for p in params for k in p})
    want = "fraction" if param is None else param
    if want in names:
        return want
    routed = [n for n in names if n.endswith(f"__{want}")]
    if len(routed) == 1:
        return routed[0]
    found = "several: " + ", ".join(routed) if routed else "none"
    raise ValueError(
        f"the search has no parameter {want!r} (nor one routed name ending in "
        f"'__{want}': {found}); its parameters: {names}. Pass param= one of them."
    )


def _score_key(cv_results, search, scoring):
    """The ``cv_results_`` metric to draw and its name."""
    if scoring is None:
        if "mean_test_score" in cv_results:
            return "score", getattr(search, "scoring", None)
        refit = getattr(search, "refit", None)
        if isinstance(refit, str):
            return refit, refit
        metrics = sorted(k[len("mean_test_") :] for k in cv_results if k.startswith("mean_test_"))
        raise ValueError(f"the search scored several metrics {metrics}: pass scoring=")
    if f"mean_test_{scoring}" not in cv_results:
        metrics = sorted(k[len("mean_test_") :] for k in cv_results if k.startswith("mean_test_"))
        raise ValueError(f"the search has no metric {scoring!r}; its metrics: {metrics}")
    return scoring, scoring


def _levels(baseline):
    """``{label: (mean, std or None)}`` from a score, or a mapping of scores or of
    per-fold score arrays."""
    if baseline is None:
        return {}
    items = baseline.items() if isinstance(baseline, dict) else [("baseline", baseline)]
    out = {}
    for label, v in items:
        a = np.asarray(v, dtype=float)
        if a.ndim == 0:
            out[str(label)] = (float(a), None)
        elif a.ndim == 1 and a.size:
            out[str(label)] = (float(a.mean()), float(a.std()))
        else:
            raise ValueError(f"baseline {label!r} must be a score or a 1-D array of scores")
    return out


def _group(params, param, mean, std):
    """Candidates grouped by the other varying parameters: ``{label: [(x, mean,
    std)]}`` for numeric values of ``param`` and ``{label: (mean, std, index)}`` for the
    others (e.g. ``"auto"``, or candidates without the parameter)."""
    varying = sorted(
        {k for p in params for k in p if k != param and len({repr(q.get(k)) for q in params}) > 1}
    )
    series, levels = {}, {}
    for i, p in enumerate(params):
        label = ", ".join(f"{k}={_short(p[k])}" for k in varying if k in p) or None
        v = p.get(param, _ABSENT)
        if _is_number(v):
            series.setdefault(label, []).append((float(v), mean[i], std[i], i))
        else:
            what = f"without {param}" if v is _ABSENT else f"{param}={_short(v)}"
            levels[what if label is None else f"{label}, {what}"] = (mean[i], std[i], i)
    return series, levels


class CleaningCurveDisplay:
    """Held-out score against the fraction of training rows cleaned.

    From a fitted ``GridSearchCV`` (or any search with ``cv_results_``) over an
    :class:`~skinfluence.InfluenceCleaner` (alone or in a ``Pipeline``): the mean test
    score of each searched fraction with a band of one standard deviation over the
    folds, one curve per combination of the other searched parameters (e.g. one per
    influence method), the chosen candidate marked, and horizontal lines for
    reference scores (no cleaning, another cleaner) and for candidates whose
    fraction is not a number (``"auto"``). Create it with :meth:`from_cv_results`.

    Parameters
    ----------
    fraction : list of ndarray
        The searched values of the parameter, one array per curve (sorted).
    mean, std : list of ndarray
        Mean and standard deviation of the test score over the folds.
    name : list of str or None, default=None
        Legend label of each curve (:meth:`from_cv_results`: the other searched
        parameters, or ``"cleaned"`` when only the fraction varies).
    levels : dict, default=None
        ``{label: (mean, std or None)}``: horizontal reference lines (with a band
        when ``std`` is given).
    best : tuple (fraction, score) or None, default=None
        The chosen candidate, marked with a star.
    param : str, default="fraction"
        The searched parameter (an x-axis in percent when it is a fraction).
    score_name : str, default="score"
        Name of the score (the y-axis label).

    Attributes
    ----------
    lines_ : list of matplotlib Line2D
        The mean score curves.
    bands_ : list of matplotlib PolyCollection
        The +-std bands.
    best_ : matplotlib Line2D or None
        The marker of the chosen candidate.
    level_lines_ : list of matplotlib Line2D
        The horizontal reference lines, in the order of ``levels``.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skinfluence import InfluenceCleaner
    >>> from skinfluence.plotting import CleaningCurveDisplay
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(120, 3))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> y[:12] = 1 - y[:12]  # some wrong labels
    >>> model = HistGradientBoostingClassifier(max_iter=5, random_state=0)
    >>> search = GridSearchCV(InfluenceCleaner(model), {"fraction": [0.0, 0.05, 0.1]}, cv=3)
    >>> disp = CleaningCurveDisplay.from_cv_results(search.fit(X, y), baseline=0.8)
    >>> disp.lines_[0].get_xdata()
    array([ 0.,  5., 10.])
    >>> [t.get_text() for t in disp.ax_.get_legend().get_texts()][-1]
    'baseline'
    """

    def __init__(
        self,
        *,
        fraction,
        mean,
        std,
        name=None,
        levels=None,
        best=None,
        param="fraction",
        score_name="score",
    ):
        self.fraction = fraction
        self.mean = mean
        self.std = std
        self.name = name
        self.levels = levels
        self.best = best
        self.param = param
        self.score_name = score_name

    @classmethod
    def from_cv_results(cls, search, *, param=None, scoring=None, baseline=None, ax=None):
        """Draw the score per cleaned fraction of a fitted search.

        Parameters
        ----------
        search : fitted search estimator or dict
            A fitted ``GridSearchCV`` / ``RandomizedSearchCV`` (its ``cv_results_`` and
            ``best_index_``), or a ``cv_results_`` dict (nothing marked as chosen).
        param : str, default=None
            The searched parameter: its full name (``"cleaner__fraction"``) or the
            name the routed one ends with. None: ``"fraction"``.
        scoring : str, default=None
            Metric of a multi-metric search (default: the refit metric).
        baseline : float, array-like, or dict of those, default=None
            Reference scores drawn as horizontal lines: a score, an array of per-fold
            scores (mean line and +-std band, e.g. from ``cross_val_score`` of the
            model without cleaning), or ``{label: score or scores}`` (e.g. no cleaning
            and cleanlab). A single one is labelled ``"baseline"``.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        Returns
        -------
        display : CleaningCurveDisplay
        """
        if isinstance(search, dict):
            cv_results, best_index = search, None
        else:
            check_is_fitted(search, "cv_results_")
            cv_results, best_index = search.cv_results_, getattr(search, "best_index_", None)
        params = list(cv_results["params"])
        param = _resolve_param(params, param)
        metric, score_name = _score_key(cv_results, search, scoring)
        if scoring is not None and scoring != getattr(search, "refit", None):
            best_index = None  # the search chose by another metric
        mean = np.asarray(cv_results[f"mean_test_{metric}"], dtype=float)
        std = np.asarray(cv_results[f"std_test_{metric}"], dtype=float)
        series, other = _group(params, param, mean, std)
        if not series:
            raise ValueError(f"no candidate of the search has a numeric {param}")
        fractions, means, stds, best = [], [], [], None
        for points in series.values():
            points.sort()
            fractions.append(np.array([p[0] for p in points]))
            means.append(np.array([p[1] for p in points]))
            stds.append(np.array([p[2] for p in points]))
            best = next(((p[0], p[1]) for p in points if p[3] == best_index), best)
        levels = {}
        for label, (m, s, i) in other.items():
            levels[label + (" (chosen)" if i == best_index else "")] = (m, s)
        levels.update(_levels(baseline))
        disp = cls(
            fraction=fractions,
            mean=means,
            std=stds,
            name=["cleaned" if k is None else k for k in series],
            levels=levels,
            best=best,
            param=param,
            score_name=str(score_name) if isinstance(score_name, str) else "score",
        )
        return disp.plot(ax=ax)

    def plot(self, ax=None):
        """Draw the curves, bands, chosen candidate and reference lines.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.

        Returns
        -------
        display : CleaningCurveDisplay
        """
        ax, fig = get_axes(ax, f"{type(self).__name__}.plot")
        scale = 100.0 if self.param.endswith("fraction") else 1.0
        names = self.name if self.name is not None else [None] * len(self.fraction)
        self.lines_, self.bands_, self.level_lines_ = [], [], []
        for x, m, s, label in zip(self.fraction, self.mean, self.std, names):
            (line,) = ax.plot(scale * np.asarray(x), m, marker="o", label=label)
            band = ax.fill_between(scale * np.asarray(x), m - s, m + s, alpha=0.2,
                                   color=line.get_color())  # fmt: skip
            self.lines_.append(line)
            self.bands_.append(band)
        self.best_ = None
        if self.best is not None:
            x, y = self.best
            (self.best_,) = ax.plot(
                [scale * x], [y], marker="*", ms=14, ls="none", color="black",
                label=f"chosen ({self.param.split('__')[-1]}={x:g})",
            )  # fmt: skip
        for i, (label, (m, s)) in enumerate((self.levels or {}).items()):
            color = f"C{(len(self.lines_) + i) % 10}"
            line = ax.axhline(m, ls="--", lw=1, color=color, label=label)
            if s is not None:
                ax.axhspan(m - s, m + s, color=color, alpha=0.1)
            self.level_lines_.append(line)
        base = self.param.split("__")[-1]
        ax.set_xlabel("training rows cleaned (%)" if scale == 100 else base)
        ax.set_ylabel(f"held-out {self.score_name} (mean, +-std over folds)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        self.ax_, self.figure_ = ax, fig
        return self
