"""validate_policy (issue 16): the exact optimal policies score as optimal, and pderl's own learners
wrapped as plain callables get the numbers of the existing evaluation (common random numbers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pdecore.market_making_params import MarketMakingModel
from rl.stopping.config import StoppingConfig
from validation.policies import (grid_quote_policy, learner_policy, load_policy, stopping_boundary_policy,
                                 validate_policy)

TEST_PATHS = 4096


@pytest.fixture(scope="module")
def stopping_problem():
    from validation.stopping import build_reference

    config = StoppingConfig(n_steps=10, penalty=5.0, batch_size=256, learn_volatility=False, test_paths=TEST_PATHS,
                            eval_paths=2048)
    return config, build_reference(config)


def test_pde_and_oracle_boundaries_score_as_optimal(stopping_problem):
    config, reference = stopping_problem
    vi = validate_policy(stopping_boundary_policy(config, reference.boundary), config, reference=reference)
    assert vi["min_accuracy_vi"] == 1.0
    oracle = validate_policy(stopping_boundary_policy(config, reference.target_boundary), config, reference=reference)
    assert oracle["min_accuracy"] == 1.0
    # the oracle's own rule: the common-random-number estimate is the oracle's exact price, no noise
    assert oracle["p_stopping_crn"] == pytest.approx(reference.target_p_stopping, abs=1e-12)
    assert oracle["p_stopping_crn_stderr"] == 0.0
    assert vi["american_price"] == pytest.approx(5.318294, abs=2e-3)


def test_stopping_learner_as_callable_matches_its_evaluation(stopping_problem):
    from rl.stopping.evaluation import evaluate_stopping
    from rl.stopping.learner import StoppingLearner

    config, reference = stopping_problem
    torch.manual_seed(0)
    learner = StoppingLearner(config, reference=reference)
    for step in range(30):
        learner.train_step(learner.sample_batch(step))
    own = evaluate_stopping(learner, TEST_PATHS, reference)
    mine = validate_policy(learner_policy(learner), config, reference=reference)
    # the same test paths and the networks run on the same inputs: the same decisions, bit for bit
    for key in ("p_stopping", "p_control", "p_stopping_crn", "p_control_crn", "p_stopping_crn_stderr"):
        assert mine[key] == own[key], key
    np.testing.assert_array_equal(mine["accuracy_vi"], own["accuracy_vi"])
    np.testing.assert_array_equal(mine["accuracy"], own["accuracy"])
    # observations in another order (not whole date-major paths) take the per-date path: same decisions
    act = learner_policy(learner)
    paths = next(learner.test_paths(256))
    obs = np.stack([np.repeat(np.arange(config.n_steps) * config.dt, 256), paths[:, :-1].T.reshape(-1).numpy(),
                    np.zeros(256 * config.n_steps)], axis=1).astype(np.float32)
    order = np.random.default_rng(0).permutation(obs.shape[0])
    np.testing.assert_array_equal(act(obs[order]), act(obs)[order])


def test_stopping_policy_with_sb3_style_predict(stopping_problem):
    config, reference = stopping_problem
    rule = stopping_boundary_policy(config, reference.boundary)

    class Agent:
        def predict(self, obs, deterministic=True):
            assert deterministic
            return rule(obs), None

    result = validate_policy(Agent(), config, reference=reference, n_paths=1024)
    assert result["min_accuracy_vi"] == 1.0 and result["test_paths"] == 1024


@pytest.fixture(scope="module")
def mm_problem():
    from validation.market_making import grid_reference

    model = MarketMakingModel.paper_defaults(1, max_inventory=12, horizon=2.0)
    return model, grid_reference(model, n_time=200)


def test_grid_quotes_score_as_optimal(mm_problem):
    model, reference = mm_problem
    result = validate_policy(grid_quote_policy(model, reference), model, reference=reference, n_paths=300,
                             n_steps=100)
    assert result["reference"] == "grid"
    assert result["max_spread_error"] < 1e-4  # the Gibbs table's interpolation of the grid's own spreads
    assert result["pnl_ratio_vs_reference"] == pytest.approx(1.0, abs=max(result["pnl_diff_stderr"], 1e-12))
    assert result["pnl_diff_vs_reference"] == 0.0
    myopic = validate_policy(lambda obs: np.full((obs.shape[0], 2), 1.0 / 1.5), model, reference=reference,
                             n_paths=300, n_steps=100)
    assert myopic["pnl_diff_vs_reference"] < -2.0 * myopic["pnl_diff_stderr"]  # inventory risk costs P&L


def test_market_making_learner_as_callable_matches_its_evaluation(mm_problem):
    from rl.market_making.config import MMTrainConfig
    from rl.market_making.evaluation import spread_errors
    from rl.market_making.learner import MarketMakingLearner
    from validation.market_making import compare_policies, grid_policy

    model, reference = mm_problem
    learner = MarketMakingLearner(model, MMTrainConfig(total_steps=4, batch_paths=16, paths_per_step=4, n_steps=40,
                                                       hidden=16, layers=2), reference=reference)
    for step in range(4):
        learner.train_step(learner.sample_batch(step))
    learner.network.eval()
    own_spreads = spread_errors(learner, reference)
    own = compare_policies(model, {"learned": learner.policy(execution="mean"),
                                   "grid": grid_policy(model, reference, learner.table, execution="mean")},
                           n_paths=200, n_steps=50, seed=3, reference="grid")
    mine = validate_policy(learner_policy(learner), model, reference=reference, n_paths=200, n_steps=50, seed=3,
                           include=())
    assert mine["max_spread_error"] == pytest.approx(own_spreads["max_spread_error"], rel=1e-9)
    assert mine["pnl_mean"] == pytest.approx(own["learned"]["pnl_mean"], rel=1e-9)
    assert mine["pnl_diff_vs_reference"] == pytest.approx(own["learned"]["pnl_diff_vs_ref"], rel=1e-9, abs=1e-9)


def test_merton_pde_band_policy_scores_its_band():
    from pdecore.merton import solve_merton_costs
    from pdecore.params import MertonCosts
    from rl.envs.merton import BUY, HOLD, SELL

    model = MertonCosts(drift=0.168, rate=0.008, volatility=0.3, cost=0.005, maturity=1.0)
    result = solve_merton_costs(model, n_space=200, n_time=40)
    low, high = result.band(0.0)

    def band_rule(obs):
        ratio = obs[:, 1]
        return np.where(ratio < low, SELL, np.where(ratio > high, BUY, HOLD))

    out = validate_policy(band_rule, model, reference=result, n_paths=200, years=2.0)
    assert abs(out["band_error"][0]) <= 1e-3 and abs(out["band_error"][1]) <= 1e-3  # half the scan's step
    assert out["log_return_diff_vs_pde"] == pytest.approx(0.0, abs=3 * out["log_return_diff_se"] + 1e-6)
    banded = validate_policy(lambda obs: np.tile([low, high], (obs.shape[0], 1)), model, reference=result,
                             n_paths=200, years=2.0, action_mode="band")
    assert banded["band_error"] == [0.0, 0.0] and banded["log_return_diff_vs_pde"] == 0.0


def test_refusals(stopping_problem):
    config, reference = stopping_problem
    with pytest.raises(ValueError, match="callable"):
        validate_policy(42, config)
    with pytest.raises(ValueError, match="problem must be"):
        validate_policy(lambda obs: obs, 3.0)
    with pytest.raises(ValueError, match="unknown option"):
        validate_policy(lambda obs: obs, config, reference=reference, years=3)
    with pytest.raises(ValueError, match="module:attribute"):
        load_policy("no_colon")
    with pytest.raises(ValueError, match="no attribute"):
        load_policy("validation.policies:missing")


POLICY_MODULE = '''
import numpy as np

def threshold(obs):
    """Stop the put below 32 (a plain callable)."""
    return (obs[:, 1] <= 32.0).astype(np.int64)

def myopic(obs):
    return np.full((obs.shape[0], 2), 1.0 / 1.5)

def hold_band(obs):
    return np.where(obs[:, 1] < -0.6, 0, np.where(obs[:, 1] > -0.3, 2, 1))
'''


@pytest.mark.parametrize("spec, attribute, extra, key", [
    ("examples/stopping_paper.toml", "threshold", ["--paths", "1024"], "min_accuracy_vi"),
    ("examples/mm_train_one_option.toml", "myopic", ["--paths", "50", "--n-steps", "40"], "pnl_ratio_vs_reference"),
    ("examples/dynkin_paper.toml", "hold_band", ["--paths", "100", "--years", "1"], "implied_band"),
])
def test_cli_validate_policy(tmp_path, monkeypatch, capsys, spec, attribute, extra, key):
    import json
    from pathlib import Path

    from validation.cli import main

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "my_agents.py").write_text(POLICY_MODULE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["validate", "policy", "--problem", str(root / spec), "--policy", f"my_agents:{attribute}",
                 *extra, "--plot", "fig.png", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and key in out and (tmp_path / "fig.png").is_file()
    if key == "implied_band":
        assert out["implied_band"] == pytest.approx([-0.6, -0.3], abs=1e-3)


def test_cli_refuses_bad_policy_name(tmp_path, capsys):
    from pathlib import Path

    from validation.cli import main

    root = Path(__file__).resolve().parents[2]
    code = main(["validate", "policy", "--problem", str(root / "examples/stopping_paper.toml"), "--policy",
                 "nowhere_module_xyz:act"])
    assert code == 2 and "cannot import module 'nowhere_module_xyz'" in capsys.readouterr().err


def test_dynkin_learner_as_callable_implies_its_band():
    from rl.dynkin import DynkinConfig
    from rl.dynkin.learner import DynkinLearner

    config = DynkinConfig(batch_size=256)
    learner = DynkinLearner(config)
    for step in range(60):
        learner.train_step(learner.sample_batch(step))
    band = learner.bands()[0]
    result = validate_policy(learner_policy(learner), config.model(), n_paths=100, years=0.5)
    # the scan's grid step is 0.001: the implied edges are the learner's to half a step
    assert np.isfinite(band).all()
    np.testing.assert_allclose(result["implied_band"], band, atol=5e-4 + 1e-12)
    assert result["log_return_mean"] is not None and np.isfinite(result["log_return_diff_vs_pde"])
