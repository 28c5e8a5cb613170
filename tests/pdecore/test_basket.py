"""The geometric-basket put's exact 1-D equivalent (pdecore.basket; SPEC section 7, issue 17)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pdecore.basket import (SPEC_PRICES, basket_reference, geometric_equivalent, paper_dividends,
                            paper_equivalent, paper_volatilities)


@pytest.mark.parametrize("dimension", [40, 80, 200])
def test_mapping_of_the_paper_basket(dimension):
    # σ_G² = Σσ_i²/d = 8.544/40 for d a multiple of 40; log G drifts at c = 0.2, so q_G = ρ − c − σ_G²/2
    model, option, spot = paper_equivalent(dimension, "main")
    assert model.volatility**2 == pytest.approx(0.2136, rel=1e-12)
    assert model.dividend == pytest.approx(0.6 - 0.2 - 0.1068, rel=1e-12)
    assert (option.strike, spot, model.rate) == (95.0, 100.0, 0.6)
    variant, option, _ = paper_equivalent(dimension, "variant")
    assert variant.volatility**2 == pytest.approx(0.02136, rel=1e-12)
    assert variant.dividend == pytest.approx(0.06 - 0.02 - 0.01068, rel=1e-12)
    assert option.strike == 110.0


def test_correlated_mapping_against_the_covariance():
    rng = np.random.default_rng(0)
    sigma, delta = rng.uniform(0.1, 0.5, 6), rng.uniform(0.0, 0.1, 6)
    matrix = np.full((6, 6), 0.3)
    np.fill_diagonal(matrix, 1.0)
    model = geometric_equivalent(sigma, delta, 0.05, exponent=0.5, correlation=0.3)
    assert model.volatility**2 == pytest.approx(0.25 * sigma @ matrix @ sigma, rel=1e-12)
    # E[G_T] = G_0 e^{(r − q_G)T}: the same as Π E[X_i^a] computed from the joint lognormal moments
    mean_log = 0.5 * np.sum(0.05 - delta - 0.5 * sigma**2)
    assert model.rate - model.dividend == pytest.approx(mean_log + 0.5 * model.volatility**2, rel=1e-12)


@pytest.mark.parametrize("case", ["main", "variant"])
def test_prices_against_spec(case):
    reference = basket_reference(40, case)
    spec = SPEC_PRICES[case]
    # the solver's own error estimate is 6e-6 (main) and 8e-6 (variant); SPEC's QuantLib QD+ digits agree
    assert abs(reference.american - spec["american"]) <= max(2e-5, 3 * reference.american_error_estimate)
    assert reference.european == pytest.approx(spec["european"], abs=1e-6)


def test_european_against_a_monte_carlo_of_the_basket():
    torch = pytest.importorskip("torch")
    from rl.stopping.basket import BasketMarket, BasketSimulator

    simulator = BasketSimulator(BasketMarket(40), n_dates=4)
    log_paths = simulator.sample_log(2**16, torch.Generator().manual_seed(7), dtype=torch.float64)
    payoff = torch.clamp(95.0 - simulator.geometric_mean_log(log_paths)[:, -1], min=0.0) * math.exp(-0.6)
    mean, stderr = float(payoff.mean()), float(payoff.std()) / math.sqrt(payoff.numel())
    assert abs(mean - SPEC_PRICES["main"]["european"]) < 4 * stderr


def test_boundary_mapped_back_to_the_basket():
    reference = basket_reference(40, "main", precision="fast")
    t = 0.5
    level = float(reference.boundary_at(t))
    assert 60.0 < level < 95.0
    # a basket whose geometric mean sits just below / above b(t) is exercised / continued
    for factor, expected in ((0.999, True), (1.001, False)):
        log_x = np.full((1, 40), math.log(level * factor) / math.sqrt(40))
        assert bool(reference.exercise(t, log_x)[0]) is expected


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="case"):
        paper_equivalent(40, "other")
    with pytest.raises(ValueError, match="same length"):
        geometric_equivalent([0.2, 0.3], [0.0], 0.05)
    with pytest.raises(ValueError, match="zero volatility"):
        geometric_equivalent(paper_volatilities(1), paper_dividends(paper_volatilities(1), 0.6, 0.2), 0.6)
