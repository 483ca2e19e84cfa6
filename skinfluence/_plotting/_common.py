"""Shared helpers of the Display objects: the lazy matplotlib import and the axes."""

import numpy as np


def check_matplotlib(caller):
    """Import matplotlib, or raise an ImportError naming ``caller`` and the extra."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{caller} needs matplotlib, an optional dependency of skinfluence; install "
            "it with `pip install skinfluence[plot]` (or `pip install matplotlib`)"
        ) from exc


def get_axes(ax, caller):
    """``(ax, figure)``: the given axes, or the axes of a new figure."""
    check_matplotlib(caller)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax, ax.figure


def named_results(results):
    """``{label: result}`` from one result (label None) or a mapping of results."""
    if (
        isinstance(results, dict)
        and "attrs" not in results
        and not any(isinstance(v, np.ndarray | list) for v in results.values())
    ):
        if not results:
            raise ValueError("results is an empty mapping; give at least one result")
        return dict(results)
    return {None: results}


def result_columns(result, needed, caller):
    """The columns of an evaluation result (DataFrame or dict) as numpy arrays,
    refusing a result without one of ``needed``."""
    from ..evaluation._common import _columns

    if not hasattr(result, "columns") and not isinstance(result, dict):
        raise TypeError(
            f"{caller} takes an evaluation result (a DataFrame or a dict of arrays) or a "
            f"mapping {{label: result}}; got {type(result).__name__}"
        )
    cols = _columns(result)
    missing = [c for c in needed if c not in cols]
    if missing:
        raise ValueError(
            f"{caller}: the result has no column {missing[0]!r} (columns: {sorted(cols)})"
        )
    return cols


def as_list(value, n, what):
    """``value`` as a list of ``n`` entries (None and scalars repeated)."""
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise ValueError(f"{what} has {len(value)} entries for {n} curves")
        return list(value)
    return [value] * n


def legend_if_named(ax, names):
    """A legend when some curve has a name; returns it (or None)."""
    if any(n is not None for n in names):
        return ax.legend()
    return None
