"""The paper's evaluation protocols and the field's measures of influence quality.

Every function refits ``clone(model)`` on edited training sets through
:class:`joblib.Parallel` (``n_jobs``; ``verbose`` shows a progress bar) and returns a
tidy result: a pandas DataFrame when pandas is installed (scalar summaries in
``result.attrs``), else a dict of arrays (summaries under ``"attrs"``). Plots:
:mod:`skinfluence.plotting`.

Sign convention: positive influence = helpful (removing the row raises the loss);
rankings by descending influence edit the most helpful rows first.

* single query (:ref:`methods-eval-single`): :func:`single_query_curve` (``edit="remove"``,
  ``"relabel"``, ``"poison"``, ``"targeted"``) and :func:`counterfactual`;
* sets (:ref:`methods-eval-set`): :func:`set_curve` and :func:`noise_detection`;
* measures (:ref:`methods-eval-measures`): :func:`linear_datamodeling_score` (with cached
  :func:`subset_outputs`) and :func:`loo_correlation` (with cached :func:`loo_deltas`).
"""

from skinfluence.evaluation._measures import (
    LOODeltas,
    SubsetOutputs,
    linear_datamodeling_score,
    loo_correlation,
    loo_deltas,
    subset_outputs,
)
from skinfluence.evaluation._set import noise_detection, set_curve, split_validation
from skinfluence.evaluation._single import counterfactual, single_query_curve

__all__ = [
    "LOODeltas",
    "SubsetOutputs",
    "counterfactual",
    "linear_datamodeling_score",
    "loo_correlation",
    "loo_deltas",
    "noise_detection",
    "set_curve",
    "single_query_curve",
    "split_validation",
    "subset_outputs",
]
