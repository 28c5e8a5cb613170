"""The n-option market maker as a Gymnasium environment (``pderl/MarketMaking-v0``; SPEC section 5).

Built on :class:`pdecore.MarketMakingModel` (the market of the grid HJB) and stepped by
:class:`rl.market_making.simulator.MarketMakingSimulator` itself (:meth:`~MarketMakingSimulator.start`,
:meth:`~MarketMakingSimulator.advance`, :meth:`~MarketMakingSimulator.finish`): the same dynamics, the same
fills, the same P&L accounting and the same order of random draws as the learner's and the validation's
simulations, so an environment seeded like :func:`validation.market_making.compare_policies` sees the
same market.

Spaces (``n`` options, inventory bound ``Q̄``, spread bounds ``[δ_min, δ_max]``, horizon ``T``)
-----------------------------------------------------------------------------------------------
* observation ``o_j = (t_j, Q_1 … Q_n, P_1 … P_n, S_j)`` (float64, the simulator's precision: a policy
  tabulated on dates, like the grid HJB's, must see ``t_j`` exactly to pick the same date): time, integer inventories in
  ``[−Q̄, Q̄]``, mids ``P_i = p_i(S, t) + ξ_i`` (Black–Scholes call price plus the mid shock) and the
  underlying (the inputs ``V(t, Q, P, S)`` of the paper's value function);
* action ``a_j = (δ^b_1 … δ^b_n, δ^a_1 … δ^a_n)`` in ``[δ_min, δ_max]^{2n}``: bid and ask spreads per
  option, held over ``[t_j, t_{j+1})`` (clipped to the bounds; no bid is filled at ``Q_i = Q̄``, no ask
  at ``Q_i = −Q̄``).

Reward: the increments of the market maker's objective (the simulator's ``pnl``)

.. math::

    r_j = \\sum_i (δ^b_i N^b_{ij} + δ^a_i N^a_{ij})
          + \\sum_i Q_{ij}(P_{i,j+1} − P_{ij}) − Δ_j (S_{j+1} − S_j)
          − \\tfrac{φ}{2} Q_jᵀ ΣΣᵀ Q_j Δt_j
          \\;[\\,−\\, ψ_0 \\sum_i (P_{iT} Q_{iT})^2 \\text{ at the last step}],

spread income on the Poisson fills ``N ~ Poisson(A e^{−kδ} Δt)``, delta-hedged inventory P&L
(``Δ_j = Σ_i Q_i ∂p_i/∂S``), running inventory risk and, at ``T``, the terminal penalty; so the
undiscounted return of an episode is the simulator's ``pnl`` of that path. The quotes of the
environment are deterministic, so the entropy bonus of the exploratory objective is zero. An episode
lasts the ``N`` steps of the simulator's grid and is then terminated (all sub-environments of a vector
environment end together).
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from pdecore.market_making_params import MarketMakingModel
from rl.envs.vector import BatchedEnv, BatchedVectorEnv
from rl.market_making.policies import DTYPE, Quotes
from rl.market_making.simulator import MarketMakingSimulator


def market_making_model(model: MarketMakingModel | None = None, *, n_options: int = 1, **fields) -> MarketMakingModel:
    """The model of an environment: ``model`` itself, or :meth:`MarketMakingModel.paper_defaults`
    (``n_options`` and ``fields`` replacing defaults; SPEC section 5, in days)."""
    if model is not None:
        if not isinstance(model, MarketMakingModel):
            raise ValueError(f"model must be a pdecore.MarketMakingModel, got {type(model).__name__}; "
                             "pass MarketMakingModel.paper_defaults(1) or keyword fields")
        if fields:
            raise ValueError(f"pass either model or model fields, got both (fields {sorted(fields)})")
        return model
    return MarketMakingModel.paper_defaults(n_options, **fields)


class _GivenQuotes:
    """The agent's spreads as a :class:`rl.market_making.policies.SpreadPolicy` (deterministic quotes)."""

    def __init__(self, bid: torch.Tensor, ask: torch.Tensor) -> None:
        self.bid, self.ask = bid, ask

    def quote(self, t, state, uniforms) -> Quotes:
        return Quotes(self.bid, self.ask, torch.zeros(self.bid.shape[0], dtype=DTYPE, device=self.bid.device))


def observation_space(model: MarketMakingModel) -> spaces.Box:
    """``Box`` of ``(t, Q_1..Q_n, P_1..P_n, S)`` (module docstring)."""
    n, qbar = model.n_options, float(model.max_inventory)
    low = np.concatenate([[0.0], np.full(n, -qbar), np.zeros(n + 1)])
    high = np.concatenate([[float(model.horizon)], np.full(n, qbar), np.full(n + 1, np.inf)])
    return spaces.Box(low=low, high=high, dtype=np.float64)


