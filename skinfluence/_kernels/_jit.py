"""The house numba decorator.

Every kernel is compiled in nopython mode with ``cache=True`` and ``nogil=True`` and
never with ``fastmath`` (GBMs route NaN, and long sums must stay exact). Caching can be
switched off with the environment variable ``SKINFLUENCE_NUMBA_CACHE=0``.
"""

import os
from functools import partial

import numba

CACHE = os.environ.get("SKINFLUENCE_NUMBA_CACHE", "1") != "0"

njit = partial(numba.njit, cache=CACHE, nogil=True)
njit_parallel = partial(numba.njit, cache=CACHE, nogil=True, parallel=True)
prange = numba.prange
