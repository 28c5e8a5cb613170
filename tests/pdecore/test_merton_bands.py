r"""Merton's problem with costs against the exact infinite-horizon band (issue 11).

Exact band (Davis & Norman 1990; Shreve & Soner 1994; log utility). Over a long horizon the boundaries
of ``w = xφ_x`` become stationary and ``w`` solves, inside the band ``(x_s, x_b)``,

.. math::  𝓖w = ½σ²x²w'' + (r − α + σ²)xw' = 0,

an Euler equation with solutions ``w = A + B|x|^p``, ``p = 2π_M − 1`` (the roots of
``½σ²p(p − 1) + (r − α + σ²)p = 0`` are 0 and ``1 − 2(r − α + σ²)/σ² = 2(α − r)/σ² − 1``). ``w`` is
``C¹`` (the value function of the singular control problem is ``C²``), so it meets the sell obstacle
``x/(x + 1 − θ)`` at ``x_s`` and the buy obstacle ``x/(x + 1 + θ)`` at ``x_b`` with value and slope:
four equations for ``A, B, x_s, x_b``. ``A, B`` are eliminated by the two value conditions and the two
slope conditions are solved for ``(x_s, x_b)`` by ``scipy.optimize.fsolve`` from the asymptotic band.
(``π_M = ½`` gives ``p = 0``, where the second solution is ``log|x|``: not used here.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import fsolve

from pdecore import MertonCosts
from pdecore.merton import asymptotic_band_halfwidth, far_field_start, solve_merton_costs


def exact_band(model: MertonCosts) -> tuple[float, float]:
    """The stationary smooth-fit band ``(x_s, x_b)`` of the module docstring."""
    pi, theta = model.merton_fraction, model.cost
    x_m = model.merton_ratio
    power = 2.0 * pi - 1.0
    assert abs(power) > 1e-6, "pi_M = 1/2 needs the log solution"

    def sell(x):
        return x / (x + 1.0 - theta)

    def buy(x):
        return x / (x + 1.0 + theta)

    def sell_slope(x):
        return (1.0 - theta) / (x + 1.0 - theta) ** 2

    def buy_slope(x):
        return (1.0 + theta) / (x + 1.0 + theta) ** 2

    def g(x):
        return abs(x) ** power

    def g_slope(x):
        return power * abs(x) ** (power - 1.0) * math.copysign(1.0, x)

    def slope_conditions(u):
        x_s, x_b = u
        b = (sell(x_s) - buy(x_b)) / (g(x_s) - g(x_b))  # from the two value conditions
        return [b * g_slope(x_s) - sell_slope(x_s), b * g_slope(x_b) - buy_slope(x_b)]

    half = asymptotic_band_halfwidth(model)
    solution, _, status, message = fsolve(slope_conditions, [x_m - half, x_m + half], full_output=True, xtol=1e-14)
    assert status == 1 or max(abs(v) for v in slope_conditions(solution)) < 1e-12, message
    return float(solution[0]), float(solution[1])


MARKETS = [  # (drift, rate, volatility, cost): x_M < 0 and x_M > 0, small and large costs
    (0.168, 0.008, 0.3, 0.005),   # SPEC default market, x_M = -0.4375
    (0.168, 0.008, 0.3, 0.001),
    (0.168, 0.008, 0.3, 0.02),
    (0.12, 0.02, 0.25, 0.005),    # x_M = -0.375
    (0.08, 0.02, 0.3, 0.01),      # x_M = 0.5
    (0.08, 0.02, 0.3, 0.001),
]


@pytest.mark.parametrize("market", MARKETS, ids=[str(m) for m in MARKETS])
def test_long_horizon_band_matches_the_exact_infinite_horizon_band(market):
    """Measured |difference| at t = 0 of a 20-year problem on the default grid: at most 3e-4."""
    model = MertonCosts(*market, maturity=20.0)
    x_s, x_b = exact_band(model)
    assert x_s < (1 - model.cost) * model.merton_ratio + 1e-9 and x_b > (1 + model.cost) * model.merton_ratio - 1e-9
    got_s, got_b = solve_merton_costs(model).band(0.0)
    assert abs(got_s - x_s) <= 1e-3, (x_s, got_s)
    assert abs(got_b - x_b) <= 1e-3, (x_b, got_b)


def test_asymptotic_half_width_constant():
    """(x_b − x_s)/2 of the exact band over (1 + x_M)² (3/2 π²(1−π)² θ)^{1/3} tends to 1 as θ → 0
    (0.998 at θ = 1e-4); with the former constant ¾ the ratio would tend to 2^{1/3} ≈ 1.26."""
    ratios = []
    for cost in (1e-3, 1e-4):
        model = MertonCosts(0.168, 0.008, 0.3, cost, 1.0)
        x_s, x_b = exact_band(model)
        ratios.append(0.5 * (x_b - x_s) / asymptotic_band_halfwidth(model))
    assert abs(ratios[-1] - 1.0) < 0.01, ratios
    assert abs(ratios[-1] - 1.0) < abs(ratios[0] - 1.0), ratios


@pytest.mark.parametrize("market", [(0.168, 0.008, 0.3, 0.005), (0.08, 0.02, 0.3, 0.01), (0.168, 0.008, 0.3, 0.05),
                                    (0.04, 0.02, 0.2, 0.005)], ids=["default", "x_M>0", "wide band", "x_M=1"])
def test_boundaries_are_read_from_the_contact_sets(market):
    """The reported buy boundary is the left end of the buy contact set right of the band inside the
    trusted range ``x < x_max/2``; the region is reported absent (``+inf``) exactly when that set is
    empty; the sell boundary is the right end of the sell contact set. No false or vanishing boundary."""
    model = MertonCosts(*market, maturity=1.0)
    result = solve_merton_costs(model)
    x = result.grid
    far = far_field_start(x[-1])
    buy_region, sell_region = result.buy_region, result.sell_region
    for j in range(len(result.times) - 1):
        # (nodes within 1e-9 of x = 0 touch both obstacles to rounding: not a region of their own)
        trusted_buy = np.nonzero(buy_region[j] & (x < far) & (x > result.sell_boundary[j]) & (np.abs(x) > 1e-9))[0]
        if trusted_buy.size == 0:
            assert result.buy_boundary[j] == np.inf, (j, result.times[j], result.buy_boundary[j])
            continue
        first = trusted_buy[0]
        # within a cell of the first contact node (the smooth-fit read-out extrapolates √gap)
        assert x[first - 1] - 1e-12 <= result.buy_boundary[j] <= x[first + 1] + 1e-12, (
            j, result.times[j], result.buy_boundary[j], x[first - 1], x[first])
        sell_nodes = np.nonzero(sell_region[j])[0]
        if sell_nodes.size:
            last = sell_nodes[sell_nodes < first][-1] if np.any(sell_nodes < first) else None
            if last is not None:
                assert x[last - 1] - 1e-12 <= result.sell_boundary[j] <= x[last + 1] + 1e-12


def test_default_market_buy_region_lasts_as_its_contact_set():
    """Issue 11: the buy boundary was reported +inf from t ≈ 0.88 although w touched the buy obstacle on
    [0.16, 9.7]; the buy region lasts to t ≈ 0.94."""
    result = solve_merton_costs(MertonCosts(0.168, 0.008, 0.3, 0.005, 1.0))
    finite = np.isfinite(result.buy_boundary[:-1])
    last_buy = result.times[:-1][finite].max()
    assert 0.90 <= last_buy <= 0.96, last_buy
    assert np.all(np.isfinite(result.sell_boundary[:-1]))


def test_finite_penalty_band_depends_on_the_insolvency_truncation():
    """κ = 5 cannot hold w near the sell obstacle, which tends to −∞ at insolvency: its sell edge moves
    with the insolvency margin (issue 11: −0.434 / −0.426 / −0.409 / −0.380 for margins 0.2 / 0.05 /
    0.01 / 0.002) while the variational inequality does not. Stated in solve_merton_costs's docstring."""
    from pdecore.merton import MertonSettings

    model = MertonCosts(0.168, 0.008, 0.3, 0.005, 1.0)
    edges_kappa, edges_vi = [], []
    for margin in (0.2, 0.01):
        settings = MertonSettings(insolvency_margin=margin)
        edges_kappa.append(solve_merton_costs(model, penalty=5.0, settings=settings).band(0.0)[0])
        edges_vi.append(solve_merton_costs(model, settings=settings).band(0.0)[0])
    assert abs(edges_kappa[0] - edges_kappa[1]) > 0.01, edges_kappa
    assert abs(edges_vi[0] - edges_vi[1]) < 2e-3, edges_vi
