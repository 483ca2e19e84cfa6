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
from lightgbm import LGBMClassifier
from sklearn.model_selection import train_test_split

from skinfluence import BoostIn
from skinfluence.datasets import load_dataset
from skinfluence.plotting import InfluenceDisplay, top_influences_frame

X, y, task = load_dataset("credit")
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
model = LGBMClassifier(n_estimators=60, num_leaves=15, verbose=-1)
model.fit(X_train, y_train)
print(f"{len(X_train)} training rows, test accuracy {model.score(X_test, y_test):.3f}")

# %%
# One applicant the model calls "bad"
# -----------------------------------
# Without a label, the explainer explains the model's own prediction: the influence is
# on the loss of the predicted label.
pred = model.predict(X_test)
query = X_test.iloc[[int(np.flatnonzero(pred == "bad")[0])]]
print("prediction:", model.predict(query)[0])
print("probability of 'bad':", model.predict_proba(query)[0, 0].round(3))
query

# %%
explainer = BoostIn(model).fit(X_train, y_train)

# %%
# The training rows behind it, as a table: the five most helpful and the five most
# harmful training rows, with their influence, label, the features in which they
# differ most from the applicant, and all their features.
# :func:`~skinfluence.plotting.top_influences_frame` needs pandas.
top_influences_frame(explainer, query, X_train=X_train, y_train=y_train, k=5)

# %%
# The same rows as a picture: :class:`~skinfluence.plotting.InfluenceDisplay` draws one
# bar per training row, its length the row's influence on the prediction, labelled with
# the row's label and the features that differ most from the applicant (numeric
# features by their gap in training-set standard deviations, categorical features when
# the category differs).
fig, ax = plt.subplots(figsize=(11, 4.5))
display = InfluenceDisplay.from_estimator(
    explainer, query, X_train=X_train, y_train=y_train, k=5, ax=ax
)
ax.set_title("Most helpful and most harmful training rows")
fig.tight_layout()

# %%
# Like scikit-learn's Displays, it keeps what it drew (``display.ax_``,
# ``display.figure_``, the bars) and draws again on other axes with
# ``display.plot(ax=...)``.
#
# The helpful rows are applicants labelled "bad" who resemble this one; the harmful
# ones are similar applicants labelled "good". A harmful row with a wrong label would
# be a candidate for review: the example
# :ref:`sphx_glr_auto_examples_data_quality_plot_find_mislabeled_rows.py` looks for
# such rows across the whole training set.
