"""Ratio simulator of the Dynkin learners (issue 13): moments, sign, obstacles, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pdecore.dynkin_oracle import clamped_obstacles  # noqa: E402
from pdecore.params import MertonCosts  # noqa: E402
from rl.dynkin.simulator import RatioSimulator, clamped_obstacles_torch  # noqa: E402

MARKET = MertonCosts(drift=0.168, rate=0.008, volatility=0.3, cost=0.005, maturity=1.0)


def test_log_ratio_moments_match_the_ratio_process():
    """log|x_L/x_0| ~ N((r − α + σ²/2)T, σ²T) exactly (exact GBM steps of the stock)."""
    sim = RatioSimulator(MARKET, 10, -0.8, -0.1)
    paths = sim.sample(200_000, torch.Generator().manual_seed(0), dtype=torch.float64)
    log_move = torch.log(paths[:, -1] / paths[:, 0])
    mean = (MARKET.rate - MARKET.drift + 0.5 * MARKET.volatility**2) * MARKET.maturity
    var = MARKET.volatility**2 * MARKET.maturity
    n = paths.shape[0]
    assert log_move.mean().item() == pytest.approx(mean, abs=4 * math.sqrt(var / n))
    assert log_move.var().item() == pytest.approx(var, rel=4 * math.sqrt(2 / n))
    steps = torch.log(paths[:, 1:] / paths[:, :-1])
    assert abs(np.corrcoef(steps[:, 0].numpy(), steps[:, 1].numpy())[0, 1]) < 0.01  # independent steps
    assert torch.all(paths < 0)  # the ratio keeps its sign
    assert paths[:, 0].min().item() >= -0.8 and paths[:, 0].max().item() <= -0.1


def test_ratio_is_bond_over_stock():
    """x_{l+1} = x_l e^{rΔt} S_l/S_{l+1} from the same normals as the stock's gross returns."""
    sim = RatioSimulator(MARKET, 4, -0.5, -0.2)
    normals = torch.randn(3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    initial = torch.tensor([-0.5, -0.3, 0.2], dtype=torch.float64)
    gross = sim.stock_returns(normals)
    bond, stock = initial.clone(), torch.ones(3, dtype=torch.float64)
    expected = [initial.clone()]
    for l in range(4):
        bond, stock = bond * math.exp(MARKET.rate * sim.dt), stock * gross[:, l]
        expected.append(bond / stock)
    torch.testing.assert_close(sim.paths_from(initial, normals), torch.stack(expected, 1))


def test_same_generator_state_same_paths():
    sim = RatioSimulator(MARKET, 10, -0.8, -0.1)
    a = sim.sample(64, torch.Generator().manual_seed(3))
    b = sim.sample(64, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_torch_obstacles_equal_numpy_obstacles():
    x = np.linspace(-1.5, 2.0, 301)
    sell, buy = clamped_obstacles(x, 0.005, -0.9)
    tsell, tbuy = clamped_obstacles_torch(torch.tensor(x), 0.005, -0.9)
    np.testing.assert_allclose(tsell.numpy(), sell, rtol=1e-14)
    np.testing.assert_allclose(tbuy.numpy(), buy, rtol=1e-14)


def test_bad_input():
    with pytest.raises(ValueError, match="MertonCosts"):
        RatioSimulator("market", 10, -0.8, -0.1)
    with pytest.raises(ValueError, match="initial_low"):
        RatioSimulator(MARKET, 10, -0.1, -0.8)
    with pytest.raises(ValueError, match="n_steps"):
        RatioSimulator(MARKET, 0, -0.8, -0.1)
