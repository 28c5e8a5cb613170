"""The d-dimensional stopping learner on the basket put (rl.stopping.high_dim; issue 17), tiny settings."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rl.stopping.high_dim import HighDimStoppingConfig, HighDimStoppingLearner  # noqa: E402

TINY = dict(problem="basket", dimension=5, n_dates=10, penalty=10.0, batch_size=64, eval_paths=256,
            test_paths=512)


def _train(config, steps=3):
    learner = HighDimStoppingLearner(config)
    losses = [learner.train_step(learner.sample_batch(step))["losses/loss"] for step in range(steps)]
    return learner, losses


def test_same_seed_same_numbers_on_cpu():
    config = HighDimStoppingConfig(**TINY, seed=4)
    a, losses_a = _train(config)
    b, losses_b = _train(config)
    assert losses_a == losses_b
    for (name, x), (_, y) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        assert torch.equal(x, y), name
    assert a.evaluate() == b.evaluate()
    c, losses_c = _train(HighDimStoppingConfig(**TINY, seed=5))
    assert losses_c != losses_a


@pytest.mark.parametrize("formulation", ["price", "premium"])
@pytest.mark.parametrize("state_inputs", ["auto", "log", "level"])
def test_inputs_are_state_and_payoff(formulation, state_inputs):
    config = HighDimStoppingConfig(**{**TINY, "formulation": formulation, "state_inputs": state_inputs})
    assert config.state_inputs == ("log" if state_inputs == "auto" else state_inputs)  # auto: log-prices
    learner = HighDimStoppingLearner(config)
    raw = learner.sample_batch(0)  # log-prices
    inputs, payoffs, terminal, gains, european = learner.features(raw)
    assert inputs.shape == (10, 6, 64)
    state = raw[:, :10, :] if config.state_inputs == "log" else torch.exp(raw[:, :10, :])
    assert torch.allclose(inputs[:, :5, :], state.permute(1, 2, 0))
    assert torch.equal(inputs[:, 5, :], payoffs.T)
    if formulation == "premium":  # h = g − V_E, terminal 0
        assert torch.allclose(payoffs.double(), (gains - european)[:, :10], atol=1e-5)
        assert torch.all(terminal == 0)
    else:
        assert torch.allclose(terminal.double(), gains[:, -1], atol=1e-5)


def test_never_exercising_gives_the_european_price_exactly_through_the_control_variate():
    learner = HighDimStoppingLearner(HighDimStoppingConfig(**TINY))
    raw = learner.sample_batch(0)
    gains, european = learner.payoffs_and_european(raw)
    never = torch.zeros((raw.shape[0], 10), dtype=torch.bool)
    value, premium, first = learner.stopped(never, gains, european)
    assert torch.all(first == 10) and torch.all(premium == 0)  # V_E(T) = g: the premium at T is 0


def test_learning_rate_schedule_is_the_papers():
    learner = HighDimStoppingLearner(HighDimStoppingConfig(**TINY))
    assert [learner.learning_rate_at(u) for u in (0, 299, 300, 600)] == pytest.approx([0.05, 0.05, 0.005, 0.0005])


def test_memory_refused_before_allocation(monkeypatch):
    monkeypatch.setenv("PDERL_MEMORY_BUDGET", "64M")
    with pytest.raises(ValueError, match="batch=4096, n_dates=100, state dimension=200.*PDERL_MEMORY_BUDGET"):
        HighDimStoppingLearner(HighDimStoppingConfig(problem="basket", dimension=200, batch_size=4096))


def test_bad_settings_refused():
    with pytest.raises(ValueError, match="κΔt"):
        HighDimStoppingConfig(n_dates=10, penalty=20.0)
    with pytest.raises(ValueError, match="problem"):
        HighDimStoppingConfig(problem="heston")
    with pytest.raises(ValueError, match="state_inputs='log'.*fBm"):
        HighDimStoppingConfig(problem="fbm", state_inputs="log")
    assert HighDimStoppingConfig(problem="fbm").state_inputs == "level"
    with pytest.raises(ValueError, match="martingale_weighting.*restarted"):
        HighDimStoppingConfig(martingale_weighting="uniform")


@pytest.mark.parametrize("weighting", ["restarted", "survival"])
def test_training_loss_is_the_configured_martingale_loss(weighting):
    """One step's loss equals rl.losses.martingale_loss with the configured weighting, by hand."""
    from rl.losses import martingale_loss

    assert HighDimStoppingConfig().martingale_weighting == "restarted"  # the default (see the config's docstring)
    config = HighDimStoppingConfig(**TINY, martingale_weighting=weighting)
    learner = HighDimStoppingLearner(config)
    raw = learner.sample_batch(0)
    reported = learner.train_step(raw)["losses/loss"]
    again = HighDimStoppingLearner(config)  # same seed: same initial networks
    inputs, payoffs, terminal, _, _ = again.features(raw, need_european=False)
    again._init_output_shift(payoffs, terminal)
    again.net.train()
    with torch.no_grad():
        premium_part = again.net(inputs).T
    prob = again.policy.probability_of_gap(-premium_part)
    expected = martingale_loss(payoffs + premium_part, payoffs, terminal, prob, penalty=config.penalty,
                               temperature=config.temperature, rate=again.rate, dt=config.dt, weighting=weighting)
    assert reported == pytest.approx(float(expected), rel=1e-6)
    other = "survival" if weighting == "restarted" else "restarted"
    different = martingale_loss(payoffs + premium_part, payoffs, terminal, prob, penalty=config.penalty,
                                temperature=config.temperature, rate=again.rate, dt=config.dt, weighting=other)
    assert float(different) != pytest.approx(float(expected), rel=1e-6)


