r"""Merton's log-utility portfolio problem with proportional transaction costs as a Dynkin game.

Model and transformation (SPEC section 4; Dai & Dong 2024, Theorem 1; stopping paper appendix D)
-------------------------------------------------------------------------------------------------
Bond ``dB = rB dt``, stock ``dS = αS dt + σS dW``, a cost θ on every trade, log utility of the
liquidated wealth at ``T``. In the ratio ``x = B/S`` (negative when leveraged) the value is
``V = log S + φ(t, x)`` and ``w = x φ_x`` solves the double-obstacle problem

.. math::

    \max\{\min\{-w_t - 𝓖w,\; w - ℓ\},\; w - u\} = 0, \qquad w(T, x) = \frac{x}{x + 1 - θ},

    𝓖 = \tfrac12 σ^2 x^2 ∂_{xx} + (r - α + σ^2)\, x ∂_x ,

with the *sell* obstacle ``x/(x+1−θ)`` and the *buy* obstacle ``x/(x+1+θ)`` (from
``(1+θ)V_B ≥ V_S ≥ (1−θ)V_B``). For ``x > 0`` the buy obstacle is the lower one
(``ℓ = x/(x+1+θ) < u = x/(x+1−θ)``); for ``−(1−θ) < x < 0`` the two swap, so ``ℓ`` is always the
pointwise minimum and ``u`` the maximum. The terminal value is the sell obstacle (liquidation).
Buying stock lowers ``x``, so on both half-lines the sell region lies on the left
(``x ≤ x_s(t)``) and the buy region on the right (``x ≥ x_b(t)``), with
``x_s ≤ (1−θ)x_M`` and ``(1+θ)x_M ≤ x_b`` where ``x_M = (1 − π_M)/π_M`` and ``π_M = (α − r)/σ²``.
Penalized and exploratory versions replace the inequality by
``w_t + 𝓖w + κ(ℓ−w)^+ − κ(w−u)^+ = 0`` or its softplus form with temperature λ
(:mod:`pdecore.dynkin`).

Both half-lines on one grid
---------------------------
The generator vanishes at ``x = 0`` (``a = b = 0``) and both obstacles are 0 there, so ``w(t, 0) = 0``
and the two half-lines are decoupled through a degenerate node at ``x = 0``. One grid covers
``[x_min, x_max]`` with a node exactly at 0; the no-trade band may straddle 0 and a boundary may cross
from one half-line to the other over time. The contact tests treat the node ``x = 0`` as belonging to
both regions (the obstacles touch there), so it never ends a region by itself.

Truncations (stated, and tested)
--------------------------------
* **Insolvency.** At ``x = −(1−θ)`` the liquidated wealth ``B + (1−θ)S`` vanishes and the sell
  obstacle ``x/(x+1−θ)`` blows up to ``−∞``. The grid stops at
  ``x_min = −(1−θ) + m·min(x_M + 1 − θ, 1 − θ)`` with the *insolvency margin* ``m`` (default 0.05), i.e.
  5% of the way from insolvency to the Merton ratio, and holds the sell obstacle there (Dirichlet
  ``w(t, x_min) = x_min/(x_min + 1 − θ)``: near insolvency the investor sells, so this is the exact value
  of the variational inequality; a PDE row without diffusion would transport larger values outwards and
  detach the solution from the obstacle there). The variational inequality and large
  penalties do not depend on ``m`` (the solution sits on the sell obstacle there); a small finite
  penalty such as κ = 5 does, because ``κ(ℓ − w)^+`` cannot hold ``w`` near an obstacle that tends to
  ``−∞`` (SPEC section 4).
* **Large ratios.** The grid stops at ``x_max = 10 + 20·max(x_M, 0)``. If the ratio drifts inwards
  there (``(r − α + σ²) x_max ≤ 0``, the usual case ``π_M ≥ 1``) the end row is the upwinded PDE and no
  condition is needed; otherwise the buy obstacle is held there (Dirichlet), an error of at most
  ``u − ℓ ≈ 2θ/x_max``.

Grid: the sinh map of :class:`pdecore.grids.SinhGrid` on each half-line, concentrated at ``x_M``
(with a node on it) on its half-line and at 0 on the other, with a concentration width set by the
asymptotic band half-width ``(1 + x_M)² (3/2 · π_M²(1 − π_M)² θ)^{1/3}`` (Janeček & Shreve 2004, for
log utility), which is also why the band shrinks onto ``x_M`` like ``θ^{1/3}``.

Boundaries: ``sell_boundary[j] = x_s(t_j)``, ``buy_boundary[j] = x_b(t_j)`` with the convention of
:func:`pdecore.dynkin.contact_boundary`: the sell region is ``{x ≤ x_s}`` and the buy region
``{x ≥ x_b}``; ``x_b = +inf`` where no buying happens (near the horizon buying only adds a round-trip
cost), ``x_s = −inf`` where no selling happens, and at ``t = T`` (liquidation) ``x_s = +inf``.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from pdecore.checks import check_int, check_positive, check_range
from pdecore.diagnostics import SolverDiagnostics, freeze_arrays
from pdecore.dynkin import (DynkinResult, DynkinSettings, _interpolate_value, _plot_boundaries, contact_boundary,
                            contact_tolerance, solve_dynkin)
from pdecore.grids import SinhGrid
from pdecore.params import MAX_PENALTY, MertonCosts, check_temperature, positive_at_most
from pdecore.schemes import ThetaScheme

__all__ = ["MertonSettings", "MertonResult", "solve_merton_costs", "merton_grid", "merton_obstacles", "merton_boundaries",
           "asymptotic_band_halfwidth"]

DEFAULT_N_SPACE = 600
DEFAULT_N_TIME = 100
DEFAULT_INSOLVENCY_MARGIN = 0.05
# sizes and penalties beyond these are meaningless (memory, or κΔτ past double precision): refused
MAX_N_SPACE, MAX_N_TIME = 200_001, 100_000


@dataclass(frozen=True, slots=True)
class MertonSettings:
    """Numerical settings of :func:`solve_merton_costs` (kept apart from the market, like
    :class:`pdecore.AmericanSettings`).

    Parameters
    ----------
    n_space : int
        Grid nodes (≥ 21), default 600 (:func:`merton_grid`).
    n_time : int
        Graded time levels (≥ 1), default 100.
    insolvency_margin : float
        ``m ∈ (0, 1)`` of the truncation ``x_min = −(1−θ) + m·min(x_M + 1 − θ, 1 − θ)`` before insolvency
        (module docstring), default 0.05.
    scheme : ThetaScheme
        Default Crank–Nicolson with Rannacher start-up on a graded time grid. The finite penalty and the
        softplus are θ-weighted like the generator, so for a large finite κ (``κΔτ ≫ 2``) Crank–Nicolson
        is not monotone; pass ``ThetaScheme.implicit_euler(grading=2)`` when the discrete comparison
        principle matters (the tests of the ``C/κ`` bounds and of the exploratory sandwich do).
    tol, max_iter : float, int
        Newton tolerance (``Large = 1/tol`` for the variational inequality) and iteration cap per sub-step.
    """

    n_space: int = DEFAULT_N_SPACE
    n_time: int = DEFAULT_N_TIME
    insolvency_margin: float = DEFAULT_INSOLVENCY_MARGIN
    scheme: ThetaScheme = ThetaScheme()
    tol: float = 1e-8
    max_iter: int = 100

    def __post_init__(self) -> None:
        check_int("n_space", self.n_space, minimum=21, fix="use at least 21 nodes (default 600)")
        check_int("n_time", self.n_time, minimum=1, fix="use at least 1 time level (default 100)")
        check_range("insolvency_margin", self.insolvency_margin, 0.0, 1.0, closed_low=False, closed_high=False,
                    fix="pass a fraction such as 0.05")
        if not isinstance(self.scheme, ThetaScheme):
            raise ValueError(f"scheme must be a ThetaScheme, got {self.scheme!r}; "
                             "pass e.g. ThetaScheme.implicit_euler(grading=2)")
        check_positive("tol", self.tol, fix="pass e.g. 1e-8")
        check_int("max_iter", self.max_iter, minimum=1, fix="allow e.g. 100 iterations")


def merton_obstacles(x, cost: float):
    """Sell and buy obstacles ``x/(x+1−θ)`` and ``x/(x+1+θ)`` on ``x > −(1−θ)`` (SPEC section 4)."""
    x = np.asarray(x, dtype=float)
    return x / (x + 1.0 - cost), x / (x + 1.0 + cost)


def asymptotic_band_halfwidth(model: MertonCosts) -> float:
    """Leading-order half-width of the no-trade band in the ratio ``x``:
    ``(1 + x_M)² (3/2 · π_M²(1 − π_M)² θ)^{1/3}`` for log utility and a cost θ on each trade
    (Janeček & Shreve 2004, ``(3/(2γ) π²(1 − π)² θ)^{1/3}`` in the stock weight ``π = 1/(1 + x)`` at
    relative risk aversion γ = 1; mapped to ``x`` with ``dx/dπ = −(1 + x)²``). The constant ¾ used
    before was 2^{-1/3} of this (issue 11); checked against the exact infinite-horizon band in
    ``tests/pdecore/test_merton_bands.py`` (default market: exact half-width 0.0743, this 0.0769)."""
    pi = model.merton_fraction
    dpi = (1.5 * pi**2 * (1.0 - pi) ** 2 * model.cost) ** (1.0 / 3.0)
    return (1.0 + model.merton_ratio) ** 2 * dpi


def merton_grid(model: MertonCosts, n_space: int = DEFAULT_N_SPACE, *,
                insolvency_margin: float = DEFAULT_INSOLVENCY_MARGIN) -> np.ndarray:
    """Nodes on ``[x_min, x_max]`` with a node at 0 and one at ``x_M`` (see the module docstring).

    Parameters
    ----------
    model : MertonCosts
    n_space : int
        Total number of nodes (≥ 21).
    insolvency_margin : float
        ``m`` in ``(0, 1)``: ``x_min = −(1−θ) + m·min(x_M + 1 − θ, 1 − θ)``.
    """
    n_space = check_int("n_space", n_space, minimum=21, fix="use at least 21 grid nodes (default 600)")
    margin = check_range("insolvency_margin", insolvency_margin, 0.0, 1.0, closed_low=False, closed_high=False,
                         fix="pass a fraction such as 0.05")
    solvent = 1.0 - model.cost
    x_m = model.merton_ratio
    x_min = -solvent + margin * min(x_m + solvent, solvent)
    x_max = 10.0 + 20.0 * max(x_m, 0.0)
    # concentration width: 2^{-1/3} × the asymptotic half-width, i.e. the width the grid was tuned and
    # tested with before the constant of asymptotic_band_halfwidth was corrected (issue 11)
    width = max(2.0 ** (-1.0 / 3.0) * asymptotic_band_halfwidth(model), 0.01)
    # each half-line concentrates at x_M if x_M lies on it, else at 0 (less sharply the farther x_M is)
    c_left, a_left = min(x_m, 0.0), width + max(x_m, 0.0)
    c_right, a_right = max(x_m, 0.0), width + max(-x_m, 0.0)
    ext_left = math.asinh((0.0 - c_left) / a_left) - math.asinh((x_min - c_left) / a_left)
    ext_right = math.asinh((x_max - c_right) / a_right) - math.asinh((0.0 - c_right) / a_right)
    # equal spacing in the sinh parameter on both sides: nodes in proportion to the stretched lengths
    n_left = int(round((n_space - 1) * ext_left / (ext_left + ext_right))) + 1
    n_left = min(max(n_left, 10), n_space - 10)
    n_right = n_space - n_left + 1
    left = SinhGrid(x_min, 0.0, c_left, n_left, a_left, snap=x_min < c_left < 0.0).nodes()
    right = SinhGrid(0.0, x_max, c_right, n_right, a_right, snap=0.0 < c_right < x_max).nodes()
    nodes = np.concatenate([left[:-1], right])
    nodes[n_left - 1] = 0.0
    return nodes


def far_field_start(x_max: float) -> float:
    """Start ``x_max/2`` of the far-field strip whose contacts are not reported as boundaries.

    Why half: the truncation row at ``x_max`` (upwinded PDE, or the buy obstacle held) moves ``w`` over
    a diffusion length ``σ x_max √τ`` (about ``0.3·10·√0.4 ≈ 2`` for the default market near the
    horizon, and the issue's false boundaries at 22–26 on a grid ending at 30): the inner half of the
    grid is outside that reach for every horizon tested (``tests/pdecore/test_merton_bands.py``).
    """
    return 0.5 * x_max


def merton_boundaries(x, values, cost: float, *, hard: bool, regions: bool = True, far_field: float | None = None):
    """Sell/buy boundaries and regions from Dynkin values on a grid that spans both half-lines.

    The signed gaps are ``w − sell`` (x < 0) / ``sell − w`` (x > 0) for the sell obstacle and the mirror
    for the buy obstacle (the obstacles swap roles at 0); the node ``x = 0`` belongs to both regions for the
    run test and to neither in the returned masks.

    Boundaries are read from the contact sets: the buy boundary is the left end of the buy contact set
    right of the band, whether or not that set reaches the end of the grid. Nodes ``x ≥ far_field``
    (the far-field strip, where the truncation row at ``x_max`` decides between contact and a false
    continuation strip) count as contact for this read-out and are never reported themselves: a buy
    region that lies only inside the strip is reported absent (``+inf``), one that starts left of it is
    reported at its start even if the strip detached from the obstacle (the issue-11 case: contact on
    ``[1.81, 9.40]`` of a grid ending at 10, formerly reported ``+inf``).

    Returns
    -------
    sell_boundary, buy_boundary : float64[L]
    sell_region, buy_region : bool[L, n]
        ``None`` unless ``regions``.
    """
    x = np.asarray(x, dtype=float)
    values = np.atleast_2d(values)
    sell, buy = merton_obstacles(x, cost)
    negative = (x < 0.0)[None, :]
    # signed gaps: <= 0 in contact with the sell / buy obstacle, on either half-line
    sell_gap = np.where(negative, values - sell[None, :], sell[None, :] - values)
    buy_gap = np.where(negative, buy[None, :] - values, values - buy[None, :])
    touch = x == 0.0
    sell_tol = contact_tolerance(sell, hard=hard)
    buy_tol = contact_tolerance(buy, hard=hard)
    sell_boundary = contact_boundary(x, sell_gap, side="left", hard=hard, wildcard=touch, contact_tol=sell_tol)
    if far_field is None:
        buy_boundary = contact_boundary(x, buy_gap, side="right", hard=hard, wildcard=touch, contact_tol=buy_tol)
    else:
        strip = x >= far_field
        buy_boundary = contact_boundary(x, buy_gap, side="right", hard=hard, wildcard=touch | strip,
                                        contact_tol=buy_tol)
        if strip.any():
            # a run that consists of the strip alone: no buy region inside the trusted range
            buy_boundary = np.where(buy_boundary >= x[strip][0] - 1e-12 * abs(x[strip][0]), np.inf, buy_boundary)
    if not regions:
        return sell_boundary, buy_boundary, None, None
    sell_region = (sell_gap <= sell_tol[None, :]) & ~touch[None, :]
    buy_region = (buy_gap <= buy_tol[None, :]) & ~touch[None, :]
    return sell_boundary, buy_boundary, sell_region, buy_region


@dataclass(frozen=True)
class MertonResult:
    """Optimal trading boundaries of Merton's problem with proportional costs.

    Attributes
    ----------
    model : MertonCosts
    grid : float64[n]
        Ratio nodes ``x = B/S``.
    times : float64[L]
        Calendar times from 0 to ``T``.
    values : float64[L, n]
        The Dynkin value ``w(t, x) = x φ_x(t, x)``.
    sell_boundary, buy_boundary : float64[L]
        ``x_s(t)`` and ``x_b(t)``: sell when ``x ≤ x_s``, buy when ``x ≥ x_b``; ±inf where a region is
        absent (``x_s = −inf``, ``x_b = +inf``) or covers the whole grid (``x_s = +inf`` at ``t = T``).
    merton_ratio : float
        The frictionless ``x_M = (1 − π_M)/π_M``.
    sell_region, buy_region : bool[L, n]
        Contact sets with the sell and the buy obstacle (exploratory: probability ≥ ½).
    sell_obstacle, buy_obstacle : float64[n]
    penalty : float or None
        κ (``None``: the variational inequality).
    temperature : float
        λ.
    insolvency_truncation : float
        ``x_min``, where the grid stops before insolvency ``−(1−θ)``.
    dynkin : DynkinResult
        The underlying generic solution (Newton iterations per sub-step).
    diagnostics : SolverDiagnostics
        Status, Newton counters, grid used and wall time of the whole solve (the shape shared by every
        pdecore result).
    """

    model: MertonCosts
    grid: np.ndarray
    times: np.ndarray
    values: np.ndarray
    sell_boundary: np.ndarray
    buy_boundary: np.ndarray
    merton_ratio: float
    sell_obstacle: np.ndarray = field(repr=False)
    buy_obstacle: np.ndarray = field(repr=False)
    penalty: float | None = None
    temperature: float = 0.0
    insolvency_truncation: float = float("nan")
    dynkin: DynkinResult | None = field(default=None, repr=False)
    diagnostics: SolverDiagnostics | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        freeze_arrays(self)

    @functools.cached_property
    def _regions(self):
        _, _, sell_region, buy_region = merton_boundaries(self.grid, self.values, self.model.cost,
                                                          hard=self.penalty is None)
        sell_region.setflags(write=False)
        buy_region.setflags(write=False)
        return sell_region, buy_region

    @property
    def sell_region(self) -> np.ndarray:
        """bool[L, n]: nodes in contact with the sell obstacle (computed on first access)."""
        return self._regions[0]

    @property
    def buy_region(self) -> np.ndarray:
        """bool[L, n]: nodes in contact with the buy obstacle (computed on first access)."""
        return self._regions[1]

    def _signed_gaps(self, level: int):
        x, w = self.grid, self.values[level]
        negative = x < 0.0
        sell_gap = np.where(negative, w - self.sell_obstacle, self.sell_obstacle - w)
        buy_gap = np.where(negative, self.buy_obstacle - w, w - self.buy_obstacle)
        return sell_gap, buy_gap

    def sell_probability(self, level: int = 0) -> np.ndarray:
        """Probability that the selling player stops (sells) at each node at a stored level (0: t = 0).

        Exploratory problem (SPEC section 4): ``sigmoid(−κ·gap/λ)`` with the signed gap to the sell
        obstacle, i.e. ``ν* = sigmoid(κ(ℓ − w)/λ)`` on ``x < 0`` (sell = lower obstacle) and
        ``μ* = sigmoid(κ(w − u)/λ)`` on ``x > 0`` (sell = upper obstacle). Without temperature: the indicator
        of the sell region.
        """
        from pdecore.dynkin import _stop_probability

        return _stop_probability(-self._signed_gaps(level)[0], self.penalty, self.temperature)

    def buy_probability(self, level: int = 0) -> np.ndarray:
        """Probability that the buying player stops (buys); mirror of :meth:`sell_probability`."""
        from pdecore.dynkin import _stop_probability

        return _stop_probability(-self._signed_gaps(level)[1], self.penalty, self.temperature)

    def value(self, t, x):
        """``w(t, x)`` by linear interpolation in ``x`` and ``t`` (``t ∈ [0, T]``, ``x`` inside the grid)."""
        return _interpolate_value(self.grid, self.times, self.values, t, x)

    def band(self, t: float = 0.0) -> tuple[float, float]:
        """``(x_s(t), x_b(t))`` at the stored level nearest to ``t``."""
        j = int(np.argmin(np.abs(self.times - float(t))))
        return float(self.sell_boundary[j]), float(self.buy_boundary[j])

    @property
    def merton_fraction(self) -> float:
        """Frictionless stock weight ``π_M``."""
        return self.model.merton_fraction

    def plot(self, ax=None):
        """Sell and buy boundaries over time with the Merton ratio; returns the Axes.

        Where a region is absent (a boundary at ±inf) nothing is drawn and a marker strip at the edge
        of the axes plus a note in the corner say so.
        """
        kind = ("variational inequality" if self.penalty is None else
                f"penalty κ={self.penalty:g}" + (f", λ={self.temperature:g}" if self.temperature > 0 else ""))
        last = len(self.times) - 1  # t = T is liquidation: keep it out of the drawing, say so in the title
        ax = _plot_boundaries(ax, self.times[:last],
                              {"sell boundary $x_s(t)$": (self.sell_boundary[:last], "left"),
                               "buy boundary $x_b(t)$": (self.buy_boundary[:last], "right")},
                              xlabel="time t (years)", ylabel="bond/stock ratio x = B/S",
                              title=f"Merton with costs θ={self.model.cost:g} ({kind}); t=T: liquidate",
                              reference=self.merton_ratio, reference_label=f"$x_M$ = {self.merton_ratio:.4f}")
        return ax


def solve_merton_costs(model: MertonCosts, *, n_space: int | None = None, n_time: int | None = None,
                       penalty: float | None = None, temperature: float = 0.0,
                       settings: MertonSettings | None = None) -> MertonResult:
    """Solve Merton's problem with proportional costs through its Dynkin game (module docstring).

    Parameters
    ----------
    model : MertonCosts
        Market and cost (``drift, rate, volatility, cost, maturity``).
    n_space, n_time : int, optional
        Grid nodes and graded time levels; they override ``settings`` (defaults 600 and 100).
    penalty : float, optional
        κ; ``None`` solves the variational inequality.
    temperature : float
        λ ≥ 0 (exploratory problem; needs ``penalty``).
    settings : MertonSettings, optional
        Insolvency margin, time scheme, Newton tolerance and cap (:class:`MertonSettings`).

    Returns
    -------
    MertonResult
        ``insolvency_truncation`` is the ``x_min`` used (margin ``settings.insolvency_margin``).

    Notes
    -----
    Truncation dependence. The variational inequality and large penalties do not depend on where the
    grid stops before insolvency; a *finite* penalty does, because ``κ(ℓ − w)^+`` cannot hold ``w`` near a
    sell obstacle that tends to ``−∞`` at ``x = −(1−θ)``. Default market, κ = 5, t = 0: sell edge
    −0.434 / −0.426 / −0.409 / −0.380 for margins 0.2 / 0.05 / 0.01 / 0.002 (the VI: −0.498 for all);
    ``tests/pdecore/test_merton_bands.py`` checks both. A finite-κ band is therefore a property of the
    truncated problem with the margin used, not of Merton's problem: say so wherever it is used (e.g.
    backtested as a strategy). Boundaries are read from the contact sets, except in the far-field strip
    ``x ≥ x_max/2`` (:func:`far_field_start`).

    Raises
    ------
    ValueError
        If ``model`` is not a :class:`MertonCosts`, or ``x_M ≤ −(1−θ)`` (the frictionless position is
        insolvent after costs), or a numerical setting is invalid.
    ConvergenceError
        If the penalty Newton iteration fails.

    References
    ----------
    Dai & Dong (2024), "Learning an optimal investment policy with transaction costs via a randomized
    Dynkin game"; stopping paper appendix D; SPEC section 4.
    """
    if not isinstance(model, MertonCosts):
        raise ValueError(f"model must be a pdecore.MertonCosts, got {type(model).__name__}; "
                         "build it with MertonCosts(drift, rate, volatility, cost, maturity)")
    started = time.perf_counter()
    settings = MertonSettings() if settings is None else settings
    if not isinstance(settings, MertonSettings):
        raise ValueError(f"settings must be a pdecore.MertonSettings, got {settings!r}; "
                         "pass e.g. MertonSettings(n_space=1200)")
    n_space = settings.n_space if n_space is None else check_int("n_space", n_space, minimum=21,
                                                                  maximum=MAX_N_SPACE,
                                                                  fix="use 21 to 200001 nodes (default 600)")
    n_time = settings.n_time if n_time is None else check_int("n_time", n_time, minimum=1, maximum=MAX_N_TIME,
                                                               fix="use 1 to 100000 time levels (default 100)")
    if penalty is not None:
        positive_at_most("penalty", penalty, MAX_PENALTY,
                         fix="pass a positive penalty such as 5 (at most 1e10), or None for the variational inequality")
    temperature = check_temperature(temperature, fix="pass 0 or a temperature λ > 0")
    solvent = 1.0 - model.cost
    x_m = model.merton_ratio
    if not x_m > -solvent:
        raise ValueError(f"the Merton ratio x_M = {x_m!r} is at or below the insolvency ratio -(1 - cost) = "
                         f"{-solvent!r}: the frictionless position cannot be liquidated; lower the leverage "
                         "(a smaller drift or a larger volatility) or the cost")

    # 1. grid
    x = merton_grid(model, n_space, insolvency_margin=settings.insolvency_margin)
    # 2. operator: 𝓖 = ½σ²x²∂xx + (r − α + σ²)x∂x
    sigma2 = model.volatility**2
    diffusion = 0.5 * sigma2 * x**2
    drift = (model.rate - model.drift + sigma2) * x
    # 3. obstacles (ℓ the pointwise min, u the max: they swap at x = 0) and terminal liquidation value
    sell, buy = merton_obstacles(x, model.cost)
    lower_obs = np.minimum(sell, buy)
    upper_obs = np.maximum(sell, buy)
    terminal = sell.copy()
    # 4. boundary conditions: hold the sell obstacle at x_min (the exact VI value near insolvency); at x_max
    #    keep the upwinded PDE row if the drift points inwards, else hold the buy obstacle there
    right = "degenerate" if drift[-1] <= 0.0 else "dirichlet"
    if right == "dirichlet":
        terminal[-1] = buy[-1]
    # 5. time stepping
    dynkin = solve_dynkin(x, diffusion=diffusion, drift=drift, lower_obstacle=lower_obs, upper_obstacle=upper_obs,
                          terminal=terminal, maturity=model.maturity, penalty=penalty, temperature=temperature,
                          left_boundary="dirichlet", right_boundary=right, lower_side="left", upper_side="right",
                          settings=DynkinSettings(n_time=n_time, scheme=settings.scheme, tol=settings.tol,
                                                  max_iter=settings.max_iter))

    values = dynkin.values
    sell_boundary, buy_boundary, _, _ = merton_boundaries(x, values, model.cost, hard=penalty is None,
                                                          regions=False, far_field=far_field_start(x[-1]))
    if model.cost == 0.0:
        # frictionless: the obstacles coincide, w = x/(x+1); continuous rebalancing at x_M
        sell_boundary = np.full(values.shape[0], x_m)
        buy_boundary = np.full(values.shape[0], x_m)
    diagnostics = SolverDiagnostics.from_iterations(dynkin.newton_iterations, n_time=n_time, n_space=x.size,
                                                    wall_seconds=time.perf_counter() - started)
    return MertonResult(model=model, grid=dynkin.grid, times=dynkin.times, values=values,
                        sell_boundary=sell_boundary, buy_boundary=buy_boundary, merton_ratio=x_m,
                        sell_obstacle=sell, buy_obstacle=buy,
                        penalty=dynkin.penalty, temperature=dynkin.temperature, insolvency_truncation=float(x[0]),
                        dynkin=dynkin, diagnostics=diagnostics)
