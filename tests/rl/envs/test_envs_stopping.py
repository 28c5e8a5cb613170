"""The American stopping environments (issue 16): Gymnasium's checker, seeding, and returns that are
the stopping learners' P_stopping on the same paths."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import rl.envs  # noqa: F401  (registers the pderl/ ids)
from rl.envs.stopping import STOP, AmericanStoppingEnv, AmericanStoppingVectorEnv
from rl.stopping.config import StoppingConfig
from rl.stopping.evaluation import stopping_prices, true_decisions


def _checked(env):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unbounded Box warnings: spot and payoff are unbounded
        check_env(env.unwrapped)


@pytest.mark.parametrize("env_id", ["pderl/AmericanPut-v0", "pderl/AmericanCall-v0"])
def test_check_env_passes(env_id):
    _checked(gymnasium.make(env_id, n_steps=10))


def _episode(env, seed, policy):
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    done = False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        observations.append(obs)
        rewards.append(reward)
        done = terminated or truncated
    return np.array(observations), np.array(rewards)


def test_same_seed_same_episode_and_new_episode_without_seed():
    env = AmericanStoppingEnv(n_steps=20)
    hold = lambda obs: 0  # noqa: E731
    first = _episode(env, 7, hold)
    again = _episode(env, 7, hold)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    env.reset(seed=7)
    _, _ = env.reset()  # the stream continues: another path
    other = _episode(env, None, hold)
    assert not np.array_equal(first[0][1:, 1], other[0][1:, 1])


def test_return_is_the_discounted_payoff_of_the_boundary_rule():
    """A boundary rule's episode return equals stopping_prices()["stopping"] on the episode's path."""
    config = StoppingConfig(n_steps=12)
    env = AmericanStoppingEnv(config)
    boundary = np.full(config.n_steps, 34.0)
    rule = lambda obs: int(obs[1] <= 34.0)  # noqa: E731
    for seed in range(20):
        observations, rewards = _episode(env, seed, rule)
        path = env.unwrapped.core.paths[0] if hasattr(env, "unwrapped") else env.core.paths[0]
        paths = torch.as_tensor(path[None, :])
        exercise = true_decisions(paths[:, :-1], boundary, "put")
        expected = stopping_prices(paths, exercise, kind="put", strike=config.strike, rate=config.rate,
                                   penalty=config.penalty, dt=config.dt)["stopping"]
        assert rewards.sum() == pytest.approx(float(expected[0]), rel=1e-12, abs=1e-12)
        assert (rewards[:-1] == 0).all()


def test_vector_env_same_seed_and_autoreset():
    vec = AmericanStoppingVectorEnv(64, n_steps=10)
    first, _ = vec.reset(seed=3)
    steps = [vec.step(np.zeros(64, dtype=np.int64)) for _ in range(10)]
    again, _ = vec.reset(seed=3)
    np.testing.assert_array_equal(first, again)
    repeat = [vec.step(np.zeros(64, dtype=np.int64)) for _ in range(10)]
    for a, b in zip(steps, repeat):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    # every path reached T at step 10: all terminated, restarted at t = 0 with final observations at T
    obs, reward, terminated, truncated, infos = steps[-1]
    assert terminated.all() and not truncated.any()
    assert (obs[:, 0] == 0.0).all()
    assert all(final[0] == pytest.approx(1.0) for final in infos["final_obs"])
    # stopping at once pays the payoff at S_0 (zero for the at-the-money put) and restarts
    vec.reset(seed=1)
    obs, reward, terminated, _, _ = vec.step(np.full(64, STOP))
    assert terminated.all() and (reward == 0.0).all()


def test_vector_env_via_make_vec_and_refusals():
    vec = gymnasium.make_vec("pderl/AmericanPut-v0", num_envs=4, vectorization_mode="vector_entry_point")
    assert isinstance(vec, AmericanStoppingVectorEnv)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="actions must be 0"):
        vec.step(np.full(4, 2))
    with pytest.raises(ValueError, match="num_envs"):
        AmericanStoppingVectorEnv(0)
