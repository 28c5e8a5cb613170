"""Inventory-grid market-making HJB: kernels vs NumPy twins, the expm_multiply closed form, the RK4
order and stability monitor, the memory guard and the result API (SPEC section 5)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pdecore import ConvergenceError, MarketMakingModel, quadratic_approximation, solve_market_making
from pdecore._reference.market_making import (closed_form_values, rhs_reference, solve_reference)
from pdecore.gibbs import _gibbs_moments_fast, deterministic_quotes, gibbs_moments
from pdecore.inventory_grid import inventory_axis, inventory_mesh, inventory_states, inventory_strides


def correlated_model(n, *, risk_aversion=0.5, max_inventory=None, horizon=1.0, **overrides):
    """Unbounded, deterministic, one common k: the closed form applies. Correlated noise."""
    cov = 0.04 * (0.6 * np.ones((n, n)) + 0.4 * np.eye(n))
    fields = dict(noise_cov=cov, terminal_penalty=0.01, risk_aversion=risk_aversion,
                  max_inventory=max_inventory or {1: 20, 2: 8, 3: 4}[n],
                  spread_bounds=(-math.inf, math.inf))
    fields.update(overrides)
    return MarketMakingModel(100.0, 0.02, (100.0, 105.0, 95.0)[:n], (30.0,) * n, horizon,
                             (10.0, 8.0, 12.0)[:n], (9.0, 11.0, 10.0)[:n], 1.5, **fields)


TERMINAL = np.array([0.05, 0.03, 0.02])


# ------------------------------------------------------------------ closed form and order
@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("risk_aversion", [0.0, 0.5])
def test_matches_expm_multiply_closed_form(n, risk_aversion):
    """θ(0, ·) = log(expm(MT) e^{kθ(T)})/k to 1e-7 relative on the whole grid (n = 1, 2, 3)."""
    model = correlated_model(n, risk_aversion=risk_aversion)
    result = solve_market_making(model, n_time=1000, terminal_coeffs=TERMINAL[:n])
    exact = closed_form_values(model, [0.0, 0.5], terminal_coeffs=TERMINAL[:n])
    for row, t in enumerate((0.0, 0.5)):
        numeric = result.values[np.searchsorted(result.times, t)]
        error = np.max(np.abs(numeric - exact[row])) / np.max(np.abs(exact[row]))
        assert error < 1e-7, f"n={n} φ={risk_aversion} t={t}: relative error {error:.3e}"


def test_rk4_observed_order_is_four():
    model = correlated_model(2)
    exact = closed_form_values(model, [0.0], terminal_coeffs=TERMINAL[:2])[0]
    errors = []
    for n_time in (25, 50, 100):
        result = solve_market_making(model, n_time=n_time, n_substeps=1, terminal_coeffs=TERMINAL[:2])
        errors.append(np.max(np.abs(result.values[0] - exact)))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((orders > 3.7) & (orders < 4.4)), f"observed orders {orders}, errors {errors}"


def test_exact_problem_values_are_not_trivial():
    """Guard against a vacuous closed-form test: cross terms and time dependence are present."""
    model = correlated_model(2)
    exact = closed_form_values(model, [0.0], terminal_coeffs=TERMINAL[:2])[0]
    uncorrelated = closed_form_values(correlated_model(2, risk_aversion=0.0), [0.0],
                                      terminal_coeffs=TERMINAL[:2])[0]
    assert np.max(np.abs(exact - uncorrelated)) > 1e-2
    assert np.ptp(exact) > 1.0


# ------------------------------------------------------------------ kernels vs twins
@pytest.mark.parametrize("temperature, bounds", [(0.0, (0.0, 1.0)), (0.0, (-math.inf, math.inf)),
                                                 (0.3, (0.0, 2.0))])
def test_kernel_matches_numpy_twin(temperature, bounds):
    model = MarketMakingModel(100.0, 0.02, (100.0, 105.0), (30.0, 20.0), 1.0, (8.0, 5.0), (6.0, 7.0),
                              (1.5, 2.0), noise_cov=[[0.04, 0.02], [0.02, 0.03]], terminal_penalty=0.02,
                              risk_aversion=0.3, max_inventory=4, spread_bounds=bounds,
                              temperature=temperature)
    n_time = 20 if temperature == 0.0 else 6  # the γ > 0 twin integrates directly: keep it short
    numba_result = solve_market_making(model, n_time=n_time, n_quadrature=256)
    times, values = solve_reference(model, n_time, numba_result.stats["n_substeps"], n_quadrature=256)
    np.testing.assert_allclose(numba_result.times, times)
    scale = np.max(np.abs(values))
    tolerance = 1e-12 if temperature == 0.0 else 1e-8  # γ > 0: Hermite table vs direct quadrature
    assert np.max(np.abs(numba_result.values - values)) / scale < tolerance


def test_rhs_kernel_matches_twin_on_random_values(rng):
    from pdecore._kernels.hjb import hjb_rhs

    model = MarketMakingModel(100.0, 0.02, (100.0, 105.0, 95.0), (30.0,) * 3, 1.0, (8.0, 5.0, 3.0), 6.0,
                              (1.5, 2.0, 1.0), noise_cov=np.eye(3) * 0.02, risk_aversion=0.7,
                              max_inventory=3, spread_bounds=(0.1, 3.0))
    coords, strides = inventory_states(3, 3), inventory_strides(3, 3)
    theta = rng.normal(size=coords.shape[0])
    out, work, rate = np.empty_like(theta), np.empty_like(theta), np.zeros(1)
    running = 0.35 * np.einsum("si,ij,sj->s", coords, model.noise_cov_array(), coords)
    intensity = np.stack([model.intensity_bid_array(), model.intensity_ask_array()], axis=1)
    decay = model.decay_array()
    empty = np.zeros((3, 2, 2))
    status = hjb_rhs(theta, strides, 3, running, intensity, decay, 0.1, 3.0, np.exp(-decay * 0.1),
                     np.exp(-decay * 3.0), False, 0.0, 1.0, 0.0, 1.0, empty, empty, empty, out, work, rate)
    assert status == 0
    expected = rhs_reference(theta.reshape((7, 7, 7)), model).reshape(-1)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert rate[0] > 0


def test_gibbs_kernel_matches_numpy_rule():
    gains = np.linspace(-30.0, 30.0, 301)
    slow = gibbs_moments(gains, 100.0, 1.5, 0.1, 0.0, 4.0, 512)
    fast = _gibbs_moments_fast(gains, 100.0, 1.5, 0.1, 0.0, 4.0, 512)
    for name, a, b in zip(("H", "rate", "spread"), slow, fast):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12, err_msg=name)


def test_gibbs_rule_against_adaptive_quadrature():
    """The exponential-linear rule converges to scipy's adaptive quad (second order in the spacing)."""
    from scipy.integrate import quad

    for gain in (-3.0, -0.5, 0.0, 0.4, 2.0):
        f = lambda d: math.exp(100.0 * math.exp(-1.5 * d) * (d + gain) / 0.1 - top)  # noqa: E731
        grid = np.linspace(0.0, 4.0, 40001)
        top = float(np.max(100.0 * np.exp(-1.5 * grid) * (grid + gain) / 0.1))
        breaks = [max(0.0, min(4.0, 1 / 1.5 - gain)), max(0.0, min(4.0, -gain))]
        integral, _ = quad(f, 0.0, 4.0, points=breaks,
                           limit=500, epsabs=0, epsrel=1e-12)
        exact = 0.1 * (top + math.log(integral))
        coarse = gibbs_moments(gain, 100.0, 1.5, 0.1, 0.0, 4.0, 1024)[0]
        fine = gibbs_moments(gain, 100.0, 1.5, 0.1, 0.0, 4.0, 4096)[0]
        assert abs(fine - exact) < 1e-4, f"gain {gain}: {fine} vs {exact}"
        assert abs(fine - exact) <= abs(coarse - exact) / 8 + 1e-12, f"gain {gain}: not second order"


