"""Displays of the evaluation protocols (:mod:`skinfluence.evaluation`)."""

import numpy as np

from ._common import as_list, get_axes, legend_if_named, named_results, result_columns


def _mean_by(x, y):
    """Unique ``x`` and the mean of ``y`` over the rows of each (NaN ignored)."""
    xs = np.unique(x)
    means = []
    for v in xs:
        sel = y[x == v]
        means.append(np.nan if np.all(np.isnan(sel)) else np.nanmean(sel))
    return xs, np.array(means)


class _CurvesDisplay:
    """Shared drawing of one line per result: x (a fraction, drawn in %) and y."""

    _step = False

    def _draw(self, ax, name, xlabel, ylabel, caller, kwargs):
        ax, fig = get_axes(ax, caller)
        x_list, y_list = self._curves()
        names = as_list(name, len(x_list), "name")
        self.lines_ = []
        for x, y, label in zip(x_list, y_list, names):
            x = 100 * np.asarray(x, dtype=float)
            if self._step:
                (line,) = ax.step(x, y, where="post", label=label, **kwargs)
            else:
                kw = {"marker": "o", **kwargs}
                (line,) = ax.plot(x, y, label=label, **kw)
            self.lines_.append(line)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        legend_if_named(ax, names)
        self.ax_, self.figure_ = ax, fig
        return self


