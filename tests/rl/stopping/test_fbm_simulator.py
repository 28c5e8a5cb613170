"""Fractional Brownian motion and its Markovized state (rl.stopping.fbm; issue 17)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rl.stopping.fbm import FBMSimulator, fbm_covariance  # noqa: E402


@pytest.mark.parametrize("hurst", [0.05, 0.3, 0.5, 0.7, 0.95])
def test_exact_covariance(hurst):
    simulator = FBMSimulator(hurst, n_dates=100)
    factor = simulator._factor_t.numpy().T
    assert np.allclose(factor @ factor.T, fbm_covariance(hurst, 100), atol=1e-10)
    paths = simulator.sample(2**14, torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    assert np.all(paths[:, 0] == 0.0)
    empirical = np.cov(paths[:, [25, 50, 100]].T)
    exact = fbm_covariance(hurst, 100)[np.ix_([24, 49, 99], [24, 49, 99])]
    assert np.allclose(empirical, exact, atol=6 * np.sqrt(2 / 2**14))


def test_states_are_the_path_most_recent_first():
    simulator = FBMSimulator(0.3, n_dates=10)
    paths = simulator.sample(3, torch.Generator().manual_seed(1), dtype=torch.float64)
    states = simulator.states(paths)
    assert states.shape == (3, 11, 11)
    n = 4
    assert torch.equal(states[:, n, : n + 1], paths[:, : n + 1].flip(1))
    assert torch.all(states[:, n, n + 1:] == 0.0)


def test_terminal_mean_is_the_orthogonal_projection():
    simulator = FBMSimulator(0.7, n_dates=20)
    covariance = simulator.covariance
    beta = simulator._regression.numpy()
    for n in (1, 5, 19):  # E[(W_1 − β_nᵀW_{1:n}) W_k] = 0 for k ≤ n
        assert np.allclose(covariance[:n, -1] - covariance[:n, :n] @ beta[n, :n], 0.0, atol=1e-10)


def test_same_seed_same_paths_and_bad_hurst():
    simulator = FBMSimulator(0.3)
    assert torch.equal(simulator.sample(5, torch.Generator().manual_seed(2)),
                       simulator.sample(5, torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="hurst"):
        FBMSimulator(1.0)
