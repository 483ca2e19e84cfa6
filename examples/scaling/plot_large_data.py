"""
Large data without the full influence matrix
============================================

The influence matrix has one entry per (query, training row): a million queries
against a million training rows would take 8 TB. Most questions need much less, and
skinfluence answers them in blocks of queries whose memory is bounded by the
``chunk_memory_mb`` parameter:

* ``top_k`` keeps only the ``k`` most helpful (or harmful) training rows per query;
* ``global_influence`` keeps only the sum over the queries (one value per training
  row);
* ``transform(X, y, out=array)`` writes the matrix block by block into an array you
  provide, such as a :class:`numpy.memmap` on disk, a zarr or an HDF5 array;
* on a dask cluster, the training rows stay partitioned on the workers.

The spam data bundled with skinfluence (4,601 e-mails) stands in for a large set
here; the calls are the same at any size.
"""

# %%
# The model
# ---------
import tempfile
from pathlib import Path

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster
from lightgbm import LGBMClassifier
from sklearn.model_selection import train_test_split

from skinfluence import BoostIn
from skinfluence.datasets import load_dataset

X, y, _ = load_dataset("spam", as_frame=False)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
model = LGBMClassifier(n_estimators=100, num_leaves=31, n_jobs=1, verbose=-1).fit(X_train, y_train)
# a small memory budget per block of queries, to show the blocking at this size
explainer = BoostIn(model, chunk_memory_mb=2).fit(X_train, y_train)
full_mb = len(X_test) * len(X_train) * 8 / 2**20
print(f"{len(X_train)} training rows, {len(X_test)} queries: full matrix {full_mb:.0f} MB")

# %%
# The top rows of every query
# ---------------------------
# ``top_k`` returns two ``(n_query, k)`` arrays: the training rows and their values.
idx, val = explainer.top_k(X_test, y_test, k=10)
print(idx.shape, val.shape)

# %%
# How often does each training row appear among the ten most helpful rows of a test
# e-mail? A few rows support a large share of the predictions.
counts = np.bincount(idx.ravel(), minlength=len(X_train))
ranked = np.sort(counts)[::-1]
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(np.cumsum(ranked) / ranked.sum())
ax.set_xscale("log")
ax.set_xlabel("training rows, most often in a top 10 first")
ax.set_ylabel("share of all top-10 places")
ax.set_title("top_k: who supports the predictions")
fig.tight_layout()

# %%
# Global influence
# ----------------
# The total influence of each training row on the loss of all test rows, one block of
# queries at a time. Rows with a negative total make the test loss worse: the first
# candidates to inspect in a large training set.
g = explainer.global_influence(X_test, y_test)
fig, ax = plt.subplots(figsize=(6, 4))
ax.hist(g, bins=60, color="tab:blue")
ax.set_yscale("log")
ax.axvline(0, color="grey", lw=0.8)
ax.set_xlabel("total influence on the test loss")
ax.set_ylabel("training rows")
ax.set_title("global_influence: one value per row")
fig.tight_layout()
print(f"{np.sum(g < 0)} training rows raise the test loss in total")

# %%
# The full matrix on disk
# -----------------------
# When the whole matrix is needed, ``out=`` receives it block by block; only the
# current block is held in memory besides ``out``. A memory-mapped file:
with tempfile.TemporaryDirectory() as tmp:
    out = np.lib.format.open_memmap(
        Path(tmp) / "influence.npy",
        mode="w+",
        dtype=np.float64,
        shape=(len(X_test), len(X_train)),
    )
    explainer.transform(X_test, y_test, out=out)
    out.flush()
    on_disk = np.load(Path(tmp) / "influence.npy", mmap_mode="r")
    # the same values top_k and global_influence computed, block by block
    print("top-k agrees:", np.allclose(np.take_along_axis(on_disk, idx, axis=1), val))
    print("global agrees:", np.allclose(on_disk.sum(axis=0), g))
    del out, on_disk

# %%
# On a dask cluster
# -----------------
# When the training rows do not fit one machine, ``fit`` takes them partitioned
# (a :mod:`dask.array` or :mod:`dask.dataframe`) and keeps each partition's leaf ids on
# the worker that holds it; ``top_k`` merges the partitions' lists and
# ``global_influence`` returns a lazy array with one chunk per partition (see
# :doc:`/distributed`). A small in-process cluster stands in for a real one here.
with (
    LocalCluster(n_workers=2, threads_per_worker=1, processes=False) as cluster,
    Client(cluster),
):
    X_parts = da.from_array(X_train, chunks=(1_000, X_train.shape[1]))
    y_parts = da.from_array(y_train, chunks=(1_000,))
    distributed = BoostIn(model).fit(X_parts, y_parts)
    idx_d, val_d = distributed.top_k(X_test, y_test, k=10)
    g_d = distributed.global_influence(X_test, y_test).compute()

print("partitions:", X_parts.numblocks[0])
print("same top-k rows as in memory:", np.array_equal(idx_d, idx))
print("global influence within 1e-9:", np.allclose(g_d, g, rtol=1e-9, atol=1e-12))
fig, ax = plt.subplots(figsize=(6, 4))
ax.scatter(g, g_d, s=4)
ax.set_xlabel("global influence, in memory")
ax.set_ylabel("global influence, on the dask cluster")
ax.set_title("the same values, computed per partition")
fig.tight_layout()
