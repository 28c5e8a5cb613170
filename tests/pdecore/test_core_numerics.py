"""Shared numerical pieces: tridiagonal solve, the generator on a non-uniform grid, grids, schemes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdecore._kernels.operator import BOUNDARY_DEGENERATE, BOUNDARY_DIRICHLET, build_generator
from pdecore._kernels.tridiagonal import thomas_solve, tridiagonal_apply
from pdecore._reference.operators import build_generator_reference, thomas_solve_reference
from pdecore.grids import SinhGrid
from pdecore.schemes import ThetaScheme


def _random_m_matrix(rng, n):
    lower = -rng.uniform(0.0, 1.0, n)
    upper = -rng.uniform(0.0, 1.0, n)
    diag = 1.0 + np.abs(lower) + np.abs(upper) + rng.uniform(0.0, 1.0, n)
    return lower, diag, upper


@given(n=st.integers(2, 60), seed=st.integers(0, 2**31 - 1))
def test_solve_of_apply_is_identity(n, seed):
    """QuantLib's testTripleBandMapSolve: solve(apply(u)) == u."""
    rng = np.random.default_rng(seed)
    lower, diag, upper = _random_m_matrix(rng, n)
    u = rng.normal(size=n)
    rhs = np.empty(n)
    tridiagonal_apply(lower, diag, upper, u, rhs)
    out, work = np.empty(n), np.empty(n)
    assert thomas_solve(lower, diag, upper, rhs, out, work) == 0
    np.testing.assert_allclose(out, u, rtol=1e-12, atol=1e-12)


def test_thomas_matches_lapack(rng):
    lower, diag, upper = _random_m_matrix(rng, 200)
    rhs = rng.normal(size=200)
    out, work = np.empty(200), np.empty(200)
    thomas_solve(lower, diag, upper, rhs, out, work)
    np.testing.assert_allclose(out, thomas_solve_reference(lower, diag, upper, rhs), rtol=1e-12)


def test_thomas_reports_zero_pivot():
    diag = np.array([0.0, 1.0, 1.0])
    out = np.empty(3)
    assert thomas_solve(np.zeros(3), diag, np.zeros(3), np.ones(3), out, np.empty(3)) != 0


@pytest.mark.parametrize("left,right", [(BOUNDARY_DEGENERATE, BOUNDARY_DIRICHLET),
                                        (BOUNDARY_DEGENERATE, BOUNDARY_DEGENERATE)])
@given(seed=st.integers(0, 2**31 - 1))
def test_generator_kernel_matches_twin(left, right, seed):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-2, 3, 40))
    x = np.unique(np.round(x, 6))
    n = len(x)
    a = rng.uniform(0, 0.5, n) * rng.integers(0, 2, n)  # some rows purely convective: forces upwinding
    b, c = rng.normal(size=n), -rng.uniform(0, 0.1, n)
    out = [np.zeros(n) for _ in range(3)]
    n_up = build_generator(x, a, b, c, left, right, *out)
    ref = build_generator_reference(x, a, b, c, left, right)
    for got, want in zip(out, ref[:3]):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    assert n_up == ref[3]


def test_generator_is_m_matrix_in_interior(rng):
    x = SinhGrid(0.0, 200.0, 40.0, 101, 10.0).nodes()
    a, b, c = 0.5 * 0.16 * x**2, 0.06 * x, np.full_like(x, -0.06)
    lower, diag, upper = (np.zeros_like(x) for _ in range(3))
    build_generator(x, a, b, c, BOUNDARY_DEGENERATE, BOUNDARY_DIRICHLET, lower, diag, upper)
    assert np.all(lower[1:-1] >= 0) and np.all(upper[1:-1] >= 0)
    assert np.all(-diag[1:-1] >= lower[1:-1] + upper[1:-1] - 1e-12)  # diagonal dominance of −𝓛


