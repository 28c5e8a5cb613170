"""Dynkin learners (issue 13): determinism, resume, evaluation, configuration."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from rl.dynkin import DynkinConfig, DynkinLearner  # noqa: E402
from rl.trainer import Trainer  # noqa: E402

SMALL = dict(batch_size=64, eval_paths=256, hidden=8, eval_grid=101)


def _weights(learner):
    return torch.cat([p.detach().flatten() for p in learner.net.parameters()])


@pytest.mark.parametrize("algorithm", ["ml", "td0", "dai_dong"])
def test_same_seed_same_weights(algorithm):
    learners = [DynkinLearner(DynkinConfig(algorithm=algorithm, seed=s, **SMALL)) for s in (4, 4, 5)]
    for learner in learners:
        for step in range(3):
            diagnostics = learner.train_step(learner.sample_batch(step))
            assert math.isfinite(diagnostics["losses/loss"])
    assert torch.equal(_weights(learners[0]), _weights(learners[1]))
    assert not torch.equal(_weights(learners[0]), _weights(learners[2]))


def test_evaluation_does_not_change_training():
    plain, watched = (DynkinLearner(DynkinConfig(seed=1, **SMALL)) for _ in range(2))
    for step in range(4):
        plain.train_step(plain.sample_batch(step))
        watched.train_step(watched.sample_batch(step))
        metrics = watched.evaluate()
    assert torch.equal(_weights(plain), _weights(watched))
    assert set(metrics) == {"sell_boundary_t0", "buy_boundary_t0"}
    assert watched.net.training


class _Interrupting(DynkinLearner):
    interrupt_at = None

    def sample_batch(self, step):
        if step == self.interrupt_at:
            raise KeyboardInterrupt
        return super().sample_batch(step)


def test_interrupted_and_resumed_run_ends_where_uninterrupted_run_ends(tmp_path):
    config = DynkinConfig(seed=2, **SMALL)
    settings = dict(total_steps=6, eval_every=2, checkpoint_every=2, seed=2, progress=False)
    reference = DynkinLearner(config)
    Trainer(reference, tmp_path / "ref", **settings).fit()
    first = _Interrupting(config)
    first.interrupt_at = 3
    with pytest.raises(KeyboardInterrupt):
        Trainer(first, tmp_path / "run", **settings).fit()
    resumed = DynkinLearner(config)
    Trainer(resumed, tmp_path / "run", resume=True, **settings).fit()
    assert torch.equal(_weights(resumed), _weights(reference))
    assert torch.equal(resumed.generator.get_state(), reference.generator.get_state())
    assert resumed.updates == reference.updates == 6


def test_learning_rate_schedule():
    learner = DynkinLearner(DynkinConfig(learning_rate=0.01, lr_decay_updates=100, lr_final_fraction=0.01, **SMALL))
    assert learner.learning_rate_at(0) == pytest.approx(0.01)
    assert learner.learning_rate_at(50) == pytest.approx(0.01 * (0.01 + 0.99 * 0.5))
    assert learner.learning_rate_at(100) == learner.learning_rate_at(500) == pytest.approx(1e-4)
    constant = DynkinLearner(DynkinConfig(lr_decay_updates=0, **SMALL))
    assert constant.learning_rate_at(1000) == constant.config.learning_rate


def test_values_parametrized_between_the_obstacles():
    """w = m + g z: z = ±1 are the obstacles, so the band is where the networks output |z| < 1."""
    lower, upper = torch.tensor([-0.62]), torch.tensor([-0.60])
    assert DynkinLearner.values_from_output(torch.tensor([-1.0]), lower, upper).item() == pytest.approx(-0.62)
    assert DynkinLearner.values_from_output(torch.tensor([1.0]), lower, upper).item() == pytest.approx(-0.60)


def test_gap_weights_are_state_functions():
    learner = DynkinLearner(DynkinConfig(**SMALL))
    lower, upper = torch.tensor([[-0.62, -0.30]]), torch.tensor([[-0.60, -0.299]])
    weights = learner.gap_weights(lower, upper)
    assert weights[0].tolist() == pytest.approx([(0.005 / 0.01) ** 2, (0.005 / 0.0005) ** 2], rel=1e-4)
    assert DynkinLearner(DynkinConfig(gap_weight_exponent=0.0, **SMALL)).gap_weights(lower, upper) is None


def test_config_round_trip_and_record():
    config = DynkinConfig(temperature=1e-4, seed=3)
    assert DynkinConfig.from_dict(config.to_dict()) == config
    assert DynkinLearner(config).config_dict()["learner"] == "dynkin"
    assert DynkinConfig(algorithm="td0").optimizer == "adam" and DynkinConfig(optimizer="sgd").optimizer == "sgd"
    with pytest.raises(ValueError, match="unknown DynkinConfig fields"):
        DynkinConfig.from_dict({**config.to_dict(), "alpha": 1})


@pytest.mark.parametrize("kwargs, match", [
    (dict(penalty=20.0), "penalty\\*dt"),
    (dict(temperature=0.0), "temperature"),
    (dict(cost=1.0), "cost"),
    (dict(drift=0.0), "Merton fraction"),
    (dict(batch_size=1), "batch_size"),
    (dict(initial_low=-0.99), "insolvency floor"),
    (dict(algorithm="sarsa"), "algorithm"),
    (dict(device="tpu"), "device"),
    (dict(lr_final_fraction=0.0), "lr_final_fraction"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DynkinConfig(**kwargs)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own jit deprecations on importing inductor
def test_compiled_step_matches_eager():
    """torch.compile changes the summation order only: same loss and weights to float32 rounding (plain
    SGD, so that Adam does not turn rounding noise of near-zero gradients into full steps)."""
    config = DynkinConfig(seed=2, optimizer="sgd", **SMALL)
    eager, compiled = DynkinLearner(config), DynkinLearner(config.replace(compile=True))
    for step in range(2):
        a = eager.train_step(eager.sample_batch(step))
        b = compiled.train_step(compiled.sample_batch(step))
        assert b["losses/loss"] == pytest.approx(a["losses/loss"], rel=1e-4)
    torch.testing.assert_close(_weights(compiled), _weights(eager), rtol=1e-4, atol=1e-5)


def test_shared_schedule_and_seeds_match_the_stopping_learner():
    """rl.schedules / rl.seeding reproduce the stopping learner's own copies exactly (so switching it
    to them changes no stored run), and the schedule hits its stated end points."""
    from rl.schedules import cosine_learning_rate
    from rl.seeding import derive_seeds
    from rl.stopping import learner as stopping_learner

    if hasattr(stopping_learner, "_seeds"):
        assert derive_seeds(7, 3) == stopping_learner._seeds(7, 3)
    assert derive_seeds(7, 3) != derive_seeds(8, 3) and all(0 <= s < 2**63 for s in derive_seeds(7, 3))
    kwargs = dict(learning_rate=0.1, decay_updates=100, final_fraction=0.05)
    assert cosine_learning_rate(0, **kwargs) == 0.1
    assert cosine_learning_rate(50, **kwargs) == pytest.approx(0.1 * (0.05 + 0.95 * 0.5))
    assert cosine_learning_rate(100, **kwargs) == cosine_learning_rate(10_000, **kwargs) == pytest.approx(0.005)
    assert cosine_learning_rate(10, learning_rate=0.1, decay_updates=0, final_fraction=0.05) == 0.1
