"""Optimal stopping of an American option as a Gymnasium environment (``pderl/AmericanPut-v0``,
``pderl/AmericanCall-v0``; SPEC section 3).

The problem is the one the stopping learners solve (Dai, Sun, Xu & Zhou, sections 2–4), on the same
objects: a :class:`rl.stopping.config.StoppingConfig` gives the market (:class:`pdecore.BlackScholes`),
the contract (:class:`pdecore.AmericanOption`), the spot and the ``L`` decision dates, and the paths come
from :class:`rl.stopping.simulator.GBMSimulator` (risk-neutral GBM, ``scheme`` exact or Euler).

Episode. One path ``X_0 = S_0, X_1, …, X_L`` on the dates ``t_l = lΔt``, ``Δt = T/L``, drawn whole at
reset. At each date ``l < L`` the agent sees

.. math::  o_l = (t_l,\\; X_l,\\; g(X_l)) \\in [0, T] × [0, ∞) × [0, ∞)

(time, spot and the exercise value ``g(x) = (K − x)^+`` for a put, ``(x − K)^+`` for a call: the
inputs ``(x, g)`` of the paper's value networks, with the date made explicit since one policy serves
every date) and chooses ``a_l ∈ {0: continue, 1: stop}``. The reward is the discounted payoff at
stopping,

.. math::  r_l = a_l\\, e^{−r t_l} g(X_l), \\qquad\\text{and } r_{L−1} += (1 − a_{L−1})\\, e^{−r T} g(X_L),

i.e. an episode that never stops is exercised at maturity, as in the paper's ``P_stopping`` (eq. 4.5):
the undiscounted return of an episode is ``e^{−rτ} g(X_τ)`` and its expectation under a policy is that
policy's ``P_stopping`` (:func:`rl.stopping.evaluation.stopping_prices`), whose supremum over stopping
rules on the dates is the Bermudan price (→ the American price, SPEC 5.318294, as ``L`` grows).
The episode terminates at stopping or at ``T``; it is never truncated.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from rl.envs.vector import BatchedEnv, BatchedVectorEnv
from rl.stopping.config import StoppingConfig
from rl.stopping.simulator import GBMSimulator

CONTINUE, STOP = 0, 1
OBSERVATION_NAMES = ("time", "spot", "payoff")


def stopping_config(config: StoppingConfig | None = None, **fields) -> StoppingConfig:
    """The :class:`StoppingConfig` of an environment: ``config`` with ``fields`` replaced (defaults: the
    paper's put). Only the problem fields matter here (market, contract, spot, ``n_steps``, ``scheme``)."""
    if config is not None and not isinstance(config, StoppingConfig):
        raise ValueError(f"config must be a rl.stopping.config.StoppingConfig, got {type(config).__name__}; "
                         "pass StoppingConfig(...) or keyword fields such as strike=40")
    config = config or StoppingConfig()
    return config.replace(**fields) if fields else config


class StoppingCore:
    """Batched core of the stopping environments (protocol: :mod:`rl.envs.vector`).

    Holds ``M`` whole paths ``(M, L + 1)`` from :meth:`GBMSimulator.sample` (float64) and each path's
    current date; a step is a handful of NumPy operations on ``M`` entries.
    """

    def __init__(self, config: StoppingConfig) -> None:
        self.config = config
        self.option = config.option()
        self.simulator = GBMSimulator(config.model(), self.option, spot=config.spot, n_steps=config.n_steps,
                                      scheme=config.scheme)
        self.n_steps = config.n_steps
        self.dates = np.arange(self.n_steps + 1) * config.dt
        self.discount = np.exp(-config.rate * self.dates)
        self.observation_space = spaces.Box(low=np.zeros(3, dtype=np.float32),
                                            high=np.array([config.maturity, np.inf, np.inf], dtype=np.float32),
                                            dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.paths = np.empty((0, self.n_steps + 1))
        self.index = np.zeros(0, dtype=np.int64)
        self.generator: torch.Generator | None = None

    def _sample(self, n: int) -> np.ndarray:
        return self.simulator.sample(n, self.generator, dtype=torch.float64).numpy()

    def reset(self, n: int, generator: torch.Generator) -> np.ndarray:
        self.generator = generator
        self.paths = self._sample(n)
        self.index = np.zeros(n, dtype=np.int64)
        self._rows = np.arange(n)
        return self.observe()

    def reset_rows(self, mask: np.ndarray) -> None:
        count = int(mask.sum())
        if count:
            self.paths[mask] = self._sample(count)
            self.index[mask] = 0

    def observe(self) -> np.ndarray:
        spot = self.paths[self._rows, self.index]
        obs = np.empty((spot.size, 3), dtype=np.float32)
        obs[:, 0] = self.dates[self.index]
        obs[:, 1] = spot
        obs[:, 2] = self.option.payoff(spot)
        return obs

    def step(self, actions: np.ndarray):
        actions = np.asarray(actions).reshape(-1)
        if actions.shape != self.index.shape:
            raise ValueError(f"actions must have shape ({self.index.size},), got {np.shape(actions)}")
        if not np.isin(actions, (CONTINUE, STOP)).all():
            raise ValueError(f"actions must be 0 (continue) or 1 (stop), got {np.unique(actions)}")
        stop = actions == STOP
        # stopping pays at the current date; continuing moves to the next one, where T pays g(X_T)
        self.index = self.index + ~stop
        at_maturity = self.index == self.n_steps
        terminated = stop | at_maturity
        spot = self.paths[self._rows, self.index]
        reward = np.where(terminated, self.discount[self.index] * self.option.payoff(spot), 0.0)
        return self.observe(), reward, terminated


class AmericanStoppingEnv(BatchedEnv):
    """One path of the stopping problem (module docstring for spaces and reward).

    Parameters
    ----------
    config : rl.stopping.config.StoppingConfig, optional
        The problem (default: the paper's put ``S_0 = K = 40, r = 0.06, σ = 0.4, T = 1, L = 50``).
    **fields
        :class:`StoppingConfig` fields replacing the config's (``kind``, ``strike``, ``spot``, ``n_steps``…).
    """

    def __init__(self, config: StoppingConfig | None = None, **fields) -> None:
        super().__init__(StoppingCore(stopping_config(config, **fields)))
        self.config = self.core.config


class AmericanStoppingVectorEnv(BatchedVectorEnv):
    """``num_envs`` paths of the stopping problem advanced as one batch (autoreset ``SAME_STEP``).

    Parameters as :class:`AmericanStoppingEnv`, plus ``num_envs``.
    """

    def __init__(self, num_envs: int = 1024, config: StoppingConfig | None = None, **fields) -> None:
        super().__init__(StoppingCore(stopping_config(config, **fields)), num_envs)
        self.config = self.core.config


def american_put(**fields) -> AmericanStoppingEnv:
    """Entry point of ``pderl/AmericanPut-v0``."""
    return AmericanStoppingEnv(**{**fields, "kind": "put"})


def american_call(**fields) -> AmericanStoppingEnv:
    """Entry point of ``pderl/AmericanCall-v0`` (default strike and spot as the put's; pass ``dividend``
    > 0 for early exercise to matter)."""
    return AmericanStoppingEnv(**{**fields, "kind": "call"})


def american_put_vector(num_envs: int, **fields) -> AmericanStoppingVectorEnv:
    """Vector entry point of ``pderl/AmericanPut-v0`` (``gymnasium.make_vec(..., vectorization_mode=
    "vector_entry_point")``)."""
    return AmericanStoppingVectorEnv(num_envs, **{**fields, "kind": "put"})


def american_call_vector(num_envs: int, **fields) -> AmericanStoppingVectorEnv:
    """Vector entry point of ``pderl/AmericanCall-v0``."""
    return AmericanStoppingVectorEnv(num_envs, **{**fields, "kind": "call"})


__all__ = ["AmericanStoppingEnv", "AmericanStoppingVectorEnv", "StoppingCore", "stopping_config", "CONTINUE",
           "STOP", "OBSERVATION_NAMES"]
