"""The Gibbs spread density of the option market maker, in one place (SPEC section 5).

Density
-------
For one option and one side, with value gain ``Δ`` of a fill, intensity ``λ(δ) = A e^{−kδ}`` and
temperature γ > 0, the exploratory (Gibbs) policy of Fang & Xu (Theorem 1, eq. 15) is

.. math::

    π(δ \\mid Δ) ∝ \\exp\\big(f(δ; Δ)/γ\\big), \\qquad f(δ; Δ) = A e^{−kδ}(δ + Δ),
    \\qquad δ ∈ [δ_{min}, δ_{max}],

and the exploratory Hamiltonian is ``H_γ(Δ) = γ log ∫ exp(f/γ) dδ = E_π[λ(δ)(δ + Δ)] + γ 𝓗(π)``
(``𝓗`` the differential entropy). As γ → 0 the density concentrates on the argmax
``δ* = clip(1/k − Δ, δ_min, δ_max)`` (:func:`argmax_spread`; concavity of ``log f`` on the half-line
where ``f > 0`` makes the clipped stationary point the constrained maximizer).

Quadrature: one rule
--------------------
Every consumer (the grid HJB :func:`pdecore.solve_market_making`, the quadratic approximation
:func:`pdecore.quadratic_approximation` and the RL policy table
:class:`rl.market_making.policies.GibbsSpreadTable`) uses the same discretization of π: the exponent
``u(δ) = f(δ; Δ)/γ`` is evaluated at ``n_quadrature + 1`` equispaced nodes on the spread interval
(:func:`spread_nodes`) and taken *linear inside each cell*, so the density is exponential in each
cell and every integral of it is exact (the "exponential-linear" rule). This stays accurate when Δ
pins the density against a bound with a decay length far below the cell width, where a midpoint or
trapezoidal rule fails; it is second order in the node spacing elsewhere. Two evaluations of the
same piecewise-exponential density are provided, each for what its consumer needs:

* :func:`gibbs_moments` (grid HJB, quadratic approximation): ``H_γ``, its exact derivative in Δ
  (the fill rate interpolated linearly under the density, so that the Hermite tables of the time
  stepper are consistent) and the mean spread; twin of the Numba kernel
  ``pdecore._kernels.hjb.gibbs_moments_kernel``;
* :func:`gibbs_policy_moments` and :func:`gibbs_quantiles` (the RL policy): mean spread, fill rate
  and income rate at each cell's conditional mean (second order), the entropy (exact for the
  piecewise-exponential density) and the quantile function (exact inverse of its CDF), which the
  simulator samples by inversion of common uniforms.

The slow brute-force twin of both is
:func:`pdecore._reference.market_making.gibbs_density_reference` (trapezoidal rule on a fine grid).

References
----------
SPEC.md section 5; Fang & Xu (the market-making-of-options paper in ``shared/seeds``), Theorem 1 and
Algorithm 1; Guéant, Lehalle & Fernandez-Tapia (2013) for the exponential-intensity Hamiltonian.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from pdecore._numba import STATUS_OK
from pdecore.budget import check_memory, check_work
from pdecore.checks import check_finite_array, check_int, check_nonnegative, check_positive, check_real
from pdecore.exceptions import ConvergenceError

__all__ = ["argmax_spread", "deterministic_quotes", "spread_nodes", "check_spread_bounds",
           "gibbs_moments", "gibbs_density", "gibbs_policy_moments", "gibbs_quantiles",
           "quantile_levels", "GibbsPolicyMoments", "GibbsPolicyTable", "gibbs_policy_table",
           "DEFAULT_N_QUADRATURE", "SCORE_MAX", "Z_MAX"]

#: Intervals of the exponential-linear rule for the γ > 0 integrals of the grid HJB.
DEFAULT_N_QUADRATURE = 1024
#: Spacing of the grid HJB's Hamiltonian table in Δ near the active region (the rational map
#: coarsens the tails).
TABLE_SPACING = 0.00025
MAX_TABLE_POINTS = 200_001
#: Normal-score range of the quantile levels (tail mass beyond: 1e-15).
SCORE_MAX = 8.0
#: The policy table covers ``|kΔ| ≤ 10⁴`` (``z = asinh(kΔ)``); beyond it the density is pinned to a
#: bound to within ~1e-5 of the interval.
Z_MAX = math.asinh(1e4)


# ============================================================================ checks
def check_spread_bounds(bounds, temperature: float) -> tuple[float, float]:
    """``(low, high)`` as floats, refusing pairs that are not an interval or, with γ > 0, not finite.

    The Gibbs density ``exp(A e^{−kδ}(δ+Δ)/γ)`` is not normalizable on an unbounded interval, so
    γ > 0 needs finite bounds; γ = 0 (the argmax) accepts ``−inf``/``inf``.
    """
    fix = "pass spread_bounds=(low, high) with low < high, e.g. (0.0, 4.0)"
    try:
        low, high = bounds
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise ValueError(f"spread_bounds must be a pair (low, high) of numbers, got {bounds!r}; "
                         f"{fix}") from None
    if math.isnan(low) or math.isnan(high) or low == math.inf or high == -math.inf:
        raise ValueError(f"spread_bounds must be (low, high) with low < inf and high > -inf, got "
                         f"{bounds!r}; {fix}")
    if not low < high:
        raise ValueError(f"spread_bounds is empty or inverted: low={low!r} must be < high={high!r}; "
                         f"{fix}")
    if temperature > 0.0 and not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"spread_bounds must be finite when temperature > 0 (the Gibbs density "
                         f"exp(A e^(-kδ)(δ+Δ)/γ) is not normalizable on an unbounded interval), got "
                         f"{bounds!r} with temperature={temperature!r}; pass e.g. spread_bounds=(0.0, "
                         "4.0) or temperature=0")
    return (low, high)


#: Largest magnitude of a market-making parameter in its own unit (also
#: :data:`pdecore.market_making_params.MAX_MAGNITUDE`): the Gibbs exponent ``A e^{−kδ}(δ+Δ)/γ`` is a product
#: of four such numbers, so 1e12 per factor keeps it far inside float64 (1e308).
MAX_MAGNITUDE = 1e12


def _check_magnitude(name: str, value: float, fix: str) -> float:
    if abs(value) > MAX_MAGNITUDE:
        raise ValueError(f"{name} must be <= {MAX_MAGNITUDE:g} in magnitude (the Gibbs exponent A e^(-kδ)(δ+Δ)/γ is "
                         f"a product of four such numbers and must stay inside the float64 range), got {value!r}; "
                         f"{fix}")
    return value


def _check_side(intensity, decay, temperature, low, high) -> None:
    """Refuse the parameters of one side's Gibbs density by name (A, k > 0, γ > 0, finite bounds)."""
    for name, value, fix in (("intensity", intensity, "pass the fill rate A > 0 at zero spread"),
                             ("decay", decay, "pass the intensity decay k > 0"),
                             ("temperature", temperature,
                              "the Gibbs density needs γ > 0; use argmax_spread for γ = 0")):
        _check_magnitude(name, check_positive(name, value, fix=fix), fix)
    for name, value in (("low", low), ("high", high)):
        # the density needs finite bounds (γ > 0): named here, the pair's order by check_spread_bounds
        _check_magnitude(name, check_real(name, value, fix="pass finite spread bounds, e.g. low=0, high=4"),
                         "pass spread bounds in price units, e.g. low=0, high=4")
    check_spread_bounds((low, high), temperature)


