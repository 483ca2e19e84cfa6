"""Global configuration of skinfluence: ``get_config``, ``set_config`` and
``config_context``, in the manner of scikit-learn's."""

import contextlib
import threading

__all__ = ["config_context", "get_config", "set_config"]

_DEFAULTS = {"check_training_rows": "raise"}
_CHOICES = {"check_training_rows": ("raise", "warn")}
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


def set_config(check_training_rows=None):
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

    See Also
    --------
    config_context : the same for a block of code only.
    get_config : the current values.
    """
    config = _config()
    if check_training_rows is not None:
        choices = _CHOICES["check_training_rows"]
        if check_training_rows not in choices:
            raise ValueError(
                f"check_training_rows must be one of {choices}, got {check_training_rows!r}"
            )
        config["check_training_rows"] = check_training_rows


@contextlib.contextmanager
def config_context(*, check_training_rows=None):
    """Set the configuration of skinfluence inside a ``with`` block only.

    Parameters
    ----------
    check_training_rows : {"raise", "warn"}, default=None
        See :func:`set_config`.

    Examples
    --------
    Explain a model with a subset of its training rows, knowingly:

    >>> import skinfluence
    >>> with skinfluence.config_context(check_training_rows="warn"):  # doctest: +SKIP
    ...     explainer = skinfluence.TREX(model).fit(X[:500], y[:500])
    """
    old = get_config()
    set_config(check_training_rows=check_training_rows)
    try:
        yield
    finally:
        set_config(**old)
