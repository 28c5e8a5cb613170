"""Bad input raises ValueError naming the parameter, the value and the fix; non-convergence raises
ConvergenceError with its diagnostics."""

from __future__ import annotations

import math

import pytest

from pdecore import AmericanOption, BlackScholes, ConvergenceError, solve_american
from pdecore.american import AmericanSettings

MODEL = BlackScholes(volatility=0.4, rate=0.06)
PUT = AmericanOption("put", strike=40.0, maturity=1.0)


@pytest.mark.parametrize("name,value", [("volatility", -0.4), ("volatility", 0.0), ("volatility", math.nan)])
def test_bad_volatility(name, value):
    with pytest.raises(ValueError, match=rf"{name}.*{value}.*pass"):
        BlackScholes(volatility=value, rate=0.06)


@pytest.mark.parametrize("field,value", [("strike", -40.0), ("strike", 0.0), ("strike", math.nan),
                                         ("maturity", -1.0), ("maturity", 0.0), ("maturity", math.nan)])
def test_bad_contract(field, value):
    kwargs = {"kind": "put", "strike": 40.0, "maturity": 1.0, field: value}
    with pytest.raises(ValueError, match=rf"{field}.*{value}.*pass"):
        AmericanOption(**kwargs)


def test_unknown_kind():
    with pytest.raises(ValueError, match=r"kind.*'straddle'.*put"):
        AmericanOption("straddle", 40.0, 1.0)


def test_temperature_needs_a_finite_penalty():
    with pytest.raises(ValueError, match=r"temperature=1\.0.*penalty=None.*penalty=10"):
        solve_american(MODEL, PUT, temperature=1.0)


@pytest.mark.parametrize("kwargs,match", [
    ({"penalty": -5.0}, r"penalty.*-5\.0"),
    ({"penalty": 0.0}, r"penalty.*0\.0"),
    ({"penalty": math.inf}, r"penalty.*inf"),
    ({"temperature": -1.0, "penalty": 10.0}, r"temperature.*-1\.0"),
    ({"temperature": math.nan, "penalty": 10.0}, r"temperature.*nan"),
    ({"n_space": 10}, r"n_space.*10.*at least 21"),
    ({"n_time": 2}, r"n_time.*2.*at least 4"),
    ({"n_space": 100.5}, r"n_space.*100\.5"),
    ({"premium": "yes"}, r"premium.*'yes'"),
])
def test_bad_solver_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        solve_american(MODEL, PUT, **kwargs)


def test_wrong_parameter_objects():
    with pytest.raises(ValueError, match=r"model must be a pdecore.BlackScholes"):
        solve_american({"volatility": 0.4}, PUT)
    with pytest.raises(ValueError, match=r"option must be a pdecore.AmericanOption"):
        solve_american(MODEL, "put")


def test_spots_outside_the_grid_and_bad_times():
    result = solve_american(MODEL, PUT, n_space=81, n_time=20)
    with pytest.raises(ValueError, match=r"spot must lie in the grid range"):
        result.price(-1.0)
    with pytest.raises(ValueError, match=r"spot must be|spot must contain"):
        result.price(math.nan)
    with pytest.raises(ValueError, match=r"t must lie in \[0\.0, 1\.0\]"):
        result.value(1.5, 40.0)


def test_bad_settings():
    with pytest.raises(ValueError, match=r"tol.*0\.5"):
        AmericanSettings(tol=0.5)
    with pytest.raises(ValueError, match=r"max_iter.*0"):
        AmericanSettings(max_iter=0)
    with pytest.raises(ValueError, match=r"scheme must be a ThetaScheme"):
        AmericanSettings(scheme="cn")
    with pytest.raises(ValueError, match=r"vi_solver must be 'projected' or 'penalty', got 'psor'"):
        AmericanSettings(vi_solver="psor")


def test_non_convergence_raises_with_diagnostics():
    """One Newton iteration cannot settle the penalty set of the first step that activates it (the
    penalty solver of the VI; the default projected solver takes one direct solve per step)."""
    with pytest.raises(ConvergenceError) as info:
        solve_american(MODEL, PUT, n_space=81, n_time=20, settings=AmericanSettings(max_iter=1, vi_solver="penalty"))
    diagnostics = info.value.diagnostics
    assert diagnostics["iterations"] == 1 and diagnostics["mode"] == "hard"
    assert diagnostics["step"] >= 0 and diagnostics["tau"] > 0 and diagnostics["relative_change"] > 0
    assert "step=" in str(info.value) and "relative_change=" in str(info.value)


def test_result_carries_diagnostics_and_read_only_arrays():
    result = solve_american(BlackScholes(volatility=0.4, rate=0.06), AmericanOption("put", strike=40, maturity=1),
                            n_space=81, n_time=20)
    diag = result.diagnostics
    assert diag.success and diag.status == 0 and diag.n_space == 81 and diag.n_time == 20
    assert diag.total_iterations == result.stats["total_newton_iterations"]
    assert diag.max_iterations == result.stats["max_newton_iterations"] and diag.wall_seconds > 0
    for name in ("spots", "times", "values", "boundary"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(result, name)[0] = 0.0


@pytest.mark.parametrize("call", ["american", "oracle", "merton", "dynkin"])
def test_temperature_past_the_bound_is_refused_by_name(call):
    """λ = 1e300 used to return a price of 5e305 with exit 0: every engine bounds λ by MAX_TEMPERATURE."""
    import numpy as np

    from pdecore import MertonCosts, solve_dynkin, solve_merton_costs, stopping_oracle

    model, option = BlackScholes(0.4, 0.06), AmericanOption("put", 40.0, 1.0)
    calls = {
        "american": lambda: solve_american(model, option, penalty=1.0, temperature=1e300),
        "oracle": lambda: stopping_oracle(model, option, n_steps=50, penalty=10.0, temperature=1e300),
        "merton": lambda: solve_merton_costs(MertonCosts(0.168, 0.008, 0.3, 0.005, 1.0), penalty=5.0,
                                             temperature=1e300),
        "dynkin": lambda: solve_dynkin(np.linspace(0, 1, 11), diffusion=np.full(11, 0.1), drift=np.zeros(11),
                                       lower_obstacle=np.zeros(11), upper_obstacle=np.ones(11),
                                       terminal=np.full(11, 0.5), maturity=1.0, penalty=1.0, temperature=1e300),
    }
    with pytest.raises(ValueError, match="temperature must be <= 1e"):
        calls[call]()


def test_oracle_spot_far_from_the_strike_is_refused():
    from pdecore import stopping_oracle

    with pytest.raises(ValueError, match=r"spot=1e\+300"):
        stopping_oracle(BlackScholes(0.4, 0.06), AmericanOption("put", 40.0, 1.0), n_steps=50, penalty=10.0,
                        temperature=1.0, spot=1e300)
