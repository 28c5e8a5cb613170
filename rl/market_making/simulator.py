"""Vectorized market simulator of an option market maker (SPEC section 5; Fang & Xu, section 2).

Dynamics on a time grid ``0 = t_0 < … < t_N = T`` (uniform by default), M paths at once:

* underlying, exact GBM step with zero drift: ``S_{j+1} = S_j exp(σ√Δt Z − σ²Δt/2)``;
* mid-price shocks, exact: ``ξ_{j+1} = ξ_j + L √Δt Z'`` with ``L Lᵀ = ΣΣᵀ`` (eigen-factor, so a
  singular covariance is fine);
* mids ``P_i = p_i(S, t) + ξ_i``, ``p_i`` the Black–Scholes call price (zero rates);
* quotes: the policy sees the state at ``t_j`` and quotes spreads ``δ^b, δ^a`` held over the step;
* fills: bid and ask fill counts of the step are Poisson with means ``A e^{−kδ} Δt`` (exact for
  quotes held over the step), drawn by inverting the Poisson CDF at common uniforms. Inventory bounds
  as in the grid model: no bid is quoted at ``Q_i = Q̄`` and no ask at ``Q_i = −Q̄``; within a step the
  fills that would carry the inventory past a bound are discarded (thinned): at most ``Q̄ − Q_i``
  bid fills and ``Q̄ + Q_i`` ask fills are executed. The share of thinned fills is reported;
* delta-hedged marked-to-market P&L, split into
  ``spread income  Σ_i δ^b_i N^b_i + δ^a_i N^a_i``,
  ``inventory P&L  Σ_i Q_i (P_{i,j+1} − P_{i,j}) − Δ_j (S_{j+1} − S_j)``, with the hedge
  ``Δ_j = Σ_i Q_i ∂p_i/∂S(S_j, t_j)`` (zero mean: p_i(S_t, t) and S are martingales),
  ``running risk  −(φ/2) Qᵀ ΣΣᵀ Q Δt`` and ``terminal penalty  −ψ0 Σ_i (P_iT Q_iT)²``;
  the exploratory objective adds ``γ · entropy · Δt`` of the quote distribution.

Common random numbers: every step draws, in a fixed order, ``Z`` (underlying, [M]), ``Z'`` (shocks,
[M, n]), the fill uniforms ([M, n, 2]) and the quote uniforms ([M, n, 2]) from the caller's
``torch.Generator``, whatever the policy. Two policies simulated from generators with the same seed
therefore see the same market and the same order flow (the Poisson inversion is monotone in the
uniform), which makes P&L differences between policies precise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pdecore.budget import check_memory, check_work
from pdecore.checks import check_finite_array, check_int
from rl.black_scholes import bs_price_delta_torch
from rl.market_making.policies import ASK, BID, DTYPE, MarketState, Quotes, SpreadPolicy

_MAX_POISSON_TERMS = 64


def poisson_inverse_cdf(mean: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Smallest integer N with ``P(Poisson(mean) ≤ N) ≥ u``, elementwise (monotone in u).

    Sums the probabilities term by term; the loop stops when every entry is resolved (a few terms
    for the per-step means of a market simulator, at most 64).
    """
    prob = torch.exp(-mean)
    cdf = prob.clone()
    count = torch.zeros_like(mean)
    for n in range(1, _MAX_POISSON_TERMS + 1):
        above = uniforms > cdf
        if not bool(above.any()):
            break
        count = count + above.to(mean.dtype)
        prob = prob * mean / n
        cdf = cdf + prob
    return count


