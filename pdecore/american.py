"""American options under Black–Scholes by the Forsyth–Vetzal penalty method (SPEC section 1).

Problems
--------
With ``g`` the payoff (``(K − S)^+`` for a put, ``(S − K)^+`` for a call) and the generator

.. math::

    𝓛V = ½σ²S² V_{SS} + (r − q) S V_S − r V,

:func:`solve_american` solves, on ``[0, T) × (0, ∞)`` with ``V(T, S) = g(S)``, one of

1. the variational inequality ``max{V_t + 𝓛V, g − V} = 0`` (the American price; ``penalty=None``);
2. the penalized PDE ``V_t + 𝓛V + κ(g − V)^+ = 0`` (stopping paper eq. 2.5; ``penalty=κ``), with
   ``0 ≤ V^VI − V^κ ≤ C/κ`` (Lemma 2.1);
3. the exploratory HJB ``V_t + 𝓛V + λ log(1 + e^{κ(g − V)/λ}) = 0`` (``penalty=κ, temperature=λ``),
   with ``V^κ ≤ V^Π ≤ V^κ + λ(T − t) log 2`` (Theorem 2.5).

With ``premium=True`` the early-exercise premium ``e = V − V_E`` (``V_E`` the European price) is
computed instead: it solves the same problem with the time-dependent obstacle ``h = g − V_E`` and the
smooth terminal value ``e(T) = 0`` (stopping paper, appendix B), and ``V = e + V_E`` is returned.

Discretization (Forsyth & Vetzal 2002, SIAM J. Sci. Comput. 23(6), 2095–2122)
---------------------------------------------------------------------------
Everything is solved in units of the strike (``x = S/K``, ``v = V/K``, temperature ``λ/K``), so that the
relative tolerances of the penalty iteration mean the same thing for every strike. The facade
assembles the problem in QuantLib's fixed order:

1. *grid*: a sinh grid on ``[0, x_max]`` concentrated at the strike with a node exactly on it
   (:class:`pdecore.grids.SinhGrid`); ``x_max`` and the concentration adapt to ``σ√T`` and ``r − q``
   (:meth:`AmericanSettings.resolve`);
2. *operator*: the M-matrix generator of 𝓛 (central differences where they keep the off-diagonals
   non-negative, upwind otherwise; :func:`pdecore._kernels.operator.build_generator`);
3. *obstacle*: ``g`` (or ``h = g − V_E`` per sub-step time point for the premium);
4. *boundary conditions*: at ``S = 0`` the PDE row itself (it degenerates to ``V_τ = −rV`` plus the
   obstacle term); at ``S_max`` a put is worthless (Dirichlet 0) and a call is linear (``V_SS = 0``);
5. *time stepping*: Crank–Nicolson in ``τ = T − t`` on levels graded towards expiry
   (``τ_n = T(n/N)^2``) with two Rannacher steps, each split into two implicit-Euler half-steps; each
   sub-step solves the penalized tridiagonal system by the penalty Newton iteration of
   :mod:`pdecore._kernels.penalty` (hard constraint with ``Large = 1/tol``, exact finite κ, or softplus).

The free boundary is ``S*(t) = sup{S < K : V(t, S) ≤ g(S)}`` for a put and ``inf{S > K : V ≤ g}`` for a
call (the exploratory exercise region ``π* ≥ ½`` is the same test). For the variational inequality the
smooth-pasting behaviour ``V − g ≈ ½Γ(S − S*)²`` makes ``√(V − g)`` linear near ``S*``, which is
what the interpolation between nodes uses; for finite penalties ``V − g`` changes sign transversally and
is interpolated linearly.

References
----------
Forsyth, P. A. & Vetzal, K. R. (2002), Quadratic convergence for valuing American options using a
penalty method, SIAM J. Sci. Comput. 23(6).
Rannacher, R. (1984), Finite element solution of diffusion problems with irregular data,
Numer. Math. 43.
Tavella, D. & Randall, C. (2000), Pricing Financial Instruments: The Finite Difference Method, Wiley.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pdecore._kernels.operator import BOUNDARY_DEGENERATE, BOUNDARY_DIRICHLET, build_generator
from pdecore._kernels.penalty import MODE_FINITE, MODE_HARD, MODE_NAMES, MODE_SOFTPLUS, penalty_march
from pdecore._numba import STATUS_MESSAGES, STATUS_OK
from pdecore.checks import check_finite_array, check_int, check_nonnegative, check_positive, check_range
from pdecore.diagnostics import SolverDiagnostics, freeze_arrays
from pdecore.exceptions import ConvergenceError
from pdecore.grids import SinhGrid
from pdecore.params import AmericanOption, BlackScholes
from pdecore.schemes import ThetaScheme

__all__ = ["AmericanSettings", "AmericanResult", "solve_american"]

MIN_SPACE_POINTS = 21
MIN_TIME_STEPS = 4


@dataclass(frozen=True, slots=True)
class AmericanSettings:
    """Numerical settings of :func:`solve_american` (kept apart from the model, like QuantLib's
    ``FdmSchemeDesc``). ``None`` fields are chosen from the model by :meth:`resolve`.

    Parameters
    ----------
    n_space : int, optional
        Number of spatial nodes (≥ 21). Default: 641, growing like ``(σ√T/0.8)^{3/4}`` beyond
        ``σ√T = 0.8`` (wide grids need more nodes for the same resolution near the strike).
    n_time : int, optional
        Number of graded time levels (≥ 4). Default: 400 (the price alone needs far fewer, about 100;
        the free boundary near expiry, where it moves like ``√τ``, needs them).
    scheme : ThetaScheme
        Time scheme: Crank–Nicolson with 4 Rannacher steps (each two implicit-Euler half-steps) and
        grading exponent 2 by default. Two Rannacher steps leave an O(1) error in the gamma at the
        strike because the graded first steps are too short to damp the payoff kink.
    width : float
        Number of standard deviations ``σ√T`` between the strike and ``S_max`` in log-space.
    spot_max_ratio : float, optional
        ``S_max/K`` if given (overrides ``width``).
    concentration : float, optional
        Width α of the node concentration around the strike, as a fraction of the strike.
        Default ``clip(0.3 σ√T, 0.02, 0.5)``.
    tol : float
        Relative tolerance of the penalty iteration (and ``Large = 1/tol`` for the VI).
    max_iter : int
        Newton iterations allowed per time step before :class:`ConvergenceError`.
    """

    n_space: int | None = None
    n_time: int | None = None
    scheme: ThetaScheme = ThetaScheme.crank_nicolson(rannacher_steps=4, grading=2.0)
    width: float = 5.0
    spot_max_ratio: float | None = None
    concentration: float | None = None
    tol: float = 1e-8
    max_iter: int = 50

    def __post_init__(self) -> None:
        if self.n_space is not None:
            check_int("n_space", self.n_space, minimum=MIN_SPACE_POINTS,
                      fix=f"use at least {MIN_SPACE_POINTS} spatial nodes (or None for the adaptive default)")
        if self.n_time is not None:
            check_int("n_time", self.n_time, minimum=MIN_TIME_STEPS,
                      fix=f"use at least {MIN_TIME_STEPS} time steps (or None for the adaptive default)")
        if not isinstance(self.scheme, ThetaScheme):
            raise ValueError(f"scheme must be a ThetaScheme, got {self.scheme!r}; "
                             "pass e.g. ThetaScheme.crank_nicolson()")
        check_range("width", self.width, 2.0, 20.0, fix="use about 5 standard deviations")
        if self.spot_max_ratio is not None:
            check_range("spot_max_ratio", self.spot_max_ratio, 1.0, 1e6, closed_low=False,
                        fix="pass S_max/K > 1, e.g. 4")
        if self.concentration is not None:
            check_positive("concentration", self.concentration, fix="pass e.g. 0.1 (a tenth of the strike)")
        check_range("tol", self.tol, 1e-14, 1e-2, fix="use e.g. 1e-8")
        check_int("max_iter", self.max_iter, minimum=1, fix="allow e.g. 50 iterations")

    def resolve(self, model: BlackScholes, option: AmericanOption, *,
                premium: bool = False) -> dict[str, Any]:
        """Concrete grid parameters for this model: ``n_space, n_time, spot_max_ratio, concentration``.

        ``S_max/K = exp(max(r − q, 0) T + width·σ√T)`` (at least 3), so that the far-field truncation
        moves the value by much less than the tolerance; the nodes are concentrated around the strike
        over ``α = 0.3 σ√T`` (clipped to [0.02, 0.5]), the scale on which the value departs from the
        payoff. The default sizes were chosen (see ``benchmarks/bench_american.py``) to reach an absolute
        error below 1e-4 on the SPEC case with margin.
        """
        total_vol = model.volatility * math.sqrt(option.maturity)
        x_max = self.spot_max_ratio
        if x_max is None:
            drift = max(model.rate - model.dividend, 0.0) * option.maturity
            x_max = max(3.0, math.exp(drift + self.width * total_vol))
        alpha = self.concentration
        if alpha is None:
            alpha = min(max(0.3 * total_vol, 0.02), 0.5)
        if self.n_space is not None:
            n_space = self.n_space
        else:
            # the log-range of the grid grows with σ√T; keep the nodes per standard deviation near the
            # strike roughly constant beyond σ√T ≈ 0.8 (measured: the error is spatial, second order)
            n_space = 641 * max(1.0, (total_vol / 0.8) ** 0.75)
            n_space = int(2 * math.ceil((n_space - 1) / 2) + 1)  # odd
        n_time = self.n_time if self.n_time is not None else 400
        return {"n_space": int(n_space), "n_time": int(n_time), "spot_max_ratio": float(x_max),
                "concentration": float(alpha)}


class _NaturalCubicSpline:
    """Natural cubic spline ``s`` through ``(x_i, y_i)`` with its first two derivatives.

    The second derivatives ``M_i = s''(x_i)`` solve the tridiagonal system
    ``h_{i−1} M_{i−1} + 2(h_{i−1} + h_i) M_i + h_i M_{i+1} = 6(Δ_i − Δ_{i−1})``,
    ``Δ_i = (y_{i+1} − y_i)/h_i``,
    with ``M_0 = M_{n−1} = 0`` (de Boor 1978, ch. IV). The natural end conditions are exact for the
    American payoffs: the value is linear at ``S = 0`` (put: exercised; call: worthless) and at
    ``S_max``. Written here on top of the project's Thomas kernel so that the command line does not
    pay for importing ``scipy.interpolate`` (about half a second).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        from pdecore._kernels.tridiagonal import thomas_solve

        n = x.size
        h = np.diff(x)
        slopes = np.diff(y) / h
        lower, diag, upper, rhs = np.zeros(n), np.ones(n), np.zeros(n), np.zeros(n)
        lower[1:-1], upper[1:-1] = h[:-1], h[1:]
        diag[1:-1] = 2.0 * (h[:-1] + h[1:])
        rhs[1:-1] = 6.0 * np.diff(slopes)
        second = np.zeros(n)
        thomas_solve(lower, diag, upper, rhs, second, np.zeros(n))
        self.x, self.y, self.h, self.second = x, y, h, second

    def __call__(self, points: np.ndarray, derivative: int = 0) -> np.ndarray:
        x, y, h, m = self.x, self.y, self.h, self.second
        i = np.clip(np.searchsorted(x, points, side="right") - 1, 0, x.size - 2)
        hi = h[i]
        left, right = x[i + 1] - points, points - x[i]  # distances to the interval's ends
        a = y[i] / hi - m[i] * hi / 6.0
        b = y[i + 1] / hi - m[i + 1] * hi / 6.0
        if derivative == 0:
            return (m[i] * left**3 + m[i + 1] * right**3) / (6.0 * hi) + a * left + b * right
        if derivative == 1:
            return (-m[i] * left**2 + m[i + 1] * right**2) / (2.0 * hi) - a + b
        return (m[i] * left + m[i + 1] * right) / hi


