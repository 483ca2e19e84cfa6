"""
A pipeline with categorical columns
===================================

Models are rarely fitted on raw arrays: a :class:`~sklearn.compose.ColumnTransformer`
one-hot encodes the categorical columns and imputes the numeric ones, and the tree
ensemble comes last in a :class:`~sklearn.pipeline.Pipeline`. The explainer of a
pipeline takes what the pipeline takes (the original DataFrame), so the rows it
points at are rows you can read.
"""

# %%
# The pipeline
# ------------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from skinfluence import BoostIn
from skinfluence.datasets import load_dataset

X, y, _ = load_dataset("credit")
categorical = list(X.select_dtypes("category").columns)
numeric = list(X.columns.difference(categorical))
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
prep = ColumnTransformer(
    [
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ("num", SimpleImputer(strategy="median"), numeric),
    ]
)
pipe = make_pipeline(prep, HistGradientBoostingClassifier(max_iter=50, random_state=0))
pipe.fit(X_train, y_train)
print(f"test accuracy {pipe.score(X_test, y_test):.3f}")
print("columns after the transformer:", pipe[:-1].transform(X_train.head(1)).shape[1])

# %%
# Explaining the pipeline
# -----------------------
# ``fit`` receives the DataFrame given to the pipeline. The influence equals that of
# the final model on the transformed rows; the explainer checks that the rows reaching
# the model are the ones it was trained on.
explainer = BoostIn(pipe).fit(X_train, y_train)
idx, val = explainer.top_k(X_test.iloc[:1], y_test[:1], k=3)
print("query:", y_test[0])
X_train.iloc[idx[0]].assign(label=y_train[idx[0]], influence=val[0])

# %%
# Which training rows help the test set?
# --------------------------------------
# ``global_influence`` sums each training row's influence over a set of queries without
# holding the (queries x training rows) matrix: here, its total effect on the loss of
# the test set. Grouping it by a categorical column shows which kinds of applicants the
# model learns its test predictions from, and which it would be better without.
g = explainer.global_influence(X_test, y_test)
frame = X_train.assign(label=y_train, influence=g)
by_group = frame.groupby(["Job", "label"], observed=True)["influence"].agg(["sum", "size"])
print(by_group)

# %%
# The mean influence per training row of each group, for two categorical columns:
# the rows labelled "bad" help the test predictions more than those labelled "good",
# most of all among part-time workers, where the "good" rows hurt on average.
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, column in zip(axes, ["Job", "Home"]):
    means = frame.groupby([column, "label"], observed=True)["influence"].mean()
    means.unstack("label").plot.barh(ax=ax, color={"bad": "tab:red", "good": "tab:blue"})
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("mean influence on the test loss (positive = helpful)")
    ax.set_title(f"training rows by {column} and label")
fig.tight_layout()

# %%
# The most harmful training rows for the test set, readable as they were given:
worst = np.argsort(g)[:5]
pd.DataFrame(X_train.iloc[worst]).assign(label=y_train[worst], influence=g[worst])
