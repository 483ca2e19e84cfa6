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
import numpy as np
from lightgbm import LGBMClassifier
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV, train_test_split

from skinfluence import BoostIn, InfluenceCleaner
from skinfluence.plotting import CleaningCurveDisplay

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
# :class:`~skinfluence.plotting.CleaningCurveDisplay` draws what the search saw: the
# cross-validated accuracy (on noisy folds) of each fraction removed, with a band of
# one standard deviation over the folds, the chosen candidate, and ``"auto"`` as a
# horizontal line. The scores on the clean test labels are added: no cleaning and
# cleanlab as baselines, and the test accuracy of every candidate in black.
baselines = {"no cleaning (test)": no_cleaning}
if cleanlab_score is not None:
    baselines["cleanlab (test)"] = cleanlab_score
display = CleaningCurveDisplay.from_cv_results(search, param="fraction", baseline=baselines)
numeric = [i for i, f in enumerate(fractions) if f != "auto"]
display.ax_.plot(
    [100 * fractions[i] for i in numeric],
    [test_scores[i] for i in numeric],
    marker="s",
    color="black",
    label="test accuracy (clean labels)",
)
display.ax_.axhline(
    test_scores[fractions.index("auto")], color="black", ls=":", label="test accuracy, 'auto'"
)
display.ax_.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
display.figure_.set_size_inches(9.5, 4.5)
display.figure_.tight_layout()

# %%
# The noisy validation folds score every candidate lower than the clean labels do, but
# they agree on the main point: removing rows helps, and the search picks a useful
# amount of cleaning without any trusted labels. It does not pick the best candidate on
# the test labels, and cleanlab does better still on this data. How the options
# compare on many data sets and noise models, and how to give the search a small
# trusted set instead, is on the :doc:`/cleaning` page.
