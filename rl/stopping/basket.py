"""The d-asset Black–Scholes market of the geometric-basket put (SPEC section 7; stopping paper v3,
section 5; Becker, Cheridito & Jentzen 2019).

Model. ``d`` assets under the risk-neutral measure,

.. math::

    dX_i = (ρ − δ_i) X_i\\,dt + σ_i X_i\\,dW_i, \\qquad X_i(0) = 100^{1/\\sqrt d},

with ``σ_i = min{s·((i−1) mod 40), 40·s − s·((i−1) mod 40)}`` (``s = 0.04``; the variant scales σ by
``1/√10``), ``δ_i = ρ − (Σ_j σ_j²/d²)(i − ½) − c/√d`` (``c = 1/5``; variant ``1/50``) and the payoff of
the "geometric average" ``G = Π_k X_k^{1/√d}`` (``G_0 = 100``): ``(Γ − G)^+``. The Brownian motions are
independent in the paper; ``correlation`` = ``c_W`` sets an equicorrelation ``d⟨W_i, W_j⟩ = c_W dt``
(drawn as ``W_i = √(1 − c_W) B_i + √c_W B_0``, which needs ``0 ≤ c_W < 1``).

Steps are exact: ``log X(t + Δt) = log X(t) + (ρ − δ_i − σ_i²/2)Δt + σ_i √Δt Z_i``. Paths are drawn
in float64 on the CPU from the caller's ``torch.Generator`` (a seed gives the same paths on every
device) and returned in the requested dtype on the requested device.

Why the drift is chosen so: ``log G = d^{−1/2} Σ log X_i`` is a Brownian motion with drift
``d^{−1/2} Σ (ρ − δ_i − σ_i²/2) = c`` and variance rate ``σ_G² = d^{−1} Σ_ij σ_i σ_j c_ij``: ``G`` is a
one-dimensional GBM and the American basket put has an exact 1-D equivalent
(:func:`pdecore.basket.geometric_equivalent`), which prices it to 1e-6 and gives the exact exercise
boundary in terms of ``G``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pdecore.basket import BASKET_CASES, geometric_equivalent, paper_dividends, paper_volatilities
from pdecore.budget import check_memory
from pdecore.checks import check_choice, check_int, check_positive, check_real

DTYPES = {"float32": torch.float32, "float64": torch.float64}  # keys: rl.stopping.high_dim_config.DTYPE_NAMES


@dataclass(frozen=True)
class BasketMarket:
    """The d-asset market and the geometric-basket put.

    Parameters
    ----------
    dimension : int
        ``d`` ≥ 1 (paper: 40, 80, 120, 160, 200).
    case : {"main", "variant"}
        The paper's parameter set (:data:`BASKET_CASES`): ρ, σ scale, drift constant, strike.
    correlation : float, default 0
        Equicorrelation ``c_W ∈ [0, 1)`` of the Brownian motions (paper: 0).
    maturity : float, default 1
    """

    dimension: int
    case: str = "main"
    correlation: float = 0.0
    maturity: float = 1.0

    def __post_init__(self) -> None:
        check_int("dimension", self.dimension, minimum=1, fix="pass the number of assets, e.g. 40")
        check_choice("case", self.case, tuple(BASKET_CASES), fix="use case='main' or case='variant'")
        check_real("correlation", self.correlation, fix="pass an equicorrelation in [0, 1), e.g. 0")
        if not 0.0 <= self.correlation < 1.0:
            raise ValueError(f"correlation must lie in [0, 1), got {self.correlation!r}; pass 0 for the "
                             "paper's independent Brownian motions")
        check_positive("maturity", self.maturity, fix="pass a maturity in years, e.g. 1")

    # ------------------------------------------------------------------ parameters
    @property
    def rate(self) -> float:
        return BASKET_CASES[self.case]["rate"]

    @property
    def strike(self) -> float:
        return BASKET_CASES[self.case]["strike"]

    @property
    def volatilities(self) -> np.ndarray:
        return paper_volatilities(self.dimension, BASKET_CASES[self.case]["volatility_scale"])

    @property
    def dividends(self) -> np.ndarray:
        return paper_dividends(self.volatilities, self.rate, BASKET_CASES[self.case]["drift_constant"])

    @property
    def spot(self) -> float:
        """``x_0 = 100^{1/√d}`` per asset (so that ``G_0 = 100``)."""
        return 100.0 ** (1.0 / math.sqrt(self.dimension))

    @property
    def exponent(self) -> float:
        """The basket's exponent ``1/√d`` in ``G = Π X_k^{1/√d}``."""
        return 1.0 / math.sqrt(self.dimension)

    def geometric_parameters(self) -> dict[str, float]:
        """Volatility, rate, dividend yield and spot of the GBM ``G`` (:func:`pdecore.basket.geometric_equivalent`)."""
        model = geometric_equivalent(self.volatilities, self.dividends, self.rate, exponent=self.exponent,
                                     correlation=self.correlation)
        return {"volatility": model.volatility, "rate": model.rate, "dividend": model.dividend, "spot": 100.0}


