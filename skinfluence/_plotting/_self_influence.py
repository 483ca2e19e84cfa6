"""Noisy-label screening: :class:`SelfInfluenceDisplay`."""

import numbers

import numpy as np

from ._common import check_matplotlib
from ._rows import _n_rows, check_explainer


def _mask(value, n, what):
    """Boolean mask of ``n`` rows from a mask or from row positions (None stays None)."""
    if value is None:
        return None
    v = np.asarray(value)
    if v.dtype == bool:
        if v.shape != (n,):
            raise ValueError(f"{what} must be a boolean mask of shape ({n},); got {v.shape}")
        return v.copy()
    if v.ndim != 1 or (v.size and v.dtype.kind not in "iu"):
        raise ValueError(f"{what} must be a boolean mask or integer row positions")
    if v.size and (v.min() < 0 or v.max() >= n):
        raise ValueError(f"{what} has positions outside [0, {n})")
    out = np.zeros(n, dtype=bool)
    out[v] = True
    return out


def ranking(scores):
    """Positions of the scored (non-NaN) rows by decreasing score, ties to the lower
    position."""
    scored = np.flatnonzero(~np.isnan(scores))
    return scored[np.lexsort((scored, -scores[scored]))]


def precision_recall(order, noisy, n):
    """Fraction of all ``n`` rows inspected, precision and recall of the noisy rows
    after inspecting the first 1, 2, ... rows of ``order``."""
    hits = np.cumsum(noisy[order])
    k = np.arange(1, len(order) + 1)
    return k / n, hits / k, hits / noisy.sum()


def _top_fraction(scores, fraction):
    if not isinstance(fraction, numbers.Real) or not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")
    order = ranking(scores)
    return order[: int(np.floor(fraction * len(scores) + 1e-9))]


