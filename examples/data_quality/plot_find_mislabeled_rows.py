"""
Finding mislabeled rows
=======================

A model has to memorise a training row whose label is wrong: the row's influence on
its own prediction (its *self-influence*) is then large. Ranking the training rows by
self-influence gives a short list to check by hand. Here 10% of the labels of the
breast cancer data are flipped on purpose, so we can count how many of them each
ranking finds.
"""

# %%
# Flip some labels
# ----------------
import matplotlib.pyplot as plt
import numpy as np
from lightgbm import LGBMClassifier
from sklearn.datasets import load_breast_cancer

from skinfluence import BoostIn, LeafInfluence, LossInfluence, RandomInfluence
from skinfluence.plotting import SelfInfluenceDisplay

X, y_true = load_breast_cancer(return_X_y=True)
rng = np.random.default_rng(0)
flipped = rng.choice(len(y_true), size=len(y_true) // 10, replace=False)
y = y_true.copy()
y[flipped] = 1 - y[flipped]
is_noisy = np.zeros(len(y), dtype=bool)
is_noisy[flipped] = True
print(f"{is_noisy.sum()} of {len(y)} labels flipped")

model = LGBMClassifier(n_estimators=100, num_leaves=8, verbose=-1).fit(X, y)

# %%
# Rank the rows
# -------------
# Each method scores every training row; the largest scores are checked first.
# :class:`~skinfluence.LossInfluence` ranks by the training loss alone and
# :class:`~skinfluence.RandomInfluence` is the baseline of checking rows at random.
methods = {
    "BoostIn": BoostIn(model),
    "LeafInfluence": LeafInfluence(model),
    "training loss": LossInfluence(model),
    "random": RandomInfluence(model, random_state=0),
}
scores = {name: m.fit(X, y).self_influence() for name, m in methods.items()}

# %%
# How many flipped labels are among the first rows checked? The recall curve counts
# the share of all flipped rows found; the dashed line is what a perfect ranking
# would find.
checked = np.arange(1, len(y) + 1)
fig, ax = plt.subplots(figsize=(6, 4))
for name, s in scores.items():
    order = np.argsort(-s, kind="stable")
    found = np.cumsum(is_noisy[order])
    ax.plot(100 * checked / len(y), found / is_noisy.sum(), label=name)
ax.plot(
    100 * checked / len(y),
    np.minimum(checked, is_noisy.sum()) / is_noisy.sum(),
    "k--",
    lw=0.8,
    label="perfect",
)
ax.set_xlim(0, 40)
ax.set_xlabel("training rows checked (%)")
ax.set_ylabel("flipped labels found (recall)")
ax.legend()
fig.tight_layout()

# %%
# :class:`~skinfluence.plotting.SelfInfluenceDisplay` shows one method in detail: the
# rows ranked by BoostIn's self-influence with the top 10% marked and the flipped rows
# shown (they crowd the top of the ranking), and, since the flipped rows are known
# here, the precision and recall of checking the rows in that order.
display = SelfInfluenceDisplay.from_estimator(
    methods["BoostIn"], X, y, fraction=0.1, noisy=is_noisy
)
display.figure_.set_size_inches(10, 4)
display.figure_.tight_layout()

# %%
# Precision among the first rows checked, as many as were flipped:
k = is_noisy.sum()
for name, s in scores.items():
    top = np.argsort(-s, kind="stable")[:k]
    print(f"{name:>14}: {is_noisy[top].mean():.2f}")

# %%
# A row found this way is a candidate, not a verdict: rare but correct cases also
# have a large self-influence. The example
# :ref:`sphx_glr_auto_examples_data_quality_plot_gridsearch_cleaning.py` lets
# cross-validation decide how many rows to remove.
