"""The one Gibbs spread density (pdecore.gibbs) against its brute-force twin, and its argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from pdecore._reference.market_making import gibbs_density_reference
from pdecore.gibbs import (argmax_spread, check_spread_bounds, gibbs_moments, gibbs_policy_moments,
                           gibbs_policy_table, gibbs_quantiles, quantile_levels)

A, K, GAMMA, LOW, HIGH = 100.0, 1.5, 0.1, 0.0, 4.0
DELTAS = (-20.0, -2.0, -0.5, 0.0, 0.5, 3.0)


@pytest.fixture(scope="module")
def references():
    # 200k-node trapezoid: error ~1e-9, far below the rule's (cell width 0.004 squared)
    return {d: gibbs_density_reference(d, A, K, GAMMA, (LOW, HIGH), n_quadrature=200_001) for d in DELTAS}


def test_policy_moments_match_the_brute_force_twin(references):
    got = gibbs_policy_moments(np.array(DELTAS), A, K, GAMMA, LOW, HIGH, 1000)
    for i, delta in enumerate(DELTAS):
        ref = references[delta]
        assert abs(got.mean_spread[i] - ref["mean_spread"]) < 2e-5, f"Δ={delta}"
        assert abs(got.rate[i] - ref["rate"]) < 1e-3 * max(1.0, ref["rate"]), f"Δ={delta}"
        assert abs(got.income[i] - ref["income"]) < 1e-3 * max(1.0, ref["income"]), f"Δ={delta}"
        assert abs(got.entropy[i] - ref["entropy"]) < 2e-3, f"Δ={delta}"


def test_hamiltonian_moments_match_the_brute_force_twin(references):
    values, _, spreads = gibbs_moments(np.array(DELTAS), A, K, GAMMA, LOW, HIGH, 4096)
    for i, delta in enumerate(DELTAS):
        ref = references[delta]
        assert abs(values[i] - ref["hamiltonian"]) < 1e-5 * max(1.0, abs(ref["hamiltonian"])), f"Δ={delta}"
        assert abs(spreads[i] - ref["mean_spread"]) < 2e-5, f"Δ={delta}"


def test_the_two_evaluations_share_one_density():
    # same piecewise-exponential density: the mean spreads agree to rounding at equal node sets
    gains = np.linspace(-3.0, 3.0, 13)
    mean_a = gibbs_moments(gains, A, K, GAMMA, LOW, HIGH, 1000)[2]
    mean_b = gibbs_policy_moments(gains, A, K, GAMMA, LOW, HIGH, 1000).mean_spread
    np.testing.assert_allclose(mean_a, mean_b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("delta", (-1.0, 0.4, 2.0))
def test_quantiles_invert_the_reference_cdf(delta):
    levels = quantile_levels(33)
    assert levels[0] == 0.0 and levels[-1] == 1.0 and np.all(np.diff(levels) > 0)
    quantiles = gibbs_quantiles([delta], levels, A, K, GAMMA, LOW, HIGH, 1000)[0]
    assert np.all(np.diff(quantiles) >= 0.0) and quantiles[0] >= LOW and quantiles[-1] <= HIGH
    grid = np.linspace(LOW, HIGH, 200_001)
    log_density = A * np.exp(-K * grid) * (grid + delta) / GAMMA
    density = np.exp(log_density - log_density.max())
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    inner = slice(4, -4)  # away from the extreme tails, where the CDF is flat to rounding
    np.testing.assert_allclose(np.interp(quantiles[inner], grid, cdf), levels[inner], atol=2e-3)


def test_policy_table_is_frozen_and_memoized():
    first = gibbs_policy_table(A, K, GAMMA, LOW, HIGH, 200, 64, 16, 9)
    assert gibbs_policy_table(A, K, GAMMA, LOW, HIGH, 200, 64, 16, 9) is first
    assert first.quantiles.shape == (16, 9)
    with pytest.raises(ValueError):
        first.mean_spread[0] = 0.0


def test_argmax_is_the_clipped_stationary_point():
    gains = np.array([-5.0, 0.0, 0.3, 10.0])
    np.testing.assert_array_equal(argmax_spread(gains, K, 0.0, 2.0), np.clip(1.0 / K - gains, 0.0, 2.0))


@pytest.mark.parametrize("bounds, temperature, match", [((1.0, 0.0), 0.0, "inverted"),
                                                         ((0.0, np.inf), 0.1, "finite"),
                                                         ("ab", 0.0, "pair"),
                                                         ((np.nan, 1.0), 0.0, "spread_bounds")])
def test_spread_bounds_are_refused_by_name(bounds, temperature, match):
    with pytest.raises(ValueError, match=match):
        check_spread_bounds(bounds, temperature)


@pytest.mark.parametrize("args, name", [((-1.0, K, GAMMA), "intensity"), ((A, 0.0, GAMMA), "decay"),
                                        ((A, K, 0.0), "temperature")])
def test_density_parameters_are_refused_by_name(args, name):
    with pytest.raises(ValueError, match=name):
        gibbs_moments(0.0, *args, LOW, HIGH, 64)
    with pytest.raises(ValueError, match=name):
        gibbs_policy_moments([0.0], *args, LOW, HIGH, 64)
