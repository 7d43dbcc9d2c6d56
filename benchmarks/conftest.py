"""Shared fixtures of the benchmark suites (the shapes of the README's table)."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(0)
