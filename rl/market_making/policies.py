"""Spread policies of the option market maker: the Gibbs (exploratory) policy and its adapters.

The Gibbs policy (SPEC section 5; Fang & Xu, Theorem 1, eq. 15 and Algorithm 1)
--------------------------------------------------------------------------------
For one option and one side, with value difference ``Δ`` (``Δ^+_i = V(Q + e_i) − V(Q)`` on the bid
side, ``Δ^-_i = V(Q − e_i) − V(Q)`` on the ask side), intensity ``λ(δ) = A e^{−kδ}`` and temperature
``γ > 0``, the optimal density of the spread on the bounded interval ``[δ_min, δ_max]`` is

.. math::

    π(δ \\mid Δ) ∝ \\exp\\big(f(δ; Δ)/γ\\big),  \\qquad  f(δ; Δ) = A e^{−kδ}(δ + Δ),

and the exploratory Hamiltonian is
``H_γ(Δ) = γ log ∫ exp(f/γ) dδ = E_π[λ(δ)(δ + Δ)] + γ 𝓗(π)`` with the differential entropy
``𝓗(π) = −∫ π log π``. Everything the simulator and the learner need from π depends on Δ alone:

* the mean spread ``E_π[δ]`` (what the validation compares with the grid),
* the fill rate ``E_π[λ(δ)]`` and the spread income rate ``E_π[λ(δ) δ]`` (the reward of the TD
  error, paper eq. 20),
* the entropy ``𝓗(π)`` (the regularizer of paper eq. 12),
* the quantile function ``F^{-1}(u; Δ)`` (sampling a quote by inversion, coupled across policies by
  common uniforms).

:class:`GibbsSpreadTable` therefore reads these functions, tabulated once in NumPy by
:func:`pdecore.gibbs.gibbs_policy_table` (the one implementation of the density, shared with the grid
HJB and the quadratic approximation) on a grid in ``z = asinh(kΔ)`` (dense where the policy moves,
sparse in the tails where the density is pinned at a bound), and interpolates them linearly in torch.
The γ → 0 limit is the argmax ``δ* = clip(1/k − Δ, δ_min, δ_max)`` (the deterministic Hamiltonian of
the grid HJB), evaluated in closed form.

Policy protocol
---------------
A policy plugs into :class:`rl.market_making.simulator.MarketMakingSimulator` through one method::

    quote(t: float, state: MarketState, uniforms: Tensor[M, n, 2]) -> Quotes

returning the bid and ask spreads ``[M, n]`` (side 0 = bid, side 1 = ask) and the entropy of the
quote distribution per path ``[M]`` (zero for deterministic quotes). ``uniforms`` are the common
random numbers of the step, used by stochastic policies to draw their quotes by inversion.

Adapters: :class:`DifferencePolicy` (any function ``(t, state) -> Δ[M, n, 2]`` through the Gibbs
table: value network, grid θ table, quadratic approximation θ), :class:`GridValuePolicy` (a θ table
on the inventory grid), :class:`SpreadFunctionPolicy` (a function returning spreads, e.g. the
quadratic approximation's closed-form quotes) and :class:`ConstantSpreadPolicy`.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Protocol

import numpy as np
import torch

from pdecore.checks import check_choice, check_finite_array, check_int, check_nonnegative
from pdecore.gibbs import MAX_MAGNITUDE, SCORE_MAX, Z_MAX, argmax_spread, check_spread_bounds, gibbs_policy_table
from pdecore.inventory_grid import inventory_strides

BID, ASK = 0, 1
DTYPE = torch.float64


class MarketState(NamedTuple):
    """State of M simulated market makers at one date (all tensors on the simulator's device).

    Attributes
    ----------
    inventory : Tensor[M, n]
        Q, integer-valued, stored as float64.
    spot : Tensor[M]
        S.
    prices : Tensor[M, n]
        Mids ``P_i = p_i(S, t) + ξ_i``.
    noise : Tensor[M, n]
        ξ.
    """

    inventory: torch.Tensor
    spot: torch.Tensor
    prices: torch.Tensor
    noise: torch.Tensor


class Quotes(NamedTuple):
    """Quoted spreads ``[M, n]`` per side and the entropy ``[M]`` of the quote distribution.

    ``entropy`` is the sum over options and sides of the differential entropies (0 for
    deterministic quotes); the simulator credits ``γ · entropy · dt`` to the exploratory objective.
    """

    bid: torch.Tensor
    ask: torch.Tensor
    entropy: torch.Tensor


class SpreadPolicy(Protocol):
    """Anything the simulator can run (see the module docstring)."""

    def quote(self, t: float, state: MarketState, uniforms: torch.Tensor) -> Quotes: ...


class GibbsStats(NamedTuple):
    """Moments of the Gibbs spread density at given Δ; every field has Δ's shape ``[..., n, 2]``."""

    mean_spread: torch.Tensor
    rate: torch.Tensor
    income: torch.Tensor
    entropy: torch.Tensor


# ====================================================================== tabulated Gibbs policy (torch)
class _SideTable(NamedTuple):
    """Tables of one (A, k) pair, on the ``z = asinh(kΔ)`` grid, as torch tensors."""

    mean_spread: torch.Tensor  # [n_delta]
    rate: torch.Tensor
    income: torch.Tensor
    entropy: torch.Tensor
    quantiles: torch.Tensor  # [n_delta_quantile, n_levels]


def _side_table(intensity, decay, temperature, bounds, n_delta, n_delta_quantile, n_quadrature,
                n_levels) -> _SideTable:
    """The NumPy tables of :func:`pdecore.gibbs.gibbs_policy_table` (memoized there) as tensors.

    ``n_quadrature`` counts nodes here (intervals in :mod:`pdecore.gibbs`).
    """
    arrays = gibbs_policy_table(intensity, decay, temperature, bounds[0], bounds[1], n_quadrature - 1,
                                n_delta, n_delta_quantile, n_levels)
    return _SideTable(*(torch.tensor(array, dtype=DTYPE) for array in arrays))


class GibbsSpreadTable:
    """The Gibbs spread policy of every option and side as tabulated functions of Δ.

    Parameters
    ----------
    intensity : array-like, shape (n, 2)
        ``A`` per option and side (column 0 bid, column 1 ask).
    decay : array-like, shape (n,)
        ``k`` per option (shared by both sides, as in the model).
    temperature : float
        γ ≥ 0. With γ = 0 every function is the closed-form argmax limit and nothing is tabulated.
    spread_bounds : (float, float)
        ``[δ_min, δ_max]``; finite when γ > 0.
    n_quadrature : int, default 1001
        Quadrature nodes over the spread interval (spacing 0.004 on the defaults' [0, 4]; the Gibbs
        density of the paper-like defaults has s.d. ≈ 0.04 near its mode).
    n_delta : int, default 2049
        Δ nodes for the moments, equispaced in ``z = asinh(kΔ) ∈ [−z_max, z_max]``.
    n_delta_quantile, n_levels : int, default 513, 129
        Grid of the quantile table (Δ nodes × probability levels).

    Δ is tabulated for ``|kΔ| ≤ 10⁴`` and clamped beyond (the density is then pinned to a bound to
    within ~1e-5 of the interval).

    Notes
    -----
    Tables are built once per distinct ``(A, k)`` pair (the paper-like defaults have one), in NumPy
    float64, and stored as torch float64 tensors; lookups are linear interpolation in z (moments)
    and bilinear in (z, u) (quantiles), vectorized over any leading shape.
    """

    def __init__(self, intensity, decay, temperature: float, spread_bounds: tuple[float, float], *,
                 n_quadrature: int = 1001, n_delta: int = 2049, n_delta_quantile: int = 513,
                 n_levels: int = 129) -> None:
        for name, value in (("intensity", intensity), ("decay", decay)):
            if value is None or np.asarray(value).dtype == bool:
                raise ValueError(f"{name} must be positive numbers, got {value!r}; pass the model's A and k")
        intensity = check_finite_array("intensity", intensity, fix="pass [[A_bid, A_ask], ...] per option")
        decay = check_finite_array("decay", decay, fix="pass k per option").reshape(-1)
        if intensity.ndim != 2 or intensity.shape != (decay.size, 2):
            raise ValueError(f"intensity must have shape (n, 2) = (len(decay), 2) = ({decay.size}, 2), got "
                             f"{intensity.shape}; pass [[A_bid, A_ask], ...] per option and one decay per option")
        for name, values in (("intensity", intensity), ("decay", decay)):
            if np.any(values <= 0.0) or np.any(values > MAX_MAGNITUDE):
                raise ValueError(f"{name} must be positive and <= {MAX_MAGNITUDE:g} (the bound of "
                                 f"MarketMakingModel), got {values.tolist()!r}; pass the model's A and k")
        self.temperature = check_nonnegative("temperature", temperature, fix="pass γ >= 0")
        if self.temperature > MAX_MAGNITUDE:
            raise ValueError(f"temperature must be <= {MAX_MAGNITUDE:g} (the bound of MarketMakingModel), got "
                             f"{temperature!r}; pass γ >= 0, e.g. 0.1")
        self.spread_bounds = check_spread_bounds(spread_bounds, self.temperature)
        self.n_options = decay.size
        self.intensity = torch.as_tensor(intensity, dtype=DTYPE)
        self.decay = torch.as_tensor(decay, dtype=DTYPE)
        self.n_quadrature = check_int("n_quadrature", n_quadrature, minimum=64, fix="pass e.g. 2001")
        self.n_delta = check_int("n_delta", n_delta, minimum=64, fix="pass e.g. 4097")
        self.n_delta_quantile = check_int("n_delta_quantile", n_delta_quantile, minimum=16, fix="pass e.g. 1025")
        self.n_levels = check_int("n_levels", n_levels, minimum=8, fix="pass e.g. 257")
        self._tables: dict[tuple[float, float], _SideTable] = {}
        self._keys: list[list[tuple[float, float]]] = []
        if self.temperature == 0.0:
            return
        for i in range(self.n_options):
            row = []
            for side in (BID, ASK):
                key = (float(intensity[i, side]), float(decay[i]))
                if key not in self._tables:
                    self._tables[key] = _side_table(key[0], key[1], self.temperature, self.spread_bounds,
                                                    self.n_delta, self.n_delta_quantile, self.n_quadrature,
                                                    self.n_levels)
                row.append(key)
            self._keys.append(row)
        self._stack()

    @classmethod
    def from_model(cls, model, **kwargs) -> "GibbsSpreadTable":
        """The table of a :class:`pdecore.MarketMakingModel` (its A, k, γ and spread bounds)."""
        intensity = np.stack([model.intensity_bid_array(), model.intensity_ask_array()], axis=1)
        return cls(intensity, model.decay_array(), model.temperature, model.spread_bounds, **kwargs)

    def _stack(self) -> None:
        """Stack the per-(option, side) tables into ``[n*2, nodes]`` tensors for batched gathers."""
        order = [self._keys[i][s] for i in range(self.n_options) for s in (BID, ASK)]
        self._moment = {name: torch.stack([getattr(self._tables[key], name) for key in order])
                        for name in ("mean_spread", "rate", "income", "entropy")}
        self._quantile = torch.stack([self._tables[key].quantiles for key in order])  # [n*2, Dq, L]

    def to(self, device) -> "GibbsSpreadTable":
        """Move the tables to ``device`` (in place; returns self)."""
        self.intensity = self.intensity.to(device)
        self.decay = self.decay.to(device)
        if self.temperature > 0.0:
            self._moment = {k: v.to(device) for k, v in self._moment.items()}
            self._quantile = self._quantile.to(device)
        return self

    # ------------------------------------------------------------------ lookups
    def _position(self, delta: torch.Tensor, n_nodes: int):
        """Fractional node index of Δ ``[..., n, 2]`` on a z-grid with ``n_nodes`` nodes (clamped)."""
        z = torch.asinh(delta * self.decay[:, None])
        z_max = Z_MAX
        pos = (z.clamp(-z_max, z_max) + z_max) / (2.0 * z_max) * (n_nodes - 1)
        index = pos.floor().clamp(0, n_nodes - 2)
        return index.long(), pos - index

    def _rows(self, shape) -> torch.Tensor:
        """Row of each (option, side) in the stacked tables, broadcast to ``shape``."""
        rows = torch.arange(2 * self.n_options, device=self.decay.device).reshape(self.n_options, 2)
        return rows.expand(shape)

    def stats(self, delta: torch.Tensor) -> GibbsStats:
        """Mean spread, fill rate, income rate and entropy of the policy at ``delta[..., n, 2]``."""
        lam = self.intensity
        k = self.decay[:, None]
        if self.temperature == 0.0:
            low, high = self.spread_bounds
            spread = argmax_spread(delta, k, low, high)
            rate = lam * torch.exp(-k * spread)
            return GibbsStats(spread, rate, rate * spread, torch.zeros_like(spread))
        index, frac = self._position(delta, self.n_delta)
        rows = self._rows(delta.shape)
        flat = rows * self.n_delta + index

        def interp(table):
            t = table.reshape(-1)
            return t[flat] * (1.0 - frac) + t[flat + 1] * frac

        return GibbsStats(*(interp(self._moment[name]) for name in ("mean_spread", "rate", "income", "entropy")))

    def mean_spread(self, delta: torch.Tensor) -> torch.Tensor:
        """``E_π[δ]`` at ``delta[..., n, 2]`` (the argmax ``clip(1/k − Δ)`` when γ = 0)."""
        return self.stats(delta).mean_spread

    def sample(self, delta: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """Spreads drawn by inversion, ``F^{-1}(u; Δ)``, for ``delta`` and ``uniforms`` of shape ``[..., n, 2]``.

        Monotone in u, so policies sharing the uniforms are coupled (common random numbers). With
        γ = 0 the draw is the deterministic argmax.
        """
        if self.temperature == 0.0:
            return self.mean_spread(delta)
        index, frac = self._position(delta, self.n_delta_quantile)
        rows = self._rows(delta.shape)
        n_levels = self.n_levels
        score = torch.special.ndtri(uniforms.clamp(1e-300, 1.0 - 1e-16)).clamp(-SCORE_MAX, SCORE_MAX)
        upos = (score + SCORE_MAX) / (2.0 * SCORE_MAX) * (n_levels - 1)
        uindex = upos.floor().clamp(0, n_levels - 2).long()
        ufrac = upos - uindex
        table = self._quantile.reshape(-1)
        base = (rows * self.n_delta_quantile + index) * n_levels + uindex
        q00, q01 = table[base], table[base + 1]
        q10, q11 = table[base + n_levels], table[base + n_levels + 1]
        low = q00 * (1.0 - ufrac) + q01 * ufrac
        high = q10 * (1.0 - ufrac) + q11 * ufrac
        return low * (1.0 - frac) + high * frac


# ====================================================================== adapters
def _active_sides(inventory: torch.Tensor, max_inventory: int) -> torch.Tensor:
    """``[M, n, 2]`` mask: no bid at ``Q_i = Q̄``, no ask at ``Q_i = −Q̄`` (the grid model's bounds)."""
    return torch.stack([inventory < max_inventory, inventory > -max_inventory], dim=-1)


class DifferencePolicy:
    """The Gibbs policy of any value-difference function (paper Algorithm 1's policy update).

    Parameters
    ----------
    table : GibbsSpreadTable
        The Gibbs machinery of the model.
    differences : callable ``(t, state) -> Tensor[M, n, 2]``
        ``Δ^+_i = V(t, Q + e_i) − V(t, Q)`` (column 0) and ``Δ^-_i = V(t, Q − e_i) − V(t, Q)``
        (column 1) for a value function V: a value network, a grid θ table, a quadratic
        approximation.
    execution : {"sample", "mean"}
        ``"sample"`` draws each quote from the Gibbs density by inversion of the step's uniforms (the
        exploratory policy, whose objective includes γ·entropy); ``"mean"`` quotes the mean spread
        deterministically (entropy 0). With γ = 0 both are the argmax.
    """

    def __init__(self, table: GibbsSpreadTable, differences: Callable, *, execution: str = "sample") -> None:
        self.table = table
        self.differences = differences
        self.execution = check_choice("execution", execution, ("sample", "mean"), fix="pass 'sample' or 'mean'")

    def quote(self, t: float, state: MarketState, uniforms: torch.Tensor) -> Quotes:
        delta = self.differences(t, state)
        if self.execution == "sample" and self.table.temperature > 0.0:
            spreads = self.table.sample(delta, uniforms)
            entropy = self.table.stats(delta).entropy.sum(dim=(-1, -2))
        else:
            spreads = self.table.mean_spread(delta)
            entropy = torch.zeros(delta.shape[0], dtype=delta.dtype, device=delta.device)
        return Quotes(spreads[..., BID], spreads[..., ASK], entropy)


class GridValuePolicy(DifferencePolicy):
    """The Gibbs policy of a θ table on the inventory grid (the grid HJB's optimal policy).

    Parameters
    ----------
    table : GibbsSpreadTable
    times : array-like, shape (n_time + 1,)
        Dates of the θ table, increasing from 0 to T.
    theta : array-like, shape (n_time + 1, 2Q̄+1, …, 2Q̄+1)
        θ(t, q) with inventory axis j holding ``q_j = j − Q̄``.
    max_inventory : int
        Q̄.
    execution : {"sample", "mean"}

    Notes
    -----
    At a simulation date t the policy uses the table date ``t_j ≤ t`` immediately at or before it
    (θ is piecewise constant in time between table dates; choose a table at least as fine as the
    simulation). Δ at a bound, where the side is switched off, is set to 0 (the quote is then
    irrelevant: the simulator suppresses the fill).
    """

    def __init__(self, table: GibbsSpreadTable, times, theta, max_inventory: int, *,
                 execution: str = "sample") -> None:
        self.times = np.asarray(times, dtype=float)
        theta = torch.as_tensor(np.ascontiguousarray(theta, dtype=float), dtype=DTYPE)
        self.max_inventory = int(max_inventory)
        n = theta.ndim - 1
        size = 2 * self.max_inventory + 1
        if theta.shape[1:] != (size,) * n or theta.shape[0] != self.times.size:
            raise ValueError(f"theta must have shape ({self.times.size}, {size}, ...) for max_inventory="
                             f"{max_inventory}, got {tuple(theta.shape)}; pass the grid result's values")
        self.n_options = n
        # Δ tables: pad θ by edge values so that Q ± e_i at the bound gives Δ = 0
        flat = theta.reshape(theta.shape[0], -1)
        self._strides = torch.as_tensor(inventory_strides(n, self.max_inventory), dtype=torch.long)
        self._theta_flat = flat
        self._size = size
        super().__init__(table, self._grid_differences, execution=execution)

    def _grid_differences(self, t: float, state: MarketState) -> torch.Tensor:
        j = int(np.clip(np.searchsorted(self.times, t + 1e-12 * max(1.0, self.times[-1]), side="right") - 1,
                        0, self.times.size - 1))
        theta = self._theta_flat[j].to(state.inventory.device)
        q = state.inventory.round().long() + self.max_inventory  # [M, n]
        strides = self._strides.to(q.device)
        centre = (q * strides).sum(-1)
        value = theta[centre]
        out = torch.zeros(q.shape + (2,), dtype=DTYPE, device=q.device)
        for i in range(self.n_options):
            up_ok = q[:, i] < self._size - 1
            down_ok = q[:, i] > 0
            up = theta[(centre + strides[i]).clamp(max=theta.numel() - 1)]
            down = theta[(centre - strides[i]).clamp(min=0)]
            out[:, i, BID] = torch.where(up_ok, up - value, torch.zeros_like(value))
            out[:, i, ASK] = torch.where(down_ok, down - value, torch.zeros_like(value))
        return out


class SpreadFunctionPolicy:
    """Deterministic quotes from a function ``(t, inventory[M, n]) -> (bid[M, n], ask[M, n])``.

    Used for closed-form quotes such as those of the quadratic approximation
    (:func:`pdecore.quadratic_approximation`). The spreads are clipped to ``spread_bounds``.
    """

    def __init__(self, spreads: Callable, spread_bounds: tuple[float, float] = (-math.inf, math.inf)) -> None:
        self.spreads = spreads
        self.spread_bounds = spread_bounds

    def quote(self, t: float, state: MarketState, uniforms: torch.Tensor) -> Quotes:
        bid, ask = self.spreads(t, state.inventory)
        low, high = self.spread_bounds
        bid = torch.as_tensor(bid, dtype=DTYPE, device=state.inventory.device).clamp(low, high)
        ask = torch.as_tensor(ask, dtype=DTYPE, device=state.inventory.device).clamp(low, high)
        zero = torch.zeros(state.inventory.shape[0], dtype=DTYPE, device=state.inventory.device)
        return Quotes(bid.expand_as(state.inventory), ask.expand_as(state.inventory), zero)


class ConstantSpreadPolicy:
    """The same bid and ask spreads at every date and state (e.g. the myopic ``1/k``).

    Parameters
    ----------
    bid, ask : float or sequence of float
        Spreads per option (a scalar applies to every option).
    """

    def __init__(self, bid, ask) -> None:
        self.bid = torch.as_tensor(np.atleast_1d(np.asarray(bid, dtype=float)), dtype=DTYPE)
        self.ask = torch.as_tensor(np.atleast_1d(np.asarray(ask, dtype=float)), dtype=DTYPE)

    @classmethod
    def myopic(cls, model) -> "ConstantSpreadPolicy":
        """The constant ``1/k`` spreads clipped to the model's bounds (optimal without inventory risk):
        the argmax at zero gain."""
        low, high = model.spread_bounds
        spread = argmax_spread(0.0, model.decay_array(), low, high)
        return cls(spread, spread)

    def quote(self, t: float, state: MarketState, uniforms: torch.Tensor) -> Quotes:
        inv = state.inventory
        zero = torch.zeros(inv.shape[0], dtype=DTYPE, device=inv.device)
        return Quotes(self.bid.to(inv.device).expand_as(inv), self.ask.to(inv.device).expand_as(inv), zero)


__all__ = ["BID", "ASK", "MarketState", "Quotes", "SpreadPolicy", "GibbsStats", "GibbsSpreadTable",
           "DifferencePolicy", "GridValuePolicy", "SpreadFunctionPolicy",
           "ConstantSpreadPolicy"]
