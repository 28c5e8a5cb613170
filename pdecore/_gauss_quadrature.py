"""Gaussian-transition quadrature on a padded uniform log grid, shared by the two discrete-time oracles.

:func:`pdecore.stopping_oracle` (one stopper, log-spot ``y = log S``) and :func:`pdecore.dynkin_oracle.dynkin_oracle`
(two stoppers, ``y = log|x|`` of the bond/stock ratio on each half-line) both compute, at every date, the
conditional expectation ``C(y_i) = e^{−rΔt} E[U(y_i + m + sZ)]`` of the next date's values over one Gaussian
step ``N(m, s²)`` of ``y``. They share one implementation so that both are checked by the same tests
(``tests/pdecore/test_oracle.py``) and stay bit-identical to each other's conventions:

* :class:`LogGrid` — the uniform grid with ``n_pad`` pad nodes on each side holding the kernel's support
  (``|m| + 9s``: tail mass below 1e-18) and the trapezoidal weights ``h φ_s(kh − m) e^{−rΔt}``;
* :class:`Piecewise` — ``U = base + Σ sign·1{y ≤ c}·D`` (payoff kinks and exercise boundaries as exact
  pieces) plus narrow bumps on their own sub-grids;
* :func:`expectation` — trapezoid on the smooth part (spectrally accurate for a Gaussian kernel), exact
  truncated-Gaussian moments on each piece's local cubic;
* :func:`pad_linear` — extension of interior values onto the pads linearly in ``e^y`` (the exact asymptotics
  of both oracles' values: linear in the spot for options, ``w → x/(x+1∓θ)`` tends to a constant for the game);
* :func:`interpolate` — 6-point Lagrange in ``y`` inside the grid (error ``O(h^6)``), linear in ``e^y``
  outside.

Moved verbatim from :mod:`pdecore.oracle` (names without the leading underscore, since this module is the
private boundary); the stopping oracle's results are bit-identical (``tests/pdecore/test_oracle.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr

from pdecore._kernels.oracle import discounted_correlate

__all__ = ["LogGrid", "Piecewise", "expectation", "interpolate", "pad_linear", "truncated_moments", "INV_SQRT_2PI"]

INV_SQRT_2PI = 0.3989422804014327


@dataclass(frozen=True)
class LogGrid:
    """Uniform padded log-spot grid; nodes ``n_pad .. n_pad + n_interior − 1`` are the interior."""

    y: np.ndarray
    h: float
    n_pad: int
    weights: np.ndarray  # discounted trapezoidal weights, length 2 n_pad + 1
    drift: float  # μ
    scale: float  # s
    discount: float  # e^{−rΔt}
    derivative_kernels: tuple  # e^{−rΔt} ∂^k_y φ_s(y − m) at the weights' offsets, k = 0..5

    @property
    def interior(self) -> slice:
        """Slice of the interior nodes: where conditional expectations are computed."""
        return slice(self.n_pad, self.y.size - self.n_pad)

    @property
    def y_interior(self) -> np.ndarray:
        """Interior log-spots (the targets ``y_i`` of the quadrature)."""
        return self.y[self.interior]


def truncated_moments(a: np.ndarray) -> np.ndarray:
    """``T_m(a) = ∫_{−∞}^{a} (z − a)^m φ(z) dz`` for ``m = 0..3``, shape ``(4,) + a.shape``.

    From the partial moments ``∫_{−∞}^{a} z^m φ = Φ, −φ, Φ − aφ, −(a² + 2)φ`` and the binomial
    expansion of ``(z − a)^m``.
    """
    cdf = ndtr(a)
    density = INV_SQRT_2PI * np.exp(-0.5 * a * a)
    return np.stack([
        cdf,
        -density - a * cdf,
        (1.0 + a * a) * cdf + a * density,
        -(a**3 + 3.0 * a) * cdf - (a * a + 2.0) * density,
    ])


@dataclass
class Piecewise:
    """``U(y) = base(y) + Σ_k sign_k 1{y ≤ c_k} D_k(y)`` on the padded grid (see module docstring)."""

    base: np.ndarray
    pieces: list = field(default_factory=list)  # (c, sign, D)
    bumps: list = field(default_factory=list)  # (nodes, weights·values): a narrow bump on its own sub-grid

    def nodal(self, y: np.ndarray) -> np.ndarray:
        """The represented function at the nodes ``y`` (the padded grid)."""
        out = self.base.copy()
        for c, sign, d in self.pieces:
            out += np.where(y <= c, sign * d, 0.0)
        return out


def expectation(grid: LogGrid, function: Piecewise) -> np.ndarray:
    """``e^{−rΔt} E[U(Y + μ + sZ)]`` at the interior nodes, singular points handled exactly."""
    y, h, s = grid.y, grid.h, grid.scale
    integrand = function.base.copy()
    polynomial_part = np.zeros(y.size - 2 * grid.n_pad)
    targets = grid.y_interior + grid.drift
    for c, sign, d in function.pieces:
        last = int(math.floor((c - y[0]) / h))  # last node ≤ c
        stencil = np.arange(last - 1, last + 3)
        t = (y[stencil] - c) / h
        coefficients = np.linalg.solve(np.vander(t, 4, increasing=True), d[stencil])
        # Remainder D − P is O(h^4) near c with small derivative jumps: trapezoid-safe.
        left = slice(0, last + 1)
        tt = (y[left] - c) / h
        cubic = coefficients[0] + tt * (coefficients[1] + tt * (coefficients[2] + tt * coefficients[3]))
        integrand[left] += sign * (d[left] - cubic)
        # Exact Gaussian integral of 1{y ≤ c} P(y), P(y) = Σ a_m ((y − c)/h)^m = Σ a_m (s/h)^m ((y − c)/s)^m.
        moments = truncated_moments((c - targets) / s)
        ratio = s / h
        polynomial_part += sign * grid.discount * sum(coefficients[m] * ratio**m * moments[m]
                                                      for m in range(4))
    if function.bumps:
        # Narrow bumps carried on their own fine sub-grids: the quadrature Σ_q ω_q ρ_q φ(y_q − m_i) is
        # regrouped by the nearest main-grid node y_j, with φ expanded about y_j in Taylor series
        # (|y_q − y_j| ≤ h/2 ≪ s: six terms leave a relative error below 1e-11), which turns it into
        # six correlations of binned moments with the derivative kernels of the density.
        nodes = np.concatenate([b[0] for b in function.bumps])
        weighted = np.concatenate([b[1] for b in function.bumps])
        nearest = np.clip(np.rint((nodes - y[0]) / h).astype(np.int64), 0, y.size - 1)
        offset = nodes - y[nearest]
        term = weighted.copy()
        buffer = np.empty(polynomial_part.size)
        for k, kernel in enumerate(grid.derivative_kernels):
            if k:
                term = term * offset / k
            discounted_correlate(np.bincount(nearest, weights=term, minlength=y.size), kernel, buffer)
            polynomial_part += buffer
    out = np.empty(y.size - 2 * grid.n_pad)
    discounted_correlate(integrand, grid.weights, out)
    return out + polynomial_part


def pad_linear(grid: LogGrid, interior_values: np.ndarray) -> np.ndarray:
    """Extend interior values onto the pads linearly in the spot ``S = e^y`` (exact asymptotics)."""
    n_pad = grid.n_pad
    spots = np.exp(grid.y)
    out = np.empty(grid.y.size)
    out[grid.interior] = interior_values
    i0, i1 = n_pad, n_pad + 1
    slope = (out[i1] - out[i0]) / (spots[i1] - spots[i0])
    out[:n_pad] = out[i0] + slope * (spots[:n_pad] - spots[i0])
    j0, j1 = grid.y.size - n_pad - 1, grid.y.size - n_pad - 2
    slope = (out[j0] - out[j1]) / (spots[j0] - spots[j1])
    out[-n_pad:] = out[j0] + slope * (spots[-n_pad:] - spots[j0])
    return out


def interpolate(grid: LogGrid, padded_values: np.ndarray, log_x: np.ndarray) -> np.ndarray:
    """Smooth values at arbitrary log-spots: 6-point Lagrange (error ``O(h^6)``) inside the grid,
    linear in S outside it."""
    y, h = grid.y, grid.h
    n = y.size
    position = (log_x - y[0]) / h
    inside = (position >= 2.0) & (position <= n - 3.0)
    start = np.clip(np.floor(position).astype(np.int64) - 2, 0, n - 6)
    t = np.where(inside, position - start, 2.5)
    value = np.zeros(np.shape(t))
    for k in range(6):
        basis = np.ones(np.shape(t))
        for j in range(6):
            if j != k:
                basis = basis * (t - j) / (k - j)
        value = value + basis * padded_values[start + k]
    if np.all(inside):
        return value
    x = np.exp(log_x)
    spots = np.exp(y)
    low_slope = (padded_values[1] - padded_values[0]) / (spots[1] - spots[0])
    high_slope = (padded_values[-1] - padded_values[-2]) / (spots[-1] - spots[-2])
    low = padded_values[0] + low_slope * (x - spots[0])
    high = padded_values[-1] + high_slope * (x - spots[-1])
    return np.where(inside, value, np.where(position < 2.0, low, high))