def _check_gains(gain) -> np.ndarray:
    """Finite gains Δ of at most :data:`MAX_MAGNITUDE` (bools refused), as a float array."""
    if gain is None or isinstance(gain, (bool, np.bool_)) or np.asarray(gain).dtype == bool:
        raise ValueError(f"gain must be numbers, got {gain!r}; pass the value gains Δ as an array")
    gain = check_finite_array("gain", gain, fix="pass finite value gains Δ")
    if gain.size and np.max(np.abs(gain)) > MAX_MAGNITUDE:
        raise ValueError(f"gain must be <= {MAX_MAGNITUDE:g} in magnitude, got max |Δ| = {np.max(np.abs(gain)):.3g}; "
                         "pass value gains in price units")
    return gain


#: Optimistic node evaluations of the exponential-linear rule per second (one core) for the work refusal.
_NODES_PER_SECOND = 1e8


def _check_rule(n_quadrature, n_gains: float, rows_at_once: float, what: str) -> int:
    """``n_quadrature`` as an int ≥ 2, refused past the budgets of :mod:`pdecore.budget`.

    The rule evaluates ``n_gains × (n_quadrature + 1)`` nodes in blocks of ``rows_at_once`` gains, each
    block holding about 8 float arrays of ``rows_at_once × (n_quadrature + 1)`` entries (exponents,
    pieces, partial sums), so both the memory and the work are known from the arguments.
    """
    n_quadrature = check_int("n_quadrature", n_quadrature, minimum=2,
                             fix="pass the number of spread intervals, e.g. n_quadrature=1024")
    nodes = float(n_quadrature) + 1.0
    shown = n_quadrature if n_quadrature < 10**15 else f"{float(n_quadrature):.3g}"
    fix = "pass n_quadrature of a few thousand at most (1024 intervals are accurate to ~1e-7)"
    check_memory(f"{what} with n_quadrature={shown}", 8.0 * 8.0 * max(1.0, rows_at_once) * nodes, fix=fix)
    check_work(f"{what} with n_quadrature={shown}", n_gains * nodes, rate=_NODES_PER_SECOND, fix=fix)
    return n_quadrature