@dataclass
class SimulationResult:
    """What :meth:`MarketMakingSimulator.simulate` returns (tensors of shape [M] unless noted).

    Attributes
    ----------
    spread_income, inventory_pnl, running_risk, terminal_penalty : Tensor[M]
        The P&L components (``running_risk`` and ``terminal_penalty`` are ≤ 0).
    entropy_bonus : Tensor[M]
        ``γ Σ_j entropy_j Δt_j`` of the quote distribution (0 for deterministic quotes).
    terminal_inventory : Tensor[M, n]
    fills : Tensor[M, n, 2]
        Executed bid/ask fills per option over the horizon.
    thinned : int
        Fills discarded at the inventory bounds.
    bound_steps : int
        Path-steps that started at an inventory bound (some side switched off).
    times : ndarray [N + 1]
    inventory, spot, prices : Tensor[N + 1, M, n] / [N + 1, M] / [N + 1, M, n], optional
        Paths (when ``record=True``).
    bid, ask : Tensor[N, M, n], optional
        Quoted spreads (when ``record=True``).
    """

    spread_income: torch.Tensor
    inventory_pnl: torch.Tensor
    running_risk: torch.Tensor
    terminal_penalty: torch.Tensor
    entropy_bonus: torch.Tensor
    terminal_inventory: torch.Tensor
    fills: torch.Tensor
    thinned: int
    bound_steps: int
    times: np.ndarray
    inventory: torch.Tensor | None = None
    spot: torch.Tensor | None = None
    prices: torch.Tensor | None = None
    bid: torch.Tensor | None = None
    ask: torch.Tensor | None = None

    @property
    def pnl(self) -> torch.Tensor:
        """``X_T − ψ0 Σ (P_iT Q_iT)² − (φ/2)∫QᵀΣΣᵀQ``: the market maker's objective (no entropy)."""
        return self.spread_income + self.inventory_pnl + self.running_risk + self.terminal_penalty

    @property
    def objective(self) -> torch.Tensor:
        """The exploratory objective: :attr:`pnl` plus the entropy bonus (what θ of the grid is)."""
        return self.pnl + self.entropy_bonus

    def summary(self) -> dict[str, float]:
        """Means and standard errors of every component (JSON-friendly floats)."""
        m = self.pnl.shape[0]
        out = {}
        for name in ("pnl", "objective", "spread_income", "inventory_pnl", "running_risk", "terminal_penalty",
                     "entropy_bonus"):
            values = getattr(self, name)
            out[f"{name}_mean"] = float(values.mean())
            out[f"{name}_std"] = float(values.std()) if m > 1 else 0.0
            out[f"{name}_stderr"] = out[f"{name}_std"] / math.sqrt(m)
        out["mean_abs_terminal_inventory"] = float(self.terminal_inventory.abs().mean())
        out["thinned_fills"] = int(self.thinned)
        out["bound_step_share"] = float(self.bound_steps) / float(m * (len(self.times) - 1))
        return out


#: Optimistic option-path-steps per second of the vectorized loop (work refusal only).
_PATH_STEPS_PER_SECOND = 1e8


def _show(count) -> str:
    """A count for a message: exact up to 1e15, else ``1e+300``-style."""
    return f"{int(count)}" if abs(float(count)) < 1e15 else f"{float(count):.3g}"


