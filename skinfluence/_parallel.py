"""What the methods and protocols that refit models in parallel share: the integer seed
of a call and the split of its tasks into batches.

Every task's result depends on the task alone (its own rows, seed or edit), never on
the batch it runs in, so the batching changes the scheduling and the progress bar but
no result.
"""

import numbers

import numpy as np
from joblib import effective_n_jobs
from sklearn.utils import check_random_state

__all__ = ["base_seed", "split_batches"]


def base_seed(random_state):
    """The integer seed of a call: an int is used as given; ``None`` or a
    ``RandomState`` draws one in ``[0, 2**31 - 1)``."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def split_batches(items, n_jobs, n_serial=4):
    """Split ``items`` (a sequence) into consecutive non-empty batches, in order.

    Four batches per joblib worker (``effective_n_jobs(n_jobs)``); with a single worker
    ``n_serial`` batches (more give a finer progress bar). Never more batches than
    items. Concatenating the batches gives ``items`` back.
    """
    n = len(items)
    n_workers = effective_n_jobs(n_jobs)
    n_batches = max(1, min(n, 4 * n_workers if n_workers > 1 else n_serial))
    parts = np.array_split(np.arange(n), n_batches)
    return [[items[i] for i in part] for part in parts if len(part)]