def test_gibbs_derivative_is_mean_rate():
    h = 1e-5
    values, rates, spreads = gibbs_moments(np.array([0.3 - h, 0.3, 0.3 + h]), 50.0, 2.0, 0.2, 0.0, 3.0, 256)
    assert abs((values[2] - values[0]) / (2 * h) - rates[1]) < 1e-6 * rates[1]
    assert 0.0 < spreads[1] < 3.0


def test_deterministic_argmax_against_brute_force():
    grid = np.linspace(0.0, 2.0, 200001)
    for gain in (-3.0, -0.2, 0.0, 0.5, 1.0):
        spread, rate, value = deterministic_quotes(gain, 40.0, 1.5, 0.0, 2.0)
        objective = 40.0 * np.exp(-1.5 * grid) * (grid + gain)
        assert abs(value - objective.max()) < 1e-8
        assert abs(spread - grid[objective.argmax()]) < 1e-4


# ------------------------------------------------------------------ stability, errors, API
def test_stability_monitor_refines_or_raises():
    model = MarketMakingModel.paper_defaults(1, temperature=0.0, max_inventory=10, horizon=2.0)
    with pytest.raises(ConvergenceError, match="n_substeps"):
        solve_market_making(model, n_time=20, n_substeps=1)  # dt·R ≈ 11 > 1.39
    result = solve_market_making(model, n_time=20)
    assert result.stats["max_rate_dt"] <= 1.39
    assert np.all(np.isfinite(result.values))
    twice = solve_market_making(model, n_time=20, n_substeps=2 * result.stats["n_substeps"])
    # the default step (dt·R ≤ 1) is accurate to ~1e-4 relative even with the clipping kinks of H
    assert np.max(np.abs(twice.values - result.values)) < 1e-4 * np.max(np.abs(result.values))


