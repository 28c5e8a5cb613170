"""Market-making learner: the TD loss by hand on pinned value functions, the grid θ as a near-zero
TD residual, value differences, determinism, resume, configuration errors."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pdecore.market_making_params import MarketMakingModel  # noqa: E402
from rl.losses import continuous_td_loss  # noqa: E402
from rl.market_making.config import MMTrainConfig  # noqa: E402
from rl.market_making.learner import MarketMakingLearner  # noqa: E402
from rl.market_making.simulator import graded_times  # noqa: E402
from rl.trainer import Trainer  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")


TINY = dict(hidden=8, layers=2, total_steps=6, batch_paths=8, paths_every=2, paths_per_step=4, n_steps=10)


class QuadraticValue(torch.nn.Module):
    """Pinned V(t, Q) = α (T − t) − β Σ Q² with the network interface the learner calls."""

    market_inputs = False

    def __init__(self, alpha, beta, horizon):
        super().__init__()
        self.alpha, self.beta, self.horizon = alpha, beta, horizon

    def forward(self, t, inventory, prices=None, spot=None, *, reference=None):
        return self.alpha * (self.horizon - t) - self.beta * (inventory**2).sum(-1)

    def values_and_differences(self, t, inventory, prices=None, spot=None):
        centre = self.forward(t, inventory)
        up = -self.beta * (2 * inventory + 1)
        down = -self.beta * (-2 * inventory + 1)
        return centre, torch.stack([up, down], dim=-1)


def test_td_loss_by_hand():
    values = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)
    next_values = torch.tensor([[1.5, 1.0], [0.0, 0.0]], dtype=torch.float64)
    reward = torch.tensor([[2.0, 0.0], [1.0, 3.0]], dtype=torch.float64)
    dt = torch.tensor([0.5, 0.25], dtype=torch.float64)
    # δ = (next − V)/Δt + r: path 0: (1 + 2, −4 + 0) ; path 1: (−1 + 1, 4 + 3)
    expected = 0.5 * ((3.0**2 * 0.5 + 4.0**2 * 0.25) + (0.0 + 7.0**2 * 0.25))
    assert continuous_td_loss(values, next_values, reward, dt).item() == pytest.approx(expected)
    mask = torch.tensor([[True, False], [True, True]])
    expected_masked = 0.5 * (3.0**2 * 0.5 + 7.0**2 * 0.25)
    assert continuous_td_loss(values, next_values, reward, dt, mask).item() == pytest.approx(expected_masked)
    with pytest.raises(ValueError, match="same shape"):
        continuous_td_loss(values, next_values[:, :1], reward, dt)


@pytest.mark.parametrize("scheme", ["explicit", "trapezoid"])
def test_td_terms_by_hand_on_a_pinned_value_function(scheme):
    # γ = 0 (argmax quotes), φ > 0, terminal c from the model; one path, three steps
    model = MarketMakingModel.paper_defaults(max_inventory=5, temperature=0.0, risk_aversion=2.0)
    cfg = MMTrainConfig(**{**TINY, "n_steps": 3, "time_grading": 1.0, "terminal": "model", "scheme": scheme})
    learner = MarketMakingLearner(model, cfg)
    alpha, beta = 40.0, 0.05
    learner.network = QuadraticValue(alpha, beta, model.horizon)
    inventory = torch.tensor([[[0.0], [2.0], [5.0], [4.0]]], dtype=torch.float64)
    batch = {"inventory": inventory, "prices": torch.full((1, 4, 1), 4.0, dtype=torch.float64),
             "spot": torch.full((1, 4), 100.0, dtype=torch.float64)}
    values, next_values, reward, dt = learner.td_terms(batch)

    # --- the same numbers by hand ---
    horizon, k, a = model.horizon, 1.5, 100.0
    times = np.linspace(0.0, horizon, 4)
    c = model.terminal_coefficients()[0]
    cov = model.noise_cov_array()[0, 0]

    def value(t, q):
        return -c * q * q if t >= horizon else alpha * (horizon - t) - beta * q * q

    def jump_and_reward(t, q):
        jump = reward_rate = 0.0
        for sign, active in ((+1, q < 5), (-1, q > -5)):
            if not active:
                continue
            gain = value(t, q + sign) - value(t, q)
            spread = max(0.0, min(4.0, 1.0 / k - gain))
            rate = a * math.exp(-k * spread)
            jump += rate * gain
            reward_rate += rate * spread
        return jump, reward_rate

    for j in range(3):
        q, t0, t1 = float(inventory[0, j, 0]), times[j], times[j + 1]
        step = t1 - t0
        jump, rew = jump_and_reward(t1, q)
        if scheme == "trapezoid":
            jump0, rew0 = jump_and_reward(t0, q)
            jump, rew = 0.5 * (jump + jump0), 0.5 * (rew + rew0)
        rew -= 0.5 * 2.0 * cov * q * q
        assert values[0, j].item() == pytest.approx(value(t0, q), rel=1e-12)
        assert next_values[0, j].item() == pytest.approx(value(t1, q) + step * jump, rel=1e-10)
        assert reward[0, j].item() == pytest.approx(rew, rel=1e-10)
        assert dt[j].item() == pytest.approx(step)


def test_grid_value_has_small_td_residual_away_from_the_horizon():
    """The grid HJB's θ, pinned as V, is (nearly) a zero of the expected TD error: the loss targets it."""
    import pdecore

    model = MarketMakingModel.paper_defaults(max_inventory=30)
    result = pdecore.solve_market_making(model, n_time=1000)
    learner = MarketMakingLearner(model, MMTrainConfig(**{**TINY, "n_steps": 100, "batch_paths": 16,
                                                          "paths_per_step": 16, "terminal": "model"}))

    class GridValue(torch.nn.Module):
        market_inputs = False

        def forward(self, t, inventory, prices=None, spot=None, *, reference=None):
            q = inventory.numpy().astype(int).clip(-30, 30)
            tt = t.numpy()
            out = np.empty(tt.size)
            for tv in np.unique(tt):
                sel = tt == tv
                out[sel] = result.theta(float(tv), q[sel])
            return torch.as_tensor(out)

        def values_and_differences(self, t, inventory, prices=None, spot=None):
            centre = self.forward(t, inventory)
            return centre, torch.stack([self.forward(t, inventory + 1) - centre,
                                        self.forward(t, inventory - 1) - centre], dim=-1)[:, None, :]

    batch = learner.sample_batch(0)
    batch["inventory"] = batch["inventory"].clamp(-29, 29)
    learner.network = GridValue()
    values, next_values, reward, dt = learner.td_terms(batch)
    delta = (next_values - values) / dt + reward
    early = delta[:, : int(0.8 * delta.shape[1])].abs().max().item()
    # reward rate ≈ 48 per day; the residual of the exact θ is below 1e-3 of it before 0.8 T
    assert early < 0.05, f"max |δ| before 0.8 T: {early}"


