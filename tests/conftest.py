"""Shared test configuration: headless plotting, strict floating point, seeded RNGs, hypothesis
profiles (``dev`` locally, ``ci`` under CI=true: derandomized, no deadline since Numba compiles on
first call)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("dev", deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, max_examples=25, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _strict_floating_point():
    """Overflow, division by zero and invalid operations raise instead of spreading NaNs."""
    old = np.seterr(all="raise", under="ignore")
    yield
    np.seterr(**old)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded NumPy generator: every test sees the same numbers on every run."""
    return np.random.default_rng(20261122)


@pytest.fixture
def torch_seed():
    """Seed torch's global RNG (imported lazily: only RL tests pay for torch)."""
    import torch

    torch.manual_seed(20261122)
    return 20261122


@pytest.fixture(scope="module")
def torch_one_thread():
    """One torch thread for a module: CI has two cores shared by the xdist workers, and
    oversubscribed multi-threaded kernels wait for descheduled threads at every op."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
