"""European Black–Scholes prices and greeks: closed-form identities, finite differences, exact
limits, the Numba twin and QuantLib's AnalyticEuropeanEngine as a peer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdecore._kernels.european import bs_price_greeks_array
from pdecore.european import bs_delta, bs_gamma, bs_greeks, bs_price, bs_theta, bs_vega
from validation.reference_data import spec_value

# SPEC section 1's European reference value (put, S0 = K = 40, r = 0.06, q = 0, sigma = 0.4, T = 1).
SPEC_EUROPEAN_PUT = spec_value("american.put.european")

params = st.fixed_dictionaries({
    "spot": st.floats(5.0, 200.0), "strike": st.floats(10.0, 150.0), "maturity": st.floats(0.02, 5.0),
    "volatility": st.floats(0.05, 1.0), "rate": st.floats(-0.02, 0.15), "dividend": st.floats(0.0, 0.1),
})


def _args(p):
    return p["spot"], p["strike"], p["maturity"], p["volatility"], p["rate"], p["dividend"]


def test_spec_reference_value():
    value = bs_price("put", 40.0, 40.0, 1.0, 0.4, 0.06)
    assert abs(value - SPEC_EUROPEAN_PUT) < 1e-6, f"European put: got {value:.7f}, SPEC {SPEC_EUROPEAN_PUT}"
    assert isinstance(value, float)


@given(p=params)
def test_put_call_parity(p):
    s, k, t, v, r, q = _args(p)
    lhs = bs_price("call", *_args(p)) - bs_price("put", *_args(p))
    rhs = s * np.exp(-q * t) - k * np.exp(-r * t)
    assert abs(lhs - rhs) < 1e-10 * max(s, k), f"{p}: C - P = {lhs}, forward = {rhs}"
    # Delta, gamma, vega, theta parity: d/dS, d2/dS2, d/dsigma and d/dt of the forward.
    assert abs(bs_delta("call", *_args(p)) - bs_delta("put", *_args(p)) - np.exp(-q * t)) < 1e-12
    assert abs(bs_gamma("call", *_args(p)) - bs_gamma("put", *_args(p))) < 1e-14
    assert abs(bs_vega("call", *_args(p)) - bs_vega("put", *_args(p))) < 1e-12
    theta_gap = bs_theta("call", *_args(p)) - bs_theta("put", *_args(p))
    assert abs(theta_gap - (q * s * np.exp(-q * t) - r * k * np.exp(-r * t))) < 1e-9 * max(s, k)


@pytest.mark.parametrize("kind", ["put", "call"])
@given(p=params)
def test_greeks_are_derivatives_of_the_price(kind, p):
    """Central differences of the price, steps scaled to the curvature width of the price."""
    s, k, t, v, r, q = _args(p)
    g = bs_greeks(kind, *_args(p))
    # Steps relative to the width s*sigma*sqrt(T) of the price's curvature keep truncation below 1e-6.
    width = s * v * np.sqrt(t)
    h = 1e-3 * width
    fd_delta = (bs_price(kind, s + h, k, t, v, r, q) - bs_price(kind, s - h, k, t, v, r, q)) / (2 * h)
    h2 = 1e-2 * width
    up, down = bs_price(kind, s + h2, k, t, v, r, q), bs_price(kind, s - h2, k, t, v, r, q)
    fd_gamma = (up - 2 * g["price"] + down) / h2**2
    fd_vega = (bs_price(kind, s, k, t, v + 1e-5, r, q) - bs_price(kind, s, k, t, v - 1e-5, r, q)) / 2e-5
    dt = 1e-5 * t
    fd_theta = -(bs_price(kind, s, k, t + dt, v, r, q) - bs_price(kind, s, k, t - dt, v, r, q)) / (2 * dt)
    scale = max(s, k)
    assert abs(g["delta"] - fd_delta) < 1e-6, f"{kind} {p}: delta {g['delta']} vs {fd_delta}"
    assert abs(g["gamma"] - fd_gamma) < 1e-5 + 1e-3 * abs(g["gamma"]), \
        f"{kind} {p}: gamma {g['gamma']} vs {fd_gamma}"
    assert abs(g["vega"] - fd_vega) < 1e-6 * scale, f"{kind} {p}: vega {g['vega']} vs {fd_vega}"
    assert abs(g["theta"] - fd_theta) < 1e-5 * scale / min(t, 1.0), \
        f"{kind} {p}: theta {g['theta']} vs {fd_theta}"


@pytest.mark.parametrize("kind", ["put", "call"])
def test_vectorized_equals_loop_and_broadcasts(kind, rng):
    spot = rng.uniform(10, 100, 7)[:, None]
    strike = rng.uniform(20, 80, 5)[None, :]
    maturity, volatility = 0.7, rng.uniform(0.1, 0.6, 5)
    for function in (bs_price, bs_delta, bs_gamma, bs_vega, bs_theta):
        grid = function(kind, spot, strike, maturity, volatility, 0.03, 0.01)
        assert grid.shape == (7, 5)
        loop = np.array([[function(kind, float(spot[i, 0]), float(strike[0, j]), maturity,
                                   float(volatility[j]), 0.03, 0.01) for j in range(5)] for i in range(7)])
        np.testing.assert_allclose(grid, loop, rtol=1e-14, atol=0, err_msg=function.__name__)


@pytest.mark.parametrize("kind", ["put", "call"])
def test_exact_limits_at_maturity_and_zero_spot(kind):
    spot = np.array([0.0, 20.0, 40.0, 60.0])
    payoff = np.maximum(40.0 - spot, 0.0) if kind == "put" else np.maximum(spot - 40.0, 0.0)
    np.testing.assert_array_equal(bs_price(kind, spot, 40.0, 0.0, 0.4, 0.06), payoff)
    delta = bs_delta(kind, spot, 40.0, 0.0, 0.4, 0.06)
    expected_delta = {"put": [-1.0, -1.0, -0.5, 0.0], "call": [0.0, 0.0, 0.5, 1.0]}[kind]
    np.testing.assert_array_equal(delta, expected_delta)
    np.testing.assert_array_equal(bs_gamma(kind, spot, 40.0, 0.0, 0.4, 0.06), 0.0)
    np.testing.assert_array_equal(bs_vega(kind, spot, 40.0, 0.0, 0.4, 0.06), 0.0)
    # At S = 0 the put is worth the discounted strike (dividend irrelevant), the call nothing.
    at_zero = bs_price(kind, 0.0, 40.0, 2.0, 0.4, 0.06, 0.03)
    assert at_zero == (40.0 * np.exp(-0.12) if kind == "put" else 0.0)
    # Continuity: a tiny maturity is within a tiny amount of the payoff away from the strike.
    near = bs_price(kind, spot[1:], 40.0, 1e-10, 0.4, 0.06)
    np.testing.assert_allclose(near[[0, 2]], payoff[[1, 3]], atol=1e-8)
    # Zero volatility: the discounted forward intrinsic value, and its time derivative.
    deterministic = bs_price(kind, 50.0, 40.0, 1.0, 0.0, 0.05, 0.02)
    forward = 50.0 * np.exp(-0.02) - 40.0 * np.exp(-0.05)
    expected = max(forward, 0.0) if kind == "call" else max(-forward, 0.0)
    assert deterministic == pytest.approx(expected, abs=1e-14)
    assert np.all(np.isfinite(bs_price(kind, 40.0, 40.0, 1.0, 1e-300, 0.06)))


def test_extreme_moneyness_raises_no_warning():
    spot = np.array([1e-8, 1.0, 1e6])
    for function in (bs_price, bs_delta, bs_gamma, bs_vega, bs_theta):
        for kind in ("put", "call"):
            values = function(kind, spot, 40.0, np.array([1e-6, 1.0, 30.0])[:, None], 0.05, 0.06)
            assert np.all(np.isfinite(values)), function.__name__


@pytest.mark.parametrize("bad", [
    dict(kind="straddle"), dict(spot=-1.0), dict(spot=np.nan), dict(strike=0.0), dict(maturity=-0.1),
    dict(volatility=np.inf), dict(volatility=-0.2), dict(rate=np.nan),
    dict(spot=[1.0, 2.0], strike=[1.0, 2.0, 3.0]),
])
def test_bad_input_names_the_parameter(bad):
    args = dict(kind="put", spot=40.0, strike=40.0, maturity=1.0, volatility=0.4, rate=0.06)
    args.update(bad)
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        bs_price(**args)


@pytest.mark.parametrize("kind", ["put", "call"])
def test_numba_kernel_matches_numpy_twin(kind, rng):
    n = 400
    spot = np.concatenate([[0.0, 40.0, 40.0], rng.uniform(1, 150, n - 3)])
    maturity = np.concatenate([[1.0, 0.0, 1.0], rng.uniform(0.0, 3.0, n - 3)])
    volatility = np.concatenate([[0.4, 0.4, 0.0], rng.uniform(0.01, 1.0, n - 3)])
    strike, rate, dividend = rng.uniform(20, 80, n), rng.uniform(-0.01, 0.1, n), rng.uniform(0, 0.05, n)
    outs = [np.empty(n) for _ in range(5)]
    is_call = 1 if kind == "call" else 0
    assert bs_price_greeks_array(is_call, spot, strike, maturity, volatility, rate, dividend, *outs) == 0
    twin = bs_greeks(kind, spot, strike, maturity, volatility, rate, dividend)
    for name, out in zip(("price", "delta", "gamma", "vega", "theta"), outs):
        np.testing.assert_allclose(out, twin[name], rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.quantlib
@pytest.mark.parametrize("kind,spot,strike,maturity,volatility,rate,dividend", [
    ("put", 40.0, 40.0, 1.0, 0.4, 0.06, 0.0),
    ("call", 100.0, 90.0, 0.5, 0.25, 0.03, 0.02),
    ("put", 80.0, 100.0, 2.0, 0.15, 0.01, 0.05),
    ("call", 36.0, 40.0, 3.0, 0.8, 0.10, 0.0),
])
def test_quantlib_analytic_european_peer(kind, spot, strike, maturity, volatility, rate, dividend):
    ql = pytest.importorskip("QuantLib")
    today = ql.Date(22, 11, 2026)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()
    expiry = today + int(round(maturity * 365))
    maturity = day_count.yearFraction(today, expiry)  # the exact year fraction QuantLib uses
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, dividend, day_count)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, rate, day_count)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), volatility, day_count)))
    option_type = ql.Option.Put if kind == "put" else ql.Option.Call
    option = ql.VanillaOption(ql.PlainVanillaPayoff(option_type, strike), ql.EuropeanExercise(expiry))
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    g = bs_greeks(kind, spot, strike, maturity, volatility, rate, dividend)
    case = f"{kind} S={spot} K={strike} T={maturity:.4f}"
    assert g["price"] == pytest.approx(option.NPV(), abs=1e-10), case
    assert g["delta"] == pytest.approx(option.delta(), abs=1e-10), case
    assert g["gamma"] == pytest.approx(option.gamma(), abs=1e-10), case
    assert g["vega"] == pytest.approx(option.vega(), abs=1e-8), case
    # QuantLib's theta is also dV/dt per year.
    assert g["theta"] == pytest.approx(option.theta(), abs=1e-8), case
