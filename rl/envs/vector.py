"""One Gymnasium front end over a *batched* problem core: single environments and vector environments.

Every environment of :mod:`rl.envs` is written once, as a core that advances ``M`` paths of one of the
project's simulators at once (NumPy or torch arrays, no Python loop over paths). Two thin front ends
expose it:

* :class:`BatchedEnv`, a :class:`gymnasium.Env` (``M = 1``), the object ``gymnasium.make`` returns;
* :class:`BatchedVectorEnv`, a :class:`gymnasium.vector.VectorEnv` with ``num_envs = M`` whose step is one
  batched step of the core: Gymnasium's ``SyncVectorEnv`` would instead loop over ``M`` copies in Python,
  which is what the issue asks to avoid (``benchmarks/bench_envs.py`` measures the difference).

Core protocol (what a problem module implements)::

    core.reset(n, generator)          -> obs (n, d) float32      # start n fresh episodes
    core.step(actions)                -> obs, reward (n,), terminated (n,) bool
    core.reset_rows(mask)             -> None                     # restart the episodes where mask is True
    core.observe()                    -> obs (n, d) float32
    core.observation_space, core.action_space                     # spaces of ONE environment

Seeding, as Gymnasium specifies. ``reset(seed=s)`` reseeds the environment's ``np_random``
(:func:`gymnasium.utils.seeding.np_random`); every reset then draws a 63-bit seed from ``np_random`` for
the ``torch.Generator`` the project's simulators take. Hence the same ``seed`` gives the same episode
(and, in a vector environment, the same ``M`` episodes and the same autoreset episodes after them),
and ``reset()`` without a seed continues the stream (a new episode). A vector environment draws one
stream for the whole batch: ``reset(seed=s)`` seeds the batch, not ``M`` separate environments.

Autoreset. :class:`BatchedVectorEnv` uses Gymnasium's ``SAME_STEP`` mode
(``metadata["autoreset_mode"]``): a sub-environment that terminates is restarted inside the same
``step``; the returned observation is the new episode's first, and ``infos["final_obs"]`` holds the
terminal observations in the rows where the mask ``infos["_final_obs"]`` is True (one ``(M, d)``
array rather than ``SyncVectorEnv``'s object array of rows, which would cost a Python loop per step).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

SEED_BOUND = 2**63 - 1  # torch.Generator.manual_seed accepts any 64-bit integer; stay non-negative


def torch_generator(np_random: np.random.Generator) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded from ``np_random`` (the simulators draw from torch generators)."""
    return torch.Generator().manual_seed(int(np_random.integers(0, SEED_BOUND)))


class BatchedEnv(gym.Env):
    """A :class:`gymnasium.Env` over a batched core run with one path (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, core) -> None:
        super().__init__()
        self.core = core
        self.observation_space = core.observation_space
        self.action_space = core.action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs = self.core.reset(1, torch_generator(self.np_random))
        return obs[0], {}

    def step(self, action):
        actions = np.asarray(action)[None, ...]
        obs, reward, terminated = self.core.step(actions)
        return obs[0], float(reward[0]), bool(terminated[0]), False, {}


class BatchedVectorEnv(VectorEnv):
    """A :class:`gymnasium.vector.VectorEnv` whose step is one batched step of the core.

    Parameters
    ----------
    core
        The problem core (module docstring).
    num_envs : int
        Number of paths ``M`` advanced together.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, core, num_envs: int) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}; pass e.g. num_envs=1024")
        self.core = core
        self.num_envs = int(num_envs)
        self.single_observation_space = core.observation_space
        self.single_action_space = core.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = None  # nothing to render (SB3's VecEnv asks for the attribute)
        self._started = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        obs = self.core.reset(self.num_envs, torch_generator(self.np_random))
        self._started = True
        return obs, {}

    def step(self, actions):
        if not self._started:
            raise gym.error.ResetNeeded("call reset() before step()")
        obs, reward, terminated = self.core.step(np.asarray(actions))
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        if terminated.any():
            # one (M, d) array, valid in the rows of the mask: a per-row object array (SyncVectorEnv's
            # layout) costs a Python loop over the terminated rows at every step
            infos["final_obs"], infos["_final_obs"] = obs.copy(), terminated.copy()
            self.core.reset_rows(terminated)
            obs = self.core.observe()
        return obs, reward.astype(np.float64), terminated, truncated, infos


def sb3_vec_env(vector_env: BatchedVectorEnv, *, observation_transform=None, observation_space=None,
                action_transform=None, action_space=None):
    """The batched vector environment as a Stable-Baselines3 ``VecEnv`` (SB3 is an optional extra).

    SB3 drives its own ``VecEnv`` API (``step_async``/``step_wait``, auto-reset with
    ``infos[i]["terminal_observation"]``), not Gymnasium's; this adapter keeps the one batched step, where
    SB3's ``DummyVecEnv`` would loop over copies. ``observation_transform`` (obs ``[M, d]`` →
    features, with ``observation_space`` of one row) and ``action_transform`` (agent actions ``[M, …]`` →
    environment actions, with the agent's ``action_space``) let an agent work in scaled units; the
    same transforms then wrap the trained agent for :func:`validation.policies.validate_policy`.
    ``seed(s)`` seeds the next ``reset`` of the whole batch.
    """
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv

    observe = observation_transform or (lambda obs: obs)
    act = action_transform or (lambda actions: actions)

    class BatchedSB3VecEnv(VecEnv):
        def __init__(self) -> None:
            self.vector_env = vector_env  # before VecEnv.__init__, which reads attributes through it
            self._actions = None
            super().__init__(vector_env.num_envs, observation_space or vector_env.single_observation_space,
                             action_space or vector_env.single_action_space)

        def reset(self):
            seed = self._seeds[0] if getattr(self, "_seeds", None) else None
            self._seeds = []
            obs, _ = self.vector_env.reset(seed=seed)
            return observe(obs)

        def step_async(self, actions) -> None:
            self._actions = act(np.asarray(actions))

        def step_wait(self):
            obs, reward, terminated, truncated, infos = self.vector_env.step(self._actions)
            done = terminated | truncated
            info_list = [{} for _ in range(self.num_envs)]
            if done.any():
                final = observe(infos["final_obs"])
                for index in np.flatnonzero(done):
                    info_list[index]["terminal_observation"] = final[index]
                    info_list[index]["TimeLimit.truncated"] = bool(truncated[index] and not terminated[index])
            return observe(obs), reward.astype(np.float32), done, info_list

        def close(self) -> None:
            self.vector_env.close()

        def get_attr(self, attr_name, indices=None):
            return [getattr(self.vector_env, attr_name)] * len(self._indices(indices))

        def set_attr(self, attr_name, value, indices=None) -> None:
            setattr(self.vector_env, attr_name, value)

        def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
            return [getattr(self.vector_env, method_name)(*method_args, **method_kwargs)]

        def env_is_wrapped(self, wrapper_class, indices=None):
            return [False] * len(self._indices(indices))

        def _indices(self, indices):
            if indices is None:
                return range(self.num_envs)
            return [indices] if isinstance(indices, int) else list(indices)

    return BatchedSB3VecEnv()
