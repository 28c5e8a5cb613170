"""The d-dimensional stopping learner on the fractional Brownian motion (issue 17), tiny settings."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rl.stopping.high_dim import HighDimStoppingConfig, HighDimStoppingLearner  # noqa: E402

TINY = dict(problem="fbm", hurst=0.3, n_dates=8, penalty=8.0, temperature=0.1, batch_size=64, eval_paths=256,
            test_paths=512)


def test_fbm_learner_trains_and_is_reproducible():
    def run():
        learner = HighDimStoppingLearner(HighDimStoppingConfig(**TINY, seed=2))
        losses = [learner.train_step(learner.sample_batch(s))["losses/loss"] for s in range(3)]
        return losses, learner.evaluate()

    assert run() == run()


def test_fbm_inputs_and_premium():
    learner = HighDimStoppingLearner(HighDimStoppingConfig(**{**TINY, "formulation": "premium"}))
    raw = learner.sample_batch(0)
    inputs, payoffs, terminal, gains, european = learner.features(raw)
    assert inputs.shape == (8, 10, 64)  # state of 9 coordinates + the payoff
    assert torch.allclose(inputs[3, :4, :].T, raw[:, :4].flip(1))
    assert torch.all(terminal == 0)
    assert torch.allclose(european[:, -1], raw[:, -1].double())
    assert torch.allclose(european[:, 0], torch.zeros(64, dtype=torch.float64))  # E[W_1] = 0


def test_brownian_motion_is_worth_nothing():
    # H = ½: every stopping rule has E[W_τ] = 0 (optional stopping); the control variate makes it exact
    learner = HighDimStoppingLearner(HighDimStoppingConfig(**{**TINY, "hurst": 0.5}))
    evaluation = learner.evaluate(2048)
    assert abs(evaluation["eval/p_stopping"]) < 4 * evaluation["eval/p_stopping_stderr"] + 1e-12
    assert abs(evaluation["eval/p_stopping_cv"]) < 4 * evaluation["eval/p_stopping_cv_stderr"] + 1e-12
