"""Merton's log-utility portfolio with proportional costs as a Gymnasium environment
(``pderl/MertonCosts-v0``; SPEC section 4).

Built on :class:`pdecore.MertonCosts` (market ``α, r, σ``, cost ``θ``) and on the exact money
accounting of the 20-year backtest, :mod:`validation.backtest_merton`: the daily gross stock returns
come from its generator (``_gbm_returns``: exact GBM under the physical drift α) and every trade is its
:func:`~rl.merton_market.rebalance` (the minimal trade to a bond/stock ratio, paying ``θ`` on
the traded stock value). So a policy that keeps a band earns here what the backtest reports for it.

State: bond value ``B`` and stock value ``S``, ratio ``x = B/S``, stock weight ``w = S/(B + S)``; an
episode starts from wealth 1 in cash, buys into ``x_0`` (default the frictionless Merton ratio
``x_M = (1 − π_M)/π_M``, ``π_M = (α − r)/σ²``) and lasts ``years · steps_per_year`` trading days.

Spaces
------
* observation ``o_k = (t_k, x_k, w_k)`` (float32; ``t`` in years);
* action, ``action_mode="discrete"`` (default): ``0`` sell, ``1`` hold, ``2`` buy: sell the stock down to
  weight ``max(w − Δw, Δw)``, or buy it up to ``min(w + Δw, w_max)`` (``Δw = trade_step``), by the
  minimal trade to that ratio. The no-trade band a policy implies is where it switches from selling to
  holding and from holding to buying (:func:`validation.policies.validate_policy` reads it off);
* action, ``action_mode="band"``: ``(x_s, x_b)``, a band to keep now: trade minimally back to
  ``[min, max]`` of the two numbers (``x < x_s``: sell to ``x_s``; ``x > x_b``: buy to ``x_b``).

Dynamics and reward. At day ``k`` the action's trade is made, then the bond grows by ``e^{rΔt}`` and
the stock by its gross return. With the liquidation value ``W = B + (1 − θ) S``,

.. math::  r_k = \\log W_{k+1} − \\log W_k \\quad (+\\log W_0 \\text{ at } k = 0),

so the undiscounted return of an episode is ``log W_T`` from initial wealth 1 net of every cost: the
backtest's log return, whose maximum is the log-utility objective (the frictionless reference grows
at ``r + (α − r)²/(2σ²)`` per year). A path whose ``W`` falls to ``≤ 0`` is bankrupt: the episode
terminates with ``log W`` floored at ``log 10⁻¹²`` (a finite reward).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from gymnasium import spaces

from pdecore.checks import check_choice, check_int, check_positive
from pdecore.params import MertonCosts
from rl.envs.vector import SEED_BOUND, BatchedEnv, BatchedVectorEnv

SELL, HOLD, BUY = 0, 1, 2
BANKRUPT_WEALTH = 1e-12  # floor of W in the log reward of a bankrupt path (keeps the reward finite)
BAND_RATIO_MAX = 100.0   # largest x of a band action (w ≥ 1/101: the stock is never sold out)
DEFAULT_MODEL = dict(drift=0.168, rate=0.008, volatility=0.3, cost=0.005, maturity=1.0)  # SPEC section 4


def merton_model(model: MertonCosts | None = None, **fields) -> MertonCosts:
    """``model`` or SPEC section 4's market (``α = 0.168, r = 0.008, σ = 0.3, θ = 0.005, T = 1``) with
    ``fields`` replaced."""
    if model is not None:
        if not isinstance(model, MertonCosts):
            raise ValueError(f"model must be a pdecore.MertonCosts, got {type(model).__name__}")
        if fields:
            raise ValueError(f"pass either model or model fields, got both (fields {sorted(fields)})")
        return model
    return MertonCosts(**{**DEFAULT_MODEL, **fields})


def _backtest():
    """The market's accounting (:mod:`rl.merton_market`: the one implementation of trades and stock paths,
    shared with :mod:`validation.backtest_merton`)."""
    from rl import merton_market

    return merton_market


class MertonCore:
    """Batched core (protocol: :mod:`rl.envs.vector`) over ``M`` portfolios (NumPy arrays)."""

    def __init__(self, model: MertonCosts, *, years: float | None = None, steps_per_year: int = 252,
                 action_mode: str = "discrete", trade_step: float = 0.05, max_weight: float = 5.0,
                 initial_ratio: float | None = None) -> None:
        self.model = model
        self.years = check_positive("years", model.maturity if years is None else years,
                                    fix="pass a horizon in years such as 20")
        self.steps_per_year = check_int("steps_per_year", steps_per_year, minimum=1, fix="pass e.g. 252")
        self.action_mode = check_choice("action_mode", action_mode, ("discrete", "band"),
                                        fix="pass 'discrete' (sell/hold/buy) or 'band' (x_s, x_b)")
        self.trade_step = check_positive("trade_step", trade_step, fix="pass a weight step such as 0.05")
        self.max_weight = check_positive("max_weight", max_weight, fix="pass a largest stock weight such as 5")
        if not self.max_weight < 1.0 / max(model.cost, 1e-300):
            raise ValueError(f"max_weight={max_weight} reaches the insolvency weight 1/cost = {1 / model.cost:g}; "
                             "pass a smaller max_weight")
        self.initial_ratio = model.merton_ratio if initial_ratio is None else float(initial_ratio)
        if not self.initial_ratio > -(1.0 - model.cost):
            raise ValueError(f"initial_ratio={self.initial_ratio} is at or below the insolvency ratio "
                             f"-(1 - cost) = {-(1 - model.cost)}; pass a larger ratio")
        self.n_days = max(1, int(round(self.years * steps_per_year)))
        self.dt = self.years / self.n_days
        self.growth = math.exp(model.rate * self.dt)
        self.observation_space = spaces.Box(
            low=np.array([0.0, -(1.0 - model.cost), 0.0], dtype=np.float32),
            high=np.array([self.years, np.inf, np.inf], dtype=np.float32), dtype=np.float32)
        if self.action_mode == "discrete":
            self.action_space = spaces.Discrete(3)
        else:
            low = -(1.0 - model.cost) * (1.0 - 1e-6)
            self.action_space = spaces.Box(low=np.float32(low), high=np.float32(BAND_RATIO_MAX), shape=(2,),
                                           dtype=np.float32)

    # ------------------------------------------------------------------ stream of daily returns
    def _new_stream(self):
        seed = int(torch.randint(0, SEED_BOUND, (1,), generator=self.generator))
        self._stream = _backtest().gbm_returns(self.model, self.n_days, self.n, self.dt, seed)

    def _gross(self) -> np.ndarray:
        try:
            return next(self._stream)
        except StopIteration:  # rows restarted after a bankruptcy outlive the batch's first stream
            self._new_stream()
            return next(self._stream)

    # ------------------------------------------------------------------ protocol
    def _buy_in(self, count: int):
        # from wealth 1 in cash to ratio x_0: B − (1+θ)δ = x_0 δ (as the backtest's first trade)
        delta = 1.0 / (self.initial_ratio + 1.0 + self.model.cost)
        return np.full(count, 1.0 - (1.0 + self.model.cost) * delta), np.full(count, delta)

    def reset(self, n: int, generator: torch.Generator) -> np.ndarray:
        self.generator, self.n = generator, n
        self.bond, self.stock = self._buy_in(n)
        self.day = np.zeros(n, dtype=np.int64)
        self.first = np.ones(n, dtype=bool)
        self._new_stream()
        return self.observe()

    def reset_rows(self, mask: np.ndarray) -> None:
        count = int(mask.sum())
        if count:
            self.bond[mask], self.stock[mask] = self._buy_in(count)
            self.day[mask] = 0
            self.first[mask] = True

    def wealth(self) -> np.ndarray:
        """Liquidation value ``W = B + (1 − θ) S``."""
        return self.bond + (1.0 - self.model.cost) * self.stock

    def observe(self) -> np.ndarray:
        obs = np.empty((self.bond.size, 3), dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            obs[:, 0] = self.day * self.dt
            obs[:, 1] = np.where(self.stock > 0, self.bond / np.where(self.stock > 0, self.stock, 1.0), np.inf)
            obs[:, 2] = self.stock / (self.bond + self.stock)
        return obs

    def _targets(self, actions):
        """Band ``(sell_ratio, buy_ratio)`` per row that the action asks to be kept now."""
        if self.action_mode == "band":
            actions = np.asarray(actions, dtype=float).reshape(self.n, 2)
            if not np.isfinite(actions).all():
                raise ValueError("band actions must be finite ratios; the policy returned NaN or infinity")
            low, high = float(self.action_space.low[0]), BAND_RATIO_MAX
            actions = np.clip(actions, low, high)
            return actions.min(axis=1), actions.max(axis=1)
        actions = np.asarray(actions).reshape(-1)
        if actions.shape != (self.n,) or not np.isin(actions, (SELL, HOLD, BUY)).all():
            raise ValueError(f"actions must be {self.n} integers in {{0: sell, 1: hold, 2: buy}}, got {actions!r}")
        weight = self.stock / (self.bond + self.stock)
        step = self.trade_step
        sell_weight = np.maximum(weight - step, step)
        buy_weight = np.minimum(weight + step, self.max_weight)
        sell_ratio = np.where(actions == SELL, (1.0 - sell_weight) / sell_weight, -np.inf)
        buy_ratio = np.where(actions == BUY, (1.0 - buy_weight) / buy_weight, np.inf)
        return sell_ratio, buy_ratio

    def step(self, actions):
        backtest = _backtest()
        sell_ratio, buy_ratio = self._targets(actions)
        before = np.where(self.first, 1.0, self.wealth())  # day 0 counts the buy-in cost: from wealth 1
        self.bond, self.stock, _ = backtest.rebalance(self.bond, self.stock, sell_ratio, buy_ratio, self.model.cost)
        self.bond = self.bond * self.growth
        self.stock = self.stock * self._gross()
        self.day = self.day + 1
        self.first[:] = False
        after = self.wealth()
        bankrupt = after <= 0.0
        reward = np.log(np.maximum(after, BANKRUPT_WEALTH)) - np.log(before)
        terminated = bankrupt | (self.day >= self.n_days)
        return self.observe(), reward, terminated


class MertonCostsEnv(BatchedEnv):
    """One portfolio (module docstring for spaces and reward).

    Parameters
    ----------
    model : pdecore.MertonCosts, optional
        Default: SPEC section 4's market with ``fields`` replaced.
    years : float, optional
        Episode horizon (default ``model.maturity``).
    steps_per_year : int
        Trading days per year (252).
    action_mode : {"discrete", "band"}
    trade_step, max_weight : float
        ``Δw`` of a discrete sell/buy and the largest stock weight a buy reaches.
    initial_ratio : float, optional
        ``x_0`` bought at reset (default ``x_M``).
    """

    def __init__(self, model: MertonCosts | None = None, *, years: float | None = None, steps_per_year: int = 252,
                 action_mode: str = "discrete", trade_step: float = 0.05, max_weight: float = 5.0,
                 initial_ratio: float | None = None, **fields) -> None:
        super().__init__(MertonCore(merton_model(model, **fields), years=years, steps_per_year=steps_per_year,
                                    action_mode=action_mode, trade_step=trade_step, max_weight=max_weight,
                                    initial_ratio=initial_ratio))
        self.model = self.core.model


class MertonCostsVectorEnv(BatchedVectorEnv):
    """``num_envs`` portfolios advanced as one batch (parameters as :class:`MertonCostsEnv`)."""

    def __init__(self, num_envs: int = 1024, model: MertonCosts | None = None, *, years: float | None = None,
                 steps_per_year: int = 252, action_mode: str = "discrete", trade_step: float = 0.05,
                 max_weight: float = 5.0, initial_ratio: float | None = None, **fields) -> None:
        super().__init__(MertonCore(merton_model(model, **fields), years=years, steps_per_year=steps_per_year,
                                    action_mode=action_mode, trade_step=trade_step, max_weight=max_weight,
                                    initial_ratio=initial_ratio), num_envs)
        self.model = self.core.model


__all__ = ["MertonCostsEnv", "MertonCostsVectorEnv", "MertonCore", "merton_model", "SELL", "HOLD", "BUY"]
