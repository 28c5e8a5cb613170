"""The market-making environments (issue 16): Gymnasium's checker, seeding, and an episode return that
is the simulator's P&L of the same quotes on the same draws."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils import seeding
from gymnasium.utils.env_checker import check_env

import rl.envs  # noqa: F401
from rl.envs.market_making import MarketMakingEnv, MarketMakingVectorEnv
from rl.envs.vector import torch_generator
from rl.market_making.policies import ConstantSpreadPolicy

SMALL = dict(n_steps=20, max_inventory=8)


@pytest.mark.parametrize("n_options", [1, 2])
def test_check_env_passes(n_options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_env(gymnasium.make("pderl/MarketMaking-v0", n_options=n_options, **SMALL).unwrapped)


def test_episode_return_is_the_simulator_pnl_on_common_random_numbers():
    env = MarketMakingEnv(n_options=2, **SMALL)
    spreads = np.array([0.6, 0.7, 0.8, 0.5], dtype=np.float32)
    env.reset(seed=11)
    total, done = 0.0, False
    while not done:
        _, reward, done, _, _ = env.step(spreads)
        total += reward
    generator = torch_generator(seeding.np_random(11)[0])
    policy = ConstantSpreadPolicy(spreads[:2].astype(float), spreads[2:].astype(float))
    result = env.core.simulator.simulate(policy, 1, generator=generator)
    assert total == pytest.approx(float(result.pnl[0]), rel=1e-12)


def test_same_seed_same_episode_vector():
    vec = MarketMakingVectorEnv(16, **SMALL)
    actions = np.full((16, 2), 0.667, dtype=np.float32)
    runs = []
    for _ in range(2):
        obs, _ = vec.reset(seed=5)
        rewards = [vec.step(actions)[1] for _ in range(20)]
        runs.append((obs, np.array(rewards)))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    vec.reset(seed=5)
    for _ in range(19):
        vec.step(actions)
    obs, _, terminated, _, infos = vec.step(actions)
    assert terminated.all() and (obs[:, 0] == 0).all() and (obs[:, 1] == 0).all()
    assert infos["final_obs"][0][0] == pytest.approx(10.0)


def test_bad_actions_refused():
    env = MarketMakingEnv(**SMALL)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.5], dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.array([0.5], dtype=np.float32))
