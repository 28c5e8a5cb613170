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

1. *grid*: the node ``S = 0`` plus nodes on ``[K e^{z_lo}, K e^{z_hi}]`` that are log-concentrated at the
   strike (a node exactly on it), at the spot and where the exercise boundary lives, with a fifth of
   them uniform in ``log S`` (:func:`pdecore.grids.concentrated_log_nodes`); the range follows the
   covered spots' drift ``(r − q − σ²/2)T`` in both directions plus ``width·σ√T`` and, for the
   variational inequality, ends inside the region beyond the perpetual boundary, which is exercised
   at every date (:meth:`AmericanSettings.resolve`);
2. *operator*: the M-matrix generator of 𝓛 (central differences where they keep the off-diagonals
   non-negative, upwind otherwise; :func:`pdecore._kernels.operator.build_generator`);
3. *obstacle*: ``g`` (or ``h = g − V_E`` per sub-step time point for the premium);
4. *boundary conditions*: at ``S = 0`` the PDE row itself (it degenerates to ``V_τ = −rV`` plus the
   obstacle term); at ``S_max`` a put is worthless (Dirichlet 0) and a call is linear (``V_SS = 0``);
5. *time stepping*: Crank–Nicolson in ``τ = T − t`` on levels graded towards expiry
   (``τ_n = T(n/N)^2``) with four Rannacher steps, each split into two implicit-Euler half-steps. For
   the variational inequality each sub-step is one Brennan–Schwartz direct solve of the linear
   complementarity problem, certified by its complementarity conditions
   (:mod:`pdecore._kernels.projected`; a call on the mirrored grid), with the penalty iteration as the
   fallback; the penalized and exploratory problems (and ``vi_solver="penalty"``) use the penalty
   Newton iteration of :mod:`pdecore._kernels.penalty` (hard constraint with ``Large = 1/tol``, exact
   finite κ, or softplus).

Accuracy contract: every solve is repeated on a companion grid with half the nodes (every other node
of the grid) and half the time levels; ``|V_h − V_2h|/(2^p − 1)`` (Richardson, ``p = 2`` or the observed order) at the spot is the
``price_error_estimate``. With default grid sizes both grids are doubled until it meets the
``precision`` preset's target (:data:`PRECISIONS`), or the call is refused with a ValueError naming the
regime; models beyond the engine's reach are refused up front (:func:`check_reach`).

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

from pdecore._kernels.exercise import exercise_boundary_levels
from pdecore._kernels.operator import BOUNDARY_DEGENERATE, BOUNDARY_DIRICHLET, build_generator
from pdecore._kernels.penalty import MODE_FINITE, MODE_HARD, MODE_NAMES, MODE_SOFTPLUS, penalty_march
from pdecore._kernels.projected import projected_march
from pdecore._kernels.spline import natural_spline_evaluate, natural_spline_moments
from pdecore._numba import STATUS_MESSAGES, STATUS_NOT_ONE_INTERVAL, STATUS_OK
from pdecore.checks import check_finite_array, check_int, check_positive, check_range
from pdecore.diagnostics import SolverDiagnostics, freeze_arrays
from pdecore.exceptions import ConvergenceError
from pdecore.grids import concentrated_log_nodes
from pdecore.params import MAX_PENALTY, AmericanOption, BlackScholes, check_temperature, positive_at_most
from pdecore.schemes import ThetaScheme

__all__ = ["AmericanSettings", "AmericanResult", "solve_american", "PRECISIONS", "Precision", "check_reach"]

MIN_SPACE_POINTS = 21
MIN_TIME_STEPS = 4
MAX_SPACE_POINTS, MAX_TIME_STEPS = 200_001, 100_000  # beyond: memory, not accuracy (refused by name)

# Reach of the engine. Beyond these the log-price range of the grid leaves floating point (σ√T) or the
# discount factors e^{−rT}, e^{−qT} under/overflow (|r|T, |q|T): refused, never silently wrong.
MAX_TOTAL_VOLATILITY = 20.0
MAX_RATE_TIMES_MATURITY = 50.0
MIN_TOTAL_VOLATILITY = 1e-7
MAX_LOG_MONEYNESS = 50.0
MIN_LOG_NODE, MAX_LOG_NODE = -80.0, 120.0
UNIFORM_FRACTION = 0.2  # of the nodes spread uniformly in log S (the rest at the concentration points)


@dataclass(frozen=True, slots=True)
class Precision:
    """One accuracy preset of :func:`solve_american` (``precision="fast" | "accurate" | "high"``).

    The engine solves on a grid and on a companion grid with half the nodes and half the time steps;
    ``|V_fine − V_coarse|`` at the spot is the reported ``price_error_estimate`` (for a second-order
    scheme it is 3× the error of the fine grid, for a first-order one equal to it: conservative in both).
    While it exceeds ``max(atol·K, rtol·V)`` both grids are doubled, up to ``budget`` node-steps; past the
    budget the call is refused with a ValueError naming the regime.

    Attributes
    ----------
    n_space, n_time : int
        Starting grid (grown for wide log-ranges and strong drifts, see :meth:`AmericanSettings.resolve`).
    width : float
        Standard deviations ``σ√T`` between the covered spots and the far ends of the grid.
    atol, rtol : float
        Error target: ``atol`` in units of the strike, ``rtol`` relative to the price.
    budget : float
        Largest ``n_space · n_time`` tried.
    """

    n_space: int
    n_time: int
    width: float
    atol: float
    rtol: float
    budget: float


