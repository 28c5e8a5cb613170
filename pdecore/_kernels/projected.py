"""Projected time-march for the American variational inequality: one direct solve per time step.

Problem
-------
The same discrete problem as ``MODE_HARD`` of :mod:`pdecore._kernels.penalty` with only a lower
obstacle ``ℓ``, solved exactly instead of by the penalty: each sub-step ``n → n+1`` is the linear
complementarity problem

.. math::

    A v ≥ b, \\quad v ≥ ℓ, \\quad (A v − b)_i (v − ℓ)_i = 0, \\qquad
    A = I − wΔτ𝓛, \\quad b = [I + (1−w)Δτ𝓛] v^n,

with ``A`` a tridiagonal M-matrix. When the exercise set ``{i : v_i = ℓ_i}`` is an interval at the
start of the grid (an American put: ``[0, S*]``; a call after the caller mirrors the grid), the
Brennan–Schwartz algorithm solves it directly (Brennan & Schwartz 1977, J. Finance 32(2); its
exactness for such problems: Jaillet, Lamberton & Lapeyre 1990, Acta Appl. Math. 21):

1. eliminate the super-diagonal from the last row down to the first (a UL factorization), so that
   row ``i`` reads ``a_i v_{i−1} + d_i v_i = y_i``;
2. substitute upwards from row 0, projecting on the obstacle: ``v_i = max(ℓ_i, (y_i − a_i v_{i−1})/d_i)``.

Steps 1–2 cost one tridiagonal solve, where the penalty iteration needs two or three. The pivots of
step 1 depend on the step size only: they are computed for a block of ``BLOCK`` steps at once (the
inner loop runs over the steps, so the divisions are independent and pipeline), leaving the serial
chains of steps 1–2 without a division. Whether the
exercise set had that shape is not assumed but checked: every step verifies the complementarity
conditions on the original rows (``(Av − b)_i ≥ −ε_i`` everywhere, ``|Av − b|_i ≤ ε_i`` where
``v_i > ℓ_i``; ``ε_i`` is 1e-9 of the row's magnitudes; checked inside the substitution loop, a row
behind it) — the LCP of an M-matrix has one solution, so a passed check proves the step exact — and
returns ``STATUS_NOT_ONE_INTERVAL``
otherwise (e.g. the two exercise boundaries of a put with ``q < r < 0``), and the caller then falls
back to the penalty iteration. Within the check the result is the LCP solution itself, i.e. the
``Large → ∞`` limit of the hard penalty (which differs from it by ``O(1/Large)``).

Time levels and obstacles follow :func:`pdecore._kernels.penalty.penalty_march`: ``obstacle`` is
``(m + 1, n)`` per sub-step time point or ``(1, n)`` constant; ``levels[j]`` is the sub-step after which
stored level ``j`` is reached (``-1``: the initial data).
"""

from __future__ import annotations

import math

import numpy as np

from pdecore._numba import STATUS_NOT_FINITE, STATUS_NOT_ONE_INTERVAL, STATUS_OK, STATUS_SINGULAR, njit_kernel

CHECK_RELATIVE = 1e-9
"""Complementarity residuals below this fraction of the row's magnitudes count as zero (round-off)."""

BLOCK = 16
"""Steps whose pivots are computed together."""


@njit_kernel(inline="always")
def _row_holds(a, d, c, v_left, v_centre, v_right, b, g):
    """Complementarity of one row ``a v_{i−1} + d v_i + c v_{i+1} − b`` with ``v_i ≥ g_i`` (to round-off
    ``CHECK_RELATIVE`` of the row's magnitudes); False for non-finite values."""
    left, centre, right = a * v_left, d * v_centre, c * v_right
    residual = left + centre + right - b
    slack = CHECK_RELATIVE * (abs(left) + abs(centre) + abs(right) + abs(b)) + 1e-300
    return residual >= -slack and (v_centre <= g or residual <= slack)


