"""Root pytest configuration: hypothesis profiles, numba warm-up, doctest setup."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev",
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci",
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.getenv("HYPOTHESIS_PROFILE", "ci" if os.getenv("CI") else "dev"))


@pytest.fixture(autouse=True)
def _doctest_printoptions(doctest_namespace):
    np.set_printoptions(legacy="1.25", precision=4, suppress=True)
    doctest_namespace["np"] = np


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_library():
    """Two pytest workers share two cores: keep OpenMP/BLAS pools (HistGradientBoosting,
    LightGBM, XGBoost) at one thread so they do not spin against each other. numba's
    thread count is set by the estimators themselves (``n_jobs``)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