# Measured (issue 11; QuantLib QdFp high precision as the truth, spot passed, 2 idle CPU cores;
# python benchmarks/bench_american_accuracy.py [--precision P]):
# "accurate" (default) — QuantLib's American test tables all within their tolerances: worst 3.6e-5
# (Barone-Adesi–Whaley, tolerance 3e-3), 2.3e-5 (Bjerksund–Stensland, 5e-5), 6.7e-5 (Ju, 1e-3); the
# 540 greeks-grid contracts worst 4.5e-4 on prices up to 100; 2,100 extreme contracts (σ 0.01–3,
# T 1e-4–30, r < 0, q > r, q ≫ r, S/K 0.005–50, K = 100): none off by more than 1e-3 in both absolute and
# relative terms, 6 refused (T = 30, σ = 0.01 with a carry of 8–95 %), worst absolute error 2.3e-3 on a
# price of 81 (2.8e-5 relative); true error / estimate: median 1.0, at most 2.0 over the greeks grid
# (an estimate is not a bound). "high" — tables worst 1.8e-5. "fast" — tables worst 4.1e-4 / 3.3e-4 /
# 8.6e-4 (within Barone-Adesi–Whaley's and Ju's tolerances, not Bjerksund–Stensland's 5e-5). SPEC put:
# fast 2.7e-4, accurate 2.0e-5, high 1.4e-6 (estimates 2.8e-4, 2.0e-5, 1.4e-6) in 0.6 / 6.9 / 119 ms.
PRECISIONS = {
    "fast": Precision(n_space=321, n_time=100, width=5.0, atol=1e-5, rtol=2e-4, budget=1e7),
    "accurate": Precision(n_space=1201, n_time=400, width=5.5, atol=2e-6, rtol=1e-5, budget=6e7),
    "high": Precision(n_space=2401, n_time=800, width=6.5, atol=1e-7, rtol=1e-6, budget=1.2e8),
}