def action_space(model: MarketMakingModel) -> spaces.Box:
    """``Box`` of ``(δ^b_1..δ^b_n, δ^a_1..δ^a_n)`` in the model's spread bounds."""
    low, high = model.spread_bounds
    n = model.n_options
    return spaces.Box(low=np.full(2 * n, low, dtype=np.float32), high=np.full(2 * n, high, dtype=np.float32),
                      dtype=np.float32)


def observations(t: float, inventory: torch.Tensor, prices: torch.Tensor, spot: torch.Tensor) -> np.ndarray:
    """``(t, Q, P, S)`` rows ``[M, 2 + 2n]`` float64 from simulator tensors (also used by the validation)."""
    rows = inventory.shape[0]
    time = np.full((rows, 1), t, dtype=np.float64)
    return np.concatenate([time, inventory.cpu().numpy(), prices.cpu().numpy(), spot.cpu().numpy().reshape(rows, 1)],
                          axis=1).astype(np.float64, copy=False)


def spreads_from_actions(actions, model: MarketMakingModel, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bid and ask spreads ``[M, n]`` (float64, clipped to the spread bounds) from actions ``[M, 2n]``."""
    n = model.n_options
    actions = np.asarray(actions, dtype=float)
    if actions.shape != (rows, 2 * n):
        raise ValueError(f"actions must have shape ({rows}, {2 * n}) (bid then ask spreads per option), "
                         f"got {actions.shape}")
    if not np.isfinite(actions).all():
        raise ValueError("actions must be finite spreads; the policy returned NaN or infinity")
    low, high = model.spread_bounds
    actions = np.clip(actions, low, high)
    spreads = torch.as_tensor(actions, dtype=DTYPE)
    return spreads[:, :n].contiguous(), spreads[:, n:].contiguous()


class MarketMakingCore:
    """Batched core (protocol: :mod:`rl.envs.vector`): one :class:`SimulationRun` of ``M`` paths."""

    def __init__(self, model: MarketMakingModel, *, n_steps: int | None = None, times=None) -> None:
        self.model = model
        self.simulator = MarketMakingSimulator(model, n_steps=n_steps, times=times)
        self.times = self.simulator.times
        self.observation_space = observation_space(model)
        self.action_space = action_space(model)
        self.run = None

    def reset(self, n: int, generator: torch.Generator) -> np.ndarray:
        self.generator = generator
        self.run = self.simulator.start(n, generator=generator)
        return self.observe()

    def reset_rows(self, mask: np.ndarray) -> None:
        # every path reaches T at the same step, so a reset restarts the whole batch
        if mask.any():
            self.run = self.simulator.start(mask.size, generator=self.generator)

    def observe(self) -> np.ndarray:
        run = self.run
        return observations(float(self.times[run.step]), run.inventory, run.prices, run.spot)

    def _objective(self) -> torch.Tensor:
        run = self.run
        return run.spread_income + run.inventory_pnl + run.running_risk

    def step(self, actions):
        run = self.run
        rows = run.inventory.shape[0]
        bid, ask = spreads_from_actions(actions, self.model, rows)
        before = self._objective()
        with torch.no_grad():
            self.simulator.advance(run, _GivenQuotes(bid.to(run.inventory.device), ask.to(run.inventory.device)))
        reward = self._objective() - before
        done = run.step == len(self.times) - 1
        if done:
            reward = reward + self.simulator.terminal_penalty(run)
        terminated = np.full(rows, done, dtype=bool)
        return self.observe(), reward.cpu().numpy(), terminated


class MarketMakingEnv(BatchedEnv):
    """One market maker (module docstring for spaces and reward).

    Parameters
    ----------
    model : pdecore.MarketMakingModel, optional
        The market; default :meth:`MarketMakingModel.paper_defaults` with ``n_options`` and ``fields``.
    n_steps : int, optional
        Equal steps over ``[0, T]`` (default: the simulator's, ``ceil(2 T max A)``).
    times : array-like, optional
        An explicit time grid (overrides ``n_steps``).
    n_options : int
        Options of the default model (1, 2 or 3).
    **fields
        Fields of the default model (e.g. ``max_inventory=20``).
    """

    def __init__(self, model: MarketMakingModel | None = None, *, n_steps: int | None = None, times=None,
                 n_options: int = 1, **fields) -> None:
        super().__init__(MarketMakingCore(market_making_model(model, n_options=n_options, **fields),
                                          n_steps=n_steps, times=times))
        self.model = self.core.model


class MarketMakingVectorEnv(BatchedVectorEnv):
    """``num_envs`` market makers simulated as one batch (parameters as :class:`MarketMakingEnv`)."""

    def __init__(self, num_envs: int = 256, model: MarketMakingModel | None = None, *, n_steps: int | None = None,
                 times=None, n_options: int = 1, **fields) -> None:
        super().__init__(MarketMakingCore(market_making_model(model, n_options=n_options, **fields),
                                          n_steps=n_steps, times=times), num_envs)
        self.model = self.core.model


__all__ = ["MarketMakingEnv", "MarketMakingVectorEnv", "MarketMakingCore", "market_making_model",
           "observations", "spreads_from_actions", "observation_space", "action_space"]
