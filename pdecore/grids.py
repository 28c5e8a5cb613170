"""Spatial grids (QuantLib's "mesher" role).

:class:`SinhGrid` concentrates nodes around a point of interest (the strike, the Merton ratio)
with the Tavella–Randall map ``x(ξ) = c + α sinh(c₂ ξ + c₁ (1 − ξ))``, ``ξ ∈ [0, 1]``, where
``c₁ = asinh((x_min − c)/α)`` and ``c₂ = asinh((x_max − c)/α)``. Small ``α`` concentrates strongly, large
``α`` tends to a uniform grid. The grid is smooth (neighbouring spacings differ by ``O(1/n)``), so the
three-point formulas keep their second order (Tavella & Randall 2000, "Pricing Financial Instruments:
The Finite Difference Method", section 5.3). With ``snap=True`` the node nearest to the centre is
moved onto it, so that a payoff kink lies exactly on a node (Forsyth & Vetzal 2002 do the same).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pdecore._kernels.grids import concentrated_nodes
from pdecore.budget import check_memory
from pdecore.checks import check_int, check_positive, check_real


@dataclass(frozen=True, slots=True)
class SinhGrid:
    """Non-uniform grid on ``[lower, upper]`` concentrated at ``center``.

    Parameters
    ----------
    lower, upper : float
        End points, ``lower < upper``.
    center : float
        Point of concentration, inside ``[lower, upper]``.
    n_points : int
        Number of nodes (≥ 5).
    concentration : float
        α > 0, the width over which nodes are concentrated (same units as x).
    snap : bool
        Put a node exactly on ``center``.
    """

    lower: float
    upper: float
    center: float
    n_points: int
    concentration: float
    snap: bool = True

    def __post_init__(self) -> None:
        lower = check_real("lower", self.lower)
        upper = check_real("upper", self.upper)
        if not upper > lower:
            raise ValueError(f"grid upper end must exceed lower end, got lower={lower!r}, upper={upper!r}; "
                             "swap them or widen the interval")
        center = check_real("center", self.center)
        if not lower <= center <= upper:
            raise ValueError(f"grid center must lie in [{lower}, {upper}], got {center!r}; "
                             "move the center inside the interval")
        # stored as an int (a float 1e300 that passes as integral would reach np.linspace as a float)
        object.__setattr__(self, "n_points", check_int("n_points", self.n_points, minimum=5, maximum=10**9,
                                                       fix="use between 5 and 1e9 grid points"))
        check_positive("concentration", self.concentration,
                       fix="pass a positive width, e.g. a tenth of the interval length")

    def nodes(self) -> np.ndarray:
        """The nodes, strictly increasing, ``nodes[0] = lower``, ``nodes[-1] = upper``."""
        # about four float arrays of n_points live at once (xi, the sinh argument, x, the result)
        check_memory(f"SinhGrid with n_points={self.n_points}", 32.0 * float(self.n_points),
                     fix="use fewer grid points (a few thousand resolve any 1-D problem of pdecore)")
        alpha = self.concentration
        c1 = np.arcsinh((self.lower - self.center) / alpha)
        c2 = np.arcsinh((self.upper - self.center) / alpha)
        xi = np.linspace(0.0, 1.0, self.n_points)
        x = self.center + alpha * np.sinh(c2 * xi + c1 * (1.0 - xi))
        x[0], x[-1] = self.lower, self.upper
        if self.snap and self.lower < self.center < self.upper:
            # shift the mapping parameter so that a node lands exactly on the centre: keeps the grid smooth
            xi_center = -c1 / (c2 - c1)
            k = int(round(xi_center * (self.n_points - 1)))
            k = min(max(k, 1), self.n_points - 2)
            i = np.arange(self.n_points, dtype=float)
            # piecewise-linear reparameterization of ξ that maps index k to xi_center exactly
            xi = np.where(i <= k, i / k * xi_center, xi_center + (i - k) / (self.n_points - 1 - k) * (1.0 - xi_center))
            x = self.center + alpha * np.sinh(c2 * xi + c1 * (1.0 - xi))
            x[0], x[k], x[-1] = self.lower, self.center, self.upper
        return x


def uniform_nodes(lower: float, upper: float, n_points: int) -> np.ndarray:
    """Uniform grid, validated like :class:`SinhGrid`."""
    check_int("n_points", n_points, minimum=3, fix="use at least 3 grid points")
    if not upper > lower:
        raise ValueError(f"grid upper end must exceed lower end, got lower={lower!r}, upper={upper!r}")
    return np.linspace(lower, upper, n_points)


def concentrated_log_nodes(log_lower: float, log_upper: float, centers, widths, n_points: int, *,
                           snap: float | None = None, background: float = 0.3,
                           snap_parity: int | None = None) -> np.ndarray:
    """Nodes ``z_0 < … < z_{n−1}`` on ``[log_lower, log_upper]`` (a log-price axis), dense near ``centers``.

    The node density is a uniform background plus one sinh peak per centre (QuantLib's
    ``Concentrating1dMesher`` with several concentration points does the same),

    .. math::

        ρ(z) = B + \\sum_i \\frac{1}{\\sqrt{β_i^2 + (z − c_i)^2}}, \\qquad
        F(z) = B z + \\sum_i \\operatorname{asinh}\\frac{z − c_i}{β_i},

    and node ``k`` solves ``F(z_k) = F(z_lo) + ξ_k (F(z_hi) − F(z_lo))``. Each peak alone is Tavella &
    Randall's sinh grid (spacing ≈ ``β_i`` times a constant at ``c_i``, growing linearly with the
    distance); the background ``B`` is set so that a fraction ``background`` of the nodes is spread
    uniformly. Why the background: between two centres, or along a strong drift, the solution moves on
    the diffusion scale everywhere, not only at the centres; a pure sinh grid would leave the middle
    coarse (the advection-dominated regime then falls back to first-order upwinding).

    Parameters
    ----------
    log_lower, log_upper : float
        End points, ``log_lower < log_upper``.
    centers, widths : sequence of float
        Concentration points ``c_i`` (inside the interval) and widths ``β_i > 0``.
    n_points : int
        Number of nodes (≥ 5).
    snap : float, optional
        A point (e.g. the strike, ``z = 0``) that must be a node: the uniform parameter ``ξ`` is
        reparameterized piecewise linearly so that one node lands on it exactly (as :class:`SinhGrid`
        does), which keeps the grid smooth on both sides.
    background : float
        Fraction of the nodes in the uniform part, in ``[0, 1)``.
    snap_parity : {0, 1}, optional
        Put the snapped node at an even (0) or odd (1) index, the nearer one to where it would fall:
        then every other node of the grid (a companion grid with half the spacing doubled) keeps it.

    Returns
    -------
    float64[n_points]
        Strictly increasing nodes with ``z_0 = log_lower``, ``z_{n−1} = log_upper``.
    """
    lower = check_real("log_lower", log_lower)
    upper = check_real("log_upper", log_upper)
    if not upper > lower:
        raise ValueError(f"grid upper end must exceed lower end, got lower={lower!r}, upper={upper!r}; "
                         "swap them or widen the interval")
    n_points = check_int("n_points", n_points, minimum=5, fix="use at least 5 grid points")
    centers = np.asarray(centers, dtype=float)
    widths = np.asarray(widths, dtype=float)
    if centers.shape != widths.shape or centers.ndim != 1 or not np.all(widths > 0.0):
        raise ValueError(f"centers and widths must be 1-D of equal length with widths > 0, got {centers!r}, "
                         f"{widths!r}")
    if not 0.0 <= background < 1.0:
        raise ValueError(f"background must lie in [0, 1), got {background!r}; pass e.g. 0.3")

    # the whole construction (background slope, targets, snapping, roots) runs in one kernel call: the
    # NumPy version spent as long in per-call overhead as in arithmetic
    z = np.empty(n_points)
    status = concentrated_nodes(float(lower), float(upper), np.ascontiguousarray(centers, dtype=float),
                                np.ascontiguousarray(widths, dtype=float), float(background),
                                float(snap) if snap is not None else 0.0, snap is not None,
                                -1 if snap_parity is None else int(snap_parity), z)
    if status != 0:
        raise ValueError(f"the concentration widths {widths!r} are too narrow for {n_points} nodes on "
                         f"[{lower}, {upper}] (nodes coincide in floating point); widen them")
    return z
