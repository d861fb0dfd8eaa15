"""The fixture's checking helper, in the style of tamegrad.grading."""

import numpy as np


def check_close(actual, expected, tol=1e-7):
    """Raise AssertionError unless ``actual`` matches ``expected`` to a relative error below ``tol``."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"shape {actual.shape}, expected {expected.shape}")
    err = np.max(np.abs(actual - expected)) / max(1e-8, np.max(np.abs(actual) + np.abs(expected)))
    if not err < tol:
        raise AssertionError(f"relative error {err:.2e} is above {tol:.0e}")
