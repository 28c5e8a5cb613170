"""Market simulator: Poisson fills, closed-form P&L of constant spreads, the grid policy's θ(0, 0),
inventory bounds, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("torch_one_thread")

from pdecore.market_making_params import MarketMakingModel  # noqa: E402
from rl.market_making.policies import ConstantSpreadPolicy, GibbsSpreadTable, GridValuePolicy  # noqa: E402
from rl.market_making.simulator import MarketMakingSimulator, poisson_inverse_cdf  # noqa: E402


def _model(**overrides):
    fields = dict(max_inventory=10_000, temperature=0.0, risk_aversion=0.3)
    fields.update(overrides)
    return MarketMakingModel.paper_defaults(**fields)


def test_poisson_inversion_matches_scipy():
    from scipy.stats import poisson

    mean = torch.tensor([0.01, 0.3, 1.0, 4.0, 12.0], dtype=torch.float64)[:, None].expand(5, 7)
    u = torch.tensor([0.001, 0.2, 0.5, 0.7, 0.9, 0.99, 0.999999], dtype=torch.float64).expand(5, 7)
    np.testing.assert_array_equal(poisson_inverse_cdf(mean, u).numpy(), poisson.ppf(u.numpy(), mean.numpy()))


def test_black_scholes_twin_matches_model():
    model = MarketMakingModel.paper_defaults(2)
    spot = torch.tensor([80.0, 100.0, 123.0], dtype=torch.float64)
    simulator = MarketMakingSimulator(model, n_steps=10)
    price, delta = simulator.mid_prices(spot, 5.0)
    np.testing.assert_allclose(price.numpy(), model.mid_prices(spot.numpy(), 5.0), rtol=1e-12, atol=1e-12)
    bumped = model.mid_prices(spot.numpy() + 1e-4, 5.0) - model.mid_prices(spot.numpy() - 1e-4, 5.0)
    np.testing.assert_allclose(delta.numpy(), bumped / 2e-4, atol=1e-7)


def test_fill_counts_match_poisson_intensities():
    model = _model(intensity_ask=60.0)
    sim = MarketMakingSimulator(model, n_steps=200)
    bid, ask = 0.5, 1.0
    res = sim.simulate(ConstantSpreadPolicy(bid, ask), 4000, generator=torch.Generator().manual_seed(1))
    for side, a, spread in ((0, 100.0, bid), (1, 60.0, ask)):
        expected = a * math.exp(-1.5 * spread) * model.horizon
        counts = res.fills[:, 0, side]
        # Poisson: mean = variance = λT; 5 standard errors
        assert abs(counts.mean().item() - expected) < 5 * math.sqrt(expected / 4000), f"side {side}"
        assert abs(counts.var().item() / expected - 1.0) < 0.1, f"side {side}: variance"
    assert res.thinned == 0


def test_constant_spread_pnl_matches_closed_form():
    model = _model()
    bid, ask = 0.6, 0.8
    sim = MarketMakingSimulator(model, n_steps=100)
    n_paths = 20_000
    res = sim.simulate(ConstantSpreadPolicy(bid, ask), n_paths, generator=torch.Generator().manual_seed(2))
    horizon = model.horizon
    lam_b, lam_a = 100 * math.exp(-1.5 * bid), 100 * math.exp(-1.5 * ask)
    income = (bid * lam_b + ask * lam_a) * horizon
    # Q_t = N^b_t − N^a_t: E Q_t² = (λb + λa) t + ((λb − λa) t)²
    second = lambda t: (lam_b + lam_a) * t + ((lam_b - lam_a) * t) ** 2  # noqa: E731
    c = model.terminal_coefficients()[0]
    penalty = -c * second(horizon)
    # running risk on the inventory held over each step: Σ_j E Q_{t_j}² Δt
    times = sim.times[:-1]
    cov = model.noise_cov_array()[0, 0]
    risk = -0.5 * model.risk_aversion * cov * sum(second(t) for t in times) * (horizon / 100)
    for name, expected in (("spread_income", income), ("terminal_penalty", penalty), ("running_risk", risk),
                           ("inventory_pnl", 0.0)):
        values = getattr(res, name)
        stderr = values.std().item() / math.sqrt(n_paths)
        assert abs(values.mean().item() - expected) < 4.5 * stderr + 1e-9, \
            f"{name}: got {values.mean().item():.4f}, expected {expected:.4f} ± {stderr:.4f}"


def test_grid_policy_reproduces_grid_value():
    import pdecore

    model = MarketMakingModel.paper_defaults(max_inventory=60)
    result = pdecore.solve_market_making(model, n_time=2000)
    table = GibbsSpreadTable.from_model(model)
    policy = GridValuePolicy(table, result.times, result.values, model.max_inventory)
    sim = MarketMakingSimulator(model, n_steps=2000)
    n_paths = 2000
    res = sim.simulate(policy, n_paths, generator=torch.Generator().manual_seed(5))
    stderr = res.objective.std().item() / math.sqrt(n_paths)
    theta = result.theta(0.0, (0,))
    # Monte-Carlo error plus the O(λΔt) bias of quotes held over a step (measured ≈ 0.4 at 2000 steps)
    assert abs(res.objective.mean().item() - theta) < 4 * stderr + 0.5, \
        f"objective {res.objective.mean().item():.3f} ± {stderr:.3f} vs θ(0,0) = {theta:.3f}"


def test_inventory_bounds_and_thinning():
    model = MarketMakingModel.paper_defaults(max_inventory=2, temperature=0.0)
    sim = MarketMakingSimulator(model, n_steps=50)
    # bid at zero spread, ask at the widest: the inventory runs into +Q̄ and stays there
    res = sim.simulate(ConstantSpreadPolicy(0.0, 4.0), 200, generator=torch.Generator().manual_seed(0),
                       record=True)
    assert float(res.inventory.abs().max()) <= 2
    assert res.thinned > 0 and res.bound_steps > 0
    assert float(res.inventory[-1].min()) >= 1


def test_same_seed_same_numbers():
    model = MarketMakingModel.paper_defaults(2, max_inventory=20)
    sim = MarketMakingSimulator(model, n_steps=50)
    table = GibbsSpreadTable.from_model(model)
    theta = np.zeros((2, 41, 41))
    policy = GridValuePolicy(table, [0.0, 10.0], theta, 20)
    runs = [sim.simulate(policy, 64, generator=torch.Generator().manual_seed(9)) for _ in range(2)]
    assert torch.equal(runs[0].pnl, runs[1].pnl)
    other = sim.simulate(policy, 64, generator=torch.Generator().manual_seed(10))
    assert not torch.equal(runs[0].pnl, other.pnl)
