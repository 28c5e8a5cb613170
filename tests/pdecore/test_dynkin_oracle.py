"""Discrete-time Dynkin oracle (pdecore.dynkin_oracle, issue 13): scalar solve, limits, Monte Carlo,
bad input."""

import math

import numpy as np
import pytest
from scipy.special import expit

from pdecore.dynkin_oracle import (clamped_obstacles, dynkin_oracle, insolvency_floor, no_trade_band,
                                   solve_game_step)
from pdecore.merton import MertonSettings, solve_merton_costs
from pdecore.params import MertonCosts

MARKET = MertonCosts(drift=0.168, rate=0.008, volatility=0.3, cost=0.005, maturity=1.0)


@pytest.fixture(scope="module")
def paper_oracle():
    return dynkin_oracle(MARKET, n_steps=10, penalty=5.0, temperature=1e-2)


def _residual(w, c, lower, upper, kappa, lam, dt):
    """The scalar equation written as in SPEC (with the entropies), independent of the solver's form."""
    nu = expit(kappa * (lower - w) / lam)
    mu = expit(kappa * (w - upper) / lam)

    def h(p):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.nan_to_num(p * np.log(p)) + np.nan_to_num((1 - p) * np.log1p(-p))

    return w - c - dt * (kappa * nu * (lower - c) - lam * h(nu) + kappa * mu * (upper - c) + lam * h(mu))