def check_precision(precision) -> Precision:
    """The preset named ``precision`` (ValueError naming the choices otherwise)."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(repr(p) for p in PRECISIONS)}, got {precision!r}; "
                         "pass e.g. precision='accurate'")
    return PRECISIONS[precision]


def check_reach(model: BlackScholes, option: AmericanOption) -> None:
    """Refuse models outside the engine's reach with a ValueError naming the parameter and the fix.

    ``σ√T > 20``: the log-price range ``±width·σ√T`` would span more than ``e^{±120}`` around the strike
    (at ``σ = 100`` it overflows); the American put is then within ``K·Φ(−σ√T/2)``-type terms of its
    limits anyway. ``|r|T > 50`` or ``|q|T > 50``: the discount factors leave double precision.
    ``σ√T < 1e-7``: the time value is below the resolution of a grid around the strike.
    """
    total_vol = model.volatility * math.sqrt(option.maturity)
    if not total_vol <= MAX_TOTAL_VOLATILITY:
        raise ValueError(
            f"volatility={model.volatility!r} with maturity={option.maturity!r} gives volatility*sqrt(maturity) = "
            f"{total_vol:.4g} > {MAX_TOTAL_VOLATILITY:g}, beyond the engine's reach (the log-price grid would "
            f"span e^(±{6 * total_vol:.3g})); use volatility*sqrt(maturity) <= {MAX_TOTAL_VOLATILITY:g}")
    if not total_vol >= MIN_TOTAL_VOLATILITY:
        raise ValueError(
            f"volatility={model.volatility!r} with maturity={option.maturity!r} gives volatility*sqrt(maturity) = "
            f"{total_vol:.3g} < {MIN_TOTAL_VOLATILITY:g}: the time value is below the grid's resolution; "
            "use the intrinsic value, or volatility*sqrt(maturity) >= 1e-7")
    for name, value in (("rate", model.rate), ("dividend", model.dividend)):
        if not abs(value) * option.maturity <= MAX_RATE_TIMES_MATURITY:
            raise ValueError(
                f"{name}={value!r} with maturity={option.maturity!r} gives |{name}|*maturity = "
                f"{abs(value) * option.maturity:.4g} > {MAX_RATE_TIMES_MATURITY:g}: the discount factors "
                f"leave double precision; use |{name}|*maturity <= {MAX_RATE_TIMES_MATURITY:g}")


@dataclass(frozen=True, slots=True)
class AmericanSettings:
    """Numerical settings of :func:`solve_american` (kept apart from the model, like QuantLib's
    ``FdmSchemeDesc``). ``None`` fields are chosen from the model and the precision by :meth:`resolve`.

    The grid lives on the log-price axis ``z = log(S/K)`` (plus the node ``S = 0``): there the
    Black–Scholes generator has constant coefficients, so one rule fits deep in- and out-of-the-money
    spots, very short and very long maturities alike (an ``S``-grid concentrated at the strike is coarse
    at a spot of ``0.005K`` and upwinds every row near ``S = 0`` when ``q ≫ r``). The operator is still
    assembled in ``S`` on these nodes (M-matrix, :func:`pdecore._kernels.operator.build_generator`).

    Parameters
    ----------
    n_space : int, optional
        Number of spatial nodes (≥ 21). Default: from the precision, grown so that the uniform part of
        the grid keeps ``h_z ≤ σ√T/8`` and the cell Péclet number ``h_z|r − q|/σ² ≤ 2`` where possible.
    n_time : int, optional
        Number of graded time levels (≥ 4). Default: from the precision.
    scheme : ThetaScheme
        Time scheme: Crank–Nicolson with 4 Rannacher steps (each two implicit-Euler half-steps) and
        grading exponent 2 by default. Two Rannacher steps leave an O(1) error in the gamma at the
        strike because the graded first steps are too short to damp the payoff kink.
    width : float, optional
        Number of standard deviations ``σ√T`` between the covered spots (and their drift ``(r−q−σ²/2)T``)
        and each end of the grid. Default: from the precision (5 / 6 / 7).
    spot_max_ratio : float, optional
        ``S_max/K`` if given; refused if it truncates the solution, i.e. if it lies below the covered
        spots' drifted mean plus ``width`` standard deviations (the error would be silent).
    concentration : float, optional
        Width β (in ``log S``) of the node concentration at the strike, the spot and the expiry limit of
        the exercise boundary. Default ``min(0.3σ√T, 0.5)``.
    tol : float
        Relative tolerance of the penalty iteration (and ``Large = 1/tol`` for the VI).
    max_iter : int
        Newton iterations allowed per time step before :class:`ConvergenceError`.
    trim_exercised : bool
        For the variational inequality, end the grid a width β inside the region exercised at every
        date (beyond the perpetual boundary, where ``V = g`` exactly; see :meth:`resolve`). ``False``
        keeps the grid the penalized and exploratory problems use, for node-by-node comparisons
        (Lemma 2.1, Theorem 2.5).
    vi_solver : {"projected", "penalty"}
        How each time step of the variational inequality is solved. ``"projected"`` (default): one
        Brennan–Schwartz direct solve per step, certified step by step by the complementarity conditions
        (:mod:`pdecore._kernels.projected`), with the penalty iteration as the fallback where the exercise
        region is not one interval at the end of the grid. ``"penalty"``: the Forsyth–Vetzal penalty
        iteration with ``Large = 1/tol`` throughout (two to three solves per step; prices agree to
        ``O(tol)``).
    """

    n_space: int | None = None
    n_time: int | None = None
    scheme: ThetaScheme = ThetaScheme.crank_nicolson(rannacher_steps=4, grading=2.0)
    width: float | None = None
    spot_max_ratio: float | None = None
    concentration: float | None = None
    tol: float = 1e-8
    max_iter: int = 50
    trim_exercised: bool = True
    vi_solver: str = "projected"

    def __post_init__(self) -> None:
        if self.n_space is not None:
            check_int("n_space", self.n_space, minimum=MIN_SPACE_POINTS, maximum=MAX_SPACE_POINTS,
                      fix=f"use at least {MIN_SPACE_POINTS} spatial nodes (at most {MAX_SPACE_POINTS}; or None "
                          "for the adaptive default)")
        if self.n_time is not None:
            check_int("n_time", self.n_time, minimum=MIN_TIME_STEPS, maximum=MAX_TIME_STEPS,
                      fix=f"use at least {MIN_TIME_STEPS} time steps (at most {MAX_TIME_STEPS}; or None for the "
                          "adaptive default)")
        if not isinstance(self.scheme, ThetaScheme):
            raise ValueError(f"scheme must be a ThetaScheme, got {self.scheme!r}; "
                             "pass e.g. ThetaScheme.crank_nicolson()")
        if self.width is not None:
            check_range("width", self.width, 3.0, 20.0, fix="use about 6 standard deviations (or None)")
        if self.spot_max_ratio is not None:
            check_range("spot_max_ratio", self.spot_max_ratio, 1.0, 1e50, closed_low=False,
                        fix="pass S_max/K > 1, e.g. 4 (or None for the derived range)")
        if self.concentration is not None:
            check_range("concentration", self.concentration, 1e-8, 10.0, closed_low=True,
                        fix="pass e.g. 0.1 (a tenth of the strike in log-price)")
        check_range("tol", self.tol, 1e-14, 1e-2, fix="use e.g. 1e-8")
        check_int("max_iter", self.max_iter, minimum=1, fix="allow e.g. 50 iterations")
        if not isinstance(self.trim_exercised, (bool, np.bool_)):
            raise ValueError(f"trim_exercised must be True or False, got {self.trim_exercised!r}")
        if self.vi_solver not in ("projected", "penalty"):
            raise ValueError(f"vi_solver must be 'projected' or 'penalty', got {self.vi_solver!r}; "
                             "pass vi_solver='projected' (default) or 'penalty'")

    def resolve(self, model: BlackScholes, option: AmericanOption, *, premium: bool = False,
                spot: float | None = None, precision: str = "accurate", penalized: bool = False) -> dict[str, Any]:
        """Concrete grid for this model: ``n_space, n_time, spot_max_ratio, spot_min_ratio, concentration,
        nodes`` (``nodes`` in units of the strike, ``nodes[0] = 0``).

        Range. The covered spots are the strike and ``spot`` if one is given (the price asked for; the
        error estimate is taken there), else the usual quotes ``[K/4, 3K]``; with ``μ = r − q − σ²/2``
        the log-price of a covered spot ends, at ``T``, within
        ``z ± width·σ√T`` of ``z + μT`` (Black–Scholes), hence

        ``z_lo = min(z_cover) + min(μT, 0) − width·σ√T``, ``z_hi = max(z_cover) + max(μT, 0) + width·σ√T``.

        Both signs of the drift count (the issue's put at ``S = 5K`` with ``q ≫ r`` needs the downward
        drift; ``S_max`` from ``max(r − q, 0)`` alone truncated it). Below ``z_lo`` the only node is
        ``S = 0``: there the value is linear in ``S`` (put: ``K − S`` exercised or the European
        ``Ke^{−rτ} − Se^{−qτ}``; call: 0), which the three-point formulas reproduce exactly on any spacing.

        Exercised at every date. For the variational inequality (not the penalized or premium forms) the
        region beyond the perpetual boundary ``S*_∞`` (put with ``r > 0``: ``S ≤ S*_∞``; call with
        ``q > 0``: ``S ≥ S*_∞``; :func:`_perpetual_boundary`) holds ``V = g`` at all times, linear in
        ``S``: the grid ends a width β inside it (the put keeps the node ``S = 0``, the call one far node
        at the end of the covered range), so no node is spent where the value is known exactly.

        Concentration (``β = min(0.3σ√T, 0.5)`` in log-price): at the strike (the kink; a node exactly
        on it), at the spot if it is more than ``2β`` away (deep out-of-the-money quotes), and at the
        expiry limit of the exercise boundary ``K min(1, r/q)`` (put) / ``K max(1, r/q)`` (call) when it
        differs from the strike (``q ≫ r``: a thin boundary layer). A fifth of the nodes is spread
        uniformly (:func:`pdecore.grids.concentrated_log_nodes`).
        """
        preset = check_precision(precision)
        width = preset.width if self.width is None else self.width
        sigma, rate, dividend, maturity = model.volatility, model.rate, model.dividend, option.maturity
        total_vol = sigma * math.sqrt(maturity)
        log_drift = (rate - dividend - 0.5 * sigma**2) * maturity
        # covered: the strike and the spot of interest, or the usual quotes [K/4, 3K] when none is given
        cover = [math.log(0.25), math.log(3.0)]
        z_spot = None
        if spot is not None:
            z_spot = math.log(spot / option.strike)
            if not abs(z_spot) <= MAX_LOG_MONEYNESS:
                raise ValueError(f"spot={spot!r} is e^{z_spot:.3g} times the strike {option.strike!r}, beyond "
                                 f"the engine's reach (|log(spot/strike)| <= {MAX_LOG_MONEYNESS:g}); the option "
                                 "is worth its intrinsic value (or 0) to double precision: price it as such")
            cover = [0.0, z_spot]
        beta = self.concentration if self.concentration is not None else min(0.3 * total_vol, 0.5)
        # clamped where S is 0 or ∞ to double precision for the value (e^{−80}K: the put is linear, the call
        # 0 there) and where the three-point denominators h³ would underflow (x ≈ e^{−230})
        z_lo = max(min(cover) + min(log_drift, 0.0) - width * total_vol, MIN_LOG_NODE)
        z_hi = min(max(cover) + max(log_drift, 0.0) + width * total_vol, MAX_LOG_NODE)
        # beyond the perpetual boundary the option is exercised at every date (put: S ≤ S*_∞, only for
        # r > 0; call: S ≥ S*_∞, only for q > 0; with the other sign a second boundary can exist), so the
        # value there is the payoff, linear in S, which the three-point formulas reproduce exactly on any
        # spacing: the grid stops a concentration width β inside that region instead of spending nodes
        # on it (the SPEC put: S*_∞ = 0.43K, where the drift rule alone reached 0.09K). Only for the
        # variational inequality (a finite penalty leaves V below g there, not linear) and not for the
        # premium form (its obstacle g − V_E is not linear there).
        exact_exercise = self.trim_exercised and not premium and not penalized
        perpetual = _perpetual_boundary(option.kind, sigma, rate, dividend) if exact_exercise else math.nan
        call_cut = None
        if option.kind == "put" and rate > 0.0 and math.isfinite(perpetual):
            z_lo = min(max(z_lo, math.log(perpetual) - beta), -beta)
        elif option.kind == "call" and dividend > 0.0 and math.isfinite(perpetual):
            call_cut = max(math.log(perpetual) + beta, beta)
        if self.spot_max_ratio is not None:
            needed = math.exp(z_hi if call_cut is None else min(z_hi, call_cut))
            if self.spot_max_ratio < needed:
                raise ValueError(
                    f"spot_max_ratio={self.spot_max_ratio!r} truncates the solution: the covered spots "
                    f"(up to {math.exp(max(cover)):.4g}K) reach S/K = {needed:.4g} within {width:g} standard "
                    f"deviations (volatility*sqrt(maturity) = {total_vol:.4g}, (r - q - sigma^2/2)T = "
                    f"{log_drift:.4g}); pass spot_max_ratio >= {needed:.4g}, or None for the derived range")
            z_hi = math.log(self.spot_max_ratio)
        # a call's grid keeps one far node at the end of the range, so that every covered spot stays on
        # the grid (the cell up to it is exercised: V = S − K there exactly)
        z_far = None
        if call_cut is not None and call_cut < z_hi:
            z_far, z_hi = z_hi, call_cut
        centers, widths = [0.0], [beta]
        if z_spot is not None and abs(z_spot) > 2.0 * beta and z_lo < z_spot < z_hi:
            centers.append(z_spot)
            widths.append(beta)
        # advection-dominated: the payoff kink travels to z = −μτ with width σ√τ (μ = r − q − σ²/2) and
        # hardly diffuses; an under-resolved front early on is carried, not damped, to the spot. Peaks
        # along its path (τ_k = T(k/16)², width 0.3σ√τ_k) resolve it where the uniform part cannot.
        # (the carry |r − q| decides, as for the time levels: the −σ²/2 part of μ goes with the diffusion)
        travel = abs(rate - dividend) * maturity / total_vol
        if travel > 2.0:
            for k in range(1, 17):
                tau_k = maturity * (k / 16.0) ** 2
                z_front = -(rate - dividend - 0.5 * sigma**2) * tau_k
                if z_lo < z_front < z_hi and abs(z_front) > 2.0 * beta:
                    centers.append(z_front)
                    widths.append(0.3 * sigma * math.sqrt(tau_k))
        # the exercise boundary lives between its expiry limit and the perpetual boundary
        for z_boundary, width_boundary in _boundary_band(option.kind, sigma, rate, dividend, beta):
            if abs(z_boundary) > 2.0 * beta and z_lo < z_boundary < z_hi:
                centers.append(z_boundary)
                widths.append(width_boundary)
        if self.n_space is not None:
            n_space = self.n_space
        else:
            # uniform part (a fifth of the nodes): spacing ≤ σ√T/8 and cell Péclet ≤ 2 where affordable
            spacing = total_vol / 8.0
            carry = abs(rate - dividend)
            if carry > 0.0:
                spacing = min(spacing, 2.0 * sigma**2 / carry)
            # over the active range (strike and spot with their drift and width): outside it the value
            # is the payoff or 0 to the target, whatever the covered range (T = 1e-4: 0.002 wide, not 2.5)
            active = [0.0] if z_spot is None else [0.0, z_spot]
            active_lo = max(min(active) + min(log_drift, 0.0) - width * total_vol, z_lo)
            active_hi = min(max(active) + max(log_drift, 0.0) + width * total_vol, z_hi)
            wanted = (active_hi - active_lo) / spacing / UNIFORM_FRACTION
            n_space = min(max(float(preset.n_space), wanted), 16.0 * preset.n_space)
            n_space = int(2 * math.ceil((max(n_space, preset.n_space) - 1) / 2) + 1)  # odd
        if self.n_time is not None:
            n_time = self.n_time
        else:
            # advection-dominated (small σ√T, strong carry): the payoff kink travels |r − q|T, i.e.
            # |r − q|√T/σ of its own widths σ√T; Crank–Nicolson needs time steps in proportion (the
            # issue's put σ = 0.01, r = −0.02, T = 30 travels 11 widths: 0.011 / 0.0031 / 0.00099 error
            # at 200 / 400 / 800 steps)
            travel = abs(rate - dividend) * math.sqrt(maturity) / sigma
            n_time = int(math.ceil(preset.n_time * min(max(1.0, travel / 2.0), 4.0)))
        nodes = american_nodes(z_lo, z_hi, centers, widths, int(n_space), z_far)
        return {"n_space": int(n_space), "n_time": int(n_time),
                "spot_max_ratio": float(math.exp(z_hi if z_far is None else z_far)), "far_node": z_far,
                "spot_min_ratio": float(math.exp(z_lo)), "concentration": float(beta), "width": float(width),
                "log_range": (float(z_lo), float(z_hi)), "centers": tuple(centers), "widths": tuple(widths),
                "nodes": nodes}


def _boundary_band(kind: str, sigma: float, rate: float, dividend: float, beta: float):
    """Where the exercise boundary lives, in ``z = log(S/K)``: ``[(z, width)]`` (empty if never exercised).

    Between its expiry limit ``K min(1, r/q)`` (put; ``K max(1, r/q)`` call; Kim 1990), where it moves
    like ``√τ`` (the thin boundary layer of ``q ≫ r``: a peak of width β there), and the perpetual
    boundary ``K λ/(λ − 1)`` with ``λ`` the root of ``½σ²λ(λ − 1) + (r − q)λ − r = 0`` of the right
    sign (McKean 1965; Merton 1973): a second peak over that band (its centre, half its width), so that
    ``S*(t)`` is read out on a fine grid (SPEC put: ``S*(0)`` within 0.05 needs it).
    """
    limit = _boundary_at_expiry(kind, 1.0, rate, dividend)
    if not (math.isfinite(limit) and limit > 0.0):
        return []
    peaks = [(math.log(limit), beta)]
    perpetual = _perpetual_boundary(kind, sigma, rate, dividend)
    if math.isfinite(perpetual):
        z_perpetual, z_limit = math.log(perpetual), math.log(limit)
        peaks.append((0.5 * (z_perpetual + z_limit), max(0.5 * abs(z_perpetual - z_limit), beta)))
    return peaks


def _perpetual_boundary(kind: str, sigma: float, rate: float, dividend: float) -> float:
    """The perpetual exercise boundary ``S*_∞/K = λ/(λ − 1)`` (NaN where there is none), with ``λ`` the
    root of ``½σ²λ(λ − 1) + (r − q)λ − r = 0`` that is negative (put) or above 1 (call) (McKean 1965;
    Merton 1973). A finite-maturity option is worth less than the perpetual one and exercises wherever
    it does: ``S*(t) ≥ S*_∞`` for a put, ``≤`` for a call."""
    half_var, b = 0.5 * sigma**2, rate - dividend - 0.5 * sigma**2
    discriminant = b * b + 4.0 * half_var * rate
    if discriminant < 0.0:
        return math.nan
    root = (-b - math.sqrt(discriminant) if kind == "put" else -b + math.sqrt(discriminant)) / (2.0 * half_var)
    if (kind == "put" and root < 0.0) or (kind == "call" and root > 1.0):
        perpetual = root / (root - 1.0)
        if perpetual > 0.0 and math.isfinite(perpetual):
            return perpetual
    return math.nan


def american_nodes(z_lo: float, z_hi: float, centers, widths, n_space: int, z_far: float | None = None) -> np.ndarray:
    """Nodes in units of the strike: ``0`` followed by log-concentrated nodes on ``[e^{z_lo}, e^{z_hi}]``
    with one exactly on the strike, and the node ``e^{z_far}`` if given; ``n_space`` in all (see
    :meth:`AmericanSettings.resolve`)."""
    # the strike at an odd z-index, i.e. an even index of x (x[0] = 0): the companion grid x[::2] of the
    # error estimate keeps it (as it keeps x[0] and, for odd n_space, the last node)
    far = [] if z_far is None else [math.exp(z_far)]
    z = concentrated_log_nodes(z_lo, z_hi, centers, widths, n_space - 1 - len(far), snap=0.0,
                               background=UNIFORM_FRACTION, snap_parity=1 if n_space % 2 == 1 else None)
    x = np.concatenate([[0.0], np.exp(z), far])
    x[1 + int(np.argmin(np.abs(z)))] = 1.0  # exp(0) is 1 already; keep the strike node exact
    return x


class _NaturalCubicSpline:
    """Natural cubic spline ``s`` through ``(x_i, y_i)`` with its first two derivatives
    (:mod:`pdecore._kernels.spline`; de Boor 1978, ch. IV).

    The natural end conditions ``s'' = 0`` are exact for the American payoffs: the value is linear at
    ``S = 0`` (put: exercised; call: worthless) and at ``S_max``. Written on the project's kernels so
    that the command line does not pay for importing ``scipy.interpolate`` (about half a second).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x = np.ascontiguousarray(x, dtype=float)
        self.y = np.ascontiguousarray(y, dtype=float)
        self.second = np.empty(self.x.size)
        natural_spline_moments(self.x, self.y, self.second)

    def __call__(self, points: np.ndarray, derivative: int = 0) -> np.ndarray:
        points = np.asarray(points, dtype=float)
        out = np.empty(points.size)
        natural_spline_evaluate(self.x, self.y, self.second, np.ascontiguousarray(points.ravel()), int(derivative),
                                out)
        return out.reshape(points.shape)


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
    price_error_estimate : float
        ``|V_fine − V_coarse|`` at ``stats["error_estimate_spot"]`` (the spot passed to
        :func:`solve_american`, else the strike), from a companion grid with half the nodes and half
        the time levels: 3× the fine grid's error for a second-order scheme, equal to it for first order.
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
    price_error_estimate: float = math.nan
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
        ``C¹`` (the gamma jumps): the constraint is re-imposed there. The spline may also overshoot
        inside the exercise region: where both nodes of a cell are exercised the whole cell is (the
        region is an interval), so ``V = g`` there exactly and the payoff is returned."""
        values = self._spline(level)(spots)
        if self.penalty is None:
            payoff = self.option.payoff(spots)
            values = np.maximum(values, payoff)
            nodes, level_values = self.spots, self.values[level]
            exercised = (level_values - self.option.payoff(nodes) <= 1e-7 * self.option.strike) & (
                self.option.payoff(nodes) > 0.0)
            cell = np.clip(np.searchsorted(nodes, spots, side="right") - 1, 0, nodes.size - 2)
            values = np.where(exercised[cell] & exercised[cell + 1], payoff, values)
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
    boundary = np.empty(values.shape[0])
    exercise_boundary_levels(np.ascontiguousarray(x, dtype=float), np.ascontiguousarray(values, dtype=float),
                             np.ascontiguousarray(payoff, dtype=float), interpolation == "sqrt", float(threshold),
                             boundary)
    return boundary


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


def _march(model: BlackScholes, option: AmericanOption, x: np.ndarray, n_time: int, settings: AmericanSettings,
           mode: int, kappa: float, lam: float, premium: bool):
    """Steps 2–5 of the module docstring on the nodes ``x`` (units of the strike).

    Returns ``(values, tau_levels, iterations, kernel_seconds, solver)`` with ``values[j]`` the solution
    at ``τ = tau_levels[j]`` (ascending from expiry) and ``solver`` the march that ran (``"projected"`` or
    ``"penalty"``), or raises :class:`ConvergenceError`.
    """
    sigma, rate, dividend, maturity = model.volatility, model.rate, model.dividend, option.maturity
    n = x.size
    # 2. operator: 𝓛 = ½σ²x² ∂xx + (r − q) x ∂x − r
    # 4. boundary conditions are rows of the operator: PDE row at S = 0; put: V(S_max) = 0 (its
    #    payoff there, kept by a zero row); call: linearity V_SS = 0 at S_max
    right_kind = BOUNDARY_DIRICHLET if option.kind == "put" else BOUNDARY_DEGENERATE
    lower, diag, upper = np.zeros(n), np.zeros(n), np.zeros(n)
    build_generator(x, 0.5 * sigma**2 * x**2, (rate - dividend) * x, np.full(n, -rate),
                    BOUNDARY_DEGENERATE, right_kind, lower, diag, upper)

    # 5a. time levels (needed by the premium obstacle, which depends on τ)
    dtau, weights, levels = settings.scheme.time_steps(maturity, n_time)
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

    # 5b. time stepping, whole loop inside numba. The variational inequality first tries the projected
    #     (Brennan–Schwartz) march: one direct solve per step, exact for an exercise region that is one
    #     interval at the end of the grid (put: [0, S*]; a call is mirrored; a put with q < r < 0, whose
    #     region leaves S = 0, passes too, the S = 0 row being decoupled), which the kernel certifies step
    #     by step; where the check fails, the penalty Newton march.
    values = np.zeros((levels.size, n))
    iterations = np.zeros(dtau.size, dtype=np.int64)
    changes = np.zeros(dtau.size)
    kernel_started = time.perf_counter()
    status = STATUS_NOT_ONE_INTERVAL
    if mode == MODE_HARD and settings.vi_solver == "projected":
        if option.kind == "put":
            status, failing_step = projected_march(lower, diag, upper, initial, dtau, weights, levels, obstacle,
                                                   values, iterations)
        else:  # mirror: the call's exercise region [S*, S_max] becomes the start of the grid
            mirrored = np.zeros((levels.size, n))
            status, failing_step = projected_march(upper[::-1].copy(), diag[::-1].copy(), lower[::-1].copy(),
                                                   initial[::-1].copy(), dtau, weights, levels,
                                                   np.ascontiguousarray(obstacle[:, ::-1]), mirrored, iterations)
            values = np.ascontiguousarray(mirrored[:, ::-1])
    solver = "projected"
    if status == STATUS_NOT_ONE_INTERVAL:
        solver = "penalty"
        dummy = np.zeros((1, n))
        status, failing_step = penalty_march(lower, diag, upper, initial, dtau, weights, levels, obstacle, dummy,
                                             False, dummy, False, mode, kappa, lam, settings.tol,
                                             settings.max_iter, values, iterations, changes)
    kernel_seconds = time.perf_counter() - kernel_started
    if status != STATUS_OK:
        raise ConvergenceError(
            f"penalty Newton iteration failed: {STATUS_MESSAGES.get(status, status)}",
            step=int(failing_step), tau=float(tau_sub[failing_step + 1]), dtau=float(dtau[failing_step]),
            iterations=int(iterations[failing_step]), relative_change=float(changes[failing_step]),
            tol=settings.tol, penalty=None if mode == MODE_HARD else kappa, temperature=lam * option.strike,
            mode=MODE_NAMES[mode], n_space=int(n), n_time=int(n_time))
    if premium:
        values = values + bs_price(option.kind, x[None, :], 1.0, tau_levels[:, None], sigma, rate, dividend)
    return values, tau_levels, iterations, kernel_seconds, solver


def _prices_near(x: np.ndarray, values_t0: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Spline values of one level at ``points`` (units of the strike), as :meth:`AmericanResult.price`."""
    return _NaturalCubicSpline(x, values_t0)(points)