def test_values_and_differences_match_forward():
    model = MarketMakingModel.paper_defaults(2, max_inventory=6)
    learner = MarketMakingLearner(model, MMTrainConfig(**TINY))
    net = learner.network
    t = torch.tensor([0.0, 3.0, 9.5], dtype=torch.float64)
    q = torch.tensor([[0.0, 1.0], [-3.0, 2.0], [5.0, -5.0]], dtype=torch.float64)
    centre, diffs = net.values_and_differences(t, q)
    torch.testing.assert_close(centre, net(t, q))
    for i in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[i] = 1.0
        torch.testing.assert_close(diffs[:, i, 0], net(t, q + e) - net(t, q))
        torch.testing.assert_close(diffs[:, i, 1], net(t, q - e) - net(t, q))


def test_same_seed_same_weights_and_resume(tmp_path):
    model = MarketMakingModel.paper_defaults(max_inventory=10)

    def run(folder, steps, resume=False, seed=3):
        learner = MarketMakingLearner(model, MMTrainConfig(**{**TINY, "seed": seed}))
        Trainer(learner, folder, total_steps=steps, eval_every=0, checkpoint_every=2, seed=seed, progress=False,
                resume=resume).fit()
        return learner.network.state_dict()

    straight = run(tmp_path / "a", 6)
    again = run(tmp_path / "b", 6)
    for key in straight:
        assert torch.equal(straight[key], again[key]), key
    run(tmp_path / "c", 3)
    resumed = run(tmp_path / "c", 6, resume=True)
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), f"resume differs in {key}"
    other = run(tmp_path / "d", 6, seed=4)
    assert any(not torch.equal(straight[key], other[key]) for key in straight)