def test_grid_too_large_raises_with_estimate():
    model = MarketMakingModel.paper_defaults(3, max_inventory=400, temperature=0.0)
    with pytest.raises(ValueError, match=r"max_inventory=400.*GiB.*quadratic_approximation"):
        solve_market_making(model)


def test_bad_solver_arguments():
    model = MarketMakingModel.paper_defaults(1, max_inventory=3, temperature=0.0)
    for kwargs, word in ((dict(n_time=0), "n_time"), (dict(n_substeps=0), "n_substeps"),
                         (dict(terminal_coeffs=[1.0, 2.0]), "terminal_coeffs"),
                         (dict(terminal_coeffs=[-1.0]), "terminal_coeffs")):
        with pytest.raises(ValueError, match=word):
            solve_market_making(model, **kwargs)
    with pytest.raises(ValueError, match="MarketMakingModel"):
        solve_market_making("model")


@pytest.fixture(scope="module")
def exploratory_result():
    model = MarketMakingModel.paper_defaults(2, max_inventory=6, horizon=1.0, risk_aversion=1.0,
                                             noise_cov=[[0.04, 0.03], [0.03, 0.04]])
    return solve_market_making(model, n_time=40)


def test_result_api(exploratory_result):
    result = exploratory_result
    model = result.model
    assert result.values.shape == (41, 13, 13)
    assert result.inventory_grid[0] == -6 and result.inventory_grid[-1] == 6
    assert result.times[0] == 0.0 and result.times[-1] == model.horizon
    np.testing.assert_allclose(result.theta(model.horizon, (2, -1)), -(result.terminal_coeffs @ [4, 1]))
    # between saved times: linear interpolation of θ, hence of nothing surprising
    t0, t1 = result.times[3], result.times[4]
    middle = result.theta(0.5 * (t0 + t1), (1, 1))
    assert middle == pytest.approx(0.5 * (result.theta(t0, (1, 1)) + result.theta(t1, (1, 1))))
    # batch calls agree with scalar calls
    batch = np.array([[0, 0], [2, -3], [-6, 6]])
    bids = result.bid_spread(0.3, batch, 1)
    assert bids.shape == (3,)
    assert bids[0] == pytest.approx(result.bid_spread(0.3, (0, 0), 1))
    assert math.isnan(result.bid_spread(0.3, (-6, 6), 1))  # no bid at Q̄
    assert math.isnan(result.ask_spread(0.3, (-6, 0), 0))  # no ask at −Q̄
    # policy table agrees with the accessors at saved times
    times, grid, table_bid, table_ask = result.policy_table()
    assert table_bid.shape == (41, 13, 13, 2)
    j = 7
    assert table_bid[j, 6 + 2, 6 - 3, 0] == pytest.approx(result.bid_spread(times[j], (2, -3), 0), rel=1e-12)
    assert table_ask[j, 6 + 2, 6 - 3, 1] == pytest.approx(result.ask_spread(times[j], (2, -3), 1), rel=1e-12)
    for bad in ((7, 0), (0,), (0.5, 0)):
        with pytest.raises(ValueError, match="inventory"):
            result.theta(0.0, bad)
    with pytest.raises(ValueError, match="t must"):
        result.theta(2.0, (0, 0))
    d = result.stats
    assert d["max_rate_dt"] <= d["stability_limit"] and d["hamiltonian_table_error"] < 1e-8


