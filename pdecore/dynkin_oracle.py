r"""The discrete-time Dynkin oracle: the fixed point a perfect RL learner of Merton's problem with
proportional costs reaches on ``L`` dates (SPEC section 4; stopping paper section 4.7 and appendix D).

Game
----
Merton's log-utility problem with a proportional cost θ is the Dynkin game of :mod:`pdecore.merton` in
the bond/stock ratio ``x = B/S``: the value ``w = x φ_x`` lies between the obstacles
``ℓ = min(s, b)`` and ``u = max(s, b)`` of the *sell* obstacle ``s = x/(x+1−θ)`` and the *buy* obstacle
``b = x/(x+1+θ)``, its terminal value is ``s`` (liquidation), and between trades ``x`` follows the
ratio process ``dx = x[(r − α + σ²)dt − σ dW]`` (no discounting: ``𝓖`` has no reaction term). The RL
scheme randomizes both stopping decisions with the penalty factor κ and the temperature λ (appendix D):
on the dates ``t_l = lΔt``, ``Δt = T/L``, the lower player stops with probability
``ν = sigmoid(κ(ℓ − w)/λ)`` and the upper player with ``μ = sigmoid(κ(w − u)/λ)``; the survival weight
is ``R_{l+1} = R_l (1 − κ(ν_l + μ_l)Δt)`` and the running reward
``κ(ν ℓ + μ u) − λℋ(ν) + λℋ(μ)`` (``ℋ(p) = p log p + (1−p) log(1−p)``: the maximizing lower player
is paid her entropy, the minimizing upper player pays his). The martingale loss of the learner is
minimized by the conditional expectation of the reward-to-go, so a perfect learner converges to

.. math::

    C_l(x) = E[w_{l+1}(X_{l+1}) \mid X_l = x], \qquad w_L = s,

    w_l = C_l + Δt\,[κν(ℓ − C_l) − λℋ(ν) + κμ(u − C_l) + λℋ(μ)],
    \quad ν = σ(κ(ℓ − w_l)/λ),\ μ = σ(κ(w_l − u)/λ),

the twin of :func:`pdecore.stopping_oracle` for two players.

The scalar equation and why it has exactly one root
---------------------------------------------------
Write ``d = w − C`` and ``a = κ(ℓ − w)/λ``, ``b = κ(w − u)/λ``. With ``p a − ℋ(p) = log(1 + e^a)`` at
``p = σ(a)`` the equation is

.. math::

    H(d) := d\,(1 − κΔt(ν + μ)) − λΔt\,[\operatorname{sp}(a) − \operatorname{sp}(b)] = 0,
    \qquad H'(d) = 1 − \frac{κ^2Δt}{λ}\, d\,[μ(1 − μ) − ν(1 − ν)].

(i) *A bracket.* ``|H(d) − d| ≤ B := Δt(κ(|ℓ − C| + |u − C|) + 2λ log 2)`` because ``ν, μ ∈ (0, 1)`` and
``−ℋ ∈ [0, log 2]``, so ``H(−B) ≤ 0 ≤ H(B)``.
(ii) *ν + μ ≤ 1.* ``a + b = κ(ℓ − u)/λ ≤ 0`` gives ``σ(b) ≤ σ(−a) = 1 − σ(a)``. Hence ``κΔt ≤ 1`` keeps
the survival factor ``1 − κ(ν + μ)Δt`` in ``[0, 1]`` (and is required).
(iii) *Every root is an upward crossing.* At a root ``d(1 − κΔt(ν+μ)) = λΔt[sp(a) − sp(b)]`` has the sign
of ``a − b``, i.e. ``d > 0`` iff ``w < (ℓ + u)/2``. If ``w < (ℓ + u)/2`` then ``b < a ≤ −b``, so
``|a| ≤ |b|`` and ``ν(1−ν) ≥ μ(1−μ)``: the bracket in ``H'`` is ``≤ 0`` while ``d ≥ 0``; symmetrically for
``w > (ℓ + u)/2``. So ``H' ≥ 1`` at every root. A continuous function whose zeros are all upward
crossings has at most one zero (between two consecutive upward zeros it would have to cross
downwards), and (i) gives one: the root is unique, ``H < 0`` left of it and ``H > 0`` right of it, so
bisection on the sign of ``H`` is always valid. (``H`` itself need not be monotone away from the
root: plain Newton or fixed-point iteration can fail when ``λ/κ`` is small.) The solver is Newton
safeguarded by that bracket (:func:`solve_game_step`), vectorized over nodes.

Quadrature and truncation
-------------------------
``x`` keeps its sign, and ``y = log|x|`` moves by ``N(m, s²)`` over ``Δt`` with
``m = (r − α + σ²/2)Δt``, ``s = σ√Δt``. Each half-line is a uniform grid in ``y`` and ``C_l`` is the
trapezoidal rule against the Gaussian density, the padded grid and the linear-in-``|x|`` extension of
:mod:`pdecore._gauss_quadrature` (``LogGrid``, ``Piecewise``, ``expectation``, ``pad_linear``, shared with
:func:`pdecore.stopping_oracle`). For ``λ > 0``
the values are smooth and the rule converges fast; for ``λ/κ`` far below a grid step the values are kinked
at the two boundaries and the rule is second order there (the boundaries move by less than 5e-4 when
the grid is refined 2x at λ = 1e-6; tested; at λ = 1e-2 by less than 1e-5).

*Insolvency.* At ``x = −(1−θ)`` the sell obstacle blows up, and a finite penalty cannot hold ``w`` on it
(SPEC section 4). The game is played on ``x ≥ x_floor = −(1−θ)(1 − m)`` (``m`` = ``insolvency_margin``,
default 0.05): the obstacles are evaluated at ``max(x, x_floor)``, so a path that drifts below the floor
faces the obstacles of the floor. The learners of :mod:`rl.dynkin` use the same clamped obstacles
(they know θ, not α or σ), so this oracle is exactly their target. At the paper setting (L = 10, κ = 5, λ = 1e-2)
the t = 0 sell boundary moves from −0.4478 to −0.4539 when ``m`` goes from 0.05 to 0.2 (the buy boundary
by 1e-3): κ = 5 cannot hold ``w`` on the sell obstacle near insolvency, and the learners share the floor.

Boundaries
----------
The no-trade band at date ``l`` is the largest connected run of nodes with ``ℓ < w < u`` (neither
player stops with probability ≥ ½; the node ``x = 0``, where the obstacles touch, counts as in the
band) on the physical grid ``x ≥ x_floor``; its left edge is the sell boundary ``x_s`` (crossing of
``w = s`` by linear interpolation) and its right edge the buy boundary ``x_b``; ``−inf``/``+inf`` when
the band reaches the end of the grid (no selling / no buying), NaN when there is no band
(:func:`no_trade_band`). The run rule, rather than the first contact run from the left that
:func:`pdecore.merton.merton_boundaries` uses, is needed because with a finite penalty the sell
obstacle's blow-up near the floor leaves nodes there out of contact.

References
----------
Dai, M. & Dong, Y. (2024), "Learning an optimal investment policy with transaction costs via a
randomized Dynkin game", SSRN 4871712. Dai, Sun, Xu & Zhou, "Learning to optimally stop diffusion
processes", section 4.7 and appendix D. SPEC.md sections 2 and 4.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from scipy.special import expit

from pdecore._gauss_quadrature import INV_SQRT_2PI, LogGrid, Piecewise, expectation, interpolate, pad_linear
from pdecore.checks import check_int, check_positive, check_range
from pdecore.diagnostics import SolverDiagnostics, freeze_arrays
from pdecore.exceptions import ConvergenceError
from pdecore.params import MertonCosts

__all__ = ["DynkinOracle", "dynkin_oracle", "solve_game_step", "clamped_obstacles", "no_trade_band",
           "insolvency_floor", "DEFAULT_INSOLVENCY_MARGIN"]

DEFAULT_INSOLVENCY_MARGIN = 0.05
_TOL = 1e-14
_MAX_ITER = 300


# ============================================================================================ #
# Obstacles, scalar equation, band
# ============================================================================================ #

def insolvency_floor(cost: float, insolvency_margin: float = DEFAULT_INSOLVENCY_MARGIN) -> float:
    """``x_floor = −(1−θ)(1 − m)``: the lowest ratio at which the obstacles are evaluated."""
    margin = check_range("insolvency_margin", insolvency_margin, 0.0, 1.0, closed_low=False, closed_high=False,
                         fix="pass a fraction of the distance to insolvency such as 0.05")
    return -(1.0 - cost) * (1.0 - margin)


def clamped_obstacles(x, cost: float, floor: float):
    """Sell and buy obstacles ``x_c/(x_c+1−θ)``, ``x_c/(x_c+1+θ)`` at ``x_c = max(x, floor)``.

    Returns ``(sell, buy)`` arrays of the shape of ``x``; the lower obstacle is ``min(sell, buy)``, the
    upper ``max(sell, buy)`` (they swap at ``x = 0``).
    """
    xc = np.maximum(np.asarray(x, dtype=float), floor)
    return xc / (xc + 1.0 - cost), xc / (xc + 1.0 + cost)


def _residual(d, continuation, lower, upper, penalty, temperature, dt):
    """``H(d)`` and ``H'(d)`` of the module docstring (vectorized).

    The sigmoid and softplus are the vectorized NumPy/SciPy forms of the Numba scalars in
    :mod:`pdecore._kernels.functions` (``scipy.special.expit`` and ``np.logaddexp(0, z)``, both overflow-free
    for either sign), as in :mod:`pdecore._reference.oracle`: this oracle works on whole arrays per date.
    """
    w = continuation + d
    a = penalty * (lower - w) / temperature
    b = penalty * (w - upper) / temperature
    nu, mu = expit(a), expit(b)
    kdt = penalty * dt
    h = d * (1.0 - kdt * (nu + mu)) - temperature * dt * (np.logaddexp(0.0, a) - np.logaddexp(0.0, b))
    slope = 1.0 - (penalty * kdt / temperature) * d * (mu * (1.0 - mu) - nu * (1.0 - nu))
    return h, slope


def solve_game_step(continuation, lower, upper, *, penalty: float, temperature: float, dt: float):
    """Solve ``w = C + Δt[κν(ℓ − C) − λℋ(ν) + κμ(u − C) + λℋ(μ)]`` at every node.

    Newton on ``H(d)``, ``d = w − C``, safeguarded by the bracket ``[−B, B]`` of the module docstring and
    kept by the sign of ``H`` (valid because the root is unique and ``H`` changes sign only there):
    a Newton step that leaves the current bracket is replaced by bisection.

    Parameters
    ----------
    continuation, lower, upper : ndarray
        ``C``, ``ℓ ≤ u`` (same shape).
    penalty, temperature, dt : float
        κ > 0, λ > 0, Δt > 0 with κΔt ≤ 1.

    Returns
    -------
    values : ndarray
        ``w``.
    iterations : int
        Iterations used (the maximum over nodes).

    Raises
    ------
    ConvergenceError
        If some node does not converge in 300 iterations (cannot happen with a valid bracket: bisection
        alone halves it 300 times).
    """
    c = np.asarray(continuation, dtype=float)
    lower = np.broadcast_to(np.asarray(lower, dtype=float), c.shape)
    upper = np.broadcast_to(np.asarray(upper, dtype=float), c.shape)
    bound = dt * (penalty * (np.abs(lower - c) + np.abs(upper - c)) + 2.0 * temperature * math.log(2.0))
    bound = bound * (1.0 + 1e-12) + 1e-300
    lo, hi = -bound, bound.copy()
    d = np.zeros_like(c)
    scale = 1.0 + np.abs(c)
    for iteration in range(1, _MAX_ITER + 1):
        h, slope = _residual(d, c, lower, upper, penalty, temperature, dt)
        negative = h < 0.0
        lo = np.where(negative, d, lo)
        hi = np.where(negative, hi, d)
        done = (np.abs(h) <= _TOL * scale) | (hi - lo <= _TOL * scale)
        if np.all(done):
            return c + d, iteration
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = d - h / slope
        ok = np.isfinite(newton) & (newton > lo) & (newton < hi) & (slope > 0.0)
        d = np.where(done, d, np.where(ok, newton, 0.5 * (lo + hi)))
    raise ConvergenceError("Dynkin oracle: the scalar game equation did not converge", penalty=penalty,
                           temperature=temperature, iterations=_MAX_ITER)


def no_trade_band(x, values, cost: float, floor: float) -> tuple[float, float]:
    """``(x_s, x_b)``: edges of the largest run of nodes with ``ℓ < w < u`` on ``x ≥ floor``.

    Parameters
    ----------
    x : float64[n]
        Ascending ratio nodes (a node at 0 counts as inside the band: the obstacles touch there).
    values : float64[n]
        ``w`` at the nodes (oracle or learned).
    cost : float
        θ.
    floor : float
        Nodes below it are ignored (module docstring).

    Returns
    -------
    (float, float)
        Sell and buy boundary, by linear interpolation of the gaps to the sell and to the buy obstacle;
        ``−inf`` (``+inf``) when the band reaches the left (right) end of the grid, ``(nan, nan)`` when no
        node is inside the band.
    """
    x = np.asarray(x, dtype=float)
    values = np.asarray(values, dtype=float)
    keep = x >= floor
    x, values = x[keep], values[keep]
    sell, buy = clamped_obstacles(x, cost, floor)
    negative = x < 0.0
    # signed gaps, > 0 inside the band: the sell obstacle is the lower one on x < 0, the upper one on x > 0
    sell_gap = np.where(negative, values - sell, sell - values)
    buy_gap = np.where(negative, buy - values, values - buy)
    inside = ((sell_gap > 0.0) & (buy_gap > 0.0)) | (x == 0.0)
    if not inside.any():
        return math.nan, math.nan
    edges = np.diff(np.concatenate([[0], inside.astype(np.int8), [0]]))
    starts, stops = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0] - 1
    lengths = x[stops] - x[starts]
    k = int(np.argmax(lengths))
    first, last = int(starts[k]), int(stops[k])

    def crossing(i_out, i_in, gap):
        g0, g1 = gap[i_out], gap[i_in]
        frac = -g0 / (g1 - g0) if g1 > g0 else 0.5
        return float(x[i_out] + min(max(frac, 0.0), 1.0) * (x[i_in] - x[i_out]))

    sell_edge = -math.inf if first == 0 else crossing(first - 1, first, sell_gap)
    buy_edge = math.inf if last == x.size - 1 else crossing(last + 1, last, buy_gap)
    return sell_edge, buy_edge


# ============================================================================================ #
# Result
# ============================================================================================ #

@dataclass(frozen=True, eq=False)  # arrays inside: identity, not element-wise, equality
class DynkinOracle:
    """Discrete-time fixed point of the RL Dynkin scheme (module docstring).

    Attributes
    ----------
    model : MertonCosts
    n_steps : int
        ``L``.
    penalty, temperature : float
        κ, λ.
    insolvency_floor : float
        ``x_floor`` (obstacles clamped below it).
    times : float64[L + 1]
        ``t_l = lΔt``.
    grid : float64[n]
        Ascending ratio nodes ``x`` (both half-lines and 0; nodes below the floor included).
    values : float64[L + 1, n]
        ``w_l(x)`` (read-only).
    sell_boundary, buy_boundary : float64[L + 1]
        ``x_s(t_l)``, ``x_b(t_l)`` (:func:`no_trade_band`; at ``t_L`` liquidation, NaN).
    sell_obstacle, buy_obstacle : float64[n]
        Clamped obstacles on the grid.
    stats : dict
        Grid sizes, iterations, wall time.
    diagnostics : SolverDiagnostics
        The common pdecore diagnostics shape (:mod:`pdecore.diagnostics`): ``total_iterations`` sums over
        dates the per-date maximum of the safeguarded Newton counts (over nodes and both half-lines),
        ``n_space`` the ratio nodes, ``n_time`` = ``n_steps`` = ``L``. Every array field is read-only.
    """

    model: MertonCosts
    n_steps: int
    penalty: float
    temperature: float
    insolvency_floor: float
    times: np.ndarray
    grid: np.ndarray
    values: np.ndarray
    sell_boundary: np.ndarray
    buy_boundary: np.ndarray
    sell_obstacle: np.ndarray = field(repr=False)
    buy_obstacle: np.ndarray = field(repr=False)
    stats: dict = field(default_factory=dict, repr=False)
    _half_lines: tuple = field(default=(), repr=False)
    diagnostics: SolverDiagnostics | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        freeze_arrays(self)

    @property
    def dt(self) -> float:
        """``Δt = T/L``."""
        return self.model.maturity / self.n_steps

    @property
    def sell_boundary_t0(self) -> float:
        """``x_s(0)``."""
        return float(self.sell_boundary[0])

    @property
    def buy_boundary_t0(self) -> float:
        """``x_b(0)``."""
        return float(self.buy_boundary[0])

    def band(self, level: int = 0) -> tuple[float, float]:
        """``(x_s, x_b)`` at date ``level``."""
        return float(self.sell_boundary[level]), float(self.buy_boundary[level])

    def value(self, level: int, x):
        """``w_level(x)`` by 6-point Lagrange interpolation in ``log|x|`` on each half-line (``w(0) = 0``)."""
        check_int("level", level, minimum=0, maximum=self.n_steps, fix=f"pass a date in [0, {self.n_steps}]")
        x = np.asarray(x, dtype=float)
        out = np.zeros(x.shape)
        for sign, grid, padded in self._half_lines:
            side = sign * x > 0.0
            if side.any():
                out[side] = interpolate(grid, padded[level], np.log(sign * x[side]))
        return float(out) if out.ndim == 0 else out

    def probabilities(self, level: int, x):
        """``(ν, μ)``: the lower and the upper player's stopping probabilities at ``x`` on date ``level``."""
        w = self.value(level, x)
        sell, buy = clamped_obstacles(x, self.model.cost, self.insolvency_floor)
        lower, upper = np.minimum(sell, buy), np.maximum(sell, buy)
        return (expit(self.penalty * (lower - w) / self.temperature),
                expit(self.penalty * (w - upper) / self.temperature))

    def summary(self) -> dict:
        """Scalars for tables and JSON."""
        m = self.model
        return {"drift": m.drift, "rate": m.rate, "volatility": m.volatility, "cost": m.cost,
                "maturity": m.maturity, "n_steps": self.n_steps, "penalty": self.penalty,
                "temperature": self.temperature, "insolvency_floor": self.insolvency_floor,
                "sell_boundary_t0": self.sell_boundary_t0, "buy_boundary_t0": self.buy_boundary_t0,
                **self.stats}

    def plot(self, ax=None, **kwargs):
        """Sell and buy boundaries over the dates (steps) on ``ax`` (created if None); returns ax."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots()
        label = kwargs.pop("label", f"oracle L={self.n_steps}, κ={self.penalty:g}, λ={self.temperature:g}")
        times = self.times[:-1]
        ax.plot(times, self.sell_boundary[:-1], drawstyle="steps-post", label=f"sell, {label}", **kwargs)
        ax.plot(times, self.buy_boundary[:-1], drawstyle="steps-post", linestyle="--", label=f"buy, {label}",
                **kwargs)
        ax.axhline(self.model.merton_ratio, color="grey", linewidth=0.8, label="$x_M$")
        ax.set_xlabel("t")
        ax.set_ylabel("bond/stock ratio x = B/S")
        ax.legend()
        return ax


# ============================================================================================ #
# Facade
# ============================================================================================ #

def _validate(model, n_steps, penalty, temperature, insolvency_margin, nodes_per_std, n_std):
    if not isinstance(model, MertonCosts):
        raise ValueError(f"model must be a pdecore.MertonCosts, got {type(model).__name__}; "
                         "pass MertonCosts(drift, rate, volatility, cost, maturity)")
    if not (0.0 < model.merton_fraction < math.inf):
        raise ValueError(f"the Merton fraction (drift - rate)/volatility**2 = {model.merton_fraction!r} is not "
                         "in (0, inf): the game is not defined; choose drift > rate")
    if not model.cost < 1.0:
        raise ValueError(f"cost must be < 1, got {model.cost!r}; pass a proportional cost such as 0.005")
    n_steps = check_int("n_steps", n_steps, minimum=1, fix="pass the number of RL dates, e.g. n_steps=10")
    penalty = check_positive("penalty", penalty, fix="pass a positive penalty factor such as 5")
    temperature = check_positive("temperature", temperature,
                                 fix="pass a temperature λ > 0 (the scheme randomizes both players), e.g. 0.01")
    floor = insolvency_floor(model.cost, insolvency_margin)
    if model.merton_ratio <= floor:
        raise ValueError(f"the Merton ratio x_M = {model.merton_ratio:.6g} is at or below the insolvency floor "
                         f"{floor:.6g}; lower insolvency_margin or the leverage (drift - rate)/volatility**2")
    nodes_per_std = check_range("nodes_per_std", nodes_per_std, 2.0, 400.0,
                                fix="pass between 2 and 400 nodes per one-step standard deviation, e.g. 16")
    n_std = check_range("n_std", n_std, 3.0, 20.0, fix="pass a half-width of 3 to 20 standard deviations")
    ratio = penalty * model.maturity / n_steps
    if ratio > 1.0 + 1e-12:
        raise ValueError(
            f"penalty*maturity/n_steps = {penalty:g}*{model.maturity:g}/{n_steps} = {ratio:.6g} > 1: the survival "
            f"factor 1 - penalty*(nu + mu)*dt can be negative; use n_steps >= {math.ceil(penalty * model.maturity - 1e-12)} "
            f"or penalty <= {n_steps / model.maturity:.6g}")
    return n_steps, penalty, temperature, floor, nodes_per_std, n_std


def _half_line_grid(model: MertonCosts, sign: float, floor: float, dt: float, nodes_per_std: float,
                    n_std: float) -> LogGrid:
    """Uniform grid in ``y = log|x|`` on one half-line with the transition weights of the ratio process."""
    sigma = model.volatility
    scale = sigma * math.sqrt(dt)
    drift = (model.rate - model.drift + 0.5 * sigma**2) * dt
    h = scale / nodes_per_std
    reach = n_std * sigma * math.sqrt(model.maturity) + abs(drift) * (model.maturity / dt)
    x_m = model.merton_ratio
    center = math.log(abs(x_m)) if sign * x_m > 0.0 else math.log(0.5 * (1.0 - model.cost))
    low, high = center - reach, center + reach
    if sign < 0.0:
        # the band lives above the floor: cover it and a few steps of the clamped region beyond
        high = max(math.log(-floor) + 3.0 * scale, min(high, math.log(-floor) + reach))
        low = min(low, math.log(-floor) - reach)
    n_pad = max(4, math.ceil((abs(drift) + 9.0 * scale) / h))
    first, last = math.floor((low - center) / h), math.ceil((high - center) / h)
    offsets = np.arange(first - n_pad, last + n_pad + 1, dtype=float)
    y = center + h * offsets
    k = np.arange(-n_pad, n_pad + 1, dtype=float)
    standardized = (k * h - drift) / scale
    density = INV_SQRT_2PI / scale * np.exp(-0.5 * standardized**2)
    # the derivative kernels of LogGrid serve narrow sub-grid bumps only, which this oracle does not use
    return LogGrid(y=y, h=h, n_pad=n_pad, weights=h * density, drift=drift, scale=scale, discount=1.0,
                    derivative_kernels=())


def dynkin_oracle(model: MertonCosts, *, n_steps: int, penalty: float, temperature: float,
                  insolvency_margin: float = DEFAULT_INSOLVENCY_MARGIN, nodes_per_std: float = 16.0,
                  n_std: float = 7.0) -> DynkinOracle:
    """Compute the discrete-time Dynkin fixed point and its no-trade band on every date.

    Parameters
    ----------
    model : MertonCosts
        Physical market and cost (``drift, rate, volatility, cost, maturity``).
    n_steps : int
        ``L`` (``Δt = T/L``).
    penalty : float
        κ > 0 with ``κΔt ≤ 1``.
    temperature : float
        λ > 0.
    insolvency_margin : float, default 0.05
        ``m`` of the floor ``−(1−θ)(1−m)`` below which the obstacles are clamped.
    nodes_per_std : float, default 16
        Nodes per one-step standard deviation ``σ√Δt`` of ``log|x|``.
    n_std : float, default 7
        Half-width of each half-line's grid in standard deviations of ``log|x_T|``.

    Returns
    -------
    DynkinOracle

    Raises
    ------
    ValueError
        ``κΔt > 1``, ``λ ≤ 0``, ``cost ≥ 1``, a Merton fraction outside ``(0, ∞)``, ``x_M`` at or below
        the floor, or bad numerical settings; the message names the parameter.
    ConvergenceError
        If the scalar equation fails (see :func:`solve_game_step`).

    Notes
    -----
    Paper setting (SPEC default market ``α = 0.168, r = 0.008, σ = 0.3, θ = 0.005, T = 1``, ``L = 10``,
    ``κ = 5``, ``λ = 0.01``): see ``benchmarks/bench_dynkin.py`` for the t = 0 band and its sensitivity.
    """
    started = time.perf_counter()
    n_steps, penalty, temperature, floor, nodes_per_std, n_std = _validate(
        model, n_steps, penalty, temperature, insolvency_margin, nodes_per_std, n_std)
    dt = model.maturity / n_steps
    cost = model.cost
    half_lines = []
    per_date_iterations = np.zeros(n_steps, dtype=np.int64)  # max over nodes and both half-lines
    node_values = {}
    for sign in (-1.0, 1.0):
        grid = _half_line_grid(model, sign, floor, dt, nodes_per_std, n_std)
        x = sign * np.exp(grid.y)
        sell, buy = clamped_obstacles(x, cost, floor)
        lower, upper = np.minimum(sell, buy), np.maximum(sell, buy)
        padded = np.empty((n_steps + 1, grid.y.size))
        padded[n_steps] = sell  # w_L: liquidation
        inner = grid.interior
        with np.errstate(under="ignore"):
            for level in range(n_steps - 1, -1, -1):
                continuation = expectation(grid, Piecewise(padded[level + 1]))
                w, used = solve_game_step(continuation, lower[inner], upper[inner], penalty=penalty,
                                          temperature=temperature, dt=dt)
                per_date_iterations[level] = max(per_date_iterations[level], used)
                padded[level] = pad_linear(grid, w)
        padded.setflags(write=False)
        half_lines.append((sign, grid, padded))
        node_values[sign] = (x[inner], padded[:, inner])
    x_neg, w_neg = node_values[-1.0]
    x_pos, w_pos = node_values[1.0]
    grid_x = np.concatenate([x_neg[::-1], [0.0], x_pos])
    values = np.concatenate([w_neg[:, ::-1], np.zeros((n_steps + 1, 1)), w_pos], axis=1)
    sell_obstacle, buy_obstacle = clamped_obstacles(grid_x, cost, floor)
    bands = [no_trade_band(grid_x, values[level], cost, floor) for level in range(n_steps)]
    sell_boundary = np.array([b[0] for b in bands] + [math.nan])
    buy_boundary = np.array([b[1] for b in bands] + [math.nan])
    wall = time.perf_counter() - started
    stats = {"n_nodes": int(grid_x.size), "grid_step": half_lines[0][1].h,
             "max_newton_iterations": int(per_date_iterations.max()), "wall_time_s": wall}
    diagnostics = SolverDiagnostics.from_iterations(per_date_iterations, n_time=n_steps, n_space=grid_x.size,
                                                    wall_seconds=wall)
    return DynkinOracle(model=model, n_steps=n_steps, penalty=penalty, temperature=temperature,
                        insolvency_floor=floor, times=np.linspace(0.0, model.maturity, n_steps + 1), grid=grid_x,
                        values=values, sell_boundary=sell_boundary, buy_boundary=buy_boundary,
                        sell_obstacle=sell_obstacle, buy_obstacle=buy_obstacle, stats=stats,
                        _half_lines=tuple(half_lines), diagnostics=diagnostics)