def test_generator_second_order_on_smooth_function():
    """The three-point formulas are second order on a smooth non-uniform grid."""
    errors = []
    for n in (51, 101, 201):
        x = SinhGrid(0.5, 2.5, 1.2, n, 0.5, snap=False).nodes()
        v = np.sin(x) * np.exp(x)
        a, b, c = 0.3 * x**2, 0.1 * x, np.full_like(x, -0.05)
        exact = a * (2 * np.cos(x) * np.exp(x)) + b * (np.cos(x) + np.sin(x)) * np.exp(x) + c * v
        lower, diag, upper = (np.zeros_like(x) for _ in range(3))
        build_generator(x, a, b, c, BOUNDARY_DIRICHLET, BOUNDARY_DIRICHLET, lower, diag, upper)
        applied = np.empty_like(x)
        tridiagonal_apply(lower, diag, upper, v, applied)
        errors.append(np.max(np.abs(applied - exact)[1:-1]))
    orders = np.log2(np.asarray(errors[:-1]) / np.asarray(errors[1:]))
    assert np.all(orders > 1.8), f"observed orders {orders}"


def test_sinh_grid_snaps_center_and_is_monotone():
    x = SinhGrid(0.0, 400.0, 40.0, 257, 4.0).nodes()
    assert np.all(np.diff(x) > 0)
    assert np.any(x == 40.0)
    assert x[0] == 0.0 and x[-1] == 400.0
    # concentration: spacing at the centre much finer than at the far end
    i = int(np.flatnonzero(x == 40.0)[0])
    assert x[i + 1] - x[i] < 0.1 * (x[-1] - x[-2])


@pytest.mark.parametrize("kwargs,match", [
    (dict(lower=1.0, upper=0.0, center=0.5, n_points=10, concentration=1.0), "upper end"),
    (dict(lower=0.0, upper=1.0, center=2.0, n_points=10, concentration=1.0), "center"),
    (dict(lower=0.0, upper=1.0, center=0.5, n_points=3, concentration=1.0), "n_points"),
    (dict(lower=0.0, upper=1.0, center=0.5, n_points=10, concentration=float("nan")), "concentration"),
])
def test_sinh_grid_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SinhGrid(**kwargs)


def test_scheme_steps_cover_horizon_with_rannacher_half_steps():
    scheme = ThetaScheme.crank_nicolson(rannacher_steps=2, grading=2.0)
    dtau, weights, levels = scheme.time_steps(1.0, 10)
    assert dtau.sum() == pytest.approx(1.0, rel=1e-14)
    assert len(dtau) == 12 and np.all(weights[:4] == 1.0) and np.all(weights[4:] == 0.5)
    np.testing.assert_allclose(np.concatenate([[0.0], np.cumsum(dtau)])[levels + 1], scheme.level_times(1.0, 10))
    assert dtau[0] < dtau[-1]  # graded towards expiry


def test_scheme_rejects_bad_settings():
    with pytest.raises(ValueError, match="implicit_weight"):
        ThetaScheme(implicit_weight=0.2)
    with pytest.raises(ValueError, match="n_time"):
        ThetaScheme().time_steps(1.0, 0)


# === the diagnostics shape shared by every result === #

def test_solver_diagnostics_from_iterations_and_record():
    from pdecore.diagnostics import SolverDiagnostics

    diag = SolverDiagnostics.from_iterations(np.array([2, 3, 1]), n_time=3, n_space=11, wall_seconds=0.5)
    assert (diag.status, diag.status_name, diag.success, diag.message) == (0, "converged", True, "converged")
    assert (diag.total_iterations, diag.max_iterations, diag.n_steps) == (6, 3, 3)
    record = diag.as_dict()
    assert record["success"] is True and record["n_space"] == 11 and record["wall_seconds"] == 0.5
    failed = SolverDiagnostics.from_iterations([50], status=-1, n_time=1, n_space=5, wall_seconds=0.0)
    assert not failed.success and failed.status_name == "max_iter" and "maximum" in failed.message


@pytest.mark.parametrize("kwargs, match", [
    (dict(total_iterations=-1), "total_iterations must be >= 0"),
    (dict(max_iterations=9), "max_iterations=9 exceeds total_iterations"),
    (dict(n_space=2.5), "n_space must be an integer"),
    (dict(wall_seconds=float("nan")), "wall_seconds must be finite"),
])
def test_solver_diagnostics_rejects_inconsistent_counters(kwargs, match):
    from pdecore.diagnostics import SolverDiagnostics

    base = dict(status=0, message="converged", total_iterations=4, max_iterations=2, n_steps=2, n_time=2,
                n_space=5, wall_seconds=0.1)
    with pytest.raises(ValueError, match=match):
        SolverDiagnostics(**{**base, **kwargs})
