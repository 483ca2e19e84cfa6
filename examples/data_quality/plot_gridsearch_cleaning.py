"""
Cleaning labels inside a grid search
====================================

:class:`~skinfluence.InfluenceCleaner` is a model: its ``fit`` scores every training
row by influence, removes the most harmful ones and fits the model on the rest. So
:class:`~sklearn.model_selection.GridSearchCV` can decide *how much* to clean, with
each fold scoring influence on its own training part only. This example corrupts 20%
of the training labels of the breast cancer data, lets the grid search choose the
fraction of rows to remove, and compares the held-out accuracy on clean test labels
with no cleaning and, when it is installed, with cleanlab.
"""

# %%
# Noisy training labels, clean test labels
# ----------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from lightgbm import LGBMClassifier
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV, train_test_split

from skinfluence import BoostIn, InfluenceCleaner

X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
rng = np.random.default_rng(0)
noisy = rng.choice(len(y_train), size=len(y_train) // 5, replace=False)
y_noisy = y_train.copy()
y_noisy[noisy] = 1 - y_noisy[noisy]

model = LGBMClassifier(n_estimators=60, num_leaves=8, n_jobs=1, verbose=-1, random_state=0)

# %%
# The grid search
# ---------------
# ``fraction=0`` is the model fitted on the data as given, the baseline the search
# compares with; ``"auto"`` removes as many rows as out-of-fold models contradict.
# The validation folds carry the same noisy labels: cross-validation has no clean
# labels either, which is the realistic case.
fractions = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, "auto"]
search = GridSearchCV(
    InfluenceCleaner(model, BoostIn(), random_state=0, cv=3),
    {"fraction": fractions},
    cv=3,
).fit(X_train, y_noisy)
print("chosen:", search.best_params_)

# %%
# Held-out accuracy of every candidate, refitted on the whole noisy training set, on
# the clean test labels:
test_scores = [
    InfluenceCleaner(model, BoostIn(), fraction=f, random_state=0, cv=3)
    .fit(X_train, y_noisy)
    .score(X_test, y_test)
    for f in fractions
]
no_cleaning = test_scores[0]
cleaned = search.score(X_test, y_test)
print(f"no cleaning: {no_cleaning:.3f}, grid search: {cleaned:.3f}")

# %%
# cleanlab's ``CleanLearning`` finds label issues from out-of-fold probabilities; it
# is an optional dependency (``pip install cleanlab``).
try:
    from cleanlab.classification import CleanLearning
except ImportError:
    cleanlab_score = None
else:
    cl = CleanLearning(model, seed=0, cv_n_folds=3, verbose=False)
    cleanlab_score = cl.fit(X_train, y_noisy).score(X_test, y_test)
    print(f"cleanlab: {cleanlab_score:.3f}")

# %%
# The figure: the cross-validated accuracy (noisy folds) that the search maximised,
# and the accuracy on the clean test labels, against the fraction of rows removed.
labels = [str(f) for f in fractions]
x = np.arange(len(fractions))
cv_mean = search.cv_results_["mean_test_score"]
cv_std = search.cv_results_["std_test_score"]
fig, ax = plt.subplots(figsize=(7, 4))
ax.errorbar(x, cv_mean, yerr=cv_std, marker="o", capsize=3, label="CV accuracy (noisy)")
ax.plot(x, test_scores, marker="s", label="test accuracy (clean)")
ax.axhline(no_cleaning, color="grey", ls=":", label="no cleaning (test)")
if cleanlab_score is not None:
    ax.axhline(cleanlab_score, color="tab:green", ls="--", label="cleanlab (test)")
best = fractions.index(search.best_params_["fraction"])
ax.plot(x[best], test_scores[best], "*", ms=14, color="tab:red", label="chosen by CV")
ax.set_xticks(x, labels)
ax.set_xlabel("fraction of training rows removed")
ax.set_ylabel("accuracy")
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout()

# %%
# The noisy validation folds rank the candidates as the clean test labels do, so the
# search can pick a useful amount of cleaning without any trusted labels. How the
# options compare on many data sets and noise models is on the :doc:`/cleaning` page.
