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
        check_int("n_points", self.n_points, minimum=5, fix="use at least 5 grid points")
        check_positive("concentration", self.concentration,
                       fix="pass a positive width, e.g. a tenth of the interval length")

    def nodes(self) -> np.ndarray:
        """The nodes, strictly increasing, ``nodes[0] = lower``, ``nodes[-1] = upper``."""
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
