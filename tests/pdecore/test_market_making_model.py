"""MarketMakingModel: validation messages, normalization, derived helpers (SPEC section 5)."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr
import pytest

from pdecore import MarketMakingModel


def _model(**overrides):
    return MarketMakingModel.paper_defaults(2, **overrides)


BAD_INPUTS = (
    # (overrides, words the message must contain)
    (dict(noise_cov=[[1.0, 0.5], [0.4, 1.0]]), ("noise_cov", "symmetric")),
    (dict(noise_cov=[[1.0, 2.0], [2.0, 1.0]]), ("noise_cov", "positive semidefinite")),
    (dict(noise_cov=[[1.0, 0.0, 0.0]] * 3), ("noise_cov", "shape")),
    (dict(intensity_bid=0.0), ("intensity_bid", "> 0")),
    (dict(intensity_ask=(100.0, -1.0)), ("intensity_ask[1]", "> 0")),
    (dict(intensity_ask=(100.0, 1.0, 2.0)), ("intensity_ask", "one entry per option")),
    (dict(decay=-1.5), ("decay", "> 0")),
    (dict(decay=(1.5, 0.0)), ("decay[1]", "> 0")),
    (dict(max_inventory=0), ("max_inventory", ">= 1")),
    (dict(spread_bounds=(1.0, 1.0)), ("spread_bounds", "empty or inverted")),
    (dict(spread_bounds=(2.0, 1.0)), ("spread_bounds", "empty or inverted")),
    (dict(spread_bounds=(0.0, math.nan)), ("spread_bounds",)),
    (dict(spread_bounds=(0.0, math.inf)), ("spread_bounds", "temperature")),
    (dict(spread_bounds=(-math.inf, 4.0)), ("spread_bounds", "temperature")),
    (dict(temperature=-0.1), ("temperature", ">= 0")),
    (dict(terminal_penalty=-1.0), ("terminal_penalty",)),
    (dict(risk_aversion=-1.0), ("risk_aversion",)),
    (dict(maturities=(10.0, 30.0)), ("maturities[0]", "horizon")),
    (dict(maturities=(30.0,)), ("maturities", "one entry per strike")),
    (dict(strikes=()), ("strikes", "empty")),
    (dict(strikes=(100.0, -5.0)), ("strikes[1]",)),
    (dict(volatility=0.0), ("volatility",)),
    (dict(spot=math.nan), ("spot",)),
)


@pytest.mark.parametrize("overrides, words", BAD_INPUTS, ids=[str(sorted(o)) + str(i) for i, (o, _) in
                                                                 enumerate(BAD_INPUTS)])
def test_bad_input_names_parameter_and_fix(overrides, words):
    with pytest.raises(ValueError) as info:
        _model(**overrides)
    message = str(info.value)
    for word in words:
        assert word in message, f"{overrides}: message {message!r} lacks {word!r}"


def test_unbounded_spreads_allowed_when_deterministic():
    model = _model(temperature=0.0, spread_bounds=(-math.inf, math.inf))
    assert model.spread_bounds == (-math.inf, math.inf)


def test_normalization_and_helpers():
    model = MarketMakingModel(100, 0.02, [100, 105], np.array([30, 40]), 10, [50, 60], 70, 1.5,
                              max_inventory=5.0, noise_cov=np.eye(2) * 0.01)
    assert model.strikes == (100.0, 105.0) and isinstance(model.strikes, tuple)
    assert model.maturities == (30.0, 40.0)
    assert model.intensity_bid == (50.0, 60.0) and model.intensity_ask == 70.0
    assert model.max_inventory == 5 and isinstance(model.max_inventory, int)
    assert model.noise_cov == ((0.01, 0.0), (0.0, 0.01))
    assert model.n_options == 2
    np.testing.assert_array_equal(model.intensity_bid_array(), [50.0, 60.0])
    np.testing.assert_array_equal(model.intensity_ask_array(), [70.0, 70.0])
    np.testing.assert_array_equal(model.decay_array(), [1.5, 1.5])
    np.testing.assert_array_equal(model.noise_cov_array(), np.eye(2) * 0.01)
    assert MarketMakingModel.paper_defaults(1).noise_cov_array().shape == (1, 1)
    with pytest.raises(Exception):
        model.spot = 1.0  # frozen
    assert hash(model) == hash(MarketMakingModel(100, 0.02, [100, 105], [30, 40], 10, [50, 60], 70, 1.5,
                                                 max_inventory=5, noise_cov=np.eye(2) * 0.01))


def test_paper_defaults_match_spec():
    for n, strikes in ((1, (100.0,)), (2, (100.0, 105.0)), (3, (95.0, 100.0, 105.0))):
        model = MarketMakingModel.paper_defaults(n)
        assert model.strikes == strikes
        assert (model.spot, model.volatility, model.horizon) == (100.0, 0.02, 10.0)
        assert (model.terminal_penalty, model.intensity_bid, model.decay, model.temperature) == \
            (0.1, 100.0, 1.5, 0.1)
        assert all(m > model.horizon for m in model.maturities)
        assert all(map(math.isfinite, model.spread_bounds))
    assert MarketMakingModel.paper_defaults(2, max_inventory=7).max_inventory == 7
    with pytest.raises(ValueError, match="unknown field"):
        MarketMakingModel.paper_defaults(2, volatilty=0.3)


def test_mid_prices_are_black_scholes_calls():
    model = MarketMakingModel.paper_defaults(3)
    spots = np.array([80.0, 100.0, 120.0])
    prices = model.mid_prices(spots, 4.0)
    assert prices.shape == (3, 3)
    tau = np.array(model.maturities) - 4.0
    # the closed form written out: C = S N(d1) − K N(d2) with zero rates
    spot, strike, scale = spots[:, None], np.array(model.strikes), model.volatility * np.sqrt(tau)
    d1 = np.log(spot / strike) / scale + 0.5 * scale
    expected = spot * ndtr(d1) - strike * ndtr(d1 - scale)
    np.testing.assert_allclose(prices, expected, rtol=1e-12, atol=1e-12)
    # put-call parity with zero rates gives the ATM value 0.4 σ√τ S to O(σ³τ^{3/2})
    atm = model.mid_prices(100.0, 0.0)[1]
    assert abs(atm - 0.3989 * 100 * 0.02 * math.sqrt(30.0)) < 0.01


def test_terminal_coefficients_by_monte_carlo(rng):
    """c_i = ψ0 (E[p_i(S_T)²] + (ΣΣᵀ)_ii T): Gauss–Hermite against a large Monte Carlo sample."""
    model = MarketMakingModel.paper_defaults(2)
    coeffs = model.terminal_coefficients()
    z = rng.standard_normal(400_000)
    scale = model.volatility * math.sqrt(model.horizon)
    spot_t = model.spot * np.exp(scale * z - 0.5 * scale**2)
    prices = model.mid_prices(spot_t, model.horizon)
    monte_carlo = model.terminal_penalty * ((prices**2).mean(axis=0)
                                            + np.diag(model.noise_cov_array()) * model.horizon)
    np.testing.assert_allclose(coeffs, monte_carlo, rtol=5e-3)
    np.testing.assert_allclose(coeffs, model.terminal_coefficients(n_quad=200), rtol=1e-12)