class SelfInfluenceDisplay:
    """Noisy-label screening: training rows ranked by a suspicion score.

    The left axes show the scores (e.g. self-influence, larger = more suspicious) in
    decreasing order, with the selected rows marked (and the truly noisy rows, when
    known). When the noisy rows are known, the right axes show the precision and the
    recall of finding them against the fraction of the training rows inspected in that
    order, and the precision of a random order (the noise rate). Create it with
    :meth:`from_estimator` or :meth:`from_predictions`; all parameters are stored as
    attributes.

    Parameters
    ----------
    scores : ndarray of shape (n_samples,)
        Per-row score, larger = more suspicious; NaN = not scored (left out of the
        ranking).
    selected : ndarray of bool of shape (n_samples,), default=None
        Rows to mark (e.g. those a cleaner acts on).
    noisy : ndarray of bool of shape (n_samples,), default=None
        The truly noisy rows, when known.

    Attributes
    ----------
    order_ : ndarray of int
        Positions of the scored rows, by decreasing score (ties: lower position).
    line_ : matplotlib Line2D
        The ranked scores (x: rank, 1 = highest).
    selected_ : matplotlib PathCollection or None
        Markers on the selected rows (in rank order; unscored rows are not drawn).
    noisy_ : matplotlib PathCollection or None
        Markers on the noisy rows (in rank order).
    inspected_, precision_, recall_ : ndarray or None
        Fraction of all rows inspected after each rank, and the precision and recall
        of the noisy rows among them (None without ``noisy``).
    precision_line_, recall_line_, chance_level_ : matplotlib Line2D or None
        Their lines (x in percent) and the noise rate (None without ``noisy``).
    ax_ : matplotlib Axes
        The ranking axes.
    pr_ax_ : matplotlib Axes or None
        The precision/recall axes (None without ``noisy``).
    figure_ : matplotlib Figure

    See Also
    --------
    skinfluence.InfluenceCleaner : Removes or relabels the top rows.
    skinfluence.evaluation.noise_detection : The protocol that refits after fixing.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.plotting import SelfInfluenceDisplay
    >>> scores = np.array([0.1, 2.0, 0.3, 1.5, 0.2])
    >>> noisy = np.array([False, True, False, False, True])
    >>> disp = SelfInfluenceDisplay.from_predictions(scores, fraction=0.4, noisy=noisy)
    >>> disp.order_
    array([1, 3, 2, 4, 0])
    >>> np.asarray(disp.selected_.get_offsets())[:, 0]  # ranks of the selected rows
    array([1., 2.])
    >>> disp.precision_
    array([1.    , 0.5   , 0.3333, 0.5   , 0.4   ])
    """

    def __init__(self, *, scores, selected=None, noisy=None):
        self.scores = scores
        self.selected = selected
        self.noisy = noisy

    @classmethod
    def from_estimator(cls, estimator, X, y, *, fraction=0.1, noisy=None, ax=None, **kwargs):
        """Rank the training rows by their self-influence (or a cleaner's scores).

        Parameters
        ----------
        estimator : influence estimator or InfluenceCleaner
            A skinfluence method fitted on ``X, y`` (the rows are ranked by
            ``self_influence()``, rows the model held out of its training left out), or
            a fitted :class:`~skinfluence.InfluenceCleaner` (ranked by its ``harm_``,
            its ``selected_indices_`` marked; ``fraction`` is then ignored).
        X : array-like or DataFrame of shape (n_samples, n_features)
            The training data given to the estimator's ``fit``.
        y : array-like of shape (n_samples,)
            Its labels.
        fraction : float in [0, 1], default=0.1
            Mark the top ``floor(fraction * n_samples)`` rows as selected, as
            ``InfluenceCleaner(criterion="self")`` would.
        noisy : array-like of bool of shape (n_samples,) or of int, default=None
            The truly noisy rows (mask or positions), when known: adds the
            precision/recall axes.
        ax : matplotlib Axes, or a pair of Axes when ``noisy`` is given, default=None
            Axes to draw on; a new figure when None.
        **kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : SelfInfluenceDisplay
        """
        caller = f"{cls.__name__}.from_estimator"
        check_matplotlib(caller)
        n = _n_rows(X)
        if len(np.asarray(y)) != n:
            raise ValueError(f"X has {n} rows but y has {len(np.asarray(y))}")
        if hasattr(estimator, "harm_") and hasattr(estimator, "selected_indices_"):
            scores = np.asarray(estimator.harm_, dtype=float)
            selected = np.asarray(estimator.selected_indices_)
        else:
            n_fit = check_explainer(estimator, caller)
            if n_fit != n:
                raise ValueError(f"X has {n} rows but the explainer was fitted on {n_fit}")
            scores = np.asarray(estimator.self_influence(), dtype=float).copy()
            scores[np.asarray(getattr(estimator, "validation_indices_", []), int)] = np.nan
            selected = _top_fraction(scores, fraction)
        if len(scores) != n:
            raise ValueError(f"X has {n} rows but the cleaner scored {len(scores)}")
        return cls.from_predictions(scores, selected=selected, noisy=noisy, ax=ax, **kwargs)

    @classmethod
    def from_predictions(
        cls, scores, *, selected=None, noisy=None, fraction=None, ax=None, **kwargs
    ):
        """Rank rows by any per-row score (larger = more suspicious).

        Parameters
        ----------
        scores : array-like of shape (n_samples,)
            E.g. ``self_influence()``, an ``InfluenceCleaner``'s ``harm_``, or minus a
            global influence; NaN = not scored.
        selected : array-like of bool of shape (n_samples,) or of int, default=None
            Rows to mark (mask or positions).
        noisy : array-like of bool of shape (n_samples,) or of int, default=None
            The truly noisy rows, when known: adds the precision/recall axes.
        fraction : float in [0, 1], default=None
            Without ``selected``: mark the top ``floor(fraction * n_samples)`` rows.
        ax : matplotlib Axes, or a pair of Axes when ``noisy`` is given, default=None
            Axes to draw on; a new figure when None.
        **kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : SelfInfluenceDisplay
        """
        check_matplotlib(f"{cls.__name__}.from_predictions")
        s = np.asarray(scores, dtype=float)
        if s.ndim != 1:
            raise ValueError(f"scores must be 1-D (one per row); got shape {s.shape}")
        n = len(s)
        if selected is not None and fraction is not None:
            raise ValueError("give selected or fraction, not both")
        if fraction is not None:
            selected = _top_fraction(s, fraction)
        disp = cls(
            scores=s.copy(),
            selected=_mask(selected, n, "selected"),
            noisy=_mask(noisy, n, "noisy"),
        )
        return disp.plot(ax=ax, **kwargs)

    def _axes(self, ax):
        import matplotlib.pyplot as plt

        want = 1 if self.noisy is None else 2
        if ax is None:
            _, axes = plt.subplots(1, want, figsize=(6.4 * want, 4.8), squeeze=False)
            return list(axes[0])
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) != want:
            what = (
                "one Axes"
                if want == 1
                else "a pair of Axes (ranking, precision/recall) when noisy is given"
            )
            raise ValueError(f"ax must be {what}; got {len(axes)} Axes")
        return axes

    def plot(self, ax=None, *, score_name="self-influence"):
        """Draw the ranking (and the precision/recall curves when ``noisy`` is known).

        Parameters
        ----------
        ax : matplotlib Axes, or a pair of Axes when ``noisy`` is given, default=None
            Axes to draw on; a new figure when None.
        score_name : str, default="self-influence"
            The y-axis label of the ranking.

        Returns
        -------
        display : SelfInfluenceDisplay
        """
        check_matplotlib(f"{type(self).__name__}.plot")
        scores = np.asarray(self.scores, dtype=float)
        axes = self._axes(ax)
        ax = axes[0]
        self.order_ = order = ranking(scores)
        rank = np.empty(len(scores))
        rank[order] = np.arange(1, len(order) + 1)
        (self.line_,) = ax.plot(rank[order], scores[order], color="grey", lw=1)
        self.selected_ = self.noisy_ = None
        if self.noisy is not None:
            sel = order[self.noisy[order]]  # in rank order
            self.noisy_ = ax.scatter(
                rank[sel], scores[sel], s=40, facecolors="none", edgecolors="tab:red",
                label="noisy",
            )  # fmt: skip
        if self.selected is not None:
            sel = order[self.selected[order]]
            self.selected_ = ax.scatter(
                rank[sel], scores[sel], s=12, color="tab:blue", label="selected"
            )
        ax.set_xlabel("rank (1 = highest score)")
        ax.set_ylabel(score_name)
        if self.selected_ is not None or self.noisy_ is not None:
            ax.legend()
        self._plot_pr(axes[1] if len(axes) > 1 else None, order, len(scores))
        self.ax_, self.figure_ = ax, ax.figure
        return self

    def _plot_pr(self, ax, order, n):
        self.pr_ax_ = ax
        self.inspected_ = self.precision_ = self.recall_ = None
        self.precision_line_ = self.recall_line_ = self.chance_level_ = None
        if self.noisy is None:
            return
        if not self.noisy.any():
            raise ValueError("noisy marks no row: nothing to find")
        self.inspected_, self.precision_, self.recall_ = precision_recall(order, self.noisy, n)
        x = 100 * self.inspected_
        (self.precision_line_,) = ax.plot(x, self.precision_, label="precision")
        (self.recall_line_,) = ax.plot(x, self.recall_, label="recall")
        self.chance_level_ = ax.axhline(
            self.noisy.mean(), color="grey", ls="--", lw=0.8, label="noise rate (random order)"
        )
        ax.set_xlabel("training rows inspected (%)")
        ax.set_ylabel("noisy rows found")
        ax.set_ylim(0, 1.02)
        ax.legend()
