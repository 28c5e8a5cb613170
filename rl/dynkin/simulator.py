"""The bond/stock ratio ``x = B/S`` between trades, simulated from stock prices under the physical
measure (SPEC section 4; paper section 4.7: "the stock price samples are simulated under the physical
measure").

The stock follows ``dS = αS dt + σS dW`` and the bond ``dB = rB dt``; exact GBM steps give the gross
return ``S_{l+1}/S_l = exp((α − σ²/2)Δt + σ√Δt Z_l)``, and the untraded ratio moves by
``x_{l+1} = x_l e^{rΔt} S_l/S_{l+1}`` (it keeps its sign; ``log|x|`` has drift ``r − α + σ²/2`` and
volatility σ, the generator ``½σ²x²∂_xx + (r − α + σ²)x∂_x`` of :mod:`pdecore.merton`). The learner
sees only these observable quantities. Initial ratios are uniform on ``[initial_low, initial_high]``.
All draws come from the caller's ``torch.Generator`` (bit-exact resume), all dates at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pdecore.checks import check_int, check_real
from pdecore.params import MertonCosts


@dataclass(frozen=True)
class RatioSimulator:
    """Simulate the ratio process on the ``L + 1`` dates ``t_l = lΔt``.

    Parameters
    ----------
    model : pdecore.MertonCosts
        The true market (the same object the PDE solvers take).
    n_steps : int
        ``L``.
    initial_low, initial_high : float
        Interval of the uniform initial ratio.
    """

    model: MertonCosts
    n_steps: int
    initial_low: float
    initial_high: float

    def __post_init__(self) -> None:
        if not isinstance(self.model, MertonCosts):
            raise ValueError(f"model must be a pdecore.MertonCosts, got {type(self.model).__name__}")
        object.__setattr__(self, "n_steps", check_int("n_steps", self.n_steps, minimum=1,
                                                      fix="pass a positive number of dates such as 10"))
        low = check_real("initial_low", self.initial_low)
        high = check_real("initial_high", self.initial_high)
        if not low < high:
            raise ValueError(f"initial_low {low!r} must be < initial_high {high!r}; swap them")

    @property
    def dt(self) -> float:
        """``Δt = T/L``."""
        return self.model.maturity / self.n_steps

    def stock_returns(self, normals: torch.Tensor) -> torch.Tensor:
        """Gross stock returns ``S_{l+1}/S_l`` from standard normals ``(M, L)`` (exact GBM, physical drift)."""
        m, dt = self.model, self.dt
        return torch.exp(normals * (m.volatility * math.sqrt(dt)) + (m.drift - 0.5 * m.volatility**2) * dt)

    def paths_from(self, initial: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
        """Ratio paths ``(M, L + 1)`` from initial ratios ``(M,)`` and normals ``(M, L)``."""
        m, dt = self.model, self.dt
        # log(e^{rΔt} S_l/S_{l+1}) = rΔt − log gross return: one cumulative sum over dates
        log_factors = (m.rate - m.drift + 0.5 * m.volatility**2) * dt - normals * (m.volatility * math.sqrt(dt))
        cumulative = torch.cat([torch.zeros_like(initial).unsqueeze(1), torch.cumsum(log_factors, dim=1)], dim=1)
        return initial.unsqueeze(1) * torch.exp(cumulative)

    def sample(self, n_paths: int, generator: torch.Generator, *, dtype=torch.float32) -> torch.Tensor:
        """Draw ``n_paths`` ratio paths ``(n_paths, L + 1)`` (float64 arithmetic, cast to ``dtype``)."""
        n_paths = check_int("n_paths", n_paths, minimum=1, fix="pass a positive number of paths")
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        uniform = torch.rand(n_paths, generator=generator, dtype=torch.float64)
        normals = torch.randn(n_paths, self.n_steps, generator=generator, dtype=torch.float64)
        initial = self.initial_low + (self.initial_high - self.initial_low) * uniform
        return self.paths_from(initial, normals).to(dtype)


def clamped_obstacles_torch(x: torch.Tensor, cost: float, floor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Sell ``x_c/(x_c+1−θ)`` and buy ``x_c/(x_c+1+θ)`` obstacles at ``x_c = max(x, floor)`` (the torch twin
    of :func:`pdecore.dynkin_oracle.clamped_obstacles`)."""
    xc = torch.clamp(x, min=floor)
    return xc / (xc + (1.0 - cost)), xc / (xc + (1.0 + cost))