def _frozen(array) -> np.ndarray:
    array = np.array(array, dtype=float)
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class AmericanResult:
    """Solution of :func:`solve_american` on its grid, with interpolation and greeks.

    Attributes
    ----------
    model, option : BlackScholes, AmericanOption
    spots : float64[n]
        The spatial grid in price units (``spots[0] = 0``).
    times : float64[N + 1]
        Calendar times ``t`` of the stored levels, ascending from 0 to ``T``.
    values : float64[N + 1, n]
        ``V(times[j], spots[i])`` (the American price, also in premium mode).
    boundary : float64[N + 1]
        Exercise boundary ``S*(times[j])`` (NaN where there is no exercise region on the grid); the
        last entry is the limit ``S*(T−)``.
    stats : dict
        Newton iterations per sub-step (``newton_iterations``), their total/max/mean, wall time, grid
        sizes, the penalty mode and the resolved settings.
    penalty, temperature : float or None, float
    premium : bool
    diagnostics : SolverDiagnostics
        Status, Newton counters, grid used and wall time, in the shape shared by every pdecore result
        (``stats`` keeps the per-step counts and the resolved settings).
    """

    model: BlackScholes
    option: AmericanOption
    spots: np.ndarray
    times: np.ndarray
    values: np.ndarray
    boundary: np.ndarray
    stats: dict
    penalty: float | None = None
    temperature: float = 0.0
    premium: bool = False
    diagnostics: SolverDiagnostics | None = field(default=None, compare=False)
    _splines: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        freeze_arrays(self)  # a write into values would silently change the cached splines

    def _spline(self, level: int) -> "_NaturalCubicSpline":
        """Natural cubic spline through level ``level``; built once and cached."""
        spline = self._splines.get(level)
        if spline is None:
            spline = _NaturalCubicSpline(self.spots, self.values[level])
            self._splines[level] = spline
        return spline

    def _check_spots(self, spot) -> np.ndarray:
        spot = check_finite_array("spot", spot, fix="pass finite spot prices")
        low, high = self.spots[0], self.spots[-1]
        if np.any(spot < low) or np.any(spot > high):
            bad = spot[(spot < low) | (spot > high)].ravel()[0]
            raise ValueError(f"spot must lie in the grid range [{low:g}, {high:g}], got {bad!r}; "
                             "widen the grid with AmericanSettings(spot_max_ratio=...)")
        return spot

    @staticmethod
    def _out(value):
        return float(value) if np.ndim(value) == 0 else value

    def _interpolate(self, level: int, spots: np.ndarray) -> np.ndarray:
        """Spline value at ``spots``. For the variational inequality ``V ≥ g`` holds exactly, but the
        spline may undershoot the payoff by ``O(h²)`` next to the free boundary, where ``V`` is only
        ``C¹`` (the gamma jumps): the constraint is re-imposed there."""
        values = self._spline(level)(spots)
        if self.penalty is None:
            values = np.maximum(values, self.option.payoff(spots))
        return values

    def price(self, spot):
        """``V(0, spot)`` by cubic-spline interpolation on the grid (vectorized)."""
        spot = self._check_spots(spot)
        return self._out(self._interpolate(0, spot))

    def delta(self, spot):
        """``∂V/∂S`` at ``t = 0`` (derivative of the interpolating spline)."""
        spot = self._check_spots(spot)
        return self._out(self._spline(0)(spot, 1))

    def gamma(self, spot):
        """``∂²V/∂S²`` at ``t = 0`` (second derivative of the interpolating spline)."""
        spot = self._check_spots(spot)
        return self._out(self._spline(0)(spot, 2))

    def value(self, t, spots):
        """``V(t, spots)`` for a calendar time ``t ∈ [0, T]``: linear in time between stored levels,
        cubic spline in space."""
        t = check_range("t", t, 0.0, self.option.maturity,
                        fix=f"pass a calendar time between 0 and the maturity {self.option.maturity}")
        spots = self._check_spots(spots)
        j = int(np.searchsorted(self.times, t, side="right")) - 1
        j = min(max(j, 0), len(self.times) - 2)
        span = self.times[j + 1] - self.times[j]
        weight = (t - self.times[j]) / span
        result = (1.0 - weight) * self._interpolate(j, spots) + weight * self._interpolate(j + 1, spots)
        return self._out(result)

    def plot(self, ax=None):
        """Value at ``t = 0`` and payoff against spot, exercise boundary marked; returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        strike = self.option.strike
        keep = self.spots <= 2.5 * strike
        label = "American" if self.penalty is None else (
            f"penalized κ={self.penalty:g}" if self.temperature == 0 else
            f"exploratory κ={self.penalty:g}, λ={self.temperature:g}")
        ax.plot(self.spots[keep], self.values[0, keep], label=f"{label} value V(0, S)")
        ax.plot(self.spots[keep], self.option.payoff(self.spots[keep]), "k--", lw=1, label="payoff")
        if np.isfinite(self.boundary[0]):
            ax.axvline(self.boundary[0], color="C3", lw=1, label=f"S*(0) = {self.boundary[0]:.2f}")
        ax.set_xlabel("spot S")
        ax.set_ylabel("value")
        ax.set_title(f"American {self.option.kind}, K={strike:g}, T={self.option.maturity:g}")
        ax.legend()
        return ax


def _exercise_boundary(x, values, payoff, kind, interpolation, threshold):
    """Boundary of ``{V ≤ g}`` inside the money for every level, in units of the strike.

    Parameters
    ----------
    x : float64[n]
        Nodes (units of the strike).
    values : float64[L, n]
        Values per level (units of the strike).
    payoff : float64[n]
    kind : {"put", "call"}
    interpolation : {"sqrt", "linear"}
        ``"sqrt"``: smooth pasting makes ``√(V − g)`` linear in S next to the boundary, so the two
        nearest continuation nodes extrapolate to S* (the last discretely exercised node may itself lie
        slightly beyond S*, hence one more cell is allowed). ``"linear"``: ``V − g`` crosses zero
        transversally (finite penalty) and is interpolated linearly.
    threshold : float
        ``V − g ≤ threshold`` counts as exercised (the hard penalty leaves ``O(tol)`` residuals).

    Returns
    -------
    float64[L]
        ``S*/K`` per level; NaN where no in-the-money node is exercised.
    """
    if kind == "call":  # mirror the grid so that the exercise region lies to the left, as for a put
        boundary = _exercise_boundary(-x[::-1], values[:, ::-1], payoff[::-1], "put", interpolation,
                                      threshold)
        return -boundary
    n_levels, n = values.shape
    gap = values - payoff[None, :]
    exercised = (gap <= threshold) & (payoff[None, :] > 0.0)
    any_exercised = exercised.any(axis=1)
    # last exercised node i of each level (the put's exercise region is [0, S*]); i+1 continues
    i = n - 1 - np.argmax(exercised[:, ::-1], axis=1)
    i = np.minimum(i, n - 3)
    rows = np.arange(n_levels)
    j = i + 1
    g_i, g_j, g_k = gap[rows, i], gap[rows, j], gap[rows, j + 1]
    x_far, x_i, x_j, x_k = x[np.maximum(i - 1, 0)], x[i], x[j], x[j + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        linear = x_i + np.clip(-g_i / (g_j - g_i), 0.0, 1.0) * (x_j - x_i)
        linear = np.where(g_j != g_i, linear, x_i)
        if interpolation == "sqrt":
            s_j, s_k = np.sqrt(np.maximum(g_j, 0.0)), np.sqrt(np.maximum(g_k, 0.0))
            root = x_j - s_j * (x_k - x_j) / (s_k - s_j)
            usable = (g_j > 0.0) & (s_k > s_j)
            estimate = np.where(usable, np.clip(root, x_far, x_j), linear)
        else:
            estimate = linear
    return np.where(any_exercised, estimate, np.nan)


def _boundary_at_expiry(kind: str, strike: float, rate: float, dividend: float) -> float:
    """The limit ``S*(T−)`` (every in-the-money node is "exercised" at ``t = T`` itself, so the grid
    test is meaningless there): ``K min(1, r/q)`` for a put and ``K max(1, r/q)`` for a call
    (Kim 1990; NaN for a put with ``r ≤ 0`` or a call with ``q ≤ 0``, never exercised early)."""
    if kind == "put":
        if rate <= 0.0:
            return math.nan
        return strike * min(1.0, rate / dividend) if dividend > 0.0 else strike
    if dividend <= 0.0:
        return math.nan
    return strike * max(1.0, rate / dividend)


def solve_american(model: BlackScholes, option: AmericanOption, *, n_space: int | None = None,
                   n_time: int | None = None, penalty: float | None = None, temperature: float = 0.0,
                   premium: bool = False, settings: AmericanSettings | None = None) -> AmericanResult:
    """Price an American put or call by the penalty method (see the module docstring).

    Parameters
    ----------
    model : BlackScholes
        Volatility, rate and dividend yield.
    option : AmericanOption
        Kind, strike and maturity.
    n_space, n_time : int, optional
        Grid sizes; ``None`` takes the adaptive defaults of :class:`AmericanSettings` (absolute error
        below 1e-4 on the SPEC case). They override ``settings``.
    penalty : float, optional
        ``None`` solves the variational inequality (the American price); a float κ > 0 solves the
        penalized PDE ``V_t + 𝓛V + κ(g − V)^+ = 0``.
    temperature : float, default 0
        λ ≥ 0; with a finite penalty, λ > 0 solves the exploratory softplus HJB.
    premium : bool, default False
        Solve for the early-exercise premium ``V − V_E`` (smooth terminal data), return ``V``.
    settings : AmericanSettings, optional
        Remaining numerical settings (scheme, truncation, concentration, tolerance).

    Returns
    -------
    AmericanResult

    Raises
    ------
    ValueError
        Bad parameters (named, with the value and a fix), e.g. ``temperature > 0`` with
        ``penalty=None``, or grids that are too small.
    ConvergenceError
        The penalty Newton iteration did not converge within ``settings.max_iter`` at some step
        (the diagnostics carry the step, τ, the last relative change and the penalty).
    """
    started = time.perf_counter()
    if not isinstance(model, BlackScholes):
        raise ValueError(f"model must be a pdecore.BlackScholes, got {model!r}; "
                         "pass e.g. BlackScholes(volatility=0.4, rate=0.06)")
    if not isinstance(option, AmericanOption):
        raise ValueError(f"option must be a pdecore.AmericanOption, got {option!r}; "
                         "pass e.g. AmericanOption('put', strike=40, maturity=1)")
    temperature = check_nonnegative("temperature", temperature, fix="pass 0 (no exploration) or a positive λ")
    if penalty is not None:
        penalty = check_positive("penalty", penalty, fix="pass a positive penalty factor such as 10, or None "
                                 "for the variational inequality")
    if temperature > 0.0 and penalty is None:
        raise ValueError(f"temperature={temperature!r} > 0 needs a finite penalty, got penalty=None; "
                         "pass e.g. penalty=10 for the exploratory HJB, or temperature=0")
    if not isinstance(premium, (bool, np.bool_)):
        raise ValueError(f"premium must be True or False, got {premium!r}")
    settings = settings or AmericanSettings()
    if n_space is not None or n_time is not None:
        settings = AmericanSettings(
            n_space=settings.n_space if n_space is None else n_space,
            n_time=settings.n_time if n_time is None else n_time,
            scheme=settings.scheme, width=settings.width, spot_max_ratio=settings.spot_max_ratio,
            concentration=settings.concentration, tol=settings.tol, max_iter=settings.max_iter)
    grid_spec = settings.resolve(model, option, premium=bool(premium))
    strike, maturity = option.strike, option.maturity
    sigma, rate, dividend = model.volatility, model.rate, model.dividend

    # 1. grid (units of the strike, a node on the strike)
    x = SinhGrid(0.0, grid_spec["spot_max_ratio"], 1.0, grid_spec["n_space"],
                 grid_spec["concentration"]).nodes()
    n = x.size

    # 2. operator: 𝓛 = ½σ²x² ∂xx + (r − q) x ∂x − r
    # 4. boundary conditions are rows of the operator: PDE row at S = 0; put: V(S_max) = 0 (its
    #    payoff there, kept by a zero row); call: linearity V_SS = 0 at S_max
    right_kind = BOUNDARY_DIRICHLET if option.kind == "put" else BOUNDARY_DEGENERATE
    lower, diag, upper = np.zeros(n), np.zeros(n), np.zeros(n)
    build_generator(x, 0.5 * sigma**2 * x**2, (rate - dividend) * x, np.full(n, -rate),
                    BOUNDARY_DEGENERATE, right_kind, lower, diag, upper)

    # 5a. time levels (needed by the premium obstacle, which depends on τ)
    dtau, weights, levels = settings.scheme.time_steps(maturity, grid_spec["n_time"])
    tau_sub = np.concatenate([[0.0], np.cumsum(dtau)])
    tau_levels = tau_sub[levels + 1]

    # 3. obstacle
    payoff = np.maximum(1.0 - x, 0.0) if option.kind == "put" else np.maximum(x - 1.0, 0.0)
    if premium:
        from pdecore.european import bs_price

        european_sub = bs_price(option.kind, x[None, :], 1.0, tau_sub[:, None], sigma, rate, dividend)
        obstacle = np.ascontiguousarray(payoff[None, :] - european_sub)
        initial = np.zeros(n)
    else:
        obstacle = payoff[None, :].copy()
        initial = payoff.copy()

    # 5b. time stepping: the penalty Newton march, whole loop inside numba
    if penalty is None:
        mode, kappa, lam = MODE_HARD, 0.0, 0.0
    elif temperature > 0.0:
        mode, kappa, lam = MODE_SOFTPLUS, penalty, temperature / strike
    else:
        mode, kappa, lam = MODE_FINITE, penalty, 0.0
    values = np.zeros((levels.size, n))
    iterations = np.zeros(dtau.size, dtype=np.int64)
    changes = np.zeros(dtau.size)
    dummy = np.zeros((1, n))
    kernel_started = time.perf_counter()
    status, failing_step = penalty_march(lower, diag, upper, initial, dtau, weights, levels, obstacle, dummy,
                                         False, dummy, False, mode, kappa, lam, settings.tol,
                                         settings.max_iter, values, iterations, changes)
    kernel_seconds = time.perf_counter() - kernel_started
    if status != STATUS_OK:
        raise ConvergenceError(
            f"penalty Newton iteration failed: {STATUS_MESSAGES.get(status, status)}",
            step=int(failing_step), tau=float(tau_sub[failing_step + 1]), dtau=float(dtau[failing_step]),
            iterations=int(iterations[failing_step]), relative_change=float(changes[failing_step]),
            tol=settings.tol, penalty=penalty, temperature=temperature, mode=MODE_NAMES[mode])

    if premium:
        european_levels = bs_price(option.kind, x[None, :], 1.0, tau_levels[:, None], sigma, rate, dividend)
        values = values + european_levels

    # levels run in τ (0 = expiry); results run in calendar time t = T − τ, ascending
    values = values[::-1]
    times = maturity - tau_levels[::-1]
    times[0] = 0.0
    interpolation = "sqrt" if mode == MODE_HARD else "linear"
    threshold = 10.0 * settings.tol if mode == MODE_HARD else 0.0
    boundary = _exercise_boundary(x, values, payoff, option.kind, interpolation, threshold) * strike
    boundary[-1] = _boundary_at_expiry(option.kind, strike, rate, dividend)

    stats = {
        "newton_iterations": iterations.tolist(),
        "total_newton_iterations": int(iterations.sum()),
        "max_newton_iterations": int(iterations.max()),
        "mean_newton_iterations": float(iterations.mean()),
        "n_space": n, "n_time": grid_spec["n_time"], "n_substeps": int(dtau.size),
        "spot_max": grid_spec["spot_max_ratio"] * strike,
        "concentration": grid_spec["concentration"] * strike,
        "mode": MODE_NAMES[mode], "premium": bool(premium), "tol": settings.tol,
        "kernel_seconds": kernel_seconds, "wall_seconds": time.perf_counter() - started,
    }
    diagnostics = SolverDiagnostics.from_iterations(iterations, status=status, n_time=grid_spec["n_time"],
                                                    n_space=n, wall_seconds=stats["wall_seconds"])
    return AmericanResult(model=model, option=option, spots=_frozen(x * strike), times=_frozen(times),
                          values=_frozen(values * strike), boundary=_frozen(boundary), stats=stats,
                          penalty=penalty, temperature=temperature, premium=bool(premium),
                          diagnostics=diagnostics)