def test_policy_density_integrates_to_one(exploratory_result):
    result = exploratory_result
    low, high = result.model.spread_bounds
    for inventory, side in (((0, 0), "bid"), ((3, -2), "ask"), ((-5, 5), "bid"), ((5, 5), "ask")):
        spreads, density = result.policy_density(0.2, inventory, 0, side)
        assert spreads[0] == low and spreads[-1] == high and np.all(density >= 0)
        # piecewise-exponential integral between nodes (the rule the density is normalized under)
        step = spreads[1] - spreads[0]
        log_density = np.log(np.maximum(density, 1e-300))
        slope = np.diff(log_density)
        pieces = np.where(np.abs(slope) > 1e-9, np.diff(density) / np.where(slope == 0, 1, slope),
                          density[:-1])
        assert abs(step * pieces.sum() - 1.0) < 1e-9
        assert abs(np.trapezoid(density, spreads) - 1.0) < 5e-3
        mean = np.trapezoid(spreads * density, spreads)
        expected = getattr(result, f"{side}_spread")(0.2, inventory, 0)
        assert low <= expected <= high
        assert abs(mean - expected) < 5e-3
    with pytest.raises(ValueError, match="not quoted"):
        result.policy_density(0.2, (6, 0), 0, "bid")


def test_plots_return_axes(exploratory_result):
    import matplotlib.pyplot as plt

    ax = exploratory_result.plot_spreads_vs_inventory(t=0.0, option=1)
    assert ax.get_xlabel().startswith("inventory")
    _, other = plt.subplots()
    assert exploratory_result.plot_spreads_vs_time(other, inventory=(3, 0)) is other
    assert len(other.lines) == 2


def test_table_range_is_widened_when_gains_leave_it(monkeypatch):
    """A Hamiltonian table that is too narrow is detected by the kernel and rebuilt wider."""
    import pdecore.market_making as engine

    model = MarketMakingModel.paper_defaults(1, max_inventory=8, horizon=0.5)
    reference = solve_market_making(model, n_time=10)
    monkeypatch.setattr(engine, "_gain_bound", lambda *_: 0.05)
    narrow = solve_market_making(model, n_time=10)
    assert narrow.stats["gain_bound"] >= 0.2  # widened at least once
    assert narrow.stats["n_substeps"] == reference.stats["n_substeps"]
    np.testing.assert_allclose(narrow.values, reference.values, rtol=1e-8, atol=1e-8)


def test_inventory_grid_layout_is_the_c_order_reshape():
    # one layout for the kernels, the tables and the RL policy: row r of the states is flat index r,
    # flat index = Σ (q_i + Q̄) s_i, and the mesh is the (2Q̄+1,)*n view of the same numbering
    states, strides = inventory_states(3, 2), inventory_strides(3, 2)
    assert states.shape == (125, 3) and states.dtype == np.int64
    np.testing.assert_array_equal((states + 2) @ strides, np.arange(125))
    mesh = inventory_mesh(3, 2)
    for i in range(3):
        np.testing.assert_array_equal(mesh[i].reshape(-1), states[:, i])
    np.testing.assert_array_equal(inventory_axis(2), np.arange(-2, 3))
    with pytest.raises(ValueError, match="max_inventory"):
        inventory_states(2, -1)


