"""Stopping learners: differentiable Black–Scholes, the two prices, determinism, resume, bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rl.stopping.config import ExerciseWarning, StoppingConfig  # noqa: E402
from rl.black_scholes import bs_price_delta_torch, bs_price_torch  # noqa: E402
from rl.stopping.evaluation import StoppingReference, control_variate, stopping_prices  # noqa: E402
from rl.stopping.learner import StoppingLearner  # noqa: E402
from rl.trainer import Trainer  # noqa: E402

SMALL = dict(n_steps=5, penalty=4.0, batch_size=64, eval_paths=256, test_paths=512, hidden=8)
REFERENCE = StoppingReference(price=5.318294, boundary=np.linspace(26.0, 36.0, 5), european=5.059623,
                              target_boundary=np.linspace(27.0, 37.0, 5))


@pytest.mark.parametrize("kind", ["put", "call"])
def test_bs_price_torch_matches_pdecore(kind):
    from pdecore import bs_price

    spots = np.array([20.0, 35.0, 40.0, 47.0, 80.0])
    taus = np.array([1.0, 0.5, 0.02, 0.7, 2.0])
    got = bs_price_torch(kind, torch.tensor(spots, dtype=torch.float64), 40.0, torch.tensor(taus, dtype=torch.float64),
                         torch.tensor(0.4, dtype=torch.float64), 0.06, 0.01)
    expected = bs_price(kind, spots, 40.0, taus, 0.4, 0.06, 0.01)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["put", "call"])
def test_bs_delta_torch_matches_pdecore(kind):
    from pdecore import bs_delta

    spots = np.array([20.0, 35.0, 40.0, 47.0, 80.0])
    _, got = bs_price_delta_torch(kind, torch.tensor(spots, dtype=torch.float64), 40.0,
                                  torch.tensor(0.5, dtype=torch.float64), 0.4, 0.06, 0.01)
    np.testing.assert_allclose(got.numpy(), bs_delta(kind, spots, 40.0, 0.5, 0.4, 0.06, 0.01), rtol=1e-12, atol=1e-12)


def test_bs_price_torch_vega_by_autograd():
    from pdecore import bs_vega

    sigma = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    price = bs_price_torch("put", torch.tensor(36.0, dtype=torch.float64), 40.0, torch.tensor(0.75, dtype=torch.float64),
                           sigma, 0.06)
    price.backward()
    assert sigma.grad.item() == pytest.approx(bs_vega("put", 36.0, 40.0, 0.75, 0.4, 0.06), rel=1e-10)


def test_stopping_prices_by_hand():
    paths = torch.tensor([[40.0, 30.0, 20.0, 35.0], [40.0, 45.0, 50.0, 38.0]], dtype=torch.float64)
    rate, penalty, dt, strike = 0.1, 2.0, 0.25, 40.0
    never = torch.zeros(2, 3, dtype=torch.bool)
    out = stopping_prices(paths, never, kind="put", strike=strike, rate=rate, penalty=penalty, dt=dt)
    terminal = math.exp(-rate * 0.75) * np.array([5.0, 2.0])
    np.testing.assert_allclose(out["stopping"].numpy(), terminal, rtol=1e-14)
    np.testing.assert_allclose(out["control"].numpy(), terminal, rtol=1e-14)
    # path 0 exercises at dates 1 and 2: stopping takes the first (t = 0.25, payoff 10);
    # control: R̃ = 1, 1, 0.5, 0.25 and the running payments κ g Δt at dates 1 and 2
    decisions = torch.tensor([[False, True, True], [False, False, False]])
    out = stopping_prices(paths, decisions, kind="put", strike=strike, rate=rate, penalty=penalty, dt=dt)
    assert out["stopping"][0].item() == pytest.approx(math.exp(-rate * 0.25) * 10.0, rel=1e-14)
    control = (math.exp(-rate * 0.25) * 1.0 * penalty * 10.0 * dt + math.exp(-rate * 0.5) * 0.5 * penalty * 20.0 * dt
               + math.exp(-rate * 0.75) * 0.25 * 5.0)
    assert out["control"][0].item() == pytest.approx(control, rel=1e-14)


def test_control_variate_removes_correlated_noise(rng):
    z = rng.normal(size=20000)
    y = 2.0 + 3.0 * z + 0.01 * rng.normal(size=20000)
    estimate, stderr = control_variate(y.sum(), (y**2).sum(), z.sum(), (z**2).sum(), (y * z).sum(), len(y), 0.0)
    assert estimate == pytest.approx(2.0, abs=5 * stderr) and stderr < 1e-3


def _weights(learner):
    return torch.cat([p.detach().flatten() for p in learner.net.parameters()] + [learner.volatility.detach().view(1)])


@pytest.mark.parametrize("algorithm", ["ml", "td0", "dong"])
def test_same_seed_same_weights(algorithm):
    learners = [StoppingLearner(StoppingConfig(algorithm=algorithm, seed=4, **SMALL), reference=None) for _ in range(3)]
    learners[2] = StoppingLearner(StoppingConfig(algorithm=algorithm, seed=5, **SMALL), reference=None)
    for learner in learners:
        for step in range(3):
            learner.train_step(learner.sample_batch(step))
    assert torch.equal(_weights(learners[0]), _weights(learners[1]))
    assert not torch.equal(_weights(learners[0]), _weights(learners[2]))


def _assert_compiled_matches_eager(config, *, atol=1e-5):
    """Two steps of an eager and a compiled learner: same loss and weights to float32 rounding."""
    eager = StoppingLearner(config, reference=None)
    compiled = StoppingLearner(config, reference=None, compile=True)
    for step in range(2):
        a = eager.train_step(eager.sample_batch(step))
        b = compiled.train_step(compiled.sample_batch(step))
        assert b["losses/loss"] == pytest.approx(a["losses/loss"], rel=1e-4)
    torch.testing.assert_close(_weights(compiled), _weights(eager), rtol=1e-4, atol=atol)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own jit deprecations on importing inductor
def test_compiled_step_matches_eager():
    """torch.compile changes the summation order only: same loss and weights to float32 rounding.

    Plain SGD, because Adam turns the rounding noise of a zero gradient (date 0, where every path sits
    at S_0 and batch norm zeroes the input) into full ±lr steps.
    """
    _assert_compiled_matches_eager(StoppingConfig(seed=2, volatility_warmup=0, optimizer="sgd", **SMALL))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_one_compiled_graph_serves_every_penalty_and_temperature():
    """The loss's scalars are 0-d tensor inputs of the compiled graph, not constants: learners at other
    (κ, λ) in the same process compile nothing new (with constants every new pair recompiled, about 17 s
    at the paper's shapes), and each still matches eager at its own settings."""
    from torch._dynamo.utils import counters

    base = StoppingConfig(seed=2, volatility_warmup=0, optimizer="sgd", **SMALL)
    first = StoppingLearner(base, reference=None, compile=True)
    first.train_step(first.sample_batch(0))
    graphs = counters["stats"]["unique_graphs"]
    for penalty, temperature in [(2.0, 0.5), (5.0, 3.0)]:  # κΔt ≤ 1 at Δt = 0.2
        # (the PyTorch network path needed atol 2e-5 here: a date-0 weight, whose true gradient is 0, took a
        # rounding-noise step; the fused kernel normalizes that point-mass date exactly, max difference 1e-7)
        _assert_compiled_matches_eager(base.replace(penalty=penalty, temperature=temperature))
    assert counters["stats"]["unique_graphs"] == graphs


def test_evaluation_does_not_change_training():
    plain = StoppingLearner(StoppingConfig(seed=1, **SMALL), reference=REFERENCE)
    watched = StoppingLearner(StoppingConfig(seed=1, **SMALL), reference=REFERENCE)
    for step in range(4):
        plain.train_step(plain.sample_batch(step))
        watched.train_step(watched.sample_batch(step))
        metrics = watched.evaluate()
    assert torch.equal(_weights(plain), _weights(watched))
    for key in ("eval/p_stopping", "eval/p_control", "eval/rel_error_stopping", "eval/min_accuracy",
                "eval/min_accuracy_vi", "eval/p_stopping_cv", "eval/volatility"):
        assert key in metrics and math.isfinite(metrics[key]), key


class _Interrupting(StoppingLearner):
    interrupt_at = None

    def sample_batch(self, step):
        if step == self.interrupt_at:
            raise KeyboardInterrupt
        return super().sample_batch(step)


def test_interrupted_and_resumed_run_ends_where_uninterrupted_run_ends(tmp_path):
    config = StoppingConfig(algorithm="td0", seed=2, volatility_warmup=1, output_init="european", **SMALL)
    settings = dict(total_steps=6, eval_every=2, checkpoint_every=2, seed=2, progress=False)
    reference = StoppingLearner(config, reference=REFERENCE)
    Trainer(reference, tmp_path / "ref", **settings).fit()

    first = _Interrupting(config, reference=REFERENCE)
    first.interrupt_at = 3
    with pytest.raises(KeyboardInterrupt):
        Trainer(first, tmp_path / "run", **settings).fit()
    resumed = StoppingLearner(config, reference=REFERENCE)
    Trainer(resumed, tmp_path / "run", resume=True, **settings).fit()
    assert torch.equal(_weights(resumed), _weights(reference))
    assert torch.equal(resumed.generator.get_state(), reference.generator.get_state())


def test_volatility_moves_towards_truth():
    config = StoppingConfig(seed=0, n_steps=10, batch_size=256, hidden=8, eval_paths=256, volatility_warmup=80,
                            volatility_learning_rate=0.02)
    learner = StoppingLearner(config, reference=None)
    history = [learner.train_step(learner.sample_batch(step)) for step in range(80)]
    assert learner.value_updates == 0  # warm-up: σ only
    assert abs(history[-1]["charts/volatility"] - 0.4) < 0.05, history[-1]
    assert history[0]["charts/volatility"] > 0.75


def test_output_init_european_starts_at_european_price():
    learner = StoppingLearner(StoppingConfig(seed=0, output_init="european", learn_volatility=False, **SMALL),
                              reference=None)
    from pdecore import bs_price

    learner._init_output_shift(learner.sample_batch(0))
    shift0 = learner.net.norms[-1].bias[0].item()  # date 0: all paths at S_0, so V_0 = g + shift
    assert shift0 == pytest.approx(bs_price("put", 40.0, 40.0, 1.0, 0.4, 0.06), rel=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    ({"penalty": 60.0}, "penalty"),             # κΔt = 1.2 > 1
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": 1}, "batch_size"),
    ({"algorithm": "sarsa"}, "algorithm"),
    ({"n_steps": 0}, "n_steps"),
    ({"learning_rate": -0.1}, "learning_rate"),
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"lr_decay_updates": -1}, "lr_decay_updates"),
    ({"lr_final_fraction": 0.0}, "lr_final_fraction"),
    ({"lr_final_fraction": 1.5}, "lr_final_fraction"),
    ({"volatility_fine_decay": "exp"}, "volatility_fine_decay"),
    ({"martingale_weighting": "uniform"}, "martingale_weighting"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StoppingConfig(**kwargs)


def test_half_rule_warning():
    with pytest.warns(ExerciseWarning, match="never exercise"):
        StoppingConfig(temperature=4.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExerciseWarning)
        StoppingConfig(temperature=3.0)  # λ log 2 = 2.08 < rK = 2.4


def test_auto_optimizer_is_plain_sgd_for_td0_only():
    assert StoppingConfig(algorithm="td0").optimizer == "sgd"  # the paper's θ += α δ ∇V
    assert StoppingConfig(algorithm="ml").optimizer == "adam"
    assert StoppingConfig(algorithm="dong").optimizer == "adam"
    assert StoppingConfig(algorithm="td0", optimizer="adam").optimizer == "adam"
    learner = StoppingLearner(StoppingConfig(algorithm="td0", **SMALL), reference=None)
    assert type(learner.optimizer) is torch.optim.SGD


def test_cosine_learning_rate_decay_is_applied():
    config = StoppingConfig(seed=1, volatility_warmup=0, lr_decay_updates=4, lr_final_fraction=0.25, **SMALL)
    learner = StoppingLearner(config, reference=None)
    assert [learner.learning_rate_at(u) for u in (0, 2, 4, 9)] == pytest.approx([0.01, 0.00625, 0.0025, 0.0025])
    for step in range(3):
        learner.train_step(learner.sample_batch(step))
    assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(learner.learning_rate_at(2))
    constant = StoppingLearner(StoppingConfig(**SMALL), reference=None)
    assert constant.learning_rate_at(500) == constant.config.learning_rate


def test_volatility_step_size_schedule():
    learner = StoppingLearner(StoppingConfig(volatility_coarse_steps=100, **SMALL), reference=None)
    assert [learner.volatility_learning_rate_at(u) for u in (0, 99, 100, 400)] == pytest.approx(
        [0.01, 0.01, 0.001, 0.0005])
    flat = StoppingLearner(StoppingConfig(volatility_fine_decay="none", **SMALL), reference=None)
    assert flat.volatility_learning_rate_at(5000) == pytest.approx(0.001)
    for step in range(3):
        flat.train_step(flat.sample_batch(step))
    assert flat.volatility_optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


def test_config_round_trip():
    config = StoppingConfig(algorithm="td0", seed=3)
    assert StoppingConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        StoppingConfig.from_dict({**config.to_dict(), "bogus": 1})


def test_training_paths_depend_only_on_the_seed():
    # figure 6 (docs/stopping_studies.md) compares learners "on the same simulated paths": a run's
    # training paths must not depend on the algorithm, its temperature, step size or σ learning
    base = StoppingConfig(batch_size=8, eval_paths=16, test_paths=16, seed=4)
    learners = [StoppingLearner(base.replace(**changes)) for changes in (
        {}, {"algorithm": "dong", "temperature": 0.001, "learning_rate": 0.1},
        {"algorithm": "td0", "volatility_warmup": 0, "learn_volatility": False})]
    for step in range(3):
        batches = [learner.sample_batch(step) for learner in learners]
        learners[0].train_step(batches[0])  # training one learner does not consume its generator
        for batch in batches[1:]:
            assert torch.equal(batch, batches[0])
