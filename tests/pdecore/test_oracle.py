"""The discrete-time oracle of the RL stopping scheme (SPEC section 2): reference numbers, the
Bermudan limit, bounds, monotonicity, an independent brute-force twin, kernels vs twins, CLI smoke."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdecore import AmericanOption, BlackScholes, bs_price
from pdecore._kernels.oracle import discounted_correlate, solve_penalty_step
from pdecore._reference.oracle import (discounted_correlate_reference, neg_entropy,
                                       solve_penalty_step_reference, stopping_oracle_reference)
from pdecore.oracle import StoppingOracle, bermudan_price, rule_value, stopping_oracle
from validation.reference_data import spec_value

MODEL = BlackScholes(volatility=0.4, rate=0.06)
PUT = AmericanOption("put", strike=40.0, maturity=1.0)
AMERICAN = spec_value("american.put.price")  # SPEC section 1 table (VI price)
BERMUDAN_50 = spec_value("american.put.bermudan_50")  # SPEC section 1 table, exercise dates j/50
ORACLE = spec_value("oracle.kappa10_lambda1_L50")  # SPEC section 2: V_0, P_stopping, P_control


@pytest.fixture(scope="module")
def spec_oracle() -> StoppingOracle:
    return stopping_oracle(MODEL, PUT, n_steps=50, penalty=10.0, temperature=1.0)


# --- reference numbers (SPEC section 2; the acceptance tolerance is 0.002; SPEC quotes 4 decimals
# and its P_stopping differs from ours by 7e-5, so 3e-4 is asserted) ------------------------------ #
@pytest.mark.parametrize("name,expected", list(ORACLE.items()))
def test_spec_reference_values(spec_oracle, name, expected):
    got = getattr(spec_oracle, name)
    assert abs(got - expected) < 3e-4, f"(kappa, lambda) = (10, 1), L = 50: {name} = {got:.6f} vs {expected}"


def test_bermudan_price_matches_spec():
    """Plain max recursion on dates j/50: SPEC quotes 5.31196 (5 decimals, so 1e-5)."""
    value = bermudan_price(MODEL, PUT, n_steps=50)
    assert abs(value - BERMUDAN_50) < 1e-5, f"Bermudan L=50: got {value:.7f}, expected {BERMUDAN_50}"


def test_bermudan_limit_makes_all_three_prices_equal():
    """At kappa*dt = 1, lambda = 0: V = max(g, C) and the rule V <= g is optimal, so V0 = P_stop = P_ctrl."""
    oracle = stopping_oracle(MODEL, PUT, n_steps=50, penalty=50.0, temperature=0.0)
    assert oracle.value0 == pytest.approx(BERMUDAN_50, abs=1e-5)
    assert oracle.p_stopping == pytest.approx(oracle.value0, abs=1e-9)
    assert oracle.p_control == pytest.approx(oracle.value0, abs=1e-9)


def test_grid_refinement_changes_nothing_visible():
    """Self-convergence: the default grid agrees with a 3x finer one to 1e-5 (measured ~1e-7)."""
    for penalty, temperature in [(10.0, 1.0), (10.0, 0.01), (50.0, 0.1)]:
        coarse = stopping_oracle(MODEL, PUT, n_steps=50, penalty=penalty, temperature=temperature)
        fine = stopping_oracle(MODEL, PUT, n_steps=50, penalty=penalty, temperature=temperature,
                               nodes_per_std=36)
        for name in ("value0", "p_stopping", "p_control"):
            gap = abs(getattr(coarse, name) - getattr(fine, name))
            assert gap < 1e-5, f"kappa={penalty}, lambda={temperature}: {name} moves by {gap:.2e}"


@pytest.mark.parametrize("n_steps,penalty,temperature,spot", [(4, 3.0, 0.5, 40.0), (4, 4.0, 0.0, 36.0),
                                                              (4, 2.0, 0.0, 37.0), (5, 2.0, 1.0, 38.0)])
def test_independent_brute_force_twin(n_steps, penalty, temperature, spot):
    """Plain O(h) trapezoid on a grid 85x finer, bisection in the original variable (measured gap < 8e-6)."""
    oracle = stopping_oracle(MODEL, PUT, n_steps=n_steps, penalty=penalty, temperature=temperature, spot=spot)
    reference = stopping_oracle_reference(MODEL, PUT, n_steps=n_steps, penalty=penalty,
                                          temperature=temperature, spot=spot, nodes_per_std=1024)
    for name, got, ref in zip(("value0", "p_stopping", "p_control"),
                              (oracle.value0, oracle.p_stopping, oracle.p_control), reference):
        assert abs(got - ref) < 3e-5, \
            f"L={n_steps} kappa={penalty} lambda={temperature}: {name} {got:.7f} vs {ref:.7f}"


def test_sharp_turn_unresolved_by_the_grid():
    """lambda/kappa far below the grid step: the turn of v(d) at d = 0 goes on its own sub-grid.

    Checked against the brute-force twin and against the plain smooth treatment on a grid fine
    enough to resolve the turn (which then does not need the sub-grid).
    """
    short = AmericanOption("put", strike=40.0, maturity=0.04)
    coarse = stopping_oracle(MODEL, short, n_steps=2, penalty=40.0, temperature=0.1, spot=37.0)
    assert coarse.stats["bump_steps"] >= 1
    resolved = stopping_oracle(MODEL, short, n_steps=2, penalty=40.0, temperature=0.1, spot=37.0,
                               nodes_per_std=96)
    assert resolved.stats["bump_steps"] == 0
    reference = stopping_oracle_reference(MODEL, short, n_steps=2, penalty=40.0, temperature=0.1, spot=37.0,
                                          nodes_per_std=2048)
    for name, ref in zip(("value0", "p_stopping", "p_control"), reference):
        got, fine = getattr(coarse, name), getattr(resolved, name)
        assert abs(got - fine) < 2e-7, f"{name}: sub-grid {got:.9f} vs resolved grid {fine:.9f}"
        assert abs(got - ref) < 2e-6, f"{name}: {got:.9f} vs brute force {ref:.9f}"
    # A long date step with a tiny temperature (lambda/kappa ~ 1e-3, grid step ~ 0.06 in log S).
    model = BlackScholes(volatility=0.761, rate=0.031, dividend=0.091)
    option = AmericanOption("put", strike=100.0, maturity=2.242)
    results = [stopping_oracle(model, option, n_steps=2, penalty=0.89, temperature=0.001, spot=95.5,
                               nodes_per_std=n) for n in (12, 30)]
    for name in ("value0", "p_stopping", "p_control"):
        assert abs(getattr(results[0], name) - getattr(results[1], name)) < 1e-5, name  # measured 1.9e-6


def test_one_date_is_closed_form():
    """L = 1: C_0 is the European price, V_0 = C_0 + v(g − C_0) with v from the Brent twin."""
    oracle = stopping_oracle(MODEL, PUT, n_steps=1, penalty=0.5, temperature=0.7, spot=30.0)
    european = bs_price("put", 30.0, 40.0, 1.0, 0.4, 0.06)
    assert oracle.continuation(0, 30.0) == pytest.approx(european, abs=1e-6)
    v, _ = solve_penalty_step_reference(np.array([10.0 - european]), 0.5, 0.7, 1.0)
    assert oracle.value0 == pytest.approx(european + v[0], abs=1e-6)


def test_tiny_penalty_gives_the_european_price():
    oracle = stopping_oracle(MODEL, PUT, n_steps=50, penalty=1e-9, temperature=0.0)
    assert oracle.value0 == pytest.approx(bs_price("put", 40.0, 40.0, 1.0, 0.4, 0.06), abs=1e-7)


def test_call_symmetry_and_no_early_exercise_without_dividends():
    """McDonald–Schroder symmetry C(S, K, r, q) = P(K, S, q, r) holds date by date for Bermudans."""
    call = bermudan_price(BlackScholes(0.25, 0.03, 0.07), AmericanOption("call", 90.0, 2.0), n_steps=20,
                          spot=100.0)
    put = bermudan_price(BlackScholes(0.25, 0.07, 0.03), AmericanOption("put", 100.0, 2.0), n_steps=20,
                         spot=90.0)
    assert call == pytest.approx(put, abs=1e-7)
    no_dividend = bermudan_price(BlackScholes(0.3, 0.05), AmericanOption("call", 40.0, 1.0), n_steps=20,
                                 spot=45.0)
    assert no_dividend == pytest.approx(bs_price("call", 45.0, 40.0, 1.0, 0.3, 0.05), abs=1e-7)


# --- the lambda -> 0 limit and bounds ----------------------------------------------------------- #
def test_temperature_zero_limit_is_the_penalized_bermudan_recursion():
    """V^lambda − V^0 lies in L·[min rho, max rho] and -> 0 with lambda.

    Per date, V = C + v(g − C) and v_lambda − v_0 = rho(d) with v_0(d) = kappa dt d^+; the map
    C -> C + v_0(g − C) is monotone and 1-Lipschitz, so the gaps of the L dates add up. rho scales
    like lambda dt (max rho <= lambda dt log 2/(1 − kappa dt/2)); it is slightly negative for large d
    because the entropy-weighted pi is then evaluated at g − V, not at g − C, so V^lambda >= V^0 is
    not a theorem.
    """
    penalty, n_steps = 10.0, 50
    dt = PUT.maturity / n_steps
    bang_bang = stopping_oracle(MODEL, PUT, n_steps=n_steps, penalty=penalty, temperature=0.0)
    gaps = []
    for temperature in (0.5, 0.05, 0.005, 0.0005):
        u = np.concatenate([np.linspace(-60.0, 60.0, 20001), np.geomspace(60.0, 1e6, 500)])
        d = temperature / penalty * u
        v, pi = np.empty_like(d), np.empty_like(d)
        assert solve_penalty_step(d, penalty, temperature, dt, 1e-14, 200, v, pi)[0] == 0
        rho = v - penalty * dt * np.maximum(d, 0.0)
        assert rho.max() <= temperature * dt * math.log(2.0) / (1.0 - penalty * dt / 2) + 1e-15
        soft = stopping_oracle(MODEL, PUT, n_steps=n_steps, penalty=penalty, temperature=temperature)
        gap = soft.values[0] - bang_bang.values[0]
        low, high = n_steps * rho.min() - 1e-9, n_steps * rho.max() + 1e-9
        assert low <= gap.min() and gap.max() <= high, \
            f"lambda={temperature}: gap in [{gap.min()}, {gap.max()}], bounds [{low}, {high}]"
        gaps.append(soft.value0 - bang_bang.value0)
    assert all(a > b for a, b in zip(gaps, gaps[1:])), f"gaps not decreasing in lambda: {gaps}"
    assert gaps[-1] < 1e-4


@pytest.mark.parametrize("penalty", [1.0, 5.0, 10.0, 20.0, 50.0])
@pytest.mark.parametrize("temperature", [0.0, 0.1, 1.0, 3.0])
def test_execution_prices_are_ordered(penalty, temperature):
    """P_control <= P_stopping <= Bermudan (optimal on these dates) <= American."""
    oracle = stopping_oracle(MODEL, PUT, n_steps=50, penalty=penalty, temperature=temperature)
    assert oracle.p_control <= oracle.p_stopping + 1e-9, oracle.summary()
    assert oracle.p_stopping <= BERMUDAN_50 + 1e-5 <= AMERICAN, oracle.summary()
    assert oracle.p_stopping >= bs_price("put", 40.0, 40.0, 1.0, 0.4, 0.06) - 1e-9


@given(kind=st.sampled_from(["put", "call"]), volatility=st.floats(0.1, 0.8), maturity=st.floats(0.1, 3.0),
       rate=st.floats(0.0, 0.12), dividend=st.floats(0.0, 0.08), moneyness=st.floats(0.7, 1.4),
       n_steps=st.integers(2, 20), penalty_step=st.floats(0.05, 1.0),
       temperature=st.sampled_from([0.0, 0.05, 0.5]))
def test_random_contracts_respect_the_bounds(kind, volatility, maturity, rate, dividend, moneyness, n_steps,
                                             penalty_step, temperature):
    """European <= P_stopping, P_control <= Bermudan on the same dates, for puts and calls with dividends."""
    model = BlackScholes(volatility, rate, dividend)
    option = AmericanOption(kind, strike=100.0, maturity=maturity)
    spot = 100.0 * moneyness
    penalty = penalty_step * n_steps / maturity
    oracle = stopping_oracle(model, option, n_steps=n_steps, penalty=penalty, temperature=temperature,
                             spot=spot)
    bermudan = bermudan_price(model, option, n_steps=n_steps, spot=spot)
    european = bs_price(kind, spot, 100.0, maturity, volatility, rate, dividend)
    case = oracle.summary()
    # Theorems (optional stopping: V_l >= the European value, so the rule only stops where g beats it;
    # any rule on these dates is worth at most the Bermudan); tol covers the quadrature error, also
    # where g − C is flat (r = 0: the rule exercises where stopping and continuing are worth the same).
    tol = 1e-6 + 1e-7 * european
    assert european - tol <= oracle.p_control and european - tol <= oracle.p_stopping, case
    assert oracle.p_stopping <= bermudan + tol and oracle.p_control <= bermudan + tol, case
    assert bermudan >= max(european, float(option.payoff(spot))) - tol, case


def test_monotone_in_temperature_penalty_and_spot(spec_oracle):
    """On the SPEC case V0 grows with lambda and kappa (observed here, not a theorem near kappa dt = 1)."""
    values = [stopping_oracle(MODEL, PUT, n_steps=50, penalty=10.0, temperature=t).value0
              for t in (0.0, 0.5, 1.0, 3.0)]
    assert np.all(np.diff(values) > 0), f"V0 not increasing in temperature: {values}"
    values = [stopping_oracle(MODEL, PUT, n_steps=50, penalty=k, temperature=0.0).value0
              for k in (1.0, 10.0, 50.0)]
    assert np.all(np.diff(values) > 0), f"V0 not increasing in penalty: {values}"
    # The put's value decreases in the spot at every date, and V_l >= C_l (the entropy/penalty gain is >= 0).
    assert np.all(np.diff(spec_oracle.values, axis=1) < 1e-12)
    for l in (0, 25, 49):
        x = spec_oracle.spots
        assert np.all(spec_oracle.value(l, x) >= spec_oracle.continuation(l, x) - 1e-12)


def test_boundary_is_increasing_towards_maturity(spec_oracle):
    boundary = spec_oracle.boundary
    assert np.all(np.isfinite(boundary)) and boundary[-1] == 40.0
    assert np.all(np.diff(boundary) > 0), boundary
    assert 24.0 < boundary[0] < 27.0  # the American boundary at t = 0 is 24.20 (SPEC); penalties lift it
    # The boundary separates the rule's two regions, where the stopping probability crosses 1/2.
    for l in (0, 25, 49):
        around = boundary[l] * np.array([0.9999, 1.0001])
        np.testing.assert_array_equal(spec_oracle.exercise(l, around), [True, False])
        pi = spec_oracle.policy(l, around)
        assert pi[0] > 0.5 > pi[1]


def test_rule_never_exercises_when_entropy_threshold_is_too_high():
    """lambda log 2 >= r K (here 10 log 2 > 2.4): P_stopping collapses to the European price (SPEC 3)."""
    oracle = stopping_oracle(MODEL, PUT, n_steps=50, penalty=10.0, temperature=10.0)
    assert oracle.stats["exercise_dates"] == 0 and np.all(np.isnan(oracle.boundary[:-1]))
    assert oracle.p_stopping == pytest.approx(bs_price("put", 40.0, 40.0, 1.0, 0.4, 0.06), abs=1e-7)


# --- vectorized evaluation ---------------------------------------------------------------------- #
def test_vectorized_value_policy_and_consistency(spec_oracle, rng):
    x = rng.uniform(5.0, 120.0, size=(3, 4))
    for l in (0, 17, 49):
        values = spec_oracle.value(l, x)
        assert values.shape == (3, 4)
        loop = np.array([[spec_oracle.value(l, float(s)) for s in row] for row in x])
        np.testing.assert_allclose(values, loop, rtol=0, atol=1e-13)
        pi = spec_oracle.policy(l, x)
        assert np.all((pi >= 0) & (pi <= 1))
        # pi >= 1/2 <=> V <= g <=> the execution rule (checked away from the boundary's rounding band).
        payoff = PUT.payoff(x)
        clear = np.abs(values - payoff) > 1e-9
        np.testing.assert_array_equal((pi >= 0.5)[clear], spec_oracle.exercise(l, x)[clear])
        # pi is the sigmoid of kappa (g − V)/lambda.
        np.testing.assert_allclose(pi, 1.0 / (1.0 + np.exp(-10.0 * (payoff - values))), atol=1e-12)
    # Evaluation at the grid nodes reproduces the stored values.
    inner = slice(200, -200)
    np.testing.assert_allclose(spec_oracle.value(10, spec_oracle.spots[inner]), spec_oracle.values[10, inner],
                               atol=1e-9)
    np.testing.assert_allclose(spec_oracle.stopping_value(10, spec_oracle.spots[inner]),
                               spec_oracle.stopping_values[10, inner], atol=1e-9)
    np.testing.assert_allclose(spec_oracle.control_value(10, spec_oracle.spots[inner]),
                               spec_oracle.control_values[10, inner], atol=1e-9)
    assert spec_oracle.value(50, 30.0) == 10.0
    # Far outside the grid the values continue linearly in S (put deep in the money: g).
    assert spec_oracle.stopping_value(0, 0.01) == pytest.approx(39.99, abs=1e-9)


def test_summary_and_plot(spec_oracle):
    summary = spec_oracle.summary()
    assert summary["value0"] == spec_oracle.value0 and summary["boundary_t0"] == spec_oracle.boundary[0]
    json.dumps(summary)
    ax = spec_oracle.plot()
    assert ax.get_xlabel() == "t" and len(ax.lines) == 1


# --- bad input ------------------------------------------------------------------------------------ #
def test_penalty_times_step_above_one_is_refused():
    with pytest.raises(ValueError, match=r"penalty.*maturity.*n_steps.*n_steps >= 20"):
        stopping_oracle(MODEL, PUT, n_steps=10, penalty=20.0, temperature=1.0)
    # The edge kappa*dt = 1 is allowed.
    stopping_oracle(MODEL, PUT, n_steps=10, penalty=10.0, temperature=1.0)


@pytest.mark.parametrize("bad,name", [
    (dict(n_steps=0), "n_steps"), (dict(penalty=0.0), "penalty"), (dict(penalty=float("nan")), "penalty"),
    (dict(temperature=-1.0), "temperature"), (dict(spot=-3.0), "spot"),
    (dict(nodes_per_std=1.0), "nodes_per_std"),
])
def test_bad_input_names_the_parameter(bad, name):
    args = dict(n_steps=50, penalty=10.0, temperature=1.0)
    args.update(bad)
    with pytest.raises(ValueError, match=name):
        stopping_oracle(MODEL, PUT, **args)


def test_wrong_types_and_dates_are_refused(spec_oracle):
    with pytest.raises(ValueError, match="model"):
        stopping_oracle((0.4, 0.06), PUT, n_steps=50, penalty=10.0, temperature=1.0)
    with pytest.raises(ValueError, match="l must be"):
        spec_oracle.policy(50, 40.0)
    with pytest.raises(ValueError, match="x must"):
        spec_oracle.value(0, [40.0, -1.0])


# --- kernels vs twins ----------------------------------------------------------------------------- #
@given(penalty=st.floats(0.1, 100.0), temperature=st.sampled_from([0.0, 1e-4, 0.01, 0.3, 1.0, 10.0]),
       n_steps_ratio=st.floats(0.01, 1.0), seed=st.integers(0, 2**31 - 1))
def test_scalar_equation_kernel_matches_brent_twin(penalty, temperature, n_steps_ratio, seed):
    """Safeguarded Newton in z = g − V vs Brent in v = V − C, including kappa*dt = 1."""
    dt = n_steps_ratio / penalty if seed % 3 else 1.0 / penalty  # a third of the draws sit at kappa*dt = 1
    rng = np.random.default_rng(seed)
    d = np.concatenate([rng.normal(0.0, 2.0, 40), rng.uniform(-40.0, 40.0, 10), [0.0, 1e-12, -1e-12]])
    v, pi = np.empty_like(d), np.empty_like(d)
    status, iterations = solve_penalty_step(d, penalty, temperature, dt, 1e-14, 200, v, pi)
    assert status == 0 and iterations < 60
    v_ref, pi_ref = solve_penalty_step_reference(d, penalty, temperature, dt)
    np.testing.assert_allclose(v, v_ref, rtol=1e-9, atol=1e-12)
    if temperature > 0.0:
        np.testing.assert_allclose(pi, pi_ref, rtol=1e-7, atol=1e-12)
        # The equation itself: v = dt [kappa pi d − lambda H(pi)].
        kdt = min(penalty * dt, 1.0)
        equation = kdt * pi * d - dt * temperature * neg_entropy(pi)
        np.testing.assert_allclose(v, equation, rtol=1e-9, atol=1e-12)


def test_plain_fixed_point_would_diverge_where_the_kernel_converges():
    """kappa*dt = 1, small lambda: the map v -> dt[kappa pi(v) d − lambda H] has slope >> 1 at the root."""
    penalty, temperature, dt, d = 50.0, 0.01, 0.02, np.array([0.3])
    v, pi = np.empty(1), np.empty(1)
    assert solve_penalty_step(d, penalty, temperature, dt, 1e-14, 200, v, pi)[0] == 0
    guess = np.array([v[0] + 1e-6])
    for _ in range(5):
        p = 1.0 / (1.0 + np.exp(-penalty * (d - guess) / temperature))
        guess = dt * (penalty * p * d - temperature * neg_entropy(p))
    assert abs(guess[0] - v[0]) > 1e-3  # the plain iteration has wandered off


def test_correlation_kernel_matches_numpy(rng):
    values, weights = rng.normal(size=500), rng.uniform(size=41)
    out = np.empty(500 - 40)
    assert discounted_correlate(values, weights, out) == 0
    np.testing.assert_allclose(out, discounted_correlate_reference(values, weights), rtol=1e-13, atol=1e-13)


# --- command line --------------------------------------------------------------------------------- #
SPEC_ARGS = ["oracle", "stopping", "--spot", "40", "--strike", "40", "--rate", "0.06", "--volatility", "0.4",
             "--maturity", "1", "--steps", "50", "--penalty", "10", "--temperature", "1"]


def test_cli_json_and_text(capsys):
    from validation.cli import main

    assert main(SPEC_ARGS + ["--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert abs(payload["value0"] - ORACLE["value0"]) < 3e-4
    assert abs(payload["p_control"] - ORACLE["p_control"]) < 3e-4
    assert set(payload) >= {"value0", "p_stopping", "p_control", "boundary_t0", "bermudan", "stats"}
    assert main(SPEC_ARGS + ["--kind", "call", "--dividend", "0.05"]) == 0
    assert "p_stopping" in capsys.readouterr().out


def test_cli_refuses_large_penalty_with_exit_code_2(capsys):
    from validation.cli import main

    args = list(SPEC_ARGS)
    args[args.index("--steps") + 1] = "5"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "penalty" in err and "n_steps" in err and len(err.strip().splitlines()) == 1


def test_result_carries_diagnostics_and_read_only_arrays(spec_oracle):
    diag = spec_oracle.diagnostics
    assert diag.success and diag.n_steps == diag.n_time == 50 and diag.n_space == spec_oracle.spots.size
    assert diag.max_iterations == spec_oracle.stats["max_newton_iterations"] <= diag.total_iterations
    assert diag.wall_seconds == spec_oracle.stats["wall_time_s"] > 0
    for name in ("times", "spots", "values", "stopping_values", "control_values", "boundary"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(spec_oracle, name)[0] = 0.0
    # the quoted prices still come from the (frozen) continuation values
    assert spec_oracle.value(0, 40.0) == spec_oracle.value0


def test_settings_object_and_keywords_give_the_same_oracle():
    from pdecore import OracleSettings

    via_settings = stopping_oracle(MODEL, PUT, n_steps=20, penalty=10.0, temperature=1.0,
                                   settings=OracleSettings(nodes_per_std=8.0, n_std=6.0))
    via_keywords = stopping_oracle(MODEL, PUT, n_steps=20, penalty=10.0, temperature=1.0, nodes_per_std=8.0,
                                   n_std=6.0)
    assert via_settings.value0 == via_keywords.value0 and via_settings.p_control == via_keywords.p_control
    with pytest.raises(ValueError, match="n_std"):
        OracleSettings(n_std=2.0)
    with pytest.raises(ValueError, match="settings must be a pdecore.OracleSettings"):
        stopping_oracle(MODEL, PUT, n_steps=20, penalty=10.0, temperature=1.0, settings={"n_std": 6})


# ------------------------------------------------------------------ budgets (issue 12, bad input)
def test_oracle_memory_refused_before_allocation(monkeypatch):
    """``n_steps=20000`` needs about 22 GiB (grid ∝ √L nodes × L dates × 6 arrays): refused from the
    arguments, with the estimate, the parameter and the fix, whatever the machine."""
    from pdecore import AmericanOption, BlackScholes, stopping_oracle

    monkeypatch.setenv("PDERL_MEMORY_BUDGET", "8G")
    model, option = BlackScholes(volatility=0.4, rate=0.06), AmericanOption("put", 40.0, 1.0)
    with pytest.raises(ValueError, match=r"n_steps=20000.*2\d\.\d GiB of memory.*PDERL_MEMORY_BUDGET.*fewer n_steps"):
        stopping_oracle(model, option, n_steps=20000, penalty=10.0, temperature=1.0)
    monkeypatch.setenv("PDERL_MEMORY_BUDGET", "1M")
    with pytest.raises(ValueError, match="nodes_per_std=200"):
        stopping_oracle(model, option, n_steps=50, penalty=10.0, temperature=1.0, nodes_per_std=200.0)
    with pytest.raises(ValueError, match="n_steps=50"):
        bermudan_price_call = __import__("pdecore").bermudan_price
        bermudan_price_call(model, option, n_steps=50, nodes_per_std=200.0)


def test_oracle_huge_step_count_is_a_budget_refusal(monkeypatch):
    from pdecore import AmericanOption, BlackScholes, stopping_oracle

    model, option = BlackScholes(volatility=0.4, rate=0.06), AmericanOption("put", 40.0, 1.0)
    for n_steps in (1e300, 10**400):
        with pytest.raises(ValueError, match="n_steps=.*(memory|take at least)"):
            stopping_oracle(model, option, n_steps=n_steps, penalty=1.0, temperature=1.0)


# ---------------------------------------------------------------------------- rule_value
RULE_MODEL = BlackScholes(volatility=0.4, rate=0.06, dividend=0.0)
RULE_PUT = AmericanOption("put", 40.0, 1.0)


def test_rule_value_of_the_oracles_rule_is_its_p_stopping():
    oracle = stopping_oracle(RULE_MODEL, RULE_PUT, n_steps=50, penalty=10.0, temperature=1.0, spot=40.0)
    value = rule_value(RULE_MODEL, RULE_PUT, n_steps=50, exercise=oracle.exercise, spot=40.0)
    # the rule read at the nodes: its boundary within h/2 (measured 3.5e-5; the jump g − C = d* there)
    assert value == pytest.approx(oracle.p_stopping, abs=1e-4)


@pytest.mark.parametrize("kind, spot", [("put", 36.0), ("call", 44.0)])
def test_rule_value_never_exercising_is_the_european_price(kind, spot):
    model = BlackScholes(volatility=0.4, rate=0.06, dividend=0.02)
    value = rule_value(model, AmericanOption(kind, 40.0, 1.0), n_steps=40,
                       exercise=lambda j, s: np.zeros(s.shape, bool), spot=spot)
    assert value == pytest.approx(bs_price(kind, spot, 40.0, 1.0, 0.4, 0.06, 0.02), abs=1e-9)  # measured 1e-12


def test_rule_value_of_the_optimal_rule_is_the_bermudan_price():
    oracle = stopping_oracle(RULE_MODEL, RULE_PUT, n_steps=20, penalty=20.0, temperature=0.0, spot=40.0)
    value = rule_value(RULE_MODEL, RULE_PUT, n_steps=20, exercise=oracle.exercise, spot=40.0)
    assert value == pytest.approx(bermudan_price(RULE_MODEL, RULE_PUT, n_steps=20, spot=40.0), abs=2e-5)  # 6e-6


def test_rule_value_exercising_at_once_is_the_payoff():
    value = rule_value(RULE_MODEL, RULE_PUT, n_steps=10, exercise=lambda j, s: np.ones(s.shape, bool), spot=30.0)
    assert value == pytest.approx(10.0, abs=1e-12)


def test_rule_value_refuses_a_rule_of_the_wrong_shape():
    with pytest.raises(ValueError, match="one boolean per spot"):
        rule_value(RULE_MODEL, RULE_PUT, n_steps=5, exercise=lambda j, s: True, spot=40.0)
    with pytest.raises(ValueError, match="exercise must be a callable"):
        rule_value(RULE_MODEL, RULE_PUT, n_steps=5, exercise=None, spot=40.0)


def test_rule_value_refuses_a_grid_past_the_work_budget_before_any_work():
    with pytest.raises(ValueError, match="rule_value with n_steps=10000000.*pass fewer n_steps"):
        rule_value(RULE_MODEL, RULE_PUT, n_steps=10**7, exercise=lambda j, s: np.zeros(s.shape, bool), spot=40.0)
