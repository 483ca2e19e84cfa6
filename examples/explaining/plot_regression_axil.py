"""
Regression: influence and AXIL weights
======================================

The bundled concrete data: the compressive strength of 1,030 concrete mixes from
their ingredients and age. For a squared-error boosted regressor,
:class:`~skinfluence.AXIL` writes each prediction *exactly* as a weighted sum of the
training targets, so "which mixes is this prediction made of?" has a literal answer;
:class:`~skinfluence.BoostIn` says which mixes push the prediction up or down.
"""

# %%
# The model
# ---------
import matplotlib.pyplot as plt
import numpy as np
from lightgbm import LGBMRegressor
from sklearn.model_selection import train_test_split

from skinfluence import AXIL, BoostIn
from skinfluence.datasets import load_dataset

X, y, _ = load_dataset("concrete")
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
model = LGBMRegressor(n_estimators=150, num_leaves=15, n_jobs=1, verbose=-1)
model.fit(X_train, y_train)
print(f"test R^2 {model.score(X_test, y_test):.3f}")

# %%
# AXIL weights
# ------------
# ``transform(X)`` without labels returns the weights ``k_i(x)``; with the intercept
# they reproduce the predictions to float32 rounding (LightGBM stores float32-rounded
# values).
axil = AXIL(model).fit(X_train, y_train)
K = axil.transform(X_test)
rebuilt = K @ y_train + axil.intercept(X_test)
print("largest gap to predict():", np.abs(rebuilt - model.predict(X_test)).max())
print("weights sum to", K.sum(axis=1)[:3].round(6))

# %%
# One mix: its prediction is a weighted average of training strengths. The rows with
# the largest weights are the mixes it resembles most in the model's eyes.
query = 0
w = K[query]
top = np.argsort(-np.abs(w))[:8]
X_train.iloc[top].assign(strength=y_train[top], weight=w[top])

# %%
# BoostIn without labels gives the influence on the predicted value: positive means
# removing the training row would *lower* the prediction. Both views of the same
# query, against each training mix's strength:
b = BoostIn(model).fit(X_train, y_train).transform(X_test.iloc[[query]])[0]
pred = model.predict(X_test.iloc[[query]])[0]
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
axes[0].scatter(y_train, w, s=8, alpha=0.6)
axes[0].set_ylabel("AXIL weight")
axes[0].set_title(f"prediction {pred:.1f} = sum(weight x strength)")
axes[1].scatter(y_train, b, s=8, alpha=0.6, color="tab:orange")
axes[1].set_ylabel("BoostIn influence on the prediction")
axes[1].set_title("positive: the row pushes the prediction up")
for ax in axes:
    ax.axvline(pred, color="grey", ls="--", lw=0.8)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("strength of the training mix (MPa)")
fig.tight_layout()

# %%
# The heaviest row of the weighted average and the row whose removal would raise the
# prediction most (BoostIn's most negative value):
heaviest, most_negative = int(np.argmax(w)), int(np.argmin(b))
print(f"largest weight: row {heaviest}, strength {y_train[heaviest]:.1f}, weight {w[heaviest]:.3f}")
print(f"BoostIn's most negative: row {most_negative} (strength {y_train[most_negative]:.1f})")

# %%
# Here they are the same weak mix: it carries much of the prediction, and removing it
# would raise the prediction most. Beyond the few heavy rows the two views differ: AXIL
# says what the prediction is made of, BoostIn what removing one row would change.
