"""Projection (PSOR) cross-check of :func:`pdecore.american.solve_american` in plain NumPy.

The penalty method consumes the obstacle *inside* the Newton iteration. This module solves the same
discrete problem the classical way: each θ-step is the linear complementarity problem

.. math::

    A v ≥ b, \\quad v ≥ g, \\quad (A v − b)^T (v − g) = 0, \\qquad
    A = I − wΔτ𝓛, \\; b = [I + (1 − w)Δτ𝓛] v^n,

solved by projected successive over-relaxation (Cryer 1971; Wilmott, Howison & Dewynne 1995,
"The Mathematics of Financial Derivatives", section 9.4):
``v_i ← max(g_i, v_i + ω (y_i − v_i))`` with ``y_i`` the Gauss–Seidel value. For an M-matrix ``A`` the
LCP has a unique solution, which the penalty iteration with ``Large → ∞`` also converges to (Forsyth &
Vetzal 2002, Theorem 4.3), so the two solvers must agree up to ``O(1/Large)`` and the tolerances.
Nodes are swept in red–black order, which keeps the sweep vectorized while remaining a Gauss–Seidel
(hence convergent, for ``0 < ω < 2``) iteration. Only the variational inequality (``penalty=None``) is
supported; it is used by the tests, never by the package.
"""

from __future__ import annotations

import numpy as np

from pdecore._kernels.operator import BOUNDARY_DEGENERATE, BOUNDARY_DIRICHLET
from pdecore._reference.operators import build_generator_reference
from pdecore.american import AmericanSettings
from pdecore.exceptions import ConvergenceError
from pdecore.params import AmericanOption, BlackScholes


def projected_sor_step(sub, main, sup, rhs, obstacle, start, *, omega=1.4, tol=1e-12, max_iter=20000):
    """Solve one LCP ``A v ≥ rhs, v ≥ obstacle, complementarity`` by red–black PSOR.

    Parameters
    ----------
    sub, main, sup : float64[n]
        Bands of ``A`` (``sub[i]`` multiplies ``v[i−1]``).
    rhs, obstacle, start : float64[n]
    omega : float
        Over-relaxation factor in (0, 2).
    tol : float
        Stop when the largest update is below ``tol``.

    Returns
    -------
    (v, iterations)
    """
    v = np.maximum(start, obstacle).astype(float)
    n = v.size
    colors = (np.arange(0, n, 2), np.arange(1, n, 2))
    for iteration in range(1, max_iter + 1):
        largest = 0.0
        for idx in colors:
            neighbours = np.zeros(idx.size)
            has_left = idx > 0
            has_right = idx < n - 1
            neighbours[has_left] += sub[idx[has_left]] * v[idx[has_left] - 1]
            neighbours[has_right] += sup[idx[has_right]] * v[idx[has_right] + 1]
            gauss_seidel = (rhs[idx] - neighbours) / main[idx]
            updated = np.maximum(obstacle[idx], v[idx] + omega * (gauss_seidel - v[idx]))
            largest = max(largest, float(np.max(np.abs(updated - v[idx]))))
            v[idx] = updated
        if largest < tol:
            return v, iteration
    raise ConvergenceError("projected SOR did not converge", iterations=max_iter, last_update=largest)


def solve_american_psor(model: BlackScholes, option: AmericanOption, *, n_space: int, n_time: int,
                        settings: AmericanSettings | None = None, omega: float = 1.4, tol: float = 1e-12):
    """The American price on the grid of :func:`solve_american` by PSOR.

    Same grid, operator, boundary rows and time steps as the penalty solver with ``penalty=None``
    (assembled here with the NumPy twins), so the results agree node by node.

    Returns
    -------
    spots : float64[n]
    values : float64[n]
        ``V(0, spots)``.
    iterations : int64[m]
        PSOR sweeps per sub-step.
    """
    settings = settings or AmericanSettings()
    settings = AmericanSettings(n_space=n_space, n_time=n_time, scheme=settings.scheme, width=settings.width,
                                spot_max_ratio=settings.spot_max_ratio, concentration=settings.concentration,
                                tol=settings.tol, max_iter=settings.max_iter)
    spec = settings.resolve(model, option)
    # 1. grid
    x = spec["nodes"]  # the very nodes of solve_american (log-concentrated, plus S = 0)
    # 2. operator, 4. boundary rows
    right = BOUNDARY_DIRICHLET if option.kind == "put" else BOUNDARY_DEGENERATE
    lower, diag, upper, _ = build_generator_reference(
        x, 0.5 * model.volatility**2 * x**2, (model.rate - model.dividend) * x, np.full(x.size, -model.rate),
        BOUNDARY_DEGENERATE, right)
    # 3. obstacle
    payoff = np.maximum(1.0 - x, 0.0) if option.kind == "put" else np.maximum(x - 1.0, 0.0)
    # 5. time stepping
    dtau, weights, _ = settings.scheme.time_steps(option.maturity, spec["n_time"])
    v = payoff.copy()
    iterations = np.zeros(dtau.size, dtype=np.int64)
    for k, (h, w) in enumerate(zip(dtau, weights)):
        explicit = v + (1.0 - w) * h * (diag * v + lower * np.roll(v, 1) * (np.arange(v.size) > 0)
                                         + upper * np.roll(v, -1) * (np.arange(v.size) < v.size - 1))
        v, iterations[k] = projected_sor_step(-w * h * lower, 1.0 - w * h * diag, -w * h * upper, explicit,
                                              payoff, v, omega=omega, tol=tol)
    return x * option.strike, v * option.strike, iterations
