"""Plots of the evaluation results (:mod:`skinfluence.evaluation`); needs matplotlib.

Each helper takes one result or a mapping ``{label: result}`` (e.g. one per method),
draws on ``ax`` (a new figure when None) and returns the axes.
"""

import numpy as np

from skinfluence.evaluation._common import _attrs, _columns

__all__ = [
    "plot_counterfactual",
    "plot_edit_curve",
    "plot_lds",
    "plot_loo_correlation",
    "plot_noise_detection",
    "plot_query_scores",
]


def _axes(ax):
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plotting needs the optional dependency 'matplotlib'; install it with "
            "`pip install skinfluence[matplotlib]` (or `pip install matplotlib`)"
        ) from exc
    _, ax = plt.subplots()
    return ax


def _named(results):
    if (
        isinstance(results, dict)
        and "attrs" not in results
        and not any(isinstance(v, np.ndarray) for v in results.values())
    ):
        return dict(results)
    return {None: results}


def _mean_by(x, y):
    xs = np.unique(x)
    return xs, np.array([np.nanmean(y[x == v]) for v in xs])


def _labelled(ax, results, xlabel, ylabel):
    """Set the axis labels, and a legend when the results are named."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if any(k is not None for k in _named(results)):
        ax.legend()
    return ax


def plot_edit_curve(results, *, metric="loss", ax=None):
    """Mean ``metric`` per edited fraction (single-query or set protocols).

    Parameters
    ----------
    results : result or dict of results
        From :func:`~skinfluence.evaluation.single_query_curve` (averaged over
        queries) or :func:`~skinfluence.evaluation.set_curve`.
    metric : str, default="loss"
        A column of the results (``"loss"``, ``"loss_change"``, ``"accuracy"``, ...).
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skinfluence.plotting import plot_edit_curve
    >>> res = {"fraction": np.array([0, .1]), "loss": np.array([.2, .5])}
    >>> plot_edit_curve({"BoostIn": res}).get_ylabel()
    'mean loss'
    """
    ax = _axes(ax)
    for label, res in _named(results).items():
        cols = _columns(res)
        x, y = _mean_by(cols["fraction"], np.asarray(cols[metric], dtype=float))
        ax.plot(100 * x, y, marker="o", label=label)
    return _labelled(ax, results, "training rows edited (%)", f"mean {metric}")


def plot_counterfactual(results, *, ax=None):
    """Share of evaluated queries whose prediction flipped within each edited fraction.

    Parameters
    ----------
    results : result or dict of results
        From :func:`~skinfluence.evaluation.counterfactual`.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skinfluence.plotting import plot_counterfactual
    >>> res = {"correct": np.array([True, True]), "flipped": np.array([True, False]),
    ...        "fraction_edited": np.array([0.02, 0.1])}
    >>> plot_counterfactual(res).get_xlabel()
    'training rows relabelled (%)'
    """
    ax = _axes(ax)
    for label, res in _named(results).items():
        cols = _columns(res)
        ok = cols["correct"].astype(bool)
        frac = cols["fraction_edited"][ok]
        flipped = cols["flipped"][ok].astype(bool)
        grid = np.unique(np.concatenate([[0.0], frac[flipped]]))
        share = [np.mean(flipped & (frac <= g)) if len(frac) else np.nan for g in grid]
        ax.step(100 * grid, share, where="post", label=label)
    return _labelled(ax, results, "training rows relabelled (%)", "predictions flipped")


def plot_noise_detection(results, *, metric="fraction_found", ax=None):
    """Detection curve (or held-out metric after fixing) per checked fraction.

    Parameters
    ----------
    results : result or dict of results
        From :func:`~skinfluence.evaluation.noise_detection`.
    metric : str, default="fraction_found"
        ``"fraction_found"``, ``"loss"``, ``"accuracy"``, ...
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skinfluence.plotting import plot_noise_detection
    >>> res = {"fraction": np.array([0, .1]), "fraction_found": np.array([0, .25])}
    >>> plot_noise_detection(res).get_ylabel()
    'fraction_found'
    """
    ax = _axes(ax)
    for label, res in _named(results).items():
        cols = _columns(res)
        area = _attrs(res).get("detection_area")
        name = label if label is None or area is None else f"{label} (area {area:.2f})"
        ax.plot(100 * cols["fraction"], cols[metric], marker="o", label=name)
    return _labelled(ax, results, "training rows checked (%)", metric)


def plot_query_scores(results, *, column, ax=None):
    """Box plot of a per-query score (LDS, LOO correlation) per result.

    Parameters
    ----------
    results : result or dict of results
    column : str
        ``"lds"`` or ``"correlation"``.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skinfluence.plotting import plot_query_scores
    >>> ax = plot_query_scores({"A": {"lds": np.array([.1, .4])}}, column="lds")
    >>> ax.get_ylabel()
    'lds'
    """
    ax = _axes(ax)
    named = _named(results)
    data = []
    for res in named.values():
        v = np.asarray(_columns(res)[column], dtype=float)
        data.append(v[np.isfinite(v)])
    labels = ["" if k is None else str(k) for k in named]
    ax.boxplot(data, tick_labels=labels)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_ylabel(column)
    for t in ax.get_xticklabels():
        t.set_rotation(45)
        t.set_ha("right")
    return ax


def plot_lds(results, *, ax=None):
    """Per-query LDS of each result (:func:`plot_query_scores` with ``"lds"``).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skinfluence.plotting import plot_lds
    >>> plot_lds({"A": {"lds": np.array([.1, .4])}}).get_ylabel()
    'lds'
    """
    return plot_query_scores(results, column="lds", ax=ax)


def plot_loo_correlation(results, *, ax=None):
    """Per-query LOO correlation of each result (:func:`plot_query_scores`).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skinfluence.plotting import plot_loo_correlation
    >>> plot_loo_correlation({"A": {"correlation": np.array([.1])}}).get_ylabel()
    'correlation'
    """
    return plot_query_scores(results, column="correlation", ax=ax)
