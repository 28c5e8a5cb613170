"""European Black–Scholes prices and greeks, vectorized over every numeric argument.

Model (SPEC section 1): ``dS = (r − q) S dt + σ S dW`` under the risk-neutral measure. With
``F = S e^{(r−q)T}`` the forward and

.. math::

    d_{1,2} = \\frac{\\log(S/K) + (r − q ± σ^2/2) T}{σ\\sqrt{T}},

the prices are (Black & Scholes 1973; Merton 1973 for the dividend yield)

.. math::

    C = S e^{−qT} N(d_1) − K e^{−rT} N(d_2), \\qquad
    P = K e^{−rT} N(−d_2) − S e^{−qT} N(−d_1),

and the greeks are their derivatives: ``delta = ∂V/∂S``, ``gamma = ∂²V/∂S²``, ``vega = ∂V/∂σ``
(per unit of volatility, not per percentage point) and ``theta = ∂V/∂t = −∂V/∂T`` (per year of
calendar time, the sign convention of the PDE ``V_t + 𝓛V = 0``).

Degenerate limits are exact and raise no floating-point warnings (the tests run with
``np.seterr(all="raise")``): where ``σ√T = 0`` (at maturity, or with zero volatility) or ``S = 0`` the
value is the discounted intrinsic value of the forward, ``(±(S e^{−qT} − K e^{−rT}))^+``, which at
``T = 0`` is the payoff. Delta there is the limit of ``N(±d_1)``: ``e^{−qT}`` in the money, 0 out of
the money and ``½ e^{−qT}`` exactly at the money forward; gamma and vega are 0 (the gamma of an
at-the-money option at expiry is a Dirac mass, which no array can hold); theta is the derivative of
the deterministic value.

The Numba twin for use inside other kernels is :mod:`pdecore._kernels.european`.

References
----------
Black, F. & Scholes, M. (1973), The pricing of options and corporate liabilities, JPE 81(3).
Merton, R. C. (1973), Theory of rational option pricing, Bell J. Econ. 4(1).
Hull, J. C., Options, Futures and Other Derivatives, chapter 19 (the greeks with a dividend yield).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import ndtr

from pdecore.checks import check_choice, check_finite_array

__all__ = ["bs_price", "bs_delta", "bs_gamma", "bs_vega", "bs_theta", "bs_greeks"]

_INV_SQRT_2PI = 0.3989422804014327


def _inputs(kind, spot, strike, maturity, volatility, rate, dividend):
    """Validate and broadcast the arguments; return the pieces every formula shares.

    Returns a dict with the broadcast float arrays, the discount factors, ``d1``/``d2`` (set to 0
    where the model is degenerate) and the boolean mask ``regular`` of the non-degenerate entries.
    """
    if not isinstance(kind, str):
        raise ValueError(f'kind must be "put" or "call", got {kind!r}; use kind="put" or kind="call"')
    check_choice("kind", kind, ("put", "call"), fix='use kind="put" or kind="call"')
    for name, value in (("spot", spot), ("strike", strike), ("maturity", maturity), ("volatility", volatility),
                        ("rate", rate), ("dividend", dividend)):
        # True is not a price: numpy would read it as 1.0
        if isinstance(value, (bool, np.bool_)) or np.asarray(value).dtype == bool:
            raise ValueError(f"{name} must be a number or an array of numbers, got {value!r}")
    spot = check_finite_array("spot", spot, fix="pass finite spot prices >= 0")
    strike = check_finite_array("strike", strike, fix="pass finite strikes > 0")
    maturity = check_finite_array("maturity", maturity, fix="pass finite maturities >= 0 in years")
    volatility = check_finite_array("volatility", volatility, fix="pass finite volatilities >= 0 such as 0.2")
    rate = check_finite_array("rate", rate, fix="pass a finite continuously compounded rate such as 0.05")
    dividend = check_finite_array("dividend", dividend, fix="pass a finite dividend yield such as 0.0")
    for name, values, strict, fix in (("spot", spot, False, "spot prices must be >= 0"),
                                      ("strike", strike, True, "strikes must be > 0"),
                                      ("maturity", maturity, False,
                                       "maturities must be >= 0 (0 gives the payoff)"),
                                      ("volatility", volatility, False, "volatilities must be >= 0")):
        bad = values <= 0.0 if strict else values < 0.0
        if np.any(bad):
            first_bad = values[bad].ravel()[0]
            raise ValueError(f"{name} must be {'> 0' if strict else '>= 0'}, got {first_bad!r}; {fix}")
    try:
        spot, strike, maturity, volatility, rate, dividend = np.broadcast_arrays(
            spot, strike, maturity, volatility, rate, dividend)
    except ValueError as exc:
        raise ValueError(f"spot, strike, maturity, volatility, rate and dividend must broadcast together: "
                         f"{exc}; pass arrays of compatible shapes") from exc

    total_vol = volatility * np.sqrt(maturity)
    # Degenerate entries (no diffusion left, or a zero spot that stays at zero) get the deterministic
    # limit; substituting harmless values there keeps log/division free of warnings.
    regular = (total_vol > 0.0) & (spot > 0.0)
    safe_vol = np.where(regular, total_vol, 1.0)
    safe_spot = np.where(regular, spot, 1.0)
    safe_strike = np.where(regular, strike, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        # d1 = (log(S/K) + (r − q)T)/(σ√T) + σ√T/2, written without σ² so that a huge σ√T (whose
        # prices are the σ → ∞ limits S e^{−qT} and K e^{−rT}) does not overflow.
        # A tiny but positive sigma*sqrt(T) can overflow d1 to +-inf; clipping at +-50 changes no
        # representable N(d) or phi(d) (N(-50) and phi(50) underflow to 0) and keeps d1**2 finite.
        carry = (rate - dividend) * maturity
        d1 = np.where(regular, (np.log(safe_spot / safe_strike) + carry) / safe_vol + 0.5 * safe_vol, 0.0)
        d2 = np.where(regular, d1 - total_vol, 0.0)
    d1 = np.clip(d1, -50.0, 50.0)
    d2 = np.clip(d2, -50.0, 50.0)
    return dict(spot=spot, strike=strike, maturity=maturity, volatility=volatility, rate=rate,
                dividend=dividend, regular=regular, d1=d1, d2=d2, safe_vol=safe_vol, safe_spot=safe_spot,
                sqrt_maturity=np.sqrt(maturity), spot_discount=np.exp(-dividend * maturity),
                strike_discount=np.exp(-rate * maturity))


def _moneyness_sign(p):
    """Sign of ``S e^{−qT} − K e^{−rT}`` (the in-the-money test of the deterministic limit)."""
    return np.sign(p["spot"] * p["spot_discount"] - p["strike"] * p["strike_discount"])


def _quiet_underflow(function):
    """Underflow to zero (e.g. ``φ(d_1)`` far from the money) is exact enough and never an error."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with np.errstate(under="ignore"):
            return function(*args, **kwargs)

    return wrapper


