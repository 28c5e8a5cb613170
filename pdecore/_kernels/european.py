"""Numba twins of :mod:`pdecore.european` for use inside other kernels.

Scalar functions (``bs_price_scalar`` ...) can be called from any ``@njit_kernel``; the array kernel
:func:`bs_price_greeks_array` fills preallocated 1-D outputs. ``is_call`` is an integer (1 call,
0 put) because kernels take no strings. The formulas, the sign conventions (vega per unit of
volatility, ``theta = ∂V/∂t``) and the degenerate limits (``σ√T = 0`` or ``S = 0``: the discounted
intrinsic value of the forward) are exactly those documented in :mod:`pdecore.european`, which is
the NumPy twin used by the tests. Inputs are assumed valid (the facades validate).
"""

from __future__ import annotations

import math

from pdecore._numba import STATUS_OK, njit_kernel

_INV_SQRT_2PI = 0.3989422804014327
_INV_SQRT_2 = 0.7071067811865476


@njit_kernel
def normal_cdf(x):
    """``N(x) = ½ erfc(−x/√2)``, accurate in both tails (no cancellation for x ≪ 0)."""
    return 0.5 * math.erfc(-x * _INV_SQRT_2)


@njit_kernel
def _d1_d2(spot, strike, maturity, volatility, rate, dividend):
    """``(d1, d2, regular)``; ``regular`` is False where ``σ√T = 0`` or ``S = 0``."""
    total_vol = volatility * math.sqrt(maturity)
    if total_vol <= 0.0 or spot <= 0.0:
        return 0.0, 0.0, False
    d1 = (math.log(spot / strike) + (rate - dividend + 0.5 * volatility * volatility) * maturity) / total_vol
    d2 = d1 - total_vol
    # Same clipping as the NumPy twin: no representable N(d) or phi(d) changes.
    d1 = min(max(d1, -50.0), 50.0)
    d2 = min(max(d2, -50.0), 50.0)
    return d1, d2, True


@njit_kernel
def bs_price_scalar(is_call, spot, strike, maturity, volatility, rate, dividend):
    """European price; see :func:`pdecore.european.bs_price`."""
    forward_part = spot * math.exp(-dividend * maturity)
    strike_part = strike * math.exp(-rate * maturity)
    d1, d2, regular = _d1_d2(spot, strike, maturity, volatility, rate, dividend)
    if not regular:
        if is_call:
            return max(forward_part - strike_part, 0.0)
        return max(strike_part - forward_part, 0.0)
    if is_call:
        value = forward_part * normal_cdf(d1) - strike_part * normal_cdf(d2)
    else:
        value = strike_part * normal_cdf(-d2) - forward_part * normal_cdf(-d1)
    return max(value, 0.0)


@njit_kernel
def bs_delta_scalar(is_call, spot, strike, maturity, volatility, rate, dividend):
    """Delta; see :func:`pdecore.european.bs_delta`."""
    spot_discount = math.exp(-dividend * maturity)
    d1, d2, regular = _d1_d2(spot, strike, maturity, volatility, rate, dividend)
    if regular:
        n_d1 = normal_cdf(d1)
    else:
        moneyness = spot * spot_discount - strike * math.exp(-rate * maturity)
        if spot <= 0.0 or moneyness < 0.0:
            n_d1 = 0.0
        elif moneyness > 0.0:
            n_d1 = 1.0
        else:
            n_d1 = 0.5
    if is_call:
        return spot_discount * n_d1
    return -spot_discount * (1.0 - n_d1)


@njit_kernel
def bs_gamma_scalar(is_call, spot, strike, maturity, volatility, rate, dividend):
    """Gamma; see :func:`pdecore.european.bs_gamma`."""
    d1, d2, regular = _d1_d2(spot, strike, maturity, volatility, rate, dividend)
    if not regular:
        return 0.0
    density = _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)
    return math.exp(-dividend * maturity) * density / (spot * volatility * math.sqrt(maturity))


@njit_kernel
def bs_vega_scalar(is_call, spot, strike, maturity, volatility, rate, dividend):
    """Vega per unit of volatility; see :func:`pdecore.european.bs_vega`."""
    d1, d2, regular = _d1_d2(spot, strike, maturity, volatility, rate, dividend)
    if not regular:
        return 0.0
    density = _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)
    return spot * math.exp(-dividend * maturity) * density * math.sqrt(maturity)


@njit_kernel
def bs_theta_scalar(is_call, spot, strike, maturity, volatility, rate, dividend):
    """Theta ``∂V/∂t`` per year; see :func:`pdecore.european.bs_theta`."""
    forward_part = spot * math.exp(-dividend * maturity)
    strike_part = strike * math.exp(-rate * maturity)
    d1, d2, regular = _d1_d2(spot, strike, maturity, volatility, rate, dividend)
    if not regular:
        moneyness = forward_part - strike_part
        if is_call:
            return dividend * forward_part - rate * strike_part if moneyness > 0.0 else 0.0
        return rate * strike_part - dividend * forward_part if moneyness < 0.0 else 0.0
    density = _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)
    decay = -forward_part * density * volatility / (2.0 * math.sqrt(maturity))
    if is_call:
        return decay - rate * strike_part * normal_cdf(d2) + dividend * forward_part * normal_cdf(d1)
    return decay + rate * strike_part * normal_cdf(-d2) - dividend * forward_part * normal_cdf(-d1)


@njit_kernel
def bs_price_greeks_array(is_call, spot, strike, maturity, volatility, rate, dividend,
                          price, delta, gamma, vega, theta):
    """Fill ``price, delta, gamma, vega, theta`` (float64[n]) for 1-D inputs of equal length n.

    Returns
    -------
    int
        ``STATUS_OK``.
    """
    for i in range(spot.shape[0]):
        args = (spot[i], strike[i], maturity[i], volatility[i], rate[i], dividend[i])
        price[i] = bs_price_scalar(is_call, *args)
        delta[i] = bs_delta_scalar(is_call, *args)
        gamma[i] = bs_gamma_scalar(is_call, *args)
        vega[i] = bs_vega_scalar(is_call, *args)
        theta[i] = bs_theta_scalar(is_call, *args)
    return STATUS_OK