class BasketSimulator:
    """Exact, batched paths of the d assets on ``n_dates + 1`` equally spaced dates ``t_n = nT/L``.

    Parameters
    ----------
    market : BasketMarket
    n_dates : int
        ``L`` (paper: 100); paths have ``L + 1`` dates including 0 and T.
    """

    def __init__(self, market: BasketMarket, n_dates: int) -> None:
        if not isinstance(market, BasketMarket):
            raise ValueError(f"market must be a BasketMarket, got {market!r}; pass e.g. BasketMarket(40)")
        self.market = market
        self.n_dates = check_int("n_dates", n_dates, minimum=1, fix="pass the number of decision dates, e.g. 100")
        self.dt = market.maturity / self.n_dates
        sigma = market.volatilities
        self._log_drift = torch.as_tensor((market.rate - market.dividends - 0.5 * sigma**2) * self.dt)
        self._log_vol = torch.as_tensor(sigma * math.sqrt(self.dt))
        self.dimension = market.dimension

    def bytes_per_path(self, dtype: torch.dtype = torch.float32) -> int:
        """Memory of one path while it is drawn: its normals and the result, both in ``dtype`` (the float64
        running sum is one date at a time; antithetic halves are written in place), for
        :func:`pdecore.budget.check_memory`; a third array's worth when correlated (an over-estimate)."""
        size = torch.empty((), dtype=dtype).element_size()
        factors = 2 if self.market.correlation == 0.0 else 3
        return (self.n_dates + 1) * self.dimension * size * factors

    def sample_log(self, n_paths: int, generator: torch.Generator, *, dtype: torch.dtype = torch.float32,
                   device: str | torch.device = "cpu", antithetic: bool = False) -> torch.Tensor:
        """Log-prices ``log X`` of shape ``(n_paths, L + 1, d)`` in ``dtype``.

        The normals are drawn in ``dtype`` (float32 draws cost a quarter of float64 ones on the CPU) and
        summed in float64, so float32 and float64 paths of one seed differ by the draws' rounding only
        in distribution, not path by path. Memory is estimated and refused before allocation
        (:func:`pdecore.budget.check_memory`). ``antithetic`` (``n_paths`` even): the normals of the
        last ``n_paths/2`` paths are those of the first half negated, so path ``i + n/2`` mirrors path
        ``i`` (antithetic variates: each pair's mean has less variance than two independent paths').
        """
        n_paths = check_int("n_paths", n_paths, minimum=1, fix="pass a positive number of paths")
        check_memory(f"basket paths n_paths={n_paths}, n_dates={self.n_dates}, d={self.dimension}",
                     float(n_paths) * self.bytes_per_path(dtype),
                     fix="draw fewer paths at a time (smaller batch_size or evaluation chunk)")
        if antithetic and n_paths % 2:
            raise ValueError(f"n_paths={n_paths} with antithetic=True: antithetic paths come in pairs; pass an "
                             "even number of paths")
        drawn = n_paths // 2 if antithetic else n_paths

        def draw(width: int) -> torch.Tensor:
            out = torch.empty((n_paths, self.n_dates, width), dtype=dtype)
            torch.randn((drawn, self.n_dates, width), generator=generator, dtype=dtype, out=out[:drawn])
            if antithetic:  # the mirror half in place: no second copy of the normals
                torch.neg(out[:drawn], out=out[drawn:])
            return out

        c = self.market.correlation
        normals = draw(self.dimension)
        common = draw(1) if c > 0.0 else None  # equicorrelated W_i = √(1−c) B_i + √c B_0
        log_spot = math.log(self.market.spot)
        log_paths = torch.empty((n_paths, self.n_dates + 1, self.dimension), dtype=dtype)
        log_paths[:, 0] = log_spot
        # the float64 sum one date at a time (the order of a cumulative sum, so the same numbers): memory
        # for the normals and the result only, which matters on a fine execution grid (L·m dates)
        total = torch.zeros((n_paths, self.dimension), dtype=torch.float64)
        for n in range(self.n_dates):
            z = normals[:, n].to(torch.float64)
            if common is not None:
                z = math.sqrt(1.0 - c) * z + math.sqrt(c) * common[:, n].to(torch.float64)
            total += z * self._log_vol + self._log_drift
            log_paths[:, n + 1] = total + log_spot
        return log_paths.to(device=device)

    def sample(self, n_paths: int, generator: torch.Generator, *, dtype: torch.dtype = torch.float32,
               device: str | torch.device = "cpu") -> torch.Tensor:
        """Prices ``X`` of shape ``(n_paths, L + 1, d)`` (exact GBM steps)."""
        return torch.exp(self.sample_log(n_paths, generator, dtype=dtype, device=device))

    def geometric_mean_log(self, log_prices: torch.Tensor) -> torch.Tensor:
        """``G = exp(d^{−1/2} Σ_k log X_k)`` from log-prices (summed in float64), float64."""
        return torch.exp(self.log_geometric_mean(log_prices))

    def log_geometric_mean(self, log_prices: torch.Tensor) -> torch.Tensor:
        """``log G = d^{−1/2} Σ_k log X_k`` from log-prices, float64 (summed in float64 without a float64
        copy of the prices: the same numbers as converting first, tested)."""
        return log_prices.sum(dim=-1, dtype=torch.float64) * self.market.exponent

    def geometric_mean(self, prices: torch.Tensor) -> torch.Tensor:
        """``G = Π_k X_k^{1/√d} = exp(d^{−1/2} Σ_k log X_k)`` over the last axis (computed in float64)."""
        return torch.exp(torch.log(prices.to(torch.float64)).sum(dim=-1) * self.market.exponent)

    def payoff(self, prices: torch.Tensor) -> torch.Tensor:
        """``(Γ − G)^+`` over the last axis, float64."""
        return torch.clamp(self.market.strike - self.geometric_mean(prices), min=0.0)
