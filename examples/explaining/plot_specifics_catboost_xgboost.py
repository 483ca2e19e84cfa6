"""
CatBoost categoricals and XGBoost multiclass
============================================

Two library-specific cases. CatBoost takes categorical columns as strings and can
encode them in two ways: one-hot splits, which skinfluence follows exactly, and
target statistics computed during training (CTRs), which it refuses with a message
saying so. XGBoost grows one tree per class and round for a multiclass model; the
influence of a training row on a query then depends on both rows' classes, and
:meth:`~skinfluence.BoostIn.label_edit` tells what relabelling a row would do.
"""

# %%
# CatBoost with categorical columns
# ---------------------------------
# CatBoost wants categorical columns as strings, named in ``cat_features``; missing
# categories become a category of their own. A subsample of the credit data keeps the
# example fast.
import matplotlib.pyplot as plt
import numpy as np
from catboost import CatBoostClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from xgboost import XGBClassifier

import skinfluence
from skinfluence import BoostIn
from skinfluence.datasets import load_dataset

X, y, _ = load_dataset("credit")
X, y = X.iloc[:1500].copy(), y[:1500]
cats = list(X.select_dtypes("category").columns)
for c in cats:  # strings, and a category of its own for missing values
    X[c] = X[c].astype(object).fillna("missing").astype(str)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)

# %%
# With CatBoost's defaults, categories with more than two values are encoded by target
# statistics (CTRs) computed during training; the leaves were fitted on a routing of
# the training rows that the final model no longer reproduces, and the gradient
# methods' ``fit`` says so (:class:`~skinfluence.LeafModelError`, naming the setting):
params = {"iterations": 60, "depth": 4, "thread_count": 1, "random_seed": 0, "verbose": 0}
ctr_model = CatBoostClassifier(**params).fit(X_train, y_train, cat_features=cats)
try:
    BoostIn(ctr_model).fit(X_train, y_train)
except skinfluence.LeafModelError as err:
    print(str(err).split("Settings of this model that break the leaf model: ")[-1])

# %%
# With ``one_hot_max_size`` above the number of categories every categorical split
# is a one-hot split, which skinfluence routes as CatBoost does. CatBoost also
# computes each leaf by several Newton steps with backtracking; the explainer replays
# them and checks the stored leaves.
model = CatBoostClassifier(one_hot_max_size=16, **params)
model.fit(X_train, y_train, cat_features=cats)
explainer = BoostIn(model).fit(X_train, y_train)
print(f"test accuracy {model.score(X_test, y_test):.3f}")

query = X_test.iloc[[0]]
idx, val = explainer.top_k(query, y_test[:1], k=8)
X_train.iloc[idx[0]].assign(label=y_train[idx[0]], influence=val[0])

# %%
# XGBoost, four classes
# ---------------------
# The HPC job data: which of four run-time classes (``VF`` very fast, ``F`` fast,
# ``M`` moderate, ``L`` long) a job falls in. XGBoost takes pandas categoricals with
# ``enable_categorical=True`` and wants the labels as ``0 .. K-1``.
X, y_text, _ = load_dataset("hpc")
encoder = LabelEncoder().fit(y_text)
y = encoder.transform(y_text)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
xgb = XGBClassifier(
    n_estimators=40, max_depth=4, enable_categorical=True, n_jobs=1, random_state=0
).fit(X_train, y_train)
print(f"classes {list(encoder.classes_)}, test accuracy {xgb.score(X_test, y_test):.3f}")
explainer = BoostIn(xgb).fit(X_train, y_train)

# %%
# Influence between classes: for the test rows of each class, the mean influence of
# the training rows of each class on them. Rows of the query's class help it (the
# diagonal); rows of neighbouring run-time classes hurt most.
M = explainer.transform(X_test, y_test)
K = len(encoder.classes_)
order = [list(encoder.classes_).index(c) for c in ("VF", "F", "M", "L")]
block = np.array([[M[y_test == q][:, y_train == t].mean() for t in order] for q in order])
fig, ax = plt.subplots(figsize=(5.5, 4.5))
lim = np.abs(block).max()
im = ax.imshow(block, cmap="RdBu", vmin=-lim, vmax=lim)
ax.set_xticks(range(K), encoder.classes_[order])
ax.set_yticks(range(K), encoder.classes_[order])
ax.set_xlabel("class of the training row")
ax.set_ylabel("class of the test row")
ax.set_title("mean influence (blue = helpful)")
fig.colorbar(im, ax=ax)
fig.tight_layout()

# %%
# Relabelling: ``label_edit(X, y, new_labels="each")`` estimates, for every training
# row and every class, how the query's loss would change if that row alone had that
# label. For one test row, the training rows whose relabelling would lower its loss
# most:
e = int(np.flatnonzero(xgb.predict(X_test) != y_test)[0])  # a misclassified test row
change = explainer.label_edit(X_test.iloc[[e]], y_test[[e]], new_labels="each")[0]
best = np.unravel_index(np.argsort(change, axis=None)[:8], change.shape)
print(
    f"test row {e}: label {encoder.classes_[y_test[e]]}, "
    f"predicted {encoder.classes_[xgb.predict(X_test.iloc[[e]])[0]]}"
)
for row, c in zip(*best):
    print(
        f"  training row {row}: {encoder.classes_[y_train[row]]} -> {encoder.classes_[c]}"
        f" changes the loss by {change[row, c]:+.4f}"
    )
fig, ax = plt.subplots(figsize=(6, 4))
for c in order:
    ax.plot(np.sort(change[:, c])[:50], label=f"relabel to {encoder.classes_[c]}")
ax.set_xlabel("training rows, most loss-lowering edit first")
ax.set_ylabel("change of the test row's loss")
ax.set_title(f"label edits for test row {e}")
ax.legend(fontsize=8)
fig.tight_layout()