class MarketMakingSimulator:
    """Simulate M market makers under one policy in the model of a :class:`pdecore.MarketMakingModel`.

    Parameters
    ----------
    model : pdecore.MarketMakingModel
        The market (one source of truth with the grid HJB).
    n_steps : int, optional
        Number of equal time steps over ``[0, T]``; default ``ceil(2 T max A)``, so that a quote at
        zero spread fills on average at most ½ time per step (≈ 0.18 at the myopic spread 1/k).
    times : array-like, optional
        An explicit increasing grid from 0 to T (overrides ``n_steps``), e.g. graded towards T.
    device : str or torch.device, default "cpu"

    Notes
    -----
    The quotes are held over each step, so the simulated market maker reacts to a fill only at the
    next date; the continuous-time value (the grid HJB's θ) is recovered as the steps shrink, with an
    error of order ``λΔt`` relative to the inventory-dependent part of the value.
    """

    def __init__(self, model, *, n_steps: int | None = None, times=None, device="cpu") -> None:
        self.model = model
        horizon = float(model.horizon)
        if times is not None:
            if np.asarray(times).dtype == bool:
                raise ValueError(f"times must be numbers, got {times!r}; pass e.g. numpy.linspace(0, T, N + 1)")
            times = check_finite_array("times", times, fix="pass an increasing grid such as numpy.linspace(0, T, N + 1)")
            if times.ndim != 1 or times.size < 2 or not np.all(np.diff(times) > 0.0):
                raise ValueError("times must be an increasing 1-D grid with at least two dates; pass e.g. "
                                 "numpy.linspace(0, T, N + 1)")
            if abs(times[0]) > 1e-12 or abs(times[-1] - horizon) > 1e-9 * max(1.0, horizon):
                raise ValueError(f"times must run from 0 to the horizon {horizon}, got [{times[0]}, {times[-1]}]; "
                                 "pass a grid over [0, T]")
            times = times.copy()
            times[0], times[-1] = 0.0, horizon
        else:
            if n_steps is None:
                n_steps = int(math.ceil(horizon * 2.0 * max(model.intensity_bid_array().max(),
                                                            model.intensity_ask_array().max())))
            n_steps = check_int("n_steps", n_steps, minimum=1, fix="pass a positive number of time steps")
            check_memory(f"MarketMakingSimulator with n_steps={_show(n_steps)}", 8.0 * (float(n_steps) + 1.0),
                         fix="pass fewer n_steps (the default ceil(2·horizon·max A) keeps fills per step below 1/2)")
            times = np.linspace(0.0, horizon, n_steps + 1)
        self.times = times
        self.device = torch.device(device)
        self.n_options = model.n_options
        self.max_inventory = int(model.max_inventory)
        as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=float), dtype=DTYPE, device=self.device)  # noqa: E731
        self.strikes = as_t(model.strikes)
        self.maturities = as_t(model.maturities)
        intensity = np.stack([model.intensity_bid_array(), model.intensity_ask_array()], axis=1)
        self.intensity = as_t(intensity)  # [n, 2]: bid, ask
        self.decay = as_t(model.decay_array())
        cov = model.noise_cov_array()
        self.noise_cov = as_t(cov)
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        self.noise_factor = as_t(eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None)))  # L with L Lᵀ = ΣΣᵀ

    # ------------------------------------------------------------------ pieces
    def mid_prices(self, spot: torch.Tensor, t: float):
        """Black–Scholes mids ``p_i(S, t)`` ``[M, n]`` and deltas ``∂p_i/∂S`` ``[M, n]``."""
        tau = self.maturities - t
        price, delta = bs_price_delta_torch("call", spot[:, None], self.strikes, tau, self.model.volatility)
        # the formula can dip a few ulps below intrinsic deep in the money: clip at the payoff
        return torch.maximum(price, (spot[:, None] - self.strikes).clamp(min=0.0)), delta

    def initial_state(self, n_paths: int, initial_inventory=None) -> MarketState:
        """State at t = 0: ``S_0``, ``ξ = 0`` and the given inventory (zeros by default)."""
        spot = torch.full((n_paths,), float(self.model.spot), dtype=DTYPE, device=self.device)
        if initial_inventory is None:
            inventory = torch.zeros(n_paths, self.n_options, dtype=DTYPE, device=self.device)
        else:
            inventory = torch.as_tensor(initial_inventory, dtype=DTYPE, device=self.device)
            inventory = inventory.expand(n_paths, self.n_options).clone()
            if bool((inventory.abs() > self.max_inventory).any()) or bool((inventory != inventory.round()).any()):
                raise ValueError(f"initial_inventory must be integers in [-{self.max_inventory}, "
                                 f"{self.max_inventory}]; pass e.g. zeros")
        noise = torch.zeros(n_paths, self.n_options, dtype=DTYPE, device=self.device)
        prices, _ = self.mid_prices(spot, 0.0)
        return MarketState(inventory, spot, prices + noise, noise)

    def _check_budget(self, n_paths: int, record: bool) -> None:
        """Refuse a simulation past the memory or work budget (:mod:`pdecore.budget`) before drawing.

        Per path the loop holds about ``12 + 16 n`` floats (state, running sums, the step's draws, quotes
        and fills); ``record`` keeps ``4n + 1`` more per date (inventory, prices, bid, ask, spot), twice
        while stacking. The work is ``n_paths × n_steps`` path-steps of about ``n`` Black–Scholes
        evaluations each, at an optimistic 1e8 per second.
        """
        n = float(self.n_options)
        dates = float(len(self.times))
        per_path = 12.0 + 16.0 * n + (2.0 * dates * (4.0 * n + 1.0) if record else 0.0)
        what = f"simulating n_paths={_show(n_paths)} over {len(self.times) - 1} steps"
        fix = "simulate fewer paths (or in batches) or fewer steps"
        check_memory(what + (" with record=True" if record else ""), 8.0 * float(n_paths) * per_path, fix=fix)
        check_work(what, float(n_paths) * (dates - 1.0) * n, rate=_PATH_STEPS_PER_SECOND, fix=fix)

    # ------------------------------------------------------------------ main loop
    def simulate(self, policy: SpreadPolicy, n_paths: int, *, generator: torch.Generator,
                 initial_inventory=None, record: bool = False) -> SimulationResult:
        """Simulate ``n_paths`` paths under ``policy`` (see the module docstring for the dynamics).

        Parameters
        ----------
        policy : SpreadPolicy
            Anything with ``quote(t, state, uniforms) -> Quotes``.
        n_paths : int
            M.
        generator : torch.Generator
            Source of every random number (common random numbers across policies with equal seeds),
            on any device: the numbers are drawn on the generator's device and moved to the simulator's.
        initial_inventory : array-like [n] or [M, n], optional
            Integer starting inventories (default zeros).
        record : bool, default False
            Keep the inventory, spot, price and quote paths.
        """
        n_paths = check_int("n_paths", n_paths, minimum=1, fix="pass a positive number of paths")
        self._check_budget(n_paths, record)
        run = self.start(n_paths, generator=generator, initial_inventory=initial_inventory)
        rec = {"inventory": [run.inventory.clone()], "spot": [run.spot.clone()], "prices": [run.prices.clone()],
               "bid": [], "ask": []} if record else None
        for _ in range(len(self.times) - 1):
            quotes = self.advance(run, policy)
            if record:
                rec["inventory"].append(run.inventory.clone())
                rec["spot"].append(run.spot.clone())
                rec["prices"].append(run.prices.clone())
                rec["bid"].append(quotes.bid.clone())
                rec["ask"].append(quotes.ask.clone())
        result = self.finish(run)
        if record:
            result.inventory = torch.stack(rec["inventory"])
            result.spot = torch.stack(rec["spot"])
            result.prices = torch.stack(rec["prices"])
            result.bid = torch.stack(rec["bid"])
            result.ask = torch.stack(rec["ask"])
        return result

    # ------------------------------------------------------------------ one step at a time
    # simulate() is start → advance × N → finish; the pieces are public so that a step-by-step caller
    # (the Gymnasium environments of rl.envs) runs the same dynamics and the same draws.
    def start(self, n_paths: int, *, generator: torch.Generator, initial_inventory=None) -> "SimulationRun":
        """The state of ``n_paths`` paths at ``t_0`` (see :meth:`simulate` for the parameters)."""
        n_paths = check_int("n_paths", n_paths, minimum=1, fix="pass a positive number of paths")
        self._check_budget(n_paths, False)
        state = self.initial_state(n_paths, initial_inventory)
        base, hedge_ratio = self.mid_prices(state.spot, 0.0)
        zeros = lambda *shape: torch.zeros(*shape, dtype=DTYPE, device=self.device)  # noqa: E731
        return SimulationRun(generator=generator, step=0, inventory=state.inventory, spot=state.spot,
                             noise=state.noise, prices=base + state.noise, hedge_ratio=hedge_ratio,
                             spread_income=zeros(n_paths), inventory_pnl=zeros(n_paths), running_risk=zeros(n_paths),
                             entropy_bonus=zeros(n_paths), fills=zeros(n_paths, self.n_options, 2))

    def advance(self, run: "SimulationRun", policy: SpreadPolicy) -> Quotes:
        """One step ``t_j → t_{j+1}`` of ``run`` under ``policy`` (module docstring); returns the quotes.

        The P&L components of ``run`` accumulate in place; the terminal penalty is added by :meth:`finish`.
        """
        j = run.step
        if j >= len(self.times) - 1:
            raise ValueError(f"the run is at the horizon (step {j} of {len(self.times) - 1}); call finish()")
        model = self.model
        sigma = float(model.volatility)
        n = self.n_options
        qbar = self.max_inventory
        dev = self.device
        n_paths = run.inventory.shape[0]
        generator = run.generator
        # draws come from the generator's own device (a CPU generator gives the same numbers whatever
        # the simulation device: seeds reproduce across devices) and are then moved to ``dev``
        draw_on = generator.device
        half_phi = 0.5 * float(model.risk_aversion)
        gamma = float(model.temperature)
        inventory, spot, noise, prices, hedge_ratio = run.inventory, run.spot, run.noise, run.prices, run.hedge_ratio
        t, dt = float(self.times[j]), float(self.times[j + 1] - self.times[j])
        # --- 1. common random numbers of the step, in a fixed order, on the generator's device ---
        z_spot = torch.randn(n_paths, generator=generator, dtype=DTYPE, device=draw_on).to(dev)
        z_noise = torch.randn(n_paths, n, generator=generator, dtype=DTYPE, device=draw_on).to(dev)
        u_fill = torch.rand(n_paths, n, 2, generator=generator, dtype=DTYPE, device=draw_on).to(dev)
        u_quote = torch.rand(n_paths, n, 2, generator=generator, dtype=DTYPE, device=draw_on).to(dev)
        # --- 2. quotes from the state at t_j ---
        quotes = policy.quote(t, MarketState(inventory, spot, prices, noise), u_quote)
        spreads = torch.stack([quotes.bid, quotes.ask], dim=-1)  # [M, n, 2]
        # --- 3. fills: Poisson counts at the quoted spreads, thinned at the inventory bounds ---
        mean = self.intensity * torch.exp(-self.decay[:, None] * spreads) * dt
        counts = poisson_inverse_cdf(mean, u_fill)
        room = torch.stack([qbar - inventory, qbar + inventory], dim=-1)  # fills allowed per side
        executed = torch.minimum(counts, room)
        run.thinned += int((counts - executed).sum())
        run.bound_steps += int((room == 0).any(dim=(-1, -2)).sum())
        run.spread_income = run.spread_income + (spreads * executed).sum(dim=(-1, -2))
        if gamma > 0.0:
            run.entropy_bonus = run.entropy_bonus + gamma * quotes.entropy * dt
        if half_phi > 0.0:
            run.running_risk = run.running_risk - half_phi * torch.einsum(
                "mi,ij,mj->m", inventory, self.noise_cov, inventory) * dt
        run.fills = run.fills + executed
        # --- 4. market moves: exact GBM for S, Gaussian increments for ξ ---
        new_spot = spot * torch.exp(sigma * math.sqrt(dt) * z_spot - 0.5 * sigma**2 * dt)
        noise = noise + math.sqrt(dt) * z_noise @ self.noise_factor.T
        new_base, new_hedge = self.mid_prices(new_spot, float(self.times[j + 1]))
        new_prices = new_base + noise
        # --- 5. delta-hedged inventory P&L on the inventory held over the step ---
        hedge = (inventory * hedge_ratio).sum(-1)
        run.inventory_pnl = run.inventory_pnl + (inventory * (new_prices - prices)).sum(-1) - hedge * (new_spot - spot)
        run.inventory = inventory + executed[..., BID] - executed[..., ASK]
        run.spot, run.prices, run.hedge_ratio, run.noise = new_spot, new_prices, new_hedge, noise
        run.step = j + 1
        return quotes

    def terminal_penalty(self, run: "SimulationRun") -> torch.Tensor:
        """``−ψ0 Σ_i (P_i Q_i)²`` at the run's current state (its value at ``T`` closes the P&L)."""
        return -float(self.model.terminal_penalty) * ((run.prices * run.inventory) ** 2).sum(-1)

    def finish(self, run: "SimulationRun") -> SimulationResult:
        """The :class:`SimulationResult` of a run advanced to the horizon (adds the terminal penalty)."""
        if run.step != len(self.times) - 1:
            raise ValueError(f"the run is at step {run.step}, not at the horizon {len(self.times) - 1}; "
                             "advance it first")
        return SimulationResult(run.spread_income, run.inventory_pnl, run.running_risk, self.terminal_penalty(run),
                                run.entropy_bonus, run.inventory.clone(), run.fills, run.thinned, run.bound_steps,
                                self.times.copy())