@pytest.mark.parametrize("lam", [1e-2, 1e-4, 1e-6])
@pytest.mark.parametrize("kdt", [0.5, 1.0])
def test_scalar_solve_matches_bisection(lam, kdt):
    rng = np.random.default_rng(3)
    n = 2000
    lower = rng.uniform(-1.0, 0.0, n)
    upper = lower + rng.uniform(0.0, 0.02, n)
    c = lower + rng.uniform(-0.05, 0.07, n)
    kappa, dt = 5.0, kdt / 5.0
    w, _ = solve_game_step(c, lower, upper, penalty=kappa, temperature=lam, dt=dt)
    # plain bisection on the sign of the residual, from the bracket |w - C| <= B of the docstring
    bound = dt * (kappa * (np.abs(lower - c) + np.abs(upper - c)) + 2 * lam * math.log(2)) + 1e-12
    lo, hi = c - bound, c + bound
    assert np.all(_residual(lo, c, lower, upper, kappa, lam, dt) <= 0)
    assert np.all(_residual(hi, c, lower, upper, kappa, lam, dt) >= 0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        negative = _residual(mid, c, lower, upper, kappa, lam, dt) < 0
        lo, hi = np.where(negative, mid, lo), np.where(negative, hi, mid)
    np.testing.assert_allclose(w, 0.5 * (lo + hi), rtol=0, atol=1e-12)


def test_scalar_solution_on_the_right_side_of_the_midpoint():
    """w − C has the sign of (ℓ + u)/2 − w (module docstring, step iii)."""
    rng = np.random.default_rng(4)
    lower = rng.uniform(-1.0, 0.0, 500)
    upper = lower + 0.01
    c = lower + rng.uniform(-0.05, 0.06, 500)
    w, _ = solve_game_step(c, lower, upper, penalty=5.0, temperature=1e-3, dt=0.2)
    assert np.all(np.sign(w - c) * np.sign(0.5 * (lower + upper) - w) >= 0)


def test_paper_setting_band(paper_oracle):
    """L = 10, κ = 5, λ = 1e-2 (the number the learners are judged against), and its grid convergence."""
    xs, xb = paper_oracle.band(0)
    assert xs == pytest.approx(-0.44782, abs=2e-4)
    assert xb == pytest.approx(-0.35140, abs=2e-4)
    fine = dynkin_oracle(MARKET, n_steps=10, penalty=5.0, temperature=1e-2, nodes_per_std=32)
    assert abs(fine.sell_boundary_t0 - xs) < 1e-4 and abs(fine.buy_boundary_t0 - xb) < 1e-4
    assert xs < MARKET.merton_ratio * (1 - MARKET.cost) and xb > MARKET.merton_ratio * (1 + MARKET.cost)


def test_small_temperature_converges_on_grid_refinement():
    coarse = dynkin_oracle(MARKET, n_steps=10, penalty=5.0, temperature=1e-6)
    fine = dynkin_oracle(MARKET, n_steps=10, penalty=5.0, temperature=1e-6, nodes_per_std=32)
    # kinked values (λ/κ far below a grid step): the trapezoid rule is second order there
    assert abs(coarse.sell_boundary_t0 - fine.sell_boundary_t0) < 5e-4
    assert abs(coarse.buy_boundary_t0 - fine.buy_boundary_t0) < 5e-4


def test_boundaries_approach_continuous_penalized_band_as_L_grows():
    """κ = 5, λ = 1e-2: L = 10 → 320 (κΔt ≤ 1) moves towards the continuous penalized band computed with a
    truncation at the same place (x_min ≈ the floor; the remaining gap is the truncation rule: clamped
    obstacles here, a Dirichlet row there)."""
    floor = insolvency_floor(MARKET.cost)
    margin = (floor + 1 - MARKET.cost) / min(MARKET.merton_ratio + 1 - MARKET.cost, 1 - MARKET.cost)
    continuous = solve_merton_costs(MARKET, penalty=5.0, temperature=1e-2,
                                    settings=MertonSettings(insolvency_margin=margin, n_space=1200, n_time=400))
    target = np.array(continuous.band(0.0))
    errors = [np.abs(np.array(dynkin_oracle(MARKET, n_steps=n, penalty=5.0, temperature=1e-2).band(0)) - target)
              for n in (10, 40, 320)]
    assert errors[0].max() > errors[1].max() > errors[2].max()
    assert errors[2].max() < 0.005


def test_large_penalty_approaches_the_variational_inequality():
    """κ = 50 (L = 200): within 0.02 of the VI band, and within 0.002 of the continuous κ = 50 band."""
    oracle = dynkin_oracle(MARKET, n_steps=200, penalty=50.0, temperature=1e-4)
    vi = solve_merton_costs(MARKET)
    penalized = solve_merton_costs(MARKET, penalty=50.0, temperature=1e-4,
                                   settings=MertonSettings(n_space=1200, n_time=400))
    assert np.max(np.abs(np.array(oracle.band(0)) - np.array(vi.band(0.0)))) < 0.02
    assert np.max(np.abs(np.array(oracle.band(0)) - np.array(penalized.band(0.0)))) < 0.002
    small = dynkin_oracle(MARKET, n_steps=10, penalty=5.0, temperature=1e-4)
    assert oracle.sell_boundary_t0 < small.sell_boundary_t0  # the stronger penalty widens the band


def test_value_matches_monte_carlo_of_its_own_policy(paper_oracle):
    """w_0(x_0) = E[R_L s(X_L) + Σ_l R_l r_l Δt] with ν, μ of the oracle along exact ratio paths."""
    o = paper_oracle
    rng = np.random.default_rng(11)
    n = 200_000
    m = MARKET
    dt = o.dt
    for x0 in (-0.6, -0.4, -0.2):
        x = np.full(n, x0)
        survival = np.ones(n)
        total = np.zeros(n)
        for level in range(o.n_steps):
            sell, buy = clamped_obstacles(x, m.cost, o.insolvency_floor)
            lower, upper = np.minimum(sell, buy), np.maximum(sell, buy)
            nu, mu = o.probabilities(level, x)
            with np.errstate(divide="ignore", invalid="ignore"):
                ent = lambda p: np.nan_to_num(p * np.log(p)) + np.nan_to_num((1 - p) * np.log1p(-p))  # noqa: E731
                reward = o.penalty * (nu * lower + mu * upper) - o.temperature * (ent(nu) - ent(mu))
            total += survival * reward * dt
            survival *= 1.0 - o.penalty * dt * (nu + mu)
            z = rng.standard_normal(n)
            x = x * np.exp((m.rate - m.drift + 0.5 * m.volatility**2) * dt - m.volatility * math.sqrt(dt) * z)
        total += survival * clamped_obstacles(x, m.cost, o.insolvency_floor)[0]
        se = total.std() / math.sqrt(n)
        assert abs(total.mean() - o.value(0, x0)) < 4 * se + 2e-5, (x0, total.mean(), o.value(0, x0), se)


def test_result_is_frozen_and_plots(paper_oracle):
    o = paper_oracle
    for array in (o.values, o.grid, o.sell_boundary, o.buy_boundary):
        with pytest.raises(ValueError):
            array[0] = 0.0
    assert o.values.shape == (11, o.grid.size)
    assert np.all(np.diff(o.grid) > 0) and 0.0 in o.grid
    np.testing.assert_allclose(o.values[-1], o.sell_obstacle)
    import matplotlib

    matplotlib.use("Agg")
    ax = o.plot()
    assert len(ax.lines) >= 2
    assert set(o.summary()) >= {"sell_boundary_t0", "buy_boundary_t0", "penalty", "temperature"}


def test_diagnostics_and_top_level_export(paper_oracle):
    """The common pdecore diagnostics shape, every array field frozen, and ``pdecore.DynkinOracle`` exported."""
    import pdecore
    from pdecore.diagnostics import SolverDiagnostics

    o = paper_oracle
    d = o.diagnostics
    assert isinstance(d, SolverDiagnostics) and d.success
    assert d.n_steps == d.n_time == o.n_steps and d.n_space == o.grid.size
    assert 1 <= d.max_iterations <= d.total_iterations <= o.n_steps * d.max_iterations
    assert d.max_iterations == o.stats["max_newton_iterations"]
    for array in (o.times, o.sell_obstacle, o.buy_obstacle):
        assert not array.flags.writeable
    assert pdecore.DynkinOracle is type(o)


def test_no_trade_band_reads_edges():
    x = np.linspace(-0.8, -0.1, 701)
    sell, buy = clamped_obstacles(x, 0.005, -0.9)
    w = np.where(x < -0.45, sell - 1e-3, np.where(x > -0.35, buy + 1e-3, 0.5 * (sell + buy)))
    xs, xb = no_trade_band(x, w, 0.005, -0.9)
    assert xs == pytest.approx(-0.45, abs=1e-3) and xb == pytest.approx(-0.35, abs=1e-3)
    assert all(math.isnan(v) for v in no_trade_band(x, sell - 1.0, 0.005, -0.9))
    inside = 0.5 * (sell + buy)
    assert no_trade_band(x, inside, 0.005, -0.9) == (-math.inf, math.inf)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_steps=4, penalty=5.0, temperature=1e-2), "penalty\\*maturity/n_steps"),
    (dict(n_steps=10, penalty=5.0, temperature=0.0), "temperature"),
    (dict(n_steps=10, penalty=5.0, temperature=-1.0), "temperature"),
    (dict(n_steps=10, penalty=0.0, temperature=1e-2), "penalty"),
    (dict(n_steps=10, penalty=5.0, temperature=1e-2, insolvency_margin=1.5), "insolvency_margin"),
])
def test_bad_input_is_refused_naming_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dynkin_oracle(MARKET, **kwargs)


def test_bad_market_is_refused():
    with pytest.raises(ValueError, match="cost"):
        MertonCosts(drift=0.168, rate=0.008, volatility=0.3, cost=1.0, maturity=1.0)
    with pytest.raises(ValueError, match="Merton fraction"):
        MertonCosts(drift=0.008, rate=0.008, volatility=0.3, cost=0.005, maturity=1.0)
    with pytest.raises(ValueError, match="MertonCosts"):
        dynkin_oracle("market", n_steps=10, penalty=5.0, temperature=1e-2)
    leveraged = MertonCosts(drift=0.5, rate=0.0, volatility=0.15, cost=0.005, maturity=1.0)  # x_M = -0.955
    with pytest.raises(ValueError, match="floor"):
        dynkin_oracle(leveraged, n_steps=10, penalty=5.0, temperature=1e-2)
