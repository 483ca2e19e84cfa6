"""
Quick start
===========

Train a LightGBM classifier on the breast cancer data set, ask
:class:`~skinfluence.BoostIn` which training rows are responsible for a test
prediction, and find the training rows the model could only fit by memorising them.
"""

# %%
# A model to explain
# ------------------
# Any fitted LightGBM, XGBoost, CatBoost or scikit-learn tree ensemble works. This one is
# small so that the example runs in a second.
import matplotlib.pyplot as plt
import numpy as np
from lightgbm import LGBMClassifier
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from skinfluence import BoostIn
from skinfluence.plotting import SelfInfluenceDisplay

data = load_breast_cancer()
X_train, X_test, y_train, y_test = train_test_split(
    data.data, data.target, test_size=0.25, random_state=0, stratify=data.target
)
model = LGBMClassifier(n_estimators=50, num_leaves=8, verbose=-1).fit(X_train, y_train)
print(f"test accuracy: {model.score(X_test, y_test):.3f}")

# %%
# The influence matrix
# --------------------
# An explainer is a scikit-learn transformer: the model is its parameter, ``fit`` takes
# the model's training rows (it checks that they are: the trees record them), and
# ``transform`` returns one row per query and one column per training row. A positive
# value means *helpful*: removing that training row would raise the query's loss.
explainer = BoostIn(model).fit(X_train, y_train)
M = explainer.transform(X_test, y_test)
print(M.shape)

# %%
# The five most helpful and the five most harmful training rows of the first test row:
query = 0
helpful, helpful_values = explainer.top_k(X_test[[query]], y_test[[query]], k=5)
harmful, harmful_values = explainer.top_k(X_test[[query]], y_test[[query]], k=5, kind="harmful")
print("query label:", data.target_names[y_test[query]])
for name, rows, values in (
    ("helpful", helpful[0], helpful_values[0]),
    ("harmful", harmful[0], harmful_values[0]),
):
    labels = data.target_names[y_train[rows]]
    print(name, [f"row {r} ({lab}): {v:+.3f}" for r, lab, v in zip(rows, labels, values)])

# %%
# Rows of the query's class help it, rows of the other class mostly hurt it. Sorting
# every training row by its influence on this query shows how few rows carry most of
# the prediction:
order = np.argsort(M[query])[::-1]
same = y_train[order] == y_test[query]
fig, ax = plt.subplots(figsize=(7, 3.5))
ranks = np.arange(len(order))
ax.bar(ranks[same], M[query, order][same], width=1.0, color="tab:blue", label="same label")
ax.bar(ranks[~same], M[query, order][~same], width=1.0, color="tab:red", label="other label")
ax.axhline(0, color="grey", lw=0.8)
ax.set_xlabel("training rows, most helpful first")
ax.set_ylabel("influence on the test row")
ax.set_title(f"BoostIn: training rows behind test row {query}")
ax.legend()
fig.tight_layout()

# %%
# Self-influence: rows the model memorised
# ----------------------------------------
# The influence of a training row on its own prediction is large when the model fits
# that row mostly because it saw it: typical of wrong labels and rare cases.
# :class:`~skinfluence.plotting.SelfInfluenceDisplay` draws the training rows ranked by
# self-influence and marks the top 2%.
display = SelfInfluenceDisplay.from_estimator(explainer, X_train, y_train, fraction=0.02)
print("rows to look at first:", display.order_[:10])
