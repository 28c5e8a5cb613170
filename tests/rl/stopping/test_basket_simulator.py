"""The d-asset basket simulator (rl.stopping.basket; issue 17)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from rl.stopping.basket import BasketMarket, BasketSimulator  # noqa: E402


def test_same_seed_same_paths_and_shapes():
    simulator = BasketSimulator(BasketMarket(40), n_dates=100)
    a = simulator.sample_log(16, torch.Generator().manual_seed(3))
    b = simulator.sample_log(16, torch.Generator().manual_seed(3))
    assert a.shape == (16, 101, 40) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert torch.allclose(a[:, 0], torch.full((16, 40), math.log(100 ** (1 / math.sqrt(40)))))
    assert simulator.sample(4, torch.Generator().manual_seed(3), dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("correlation", [0.0, 0.4])
def test_geometric_mean_is_the_one_dimensional_gbm(correlation):
    market = BasketMarket(40, correlation=correlation)
    simulator = BasketSimulator(market, n_dates=2)
    log_g = torch.log(simulator.geometric_mean_log(
        simulator.sample_log(2**15, torch.Generator().manual_seed(1), dtype=torch.float64))[:, -1])
    p = market.geometric_parameters()
    n = log_g.numel()
    drift = p["rate"] - p["dividend"] - 0.5 * p["volatility"] ** 2
    assert abs(float(log_g.mean()) - (math.log(100) + drift)) < 4 * p["volatility"] / math.sqrt(n)
    assert float(log_g.var()) == pytest.approx(p["volatility"] ** 2, rel=4 * math.sqrt(2 / n))


def test_memory_refused_before_allocation(monkeypatch):
    monkeypatch.setenv("PDERL_MEMORY_BUDGET", "1M")
    simulator = BasketSimulator(BasketMarket(200), n_dates=100)
    with pytest.raises(ValueError, match="n_paths=1024.*d=200.*PDERL_MEMORY_BUDGET"):
        simulator.sample_log(1024, torch.Generator().manual_seed(0))


def test_bad_market_refused():
    with pytest.raises(ValueError, match="correlation"):
        BasketMarket(40, correlation=1.0)
    with pytest.raises(ValueError, match="dimension"):
        BasketMarket(0)


@pytest.mark.parametrize("correlation", [0.0, 0.3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_paths_are_the_cumulative_sum_of_the_exact_steps(correlation, dtype):
    """Twin: the one-date-at-a-time float64 sum equals the whole-array cumulative sum, bit for bit."""
    simulator = BasketSimulator(BasketMarket(7, "main", correlation), 13)
    log_paths = simulator.sample_log(50, torch.Generator().manual_seed(3), dtype=dtype)
    generator = torch.Generator().manual_seed(3)
    normals = torch.randn((50, 13, 7), generator=generator, dtype=dtype).to(torch.float64)
    if correlation:
        common = torch.randn((50, 13, 1), generator=generator, dtype=dtype).to(torch.float64)
        normals = math.sqrt(1 - correlation) * normals + math.sqrt(correlation) * common
    twin = torch.cumsum(normals * simulator._log_vol + simulator._log_drift, dim=1) + math.log(simulator.market.spot)
    assert torch.equal(log_paths[:, 1:], twin.to(dtype))
    assert torch.all(log_paths[:, 0] == torch.tensor(math.log(simulator.market.spot), dtype=dtype))


@pytest.mark.parametrize("dimension", [1, 7, 40])
def test_log_geometric_mean_sums_in_float64_without_a_copy_and_gives_the_same_numbers(dimension):
    simulator = BasketSimulator(BasketMarket(dimension, "main"), 12)
    raw = simulator.sample_log(33, torch.Generator().manual_seed(3))
    log_g = simulator.log_geometric_mean(raw)
    assert log_g.dtype == torch.float64 and log_g.shape == (33, 13)
    assert torch.equal(log_g, raw.to(torch.float64).sum(dim=-1) * simulator.market.exponent)
    assert torch.equal(simulator.geometric_mean_log(raw), torch.exp(log_g))
