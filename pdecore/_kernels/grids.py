"""Node placement kernel of :func:`pdecore.grids.concentrated_log_nodes`.

The nodes solve ``F(z_k) = t_k`` for increasing targets ``t_k``, with the strictly increasing
cumulative density ``F(z) = B z + Σ_i asinh((z − c_i)/β_i)`` (``F' = ρ ≥ B > 0``). Node ``k`` is found
by a safeguarded Newton iteration started from node ``k − 1`` plus the previous spacing: the root lies
in ``[z_{k−1}, z_{k−1} + (t_k − F(z_{k−1}))/B]`` because ``ρ ≥ B``, Newton steps that leave the bracket
are replaced by bisection, and the bracket shrinks with every evaluation. The whole construction
(slope, targets, snapping, roots, the monotonicity check) is one kernel call: the NumPy version spent
most of its time in per-call overhead (the nodes of an American grid cost more than its solve did).
"""

from __future__ import annotations

import math

import numpy as np

from pdecore._numba import njit_kernel


@njit_kernel
def _cumulative(z, slope, centers, widths):
    total = slope * z
    for i in range(centers.shape[0]):
        total += math.asinh((z - centers[i]) / widths[i])
    return total


@njit_kernel
def _density(z, slope, centers, widths):
    total = slope
    for i in range(centers.shape[0]):
        d = z - centers[i]
        total += 1.0 / math.sqrt(widths[i] * widths[i] + d * d)
    return total


@njit_kernel
def concentrated_nodes(lower, upper, centers, widths, background, snap, has_snap, snap_parity, out):
    """Write the nodes of :func:`pdecore.grids.concentrated_log_nodes` into ``out`` (``n = out.size``).

    1. background slope ``B = background/(1 − background) · (peak mass)/(upper − lower)`` (1 without
       peaks), so that a fraction ``background`` of the nodes is uniform;
    2. targets ``t_k = F(lower) + ξ_k (F(upper) − F(lower))`` with ``ξ`` uniform, or, with a snapped
       point ``s``, piecewise linear with ``ξ_k = ξ(s)`` at the index ``k`` nearest to ``ξ(s)(n − 1)`` (of
       parity ``snap_parity`` unless it is −1);
    3. roots ``F(z_k) = t_k`` (module docstring), ``z_0 = lower``, ``z_{n−1} = upper``, ``z_k = s``.

    Returns 0, or 1 if two nodes coincide in floating point (widths too narrow for ``n``).
    """
    n = out.shape[0]
    peak_mass = 0.0
    for i in range(centers.shape[0]):
        peak_mass += math.asinh((upper - centers[i]) / widths[i]) - math.asinh((lower - centers[i]) / widths[i])
    slope = background / (1.0 - background) * peak_mass / (upper - lower) if peak_mass > 0.0 else 1.0
    f_lo = _cumulative(lower, slope, centers, widths)
    f_hi = _cumulative(upper, slope, centers, widths)
    targets = np.empty(n)
    k_snap = -1
    xi_snap = 0.0
    if has_snap and lower < snap < upper:
        xi_snap = (_cumulative(snap, slope, centers, widths) - f_lo) / (f_hi - f_lo)
        position = xi_snap * (n - 1)
        k_snap = int(round(position))
        if snap_parity >= 0 and k_snap % 2 != snap_parity:
            k_snap = k_snap + 1 if position > k_snap else k_snap - 1
        k_snap = min(max(k_snap, 1), n - 2)
        if snap_parity >= 0 and k_snap % 2 != snap_parity:  # clipped at an end: step inwards
            k_snap = k_snap + 1 if k_snap == 1 else k_snap - 1
    for i in range(n):
        if k_snap < 0:
            xi = i / (n - 1)
        elif i <= k_snap:
            xi = i / k_snap * xi_snap
        else:
            xi = xi_snap + (i - k_snap) / (n - 1 - k_snap) * (1.0 - xi_snap)
        targets[i] = f_lo + xi * (f_hi - f_lo)
    out[0] = lower  # the roots start from it
    _roots(lower, upper, slope, centers, widths, targets, 1e-12 * (f_hi - f_lo), out)
    out[n - 1] = upper
    if k_snap >= 0:
        out[k_snap] = snap
    for i in range(n - 1):
        if not out[i + 1] > out[i]:
            return 1
    return 0


@njit_kernel
def _roots(lower, upper, slope, centers, widths, targets, tolerance, out):
    """Write the roots of ``F(z) = targets[k]``, ``0 < k < n − 1``, into ``out`` (``targets`` increasing,
    within ``[F(lower), F(upper)]``; ``out[0]`` must hold ``lower``): at most 200 iterations a node, to a
    residual of ``tolerance``. The caller sets the end nodes."""
    n = targets.shape[0]
    z = lower
    previous_step = 0.0
    value = _cumulative(z, slope, centers, widths)  # F at the previous node
    for k in range(1, n - 1):
        target = targets[k]
        low = z
        residual = value - target
        high = upper
        if slope > 0.0 and residual < 0.0:
            high = min(upper, z - residual / slope)
        # start from the previous spacing (a smooth grid: usually within round-off of a Newton step)
        start = z + previous_step
        if low < start < high:
            start_residual = _cumulative(start, slope, centers, widths) - target
            if start_residual < 0.0:
                low = start
            else:
                high = start
            if abs(start_residual) < abs(residual):
                z, residual = start, start_residual
        it = 0
        while abs(residual) > tolerance and it < 200:
            it += 1
            if residual < 0.0:
                low = z
            else:
                high = z
            step = z - residual / _density(z, slope, centers, widths)
            z = step if low < step < high else 0.5 * (low + high)
            if high - low <= 1e-15 * max(1.0, abs(z)):
                break
            residual = _cumulative(z, slope, centers, widths) - target
        value = residual + target
        previous_step = z - out[k - 1]
        out[k] = z
