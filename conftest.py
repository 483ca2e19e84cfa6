"""Root pytest configuration: hypothesis profiles, numba warm-up, doctest setup."""

import os
import sys
import tempfile

# Each pytest-xdist worker compiles the numba kernels into its own cache directory: two
# processes writing the same cache entries at once can corrupt them (numba issues #4807,
# #10128). Set before numba is first imported (xdist names the worker before it loads
# this file); an explicit NUMBA_CACHE_DIR is left alone.
if os.environ.get("PYTEST_XDIST_WORKER") and "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(
        tempfile.gettempdir(),
        f"skinfluence-numba-{os.getuid()}",
        os.environ["PYTEST_XDIST_WORKER"],
    )

# plots are drawn off-screen (a Display's doctest or test never opens a window)
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

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


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test or doctest drew (only once matplotlib is in use)."""
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_library():
    """Two pytest workers share two cores: keep OpenMP/BLAS pools (HistGradientBoosting,
    LightGBM, XGBoost) at one thread so they do not spin against each other. numba's
    thread count is set by the estimators themselves (``n_jobs``)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def one_thread():
    """One OpenMP/BLAS thread during a test, for the pools of libraries first loaded
    after the session started (the limit above covers only those loaded then). Test
    modules of tiny models use it: ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