def _rows_per_block(block_entries: int, n_quadrature, n_gains: int) -> float:
    """Gains per block of the chunked loops (``block_entries // nodes``, at least 1, at most all)."""
    try:
        nodes = float(n_quadrature) + 1.0
    except (TypeError, ValueError, OverflowError):
        return 1.0  # not a number: _check_rule refuses it by name
    return float(min(max(1.0, block_entries // nodes), max(1, n_gains)))


# ============================================================================ γ = 0: the argmax
def argmax_spread(gain, decay, low, high):
    """``δ* = clip(1/k − Δ, low, high)``: the maximizer of ``A e^{−kδ}(δ + Δ)`` over ``[low, high]``.

    The γ → 0 limit of the Gibbs policy (module docstring). ``gain`` may be a NumPy array or a
    torch tensor (then ``decay`` a tensor or float and the result stays on the tensor's device); the
    operations are the same in both, ``1/k − Δ`` then the clip.
    """
    stationary = 1.0 / decay - gain
    if hasattr(stationary, "clamp"):  # torch: keep the device (pdecore does not import torch)
        return stationary.clamp(low, high)
    return np.clip(stationary, low, high)


def deterministic_quotes(gain, intensity, decay, low, high):
    """Closed-form argmax of ``A e^{−kδ}(δ + Δ)`` over ``[low, high]`` (γ = 0).

    Returns ``(spread, rate, hamiltonian)`` broadcast over ``gain``: ``δ* = clip(1/k − Δ)``,
    ``λ = A e^{−kδ*}`` and ``H = λ(δ* + Δ)``. Concavity of ``log`` of the objective on the
    half-line where it is positive makes the clipped stationary point the constrained maximizer.
    """
    gain = np.asarray(gain, dtype=float)
    spread = argmax_spread(gain, decay, low, high)
    with np.errstate(over="ignore"):
        rate = intensity * np.exp(-decay * spread)
    hamiltonian = np.where(rate > 0.0, rate * (spread + gain), 0.0)
    return spread, rate, hamiltonian


# ============================================================================ the exponential-linear rule
def spread_nodes(low: float, high: float, n_quadrature: int) -> np.ndarray:
    """The ``n_quadrature + 1`` equispaced nodes of the rule on ``[low, high]``."""
    return np.linspace(low, high, n_quadrature + 1)


def _exp_linear_pieces(a, b):
    """For each piece, ``∫_0^1 e^{a(1−s)+bs} ds`` and ``∫_0^1 s e^{a(1−s)+bs} ds`` (a, b ≤ 0).

    Small ``|b − a|`` uses Taylor series to avoid cancellation.
    """
    d = b - a
    ea = np.exp(a)
    eb = np.exp(b)
    small = np.abs(d) < 1e-3
    safe = np.where(small, 1.0, d)
    whole = np.where(small, ea * (1.0 + d / 2.0 + d * d / 6.0 + d**3 / 24.0), (eb - ea) / safe)
    first = np.where(small, ea * (0.5 + d / 3.0 + d * d / 8.0 + d**3 / 30.0),
                     (eb * (safe - 1.0) + ea) / (safe * safe))
    return whole, first


def gibbs_moments(gain, intensity: float, decay: float, temperature: float, low: float, high: float,
                  n_quadrature: int = DEFAULT_N_QUADRATURE, *, chunk: int = 4096):
    """``H_γ(Δ)``, its derivative (mean fill rate) and the mean spread of the Gibbs policy.

    Computed with the exponential-linear rule (module docstring) on ``n_quadrature`` intervals of
    ``[low, high]``, in log-sum-exp form so that ``u/γ`` of several hundreds is harmless.

    Parameters
    ----------
    gain : array_like
        Value gains Δ (any shape).
    intensity, decay, temperature : float
        ``A``, ``k`` and γ > 0.
    low, high : float
        Finite spread bounds.

    Returns
    -------
    (hamiltonian, mean_rate, mean_spread) : arrays shaped like ``gain``
        ``mean_rate`` is the exact derivative of the discrete ``hamiltonian`` in Δ.
    """
    _check_side(intensity, decay, temperature, low, high)
    gain = _check_gains(gain)
    flat = gain.reshape(-1)
    n_quadrature = _check_rule(n_quadrature, flat.size, min(chunk, flat.size), "gibbs_moments")
    nodes = spread_nodes(low, high, n_quadrature)
    step = (high - low) / n_quadrature
    rate_nodes = intensity * np.exp(-decay * nodes)
    out_h = np.empty_like(flat)
    out_rate = np.empty_like(flat)
    out_spread = np.empty_like(flat)
    for start in range(0, flat.size, chunk):
        g = flat[start:start + chunk, None]
        u = rate_nodes * (nodes + g) / temperature
        top = u.max(axis=1, keepdims=True)
        a = u[:, :-1] - top
        b = u[:, 1:] - top
        whole, first = _exp_linear_pieces(a, b)
        second = whole - first  # ∫ (1 − s) e^{...}
        integral = whole.sum(axis=1)
        out_h[start:start + chunk] = temperature * (top[:, 0] + np.log(step * integral))
        # d/dΔ of the discrete log-partition: the rate interpolated linearly under the piecewise density
        rate_sum = (second * rate_nodes[:-1] + first * rate_nodes[1:]).sum(axis=1)
        out_rate[start:start + chunk] = rate_sum / integral
        out_spread[start:start + chunk] = (second * nodes[:-1] + first * nodes[1:]).sum(axis=1) / integral
    shape = gain.shape
    return out_h.reshape(shape), out_rate.reshape(shape), out_spread.reshape(shape)


def _gibbs_moments_fast(gains, intensity, decay, temperature, low, high, n_quadrature):
    """:func:`gibbs_moments` for a 1-D array of gains through the Numba kernel (same rule)."""
    from pdecore._kernels.hjb import gibbs_moments_kernel

    gains = np.ascontiguousarray(gains, dtype=float)
    nodes = spread_nodes(low, high, n_quadrature)
    rate_nodes = intensity * np.exp(-decay * nodes)
    values, rates, spreads = (np.empty_like(gains) for _ in range(3))
    status = gibbs_moments_kernel(gains, nodes, rate_nodes, temperature, values, rates, spreads)
    if status != STATUS_OK:
        raise ConvergenceError("exploratory Hamiltonian table is not finite", temperature=temperature,
                               intensity=intensity, decay=decay)
    return values, rates, spreads


def gibbs_density(gain: float, intensity: float, decay: float, temperature: float, low: float,
                  high: float, n_quadrature: int = DEFAULT_N_QUADRATURE):
    """Gibbs policy density ``π(δ) ∝ exp(A e^{−kδ}(δ+Δ)/γ)`` on the quadrature nodes.

    Returns ``(spreads, density)``; the density is normalized so that the exponential-linear rule
    (piecewise exponential between nodes) integrates it to exactly one.
    """
    _check_side(intensity, decay, temperature, low, high)
    n_quadrature = _check_rule(n_quadrature, 1.0, 1.0, "gibbs_density")
    nodes = spread_nodes(low, high, n_quadrature)
    step = (high - low) / n_quadrature
    u = intensity * np.exp(-decay * nodes) * (nodes + float(gain)) / temperature
    top = u.max()
    whole, _ = _exp_linear_pieces(u[:-1] - top, u[1:] - top)
    log_norm = top + math.log(step * whole.sum())
    return nodes, np.exp(u - log_norm)


# ============================================================================ the grid HJB's Hermite table
@dataclass(frozen=True)
class _GibbsTable:
    """``H_γ``, mean rate and mean spread on ``Δ = center + width·x/(1 − |x|)``, x uniform in (−1, 1).

    The NumPy side of the kernel's ``hermite_table`` (same map, same Hermite formula).
    """

    center: float
    width: float
    x_start: float
    x_step: float
    values: np.ndarray
    slopes: np.ndarray
    spreads: np.ndarray
    params: tuple  # (A, k, γ, low, high, n_quadrature)

    @staticmethod
    def _to_gain(center, width, x):
        return center + width * x / (1.0 - np.abs(x))

    @property
    def nodes(self) -> np.ndarray:
        """The x nodes."""
        return self.x_start + self.x_step * np.arange(self.values.size)

    @property
    def scaled_slopes(self) -> np.ndarray:
        """``dH/dx · x_step`` at the nodes, the Hermite tangents the kernel reads."""
        return self.slopes * self.width / (1.0 - np.abs(self.nodes)) ** 2 * self.x_step

    @classmethod
    def build(cls, intensity, decay, temperature, low, high, n_quadrature, center, width, gain_bound):
        z_max = (gain_bound + abs(center)) / width + 1.0
        x_max = z_max / (1.0 + z_max)
        x_step = TABLE_SPACING / width
        n_points = int(math.ceil(2 * x_max / x_step)) + 1
        if n_points > MAX_TABLE_POINTS:
            n_points = MAX_TABLE_POINTS
        x_step = 2 * x_max / (n_points - 1)
        x = -x_max + x_step * np.arange(n_points)
        gains = cls._to_gain(center, width, x)
        values, slopes, spreads = _gibbs_moments_fast(gains, intensity, decay, temperature, low, high,
                                                      n_quadrature)
        return cls(center, width, -x_max, x_step, values, slopes, spreads,
                   (intensity, decay, temperature, low, high, n_quadrature))

    @property
    def gain_range(self):
        x_end = self.x_start + self.x_step * (self.values.size - 1)
        return (float(self._to_gain(self.center, self.width, self.x_start)),
                float(self._to_gain(self.center, self.width, x_end)))

    def _position(self, gain):
        z = (np.asarray(gain, dtype=float) - self.center) / self.width
        return (z / (1.0 + np.abs(z)) - self.x_start) / self.x_step

    def hamiltonian(self, gain):
        """Cubic Hermite interpolation, the NumPy twin of the kernel's ``hermite_table``."""
        position = self._position(gain)
        j = np.clip(np.floor(position).astype(int), 0, self.values.size - 2)
        s = position - j
        tangents = self.scaled_slopes
        return ((2 * s**3 - 3 * s**2 + 1) * self.values[j] + (s**3 - 2 * s**2 + s) * tangents[j]
                + (3 * s**2 - 2 * s**3) * self.values[j + 1] + (s**3 - s**2) * tangents[j + 1])

    def mean_spread(self, gain):
        """Mean Gibbs spread: linear interpolation in x inside the table, direct rule outside."""
        gain = np.asarray(gain, dtype=float)
        position = self._position(gain)
        inside = (position >= 0) & (position <= self.values.size - 1)
        result = np.interp(position, np.arange(self.values.size), self.spreads)
        if not np.all(inside | np.isnan(gain)):
            outside = ~inside & ~np.isnan(gain)
            result = np.array(result, dtype=float)
            result[outside] = gibbs_moments(gain[outside], *self.params)[2]
        return result

    def interpolation_error(self, every: int = 97) -> float:
        """Largest ``|Hermite − direct rule| / (1 + |H|)`` at interval midpoints (every ``every``-th)."""
        index = np.arange(0, self.values.size - 1, every)
        x_mid = self.x_start + (index + 0.5) * self.x_step
        gains = self._to_gain(self.center, self.width, x_mid)
        exact = gibbs_moments(gains, *self.params)[0]
        return float(np.max(np.abs(self.hamiltonian(gains) - exact) / (1.0 + np.abs(exact))))


# ============================================================================ the RL policy's moments
def _normal_cdf(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(x)


def _log_expm1_ratio(slope: np.ndarray) -> np.ndarray:
    """``log((e^s − 1)/s)``, stable for every s (→ 0 as s → 0)."""
    mag = np.abs(slope)
    small = mag < 1e-6
    safe = np.where(small, 1.0, mag)
    return np.where(small, 0.5 * slope, np.maximum(slope, 0.0) + np.log(-np.expm1(-safe) / safe))


def _cell_mean_offset(slope: np.ndarray) -> np.ndarray:
    """Mean of x/h for the density ∝ e^{s x/h} on [0, h]: ``1/(1 − e^{−s}) − 1/s`` (→ ½ + s/12)."""
    small = np.abs(slope) < 1e-4
    safe = np.where(small, 1.0, slope)
    with np.errstate(over="ignore"):  # expm1(−s) = inf for s ≪ 0 gives the right limit −1/s
        return np.where(small, 0.5 + slope / 12.0, -1.0 / np.expm1(-safe) - 1.0 / safe)


def _policy_cells(gains: np.ndarray, nodes: np.ndarray, rate_nodes: np.ndarray, temperature: float):
    """Cell probabilities ``[D, G−1]`` (each row sums to one), their logs and the cell slopes of ``u``.

    ``u = λ(δ)(δ + Δ)/γ`` at the nodes, linear in each cell: the cell mass is
    ``h e^{u_left} (e^s − 1)/s`` with ``s`` the cell's rise of ``u``, in log-sum-exp form.
    """
    width = nodes[1] - nodes[0]
    ell = rate_nodes[None, :] * (nodes[None, :] + gains[:, None]) / temperature  # [D, G]
    left = ell[:, :-1]
    slope = ell[:, 1:] - left
    shift = np.max(ell, axis=1, keepdims=True)
    log_mass = left - shift + math.log(width) + _log_expm1_ratio(slope)  # log ∫_cell e^{ℓ − shift}
    top = np.max(log_mass, axis=1, keepdims=True)
    log_total = top + np.log(np.sum(np.exp(log_mass - top), axis=1, keepdims=True))
    prob = np.exp(log_mass - log_total)  # [D, G-1], sums to one
    return prob, log_mass - log_total, slope


class GibbsPolicyMoments(NamedTuple):
    """Moments of the Gibbs density at each Δ (arrays shaped like the gains)."""

    mean_spread: np.ndarray  # E_π[δ]
    rate: np.ndarray         # E_π[λ(δ)]
    income: np.ndarray       # E_π[λ(δ) δ]
    entropy: np.ndarray      # −∫ π log π


def gibbs_policy_moments(gains, intensity: float, decay: float, temperature: float, low: float,
                         high: float, n_quadrature: int) -> GibbsPolicyMoments:
    """Mean spread, fill rate, income rate and entropy of the Gibbs policy at each gain Δ.

    The exponential-linear rule of the module docstring on ``n_quadrature`` cells of
    ``[low, high]``: cell masses, cell means and the entropy are exact for the piecewise-exponential
    density; the fill rate ``e^{−kδ}`` is evaluated at each cell's conditional mean (second-order
    accurate in the cell width). Processed in chunks of gains to bound memory.
    """
    _check_side(intensity, decay, temperature, low, high)
    gains = np.asarray(gains, dtype=float)
    deltas = gains.reshape(-1)
    n_quadrature = _check_rule(n_quadrature, deltas.size, _rows_per_block(4_000_000, n_quadrature, deltas.size),
                               "gibbs_policy_moments")
    nodes = spread_nodes(low, high, n_quadrature)
    width = nodes[1] - nodes[0]
    rate_nodes = intensity * np.exp(-decay * nodes)
    out = {key: np.empty(deltas.size) for key in GibbsPolicyMoments._fields}
    chunk = max(1, 4_000_000 // nodes.size)
    for start in range(0, deltas.size, chunk):
        part = slice(start, start + chunk)
        prob, log_prob, slope = _policy_cells(deltas[part], nodes, rate_nodes, temperature)
        offset = _cell_mean_offset(slope)
        means = nodes[None, :-1] + width * offset  # conditional mean of δ in each cell
        rates = intensity * np.exp(-decay * means)
        out["mean_spread"][part] = np.sum(prob * means, axis=1)
        out["rate"][part] = np.sum(prob * rates, axis=1)
        out["income"][part] = np.sum(prob * rates * means, axis=1)
        # −∫π log π; in a cell π = (p_c/h) e^{s x/h}/((e^s − 1)/s), so E[log π | cell] is exact:
        cell_log = log_prob - math.log(width) - _log_expm1_ratio(slope) + slope * offset
        out["entropy"][part] = -np.sum(prob * cell_log, axis=1)
    return GibbsPolicyMoments(*(out[key].reshape(gains.shape) for key in GibbsPolicyMoments._fields))


def quantile_levels(n_levels: int) -> np.ndarray:
    """Probability levels equispaced in the normal score ``x = Φ^{-1}(u) ∈ [−8, 8]``, ends at 0 and 1.

    The quantile of the bell-shaped Gibbs density is then nearly linear in x between levels, and the
    tails (u near 0 or 1) are resolved.
    """
    levels = _normal_cdf(np.linspace(-SCORE_MAX, SCORE_MAX, n_levels))
    levels[0], levels[-1] = 0.0, 1.0
    return levels


def gibbs_quantiles(gains, levels, intensity: float, decay: float, temperature: float, low: float,
                    high: float, n_quadrature: int) -> np.ndarray:
    """Quantiles ``F^{-1}(u; Δ)``, shape ``[D, L]``, of the piecewise-exponential Gibbs density.

    The exact inverse of the CDF of the exponential-linear rule (module docstring) at each of the
    ``D`` gains and ``L`` levels; monotone in u, so common uniforms couple policies.
    """
    _check_side(intensity, decay, temperature, low, high)
    q_deltas = np.asarray(gains, dtype=float).reshape(-1)
    levels = np.asarray(levels, dtype=float)
    n_quadrature = _check_rule(n_quadrature, q_deltas.size, _rows_per_block(2_000_000, n_quadrature, q_deltas.size),
                               "gibbs_quantiles")
    nodes = spread_nodes(low, high, n_quadrature)
    width = nodes[1] - nodes[0]
    rate_nodes = intensity * np.exp(-decay * nodes)
    quantiles = np.empty((q_deltas.size, levels.size))
    chunk = max(1, 2_000_000 // nodes.size)
    for start in range(0, q_deltas.size, chunk):
        part = slice(start, start + chunk)
        prob, _, slope = _policy_cells(q_deltas[part], nodes, rate_nodes, temperature)
        cdf = np.concatenate([np.zeros((prob.shape[0], 1)), np.cumsum(prob, axis=1)], axis=1)
        cdf /= cdf[:, -1:]
        for row in range(prob.shape[0]):
            cell = np.clip(np.searchsorted(cdf[row], levels, side="right") - 1, 0, prob.shape[1] - 1)
            mass = prob[row, cell]
            w = np.clip((levels - cdf[row, cell]) / np.where(mass > 0.0, mass, 1.0), 0.0, 1.0)
            s = slope[row, cell]
            small = np.abs(s) < 1e-6
            safe = np.where(small, 1.0, s)
            # inverse CDF of e^{s x} on [0, 1]: x = log(1 + w (e^s − 1))/s, computed without overflow
            big = safe > 30.0
            tail = np.exp(-np.clip(safe, 30.0, 700.0))
            frac_pos = np.where(big, 1.0 + np.log(np.maximum(w, 1e-300) + (1.0 - w) * tail)
                                / np.where(big, safe, 1.0), 0.0)
            frac_reg = np.log1p(w * np.expm1(np.minimum(safe, 30.0))) / safe
            frac = np.where(small, w, np.where(big, frac_pos, frac_reg))
            quantiles[start + row] = nodes[cell] + width * np.clip(frac, 0.0, 1.0)
    return quantiles


class GibbsPolicyTable(NamedTuple):
    """The RL policy's tables of one (A, k): moments on ``n_delta`` and quantiles on ``n_delta_quantile``
    gains equispaced in ``z = asinh(kΔ) ∈ [−Z_MAX, Z_MAX]`` (read-only arrays)."""

    mean_spread: np.ndarray  # [n_delta]
    rate: np.ndarray
    income: np.ndarray
    entropy: np.ndarray
    quantiles: np.ndarray  # [n_delta_quantile, n_levels]


@functools.lru_cache(maxsize=32)
def gibbs_policy_table(intensity: float, decay: float, temperature: float, low: float, high: float,
                       n_quadrature: int, n_delta: int, n_delta_quantile: int,
                       n_levels: int) -> GibbsPolicyTable:
    """Moments and quantiles of the Gibbs density of one (A, k) on the ``asinh(kΔ)`` grids.

    The grid in ``z = asinh(kΔ)`` is dense where the policy moves and sparse in the tails where the
    density is pinned at a bound. Memoized per process (a table takes seconds to build; the arrays
    are frozen).
    """
    n_delta = check_int("n_delta", n_delta, minimum=2, fix="pass e.g. 2049")
    n_delta_quantile = check_int("n_delta_quantile", n_delta_quantile, minimum=2, fix="pass e.g. 513")
    n_levels = check_int("n_levels", n_levels, minimum=2, fix="pass e.g. 129")
    check_nonnegative("temperature", temperature)
    # the moments and quantile tables themselves, then the rule's blocks (4e6 and 2e6 node entries)
    check_memory(f"gibbs_policy_table with n_delta={n_delta}, n_delta_quantile={n_delta_quantile}, "
                 f"n_levels={n_levels}", 8.0 * (8.0 * n_delta + 3.0 * float(n_delta_quantile) * n_levels),
                 fix="pass table sizes of a few thousand (defaults 2049, 513, 129)")
    n_quadrature = _check_rule(n_quadrature, float(n_delta) + float(n_delta_quantile), 1.0, "gibbs_policy_table")
    check_work(f"gibbs_policy_table with n_delta_quantile={n_delta_quantile}, n_levels={n_levels}",
               float(n_delta_quantile) * n_levels * 64.0, rate=_NODES_PER_SECOND,
               fix="pass table sizes of a few thousand (defaults 513 × 129)")
    deltas = np.sinh(np.linspace(-Z_MAX, Z_MAX, n_delta)) / decay
    moments = gibbs_policy_moments(deltas, intensity, decay, temperature, low, high, n_quadrature)
    q_deltas = np.sinh(np.linspace(-Z_MAX, Z_MAX, n_delta_quantile)) / decay
    quantiles = gibbs_quantiles(q_deltas, quantile_levels(n_levels), intensity, decay, temperature, low,
                                high, n_quadrature)
    table = GibbsPolicyTable(*moments, quantiles)
    for array in table:
        array.flags.writeable = False
    return table
