"""The projected (Brennan–Schwartz) American march against an independent twin, and its certificate.

The twin solves each step's linear complementarity problem ``min(Av − b, v − ℓ) = 0`` by Howard's
policy iteration with dense exact solves (finite for M-matrices; Bokanowski, Maroso & Zidani 2009), so
agreement to round-off checks both the direct solve and the block-wise pivots. The kernel must refuse
(``STATUS_NOT_ONE_INTERVAL``) where the exercise set is not one interval at the start of the grid, and
:func:`pdecore.solve_american` must then fall back to the penalty iteration.
"""

from __future__ import annotations

import numpy as np
import pytest

from kernel_problems import put_problem, receding_obstacle
from pdecore import AmericanOption, BlackScholes, solve_american
from pdecore._kernels.projected import BLOCK, projected_march
from pdecore._numba import STATUS_NOT_ONE_INTERVAL, STATUS_OK
from pdecore.american import AmericanSettings


def _put_problem(n=41, n_time=12, sigma=0.4, r=0.06, q=0.02, time_dependent=False):
    p = put_problem(n, n_time, sigma, r, q)
    obstacle = receding_obstacle(p) if time_dependent else p["payoff"][None, :]
    return (p["x"], p["lower"], p["diag"], p["upper"], p["dtau"], p["weights"], p["levels"],
            np.ascontiguousarray(obstacle))


def _howard_twin(lower, diag, upper, initial, dtau, weights, levels, obstacle):
    """Each step's LCP by policy iteration on dense matrices (an independent solver)."""
    n = initial.size
    generator = np.diag(diag) + np.diag(lower[1:], -1) + np.diag(upper[:-1], 1)
    v = initial.copy()
    stored = [v.copy()] * int(np.sum(levels < 0))
    for k, (h, w) in enumerate(zip(dtau, weights)):
        g = obstacle[0] if obstacle.shape[0] == 1 else obstacle[k + 1]
        a = np.eye(n) - w * h * generator
        b = (np.eye(n) + (1.0 - w) * h * generator) @ v
        exercised = v <= g
        for _ in range(2 * n + 2):
            matrix, rhs = a.copy(), b.copy()
            matrix[exercised] = np.eye(n)[exercised]
            rhs[exercised] = g[exercised]
            v = np.linalg.solve(matrix, rhs)
            new = (a @ v - b) > (v - g)
            if np.array_equal(new, exercised):
                break
            exercised = new
        stored += [v.copy()] * int(np.sum(levels == k))
    return np.array(stored)


def _run(lower, diag, upper, initial, dtau, weights, levels, obstacle):
    values = np.zeros((levels.size, initial.size))
    iterations = np.zeros(dtau.size, dtype=np.int64)
    status, step = projected_march(lower, diag, upper, initial, dtau, weights, levels, obstacle, values, iterations)
    return status, step, values, iterations


@pytest.mark.parametrize("n_time", [3, BLOCK, BLOCK + 5, 3 * BLOCK])  # blocks of pivots: partial, exact, several
@pytest.mark.parametrize("sigma,r,q", [(0.4, 0.06, 0.02), (0.2, 0.1, 0.0), (1.0, 0.03, 0.3)])
def test_projected_march_equals_the_policy_iteration_twin(n_time, sigma, r, q):
    x, lower, diag, upper, dtau, weights, levels, obstacle = _put_problem(n_time=n_time, sigma=sigma, r=r, q=q)
    initial = obstacle[0].copy()
    status, step, values, iterations = _run(lower, diag, upper, initial, dtau, weights, levels, obstacle)
    assert status == STATUS_OK and step == -1
    assert np.all(iterations == 1)  # one direct solve per sub-step
    twin = _howard_twin(lower, diag, upper, initial, dtau, weights, levels, obstacle)
    assert np.max(np.abs(values - twin)) <= 1e-12
    assert np.all(values >= obstacle.min(axis=0) - 1e-15)


@pytest.mark.parametrize("shape", ["bump", "receding"])
def test_exercise_sets_off_the_start_are_refused_by_the_certificate(shape):
    """Exercise sets that are not an interval at the start of the grid, where Brennan–Schwartz is wrong:
    a bump of the obstacle inside the continuation region, and an obstacle that falls below the value at
    small S first (the twin exercises nodes 4–5 only at one step). The complementarity check catches
    both at the step where it happens."""
    x, lower, diag, upper, dtau, weights, levels, obstacle = _put_problem(n_time=3,
                                                                          time_dependent=shape == "receding")
    if shape == "bump":
        obstacle = np.ascontiguousarray((np.maximum(1.0 - x, 0.0) * (x > 0.3)
                                         + 0.9 * np.exp(-200 * (x - 1.6) ** 2))[None, :])
    status, step, _, _ = _run(lower, diag, upper, obstacle[0].copy(), dtau, weights, levels, obstacle)
    assert status == STATUS_NOT_ONE_INTERVAL and step >= 0


