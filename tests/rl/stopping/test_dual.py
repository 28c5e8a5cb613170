"""Dual upper bound of the fBm stopping value (rl.stopping.dual; issue 17)."""

import math

import pytest
import torch

from rl.stopping.dual import _inner_inputs, _martingale, dual_upper_bound
from rl.stopping.fbm import FBMSimulator
from rl.stopping.high_dim import HighDimStoppingConfig, HighDimStoppingLearner

TINY = dict(problem="fbm", hurst=0.3, n_dates=8, penalty=8.0, temperature=0.1, batch_size=64, eval_paths=256,
            test_paths=512)


def _trained(steps=3, **settings):
    learner = HighDimStoppingLearner(HighDimStoppingConfig(**{**TINY, **settings}))
    for step in range(steps):
        learner.train_step(learner.sample_batch(step))
    return learner


@pytest.mark.parametrize("hurst", [0.1, 0.7])
def test_conditional_law_is_the_gaussian_regression_on_the_past(hurst):
    """μ_m, s_m against the covariance's own regression: μ_m = C_{m,<m} C_{<m,<m}⁻¹ W_{<m}, s_m² = Schur complement."""
    simulator = FBMSimulator(hurst, 6)
    paths = simulator.sample(5, torch.Generator().manual_seed(1), dtype=torch.float64)
    mean, std = simulator.conditional_law(paths)
    covariance = torch.as_tensor(simulator.covariance)
    for m in range(1, 7):  # date m is column m − 1
        past = covariance[:m - 1, :m - 1]
        cross = covariance[m - 1, :m - 1]
        beta = torch.linalg.solve(past, cross) if m > 1 else torch.zeros(0, dtype=torch.float64)
        torch.testing.assert_close(mean[:, m - 1], paths[:, 1:m] @ beta, rtol=1e-9, atol=1e-12)
        variance = covariance[m - 1, m - 1] - (cross @ beta if m > 1 else 0.0)
        assert float(std[m - 1]) ** 2 == pytest.approx(float(variance), rel=1e-9)
    weights = simulator.terminal_mean_weight_on_last()
    assert weights[0] == 0.0
    beta_3 = torch.linalg.solve(covariance[:3, :3], covariance[:3, 5])  # E[W_1 | W_{t_1..t_3}]'s weights
    assert float(weights[3]) == pytest.approx(float(beta_3[2]), rel=1e-9)


@pytest.mark.parametrize("formulation", ["premium", "price"])
def test_the_martingale_has_mean_zero_whatever_the_networks(formulation):
    """Each increment Ṽ_k − Ê_{k−1}[Ṽ_k] has conditional mean 0 (inner draws independent of the outer one):
    E[M_n] = 0 at every date even for barely trained networks."""
    learner = _trained(formulation=formulation)
    net = learner.evaluation_network()
    raw = learner.sample_raw(4000, torch.Generator().manual_seed(3))
    weights = learner.simulator.terminal_mean_weight_on_last()
    with torch.no_grad():
        gains, martingale, plain, stop = _martingale(learner, net, raw, 8, torch.Generator().manual_seed(4), weights)
    assert martingale.shape == gains.shape == (4000, 9) and plain.shape == stop.shape == (4000,)
    assert torch.all(martingale[:, 0] == 0)
    mean = martingale.mean(dim=0)
    stderr = martingale.std(dim=0) / math.sqrt(4000)
    assert torch.all(mean[1:].abs() <= 4 * stderr[1:] + 1e-12)
    assert float(martingale[:, 1:].std()) > 0  # not trivially zero


@pytest.mark.parametrize("formulation", ["premium", "price"])
def test_inner_inputs_are_the_features_of_the_path_with_that_date_redrawn(formulation):
    """Twin check: the cheap inner inputs (two entries of the outer input changed) equal the learner's own
    features of a path whose date-m value is replaced by the inner draw."""
    learner = HighDimStoppingLearner(HighDimStoppingConfig(**TINY, formulation=formulation, dtype="float64"))
    raw = learner.sample_raw(3, torch.Generator().manual_seed(5))
    inputs, _, _, gains, _ = learner.features(raw)
    new = torch.randn(3, 7, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    inner = _inner_inputs(learner, inputs, gains, new, learner.simulator.terminal_mean_weight_on_last())
    assert inner.shape == (8, 10, 3, 2)
    for m in (1, 4, 7):
        for j in range(2):
            redrawn = raw.clone()
            redrawn[:, m] = new[:, m - 1, j]
            expected = learner.features(redrawn)[0][m]  # date m's inputs, (D + 1, B)
            torch.testing.assert_close(inner[m, :, :, j], expected, rtol=1e-12, atol=1e-12)


def test_brownian_motion_with_immediate_stopping_gives_the_exact_value_zero():
    """H = ½ and networks that always stop: Ṽ = W, Ê_{k−1}[W_k] = W_{k−1} exactly (antithetic draws of a
    linear function), so M = W and max_n (W_n − M_n) = 0 on every path: the bound equals V_0 = 0."""
    learner = _trained(hurst=0.5)
    with torch.no_grad():
        learner.net.norms[-1].bias.fill_(-1e3)  # w ≪ 0 at every date, whatever the input
    learner._calibration = None
    bound = dual_upper_bound(learner, n_paths=64, inner=4, chunk=16)
    assert bound["upper"] == pytest.approx(0.0, abs=1e-5)
    assert bound["lower"] == pytest.approx(0.0, abs=1e-6)  # stops at t = 0, W_0 = 0
    assert bound["lower_plain"] == pytest.approx(0.0, abs=1e-6)


def test_the_bound_lies_above_the_learned_rule_and_is_reproducible():
    learner = _trained(steps=20)
    first = dual_upper_bound(learner, n_paths=512, inner=16)
    assert first["gap"] >= 0.0  # pathwise: max_n (g_n − M_n) ≥ g_τ − M_τ
    assert first["gap"] == pytest.approx(first["upper"] - first["lower"], rel=1e-12)
    # the martingale as control variate: same mean as the plain estimate, smaller error
    assert abs(first["lower"] - first["lower_plain"]) <= 4 * first["lower_plain_stderr"]
    assert first["lower_stderr"] < first["lower_plain_stderr"]
    again = dual_upper_bound(learner, n_paths=512, inner=16, chunk=100)  # chunking does not change the draws' use
    assert again["lower"] == pytest.approx(first["lower"], rel=1e-12)


def test_bad_arguments_are_refused():
    learner = _trained(steps=1)
    with pytest.raises(ValueError, match="inner must be even"):
        dual_upper_bound(learner, inner=5)
    with pytest.raises(ValueError, match="n_paths"):
        dual_upper_bound(learner, n_paths=1)
    with pytest.raises(ValueError, match="n_paths=10000000000.*needs about"):  # refused before drawing a path
        dual_upper_bound(learner, n_paths=10**10)
    basket = HighDimStoppingLearner(HighDimStoppingConfig(problem="basket", dimension=3, n_dates=4, penalty=4.0,
                                                          batch_size=16))
    with pytest.raises(ValueError, match="problem='basket'.*oracle"):
        dual_upper_bound(basket)
