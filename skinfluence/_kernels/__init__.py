"""numba kernels: pure functions over flat numpy arrays (private)."""
