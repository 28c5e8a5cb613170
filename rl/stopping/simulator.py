"""Path simulators built from the same frozen parameter objects as the PDE engines (SPEC section 3).

Geometric Brownian motion under the risk-neutral drift, ``dX = (r − q) X dt + σ X dW``, observed on
the ``L + 1`` dates ``t_l = l Δt``, ``Δt = T/L``:

* ``scheme="exact"`` (default): ``X_{l+1} = X_l exp((r − q − σ²/2) Δt + σ √Δt Z_l)``, exact in law;
* ``scheme="euler"``: ``X_{l+1} = X_l (1 + (r − q) Δt + σ √Δt Z_l)``, the forward Euler scheme of the
  stopping paper (Dai, Sun, Xu & Zhou, eq. 3.5). Its one-step mean is exact; its variance and
  higher moments carry an O(Δt) bias.

All paths of a batch are generated at once (one ``randn`` call, one cumulative sum or product over
dates): no Python loop over dates or paths. Draws come from the caller's ``torch.Generator`` only, so
that the learners' checkpoints (which hold that generator's state) resume bit-exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pdecore.checks import check_choice, check_int, check_positive
from pdecore.params import AmericanOption, BlackScholes

SCHEMES = ("exact", "euler")


@dataclass(frozen=True)
class GBMSimulator:
    """Simulate the underlying of an American option on its ``L`` decision dates.

    Parameters
    ----------
    model : pdecore.BlackScholes
        Volatility, rate and dividend of the simulated (true) market.
    option : pdecore.AmericanOption
        Supplies the maturity T (and the payoff, used by the learners).
    spot : float
        ``X_0 > 0``; every path starts there (paper: S_0 = 40).
    n_steps : int
        ``L ≥ 1``, number of decision intervals.
    scheme : {"exact", "euler"}
        Time stepping (see the module docstring).
    """

    model: BlackScholes
    option: AmericanOption
    spot: float
    n_steps: int
    scheme: str = "exact"

    def __post_init__(self) -> None:
        if not isinstance(self.model, BlackScholes):
            raise ValueError(f"model must be a pdecore.BlackScholes, got {type(self.model).__name__}; "
                             "pass BlackScholes(volatility=..., rate=...)")
        if not isinstance(self.option, AmericanOption):
            raise ValueError(f"option must be a pdecore.AmericanOption, got {type(self.option).__name__}; "
                             "pass AmericanOption(kind, strike, maturity)")
        object.__setattr__(self, "spot", check_positive("spot", self.spot, fix="pass e.g. spot=40"))
        object.__setattr__(self, "n_steps", check_int("n_steps", self.n_steps, minimum=1,
                                                      fix="pass a positive number of dates such as 50"))
        check_choice("scheme", self.scheme, SCHEMES, fix='use scheme="exact" or scheme="euler"')

    @property
    def dt(self) -> float:
        """``Δt = T / L``."""
        return self.option.maturity / self.n_steps

    def times(self, *, dtype=torch.float32, device=None) -> torch.Tensor:
        """The ``L + 1`` dates ``t_l = l Δt``."""
        return torch.arange(self.n_steps + 1, dtype=torch.float64, device=device).mul(self.dt).to(dtype)

    def sample(self, n_paths: int, generator: torch.Generator, *, dtype=torch.float32,
               device=None) -> torch.Tensor:
        """Draw ``n_paths`` paths; returns shape ``(n_paths, L + 1)`` with column 0 equal to ``spot``.

        Parameters
        ----------
        n_paths : int
            Number of paths ``M ≥ 1``.
        generator : torch.Generator
            Source of the normals (on ``device``).
        """
        n_paths = check_int("n_paths", n_paths, minimum=1, fix="pass a positive number of paths")
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}; "
                             "pass torch.Generator().manual_seed(seed)")
        device = generator.device if device is None else device
        normals = torch.randn(n_paths, self.n_steps, generator=generator, dtype=dtype, device=device)
        return self.paths_from_normals(normals)

    def paths_from_normals(self, normals: torch.Tensor) -> torch.Tensor:
        """Turn standard normals of shape ``(M, L)`` into paths ``(M, L + 1)`` (vectorized over dates)."""
        dt, sigma, carry = self.dt, self.model.volatility, self.model.carry
        start = torch.full((normals.shape[0], 1), self.spot, dtype=normals.dtype, device=normals.device)
        if self.scheme == "exact":
            increments = normals * (sigma * math.sqrt(dt)) + (carry - 0.5 * sigma**2) * dt
            log_paths = torch.cumsum(increments, dim=1).add_(math.log(self.spot))
            return torch.cat([start, torch.exp(log_paths)], dim=1)
        factors = normals * (sigma * math.sqrt(dt)) + (1.0 + carry * dt)
        return torch.cat([start, torch.cumprod(factors, dim=1).mul_(self.spot)], dim=1)
