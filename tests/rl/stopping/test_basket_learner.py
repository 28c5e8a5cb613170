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
    # the evaluation on a fine execution grid is estimated and refused before any path is drawn
    learner = HighDimStoppingLearner(HighDimStoppingConfig(problem="basket", dimension=200, batch_size=64,
                                                           execution_substeps=1000))
    with pytest.raises(ValueError, match="execution grid n_dates x 1000.*fewer execution_substeps"):
        learner.evaluate(1024)


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


# ---------------------------------------------------------------- execution between the decision dates
def test_execution_substeps_is_validated_and_refused_for_the_fbm():
    assert HighDimStoppingConfig(**TINY).execution_substeps == 1  # default: the paper's evaluation
    with pytest.raises(ValueError, match="execution_substeps"):
        HighDimStoppingConfig(**TINY, execution_substeps=0)
    with pytest.raises(ValueError, match="execution_substeps=4.*fBm.*execution_substeps=1"):
        HighDimStoppingConfig(problem="fbm", n_dates=8, penalty=8.0, execution_substeps=4)


def test_execution_grid_rule_is_the_trained_rule_at_decision_dates_and_interpolates_between():
    m = 3
    trained, _ = _train(HighDimStoppingConfig(**TINY, seed=2), steps=5)
    learner = HighDimStoppingLearner(HighDimStoppingConfig(**TINY, seed=2, execution_substeps=m,
                                                           continuity_correction=False))
    learner.net.load_state_dict(trained.net.state_dict())
    assert torch.equal(learner.evaluation_network().norms[0].running_mean,
                       trained.evaluation_network().norms[0].running_mean)  # the same calibration on any grid
    raw = learner.sample_raw(128, torch.Generator().manual_seed(9), execution_grid=True)
    assert raw.shape == (128, 10 * m + 1, 5)
    exercise, gains, european = learner.exercise(raw)
    assert exercise.shape == (128, 10 * m) and gains.shape == (128, 10 * m + 1)
    coarse, _, _ = trained.exercise(raw[:, ::m].contiguous())
    assert torch.equal(exercise[:, ::m], coarse)  # at t_l: w_l <= 0 itself
    # by hand at t = t_l + Δt/3 for l = 4: (2/3) w_4(x_t) + (1/3) w_5(x_t) <= 0
    net = learner.evaluation_network()
    l, k = 4, 1
    j = l * m + k
    h = (gains - european)[:, j].to(torch.float32)
    x = torch.cat([raw[:, j], h.unsqueeze(1)], dim=1).T  # (D + 1, B)
    inputs = torch.zeros((10, 6, 128))
    inputs[l] = x
    inputs[l + 1] = x
    w = net(inputs)
    expected = (1 - k / m) * w[l] + (k / m) * w[l + 1] <= 0.0
    assert torch.equal(exercise[:, j], expected)
    # the last interval interpolates towards w_L = 0: the sign of w_{L-1}
    j = 9 * m + 2
    h = (gains - european)[:, j].to(torch.float32)
    inputs[9] = torch.cat([raw[:, j], h.unsqueeze(1)], dim=1).T
    assert torch.equal(exercise[:, j], net(inputs)[9] <= 0.0)


def test_execution_grid_evaluation_reports_both_rules_on_the_same_paths():
    learner, _ = _train(HighDimStoppingConfig(**TINY, execution_substeps=2))
    out = learner.evaluate()
    for key in ("p_stopping", "p_decision_dates", "p_decision_dates_cv", "p_stopping_cv"):
        assert f"eval/{key}" in out, key
    assert 0.0 < out["eval/mean_stopping_time"] <= 1.0
    with pytest.raises(ValueError, match="dates"):
        learner.exercise(torch.zeros((4, 8, 5)))  # neither the decision dates nor the execution grid


def test_a_different_execution_grid_changes_only_the_evaluation():
    from validation.high_dim_stopping import evaluate_learner, with_evaluation_settings

    learner, _ = _train(HighDimStoppingConfig(**TINY))
    fine = with_evaluation_settings(learner, execution_substeps=4)
    assert fine.config.execution_substeps == 4 and learner.config.execution_substeps == 1
    for (name, x), (_, y) in zip(learner.net.state_dict().items(), fine.net.state_dict().items()):
        assert torch.equal(x, y), name
    assert with_evaluation_settings(learner, execution_substeps=1, antithetic_test_paths=None) is learner
    with pytest.raises(ValueError, match="penalty.*not evaluation settings"):
        with_evaluation_settings(learner, penalty=5.0)
    out = evaluate_learner(learner, execution_substeps=4)
    assert out["bermudan_execution_grid"] > out["bermudan"]  # more exercise dates are worth more
    assert out["oracle_p_stopping"] == pytest.approx(out["bermudan_execution_grid"], rel=2e-3)
    assert abs(out["p_oracle_rule"] - out["oracle_p_stopping"]) < 4 * out["p_oracle_rule_stderr"]
    assert "p_decision_dates" in out and "p_decision_dates" not in evaluate_learner(learner)


