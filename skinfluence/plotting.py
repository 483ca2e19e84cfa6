"""Plots as scikit-learn-style Display objects (need matplotlib, the ``plot`` extra),
and a table of the training rows behind one prediction (needs pandas).

Every Display is created by a class method (``from_estimator``, ``from_influence``,
``from_predictions``, ``from_results``, ``from_cv_results``) that computes what to draw
and calls ``plot(ax=None)``; ``plot`` draws on ``ax`` (a new figure when None), keeps the
axes and figure as ``ax_`` and ``figure_`` and the drawn artists as attributes ending in
``_``, and returns the Display. matplotlib is imported only when drawing.

* one prediction: :class:`InfluenceDisplay` and :func:`top_influences_frame`;
* noisy-label screening: :class:`SelfInfluenceDisplay`;
* cleaning: :class:`CleaningCurveDisplay` (a ``GridSearchCV`` over
  :class:`~skinfluence.InfluenceCleaner`);
* the evaluation protocols of :mod:`skinfluence.evaluation`: :class:`EditCurveDisplay`,
  :class:`CounterfactualDisplay`, :class:`NoiseDetectionDisplay`,
  :class:`QueryScoresDisplay`, :class:`LDSDisplay` and :class:`LOOCorrelationDisplay`.
"""

from skinfluence._plotting import (
    CleaningCurveDisplay,
    CounterfactualDisplay,
    EditCurveDisplay,
    InfluenceDisplay,
    LDSDisplay,
    LOOCorrelationDisplay,
    NoiseDetectionDisplay,
    QueryScoresDisplay,
    SelfInfluenceDisplay,
    top_influences_frame,
)

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