def test_solver_falls_back_to_the_penalty_iteration_when_refused(monkeypatch):
    """solve_american's wiring: a refused projected march is replaced by the penalty march (same
    discrete problem, so the same price to O(1/Large))."""
    import pdecore.american as american

    def refuse(lower, diag, upper, initial, dtau, weights, levels, obstacle, values, iterations):
        return STATUS_NOT_ONE_INTERVAL, 0

    model, option = BlackScholes(0.4, 0.06), AmericanOption("put", 40.0, 1.0)
    projected = solve_american(model, option, n_space=201, n_time=40, spot=40.0)
    monkeypatch.setattr(american, "projected_march", refuse)
    fallback = solve_american(model, option, n_space=201, n_time=40, spot=40.0)
    assert fallback.stats["total_newton_iterations"] > fallback.stats["n_substeps"]  # the penalty ran
    assert abs(fallback.price(40.0) - projected.price(40.0)) <= 1e-6


def test_put_whose_exercise_region_leaves_zero_is_certified():
    """A put with q < r < 0: at S = 0 it is never exercised (V(0) = Ke^{−rτ} > K), so the exercise
    region is an interval [S₁, S₂] away from the start of the grid (Battauz, De Donno & Sbuelz 2015).
    The row S = 0 is decoupled (𝓛 degenerates there), so the direct solve is still exact: the
    certificate accepts every step and the penalty solver agrees."""
    model, option = BlackScholes(0.08, -0.01, -0.04), AmericanOption("put", 100.0, 5.0)
    projected = solve_american(model, option, n_space=401, n_time=100, spot=90.0)
    penalty = solve_american(model, option, n_space=401, n_time=100, spot=90.0,
                             settings=AmericanSettings(vi_solver="penalty"))
    assert projected.stats["total_newton_iterations"] == projected.stats["n_substeps"]
    assert projected.values[0, 0] > 100.0  # S = 0 continues
    assert np.max(np.abs(projected.values - penalty.values)) <= 1e-6


@pytest.mark.parametrize("kind,model,premium", [("put", BlackScholes(0.3, 0.05, 0.01), False),
                                               ("call", BlackScholes(0.3, 0.02, 0.07), False),
                                               ("put", BlackScholes(0.4, 0.06), True)])
def test_projected_and_penalty_solvers_agree(kind, model, premium):
    """Same discrete problem, two solvers: prices agree to the penalty's O(1/Large) (Large = 1e8);
    the call is solved on the mirrored grid, the premium form has a time-dependent obstacle."""
    option = AmericanOption(kind, 100.0, 1.0)
    projected = solve_american(model, option, n_space=301, n_time=60, spot=100.0, premium=premium)
    penalty = solve_american(model, option, n_space=301, n_time=60, spot=100.0, premium=premium,
                             settings=AmericanSettings(vi_solver="penalty"))
    assert projected.stats["total_newton_iterations"] == projected.stats["n_substeps"]
    assert np.max(np.abs(projected.values - penalty.values)) <= 1e-6
    assert abs(projected.price(100.0) - penalty.price(100.0)) <= 1e-6


def test_zero_pivot_is_refused_as_singular_before_any_substitution():
    """A matrix with a zero pivot (not an M-matrix: here ``1 − s·d = 0`` in the last row) is refused with
    STATUS_SINGULAR at its step, not projected onto the obstacle, where max(NaN, ℓ) could hide it."""
    from pdecore._numba import STATUS_SINGULAR

    n = 5
    dtau, weights = np.array([0.5, 0.5]), np.array([1.0, 1.0])
    levels = np.array([-1, 0, 1], dtype=np.int64)
    lower, upper = np.zeros(n), np.zeros(n)
    diag = np.full(n, -1.0)
    diag[-1] = 2.0  # 1 − 0.5·2 = 0
    obstacle = np.zeros((1, n))
    status, step, _, _ = _run(lower, diag, upper, np.ones(n), dtau, weights, levels, obstacle)
    assert status == STATUS_SINGULAR and step == 0
