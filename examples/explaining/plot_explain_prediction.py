"""
Explaining one prediction
=========================

A credit scoring model says "bad" for an applicant. Which past applicants made it say
so? This example trains LightGBM on the bundled credit data (pandas columns with
native categorical features and missing values), and shows the training rows that
helped and hurt that prediction most, side by side with the applicant.
"""

# %%
# The data and the model
# ----------------------
# :func:`skinfluence.datasets.load_dataset` returns a DataFrame whose string columns
# are pandas categoricals; LightGBM splits on them natively, and skinfluence routes
# the rows exactly as LightGBM does (categories and NaN included).
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.model_selection import train_test_split

from skinfluence import BoostIn
from skinfluence.datasets import load_dataset

X, y, task = load_dataset("credit")
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
model = LGBMClassifier(n_estimators=60, num_leaves=15, verbose=-1)
model.fit(X_train, y_train)
print(f"{len(X_train)} training rows, test accuracy {model.score(X_test, y_test):.3f}")

# %%
# One applicant the model calls "bad"
# -----------------------------------
# Without labels, ``transform`` and ``top_k`` explain the model's own prediction: the
# influence is on the loss of the predicted label.
pred = model.predict(X_test)
query = X_test.iloc[[int(np.flatnonzero(pred == "bad")[0])]]
print("prediction:", model.predict(query)[0])
print("probability of 'bad':", model.predict_proba(query)[0, 0].round(3))
query

# %%
explainer = BoostIn(model).fit(X_train, y_train)
helpful, helpful_val = explainer.top_k(query, k=5)
harmful, harmful_val = explainer.top_k(query, k=5, kind="harmful")

# %%
# The training rows behind it, as a table: the query first, then the five most helpful
# and the five most harmful training rows with their labels and influence.
rows = np.concatenate([helpful[0], harmful[0]])
table = X_train.iloc[rows].copy()
table.insert(0, "influence", np.concatenate([helpful_val[0], harmful_val[0]]))
table.insert(1, "label", y_train[rows])
table.insert(2, "kind", ["helpful"] * 5 + ["harmful"] * 5)
head = query.copy()
head.insert(0, "influence", np.nan)
head.insert(1, "label", "(query)")
head.insert(2, "kind", "query")
table = pd.concat([head, table])
table

# %%
# A picture of the same: bars for the influence of each row, annotated with its
# label and the features in which it differs most from the applicant (numeric
# features by their difference in training-set standard deviations, categorical
# features when the category differs).
numeric = X_train.select_dtypes("number").columns
scale = X_train[numeric].std()


def differences(row, n=2):
    """The ``n`` features in which a training row differs most from the query."""
    diff = (X_train.loc[row, numeric] - query.iloc[0][numeric]).astype(float)
    gaps = (diff.abs() / scale).fillna(0.0).to_dict()
    for c in X_train.columns.difference(numeric):
        gaps[c] = 3.0 * float(X_train.loc[row, c] != query.iloc[0][c])
    gaps = pd.Series(gaps)
    return ", ".join(f"{c}={X_train.loc[row, c]}" for c in gaps.nlargest(n).index)


values = np.concatenate([helpful_val[0], harmful_val[0]])
fig, ax = plt.subplots(figsize=(8, 4.5))
colors = ["tab:blue"] * 5 + ["tab:red"] * 5
positions = np.arange(len(rows))[::-1]
ax.barh(positions, values, color=colors)
ax.set_yticks(
    positions,
    [f"row {X_train.index[r]} ({y_train[r]})" for r in rows],
)
for pos, r, v in zip(positions, rows, values):
    ax.annotate(
        differences(X_train.index[r]),
        (0, pos),
        xytext=(-4 if v > 0 else 4, 0),
        textcoords="offset points",
        ha="right" if v > 0 else "left",
        va="center",
        fontsize=8,
    )
ax.axvline(0, color="grey", lw=0.8)
ax.set_xlabel("influence on the prediction 'bad' (positive = helpful)")
ax.set_title("Most helpful and most harmful training rows")
fig.tight_layout()

# %%
# The helpful rows are applicants labelled "bad" who resemble this one; the harmful
# ones are similar applicants labelled "good". A harmful row with a wrong label would
# be a candidate for review: :ref:`sphx_glr_auto_examples_data_quality_plot_find_mislabeled_rows.py`
# looks for such rows across the whole training set.
