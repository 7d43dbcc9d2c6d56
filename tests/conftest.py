"""Shared test settings: bounded hypothesis profiles and the comparison helper."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    # .ci/fuzz.sh: one pass of the adversarial tests per seed, repeated for a time budget
    "fuzz",
    max_examples=150,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# The contract's tolerances: relative 1e-12 in float64, 1e-5 in float32.
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-5}


def pytest_report_header(config):
    """Which fastloss is under test: its folder and the SIMD level in use (CI logs)."""
    import fastloss

    i = fastloss.build_info()
    forced = f", FASTLOSS_CPU={i['fastloss_cpu_env']}" if i["fastloss_cpu_env"] else ""
    note = f" ({i['isa_note']})" if i["isa_note"] else ""
    return [
        f"fastloss {i['version']} from {os.path.dirname(fastloss.__file__)}",
        f"fastloss SIMD: {i['isa_active']} in use{forced}{note}; best here {i['isa_best']}; "
        f"compiled {' '.join(i['isa_compiled'])}; {i['max_threads']} threads",
    ]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow: long-running (the 1,000,000-call leak test, ~15 s); part of the default run, "
        "deselect with -m 'not slow'",
    )


@pytest.fixture(scope="session")
def digits_split():
    """scikit-learn's digits, split 75/25 (stratified, seed 0), standardized with the
    training rows' mean and deviation: (X_train, y_train, X_test, y_test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), ytr, sc.transform(Xte), yte
