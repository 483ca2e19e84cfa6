"""Display objects (matplotlib, optional) and the tabular helper; public names are in
:mod:`skinfluence.plotting`."""

from ._cleaning import CleaningCurveDisplay
from ._evaluation import (
    CounterfactualDisplay,
    EditCurveDisplay,
    LDSDisplay,
    LOOCorrelationDisplay,
    NoiseDetectionDisplay,
    QueryScoresDisplay,
)
from ._influence import InfluenceDisplay, top_influences_frame
from ._self_influence import SelfInfluenceDisplay

__all__ = [
    "CleaningCurveDisplay",
    "CounterfactualDisplay",
    "EditCurveDisplay",
    "InfluenceDisplay",
    "LDSDisplay",
    "LOOCorrelationDisplay",
    "NoiseDetectionDisplay",
    "QueryScoresDisplay",
    "SelfInfluenceDisplay",
    "top_influences_frame",
]
