"""The American engine against SPEC section 1's reference table and the PSOR cross-check.

Source of the numbers: SPEC.md section 1 (put, S0 = K = 40, r = 0.06, q = 0, σ = 0.4, T = 1).
Tolerances are the issue's acceptance tolerances: 1e-4 for the American price at the default grid,
2e-4 for the penalized and exploratory values (quoted to 4 decimals, so ±5e-5 of the tolerance is
rounding), 0.05 for the free boundary.
"""

from __future__ import annotations

import numpy as np
import pytest

from pdecore import AmericanOption, BlackScholes, solve_american
from pdecore._reference.american import solve_american_psor
from validation.reference_data import spec_value

MODEL = BlackScholes(volatility=0.4, rate=0.06)
PUT = AmericanOption("put", strike=40.0, maturity=1.0)
SPOT = 40.0

# SPEC section 1 reference table (validation/data/spec_reference.json)
AMERICAN = spec_value("american.put.price")
EUROPEAN = spec_value("american.put.european")
PENALIZED = tuple(spec_value("american.put.penalized").items())  # (κ, V^κ)
EXPLORATORY = tuple(spec_value("american.put.exploratory_kappa10").items())  # (λ, V^Π) at κ = 10
BOUNDARY = tuple(spec_value("american.put.boundary").items())  # (t, S*(t))


@pytest.fixture(scope="module")
def american():
    return solve_american(MODEL, PUT)


def test_american_price_at_default_grid(american):
    price = american.price(SPOT)
    assert abs(price - AMERICAN) <= 1e-4, f"default grid: got {price:.6f}, expected {AMERICAN:.6f}"


def test_premium_formulation_gives_the_same_price():
    result = solve_american(MODEL, PUT, premium=True)
    price = result.price(SPOT)
    assert abs(price - AMERICAN) <= 1e-4, f"premium: got {price:.6f}, expected {AMERICAN:.6f}"
    # the early-exercise premium is what the American adds to the European
    assert abs((price - EUROPEAN) - (AMERICAN - EUROPEAN)) <= 1e-4


@pytest.mark.parametrize("t,expected", BOUNDARY)
def test_free_boundary(american, t, expected):
    got = float(np.interp(t, american.times, american.boundary))
    assert abs(got - expected) <= 0.05, f"S*({t}) = {got:.4f}, expected {expected:.2f}"


@pytest.mark.parametrize("penalty,expected", PENALIZED)
def test_penalized_values(penalty, expected):
    result = solve_american(MODEL, PUT, penalty=penalty)
    got = result.price(SPOT)
    assert abs(got - expected) <= 2e-4, f"kappa={penalty}: got {got:.6f}, expected {expected:.4f}"
    # piecewise-linear penalty: Newton terminates after very few iterations per step
    assert result.stats["max_newton_iterations"] <= 5, result.stats["max_newton_iterations"]


@pytest.mark.parametrize("temperature,expected", EXPLORATORY)
def test_exploratory_values(temperature, expected):
    result = solve_american(MODEL, PUT, penalty=10.0, temperature=temperature)
    got = result.price(SPOT)
    assert abs(got - expected) <= 2e-4, f"lambda={temperature}: got {got:.6f}, expected {expected:.4f}"
    assert result.stats["max_newton_iterations"] <= 6, result.stats["max_newton_iterations"]


def test_greeks_are_consistent_with_finite_differences(american):
    """Spline greeks vs central differences of the interpolated price (smooth at the strike)."""
    h = 0.05
    fd_delta = (american.price(SPOT + h) - american.price(SPOT - h)) / (2 * h)
    fd_gamma = (american.price(SPOT + h) - 2 * american.price(SPOT) + american.price(SPOT - h)) / h**2
    assert abs(american.delta(SPOT) - fd_delta) < 1e-4
    assert abs(american.gamma(SPOT) - fd_gamma) < 1e-3 * abs(fd_gamma)
    # a second-order method with Rannacher start-up has no kink noise in gamma: compare to a finer grid
    fine = solve_american(MODEL, PUT, n_space=1281, n_time=300)
    assert abs(american.gamma(SPOT) - fine.gamma(SPOT)) < 1e-4


def test_value_surface_interpolates_levels(american):
    spots = np.array([30.0, 40.0, 50.0])
    np.testing.assert_allclose(american.value(0.0, spots), american.price(spots), rtol=0, atol=1e-12)
    np.testing.assert_allclose(american.value(1.0, spots), PUT.payoff(spots), rtol=0, atol=1e-9)
    mid = american.value(0.5, spots)
    assert np.all(mid >= PUT.payoff(spots) - 1e-9) and np.all(mid <= american.price(spots) + 1e-9)


def test_penalty_solver_matches_psor_projection():
    """The penalty iteration and projected SOR solve the same discrete LCP (Forsyth & Vetzal 2002,
    Theorem 4.3): they agree to O(1/Large) + tolerances at every node."""
    for option, model in ((PUT, MODEL), (AmericanOption("call", 40.0, 1.0), BlackScholes(0.3, 0.03, 0.07))):
        spots, values, _ = solve_american_psor(model, option, n_space=81, n_time=24)
        result = solve_american(model, option, n_space=81, n_time=24)
        np.testing.assert_allclose(result.spots, spots, rtol=1e-14)
        np.testing.assert_allclose(result.values[0], values, rtol=0, atol=1e-6 * option.strike,
                                   err_msg=f"{option.kind}")


def test_stats_and_plot(american):
    stats = american.stats
    assert len(stats["newton_iterations"]) == stats["n_substeps"]
    assert 1 <= stats["max_newton_iterations"] <= 5
    assert stats["total_newton_iterations"] == sum(stats["newton_iterations"])
    assert stats["wall_seconds"] > 0
    ax = american.plot()
    assert ax.get_xlabel() == "spot S"
    assert american.values.flags.writeable is False


@pytest.mark.parametrize("kind,dividend", [("put", 0.03), ("call", 0.05), ("call", 0.0)])
def test_premium_and_plain_formulations_agree_with_dividends(kind, dividend):
    """``e = V − V_E`` with obstacle ``g − V_E`` is exact for every problem (SPEC section 1), so both
    formulations converge to the same price; at the default grid they differ by the FD error only."""
    model, option = BlackScholes(0.3, 0.04, dividend), AmericanOption(kind, 100.0, 2.0)
    spots = np.array([60.0, 80.0, 100.0, 120.0, 150.0])
    plain, premium = solve_american(model, option), solve_american(model, option, premium=True)
    np.testing.assert_allclose(plain.price(spots), premium.price(spots), rtol=0, atol=5e-6 * option.strike)
    both_nan = np.isnan(plain.boundary[0]) and np.isnan(premium.boundary[0])
    assert both_nan or abs(plain.boundary[0] - premium.boundary[0]) < 0.01 * option.strike
