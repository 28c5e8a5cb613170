"""Tests of Merton's problem with proportional costs (pdecore.merton, SPEC section 4).

Reference facts checked: the paper's t = 0 band at SPEC's default market (about −0.50 and −0.35);
the ordering x_s ≤ (1−θ)x_M, (1+θ)x_M ≤ x_b and x_s < x_M < x_b at t = 0; buying stops near the horizon
(x_b = +inf) while the sell boundary tends to (1−θ)x_M (where 𝓖 applied to the sell obstacle changes
sign); the θ^{1/3} shrinking of the band; grid refinement; independence of the insolvency truncation for
the variational inequality and large penalties but not for κ = 5; a band straddling x = 0; bad input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pdecore import DynkinSettings, MertonCosts, MertonResult, MertonSettings, solve_dynkin, solve_merton_costs
from pdecore.merton import merton_boundaries, merton_grid, merton_obstacles
from validation.reference_data import spec_value

DEFAULT = MertonCosts(**spec_value("merton.default_market"))  # SPEC section 4


@pytest.fixture(scope="module")
def default_result() -> MertonResult:
    return solve_merton_costs(DEFAULT)


def test_default_band_matches_the_paper(default_result):
    sell, buy = default_result.band(0.0)
    # SPEC section 4 / the paper's figure: about -0.50 and -0.35
    paper = spec_value("merton.band_t0")
    assert sell == pytest.approx(paper["sell"], abs=0.005), f"x_s(0) = {sell:.4f}"
    assert buy == pytest.approx(paper["buy"], abs=0.005), f"x_b(0) = {buy:.4f}"
    assert default_result.merton_ratio == pytest.approx(DEFAULT.merton_ratio)
    assert sell < default_result.merton_ratio < buy


def test_boundary_ordering_and_behaviour_near_the_horizon(default_result):
    res, theta, x_m = default_result, DEFAULT.cost, DEFAULT.merton_ratio
    before_t = res.times < res.times[-1]
    sell, buy = res.sell_boundary[before_t], res.buy_boundary[before_t]
    assert np.all(sell <= (1 - theta) * x_m + 2e-3), "x_s <= (1-θ) x_M"
    assert np.all(buy >= (1 + theta) * x_m - 2e-3), "x_b >= (1+θ) x_M"
    assert np.all(sell < buy)
    # near T buying only adds a round trip of costs: the buy region is absent (+inf) ...
    assert np.isinf(res.buy_boundary[-2]) and res.buy_boundary[-2] > 0
    assert np.all(np.isfinite(res.buy_boundary[:10]))
    # ... while the sell region shrinks to {x <= (1-θ)x_M}, where 𝓖(sell obstacle) changes sign
    assert res.sell_boundary[-2] == pytest.approx((1 - theta) * x_m, abs=3e-3)
    # at t = T everything is liquidated: the sell region covers the grid
    assert res.sell_boundary[-1] == np.inf
    # before vanishing, the buy boundary crosses x = 0 onto the other half-line
    finite_buy = res.buy_boundary[np.isfinite(res.buy_boundary)]
    assert finite_buy.max() > 0.0 > finite_buy.min()
    # the boundaries move monotonically towards the horizon (band widens as t -> T on the buy side)
    finite = np.isfinite(res.buy_boundary)
    assert np.all(np.diff(res.buy_boundary[finite]) >= -1e-4)


def test_value_interpolation_and_obstacles(default_result):
    res = default_result
    x = np.array([-0.6, -0.44, -0.3, 0.0, 0.5])
    sell, buy = merton_obstacles(x, DEFAULT.cost)
    assert np.allclose(res.value(DEFAULT.maturity, x), sell, atol=1e-4)  # terminal liquidation value
    w0 = res.value(0.0, x)
    # linear interpolation of w between nodes vs the curved obstacles: O(h²) ≈ 1e-6 here
    assert np.all(w0 >= np.minimum(sell, buy) - 1e-5) and np.all(w0 <= np.maximum(sell, buy) + 1e-5)
    assert res.value(0.0, 0.0) == 0.0
    # in the sell region w is the sell obstacle, in the buy region the buy obstacle
    assert res.value(0.0, -0.6) == pytest.approx(float(merton_obstacles(-0.6, DEFAULT.cost)[0]), abs=2e-5)
    assert res.value(0.0, -0.3) == pytest.approx(float(merton_obstacles(-0.3, DEFAULT.cost)[1]), abs=2e-5)
    with pytest.raises(ValueError, match="t must lie in"):
        res.value(2.0, 0.0)
    with pytest.raises(ValueError, match="x must lie in the grid"):
        res.value(0.0, -0.999)


def test_band_shrinks_like_cost_to_the_one_third():
    widths = {}
    for cost in (1e-3, 1e-4):
        res = solve_merton_costs(MertonCosts(0.168, 0.008, 0.3, cost, 1.0))
        sell, buy = res.band(0.0)
        assert sell < res.merton_ratio < buy, f"θ={cost}: band [{sell}, {buy}] must contain x_M"
        widths[cost] = buy - sell
    ratio = widths[1e-3] / widths[1e-4]
    assert abs(ratio / 10 ** (1 / 3) - 1) < 0.10, f"width ratio {ratio:.4f} vs 10^(1/3) = {10 ** (1 / 3):.4f}"


def test_boundaries_converge_under_grid_refinement():
    coarse = solve_merton_costs(DEFAULT)                       # default grid: 600 x 100
    fine = solve_merton_costs(DEFAULT, n_space=2400, n_time=400)
    # the graded levels of the coarse grid are a subset of the fine grid's: compare level by level
    index = np.searchsorted(fine.times, coarse.times)
    assert np.allclose(fine.times[index], coarse.times)
    for name in ("sell", "buy"):
        a = getattr(coarse, f"{name}_boundary")
        b = getattr(fine, f"{name}_boundary")[index]
        assert abs(a[0] - b[0]) < 2e-4, f"{name} boundary at t=0: {a[0]:.5f} vs {b[0]:.5f}"
        # up to t = 0.6 the buy boundary stays where the grid is concentrated; later it runs off to +inf
        early = coarse.times <= 0.6
        assert np.all(np.isfinite(a[early]))
        err = np.max(np.abs(a[early] - b[early]))
        assert err < 1e-3, f"{name} boundary: default vs 4x refined grid differ by {err:.2e}"


def _truncated_solve(model, x, penalty):
    sell, buy = merton_obstacles(x, model.cost)
    sigma2 = model.volatility**2
    res = solve_dynkin(x, diffusion=0.5 * sigma2 * x**2, drift=(model.rate - model.drift + sigma2) * x,
                       lower_obstacle=np.minimum(sell, buy), upper_obstacle=np.maximum(sell, buy), terminal=sell,
                       maturity=model.maturity, penalty=penalty, left_boundary="dirichlet",
                       settings=DynkinSettings(n_time=100))
    sell_b, buy_b, _, _ = merton_boundaries(x, res.values[:1], model.cost, hard=penalty is None)
    return res.values[0], sell_b[0], buy_b[0]


@pytest.mark.parametrize("penalty, independent", [(None, True), (50.0, True), (500.0, True), (5.0, False)])
def test_insolvency_truncation(penalty, independent):
    """Same nodes, cut at two places near insolvency: the VI and large penalties do not notice, κ = 5 does."""
    x = merton_grid(DEFAULT, 800, insolvency_margin=0.01)  # starts 1% of the way from -(1-θ) to x_M
    cut = x[np.searchsorted(x, -0.8):]                      # the same nodes, truncated at x = -0.8
    (w_near, sell_near, buy_near), (w_far, sell_far, buy_far) = (_truncated_solve(DEFAULT, x, penalty),
                                                                 _truncated_solve(DEFAULT, cut, penalty))
    shift = max(abs(sell_near - sell_far), abs(buy_near - buy_far))
    window = (x >= -0.6) & (x <= -0.2)
    value_shift = np.max(np.abs(w_near[window] - np.interp(x[window], cut, w_far)))
    if independent:
        assert shift < 1e-4 and value_shift < 5e-5, f"κ={penalty}: boundary moved {shift:.2e}, value {value_shift:.2e}"
    else:
        assert shift > 1e-2, f"κ={penalty}: the truncation should matter, boundary moved only {shift:.2e}"


def test_default_solver_margins_agree_for_the_variational_inequality():
    bands = [solve_merton_costs(DEFAULT, settings=MertonSettings(insolvency_margin=m)).band(0.0)
             for m in (0.02, 0.05, 0.2)]
    spread = np.ptp(np.array(bands), axis=0)
    assert np.all(spread < 1e-3), f"VI band depends on the insolvency margin: {bands}"
    kappa5 = [solve_merton_costs(DEFAULT, penalty=5.0, settings=MertonSettings(insolvency_margin=m)).band(0.0)[0]
              for m in (0.02, 0.2)]
    assert abs(kappa5[0] - kappa5[1]) > 1e-2


def test_band_straddling_zero_and_crossing_half_lines():
    # π_M slightly above 1: x_M = -0.01, the band contains x = 0
    model = MertonCosts(drift=0.008 + 0.09 / 0.99, rate=0.008, volatility=0.3, cost=0.005, maturity=1.0)
    res = solve_merton_costs(model)
    sell, buy = res.band(0.0)
    assert sell < 0.0 < buy, f"band [{sell}, {buy}] should straddle 0"
    assert sell < res.merton_ratio < buy
    # the obstacles touch at 0 and w(t, 0) = 0 at all times
    assert np.all(res.values[:, res.grid == 0.0] == 0.0)
    # x_M > 0 (no leverage): the sell boundary lies on x > 0 at the horizon
    model_pos = MertonCosts(drift=0.008 + 0.09 / 1.05, rate=0.008, volatility=0.3, cost=0.005, maturity=1.0)
    res_pos = solve_merton_costs(model_pos)
    assert res_pos.merton_ratio > 0
    assert res_pos.sell_boundary[-2] > 0
    assert res_pos.sell_boundary[0] < res_pos.merton_ratio < res_pos.buy_boundary[0]


def test_exploratory_and_penalized_variants_run(default_result):
    pen = solve_merton_costs(DEFAULT, penalty=5.0)
    exp = solve_merton_costs(DEFAULT, penalty=5.0, temperature=1e-2)
    assert pen.penalty == 5.0 and exp.temperature == 1e-2
    for res in (pen, exp):
        sell, buy = res.band(0.0)
        assert sell < buy and math.isfinite(sell) and math.isfinite(buy)
    # κ = 5 is a weak penalty: its band is narrower than the VI band
    assert pen.band(0.0)[0] > default_result.band(0.0)[0]
    # exploratory probabilities: ≥ ½ exactly on the regions, strictly between 0 and 1
    p_sell, p_buy = exp.sell_probability(0), exp.buy_probability(0)
    interior = exp.grid != 0.0
    assert np.array_equal((p_sell >= 0.5)[interior], exp.sell_region[0][interior])
    assert np.array_equal((p_buy >= 0.5)[interior], exp.buy_region[0][interior])
    assert np.all((p_sell >= 0) & (p_sell <= 1)) and np.any((p_sell > 0.01) & (p_sell < 0.99))
    assert np.array_equal(default_result.sell_probability(0)[interior] == 1.0, default_result.sell_region[0][interior])


def test_frictionless_limit_is_the_merton_ratio():
    res = solve_merton_costs(MertonCosts(0.168, 0.008, 0.3, 0.0, 1.0), n_space=200, n_time=20)
    assert np.all(res.sell_boundary == res.merton_ratio) and np.all(res.buy_boundary == res.merton_ratio)


def test_plot_states_the_infinite_convention(default_result):
    ax = default_result.plot()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("+inf" in label for label in labels), labels
    assert any("x_M" in label for label in labels)
    assert "region absent" in " ".join(t.get_text() for t in ax.texts)


@pytest.mark.parametrize("kwargs, match", [
    (dict(cost=1.0), "cost must lie in"),
    (dict(cost=-0.1), "cost must lie in"),
    (dict(volatility=0.0), "volatility must be > 0"),
    (dict(maturity=-1.0), "maturity must be > 0"),
    (dict(drift=float("nan")), "drift must be finite"),
    (dict(rate=float("nan")), "rate must be finite"),
    (dict(drift=0.005), "Merton fraction"),
])
def test_merton_costs_rejects_bad_input(kwargs, match):
    base = dict(drift=0.168, rate=0.008, volatility=0.3, cost=0.005, maturity=1.0)
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MertonCosts(**base)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_space=10), "n_space must be >= 21"),
    (dict(n_time=0), "n_time must be >= 1"),
    (dict(temperature=-1.0), "temperature must be >= 0"),
    (dict(temperature=0.1), "needs a finite penalty"),
    (dict(penalty=0.0), "penalty must be > 0"),
    (dict(insolvency_margin=1.5), "insolvency_margin must lie in"),
])
def test_solve_merton_costs_rejects_bad_numerics(kwargs, match):
    # numerics other than the grid sizes live in MertonSettings, which validates them on construction
    numerics = {key: kwargs.pop(key) for key in list(kwargs) if key == "insolvency_margin"}
    with pytest.raises(ValueError, match=match):
        solve_merton_costs(DEFAULT, settings=MertonSettings(**numerics) if numerics else None, **kwargs)


def test_solve_merton_costs_rejects_insolvent_merton_ratio_and_wrong_model():
    # π_M = 400 > 1/θ: x_M = -0.9975 < -(1-θ)
    with pytest.raises(ValueError, match="insolvency ratio"):
        solve_merton_costs(MertonCosts(drift=0.008 + 400 * 0.09, rate=0.008, volatility=0.3, cost=0.005, maturity=1))
    with pytest.raises(ValueError, match="MertonCosts"):
        solve_merton_costs({"drift": 0.168})


def test_result_carries_diagnostics_and_read_only_arrays():
    res = solve_merton_costs(DEFAULT, n_space=101, n_time=10)
    diag = res.diagnostics
    assert diag.success and diag.n_space == 101 == res.grid.size and diag.n_time == 10
    assert diag.total_iterations == res.dynkin.total_newton_iterations and diag.wall_seconds > 0
    for name in ("grid", "times", "values", "sell_boundary", "buy_boundary", "sell_obstacle", "buy_obstacle",
                 "sell_region"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(res, name)[0] = 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_space=10), "n_space must be >= 21"),
    (dict(tol=-1.0), "tol must be > 0"),
    (dict(max_iter=0), "max_iter must be >= 1"),
    (dict(scheme=None), "scheme must be a ThetaScheme"),
])
def test_merton_settings_reject_bad_numerics(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MertonSettings(**kwargs)
