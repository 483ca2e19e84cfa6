"""Global configuration of skinfluence: ``get_config``, ``set_config`` and
``config_context``, in the manner of scikit-learn's."""

import contextlib
import threading

__all__ = ["config_context", "get_config", "set_config"]

_DEFAULTS = {"check_training_rows": "raise", "reconstruction_check": "covering"}
_CHOICES = {"check_training_rows": ("raise", "warn"), "reconstruction_check": ("covering", "all")}
_local = threading.local()


def _config():
    if not hasattr(_local, "config"):
        _local.config = dict(_DEFAULTS)
    return _local.config


def get_config():
    """The current values of the configuration (a copy).

    Returns
    -------
    config : dict
        Keys are the parameters of :func:`set_config`.
    """
    return dict(_config())


def set_config(check_training_rows=None, reconstruction_check=None):
    """Set the global configuration of skinfluence (for the current thread).

    Parameters
    ----------
    check_training_rows : {"raise", "warn"}, default=None
        What ``fit`` of every explainer does when the rows it is given do not
        reproduce the per-leaf statistics the library recorded of the model's
        training rows (row counts, weight sums, hessian sums): ``"raise"`` (the
        default) raises :class:`~skinfluence.TrainingDataMismatchError`, ``"warn"``
        warns and explains the model with the rows given. Use ``"warn"`` only to
        explain a model knowingly with other rows than its training rows (a subset,
        a different sample): the influences then describe those rows, not the
        model's training. ``None`` leaves the value unchanged.
    reconstruction_check : {"covering", "all"}, default=None
        On which training rows ``fit`` compares the parsed trees (bias plus the
        reached leaf values) with the library's own raw prediction. ``"covering"``
        (the default): on a covering sample, for every (tree, leaf) pair that a
        training row reaches the first row reaching it, plus a fixed uniform sample
        of 1,000 rows; every leaf value the training rows use is then compared at
        least once, and the library predicts a few thousand rows instead of all of
        them. ``"all"``: on every row given to ``fit``. Both raise the same
        :class:`~skinfluence.ReconstructionError` with the same diagnosis. ``None``
        leaves the value unchanged.

    See Also
    --------
    config_context : the same for a block of code only.
    get_config : the current values.
    """
    config = _config()
    given = {
        "check_training_rows": check_training_rows,
        "reconstruction_check": reconstruction_check,
    }
    for name, value in given.items():
        if value is None:
            continue
        if value not in _CHOICES[name]:
            raise ValueError(f"{name} must be one of {_CHOICES[name]}, got {value!r}")
        config[name] = value


@contextlib.contextmanager
def config_context(*, check_training_rows=None, reconstruction_check=None):
    """Set the configuration of skinfluence inside a ``with`` block only.

    Parameters
    ----------
    check_training_rows : {"raise", "warn"}, default=None
        See :func:`set_config`.
    reconstruction_check : {"covering", "all"}, default=None
        See :func:`set_config`.

    Examples
    --------
    Explain a model with a subset of its training rows, knowingly:

    >>> import skinfluence
    >>> with skinfluence.config_context(check_training_rows="warn"):  # doctest: +SKIP
    ...     explainer = skinfluence.TREX(model).fit(X[:500], y[:500])
    """
    old = get_config()
    set_config(check_training_rows=check_training_rows, reconstruction_check=reconstruction_check)
    try:
        yield
    finally:
        set_config(**old)