def test_a_record_written_before_the_new_keys_keeps_its_meaning():
    """Runs recorded before state_inputs / martingale_weighting / input_layer / input_norm existed were
    trained on prices with the survival weights, one input layer per date and the affine input batch norm:
    rebuilding them must give that, not today's defaults (log-prices, restarted, shared, standardize)."""
    record = HighDimStoppingConfig(**TINY).to_dict()
    keys = ("state_inputs", "martingale_weighting", "input_layer", "input_norm")
    assert tuple(record[key] for key in keys) == ("log", "restarted", "shared", "standardize")
    shared_affine = {key: value for key, value in record.items() if key != "input_norm"}
    for key in keys:
        del record[key]
    old = HighDimStoppingConfig.from_dict(record)
    assert tuple(getattr(old, key) for key in keys) == ("level", "survival", "per_date", "affine")
    assert HighDimStoppingLearner(old).net.linears[0].weight.shape[0] == old.n_dates  # the old runs' weights load
    # a run recorded with the shared layer but before input_norm: shared layer, affine input norm
    between = HighDimStoppingConfig.from_dict(shared_affine)
    assert (between.input_layer, between.input_norm) == ("shared", "affine")
    assert HighDimStoppingLearner(between).net.norms[0].weight is not None
    with pytest.raises(ValueError, match="unknown .*fields.*'shape'"):
        HighDimStoppingConfig.from_dict({**record, "shape": 3})


@pytest.mark.parametrize("problem, resolved", [("basket", "shared"), ("fbm", "per_date")])
def test_input_layer_auto_resolves_per_problem_and_shapes_the_network(problem, resolved):
    settings = {**TINY, "problem": problem}
    assert HighDimStoppingConfig(**settings).input_layer == resolved
    for layer, rows in (("shared", 1), ("per_date", 10)):
        learner = HighDimStoppingLearner(HighDimStoppingConfig(**settings, input_layer=layer))
        assert learner.net.linears[0].weight.shape[0] == rows
        assert learner.net.linears[1].weight.shape[0] == 10  # the later layers stay per date
        learner.train_step(learner.sample_batch(0))
    with pytest.raises(ValueError, match="input_layer.*per_date"):
        HighDimStoppingConfig(input_layer="tied")


@pytest.mark.parametrize("input_layer, resolved", [("shared", "standardize"), ("per_date", "affine")])
def test_input_norm_auto_follows_the_input_layer(input_layer, resolved):
    """Per-date scales before a shared input layer are per-date weights of the inputs; "auto" drops them
    there and keeps them (redundant, the paper's) before per-date layers."""
    config = HighDimStoppingConfig(**TINY, input_layer=input_layer)
    assert config.input_norm == resolved
    learner = HighDimStoppingLearner(config)
    input_norm = learner.net.norms[0]
    assert (input_norm.weight is None) == (resolved == "standardize")
    assert all(parameter is not None for norm in learner.net.norms[1:] for parameter in (norm.weight, norm.bias))
    learner.train_step(learner.sample_batch(0))
    assert HighDimStoppingConfig(**TINY, input_layer="shared", batch_norm=False).input_norm == "affine"
    with pytest.raises(ValueError, match="input_norm.*batch_norm=False"):
        HighDimStoppingConfig(**TINY, input_norm="standardize", batch_norm=False)
    with pytest.raises(ValueError, match="input_norm.*standardize"):
        HighDimStoppingConfig(**TINY, input_norm="scaled")