class EditCurveDisplay(_CurvesDisplay):
    """The mean of a measure per edited fraction of the training rows.

    For the curves of :func:`~skinfluence.evaluation.single_query_curve` (averaged over
    the queries) and :func:`~skinfluence.evaluation.set_curve`. Create it with
    :meth:`from_results`; all parameters are stored as attributes.

    Parameters
    ----------
    fraction : list of ndarray
        Edited fractions of the training rows (in [0, 1]), one array per curve.
    values : list of ndarray
        The mean measure at each fraction, one array per curve.
    name : list of str or None, default=None
        Legend label of each curve (None: no legend).
    metric : str, default="loss"
        Name of the measure (the y-axis label).

    Attributes
    ----------
    lines_ : list of matplotlib Line2D
        One line per curve (x in percent).
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    skinfluence.evaluation.single_query_curve : Edit curves of single queries.
    skinfluence.evaluation.set_curve : Edit curves of a set of queries.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.plotting import EditCurveDisplay
    >>> res = {"fraction": np.array([0, .1, .1]), "loss": np.array([.2, .4, .6])}
    >>> disp = EditCurveDisplay.from_results({"BoostIn": res})
    >>> disp.lines_[0].get_ydata()
    array([0.2, 0.5])
    >>> disp.ax_.get_ylabel()
    'mean loss'
    """

    def __init__(self, *, fraction, values, name=None, metric="loss"):
        self.fraction = fraction
        self.values = values
        self.name = name
        self.metric = metric

    def _curves(self):
        return self.fraction, self.values

    @classmethod
    def from_results(cls, results, *, metric="loss", ax=None, **kwargs):
        """Draw the mean ``metric`` per fraction of one result or of ``{label: result}``.

        Parameters
        ----------
        results : DataFrame, dict of arrays, or dict of those
            From :func:`~skinfluence.evaluation.single_query_curve` or
            :func:`~skinfluence.evaluation.set_curve`; a mapping ``{label: result}``
            draws one labelled curve per entry (e.g. one per method).
        metric : str, default="loss"
            A column of the results (``"loss"``, ``"loss_change"``, ``"accuracy"``, ...),
            averaged over the rows of each fraction.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        **kwargs
            Passed to ``Axes.plot`` for every curve.

        Returns
        -------
        display : EditCurveDisplay
        """
        fractions, values = [], []
        named = named_results(results)
        for res in named.values():
            cols = result_columns(res, ["fraction", metric], f"{cls.__name__}.from_results")
            x, y = _mean_by(cols["fraction"], np.asarray(cols[metric], dtype=float))
            fractions.append(x)
            values.append(y)
        disp = cls(fraction=fractions, values=values, name=list(named), metric=metric)
        return disp.plot(ax=ax, **kwargs)

    def plot(self, ax=None, **kwargs):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        **kwargs
            Passed to ``Axes.plot`` for every curve.

        Returns
        -------
        display : EditCurveDisplay
        """
        ylabel = f"mean {self.metric}"
        return self._draw(
            ax, self.name, "training rows edited (%)", ylabel, "EditCurveDisplay.plot", kwargs
        )


class CounterfactualDisplay(_CurvesDisplay):
    """Share of the queries whose prediction flipped within each relabelled fraction.

    From :func:`~skinfluence.evaluation.counterfactual`: among the correctly predicted
    queries, the share whose prediction flipped after relabelling at most that fraction
    of the training rows (a step curve). Create it with :meth:`from_results`.

    Parameters
    ----------
    fraction : list of ndarray
        Relabelled fractions (in [0, 1]) at which the share changes, one array per
        curve (starting at 0).
    flipped : list of ndarray
        Share of the evaluated queries flipped within each fraction.
    name : list of str or None, default=None
        Legend label of each curve.

    Attributes
    ----------
    lines_ : list of matplotlib Line2D
        One step line per curve (x in percent).
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.plotting import CounterfactualDisplay
    >>> res = {"correct": np.array([True, True]), "flipped": np.array([True, False]),
    ...        "fraction_edited": np.array([0.02, 0.1])}
    >>> disp = CounterfactualDisplay.from_results(res)
    >>> disp.lines_[0].get_ydata()
    array([0. , 0.5])
    >>> disp.ax_.get_xlabel()
    'training rows relabelled (%)'
    """

    _step = True

    def __init__(self, *, fraction, flipped, name=None):
        self.fraction = fraction
        self.flipped = flipped
        self.name = name

    def _curves(self):
        return self.fraction, self.flipped

    @classmethod
    def from_results(cls, results, *, ax=None, **kwargs):
        """Draw the flipped share of one result or of ``{label: result}``.

        Parameters
        ----------
        results : DataFrame, dict of arrays, or dict of those
            From :func:`~skinfluence.evaluation.counterfactual`.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        **kwargs
            Passed to ``Axes.step`` for every curve.

        Returns
        -------
        display : CounterfactualDisplay
        """
        fractions, shares = [], []
        named = named_results(results)
        need = ["correct", "flipped", "fraction_edited"]
        for res in named.values():
            cols = result_columns(res, need, f"{cls.__name__}.from_results")
            ok = cols["correct"].astype(bool)
            frac = np.asarray(cols["fraction_edited"], dtype=float)[ok]
            flipped = cols["flipped"][ok].astype(bool)
            grid = np.unique(np.concatenate([[0.0], frac[flipped]]))
            share = [np.mean(flipped & (frac <= g)) if len(frac) else np.nan for g in grid]
            fractions.append(grid)
            shares.append(np.array(share))
        disp = cls(fraction=fractions, flipped=shares, name=list(named))
        return disp.plot(ax=ax, **kwargs)

    def plot(self, ax=None, **kwargs):
        """Draw the step curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        **kwargs
            Passed to ``Axes.step`` for every curve.

        Returns
        -------
        display : CounterfactualDisplay
        """
        return self._draw(
            ax,
            self.name,
            "training rows relabelled (%)",
            "predictions flipped",
            "CounterfactualDisplay.plot",
            kwargs,
        )


class NoiseDetectionDisplay(_CurvesDisplay):
    """Noisy-label detection curve (or a held-out measure after fixing) per fraction.

    From :func:`~skinfluence.evaluation.noise_detection`. Create it with
    :meth:`from_results`.

    Parameters
    ----------
    fraction : list of ndarray
        Checked fractions of the training rows (in [0, 1]), one array per curve.
    values : list of ndarray
        The measure at each fraction.
    name : list of str or None, default=None
        Legend label of each curve; :meth:`from_results` appends the result's
        detection area, e.g. ``"BoostIn (area 0.81)"``.
    metric : str, default="fraction_found"
        Name of the measure (the y-axis label).

    Attributes
    ----------
    lines_ : list of matplotlib Line2D
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.plotting import NoiseDetectionDisplay
    >>> res = {"fraction": np.array([0, .1]), "fraction_found": np.array([0, .25]),
    ...        "attrs": {"detection_area": 0.5}}
    >>> disp = NoiseDetectionDisplay.from_results({"BoostIn": res})
    >>> disp.ax_.get_legend().get_texts()[0].get_text()
    'BoostIn (area 0.50)'
    """

    def __init__(self, *, fraction, values, name=None, metric="fraction_found"):
        self.fraction = fraction
        self.values = values
        self.name = name
        self.metric = metric

    def _curves(self):
        return self.fraction, self.values

    @classmethod
    def from_results(cls, results, *, metric="fraction_found", ax=None, **kwargs):
        """Draw ``metric`` per checked fraction of one result or of ``{label: result}``.

        Parameters
        ----------
        results : DataFrame, dict of arrays, or dict of those
            From :func:`~skinfluence.evaluation.noise_detection`.
        metric : str, default="fraction_found"
            ``"fraction_found"``, ``"loss"``, ``"accuracy"``, ...
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        **kwargs
            Passed to ``Axes.plot`` for every curve.

        Returns
        -------
        display : NoiseDetectionDisplay
        """
        from ..evaluation._common import _attrs

        fractions, values, names = [], [], []
        for label, res in named_results(results).items():
            cols = result_columns(res, ["fraction", metric], f"{cls.__name__}.from_results")
            area = _attrs(res).get("detection_area")
            names.append(label if label is None or area is None else f"{label} (area {area:.2f})")
            fractions.append(np.asarray(cols["fraction"], dtype=float))
            values.append(np.asarray(cols[metric], dtype=float))
        disp = cls(fraction=fractions, values=values, name=names, metric=metric)
        return disp.plot(ax=ax, **kwargs)

    def plot(self, ax=None, **kwargs):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        **kwargs
            Passed to ``Axes.plot`` for every curve.

        Returns
        -------
        display : NoiseDetectionDisplay
        """
        return self._draw(
            ax,
            self.name,
            "training rows checked (%)",
            self.metric,
            "NoiseDetectionDisplay.plot",
            kwargs,
        )


