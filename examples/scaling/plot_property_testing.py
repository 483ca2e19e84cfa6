"""
Property-testing your own pipeline
==================================

Code built on skinfluence should work for every model it may be given: LightGBM,
XGBoost, CatBoost and scikit-learn, binary or multiclass, with or without missing
values. :mod:`skinfluence.testing.strategies` provides `hypothesis
<https://hypothesis.readthedocs.io>`_ strategies that draw small fitted models of
every installed library; a property test then checks a rule on each of them, and
hypothesis shrinks any failure to a minimal case.

The code under test here is a small review queue: the training rows a data team
should check first, by self-influence.
"""

# %%
# The code under test
# -------------------
import catboost  # noqa: F401  (see below)
import matplotlib.pyplot as plt
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer

from skinfluence import BoostIn
from skinfluence.testing.strategies import Dataset, fitted_models


def review_queue(model, X, y, k=10):
    """The ``k`` training rows to review first and their scores, largest first."""
    scores = BoostIn(model).fit(X, y).self_influence()
    order = np.argsort(-scores, kind="stable")[:k]
    return order, scores[order]


# %%
# Data drawn from a real data set
# -------------------------------
# The strategies draw synthetic data by default; ``fitted_models(data=...)`` takes any
# strategy of :class:`~skinfluence.testing.strategies.Dataset`. Here: random subsets
# of the rows and columns of the breast cancer data.
X_all, y_all = load_breast_cancer(return_X_y=True)


@st.composite
def breast_cancer_subsets(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows = rng.choice(len(y_all), size=draw(st.integers(40, 200)), replace=False)
    cols = rng.choice(X_all.shape[1], size=draw(st.integers(2, 8)), replace=False)
    return Dataset(X_all[np.ix_(rows, cols)], y_all[rows], "binary")


# %%
# The properties
# --------------
# For every model BoostIn accepts (``method=BoostIn`` leaves out forests and any
# setting BoostIn refuses): the queue has ``k`` distinct rows, sorted by a finite
# score, and reordering the training rows given to ``fit`` reorders the queue's scores
# with them, since the explainer follows the rows, not their positions.
#
# (CatBoost raises the interpreter's recursion limit when it is first imported; it is
# imported above so that this does not happen inside the test, where hypothesis would
# warn that it cannot restore the limit.)
drawn = []


@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(case=fitted_models(breast_cancer_subsets(), method=BoostIn), k=st.integers(1, 15))
def test_review_queue(case, k):
    order, scores = review_queue(case.model, case.X, case.y, k=k)
    assert len(order) == min(k, len(case.y)) == len(np.unique(order))
    assert np.all(np.isfinite(scores)) and np.all(np.diff(scores) <= 0)

    perm = np.random.default_rng(0).permutation(len(case.y))
    moved = BoostIn(case.model).fit(case.X[perm], case.y[perm]).self_influence()
    full = BoostIn(case.model).fit(case.X, case.y).self_influence()
    np.testing.assert_allclose(moved, full[perm], rtol=1e-9, atol=1e-12)
    drawn.append((case.library, len(case.y), case.X.shape[1], scores[0]))


test_review_queue()
print(f"{len(drawn)} drawn models passed")

# %%
# What hypothesis drew: the libraries, the data sizes, and the largest score of each
# queue.
libraries = sorted({d[0] for d in drawn})
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
axes[0].bar(libraries, [sum(d[0] == lib for d in drawn) for lib in libraries])
axes[0].set_ylabel("drawn models")
axes[0].set_title("libraries")
for t in axes[0].get_xticklabels():
    t.set_rotation(30)
    t.set_ha("right")
for lib in libraries:
    pts = np.array([(d[1], d[3]) for d in drawn if d[0] == lib], dtype=float)
    axes[1].scatter(pts[:, 0], pts[:, 1], label=lib)
axes[1].set_xlabel("training rows")
axes[1].set_ylabel("largest self-influence in the queue")
axes[1].set_yscale("symlog", linthresh=1e-3)
axes[1].legend(fontsize=8)
fig.tight_layout()

# %%
# In a test suite the function above is collected by pytest as it is; the
# ``@settings`` line is where the number of examples and the reproducibility
# (``derandomize``) are chosen.
