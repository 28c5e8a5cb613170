"""The penalty Newton march (numba kernel) against its NumPy/SciPy twin, and its basic contracts."""

from __future__ import annotations

import numpy as np
import pytest

from kernel_problems import put_problem, receding_obstacle
from pdecore._kernels.functions import sigmoid, softplus
from pdecore._kernels.penalty import MODE_FINITE, MODE_HARD, MODE_SOFTPLUS, obstacle_term, penalty_march
from pdecore._numba import STATUS_MAX_ITER, STATUS_OK
from pdecore._reference.penalty import obstacle_term_reference, penalty_march_reference


def _problem(n=41, n_time=12, *, time_dependent=False, two_sided=False, with_source=False):
    """A Black-Scholes put in units of the strike (x = S/K), optionally with a time-dependent
    obstacle (premium-like), a second obstacle (Dynkin-like) and a source."""
    p = put_problem(n, n_time)
    x, payoff, tau = p["x"], p["payoff"], p["tau"]
    low = receding_obstacle(p) if time_dependent else payoff[None, :]
    up = (payoff + 0.02 + 0.3 * x)[None, :] if two_sided else np.zeros((1, n))
    src = (0.01 * np.sin(3 * x)[None, :] * (1 + tau[:, None])) if with_source else np.zeros((1, n))
    initial = low[0].copy()
    return dict(lower=p["lower"], diag=p["diag"], upper=p["upper"], initial=initial, dtau=p["dtau"],
                weights=p["weights"], levels=p["levels"], lower_obstacle=np.ascontiguousarray(low),
                upper_obstacle=up, has_upper=two_sided, source=np.ascontiguousarray(src), has_source=with_source)


def _run_kernel(p, mode, penalty, temperature, tol=1e-9, max_iter=60):
    values = np.zeros((len(p["levels"]), len(p["initial"])))
    iterations = np.zeros(len(p["dtau"]), dtype=np.int64)
    changes = np.zeros(len(p["dtau"]))
    status, step = penalty_march(p["lower"], p["diag"], p["upper"], p["initial"], p["dtau"], p["weights"],
                                 p["levels"], p["lower_obstacle"], p["upper_obstacle"], p["has_upper"],
                                 p["source"], p["has_source"], mode, penalty, temperature, tol, max_iter,
                                 values, iterations, changes)
    return status, step, values, iterations, changes


CASES = [
    (MODE_HARD, 0.0, 0.0),
    (MODE_FINITE, 10.0, 0.0),
    (MODE_FINITE, 1000.0, 0.0),
    (MODE_SOFTPLUS, 10.0, 0.025),
    (MODE_SOFTPLUS, 50.0, 1e-4),
]


@pytest.mark.parametrize("mode,penalty,temperature", CASES)
@pytest.mark.parametrize("time_dependent,two_sided,with_source",
                         [(False, False, False), (True, False, True), (False, True, False),
                          (True, True, True)])
def test_kernel_matches_sparse_twin(mode, penalty, temperature, time_dependent, two_sided, with_source):
    p = _problem(time_dependent=time_dependent, two_sided=two_sided, with_source=with_source)
    status, step, values, iterations, _ = _run_kernel(p, mode, penalty, temperature)
    ref_status, ref_step, ref_values, ref_iterations, _ = penalty_march_reference(
        **p, mode=mode, penalty=penalty, temperature=temperature, tol=1e-9, max_iter=60)
    case = f"mode={mode} kappa={penalty} lambda={temperature} td={time_dependent} two={two_sided}"
    assert status == ref_status == STATUS_OK, case
    assert step == ref_step == -1, case
    np.testing.assert_allclose(values, ref_values, rtol=0, atol=1e-9, err_msg=case)
    np.testing.assert_array_equal(iterations, ref_iterations, err_msg=case)


def test_obstacle_term_matches_twin_and_is_overflow_safe(rng):
    v = rng.normal(size=200) * 50
    low, up = rng.normal(size=200), rng.normal(size=200) + 3
    for mode, penalty, temperature in CASES:
        f, slope = np.zeros(200), np.zeros(200)
        obstacle_term(v, low, up, True, mode, penalty, temperature, f, slope)
        ref_f, ref_slope = obstacle_term_reference(v, low, up, True, mode, penalty, temperature)
        np.testing.assert_allclose(f, ref_f, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(slope, ref_slope, rtol=1e-13, atol=1e-13)
        assert np.all(np.isfinite(f)) and np.all(slope >= 0)
    # extreme arguments: no overflow, correct limits
    assert softplus(800.0) == 800.0 and softplus(-800.0) == 0.0
    assert sigmoid(800.0) == 1.0 and sigmoid(-800.0) == 0.0
    assert abs(softplus(0.0) - np.log(2.0)) < 1e-15


def test_hard_mode_respects_both_obstacles():
    p = _problem(two_sided=True, time_dependent=True)
    status, _, values, iterations, _ = _run_kernel(p, MODE_HARD, 0.0, 0.0, tol=1e-8)
    assert status == STATUS_OK
    level_rows = np.concatenate([[0], p["levels"][1:] + 1])
    low = p["lower_obstacle"][level_rows]
    up = p["upper_obstacle"][0]
    # penalty error is O(tol) relative: values sit within 1e-6 of the admissible band
    assert np.all(values >= low - 1e-6)
    assert np.all(values <= up + 1e-6)
    assert iterations.max() <= 10, iterations


def test_finite_mode_terminates_with_unchanged_active_set():
    """Piecewise-linear penalty: Newton stops because the sets repeat, long before tol=1e-15."""
    p = _problem()
    status, _, _, iterations, _ = _run_kernel(p, MODE_FINITE, 100.0, 0.0, tol=1e-15, max_iter=40)
    assert status == STATUS_OK
    assert iterations.max() <= 8, iterations


def test_softplus_tends_to_finite_penalty_as_temperature_vanishes():
    p = _problem()
    _, _, finite, _, _ = _run_kernel(p, MODE_FINITE, 20.0, 0.0)
    _, _, soft, _, _ = _run_kernel(p, MODE_SOFTPLUS, 20.0, 1e-7)
    # Theorem 2.5: 0 <= V^Pi - V^kappa <= lambda * T * log 2
    gap = soft[-1] - finite[-1]
    assert gap.min() >= -1e-9 and gap.max() <= 1e-7 * np.log(2.0) + 1e-9


def test_max_iter_is_reported_not_raised():
    p = _problem()
    status, step, _, iterations, changes = _run_kernel(p, MODE_SOFTPLUS, 10.0, 0.025, tol=1e-300, max_iter=2)
    assert status == STATUS_MAX_ITER
    assert step == 0 and iterations[0] == 2 and changes[0] > 0