def _result(value):
    """0-d arrays become Python floats so that scalar calls return scalars."""
    return float(value) if np.ndim(value) == 0 else value


@_quiet_underflow
def bs_price(kind, spot, strike, maturity, volatility, rate, dividend=0.0):
    """European Black–Scholes price (Black & Scholes 1973, Merton 1973).

    Parameters
    ----------
    kind : {"put", "call"}
    spot, strike, maturity, volatility, rate, dividend : float or array_like
        ``S ≥ 0``, ``K > 0``, ``T ≥ 0`` (years), ``σ ≥ 0``, ``r`` and ``q`` finite; all broadcast
        together.

    Returns
    -------
    float or ndarray
        ``C = S e^{−qT} N(d_1) − K e^{−rT} N(d_2)`` or ``P = K e^{−rT} N(−d_2) − S e^{−qT} N(−d_1)``;
        the discounted intrinsic value of the forward where ``σ√T = 0`` or ``S = 0``.

    Raises
    ------
    ValueError
        Unknown ``kind``, non-finite or out-of-range inputs, shapes that do not broadcast.
    """
    p = _inputs(kind, spot, strike, maturity, volatility, rate, dividend)
    forward_part = p["spot"] * p["spot_discount"]
    strike_part = p["strike"] * p["strike_discount"]
    if kind == "call":
        smooth = forward_part * ndtr(p["d1"]) - strike_part * ndtr(p["d2"])
        limit = np.maximum(forward_part - strike_part, 0.0)
    else:
        smooth = strike_part * ndtr(-p["d2"]) - forward_part * ndtr(-p["d1"])
        limit = np.maximum(strike_part - forward_part, 0.0)
    # Rounding can push a deep out-of-the-money value a few ulps below zero.
    return _result(np.where(p["regular"], np.maximum(smooth, 0.0), limit))


