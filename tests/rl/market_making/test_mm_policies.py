"""Gibbs spread policy: tables vs brute-force quadrature, sampling by inversion, the γ → 0 limit."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("torch_one_thread")

from pdecore.market_making_params import MarketMakingModel  # noqa: E402
from pdecore._reference.market_making import gibbs_density_reference  # noqa: E402
from rl.market_making.policies import (ConstantSpreadPolicy, GibbsSpreadTable, GridValuePolicy,  # noqa: E402
                                       MarketState)

A, K, GAMMA, BOUNDS = 100.0, 1.5, 0.1, (0.0, 4.0)
DELTAS = (-20.0, -2.0, -0.5, -0.1, 0.0, 0.2, 0.5, 0.8, 3.0)


@pytest.fixture(scope="module")
def table():
    return GibbsSpreadTable(np.array([[A, A]]), [K], GAMMA, BOUNDS)


def _at(table, delta):
    stats = table.stats(torch.full((1, 1, 2), float(delta), dtype=torch.float64))
    return type(stats)(*(field[0, 0, 0] for field in stats))


@pytest.mark.parametrize("delta", DELTAS)
def test_table_matches_brute_force_quadrature(table, delta):
    # reference: 200k-node trapezoid (error ~1e-9 here); the table's own error is the 0.002 cell
    # width squared and the Δ-grid interpolation, a few 1e-6 in spread units
    ref = gibbs_density_reference(delta, A, K, GAMMA, BOUNDS, n_quadrature=200_001)
    got = _at(table, delta)
    assert abs(got.mean_spread.item() - ref["mean_spread"]) < 2e-5, f"Δ={delta}: mean spread"
    assert abs(got.rate.item() - ref["rate"]) < 1e-3 * max(1.0, ref["rate"]), f"Δ={delta}: rate"
    assert abs(got.income.item() - ref["income"]) < 1e-3 * max(1.0, ref["income"]), f"Δ={delta}: income"
    assert abs(got.entropy.item() - ref["entropy"]) < 2e-3, f"Δ={delta}: entropy"
    # the exploratory Hamiltonian splits as E[λ(δ + Δ)] + γ·entropy
    hamiltonian = got.income.item() + got.rate.item() * delta + GAMMA * got.entropy.item()
    assert abs(hamiltonian - ref["hamiltonian"]) < 1e-3 * max(1.0, abs(ref["hamiltonian"])), f"Δ={delta}"


def test_table_matches_grid_engine_mean_spread(table):
    from pdecore.gibbs import gibbs_moments

    gains = np.array(DELTAS)
    _, rate, spread = gibbs_moments(gains, A, K, GAMMA, *BOUNDS, 4096)
    got = table.stats(torch.as_tensor(gains, dtype=torch.float64).reshape(-1, 1, 1).expand(-1, 1, 2))
    np.testing.assert_allclose(got.mean_spread[:, 0, 0].numpy(), spread, atol=5e-5)
    np.testing.assert_allclose(got.rate[:, 0, 0].numpy(), rate, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("delta", (-1.0, 0.0, 0.4, 2.0))
def test_sampling_by_inversion_reproduces_the_density(table, delta):
    gen = torch.Generator().manual_seed(3)
    u = torch.rand(200_000, 1, 2, generator=gen, dtype=torch.float64)
    spreads = table.sample(torch.full_like(u, delta), u)
    ref = gibbs_density_reference(delta, A, K, GAMMA, BOUNDS, n_quadrature=200_001)
    # second moment from the reference density for the standard error
    grid = np.linspace(*BOUNDS, 200_001)
    logd = A * np.exp(-K * grid) * (grid + delta) / GAMMA
    dens = np.exp(logd - logd.max())
    dens /= np.trapezoid(dens, grid)
    sd = math.sqrt(np.trapezoid(dens * (grid - ref["mean_spread"]) ** 2, grid))
    assert abs(spreads.mean().item() - ref["mean_spread"]) < 4 * sd / math.sqrt(u.numel()) + 1e-5
    assert abs(spreads.std().item() - sd) < 0.02 * sd + 1e-5
    assert float(spreads.min()) >= BOUNDS[0] and float(spreads.max()) <= BOUNDS[1]
    # inversion is monotone in u: the coupling behind common random numbers
    order = torch.argsort(u[:, 0, 0])
    assert bool((torch.diff(spreads[order, 0, 0]) >= -1e-12).all())


def test_zero_temperature_is_the_clipped_argmax():
    table = GibbsSpreadTable(np.array([[A, 50.0]]), [K], 0.0, (0.0, 2.0))
    delta = torch.tensor([[[-5.0, 0.3]], [[0.0, 1.0]]], dtype=torch.float64)
    expected = np.clip(1.0 / K - delta.numpy(), 0.0, 2.0)
    stats = table.stats(delta)
    np.testing.assert_allclose(stats.mean_spread.numpy(), expected)
    np.testing.assert_allclose(table.sample(delta, torch.rand(2, 1, 2, dtype=torch.float64)).numpy(), expected)
    np.testing.assert_allclose(stats.rate.numpy(), np.array([A, 50.0]) * np.exp(-K * expected))
    assert float(stats.entropy.abs().max()) == 0.0


def test_small_temperature_tends_to_the_argmax():
    errors = []
    for gamma in (0.1, 0.01, 0.001):
        table = GibbsSpreadTable(np.array([[A, A]]), [K], gamma, BOUNDS, n_delta=513, n_delta_quantile=33)
        got = _at(table, 0.2).mean_spread.item()
        errors.append(abs(got - (1.0 / K - 0.2)))
    assert errors[2] < errors[1] < errors[0] and errors[2] < 1e-3, errors


def test_bad_table_input_is_refused():
    with pytest.raises(ValueError, match="spread_bounds"):
        GibbsSpreadTable(np.array([[A, A]]), [K], 0.1, (0.0, math.inf))
    with pytest.raises(ValueError, match="intensity"):
        GibbsSpreadTable(np.array([A, A]), [K], 0.1, BOUNDS)


def test_grid_value_policy_differences_and_bounds():
    model = MarketMakingModel.paper_defaults(max_inventory=3, temperature=0.0, spread_bounds=(0.0, 4.0))
    q = np.arange(-3, 4)
    theta = np.stack([-0.1 * q**2, -0.2 * q**2])  # two dates
    table = GibbsSpreadTable.from_model(model)
    policy = GridValuePolicy(table, [0.0, 10.0], theta, 3, execution="mean")
    inventory = torch.tensor([[-3.0], [0.0], [2.0], [3.0]], dtype=torch.float64)
    state = MarketState(inventory, torch.full((4,), 100.0, dtype=torch.float64), inventory * 0, inventory * 0)
    diffs = policy.differences(1.0, state)
    # at t = 1 the first date's θ = −0.1 q² is used
    np.testing.assert_allclose(diffs[:, 0, 0].numpy(), [-0.1 * (4 - 9), -0.1, -0.1 * (9 - 4), 0.0])
    np.testing.assert_allclose(diffs[:, 0, 1].numpy(), [0.0, -0.1, -0.1 * (1 - 4), -0.1 * (4 - 9)])
    quotes = policy.quote(1.0, state, torch.rand(4, 1, 2, dtype=torch.float64))
    np.testing.assert_allclose(quotes.bid[1, 0].item(), 1 / 1.5 + 0.1)
    constant = ConstantSpreadPolicy.myopic(model).quote(0.0, state, None)
    np.testing.assert_allclose(constant.ask.numpy(), 1 / 1.5)
