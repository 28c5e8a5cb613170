"""The Merton-with-costs environments (issue 16): Gymnasium's checker, seeding, and the log-wealth
accounting of the backtest."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rl.envs  # noqa: F401
from rl.envs.merton import HOLD, MertonCostsEnv, MertonCostsVectorEnv


@pytest.mark.parametrize("mode", ["discrete", "band"])
def test_check_env_passes(mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_env(gymnasium.make("pderl/MertonCosts-v0", action_mode=mode, years=0.05).unwrapped)


def test_same_seed_same_episode_and_return_is_log_wealth():
    env = MertonCostsEnv(years=0.2)
    results = []
    for _ in range(2):
        obs, _ = env.reset(seed=4)
        total, done, steps = 0.0, False, 0
        while not done:
            obs, reward, done, _, _ = env.step(HOLD)
            total += reward
            steps += 1
        results.append((total, obs))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert steps == round(0.2 * 252)
    core = env.core
    assert results[0][0] == pytest.approx(float(np.log(core.wealth()[0])), rel=1e-12)


def test_buy_and_hold_of_the_band_matches_the_backtest_accounting():
    """Holding a band that contains the start ratio: no trade after the buy-in, so log W_T is
    log((B_0 e^{rT} + (1−θ) S_0 Π gross)) exactly."""
    vec = MertonCostsVectorEnv(8, action_mode="band", years=0.1)
    vec.reset(seed=2)
    model, core = vec.model, vec.core
    bond0, stock0 = core._buy_in(1)
    total = np.zeros(8)
    for _ in range(core.n_days):
        _, reward, terminated, _, infos = vec.step(np.tile([-0.99, 99.0], (8, 1)).astype(np.float32))
        total += reward
    assert terminated.all()
    final = np.array([f for f in infos["final_obs"]])
    growth = np.exp(model.rate * core.dt * core.n_days)
    stock = bond0[0] * growth / final[:, 1]  # x_T = B_T / S_T
    expected = np.log(bond0[0] * growth + (1 - model.cost) * stock)
    np.testing.assert_allclose(total, expected, rtol=0, atol=1e-6)  # x_T read from float32 observations
    assert stock0[0] > 0


def test_refusals():
    with pytest.raises(ValueError, match="action_mode"):
        MertonCostsEnv(action_mode="continuous")
    env = MertonCostsEnv(years=0.05)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="sell"):
        env.step(5)


def test_make_vec_entry_points_of_every_id():
    from rl.envs import ENVIRONMENTS
    from rl.envs.vector import BatchedVectorEnv

    for env_id in ENVIRONMENTS:
        kwargs = {"years": 0.05} if "Merton" in env_id else {"n_steps": 10}
        vec = gymnasium.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point", **kwargs)
        assert isinstance(vec, BatchedVectorEnv) and vec.num_envs == 3
        obs, _ = vec.reset(seed=0)
        assert obs.shape == (3,) + vec.single_observation_space.shape
        assert vec.observation_space.contains(obs)