def test_bad_configuration_names_the_key():
    with pytest.raises(ValueError, match="unknown key.*'stepz'"):
        MMTrainConfig.from_mapping({"stepz": 3})
    with pytest.raises(ValueError, match="total_steps"):
        MMTrainConfig(total_steps=-5)
    with pytest.raises(ValueError, match="paths_per_step"):
        MMTrainConfig(batch_paths=4, paths_per_step=8)
    with pytest.raises(ValueError, match="td_target"):
        MMTrainConfig(td_target="bootstrap")
    with pytest.raises(ValueError, match="balance_exponent"):
        MMTrainConfig(balance_exponent=0.0)
    with pytest.raises(ValueError, match="balance_exponent"):
        MMTrainConfig(balance_exponent=1.5)
    with pytest.raises(ValueError, match="weight_limit"):
        MMTrainConfig(weight_limit=0.5)
    with pytest.raises(ValueError, match="aversion_shape_gain"):
        MMTrainConfig(aversion_shape_gain=-1.0)


@pytest.mark.parametrize("device", ["meta", "gpu", "cuda:x", "cpu:0", 0])
def test_a_device_that_is_not_cpu_or_cuda_is_refused_by_name(device):
    with pytest.raises(ValueError, match="device"):
        MMTrainConfig(device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_is_refused_cleanly_without_a_gpu():
    model = MarketMakingModel.paper_defaults(max_inventory=4)
    with pytest.raises(ValueError, match="'cuda'"):
        MarketMakingLearner(model, MMTrainConfig(**TINY, device="cuda"))
    learner = MarketMakingLearner(model, MMTrainConfig(**TINY))
    with pytest.raises(ValueError, match="'cuda:1'"):
        learner.to("cuda:1")
    with pytest.raises(ValueError, match="device"):
        learner.to("meta")


def test_every_tensor_follows_the_configured_device():
    # on the CPU here; on a GPU machine the same test runs with device="cuda" (every stored tensor and
    # every tensor of a training step must be on it, the generator stays on the CPU)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = MarketMakingModel.paper_defaults(max_inventory=6)
    learner = MarketMakingLearner(model, MMTrainConfig(**TINY, device=device))
    metrics = learner.train_step(learner.sample_batch(0))
    assert math.isfinite(metrics["losses/td"])
    expected = torch.device(device).type
    tensors = [*learner.network.parameters(), *learner.network.buffers(), learner._terminal_sum,
               learner.table.intensity, learner.table.decay, *learner._paths.values()]
    assert all(t.device.type == expected for t in tensors)
    assert learner.generator.device.type == "cpu"
    assert learner.mean_spreads(0.0, [[0], [1]])[0].shape == (2, 1)


def test_the_draws_do_not_depend_on_the_simulation_device():
    # the simulator draws on the generator's device and moves the numbers: a CPU generator gives the
    # same paths to a simulation on any device (here the CPU twice, through both code paths)
    from rl.market_making.policies import ConstantSpreadPolicy
    from rl.market_making.simulator import MarketMakingSimulator

    model = MarketMakingModel.paper_defaults(max_inventory=6)
    policy = ConstantSpreadPolicy.myopic(model)
    runs = []
    for device in ("cpu", torch.device("cpu")):
        simulator = MarketMakingSimulator(model, n_steps=20, device=device)
        result = simulator.simulate(policy, 16, generator=torch.Generator().manual_seed(7), record=True)
        runs.append(result.inventory)
    assert torch.equal(runs[0], runs[1])


def test_records_of_removed_options_load_only_when_the_option_was_inactive():
    record = {**TINY, "quadratic_head": False, "exploring_states": 0.0, "eval_every_paths": 0,
              "eval_n_steps": 500}
    # a record without running_form predates the key: it was trained with the per-entry form
    assert MMTrainConfig.from_record(record) == MMTrainConfig(**TINY, running_form="entrywise", aversion_shape="free")
    assert MMTrainConfig.from_record({**TINY, "running_form": "psd"}).running_form == "psd"
    assert MMTrainConfig.from_record(asdict(MMTrainConfig(**TINY))) == MMTrainConfig(**TINY)
    assert MMTrainConfig.from_record({**TINY, "device": "cuda"}, device="cpu").device == "cpu"
    with pytest.raises(ValueError, match="quadratic_head=True"):
        MMTrainConfig.from_record({**TINY, "quadratic_head": True})


def test_the_default_value_network_is_model_free():
    config = MMTrainConfig()
    assert config.baseline == "learned" and config.time_weighting == "balanced"
    learner = MarketMakingLearner(MarketMakingModel.paper_defaults(max_inventory=10), MMTrainConfig(**TINY))
    assert learner.network.model_free and not learner.network.use_baseline


class _StructureOnly:
    """A model that exposes only the problem's structure and the observed mids: reading anything else
    (A, k, σ, ψ0, φ, Σ, spread bounds, terminal coefficients) raises."""

    ALLOWED = ("n_options", "horizon", "max_inventory", "spot", "mid_prices")

    def __init__(self, model):
        self._model = model

    def __getattr__(self, name):
        if name in self.ALLOWED:
            return getattr(self._model, name)
        raise AssertionError(f"the model-free network read the model's {name!r}")


def test_the_model_free_network_reads_no_model_parameter():
    """Issue 15: nothing in the default network is derived from A, k, σ, ψ0, φ or Σ; the reward's
    coefficients come from the learner (the objective it computes), and the result is the network the
    learner builds (same seed: same weights and buffers)."""
    from rl.market_making.networks import MarketMakingValueNetwork

    cov = [[0.0025, 0.0015], [0.0015, 0.0025]]
    model = MarketMakingModel.paper_defaults(2, max_inventory=10, risk_aversion=0.5, noise_cov=cov)
    learner = MarketMakingLearner(model, MMTrainConfig(**TINY))
    terminal, running = learner.reward_coefficients()
    np.testing.assert_allclose(running, 0.25 * np.array(cov))
    torch.manual_seed(0)
    net = MarketMakingValueNetwork(_StructureOnly(model), hidden=8, layers=2, baseline="learned",
                                   terminal_coefficients=terminal, running_cost=running)
    torch.manual_seed(0)
    again = MarketMakingValueNetwork(model, hidden=8, layers=2, baseline="learned",
                                     terminal_coefficients=terminal, running_cost=running)
    for (name, a), (_, b) in zip(net.state_dict().items(), again.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)
    with pytest.raises(ValueError, match="terminal_coefficients and running_cost"):
        MarketMakingValueNetwork(model, baseline="learned")
    with pytest.raises(AssertionError, match="read the model"):  # the warm start does use the model
        MarketMakingValueNetwork(_StructureOnly(model), baseline="riccati")


@pytest.mark.parametrize("exponent, limit", [(1.0, 1e12), (0.75, 100.0), (0.5, 2.0)])
def test_balanced_weights_by_hand(exponent, limit):
    """w_j = clip((median m / m_j)^α, 1/limit, limit): the median, not the mean, so that one runaway date
    does not move every weight, and the clip so that it cannot weigh itself out of the loss."""
    model = MarketMakingModel.paper_defaults(max_inventory=10)
    learner = MarketMakingLearner(model, MMTrainConfig(**{**TINY, "balance_exponent": exponent,
                                                         "weight_limit": limit}))
    ema = torch.tensor([1.0, 4.0, 2.0, 1e6, 1e-6], dtype=torch.float64)
    learner._residual_ema = ema
    median = 2.0
    expected = np.clip((median / ema.numpy()) ** exponent, 1.0 / limit, limit)
    np.testing.assert_allclose(learner._weights().numpy(), expected, rtol=1e-12)


def test_model_free_aversion_starts_neutral_and_the_cross_scale_grows_with_time_to_go():
    """ρ(τ) = 1/(1 + τ/T) at the start (u = 0); with φ > 0 the correction scale adds the reward's
    running-risk rate × time to go (the cross-inventory terms grow with it), with φ = 0 it is max b Q̄²/4
    (the running part checked here is the earlier "psd" form; the Riccati form has its own tests)."""
    cov = [[0.0025, 0.0015], [0.0015, 0.0025]]
    t = torch.tensor([0.0, 5.0, 9.9], dtype=torch.float64)
    for phi in (0.0, 0.5):
        model = MarketMakingModel.paper_defaults(2, max_inventory=10, risk_aversion=phi, noise_cov=cov)
        net = MarketMakingLearner(model, MMTrainConfig(**TINY, running_form="psd")).network
        b = net.learned_coefficients(t)
        to_go = (model.horizon - t)[:, None]
        torch.testing.assert_close(b, net.coeffs / (1.0 + to_go / model.horizon))
        running = 0.5 * phi * float(np.linalg.eigvalsh(np.array(cov)).max())
        expected = (b.max(-1).values + running * (model.horizon - t)) * 10**2 / 4.0
        torch.testing.assert_close(net.correction_scale(t), expected)
        # the running-risk part starts at τ R/(1 + τ/T) and is absent without a running penalty
        part = net.running_part(t)
        matrix = 0.5 * phi * torch.tensor(cov, dtype=torch.float64)
        torch.testing.assert_close(part, (model.horizon - t)[:, None, None] * matrix
                                   / (1.0 + (model.horizon - t)[:, None, None] / model.horizon))
        q = torch.tensor([[3.0, -2.0]], dtype=torch.float64).expand(3, 2)
        with torch.no_grad():
            net.running_saturation.fill_(0.05)  # stronger saturation: less running cost, a higher value
            higher = net(t, q)
            net.running_saturation.zero_()
            base = net(t, q)
        assert bool(torch.all(higher[:2] > base[:2])) if phi > 0 else torch.equal(higher, base)


def test_graded_times():
    times = graded_times(10.0, 50, 2.0)
    assert times[0] == 0.0 and times[-1] == 10.0
    steps = np.diff(times)
    assert np.all(steps > 0) and np.all(np.diff(steps) < 0)  # refined towards T
    np.testing.assert_allclose(graded_times(10.0, 4, 1.0), [0.0, 2.5, 5.0, 7.5, 10.0])


def test_model_free_network_starts_neutral_and_learns_the_spreads():
    """``baseline = "learned"``: no model-derived term in the value, so before training the value is
    the terminal penalty at every date (spreads at the bounds, far from the grid's); a short
    training from simulated paths must bring the spreads much closer to the grid HJB's."""
    import pdecore
    from rl.market_making.evaluation import spread_errors

    model = MarketMakingModel.paper_defaults(max_inventory=20)
    reference = pdecore.solve_market_making(model, n_time=200)
    config = MMTrainConfig(baseline="learned", time_weighting="balanced", hidden=16, layers=2,
                           total_steps=40, batch_paths=64, paths_every=5, paths_per_step=16, n_steps=60,
                           seed=3)
    learner = MarketMakingLearner(model, config, reference=reference)
    assert learner.network.model_free and not learner.network.use_baseline
    before = spread_errors(learner, reference)["max_spread_error"]
    for step in range(config.total_steps):
        learner.train_step(learner.sample_batch(step))
    after = spread_errors(learner, reference)["max_spread_error"]
    assert before > 1.0  # units of 1/k: a neutral start, not a model-informed one
    assert after < 0.25 * before, (before, after)


def test_learned_aversion_and_its_ratio_to_the_grid():
    """At the neutral start the value is level − Σ ĉρQ² (h flat), so the aversion at q = 0 is ĉ_i ρ_i(τ);
    evaluate() reports its ratio to the grid's (far above 1 before training: spreads at the bounds)."""
    import pdecore

    model = MarketMakingModel.paper_defaults(max_inventory=10)
    reference = pdecore.solve_market_making(model, n_time=50)
    learner = MarketMakingLearner(model, MMTrainConfig(**TINY), reference=reference)
    for t in (0.0, 6.0):
        expected = learner.network.learned_coefficients(torch.tensor([t], dtype=torch.float64))[0].detach().numpy()
        np.testing.assert_allclose(learner.aversion(t), expected, rtol=1e-10)
    metrics = learner.evaluate()
    assert metrics["eval/aversion_ratio_t0"] > 10.0 and metrics["eval/aversion_ratio_t0.6"] > 10.0


def test_running_part_is_positive_semidefinite_by_construction():
    """The default Riccati increment and the "psd" form τ D R D: no inventory direction is rewarded for
    holding more, whatever the learned parameters; the old per-entry form could turn R ∘ Z indefinite
    (the ten-option runaway)."""
    n = 6
    cov = (0.5 * np.ones((n, n)) + 0.5 * np.eye(n)) * 0.0025
    model = MarketMakingModel(100.0, 0.02, [100.0 + i for i in range(n)], [30.0] * n, 10.0, 100.0, 100.0, 1.5,
                              noise_cov=cov.tolist(), terminal_penalty=0.1, risk_aversion=1.0, max_inventory=10,
                              spread_bounds=(0.0, 4.0), temperature=0.0)
    t = torch.tensor([0.0, 5.0, 9.9], dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    worst = {}
    for form in ("riccati", "psd", "entrywise"):
        net = MarketMakingLearner(model, MMTrainConfig(**TINY, running_form=form)).network
        lowest = math.inf
        for _ in range(20):
            with torch.no_grad():
                net.running_saturation.copy_(0.05 * torch.randn(net.running_saturation.shape, generator=generator,
                                                                dtype=torch.float64))
                net.aversion_rate.copy_(0.01 * torch.randn(n, generator=generator, dtype=torch.float64))
                lowest = min(lowest, float(torch.linalg.eigvalsh(net.running_part(t)).min()))
        worst[form] = lowest
    assert worst["riccati"] > -1e-12 and worst["psd"] > -1e-12 and worst["entrywise"] < 0.0, worst
    with pytest.raises(ValueError, match="running_form"):
        MarketMakingLearner(model, MMTrainConfig(**TINY, running_form="full"))


def _riccati_network(phi=0.5, cov=((0.0025, 0.0015), (0.0015, 0.0025)), strikes=(100.0, 105.0)):
    n = len(strikes)
    model = MarketMakingModel(100.0, 0.02, list(strikes), [30.0] * n, 10.0, 100.0, 100.0, 1.5,
                              noise_cov=[list(row) for row in cov], terminal_penalty=0.1, risk_aversion=phi,
                              max_inventory=10, spread_bounds=(0.0, 4.0), temperature=0.0)
    return model, MarketMakingLearner(model, MMTrainConfig(**TINY)).network


def test_riccati_running_part_matches_the_scalar_closed_form():
    """With a diagonal running cost each option's increment is the scalar Riccati's, in closed form:
    a(τ) = (c + s²ρ)/(1 + cρ), ρ = tanh(wτ)/s, s = √(r/κ), w = √(rκ), minus its r = 0 solution c/(1 + cκτ)
    (κ the stiffness the learned hyperbola implies, times e^{10 z})."""
    model, net = _riccati_network(cov=((0.0025, 0.0), (0.0, 0.0016)))
    assert net.running_form == "riccati"
    with torch.no_grad():
        net.aversion_rate.copy_(torch.tensor([0.02, 0.01], dtype=torch.float64))
        net.running_saturation.copy_(torch.tensor([0.03, 0.0, -0.02], dtype=torch.float64))
        t = torch.tensor([0.0, 2.0, 5.0, 8.0, 9.5, 9.99, 10.0], dtype=torch.float64)
        part = net.running_part(t)
        kappa = net.learned_stiffness(t)[0] * torch.exp(10.0 * torch.tensor([0.03, -0.02], dtype=torch.float64))
    tau = model.horizon - t
    for i in range(2):
        r, k, c = net.running_matrix[i, i], kappa[i], net.coeffs[i]
        s, w = torch.sqrt(r / k), torch.sqrt(r * k)
        rho = torch.tanh(w * tau) / s
        exact = (c + s**2 * rho) / (1.0 + c * rho) - c / (1.0 + c * k * tau)
        torch.testing.assert_close(part[:, i, i], exact, rtol=1e-6, atol=1e-12)
    assert torch.all(part[:, 0, 1] == 0.0) and torch.all(part[-1] == 0.0)


def test_riccati_running_part_solves_the_matrix_riccati():
    """Correlated options, constant stiffness (the shape network at its zero start): A_R(τ) =
    diag(ĉ/(1 + ĉκτ)) + Δ(τ) solves dA/dτ = R − A K A, A(0) = diag(ĉ), checked against scipy's solve_ivp
    (an independent integrator on A itself, not on P = A⁻¹)."""
    from scipy.integrate import solve_ivp

    model, net = _riccati_network(cov=((0.0025, 0.0015, 0.001), (0.0015, 0.0025, 0.0012), (0.001, 0.0012, 0.003)),
                                  strikes=(95.0, 100.0, 105.0))
    with torch.no_grad():
        net.aversion_rate.copy_(torch.tensor([0.02, 0.015, 0.01], dtype=torch.float64))
        t = torch.tensor([0.0, 3.0, 7.0, 9.0, 9.9], dtype=torch.float64)
        part = net.running_part(t).numpy()
        kappa = net.learned_stiffness(t)[0].numpy()
    c, r = net.coeffs.numpy(), net.running_matrix.numpy()

    def rhs(_, a):
        a = a.reshape(3, 3)
        return (r - a @ np.diag(kappa) @ a).ravel()

    tau = model.horizon - t.numpy()
    order = np.argsort(tau)
    solution = solve_ivp(rhs, (0.0, tau.max()), np.diag(c).ravel(), method="Radau", t_eval=tau[order],
                         rtol=1e-10, atol=1e-14)
    for column, j in enumerate(order):
        exact = solution.y[:, column].reshape(3, 3) - np.diag(c / (1.0 + c * kappa * tau[j]))
        np.testing.assert_allclose(part[j], exact, rtol=1e-5, atol=1e-9)


def test_riccati_running_part_is_absent_without_a_running_cost():
    """φ = 0: the increment is zero (the network is then exactly the learned hyperbola)."""
    _, net = _riccati_network(phi=0.0)
    t = torch.tensor([0.0, 5.0, 10.0], dtype=torch.float64)
    assert net.running_rate == 0.0 and torch.all(net.running_part(t) == 0.0)


def test_riccati_running_part_follows_the_learned_shape_of_the_stiffness():
    """With a time-dependent shape u(τ) the increment is (P_0 + E)⁻¹ − P_0⁻¹, P_0(τ) = C⁻¹ + τκ(τ) the
    inverse of the learned hyperbola, dE/dτ = −(P_0 + E) R (P_0 + E): checked against solve_ivp; without a
    running cost it is zero, so the form is then exactly the hyperbola."""
    from scipy.integrate import solve_ivp

    model, net = _riccati_network()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        net.aversion_rate.copy_(torch.tensor([0.02, 0.012], dtype=torch.float64))
        last = net.aversion_net[-1]
        last.weight.copy_(0.3 * torch.randn(last.weight.shape, generator=generator, dtype=torch.float64))
        last.bias.copy_(torch.tensor([0.1, -0.2], dtype=torch.float64))
        t = torch.tensor([0.0, 4.0, 8.0, 9.7], dtype=torch.float64)
        part = net.running_part(t).numpy()
    c, r = net.coeffs.numpy(), net.running_matrix.numpy()

    def p0(tau):
        with torch.no_grad():
            kappa = net.learned_stiffness(torch.tensor([tau], dtype=torch.float64))[0].numpy()
        return 1.0 / c + tau * kappa

    def rhs(tau, e):
        p = np.diag(p0(tau)) + e.reshape(2, 2)
        return (-(p @ r @ p)).ravel()

    tau = model.horizon - t.numpy()
    order = np.argsort(tau)
    solution = solve_ivp(rhs, (0.0, tau.max()), np.zeros(4), method="DOP853", t_eval=tau[order], rtol=1e-11,
                         atol=1e-14)
    for column, j in enumerate(order):
        base = np.diag(p0(tau[j]))
        exact = np.linalg.inv(base + solution.y[:, column].reshape(2, 2)) - np.linalg.inv(base)
        np.testing.assert_allclose(part[j], exact, rtol=1e-5, atol=1e-9)
    with torch.no_grad():
        net.running_matrix.zero_()
        assert torch.all(net.running_part(t) == 0.0)


def test_anchored_aversion_shape_leaves_the_terminal_rate_to_r():
    """Default "anchored": the shape w(τ) − w(0) vanishes at the horizon whatever the network's weights, so
    the exponent there is 300 r alone (no constant to trade with the rate); "free" keeps w(τ) itself."""
    model = MarketMakingModel.paper_defaults(max_inventory=10)
    t = torch.tensor([0.0, 5.0, 9.9, 10.0], dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    shapes = {}
    for form in ("anchored", "free"):
        torch.manual_seed(0)
        net = MarketMakingLearner(model, MMTrainConfig(**TINY, aversion_shape=form)).network
        with torch.no_grad():
            last = net.aversion_net[-1]
            last.weight.copy_(torch.randn(last.weight.shape, generator=generator, dtype=torch.float64))
            last.bias.fill_(0.5)
            shapes[form] = net._aversion_shape(t)
            raw = net.aversion_net(net._time_features(t))
            at_horizon = net.learned_stiffness(torch.zeros(1, dtype=torch.float64))[0]
            rate_only = torch.exp(net.AVERSION_RATE_GAIN * net.aversion_rate) / (net.coeffs * net.horizon)
        if form == "anchored":
            assert torch.all(shapes[form][-1] == 0.0)
            torch.testing.assert_close(shapes[form], raw - raw[-1])
            torch.testing.assert_close(at_horizon, rate_only)
        else:
            torch.testing.assert_close(shapes[form], raw)
    assert MMTrainConfig().aversion_shape == "anchored"
    with pytest.raises(ValueError, match="aversion_shape"):
        MMTrainConfig(aversion_shape="pinned")


def test_riccati_nodes_are_cached_without_gradients_and_renewed_when_a_parameter_changes():
    """The simulation's calls (no gradient) reuse one solve while the parameters stay; an in-place update
    (an optimizer step, a copy into a buffer) renews it; with gradients every call solves afresh."""
    _, net = _riccati_network()
    t = torch.tensor([0.0, 4.0, 9.0], dtype=torch.float64)
    with torch.no_grad():
        first = net.running_part(t)
        assert net._riccati_nodes() is net._riccati_nodes()
        net.aversion_rate.add_(0.01)
        renewed = net.running_part(t)
        net._riccati_cache = None  # a fresh solve gives the same numbers
        torch.testing.assert_close(net.running_part(t), renewed, rtol=0, atol=0)
        net.coeffs.mul_(1.5)
        rescaled = net.running_part(t)
    assert not torch.equal(first, renewed) and not torch.equal(renewed, rescaled)
    optimizer = torch.optim.SGD([net.running_saturation], lr=1.0)
    net.running_part(t).sum().backward()  # with gradients: a graph of its own
    optimizer.step()
    with torch.no_grad():
        after_step = net.running_part(t)
    net._riccati_cache = None
    with torch.no_grad():
        torch.testing.assert_close(net.running_part(t), after_step, rtol=0, atol=0)
    assert not torch.equal(after_step, rescaled)
