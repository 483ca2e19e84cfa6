"""The training rows behind one prediction: :class:`InfluenceDisplay` (a bar chart) and
:func:`top_influences_frame` (a DataFrame)."""

import numpy as np

from ._common import check_matplotlib, get_axes
from ._rows import explain_rows, fmt, one_query_row, query_influence

_XLABEL = "influence on the query's loss (> 0: helpful)"


class InfluenceDisplay:
    """The most helpful and most harmful training rows of one prediction.

    A horizontal bar per training row, its length the row's influence on the query
    (positive = helpful: removing the row would raise the query's loss; negative =
    harmful), coloured by direction and sorted from the most helpful (top) to the most
    harmful (bottom). Each bar's tick label names the training row, its label and the
    features in which it differs most from the query, e.g.
    ``"#12 (y=1): age=52 (query 31)"``. Create it with :meth:`from_estimator` or
    :meth:`from_influence`; all parameters are stored as attributes.

    Parameters
    ----------
    influence : ndarray of shape (n_rows,)
        The shown rows' influence values, in decreasing order.
    rows : ndarray of shape (n_rows,)
        Their ids: the training DataFrame's index labels, or positions in ``X_train``.
    labels : ndarray of shape (n_rows,), default=None
        Their training labels (None: not shown).
    differences : list of str, default=None
        For each row, the text of the features in which it differs most from the query.
    query_label : object, default=None
        The query's label, shown in the title when given.

    Attributes
    ----------
    bars_ : matplotlib BarContainer
        The bars, from the top (most helpful) down.
    zero_line_ : matplotlib Line2D
        The vertical line at 0.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    top_influences_frame : The same rows as a DataFrame, with all their features.
    skinfluence.base.BaseInfluence.top_k : The rows alone.

    Notes
    -----
    At most ``k`` rows of each sign are shown: rows with positive influence among the
    ``k`` largest values, rows with negative influence among the ``k`` smallest (ties
    go to the lower position, as in ``top_k``). Rows of influence 0 are not shown.
    Numeric features are compared with the query in units of their standard deviation
    over ``X_train``; other features either differ or not.

    Examples
    --------
    >>> import numpy as np
    >>> from skinfluence.plotting import InfluenceDisplay
    >>> X_train = np.array([[1.0, 5.0], [2.0, 5.0], [9.0, 1.0], [3.0, 7.0]])
    >>> y_train = np.array([0, 0, 1, 1])
    >>> disp = InfluenceDisplay.from_influence(
    ...     np.array([0.5, 0.1, -0.3, 0.0]), X_train=X_train, y_train=y_train,
    ...     x_query=np.array([1.0, 6.0]), k=2)
    >>> [bar.get_width() for bar in disp.bars_]
    [0.5, 0.1, -0.3]
    >>> [t.get_text() for t in disp.ax_.get_yticklabels()]
    ['#0 (y=0): x1=5 (query 6)', '#1 (y=0): x1=5 (query 6), x0=2 (query 1)',
     '#2 (y=1): x0=9 (query 1), x1=1 (query 6)']
    """

    def __init__(self, *, influence, rows, labels=None, differences=None, query_label=None):
        self.influence = influence
        self.rows = rows
        self.labels = labels
        self.differences = differences
        self.query_label = query_label

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X_query_row,
        y_query=None,
        *,
        X_train,
        y_train,
        k=5,
        feature_names=None,
        n_differences=2,
        ax=None,
        **kwargs,
    ):
        """Draw the top rows of one query, scored by a fitted influence estimator.

        Parameters
        ----------
        estimator : influence estimator
            A skinfluence method (e.g. :class:`~skinfluence.BoostIn`) fitted on
            ``X_train, y_train``.
        X_query_row : array-like or DataFrame of shape (1, n_features) or (n_features,)
            The one query row (a pandas Series is taken as one row).
        y_query : scalar, default=None
            The query's label: influence on its loss at this label. None explains the
            model's own prediction (classifiers: the predicted label; regressors: the
            predicted value), as in ``transform``.
        X_train : array-like or DataFrame of shape (n_train, n_features)
            The training data given to the estimator's ``fit`` (for the row ids, the
            feature values and their scales).
        y_train : array-like of shape (n_train,) or None
            Its labels (None: not shown).
        k : int, default=5
            Most helpful and most harmful rows to show (up to ``k`` of each).
        feature_names : list of str, default=None
            Feature names; default the DataFrame's columns, else ``x0, x1, ...``.
        n_differences : int, default=2
            Features named per row: those whose values differ most from the query's.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        **kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : InfluenceDisplay
        """
        caller = f"{cls.__name__}.from_estimator"
        check_matplotlib(caller)
        x_query = one_query_row(X_query_row, caller, like=X_train)
        influence = query_influence(estimator, x_query, y_query, X_train, caller)
        return cls.from_influence(
            influence,
            X_train=X_train,
            y_train=y_train,
            x_query=x_query,
            y_query=y_query,
            k=k,
            feature_names=feature_names,
            n_differences=n_differences,
            ax=ax,
            **kwargs,
        )

    @classmethod
    def from_influence(
        cls,
        influence,
        *,
        X_train,
        y_train,
        x_query,
        y_query=None,
        k=5,
        feature_names=None,
        n_differences=2,
        ax=None,
        **kwargs,
    ):
        """Draw the top rows of one query from its precomputed influence row.

        Parameters
        ----------
        influence : array-like of shape (n_train,)
            One row of ``transform`` (the query's influence of every training row).
        X_train : array-like or DataFrame of shape (n_train, n_features)
            The training data (for the row ids, the feature values and their scales).
        y_train : array-like of shape (n_train,) or None
            Its labels (None: not shown).
        x_query : array-like or DataFrame of shape (1, n_features) or (n_features,)
            The query row (to compare the training rows' features with).
        y_query : scalar, default=None
            The query's label, shown in the title.
        k : int, default=5
            Most helpful and most harmful rows to show (up to ``k`` of each).
        feature_names : list of str, default=None
            Feature names; default the DataFrame's columns, else ``x0, x1, ...``.
        n_differences : int, default=2
            Features named per row: those whose values differ most from the query's.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        **kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : InfluenceDisplay
        """
        caller = f"{cls.__name__}.from_influence"
        check_matplotlib(caller)
        info = explain_rows(
            influence, X_train, y_train, x_query, k, feature_names, n_differences, caller
        )
        disp = cls(
            influence=info["influence"],
            rows=info["rows"],
            labels=info["labels"],
            differences=info["differences"],
            query_label=y_query,
        )
        return disp.plot(ax=ax, **kwargs)

    def _tick_labels(self):
        out = []
        for i, row in enumerate(self.rows):
            text = f"#{row}"
            if self.labels is not None:
                text += f" (y={fmt(self.labels[i])})"
            if self.differences is not None:
                text += f": {self.differences[i]}"
            out.append(text)
        return out

    def plot(self, ax=None, *, helpful_color="tab:blue", harmful_color="tab:red", **kwargs):
        """Draw the bars.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure when None.
        helpful_color, harmful_color : color, default="tab:blue", "tab:red"
            Colours of the bars of positive and negative influence.
        **kwargs
            Passed to ``Axes.barh``.

        Returns
        -------
        display : InfluenceDisplay
        """
        ax, fig = get_axes(ax, f"{type(self).__name__}.plot")
        from matplotlib.patches import Patch

        values = np.asarray(self.influence, dtype=float)
        pos = np.arange(len(values))
        colors = [helpful_color if v > 0 else harmful_color for v in values]
        self.bars_ = ax.barh(pos, values, color=colors, **kwargs)
        ax.set_yticks(pos, labels=self._tick_labels())
        ax.set_ylim(len(values) - 0.5, -0.5)  # the most helpful row on top
        self.zero_line_ = ax.axvline(0.0, color="black", lw=0.8)
        ax.set_xlabel(_XLABEL)
        if self.query_label is not None:
            ax.set_title(f"query label: {self.query_label}")
        handles = [
            Patch(color=helpful_color, label="helpful"),
            Patch(color=harmful_color, label="harmful"),
        ]
        ax.legend(handles=handles, loc="best")
        self.ax_, self.figure_ = ax, fig
        return self


