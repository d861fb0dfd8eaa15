"""Shared settings: tolerances and seeds, stated once."""

import os

import numpy as np
import pytest
from hypothesis import settings

# Two exact methods (tamegrad vs torch, both float64) agree to rounding.
EXACT = 1e-10
# Centred differences in float64 with eps = 1e-6.
FINITE_DIFFERENCES = 1e-5

settings.register_profile("course", deadline=None, max_examples=60, derandomize=True)
settings.load_profile("course")

IN_CI = os.environ.get("CI") == "true"


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)