def _estimate_points(x: np.ndarray, spots: np.ndarray) -> np.ndarray:
    """The spots and the fine-grid nodes on either side of each: the fine/coarse difference is taken as
    its maximum over these, so that an accidental crossing of the two solutions at a spot cannot fake a
    zero error."""
    i = np.clip(np.searchsorted(x, spots), 1, x.size - 1)
    return np.concatenate([spots, x[i - 1], x[i]])


def _coarse_size(n_space: int, n_time: int) -> tuple[int, int]:
    """The companion grid of the error estimate: half the nodes and half the time levels (for an odd
    ``n_space`` the fine grid's every other node, ``x[::2]``, graded levels likewise nested)."""
    return max((n_space - 1) // 2 + 1, MIN_SPACE_POINTS), max(n_time // 2, MIN_TIME_STEPS)


def solve_american(model: BlackScholes, option: AmericanOption, *, n_space: int | None = None,
                   n_time: int | None = None, penalty: float | None = None, temperature: float = 0.0,
                   premium: bool = False, settings: AmericanSettings | None = None, spot: float | None = None,
                   precision: str = "accurate") -> AmericanResult:
    """Price an American put or call by the penalty method (see the module docstring).

    Every result carries an error estimate, and the default grids are refined until it meets the
    chosen precision (or the call is refused).

    Parameters
    ----------
    model : BlackScholes
        Volatility, rate and dividend yield.
    option : AmericanOption
        Kind, strike and maturity.
    n_space, n_time : int, optional
        Grid sizes; ``None`` takes the adaptive defaults of :class:`AmericanSettings` for the chosen
        ``precision``. Explicit sizes override ``settings`` and switch the refinement off (the estimate
        is still reported).
    penalty : float, optional
        ``None`` solves the variational inequality (the American price); a float κ > 0 solves the
        penalized PDE ``V_t + 𝓛V + κ(g − V)^+ = 0``.
    temperature : float, default 0
        λ ≥ 0; with a finite penalty, λ > 0 solves the exploratory softplus HJB.
    premium : bool, default False
        Solve for the early-exercise premium ``V − V_E`` (smooth terminal data), return ``V``.
    settings : AmericanSettings, optional
        Remaining numerical settings (scheme, truncation, concentration, tolerance).
    spot : float, optional
        The spot of interest: the grid covers it, concentrates nodes there too, and the error estimate
        is taken there (default: at the strike).
    precision : {"fast", "accurate", "high"}
        Error target of the adaptive grid, ``max(atol·K, rtol·V)`` with (atol, rtol) = (1e-5, 2e-4),
        (2e-6, 1e-5), (1e-7, 1e-6) (:data:`PRECISIONS`). Measured errors against QuantLib's
        ``QdFpAmericanEngine`` (high precision) are in ``tests/pdecore/test_american_accuracy.py``.

    Returns
    -------
    AmericanResult
        With ``price_error_estimate`` = ``|V_fine − V_coarse|`` at the spot (companion grid with half
        the nodes and steps), also in ``stats``.

    Raises
    ------
    ValueError
        Bad parameters (named, with the value and a fix), e.g. ``temperature > 0`` with
        ``penalty=None``, grids that are too small, a model beyond the engine's reach
        (:func:`check_reach`), or a regime whose error estimate stays above the precision's target
        within its grid budget.
    ConvergenceError
        The penalty Newton iteration did not converge within ``settings.max_iter`` at some step of an
        explicitly sized grid (the diagnostics carry the step, τ, the last relative change and the penalty).
    """
    started = time.perf_counter()
    if not isinstance(model, BlackScholes):
        raise ValueError(f"model must be a pdecore.BlackScholes, got {model!r}; "
                         "pass e.g. BlackScholes(volatility=0.4, rate=0.06)")
    if not isinstance(option, AmericanOption):
        raise ValueError(f"option must be a pdecore.AmericanOption, got {option!r}; "
                         "pass e.g. AmericanOption('put', strike=40, maturity=1)")
    temperature = check_temperature(temperature, fix="pass 0 (no exploration) or a positive λ")
    if penalty is not None:
        penalty = positive_at_most("penalty", penalty, MAX_PENALTY,
                                   fix="pass a positive penalty factor such as 10 (at most 1e10), or None for the "
                                       "variational inequality")
    if temperature > 0.0 and penalty is None:
        raise ValueError(f"temperature={temperature!r} > 0 needs a finite penalty, got penalty=None; "
                         "pass e.g. penalty=10 for the exploratory HJB, or temperature=0")
    if not isinstance(premium, (bool, np.bool_)):
        raise ValueError(f"premium must be True or False, got {premium!r}")
    if settings is not None and not isinstance(settings, AmericanSettings):
        raise ValueError(f"settings must be an AmericanSettings, got {settings!r}; pass e.g. "
                         "AmericanSettings(n_space=801), or use precision='fast' | 'accurate' | 'high'")
    preset = check_precision(precision)
    if spot is not None:
        spot = check_positive("spot", spot, fix="pass the spot price of interest, e.g. spot=40")
    check_reach(model, option)
    settings = settings or AmericanSettings()
    if n_space is not None or n_time is not None:
        settings = AmericanSettings(
            n_space=settings.n_space if n_space is None else n_space,
            n_time=settings.n_time if n_time is None else n_time,
            scheme=settings.scheme, width=settings.width, spot_max_ratio=settings.spot_max_ratio,
            concentration=settings.concentration, tol=settings.tol, max_iter=settings.max_iter,
            trim_exercised=settings.trim_exercised, vi_solver=settings.vi_solver)
    adaptive = settings.n_space is None and settings.n_time is None
    grid_spec = settings.resolve(model, option, premium=bool(premium), spot=spot, precision=precision,
                                 penalized=penalty is not None)
    strike, maturity = option.strike, option.maturity
    rate, dividend = model.rate, model.dividend
    if penalty is None:
        mode, kappa, lam = MODE_HARD, 0.0, 0.0
    elif temperature > 0.0:
        mode, kappa, lam = MODE_SOFTPLUS, penalty, temperature / strike
    else:
        mode, kappa, lam = MODE_FINITE, penalty, 0.0
    z_lo, z_hi = grid_spec["log_range"]
    centers, widths = grid_spec["centers"], grid_spec["widths"]
    spot_ratio = 1.0 if spot is None else spot / strike
    if spot is None:
        # no spot given: the estimate (and the refinement) covers the strike and the spots one and two
        # standard deviations away, inside the covered [K/4, 3K]
        total_vol = model.volatility * math.sqrt(maturity)
        # standard deviations away, inside the covered [K/4, 3K]; away from the strike the target is 5×
        # looser (the precision's target is stated for the spot of interest)
        check_spots = np.concatenate([np.clip(np.exp(total_vol * np.array([0.0, -2.0, -1.0, 1.0, 2.0])), 0.25, 3.0),
                                      [0.5, 0.7, 1.4, 2.0]])
        spot_looseness = np.array([1.0] + [5.0] * 8)
    else:
        check_spots = np.array([spot_ratio])
        spot_looseness = np.array([1.0])
    looseness = np.concatenate([spot_looseness] * 3)  # the spots, then their left and right neighbour nodes

    def nodes_for(n_nodes):
        return grid_spec["nodes"] if n_nodes == grid_spec["n_space"] else american_nodes(
            z_lo, z_hi, centers, widths, n_nodes, grid_spec["far_node"])

    def solve_on(nodes, n_levels):
        return (nodes,) + _march(model, option, nodes, n_levels, settings, mode, kappa, lam, bool(premium))

    # 1.–5. on the grid and on its companion; refine both while the estimate misses the target
    n_fine, m_fine = grid_spec["n_space"], grid_spec["n_time"]
    coarse = previous = None
    refinements = 0
    while True:
        try:
            fine_nodes = nodes_for(n_fine)
            if coarse is None:
                n_coarse, m_coarse = _coarse_size(n_fine, m_fine)
                # every other node of the fine grid where that has the size (the strike is kept, see
                # american_nodes), else a grid of its own
                coarse_nodes = fine_nodes[::2] if fine_nodes[::2].size == n_coarse else nodes_for(n_coarse)
                coarse = solve_on(coarse_nodes, m_coarse)
            fine = solve_on(fine_nodes, m_fine)
        except ConvergenceError:
            if not adaptive or 2 * n_fine * 2 * m_fine > preset.budget:
                raise
            coarse = previous = None
            n_fine, m_fine, refinements = 2 * n_fine - 1, 2 * m_fine, refinements + 1
            continue
        points = _estimate_points(fine[0], check_spots)
        prices_fine = _prices_near(fine[0], fine[1][-1], points)
        differences = np.abs(prices_fine - _prices_near(coarse[0], coarse[1][-1], points))
        # Richardson: the fine grid's error is |V_h − V_2h|/(2^p − 1). p = 2 (Crank–Nicolson with
        # Rannacher start-up; tests/pdecore/test_american_convergence.py) until three grids give an
        # observed order, which then replaces it (clipped to [1, 2]: first order where upwinding rules)
        order = 2.0
        if previous is not None:
            k = check_spots.size
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = previous[:k] / np.maximum(differences[:k], 1e-300)
            observed = np.log2(ratios[np.isfinite(ratios) & (previous[:k] > 1e-13)])
            if observed.size:
                order = float(np.clip(np.min(observed), 1.0, 2.0))
        differences_raw = differences
        differences = differences / (2.0**order - 1.0)
        targets = np.maximum(preset.atol, preset.rtol * np.abs(prices_fine)) * looseness
        worst = int(np.argmax(differences / targets))
        estimate, target = float(differences[worst]), float(targets[worst])
        spot_ratio = float(points[worst]) if spot is None else spot_ratio
        if not adaptive or estimate <= target:
            break
        if (2 * n_fine - 1) * 2 * m_fine > preset.budget:
            raise ValueError(
                f"solve_american cannot reach precision={precision!r} for this contract within its grid budget: "
                f"the estimated error at spot {spot_ratio * strike:g} is {estimate * strike:.3g} (target "
                f"{target * strike:.3g}) on {n_fine} nodes x {m_fine} time levels; regime: "
                f"volatility*sqrt(maturity) = {model.volatility * math.sqrt(maturity):.4g}, "
                f"(rate - dividend)*maturity = {(rate - dividend) * maturity:.4g}, spot/strike = {spot_ratio:.4g}; "
                + ("fix: pass precision='fast', or " if precision != "fast" else "fix: pass ")
                + "explicit n_space/n_time (the estimate is then reported, not enforced)")
        previous = differences_raw
        coarse, n_fine, m_fine, refinements = fine, 2 * n_fine - 1, 2 * m_fine, refinements + 1

    x, values, tau_levels, iterations, kernel_seconds, solver = fine
    n = x.size
    payoff = np.maximum(1.0 - x, 0.0) if option.kind == "put" else np.maximum(x - 1.0, 0.0)
    # levels run in τ (0 = expiry); results run in calendar time t = T − τ, ascending
    values = values[::-1]
    times = maturity - tau_levels[::-1]
    times[0] = 0.0
    interpolation = "sqrt" if mode == MODE_HARD else "linear"
    threshold = 10.0 * settings.tol if mode == MODE_HARD else 0.0
    boundary = _exercise_boundary(x, values, payoff, option.kind, interpolation, threshold) * strike
    boundary[-1] = _boundary_at_expiry(option.kind, strike, rate, dividend)
    coarse_payoff = np.maximum(1.0 - coarse[0], 0.0) if option.kind == "put" else np.maximum(coarse[0] - 1.0, 0.0)
    coarse_boundary = _exercise_boundary(coarse[0], coarse[1][-1:], coarse_payoff, option.kind, interpolation,
                                         threshold)[0] * strike
    boundary_estimate = abs(boundary[0] - coarse_boundary) if np.isfinite(boundary[0]) else math.nan

    stats = {
        "newton_iterations": iterations.tolist(),
        "total_newton_iterations": int(iterations.sum()),
        "max_newton_iterations": int(iterations.max()),
        "mean_newton_iterations": float(iterations.sum()) / max(iterations.size, 1),
        "n_space": n, "n_time": int(m_fine), "n_substeps": int(iterations.size),
        "spot_max": grid_spec["spot_max_ratio"] * strike, "spot_min": grid_spec["spot_min_ratio"] * strike,
        "concentration": grid_spec["concentration"], "width": grid_spec["width"],
        "mode": MODE_NAMES[mode], "solver": solver, "premium": bool(premium), "tol": settings.tol,
        "precision": precision, "adaptive": adaptive, "refinements": refinements,
        "error_estimate_spot": spot_ratio * strike,
        "price_error_estimate": estimate * strike, "boundary_error_estimate": boundary_estimate,
        "error_target": target * strike,
        "kernel_seconds": kernel_seconds, "wall_seconds": time.perf_counter() - started,
    }
    diagnostics = SolverDiagnostics.from_iterations(iterations, status=STATUS_OK, n_time=int(m_fine),
                                                    n_space=n, wall_seconds=stats["wall_seconds"])
    # fresh arrays, made read-only by AmericanResult.__post_init__
    return AmericanResult(model=model, option=option, spots=x * strike, times=times,
                          values=values * strike, boundary=boundary, stats=stats,
                          penalty=penalty, temperature=temperature, premium=bool(premium),
                          diagnostics=diagnostics, price_error_estimate=estimate * strike)