def top_influences_frame(
    estimator,
    X_query_row,
    y_query=None,
    *,
    X_train,
    y_train,
    k=5,
    feature_names=None,
    n_differences=2,
):
    """The most helpful and most harmful training rows of one prediction, as a table.

    The rows of :class:`InfluenceDisplay` (up to ``k`` of each sign, from the most
    helpful to the most harmful) with all their features, for a notebook.

    Parameters
    ----------
    estimator : influence estimator
        A skinfluence method fitted on ``X_train, y_train``.
    X_query_row : array-like or DataFrame of shape (1, n_features) or (n_features,)
        The one query row.
    y_query : scalar, default=None
        The query's label (None: explain the model's own prediction).
    X_train : array-like or DataFrame of shape (n_train, n_features)
        The training data given to the estimator's ``fit``.
    y_train : array-like of shape (n_train,) or None
        Its labels (None: no ``label`` column).
    k : int, default=5
        Most helpful and most harmful rows (up to ``k`` of each).
    feature_names : list of str, default=None
        Feature names; default the DataFrame's columns, else ``x0, x1, ...``.
    n_differences : int, default=2
        Features named in the ``differences`` column.

    Returns
    -------
    frame : pandas DataFrame
        One line per row, columns ``row`` (the training DataFrame's index label, or the
        position in ``X_train``), ``influence`` (positive = helpful), ``direction``
        (``"helpful"`` or ``"harmful"``), ``label``, ``differences`` (the features that
        differ most from the query, as text), then the row's features (with their
        dtypes when ``X_train`` is a DataFrame).

    See Also
    --------
    InfluenceDisplay : The same rows as a bar chart.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from skinfluence import BoostIn
    >>> from skinfluence.plotting import top_influences_frame
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 3))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> model = HistGradientBoostingClassifier(max_iter=5, random_state=0).fit(X, y)
    >>> explainer = BoostIn(model).fit(X, y)
    >>> frame = top_influences_frame(explainer, X[:1], y[:1], X_train=X, y_train=y, k=3)
    >>> list(frame.columns)
    ['row', 'influence', 'direction', 'label', 'differences', 'x0', 'x1', 'x2']
    >>> bool((frame["influence"] > 0).eq(frame["direction"] == "helpful").all())
    True
    """
    from .._adapters._base import import_optional

    pd = import_optional("pandas")
    caller = "top_influences_frame"
    x_query = one_query_row(X_query_row, caller, like=X_train)
    influence = query_influence(estimator, x_query, y_query, X_train, caller)
    info = explain_rows(
        influence, X_train, y_train, x_query, k, feature_names, n_differences, caller
    )
    pos = info["positions"]
    if hasattr(X_train, "iloc"):
        features = X_train.iloc[pos].reset_index(drop=True)
        features.columns = info["feature_names"]
    else:
        features = pd.DataFrame(np.asarray(X_train)[pos], columns=info["feature_names"])
    head = {
        "row": info["rows"],
        "influence": info["influence"],
        "direction": np.where(info["influence"] > 0, "helpful", "harmful"),
    }
    if info["labels"] is not None:
        head["label"] = info["labels"]
    head["differences"] = info["differences"]
    return pd.concat([pd.DataFrame(head), features], axis=1)
