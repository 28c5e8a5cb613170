"""Black–Scholes in torch: the learners' differentiable twin of :mod:`pdecore.european`.

``C = S e^{−qτ} N(d₁) − K e^{−rτ} N(d₂)``, ``P = K e^{−rτ} N(−d₂) − S e^{−qτ} N(−d₁)``,
``d₁,₂ = (log(S/K) + (r − q ± σ²/2)τ)/(σ√τ)`` (Black & Scholes 1973); deltas ``e^{−qτ} N(d₁)`` and
``−e^{−qτ} N(−d₁)``. Everything broadcasts and is differentiable in ``spot`` and ``volatility``: the
stopping agent learns σ through ``V_E^ϕ`` (stopping paper, appendix B), the market simulator marks its
options to these mids and hedges with these deltas (SPEC section 5). The NumPy closed form with the
degenerate limits (``τ = 0``, ``S = 0``) is :func:`pdecore.bs_price`; the tests compare the two.
"""

from __future__ import annotations

import torch


def _d1(spot, strike, time_to_maturity, volatility, rate, dividend):
    scale = volatility * torch.sqrt(time_to_maturity)
    d1 = (torch.log(spot / strike) + (rate - dividend) * time_to_maturity) / scale + 0.5 * scale
    return d1, scale


def bs_price_delta_torch(kind: str, spot, strike, time_to_maturity, volatility, rate: float = 0.0,
                         dividend: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """European price and delta, broadcasting over every tensor argument (``τ > 0``, ``S > 0``).

    Parameters
    ----------
    kind : {"put", "call"}
    spot, strike, time_to_maturity : tensors or floats
        ``S``, ``K``, ``τ`` (the caller handles ``τ = 0``, where the price is the payoff).
    volatility : tensor or float
        σ > 0; a 0-dim tensor with ``requires_grad`` to learn it.
    rate, dividend : float
        ``r`` and ``q`` in the same time unit as ``τ``.

    Returns
    -------
    (price, delta) : tensors of the broadcast shape
    """
    d1, scale = _d1(spot, strike, time_to_maturity, volatility, rate, dividend)
    d2 = d1 - scale
    strike_part = strike * torch.exp(-rate * time_to_maturity)
    spot_discount = torch.exp(-dividend * time_to_maturity)
    if kind == "call":
        n1 = torch.special.ndtr(d1)
        return spot * spot_discount * n1 - strike_part * torch.special.ndtr(d2), spot_discount * n1
    if kind == "put":
        n1 = torch.special.ndtr(-d1)
        return strike_part * torch.special.ndtr(-d2) - spot * spot_discount * n1, -spot_discount * n1
    raise ValueError(f"kind must be 'put' or 'call', got {kind!r}")


def bs_price_torch(kind: str, spot, strike, time_to_maturity, volatility, rate: float = 0.0,
                   dividend: float = 0.0) -> torch.Tensor:
    """European price only (see :func:`bs_price_delta_torch`)."""
    return bs_price_delta_torch(kind, spot, strike, time_to_maturity, volatility, rate, dividend)[0]