def test_antithetic_test_paths_mirror_the_normals_and_pair_the_standard_errors():
    from validation.high_dim_stopping import with_evaluation_settings

    with pytest.raises(ValueError, match="antithetic_test_paths.*fBm"):
        HighDimStoppingConfig(problem="fbm", n_dates=8, penalty=8.0, antithetic_test_paths=True)
    with pytest.raises(ValueError, match="even"):
        HighDimStoppingConfig(**{**TINY, "test_paths": 511}, antithetic_test_paths=True)
    learner, _ = _train(HighDimStoppingConfig(**TINY))
    paired = with_evaluation_settings(learner, antithetic_test_paths=True)
    raw = paired.sample_raw(6, torch.Generator().manual_seed(2), antithetic=True)
    steps = raw[:, 1:] - raw[:, :-1]
    drift = paired.simulator._log_drift.to(raw.dtype)
    assert torch.allclose(steps[:3] - drift, -(steps[3:] - drift), atol=1e-5)  # mirrored normals
    out, plain = paired.evaluate(final=True), learner.evaluate(final=True)
    assert out["eval/test_paths"] == 512
    # the mean by hand from the same chunks, the standard error over the 256 pair means
    values = []
    for chunk in paired.test_batches(512):
        exercise, gains, european = paired.exercise(chunk)
        values.append(paired.stopped(exercise, gains, european)[0])
    pairs = torch.cat([0.5 * (v[:v.shape[0] // 2] + v[v.shape[0] // 2:]) for v in values])
    assert out["eval/p_stopping"] == pytest.approx(float(pairs.mean()), rel=1e-12)
    assert out["eval/p_stopping_stderr"] == pytest.approx(float(pairs.std() / 256**0.5), rel=1e-9)
    assert out["eval/p_stopping"] != plain["eval/p_stopping"]


def test_hidden_layers_key_shares_the_hidden_layers_and_old_records_keep_theirs():
    assert HighDimStoppingConfig(**TINY).hidden_layers == "per_date"  # auto
    shared = HighDimStoppingLearner(HighDimStoppingConfig(**TINY, hidden_layers="shared"))
    assert [linear.weight.shape[0] for linear in shared.net.linears] == [1, 1, 10]
    with pytest.raises(ValueError, match='hidden_layers="shared".*input_layer'):
        HighDimStoppingConfig(**TINY, input_layer="per_date", hidden_layers="shared")
    record = HighDimStoppingConfig(**TINY).to_dict()
    record.pop("hidden_layers")
    assert HighDimStoppingConfig.from_dict(record).hidden_layers == "per_date"


class _PremiumOf(torch.nn.Module):
    """A stand-in for the networks: ``w_l = f(state inputs, h)``, the same at every date
    (``(L, D + 1, B) → (L, B)``)."""

    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(x[:, :-1, :], x[:, -1, :])


@pytest.mark.parametrize("through", ["state", "payoff"])
def test_continuity_shift_moves_log_G_by_the_bgk_distance_toward_continuation(through):
    """For a premium that depends on the log geometric mean only, rising with it (a put's), the move of
    log G is θ σ_G √Δt with θ = β (1 − 1/√m), whichever input carries the dependence: the state inputs
    directly, or the payoff input h = g − V_E (which falls with G; the derivative must go through it)."""
    import math

    from rl.stopping.high_dim import BGK_BETA

    m = 4
    learner = HighDimStoppingLearner(HighDimStoppingConfig(**{**TINY, "eval_paths": 4096}, execution_substeps=m))
    exponent = learner.market.exponent
    if through == "state":
        net = _PremiumOf(lambda y, h: 3.0 * (exponent * y.sum(dim=1) - math.log(90.0)))
    else:
        net = _PremiumOf(lambda y, h: -2.0 * h - 0.5)
    shifts = learner._estimate_shifts(net)
    assert shifts.shape == (11, 5) and torch.all(shifts[-1] == 0)
    moves = learner.simulator.log_geometric_mean(shifts[:-1])
    expected = BGK_BETA * (1 - 1 / math.sqrt(m)) * learner._geometric["volatility"] * math.sqrt(0.1)
    assert torch.all(moves > 0)  # toward continuation: up for a put
    assert moves.numpy() == pytest.approx(expected, rel=0.05)  # Σ estimated from 4096 x 10 increments
    assert torch.equal(shifts[0], shifts[1])  # date 0 (every path at the spot) takes the next date's move
    learner_off = HighDimStoppingLearner(HighDimStoppingConfig(**TINY, execution_substeps=m,
                                                               continuity_correction=False))
    assert torch.all(learner_off._estimate_shifts(net) == 0)


def test_corrected_rule_asks_each_network_at_its_moved_state_and_zero_moves_change_nothing():
    m = 3
    trained, _ = _train(HighDimStoppingConfig(**TINY, seed=2), steps=5)
    plain = HighDimStoppingLearner(HighDimStoppingConfig(**TINY, seed=2, execution_substeps=m,
                                                         continuity_correction=False))
    learner = HighDimStoppingLearner(HighDimStoppingConfig(**TINY, seed=2, execution_substeps=m))
    for other in (plain, learner):
        other.net.load_state_dict(trained.net.state_dict())
    raw = learner.sample_raw(128, torch.Generator().manual_seed(9), execution_grid=True)
    learner._shifts = torch.zeros(11, 5, dtype=torch.float64)
    assert torch.equal(learner.exercise(raw)[0], plain.exercise(raw)[0])  # the moved-input path is the plain one
    shifts = torch.linspace(0.01, 0.05, 11, dtype=torch.float64).unsqueeze(1) * torch.tensor([1.0, -0.5, 2.0, 0.0, 1.5])
    shifts[-1] = 0.0
    learner._shifts = shifts
    exercise, gains, european = learner.exercise(raw)
    net = learner.evaluation_network()

    def premium(l, j):  # network l at the state of grid date j moved by c_l, its payoff input there too
        moved = raw[:, j] + shifts[l].to(torch.float32)
        geometric = torch.exp(learner.simulator.log_geometric_mean(moved.unsqueeze(1)))
        t = torch.tensor([j / (10 * m)], dtype=torch.float64)
        h = (torch.clamp(learner.market.strike - geometric, min=0.0) - learner._european(geometric, t))
        inputs = torch.zeros((10, 6, 128))
        inputs[l] = torch.cat([moved, h.to(torch.float32)], dim=1).T
        return net(inputs)[l]

    for l, k in ((4, 0), (4, 1), (7, 2)):
        j = l * m + k
        expected = (1 - k / m) * premium(l, j) + (k / m) * premium(l + 1, j) <= 0.0
        assert (exercise[:, j] != expected).sum() <= 1, (l, k)  # h from float64 log G here, from the sum there
    j = 9 * m + 2  # the last interval: towards w_L = 0
    assert (exercise[:, j] != (premium(9, j) <= 0.0)).sum() <= 1
    # the paper's evaluation at the decision dates keeps the unmoved rule w_l <= 0
    out, out_plain = learner.evaluate(), plain.evaluate()
    assert out["eval/p_decision_dates"] == out_plain["eval/p_decision_dates"]
    assert out["eval/p_stopping"] != out_plain["eval/p_stopping"]


def test_continuity_correction_key_old_records_and_validation():
    record = HighDimStoppingConfig(**TINY, execution_substeps=2).to_dict()
    assert record["continuity_correction"] is True
    del record["continuity_correction"]
    assert HighDimStoppingConfig.from_dict(record).continuity_correction is False  # recorded before the key
    with pytest.raises(ValueError, match="continuity_correction must be true or false"):
        HighDimStoppingConfig(**TINY, continuity_correction="yes")
    learner = HighDimStoppingLearner(HighDimStoppingConfig(**TINY))  # m = 1: nothing to correct
    assert not learner.corrects_continuity() and torch.all(learner.continuity_shifts() == 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_with_a_cuda_device_the_learner_runs_there_on_the_same_paths():
    """Paths are drawn on the CPU generator and moved, so a CUDA run sees the CPU run's paths: the same
    losses and prices up to float32 reduction order."""
    config = HighDimStoppingConfig(**TINY, seed=3, execution_substeps=2)
    cpu, losses_cpu = _train(config)
    gpu = HighDimStoppingLearner(config, device="cuda")
    losses_gpu = [gpu.train_step(gpu.sample_batch(step))["losses/loss"] for step in range(3)]
    assert all(p.device.type == "cuda" for p in gpu.net.parameters())
    assert losses_gpu == pytest.approx(losses_cpu, rel=1e-4)
    out_cpu, out_gpu = cpu.evaluate(final=True), gpu.evaluate(final=True)
    assert out_gpu["eval/p_stopping"] == pytest.approx(out_cpu["eval/p_stopping"],
                                                       abs=4 * out_cpu["eval/p_stopping_stderr"])
    assert gpu.continuity_shifts().device.type == "cpu" and gpu.continuity_shifts().abs().sum() > 0
