"""Testing utilities for users of skinfluence: hypothesis strategies.

``skinfluence.testing.strategies`` generates small data sets (regression, binary,
multiclass; NaN and categorical options) and tiny fitted models of every installed
library, for property tests of pipelines built on skinfluence. It needs ``hypothesis``;
``import skinfluence`` does not import this package.
"""

from .strategies import (
    LIBRARIES,
    TASKS,
    Dataset,
    FittedModel,
    available_libraries,
    datasets,
    fitted_models,
    models,
)

__all__ = [
    "LIBRARIES",
    "TASKS",
    "Dataset",
    "FittedModel",
    "available_libraries",
    "datasets",
    "fitted_models",
    "models",
]
