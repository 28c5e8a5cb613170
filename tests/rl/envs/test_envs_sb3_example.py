"""CI smoke test of examples/sb3_ppo_market_making.py (issue 16): PPO trains a few hundred steps on the
batched market-making environment and is validated against the grid HJB."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "sb3_ppo_market_making.py"


def _example():
    spec = importlib.util.spec_from_file_location("sb3_ppo_market_making", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ppo_smoke_run_is_validated_against_the_grid(capsys):
    summary = _example().main(["--steps", "512", "--envs", "8", "--rollout", "32", "--paths", "50", "--sim-steps",
                               "40", "--max-inventory", "12", "--horizon", "2"])
    assert summary["reference"] == "grid"
    assert np.isfinite(summary["max_spread_error"]) and np.isfinite(summary["pnl_mean"])
    assert summary["benchmarks"]["grid"]["pnl_diff_vs_ref"] == 0.0
    assert summary["ppo_steps"] == 512


def test_sb3_adapter_keeps_the_batched_episode():
    from rl.envs.market_making import MarketMakingVectorEnv
    from rl.envs.vector import sb3_vec_env

    vector_env = MarketMakingVectorEnv(4, n_steps=5, max_inventory=6)
    venv = sb3_vec_env(vector_env)
    venv.seed(3)
    first = venv.reset()
    for step in range(5):
        obs, reward, done, infos = venv.step(np.full((4, 2), 0.667, dtype=np.float32))
    assert done.all() and all("terminal_observation" in info for info in infos)
    assert infos[0]["terminal_observation"][0] == pytest.approx(vector_env.model.horizon)
    venv.seed(3)
    np.testing.assert_array_equal(venv.reset(), first)