# ------------------------------------------------------------------ budgets and bad input (issue 12)
def test_huge_quadrature_and_time_grid_refused_before_allocation(monkeypatch):
    """TOML ``n_quadrature = 1000000000`` and a huge ``n_time`` are refused from the arguments, with the
    estimate and the fix, even where ``memory_limit`` is lifted (the pdecore.budget applies)."""
    monkeypatch.setenv("PDERL_MEMORY_BUDGET", "1G")
    for temperature in (0.0, 0.1):
        model = MarketMakingModel.paper_defaults(1, max_inventory=3, temperature=temperature)
        with pytest.raises(ValueError, match=r"n_quadrature=1000000000 needs about .*GiB.*PDERL_MEMORY_BUDGET"):
            solve_market_making(model, n_time=4, n_quadrature=1_000_000_000)
    model = MarketMakingModel.paper_defaults(1, max_inventory=3, temperature=0.0)
    with pytest.raises(ValueError, match=r"n_time=1000000000000 needs about .*PDERL_MEMORY_BUDGET.*lower max_inventory or n_time"):
        solve_market_making(model, n_time=10**12, memory_limit=1e300)
    with pytest.raises(ValueError, match=r"1e\+300 RK4 substeps.*would take at least"):
        solve_market_making(model, n_time=4, n_substeps=10**300)


def test_gibbs_policy_table_refuses_huge_quadrature(monkeypatch):
    from pdecore.gibbs import gibbs_moments, gibbs_policy_table

    monkeypatch.setenv("PDERL_MEMORY_BUDGET", "1G")
    with pytest.raises(ValueError, match="n_quadrature=1000000000 needs about"):
        gibbs_policy_table(100.0, 1.5, 0.1, 0.0, 4.0, 1_000_000_000, 2049, 513, 129)
    with pytest.raises(ValueError, match="n_quadrature"):
        gibbs_moments([0.0], 100.0, 1.5, 0.1, 0.0, 4.0, "abc")


def test_intensity_past_the_bound_is_named_with_the_reason():
    """``intensity_bid=1e300`` used to end in a numba TypingError inside the HJB kernel."""
    with pytest.raises(ValueError, match=r"intensity_bid must be <= 1e\+12 .*1/A.*got 1e\+300"):
        MarketMakingModel.paper_defaults(1, intensity_bid=1e300)
    with pytest.raises(ValueError, match=r"intensity_ask\[1\] must be <= 1e\+12"):
        MarketMakingModel.paper_defaults(2, intensity_ask=(100.0, 1e13))
    for name in ("spot", "volatility", "decay", "terminal_penalty", "temperature", "risk_aversion"):
        with pytest.raises(ValueError, match=rf"^{name} must be <= 1e\+12"):
            MarketMakingModel.paper_defaults(1, **{name: 1e300})


@pytest.mark.parametrize("bounds", [5, "ab", None, (1.0,), True])
def test_scalar_spread_bounds_is_a_named_value_error(bounds):
    """TOML ``spread_bounds = 5`` reaches the model as a scalar: a ValueError naming spread_bounds."""
    with pytest.raises(ValueError, match="spread_bounds must be a pair"):
        MarketMakingModel.paper_defaults(1, spread_bounds=bounds)


@pytest.mark.parametrize("coeffs", ["abc", [[1.0]], [float("nan")], None])
def test_terminal_coeffs_named_in_both_solvers(coeffs):
    model = MarketMakingModel.paper_defaults(1, max_inventory=3, temperature=0.0)
    if coeffs is None:  # None is the documented default
        return
    with pytest.raises(ValueError, match="terminal_coeffs"):
        solve_market_making(model, n_time=4, terminal_coeffs=coeffs)
    with pytest.raises(ValueError, match="terminal_coeffs"):
        quadratic_approximation(model, terminal_coeffs=coeffs)


def test_result_carries_the_common_diagnostics_and_frozen_arrays():
    """One diagnostics shape on every pdecore result (issue 10): the grid HJB's too, its solver's own
    counters kept in ``stats``; arrays are read-only."""
    from pdecore.diagnostics import SolverDiagnostics

    model = MarketMakingModel.paper_defaults(max_inventory=5)
    result = solve_market_making(model, n_time=20)
    d = result.diagnostics
    assert isinstance(d, SolverDiagnostics) and d.success and d.n_steps == result.stats["rk4_steps"]
    assert d.n_space == 11 and d.n_time == 20 and d.wall_seconds > 0
    with pytest.raises(ValueError, match="read-only"):
        result.values[0, 0] = 1.0
