"""Testing utilities for users of skinfluence: a model factory and hypothesis strategies.

:func:`make_model` builds a small unfitted model of any supported library whose leaves
are Newton steps (the tests, the benchmarks and the demo use it). The hypothesis
strategies of ``skinfluence.testing.strategies`` generate small data sets (regression,
binary, multiclass; NaN and categorical options) and tiny fitted models of every
installed library, for property tests of pipelines built on skinfluence; they need
``hypothesis``, which is imported only when a strategy is first used. ``import
skinfluence`` does not import this package.
"""

import importlib

from ._models import (
    LIBRARIES,
    OBJECTIVES,
    TASKS,
    TYPICAL_SHAPES,
    available_libraries,
    fit_native,
    make_data,
    make_model,
    native_input,
    native_labels,
    quantile_classes,
)

_STRATEGIES = ("Dataset", "FittedModel", "datasets", "fitted_models", "models")

__all__ = [
    "LIBRARIES",
    "OBJECTIVES",
    "TASKS",
    "TYPICAL_SHAPES",
    "Dataset",
    "FittedModel",
    "available_libraries",
    "datasets",
    "fit_native",
    "fitted_models",
    "make_data",
    "make_model",
    "models",
    "native_input",
    "native_labels",
    "quantile_classes",
]


def __getattr__(name):
    # the strategies import hypothesis: load them on first use only
    if name in _STRATEGIES:
        return getattr(importlib.import_module(".strategies", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