@dataclass
class SimulationRun:
    """A simulation in progress (:meth:`MarketMakingSimulator.start`): the state at date ``step`` and
    the P&L components accumulated so far (tensors [M] or [M, n]; ``fills`` [M, n, 2])."""

    generator: torch.Generator
    step: int
    inventory: torch.Tensor
    spot: torch.Tensor
    noise: torch.Tensor
    prices: torch.Tensor
    hedge_ratio: torch.Tensor
    spread_income: torch.Tensor
    inventory_pnl: torch.Tensor
    running_risk: torch.Tensor
    entropy_bonus: torch.Tensor
    fills: torch.Tensor
    thinned: int = 0
    bound_steps: int = 0


__all__ = ["MarketMakingSimulator", "SimulationResult", "SimulationRun", "poisson_inverse_cdf"]


def graded_times(horizon: float, n_steps: int, grading: float = 1.0) -> np.ndarray:
    """``t_j = T (1 − (1 − j/N)^p)``: uniform for p = 1, refined towards T for p > 1 (the boundary
    layer of the terminal penalty), with the first step ``≈ pT/N``."""
    s = np.linspace(0.0, 1.0, n_steps + 1)
    times = horizon * (1.0 - (1.0 - s) ** grading)
    times[0], times[-1] = 0.0, horizon
    return times