class QueryScoresDisplay:
    """Box plot of a per-query score (LDS, LOO correlation), one box per result.

    Create it with :meth:`from_results`; :class:`LDSDisplay` and
    :class:`LOOCorrelationDisplay` fix the column.

    Parameters
    ----------
    scores : list of ndarray
        The finite per-query scores of each result.
    name : list of str or None, default=None
        Tick label of each box.
    column : str, default="score"
        Name of the score (the y-axis label).

    Attributes
    ----------
    boxplot_ : dict
        The artists returned by ``Axes.boxplot`` (``"boxes"``, ``"medians"``, ...).
    zero_line_ : matplotlib Line2D
        The horizontal line at 0.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.plotting import QueryScoresDisplay
    >>> res = {"A": {"lds": np.array([.1, np.nan, .4])}, "B": {"lds": np.array([.3])}}
    >>> disp = QueryScoresDisplay.from_results(res, column="lds")
    >>> [t.get_text() for t in disp.ax_.get_xticklabels()]
    ['A', 'B']
    >>> disp.scores[0]
    array([0.1, 0.4])
    """

    def __init__(self, *, scores, name=None, column="score"):
        self.scores = scores
        self.name = name
        self.column = column

    @classmethod
    def from_results(cls, results, *, column, ax=None, **kwargs):
        """Draw the per-query ``column`` of one result or of ``{label: result}``.

        Parameters
        ----------
        results : DataFrame, dict of arrays, or dict of those
            From :func:`~skinfluence.evaluation.linear_datamodeling_score` or
            :func:`~skinfluence.evaluation.loo_correlation`.
        column : str
            ``"lds"`` or ``"correlation"``. NaN scores (queries without a score) are
            left out.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        **kwargs
            Passed to ``Axes.boxplot``.

        Returns
        -------
        display : QueryScoresDisplay
        """
        named = named_results(results)
        scores = []
        for res in named.values():
            cols = result_columns(res, [column], f"{cls.__name__}.from_results")
            v = np.asarray(cols[column], dtype=float)
            scores.append(v[np.isfinite(v)])
        return cls(scores=scores, name=list(named), column=column).plot(ax=ax, **kwargs)

    def plot(self, ax=None, **kwargs):
        """Draw the boxes.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        **kwargs
            Passed to ``Axes.boxplot``.

        Returns
        -------
        display : QueryScoresDisplay
        """
        ax, fig = get_axes(ax, f"{type(self).__name__}.plot")
        names = as_list(self.name, len(self.scores), "name")
        labels = ["" if n is None else str(n) for n in names]
        self.boxplot_ = ax.boxplot(list(self.scores), **kwargs)
        # tick labels set apart: boxplot's keyword was renamed in matplotlib 3.9
        ax.set_xticks(np.arange(1, len(labels) + 1), labels=labels)
        self.zero_line_ = ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_ylabel(self.column)
        for t in ax.get_xticklabels():
            t.set_rotation(45)
            t.set_ha("right")
        self.ax_, self.figure_ = ax, fig
        return self