@_quiet_underflow
def bs_delta(kind, spot, strike, maturity, volatility, rate, dividend=0.0):
    """Delta ``∂V/∂S``: ``e^{−qT} N(d_1)`` (call) or ``−e^{−qT} N(−d_1)`` (put).

    Parameters are those of :func:`bs_price`. In the deterministic limit the value is the limit of
    the formula: ``±e^{−qT}`` in the money, 0 out of the money, ``±½ e^{−qT}`` at the money forward.
    """
    p = _inputs(kind, spot, strike, maturity, volatility, rate, dividend)
    # N(d1) -> 1, 0 or 1/2 as sigma*sqrt(T) -> 0, according to the sign of the forward moneyness.
    call_limit = 0.5 * (1.0 + _moneyness_sign(p))
    call_limit = np.where(p["spot"] > 0.0, call_limit, 0.0)
    n_d1 = np.where(p["regular"], ndtr(p["d1"]), call_limit)
    if kind == "call":
        return _result(p["spot_discount"] * n_d1)
    return _result(-p["spot_discount"] * (1.0 - n_d1))


@_quiet_underflow
def bs_gamma(kind, spot, strike, maturity, volatility, rate, dividend=0.0):
    """Gamma ``∂²V/∂S² = e^{−qT} φ(d_1)/(S σ√T)`` (the same for puts and calls); 0 where degenerate.

    Parameters are those of :func:`bs_price`.
    """
    p = _inputs(kind, spot, strike, maturity, volatility, rate, dividend)
    density = _INV_SQRT_2PI * np.exp(-0.5 * p["d1"] ** 2)
    gamma = p["spot_discount"] * density / (p["safe_spot"] * p["safe_vol"])
    return _result(np.where(p["regular"], gamma, 0.0))


@_quiet_underflow
def bs_vega(kind, spot, strike, maturity, volatility, rate, dividend=0.0):
    """Vega ``∂V/∂σ = S e^{−qT} φ(d_1) √T`` per unit of volatility; 0 where degenerate.

    Parameters are those of :func:`bs_price`.
    """
    p = _inputs(kind, spot, strike, maturity, volatility, rate, dividend)
    density = _INV_SQRT_2PI * np.exp(-0.5 * p["d1"] ** 2)
    vega = p["spot"] * p["spot_discount"] * density * p["sqrt_maturity"]
    return _result(np.where(p["regular"], vega, 0.0))


@_quiet_underflow
def bs_theta(kind, spot, strike, maturity, volatility, rate, dividend=0.0):
    """Theta ``∂V/∂t = −∂V/∂T`` per year of calendar time.

    .. math::

        Θ_{call} = −\\frac{S e^{−qT} φ(d_1) σ}{2\\sqrt{T}} − r K e^{−rT} N(d_2) + q S e^{−qT} N(d_1),

        Θ_{put} = −\\frac{S e^{−qT} φ(d_1) σ}{2\\sqrt{T}} + r K e^{−rT} N(−d_2) − q S e^{−qT} N(−d_1).

    Where ``σ√T = 0`` the value is the time derivative of the deterministic value (for an option
    exactly at the money at expiry the true theta is ``−∞``; the deterministic one-sided value is
    returned). Parameters are those of :func:`bs_price`.
    """
    p = _inputs(kind, spot, strike, maturity, volatility, rate, dividend)
    forward_part = p["spot"] * p["spot_discount"]
    strike_part = p["strike"] * p["strike_discount"]
    density = _INV_SQRT_2PI * np.exp(-0.5 * p["d1"] ** 2)
    safe_sqrt_t = np.where(p["regular"], p["sqrt_maturity"], 1.0)
    decay = -forward_part * density * p["volatility"] / (2.0 * safe_sqrt_t)
    sign = _moneyness_sign(p)
    if kind == "call":
        smooth = (decay - p["rate"] * strike_part * ndtr(p["d2"])
                  + p["dividend"] * forward_part * ndtr(p["d1"]))
        limit = np.where(sign > 0.0, p["dividend"] * forward_part - p["rate"] * strike_part, 0.0)
    else:
        smooth = (decay + p["rate"] * strike_part * ndtr(-p["d2"])
                  - p["dividend"] * forward_part * ndtr(-p["d1"]))
        limit = np.where(sign < 0.0, p["rate"] * strike_part - p["dividend"] * forward_part, 0.0)
    return _result(np.where(p["regular"], smooth, limit))


def bs_greeks(kind, spot, strike, maturity, volatility, rate, dividend=0.0):
    """All of price, delta, gamma, vega and theta as a dict of arrays (one validation pass each).

    Parameters are those of :func:`bs_price`.
    """
    args = (kind, spot, strike, maturity, volatility, rate, dividend)
    return {"price": bs_price(*args), "delta": bs_delta(*args), "gamma": bs_gamma(*args),
            "vega": bs_vega(*args), "theta": bs_theta(*args)}
