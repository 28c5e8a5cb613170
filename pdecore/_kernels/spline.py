"""Natural cubic spline kernels (the interpolation of :class:`pdecore.american.AmericanResult`).

The second derivatives ``M_i = s''(x_i)`` solve the tridiagonal system
``h_{i−1} M_{i−1} + 2(h_{i−1} + h_i) M_i + h_i M_{i+1} = 6(Δ_i − Δ_{i−1})``, ``Δ_i = (y_{i+1} − y_i)/h_i``,
with ``M_0 = M_{n−1} = 0`` (de Boor 1978, "A Practical Guide to Splines", ch. IV). On ``[x_i, x_{i+1}]``,
with ``L = x_{i+1} − t``, ``R = t − x_i``,

``s(t) = (M_i L³ + M_{i+1} R³)/(6h_i) + (y_i/h_i − M_i h_i/6) L + (y_{i+1}/h_i − M_{i+1} h_i/6) R``.

Kernels rather than NumPy: the error estimate of every American solve evaluates two splines at three
points, where a dozen NumPy calls cost more than the arithmetic.
"""

from __future__ import annotations

import numpy as np

from pdecore._kernels.tridiagonal import thomas_solve
from pdecore._numba import njit_kernel


@njit_kernel
def natural_spline_moments(x, y, out):
    """Write the second derivatives ``M`` of the natural cubic spline through ``(x, y)`` into ``out``
    (the system of the module docstring, by the project's Thomas kernel; ``n ≥ 2``)."""
    n = x.shape[0]
    lower, diag, upper, rhs = np.zeros(n), np.ones(n), np.zeros(n), np.zeros(n)
    # end rows: M_0 = M_{n−1} = 0 (identity rows, zero right-hand side)
    for i in range(1, n - 1):
        h_left = x[i] - x[i - 1]
        h_right = x[i + 1] - x[i]
        lower[i], diag[i], upper[i] = h_left, 2.0 * (h_left + h_right), h_right
        rhs[i] = 6.0 * ((y[i + 1] - y[i]) / h_right - (y[i] - y[i - 1]) / h_left)
    thomas_solve(lower, diag, upper, rhs, out, np.empty(n))


@njit_kernel
def natural_spline_evaluate(x, y, moments, points, derivative, out):
    """``s^{(derivative)}(points)`` (derivative 0, 1 or 2) into ``out``; points outside ``[x_0, x_{n−1}]``
    use the end cells' cubics (the caller range-checks)."""
    n = x.shape[0]
    for k in range(points.shape[0]):
        t = points[k]
        # the cell [x_i, x_{i+1}] with x_i ≤ t (binary search, clipped to the end cells)
        low, high = 0, n - 1
        while high - low > 1:
            mid = (low + high) // 2
            if x[mid] <= t:
                low = mid
            else:
                high = mid
        i = low
        h = x[i + 1] - x[i]
        left, right = x[i + 1] - t, t - x[i]
        a = y[i] / h - moments[i] * h / 6.0
        b = y[i + 1] / h - moments[i + 1] * h / 6.0
        if derivative == 0:
            out[k] = (moments[i] * left**3 + moments[i + 1] * right**3) / (6.0 * h) + a * left + b * right
        elif derivative == 1:
            out[k] = (-moments[i] * left**2 + moments[i + 1] * right**2) / (2.0 * h) - a + b
        else:
            out[k] = (moments[i] * left + moments[i + 1] * right) / h