class LDSDisplay(QueryScoresDisplay):
    """Per-query linear datamodeling score of each result (a box per result).

    :class:`QueryScoresDisplay` of the ``"lds"`` column of
    :func:`~skinfluence.evaluation.linear_datamodeling_score`.

    Parameters
    ----------
    scores : list of ndarray
        The finite per-query LDS of each result.
    name : list of str or None, default=None
        Tick label of each box.
    column : str, default="lds"
        Name of the score (the y-axis label).

    Attributes
    ----------
    boxplot_ : dict
    zero_line_ : matplotlib Line2D
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.plotting import LDSDisplay
    >>> disp = LDSDisplay.from_results({"A": {"lds": np.array([.1, .4])}})
    >>> disp.ax_.get_ylabel()
    'lds'
    """

    def __init__(self, *, scores, name=None, column="lds"):
        super().__init__(scores=scores, name=name, column=column)

    @classmethod
    def from_results(cls, results, *, ax=None, **kwargs):
        """Draw the ``"lds"`` column of one result or of ``{label: result}``.

        Parameters
        ----------
        results : DataFrame, dict of arrays, or dict of those
            From :func:`~skinfluence.evaluation.linear_datamodeling_score`.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        **kwargs
            Passed to ``Axes.boxplot``.

        Returns
        -------
        display : LDSDisplay
        """
        return super().from_results(results, column="lds", ax=ax, **kwargs)


class LOOCorrelationDisplay(QueryScoresDisplay):
    """Per-query correlation with leave-one-out retraining of each result.

    :class:`QueryScoresDisplay` of the ``"correlation"`` column of
    :func:`~skinfluence.evaluation.loo_correlation`.

    Parameters
    ----------
    scores : list of ndarray
        The finite per-query correlations of each result.
    name : list of str or None, default=None
        Tick label of each box.
    column : str, default="correlation"
        Name of the score (the y-axis label).

    Attributes
    ----------
    boxplot_ : dict
    zero_line_ : matplotlib Line2D
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.plotting import LOOCorrelationDisplay
    >>> disp = LOOCorrelationDisplay.from_results({"correlation": np.array([.1, .3])})
    >>> disp.ax_.get_ylabel()
    'correlation'
    """

    def __init__(self, *, scores, name=None, column="correlation"):
        super().__init__(scores=scores, name=name, column=column)

    @classmethod
    def from_results(cls, results, *, ax=None, **kwargs):
        """Draw the ``"correlation"`` column of one result or of ``{label: result}``.

        Parameters
        ----------
        results : DataFrame, dict of arrays, or dict of those
            From :func:`~skinfluence.evaluation.loo_correlation`.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        **kwargs
            Passed to ``Axes.boxplot``.

        Returns
        -------
        display : LOOCorrelationDisplay
        """
        return super().from_results(results, column="correlation", ax=ax, **kwargs)