@njit_kernel
def projected_march(lower, diag, upper, initial, dtau, weights, levels, obstacle, values_out, iterations_out):
    """March the American LCP by one Brennan–Schwartz solve per sub-step (see the module docstring).

    Parameters
    ----------
    lower, diag, upper : float64[n]
        Bands of the generator 𝓛 (``lower[i]`` multiplies ``v[i−1]``).
    initial : float64[n]
        ``v`` at ``τ = 0``.
    dtau, weights : float64[m]
        Sub-step sizes and implicit weights.
    levels : int64[L]
        Sub-step index after which stored level ``j`` is reached; ``-1`` stores ``initial``.
    obstacle : float64[m + 1, n] or float64[1, n]
        ``ℓ`` per sub-step time point (or constant); the exercise set must start at index 0.
    values_out : float64[L, n]
        Receives the solution at each stored level.
    iterations_out : int64[m]
        Receives 1 per sub-step (one direct solve), for the same diagnostics as the penalty march.

    Returns
    -------
    status : int
        ``STATUS_OK``, ``STATUS_NOT_ONE_INTERVAL`` (complementarity check failed: use the penalty
        march), ``STATUS_SINGULAR`` or ``STATUS_NOT_FINITE``.
    failing_step : int
        Sub-step index of the failure, ``-1`` on success.
    """
    n = initial.shape[0]
    m = dtau.shape[0]
    n_levels = levels.shape[0]
    v = initial.copy()
    rhs = np.empty(n)
    reduced = np.empty(n)
    coupling = np.empty(n)  # upper[i]·lower[i+1], the product that enters every pivot
    for i in range(n - 1):
        coupling[i] = upper[i] * lower[i + 1]
    # inverse pivots of the UL elimination, for a block of steps at once: the pivots depend on the step
    # size only, and computing them across the block (inner loop over steps, independent) keeps the
    # divisions out of the serial chain of the elimination (a division's latency dominated the step)
    inverse_pivot = np.empty((n, BLOCK))
    step_weight = np.zeros(BLOCK)
    const_obstacle = obstacle.shape[0] == 1

    level = 0
    while level < n_levels and levels[level] < 0:
        values_out[level, :] = v
        level += 1

    for block_start in range(0, m, BLOCK):
        block = min(BLOCK, m - block_start)
        # pivots of A = I − s𝓛, s = wh:  p_{n−1} = 1 − s d_{n−1},  p_i = 1 − s d_i − s² u_i l_{i+1} / p_{i+1}
        for j in range(block):
            step_weight[j] = weights[block_start + j] * dtau[block_start + j]
            inverse_pivot[n - 1, j] = 1.0 / (1.0 - step_weight[j] * diag[n - 1])
        for i in range(n - 2, -1, -1):
            for j in range(block):
                s = step_weight[j]
                inverse_pivot[i, j] = 1.0 / (1.0 - s * diag[i] - s * s * coupling[i] * inverse_pivot[i + 1, j])
        # a zero pivot (not an M-matrix) shows as a non-finite inverse: refused before any substitution, so
        # that no NaN can be hidden by the projection max(free, ℓ) below
        for i in range(n):
            for j in range(block):
                if not math.isfinite(inverse_pivot[i, j]):
                    iterations_out[block_start + j] = 1
                    return STATUS_SINGULAR, block_start + j
        for j in range(block):
            k = block_start + j
            h = dtau[k]
            w = weights[k]
            g = obstacle[0] if const_obstacle else obstacle[k + 1]
            ew = (1.0 - w) * h
            ih = w * h
            # explicit part b = [I + (1 − w)h𝓛] v^n, fused with 1. the UL elimination from the last row
            # (row i becomes −s l_i v_{i−1} + p_i v_i = y_i): the loop's independent work overlaps the
            # serial chain of the elimination
            rhs[n - 1] = v[n - 1] + ew * (lower[n - 1] * v[n - 2] + diag[n - 1] * v[n - 1])
            reduced[n - 1] = rhs[n - 1]
            for i in range(n - 2, 0, -1):
                rhs[i] = v[i] + ew * (lower[i] * v[i - 1] + diag[i] * v[i] + upper[i] * v[i + 1])
                reduced[i] = rhs[i] + ih * upper[i] * inverse_pivot[i + 1, j] * reduced[i + 1]
            rhs[0] = v[0] + ew * (diag[0] * v[0] + upper[0] * v[1])
            reduced[0] = rhs[0] + ih * upper[0] * inverse_pivot[1, j] * reduced[1]
            # 2. projected substitution upwards from row 0, fused with 3. the complementarity check of
            #    row i − 1 on the original rows (A v − b ≥ 0, and = 0 where v > ℓ, to round-off), which
            #    certifies the one-interval assumption; a non-finite value fails it (comparisons with NaN
            #    are false; the pivots were checked finite above)
            free = reduced[0] * inverse_pivot[0, j]
            v[0] = max(free, g[0])
            free = (reduced[1] + ih * lower[1] * v[0]) * inverse_pivot[1, j]
            v[1] = max(free, g[1])
            failed = -1
            if not _row_holds(0.0, 1.0 - ih * diag[0], -ih * upper[0], 0.0, v[0], v[1], rhs[0], g[0]):
                failed = 0
            for i in range(2, n):
                # written so that one multiply and one add lie on the serial chain through v[i − 1]
                free = reduced[i] * inverse_pivot[i, j] + ih * lower[i] * inverse_pivot[i, j] * v[i - 1]
                v[i] = max(free, g[i])
                r = i - 1
                if not _row_holds(-ih * lower[r], 1.0 - ih * diag[r], -ih * upper[r], v[r - 1], v[r], v[i],
                                  rhs[r], g[r]):
                    failed = r
                    break
            r = n - 1
            if failed < 0 and not _row_holds(-ih * lower[r], 1.0 - ih * diag[r], 0.0, v[r - 1], v[r], 0.0,
                                             rhs[r], g[r]):
                failed = r
            if failed >= 0:
                iterations_out[k] = 1
                if not math.isfinite(v[failed]):
                    return STATUS_NOT_FINITE, k
                return STATUS_NOT_ONE_INTERVAL, k
            iterations_out[k] = 1
            while level < n_levels and levels[level] <= k:
                values_out[level, :] = v
                level += 1
    return STATUS_OK, -1
