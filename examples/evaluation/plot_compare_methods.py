"""
Comparing methods with the paper's protocols
============================================

Influence methods approximate what retraining would do, so the way to judge one on
your model and data is to retrain. :mod:`skinfluence.evaluation` implements the
protocols of Brophy, Hammoudeh and Lowd (2023) and two measures of the wider
literature. This example compares four methods and a random baseline on a small
LightGBM model of the breast cancer data with three of them:

* **removal curve**: remove each test row's most helpful training rows, retrain, and
  see how much its loss rises (higher is better);
* **noise detection**: flip 20% of the labels, check the rows each method ranks
  first, and count the flipped ones found;
* **linear datamodeling score (LDS)**: over random half-size training subsets, how
  well the summed influence ranks the losses of the models retrained on them.

Every protocol refits the model many times; the sizes below are small to keep the
example fast, not to give final answers (:ref:`methods-evaluation` describes each
protocol).
"""

# %%
# Model, data and methods
# -----------------------
import matplotlib.pyplot as plt
from lightgbm import LGBMClassifier
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from skinfluence import TREX, BoostIn, LeafInfluence, LeafSim, RandomInfluence
from skinfluence.evaluation import (
    linear_datamodeling_score,
    noise_detection,
    single_query_curve,
    subset_outputs,
)
from skinfluence.plotting import EditCurveDisplay, LDSDisplay, NoiseDetectionDisplay

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=300, test_size=100, random_state=0, stratify=y
)
model = LGBMClassifier(n_estimators=30, num_leaves=8, n_jobs=1, verbose=-1, random_state=0)
model.fit(X_train, y_train)
methods = {
    "BoostIn": BoostIn(),
    "LeafInfluence": LeafInfluence(),
    "TREX": TREX(),
    "LeafSim": LeafSim(),
    "Random": RandomInfluence(random_state=0),
}

# %%
# Removal curves
# --------------
# For five test rows, remove 0.5% to 5% of the training rows, most helpful first.
# An unfitted method is fitted on the full training set by the protocol.
queries = slice(0, 5)
removal = {
    name: single_query_curve(
        model,
        X_train,
        y_train,
        X_test[queries],
        y_test[queries],
        method,
        fractions=[0.0, 0.005, 0.01, 0.02, 0.05],
    )
    for name, method in methods.items()
}

# %%
# Noise detection
# ---------------
# Each method ranks the training rows by self-influence; the curve shows the share of
# the flipped labels among the rows checked (its area is in the legend).
detection = {
    name: noise_detection(
        model,
        X_train,
        y_train,
        X_test,
        y_test,
        method,
        noise_fraction=0.2,
        fractions=[0.0, 0.05, 0.1, 0.2, 0.3],
    )
    for name, method in methods.items()
    if name != "LeafSim"  # a similarity has no meaningful self-influence
}

# %%
# Linear datamodeling score
# -------------------------
# The retrained models are shared by all methods: :func:`subset_outputs` fits them
# once.
subsets = subset_outputs(
    model, X_train, y_train, X_test[:20], y_test[:20], n_subsets=30, random_state=0
)
lds = {
    name: linear_datamodeling_score(
        model, X_train, y_train, X_test[:20], y_test[:20], method, subsets=subsets
    )
    for name, method in methods.items()
}

# %%
# The three protocols side by side, each drawn by its Display
# (:mod:`skinfluence.plotting`); a mapping ``{name: result}`` gives one labelled curve
# (or box) per method:
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
EditCurveDisplay.from_results(removal, ax=axes[0])
axes[0].set_title("remove the most helpful rows")
NoiseDetectionDisplay.from_results(detection, ax=axes[1])
axes[1].set_title("find flipped labels")
LDSDisplay.from_results(lds, ax=axes[2])
axes[2].set_title("linear datamodeling score")
fig.tight_layout()

# %%
# The results are tidy tables (pandas DataFrames when pandas is installed), with the
# summaries in ``attrs``:
for name, res in detection.items():
    print(f"{name:>14}: detection area {res.attrs['detection_area']:.3f}")
