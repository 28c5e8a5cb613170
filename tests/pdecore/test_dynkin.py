"""Tests of the generic double-obstacle solver (pdecore.dynkin) and of its independent NumPy reference.

Kinds (STYLE 10): (d) implementation equivalence — penalty Newton (Numba) vs Howard policy iteration
and projected SOR (NumPy) on the same discretization; (b)/(c) theory-derived bounds, as hypothesis
properties over valid Merton markets — ℓ − C/κ ≤ w^κ ≤ u + C/κ, |w^κ − w^VI| ≤ C/κ with the 1/κ rate,
and the two-sided exploratory sandwich |w^λ − w^κ| ≤ λ(T − t) log 2 (derived in the module docstring of
pdecore.dynkin); bad input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdecore import DynkinSettings, MertonCosts, MertonSettings, solve_dynkin, solve_merton_costs
from pdecore._kernels.operator import BOUNDARY_DEGENERATE, BOUNDARY_DIRICHLET
from pdecore._reference.dynkin import solve_dynkin_reference
from pdecore._reference.operators import build_generator_reference
from pdecore.dynkin import contact_boundary
from pdecore.merton import far_field_start, merton_boundaries, merton_grid
from pdecore.schemes import ThetaScheme
from validation.reference_data import spec_value

DEFAULT = MertonCosts(**spec_value("merton.default_market"))  # SPEC section 4


def _merton_coefficients(model, x):
    return 0.5 * model.volatility**2 * x**2, (model.rate - model.drift + model.volatility**2) * x


@st.composite
def merton_markets(draw):
    """Valid markets: Merton fraction in [0.3, 3] (both signs of x_M), costs 1e-3..2e-2."""
    volatility = draw(st.floats(0.15, 0.5))
    rate = draw(st.floats(0.0, 0.05))
    fraction = draw(st.floats(0.3, 3.0))
    cost = draw(st.floats(1e-3, 2e-2))
    maturity = draw(st.floats(0.25, 2.0))
    return MertonCosts(drift=rate + fraction * volatility**2, rate=rate, volatility=volatility, cost=cost,
                       maturity=maturity)


# === (d) the penalty Newton kernel against an independent method on the same discretization === #

@pytest.mark.parametrize("model", [DEFAULT, MertonCosts(0.11, 0.01, 0.3, 0.01, 2.0)], ids=["spec-default", "x_M>0"])
def test_penalty_vi_matches_policy_iteration(model):
    res = solve_merton_costs(model, n_space=300, n_time=50)
    x = res.grid
    a, b = _merton_coefficients(model, x)
    dtau, weights, levels = ThetaScheme().time_steps(model.maturity, 50)
    right = BOUNDARY_DEGENERATE if b[-1] <= 0 else BOUNDARY_DIRICHLET
    terminal = res.values[-1]  # the solver's terminal data (sell obstacle; buy obstacle held at a Dirichlet end)
    values, iterations = solve_dynkin_reference(x, a, b, res.dynkin.lower_obstacle, res.dynkin.upper_obstacle,
                                                terminal, dtau, weights, levels, left_kind=BOUNDARY_DIRICHLET,
                                                right_kind=right)
    values = values[::-1]
    # penalty with Large = 1e8 vs exact complementarity: values agree to O(1/Large)·|residual|
    assert np.max(np.abs(values - res.values)) < 1e-5, np.max(np.abs(values - res.values))
    assert iterations.max() <= 10
    # the same contact-set read-out as the solver (far-field strip x >= x_max/2 not reported, issue 11)
    sell_ref, buy_ref, _, _ = merton_boundaries(x, values, model.cost, hard=True, regions=False,
                                                far_field=far_field_start(x[-1]))
    for name, ref, got in (("sell", sell_ref, res.sell_boundary), ("buy", buy_ref, res.buy_boundary)):
        assert np.array_equal(np.isinf(ref), np.isinf(got)), f"{name}: regions differ"
        finite = np.isfinite(ref)
        err = np.max(np.abs(ref[finite] - got[finite]))
        # grid accuracy is ~1e-3 here; the two methods agree far below it
        assert err < 1e-6, f"{name} boundary: penalty vs policy iteration differ by {err:.2e}"


def test_psor_matches_policy_iteration_on_a_small_grid():
    res = solve_merton_costs(DEFAULT, n_space=41, n_time=6)
    x = res.grid
    a, b = _merton_coefficients(DEFAULT, x)
    dtau, weights, levels = ThetaScheme().time_steps(1.0, 6)
    args = (x, a, b, res.dynkin.lower_obstacle, res.dynkin.upper_obstacle, res.values[-1], dtau, weights, levels)
    howard, _ = solve_dynkin_reference(*args, left_kind=BOUNDARY_DIRICHLET, right_kind=BOUNDARY_DEGENERATE)
    psor, _ = solve_dynkin_reference(*args, left_kind=BOUNDARY_DIRICHLET, right_kind=BOUNDARY_DEGENERATE,
                                     method="psor")
    assert np.max(np.abs(howard - psor)) < 1e-9
    assert np.max(np.abs(howard[::-1] - res.values)) < 1e-5


# === (b)/(c) theory-derived bounds over random valid markets === #

def _operator_bounds(model, x, lower_obs, upper_obs):
    """C_ℓ = max(−𝓖_h ℓ)^+ and C_u = max(𝓖_h u)^+ over the interior (the discrete sub/super-solution constants)."""
    a, b = _merton_coefficients(model, x)
    lo, di, up, _ = build_generator_reference(x, a, b, np.zeros_like(x), BOUNDARY_DIRICHLET, BOUNDARY_DEGENERATE)

    def apply(v):
        out = di * v
        out[1:] += lo[1:] * v[:-1]
        out[:-1] += up[:-1] * v[1:]
        return out

    g_lower = apply(lower_obs)[1:-1]
    g_upper = apply(upper_obs)[1:-1]
    return max(np.max(-g_lower), 0.0), max(np.max(g_upper), 0.0)


@settings(max_examples=30)
@given(model=merton_markets())
def test_penalty_respects_obstacles_and_converges_like_one_over_kappa(model):
    # implicit Euler: the discrete comparison principle holds exactly (an M-matrix step with the penalty
    # implicit); Crank–Nicolson weights the stiff term κΔτ/2 ≫ 1 explicitly and is not monotone
    kw = dict(settings=MertonSettings(n_space=200, n_time=40, scheme=ThetaScheme.implicit_euler(grading=2.0)))
    vi = solve_merton_costs(model, **kw)
    lower_obs, upper_obs = vi.dynkin.lower_obstacle, vi.dynkin.upper_obstacle
    c_low, c_up = _operator_bounds(model, vi.grid, lower_obs, upper_obs)
    errors = {}
    for kappa in (1e3, 1e4, 1e5):
        res = solve_merton_costs(model, penalty=kappa, **kw)
        w = res.values
        below = np.max(lower_obs - w)
        above = np.max(w - upper_obs)
        # ℓ − C_ℓ/κ is a discrete sub-solution and u + C_u/κ a super-solution (5% slack for round-off)
        assert below <= 1.05 * c_low / kappa + 1e-9, f"{model}: w below ℓ by {below:.3e} > C/κ={c_low / kappa:.3e}"
        assert above <= 1.05 * c_up / kappa + 1e-9, f"{model}: w above u by {above:.3e} > C/κ={c_up / kappa:.3e}"
        errors[kappa] = np.max(np.abs(w - vi.values))
        assert errors[kappa] <= 1.05 * max(c_low, c_up) / kappa + 1e-7, f"{model}: κ={kappa}: {errors[kappa]:.3e}"
    # the 1/κ rate: one decade of κ gains about one decade of accuracy once κ is large
    ratio = errors[1e4] / errors[1e5]
    assert 6.0 < ratio < 14.0, f"{model}: error ratio {ratio:.2f} over one decade of κ, errors {errors}"


@settings(max_examples=30)
@given(model=merton_markets(), temperature=st.sampled_from([1e-3, 1e-2, 0.1]), kappa=st.sampled_from([5.0, 50.0]))
def test_exploratory_two_sided_sandwich(model, temperature, kappa):
    # monotone scheme
    kw = dict(settings=MertonSettings(n_space=200, n_time=40, scheme=ThetaScheme.implicit_euler(grading=2.0)))
    penalized = solve_merton_costs(model, penalty=kappa, **kw)
    exploratory = solve_merton_costs(model, penalty=kappa, temperature=temperature, **kw)
    bound = temperature * (model.maturity - penalized.times)[:, None] * math.log(2.0)
    diff = exploratory.values - penalized.values
    slack = 1e-3 * bound + 1e-10
    assert np.all(diff <= bound + slack), f"{model}: upper sandwich violated by {np.max(diff - bound):.3e}"
    assert np.all(diff >= -bound - slack), f"{model}: lower sandwich violated by {np.max(-bound - diff):.3e}"


# === result object, generic use, bad input === #

def test_generic_solver_on_a_game_with_constant_obstacles():
    # w_t + ½ w_xx = 0 on [-1, 1] with ℓ = -0.2, u = 0.2 and terminal x: contact regions at both ends
    x = np.linspace(-1.0, 1.0, 101)
    res = solve_dynkin(x, diffusion=np.full(101, 0.5), drift=np.zeros(101), lower_obstacle=np.full(101, -0.2),
                       upper_obstacle=np.full(101, 0.2), terminal=np.clip(x, -0.2, 0.2), maturity=1.0,
                       settings=DynkinSettings(n_time=50),
                       left_boundary="dirichlet", right_boundary="dirichlet")
    assert res.mode == "variational inequality"
    assert np.all(res.values >= -0.2 - 1e-7) and np.all(res.values <= 0.2 + 1e-7)
    # symmetric problem: boundaries mirror each other
    finite = np.isfinite(res.lower_boundary)
    assert np.allclose(res.lower_boundary[finite], -res.upper_boundary[finite], atol=1e-9)
    assert res.lower_region.shape == res.values.shape
    assert res.value(0.0, 0.0) == pytest.approx(0.0, abs=1e-9)
    ax = res.plot()
    assert ax.get_xlabel() == "t"


def test_contact_boundary_conventions():
    x = np.linspace(0.0, 1.0, 11)
    gap = np.vstack([np.where(x <= 0.3, 0.0, (x - 0.3) ** 2),  # quadratic gap: exact sqrt extrapolation
                     np.full(11, 1.0),                          # no contact anywhere
                     np.zeros(11)])                             # contact everywhere
    left = contact_boundary(x, gap, side="left", hard=True)
    assert left[0] == pytest.approx(0.3, abs=1e-12)
    assert left[1] == -np.inf and left[2] == np.inf
    right = contact_boundary(x, gap[:, ::-1], side="right", hard=True)
    assert right[0] == pytest.approx(0.7, abs=1e-12)
    assert right[1] == np.inf and right[2] == -np.inf


@pytest.mark.parametrize("kwargs, match", [
    (dict(lower_obstacle=np.full(11, 2.0)), "lower_obstacle must not exceed"),
    (dict(diffusion=np.full(11, -1.0)), "diffusion must be >= 0"),
    (dict(temperature=0.1), "needs a finite penalty"),
    (dict(penalty=-1.0), "penalty must be > 0"),
    (dict(maturity=0.0), "maturity must be > 0"),
    (dict(drift=np.full(10, 0.0)), "drift must have shape"),
    (dict(terminal=np.full(11, np.nan)), "terminal must contain only finite"),
    (dict(left_boundary="neumann"), "left_boundary must be one of"),
])
def test_solve_dynkin_rejects_bad_input(kwargs, match):
    base = dict(diffusion=np.full(11, 0.5), drift=np.zeros(11), lower_obstacle=np.zeros(11),
                upper_obstacle=np.ones(11), terminal=np.full(11, 0.5), maturity=1.0)
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        solve_dynkin(np.linspace(0, 1, 11), **base)


def test_merton_grid_has_nodes_at_zero_and_at_the_merton_ratio():
    x = merton_grid(DEFAULT, 400)
    assert x.size == 400 and np.all(np.diff(x) > 0)
    assert 0.0 in x and DEFAULT.merton_ratio in x
    assert x[0] > -(1 - DEFAULT.cost)


def test_result_carries_diagnostics_and_read_only_arrays():
    x = np.linspace(-1.0, 1.0, 41)
    res = solve_dynkin(x, diffusion=np.full(41, 0.5), drift=np.zeros(41), lower_obstacle=np.full(41, -0.2),
                       upper_obstacle=np.full(41, 0.2), terminal=np.clip(x, -0.2, 0.2), maturity=1.0,
                       settings=DynkinSettings(n_time=10))
    diag = res.diagnostics
    assert diag.success and diag.n_space == 41 and diag.n_time == 10
    assert diag.total_iterations == res.total_newton_iterations == int(res.newton_iterations.sum())
    assert diag.n_steps == res.newton_iterations.size and diag.max_iterations == res.newton_iterations.max()
    for name in ("grid", "times", "values", "lower_obstacle", "upper_obstacle", "newton_iterations",
                 "lower_boundary", "upper_region"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(res, name)[0] = 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_time=0), "n_time must be >= 1"),
    (dict(tol=0.0), "tol must be > 0"),
    (dict(max_iter=0), "max_iter must be >= 1"),
    (dict(scheme="cn"), "scheme must be a ThetaScheme"),
])
def test_dynkin_settings_reject_bad_numerics(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DynkinSettings(**kwargs)


def test_solve_dynkin_rejects_a_settings_object_of_the_wrong_type():
    x = np.linspace(-1.0, 1.0, 11)
    with pytest.raises(ValueError, match="settings must be a pdecore.DynkinSettings"):
        solve_dynkin(x, diffusion=np.ones(11), drift=np.zeros(11), lower_obstacle=-np.ones(11),
                     upper_obstacle=np.ones(11), terminal=np.zeros(11), maturity=1.0, settings={"n_time": 5})


# ------------------------------------------------------------------ budgets (issue 12, bad input)
def _small_game(n=11):
    x = np.linspace(0.0, 1.0, n)
    return dict(grid=x, diffusion=0.1 * np.ones_like(x), drift=np.zeros_like(x), lower_obstacle=np.zeros_like(x),
                upper_obstacle=np.ones_like(x), terminal=0.5 * np.ones_like(x), maturity=1.0)


def test_dynkin_memory_and_work_refused_before_allocation(monkeypatch):
    """A huge ``n_time`` (or a grid × levels past the budget) is refused from the arguments with the
    estimate and the fix; nothing of that size is allocated."""
    from pdecore import DynkinSettings, solve_dynkin

    monkeypatch.setenv("PDERL_MEMORY_BUDGET", "64M")
    with pytest.raises(ValueError, match=r"n_time=1000000000 .*memory.*DynkinSettings\(n_time"):
        solve_dynkin(**_small_game(), settings=DynkinSettings(n_time=10**9))
    with pytest.raises(ValueError, match=r"1e\+300.*memory"):
        solve_dynkin(**_small_game(), settings=DynkinSettings(n_time=1e300))
    monkeypatch.setenv("PDERL_MEMORY_BUDGET", "64G")
    monkeypatch.setenv("PDERL_TIME_BUDGET", "1s")
    with pytest.raises(ValueError, match="would take at least"):
        solve_dynkin(**_small_game(), settings=DynkinSettings(n_time=10**8))


@pytest.mark.parametrize("name", ["drift", "diffusion", "reaction"])
def test_dynkin_absurd_coefficients_are_named(name):
    """Δτ·|G| past 1e15 used to end in a 'zero pivot' ConvergenceError; now a ValueError naming the
    coefficient."""
    from pdecore import DynkinSettings, solve_dynkin

    args = _small_game()
    args[name] = 1e300 * np.ones(11) * (-1.0 if name == "reaction" else 1.0)
    with pytest.raises(ValueError, match=name):
        solve_dynkin(**args, settings=DynkinSettings(n_time=4))


def test_dynkin_settings_store_integers_and_bound_tol():
    from pdecore import DynkinSettings

    settings = DynkinSettings(n_time=20.0, max_iter=30.0)
    assert isinstance(settings.n_time, int) and isinstance(settings.max_iter, int)
    with pytest.raises(ValueError, match="tol must be < 1"):
        DynkinSettings(tol=2.0)
    with pytest.raises(ValueError, match="max_iter"):
        DynkinSettings(max_iter=1e300)


def test_terminal_value_outside_the_obstacles_is_refused():
    """A terminal value outside [lower, upper] is not a Dynkin game (issue 11): refused by name."""
    import numpy as np
    import pytest

    from pdecore import solve_dynkin

    grid = np.linspace(0.0, 1.0, 11)
    with pytest.raises(ValueError, match="terminal must lie between the obstacles"):
        solve_dynkin(grid, diffusion=np.full(11, 0.1), drift=np.zeros(11), lower_obstacle=np.zeros(11),
                     upper_obstacle=np.ones(11), terminal=np.full(11, 2.0), maturity=1.0)
