"""skinfluence: which training rows are responsible for a gradient-boosted tree's
prediction, as scikit-learn estimators."""

__version__ = "0.1.0.dev0"

from ._adapters import UnsupportedModelError, to_ensemble
from ._axil import AXIL
from ._baselines import LossInfluence, MinorityInfluence, RandomInfluence, TargetInfluence
from ._boostin import BoostIn
from ._config import config_context, get_config, set_config
from ._consensus import ConsensusInfluence
from ._ensemble import (
    LeafModelError,
    ReconstructionError,
    TrainingDataMismatchError,
    TreeEnsemble,
)
from ._leaf_influence import LeafInfluence, LeafRefit
from ._plotting import (
    CleaningCurveDisplay,
    CounterfactualDisplay,
    EditCurveDisplay,
    InfluenceDisplay,
    LDSDisplay,
    LOOCorrelationDisplay,
    NoiseDetectionDisplay,
    QueryScoresDisplay,
    SelfInfluenceDisplay,
)
from ._retrain import LOO, DataShapley, SubSample
from ._similarity import InputSim, LeafSim, TreeSim
from ._trex import TREX
from .cleaning import InfluenceCleaner, InfluenceSampler

__all__ = [
    "BoostIn",
    "ConsensusInfluence",
    "AXIL",
    "LeafInfluence",
    "LeafRefit",
    "LOO",
    "SubSample",
    "DataShapley",
    "TREX",
    "TreeSim",
    "LeafSim",
    "InputSim",
    "RandomInfluence",
    "TargetInfluence",
    "MinorityInfluence",
    "LossInfluence",
    "InfluenceCleaner",
    "InfluenceSampler",
    "LeafModelError",
    "ReconstructionError",
    "TrainingDataMismatchError",
    "TreeEnsemble",
    "UnsupportedModelError",
    "to_ensemble",
    "config_context",
    "get_config",
    "set_config",
    "InfluenceDisplay",
    "SelfInfluenceDisplay",
    "CleaningCurveDisplay",
    "EditCurveDisplay",
    "CounterfactualDisplay",
    "NoiseDetectionDisplay",
    "QueryScoresDisplay",
    "LDSDisplay",
    "LOOCorrelationDisplay",
]
