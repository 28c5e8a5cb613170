"""The discrete-time oracle of the RL stopping scheme (SPEC section 2; Dai, Sun, Xu & Zhou, eqs. 4.5–4.7).

The RL algorithms of the stopping paper act on ``L`` dates ``t_l = lΔt``, ``Δt = T/L``. A perfect
function approximator converges to the fixed point of the backward recursion

.. math::

    C_l(x) = e^{−rΔt}\\,E[V_{l+1}(X_{l+1}) \\mid X_l = x], \\qquad V_L = g,

    V_l = C_l + Δt\\,[κ π (g − C_l) − λ ℋ(π)], \\qquad π = \\operatorname{sigmoid}(κ (g − V_l)/λ),

with ``ℋ(π) = π log π + (1 − π) log(1 − π)``. Executing the learned policy by the paper's rule
"exercise iff ``π ≥ ½``", i.e. iff ``V_l ≤ g``, gives two prices:

* ``P_stopping = E[e^{−rτ} g(X_τ)]`` with ``τ = min{t_l : V_l(X_{t_l}) ≤ g(X_{t_l})}`` (else ``T``)
  (paper eq. 4.5), computed by ``U_l = g`` on the exercise set and ``U_l = e^{−rΔt}E[U_{l+1}]`` elsewhere;
* ``P_control``, the penalized bang-bang value of ``u_l = 1{V_l ≤ g}`` (paper eq. 4.7):
  ``W_l = u_l κ g Δt + (1 − u_l κΔt) e^{−rΔt} E[W_{l+1} | X_l]``, ``W_L = g``.

The recursion needs ``κΔt ≤ 1`` (otherwise the survival factor ``1 − κπΔt`` is negative); larger
penalties are refused. With ``λ = 0`` and ``κΔt = 1`` the recursion is ``V_l = max(g, C_l)``: the
Bermudan price (:func:`bermudan_price`), and then ``P_stopping = P_control = V_0``.

Numerical method
----------------
*Scalar equation.* With ``d = g − C_l`` the value ``V_l = C_l + v(d)`` depends on ``d`` only; ``v`` is
found by safeguarded Newton (:func:`pdecore._kernels.oracle.solve_penalty_step`). Exercise
(``V_l ≤ g``, ``π ≥ ½``) holds iff ``d ≥ d^* = λΔt log 2 / (1 − κΔt/2)`` (put ``π = ½``, ``V = g`` in the
equation), so the exercise set is ``{g − C_l ≥ d^*}``, found from the smooth function ``C_l``.

*Quadrature.* ``Y = log X`` moves by ``N(μ, s²)``, ``μ = (r − q − σ²/2)Δt``, ``s = σ√Δt``. On a uniform
log grid (the spot on a node, spacing ``h = s/nodes_per_std``) the trapezoidal rule for a *smooth*
integrand against the Gaussian density converges faster than any power of ``h``. The functions to
integrate are smooth except at a few points: the payoff kink at the strike, and the exercise
boundary, where ``U`` and ``W`` jump and the bang-bang ``V`` (``λ = 0``) has a kink. Every function is
therefore carried as

.. math::

    U(y) = A(y) + \\sum_k σ_k 1\\{y ≤ c_k\\} D_k(y),

with ``A`` and ``D_k`` smooth on the whole line (the in-the-money branch ``g_{ext} = ±(e^y − K)`` of the
payoff is used inside ``D``). For each singular point ``c`` the cubic ``P`` interpolating ``D`` at the four
nodes around ``c`` is subtracted: ``1\\{y ≤ c\\}P`` is integrated exactly against the Gaussian
(truncated moments ``∫_{−∞}^{a} (z − a)^m φ(z) dz``, ``m ≤ 3``), and the remainder ``1\\{y ≤ c\\}(D − P)``,
whose jump and first three derivative jumps at ``c`` are ``O(h^4), …, O(h)``, goes into the trapezoidal
sum with a local error ``O(h^5)``. The grid covers ``n_std`` standard deviations of ``log X_T`` around
the spot and the strike; outside it, values are extended linearly in ``S`` (exact for the
asymptotics of puts and calls), whose error reaches the quoted spot with weight ``Φ(−n_std)``.

*Narrow turns.* For ``λ > 0`` the map ``d ↦ v(d)`` is smooth but turns from 0 to ``κΔt d`` within a
width ``λ/κ`` around ``d = 0``; when that width, seen in ``y``, is below the grid step, ``V_l`` looks
kinked to the grid. Then ``v = κΔt d^+ + ρ(d)``: the kink part is one more exact piece (root of
``g − C_l = 0``), and the localized remainder ``ρ`` is integrated on its own sub-grid, four points per
width, placed around the root; the sub-grid sums are binned onto the main grid with a six-term
Taylor expansion of the density (``stats["bump_steps"]`` counts the dates where this was needed).

Accuracy: ``bermudan_price`` reproduces SPEC's 5.31196 to 6e-6, and QuantLib's FD Bermudan engine
converges to it (``benchmarks/bench_oracle.py``); at the default grid the SPEC case's numbers move by
less than 2e-9 when the grid is refined 4x; an independent brute-force twin
(:func:`pdecore._reference.oracle.stopping_oracle_reference`) agrees to its own ``O(h)`` error.

References
----------
Dai, M., Sun, Y., Xu, Z. Q. & Zhou, X. Y., "Learning to optimally stop diffusion processes, with
financial applications", section 4 (the RL scheme, eqs. 4.5–4.7). SPEC.md section 2.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from pdecore._gauss_quadrature import INV_SQRT_2PI, LogGrid, Piecewise, expectation, interpolate, pad_linear
from pdecore._kernels.oracle import solve_penalty_step
from pdecore._numba import STATUS_MESSAGES, STATUS_OK
from pdecore.budget import check_memory, check_work
from pdecore.checks import check_int, check_positive, check_range
from pdecore.diagnostics import SolverDiagnostics, freeze_arrays
from pdecore.exceptions import ConvergenceError
from pdecore.params import AmericanOption, BlackScholes, check_temperature

__all__ = ["OracleSettings", "StoppingOracle", "stopping_oracle", "bermudan_price", "rule_value"]

_NEWTON_TOL = 1e-14
_NEWTON_MAX_ITER = 200


@dataclass(frozen=True, slots=True)
class OracleSettings:
    """Numerical settings of :func:`stopping_oracle` and :func:`bermudan_price` (kept apart from the
    problem, like :class:`pdecore.AmericanSettings`).

    ``n_steps``, ``penalty`` and ``temperature`` are not settings: they define the discrete-time RL
    recursion whose fixed point is computed (SPEC section 2). The scalar Newton iteration is solved to
    round-off (tolerance 1e-14, at most 200 safeguarded steps) and is not a setting either: its error
    does not depend on a trade-off the caller could make.

    Parameters
    ----------
    nodes_per_std : float
        Grid nodes per one-step standard deviation ``σ√Δt`` of ``log S``, in [2, 200]; default 12
        (the quadrature of the module docstring is exact for the piecewise pieces, so the error is that
        of the smooth parts, fourth order in the step).
    n_std : float
        Half-width of the log-spot grid in standard deviations of ``log S_T``, in [3, 20]; default 7.
    """

    nodes_per_std: float = 12.0
    n_std: float = 7.0

    def __post_init__(self) -> None:
        check_range("nodes_per_std", self.nodes_per_std, 2.0, 200.0,
                    fix="pass between 2 and 200 grid nodes per one-step standard deviation, e.g. 12")
        check_range("n_std", self.n_std, 3.0, 20.0, fix="pass a grid half-width of 3 to 20 standard deviations")


# ============================================================================================ #
# Grid and quadrature
# ============================================================================================ #

def _grid_extent(model: BlackScholes, option: AmericanOption, spot: float, dt: float,
                 nodes_per_std: float, n_std: float) -> tuple[float, float, float, float, float]:
    """``(scale, drift, h, first, last)`` of the log grid, as floats (no allocation, no int overflow).

    Shared by :func:`_build_grid` and the memory estimate of :func:`_validate`, so that the refusal
    counts exactly the nodes the solve would allocate.
    """
    scale = model.volatility * math.sqrt(dt)
    drift = (model.rate - model.dividend - 0.5 * model.volatility**2) * dt
    h = scale / nodes_per_std
    log_strike = math.log(option.strike)
    log_spot = math.log(spot)
    reach = n_std * model.volatility * math.sqrt(option.maturity) + abs(drift) * (option.maturity / dt)
    # The spot is a node, so the quoted prices need no interpolation; the strike's kink is an exact
    # piece wherever it falls.
    first = math.floor((min(log_spot, log_strike) - reach - log_spot) / h)
    last = math.ceil((max(log_spot, log_strike) + reach - log_spot) / h)
    return scale, drift, h, first, last


def _grid_size(model, option, spot, dt, nodes_per_std, n_std) -> tuple[float, float]:
    """``(n_nodes, n_pad)`` of the padded log grid, as floats."""
    scale, drift, h, first, last = _grid_extent(model, option, spot, dt, nodes_per_std, n_std)
    n_pad = max(4.0, math.ceil((abs(drift) + 9.0 * scale) / h))
    return float(last - first) + 2.0 * n_pad + 1.0, n_pad


def _build_grid(model: BlackScholes, option: AmericanOption, spot: float, dt: float,
                nodes_per_std: float, n_std: float) -> LogGrid:
    """The padded uniform log grid with the spot on a node and the transition weights."""
    scale, drift, h, first, last = _grid_extent(model, option, spot, dt, nodes_per_std, n_std)
    log_spot = math.log(spot)
    # The pad holds the Gaussian kernel's support: |μ| + 9 s leaves a tail mass below 1e-18.
    n_pad = max(4, math.ceil((abs(drift) + 9.0 * scale) / h))
    offsets = np.arange(first - n_pad, last + n_pad + 1, dtype=float)
    y = log_spot + h * offsets
    k = np.arange(-n_pad, n_pad + 1, dtype=float)
    discount = math.exp(-model.rate * dt)
    standardized = (k * h - drift) / scale
    density = discount / scale * INV_SQRT_2PI * np.exp(-0.5 * standardized**2)
    weights = h * density
    # ∂^k/∂y^k φ_s(y − m) = (−1/s)^k He_k((y − m)/s) φ_s(y − m), He_k the probabilists' Hermite polynomials.
    t = standardized
    hermite = (np.ones_like(t), t, t**2 - 1.0, t**3 - 3.0 * t, t**4 - 6.0 * t**2 + 3.0,
               t**5 - 10.0 * t**3 + 15.0 * t)
    derivative_kernels = tuple((-1.0 / scale) ** k * hermite[k] * density for k in range(6))
    return LogGrid(y=y, h=h, n_pad=n_pad, weights=weights, drift=drift, scale=scale, discount=discount,
                    derivative_kernels=derivative_kernels)


def _bump_extent(penalty: float, temperature: float, dt: float) -> tuple[float, float]:
    """Range ``[u_min, u_max]`` of ``u = κd/λ`` outside which ``ρ(d) = v(d) − κΔt d^+`` is negligible.

    ``v(d) = V − C`` is smooth but, for small ``λ/κ``, turns from 0 to ``κΔt d`` within a width ``λ/κ``
    around ``d = 0``: a near-kink. Its kink part ``κΔt d^+`` is integrated exactly as an exercise-type
    piece; the remainder ``ρ`` decays like ``|u| e^{u}`` on the left and like ``e^{−(1 − κΔt) u}`` on the
    right (there ``g − V ≈ (1 − κΔt) d``), so it is localized when ``κΔt < 1``; at ``κΔt = 1`` it grows
    like ``−(λ/κ) log u`` there, slowly, so a sub-grid reaching the end of the grid carries it. Its
    profile depends on ``(κ, λ, Δt)`` only and is scanned once: the extent is where ``|ρ|`` exceeds
    ``1e-16`` of its maximum.
    """
    kdt = min(penalty * dt, 1.0)
    # At κΔt = 1 the right tail does not decay (ρ ≈ −(λ/κ) log u): the extent is then the whole
    # in-the-money side, and _bump_nodes clips it to the grid.
    gap = max(1.0 - kdt, 1e-12)
    right = (60.0 + 2.0 * math.log(1.0 / gap)) / gap
    u = np.concatenate([np.linspace(-60.0, 40.0, 2001), np.geomspace(40.0, max(right, 41.0), 2001)[1:]])
    d = temperature / penalty * u
    v, _, _ = _solve_scalar(d, penalty, temperature, dt, -1)
    rho = np.abs(v - kdt * np.maximum(d, 0.0))
    significant = np.nonzero(rho > 1e-16 * rho.max())[0]
    return float(u[significant[0]]) - 1.0, 1.2 * float(u[min(significant[-1] + 1, u.size - 1)])


def _bump_nodes(root: float, slope: float, width: float, extent: tuple[float, float], grid: LogGrid):
    """Sub-grid and trapezoid weights for the bump at ``root`` (its kink on a node).

    Placed by the linearization ``u ≈ slope (y − root)/width``: step ``0.25`` in ``u`` for ``u ≤ 40``
    (on either side of the kink at ``u = 0``),
    then, in the slowly decaying right tail, steps of ``0.25/(1 − κΔt)`` in ``u`` capped at half a grid
    step; clipped to the grid.
    """
    sign = math.copysign(1.0, slope)
    # Clip the range in u to the grid before building nodes (the tail may be unbounded at κΔt = 1).
    ends = sorted(sign * (end - root) / width for end in (grid.y[0], grid.y[-1]))
    u_min, u_max = max(extent[0], ends[0]), min(extent[1], ends[1])
    # Separate trapezoid segments on each side of the kink at u = 0 (a node of both).
    core_end = min(u_max, 40.0)
    segments = [np.linspace(u_min, 0.0, max(2, int(math.ceil(-u_min / 0.25)) + 1))]
    if core_end > 0.0:
        segments.append(np.linspace(0.0, core_end, max(2, int(math.ceil(core_end / 0.25)) + 1)))
    if u_max > core_end > 0.0:
        tail_step = max(0.25, min(0.25 * u_max / 100.0, 0.5 * grid.h / width))
        n_tail = max(2, int(math.ceil((u_max - core_end) / tail_step)) + 1)
        segments.append(np.linspace(core_end, u_max, n_tail))
    y_parts, w_parts = [], []
    for u in segments:
        y = root + sign * width * u
        weights = np.full(u.size, (u[1] - u[0]) * width)
        weights[[0, -1]] *= 0.5
        y_parts.append(y)
        w_parts.append(weights)
    nodes = np.concatenate(y_parts)
    weights = np.concatenate(w_parts)
    return nodes, weights


def _crossings(grid: LogGrid, excess: np.ndarray):
    """Sign changes of ``excess = g_ext − C − d^*`` over the interior (exercise where ``≥ 0``).

    Returns ``(right_exercise, [(c, sign, slope), ...])`` such that the exercise indicator equals
    ``right_exercise + Σ sign·1{y ≤ c}`` (``slope`` is ``d(excess)/dy`` at ``c``); each root is located
    by bisection on the cubic through the four nodes around the sign change (the cubic passes
    through both end values, so a root exists).
    """
    interior = grid.interior
    exercise = excess >= 0.0
    idx = np.arange(excess.size)[interior]
    changes = idx[:-1][exercise[idx[:-1]] != exercise[idx[1:]]]
    right_exercise = bool(exercise[idx[-1]])
    result = []
    for j in changes:
        values = excess[j - 1:j + 3]
        # Lagrange cubic through nodes at t = −1, 0, 1, 2, evaluated on [0, 1] by bisection.
        def cubic(t, v=values):
            return (-v[0] * t * (t - 1.0) * (t - 2.0) / 6.0 + v[1] * (t + 1.0) * (t - 1.0) * (t - 2.0) / 2.0
                    - v[2] * (t + 1.0) * t * (t - 2.0) / 2.0 + v[3] * (t + 1.0) * t * (t - 1.0) / 6.0)
        low, high = 0.0, 1.0
        low_positive = cubic(low) >= 0.0
        for _ in range(60):
            middle = 0.5 * (low + high)
            if (cubic(middle) >= 0.0) == low_positive:
                low = middle
            else:
                high = middle
        t_root = 0.5 * (low + high)
        root = grid.y[j] + t_root * grid.h
        # d(excess)/dy at the root, by a central difference of the cubic (exact to rounding).
        slope = (cubic(t_root + 1e-4) - cubic(t_root - 1e-4)) / (2e-4 * grid.h)
        # Exercise on the left of the root: the indicator drops there (+1{y ≤ c}); else it rises.
        result.append((root, 1.0 if exercise[j] else -1.0, slope))
    return right_exercise, result


def _solve_scalar(d: np.ndarray, penalty: float, temperature: float, dt: float, step: int):
    """``(v, π)`` of the scalar equation at every entry of ``d``; ConvergenceError on failure."""
    d = np.ascontiguousarray(d, dtype=float)
    v = np.empty_like(d)
    pi = np.empty_like(d)
    status, iterations = solve_penalty_step(d.ravel(), penalty, temperature, dt, _NEWTON_TOL,
                                            _NEWTON_MAX_ITER, v.ravel(), pi.ravel())
    if status != STATUS_OK:
        raise ConvergenceError("stopping oracle: the scalar penalty equation failed: "
                               f"{STATUS_MESSAGES[status]}",
                               step=step, penalty=penalty, temperature=temperature, iterations=iterations)
    return v, pi, iterations


# ============================================================================================ #
# Result
# ============================================================================================ #

@dataclass(frozen=True, eq=False)  # arrays inside: identity, not element-wise, equality
class StoppingOracle:
    """The fixed point of the RL stopping recursion on ``n_steps`` dates (SPEC section 2).

    Attributes
    ----------
    model, option : BlackScholes, AmericanOption
    n_steps, penalty, temperature : int, float, float
        ``L``, ``κ`` and ``λ``.
    spot : float
        The spot at which ``value0``, ``p_stopping`` and ``p_control`` are quoted.
    times : ndarray, shape (L + 1,)
        ``t_l = l T/L``.
    spots : ndarray, shape (N,)
        Interior grid of spots (uniform in ``log S``, the quoted spot on a node).
    values : ndarray, shape (L + 1, N)
        ``V_l`` at the grid (``V_L = g``).
    stopping_values, control_values : ndarray, shape (L + 1, N)
        ``U_l`` and ``W_l`` of ``P_stopping`` and ``P_control`` at the grid.
    boundary : ndarray, shape (L + 1,)
        Exercise boundary ``sup{S : V_l(S) ≤ g(S)}`` (put) or ``inf{…}`` (call) at each date; NaN where
        the rule never exercises; the strike at ``t_L`` (the payoff is received there).
    value0, p_stopping, p_control : float
        ``V_0``, ``P_stopping`` and ``P_control`` at ``spot``.
    stats : dict
        ``wall_time_s``, ``n_nodes``, ``max_newton_iterations``, ``exercise_threshold`` (``d^*``).
    diagnostics : SolverDiagnostics
        The shape shared by every pdecore result: ``n_steps``/``n_time`` are the dates ``L``,
        ``n_space`` the interior nodes, ``max_iterations`` the largest scalar-Newton count at one date
        (over all nodes) and ``total_iterations`` the sum of these per-date maxima (0 when ``λ = 0``:
        the bang-bang recursion is explicit).
    """

    model: BlackScholes
    option: AmericanOption
    n_steps: int
    penalty: float
    temperature: float
    spot: float
    times: np.ndarray
    spots: np.ndarray
    values: np.ndarray
    stopping_values: np.ndarray
    control_values: np.ndarray
    boundary: np.ndarray
    value0: float
    p_stopping: float
    p_control: float
    stats: dict
    _grid: LogGrid = field(repr=False)
    _continuation: np.ndarray = field(repr=False)  # (L, M) padded C_l of V
    _stopping_continuation: np.ndarray = field(repr=False)  # (L, M) padded e^{−rΔt}E[U_{l+1}]
    _control_continuation: np.ndarray = field(repr=False)  # (L, M) padded e^{−rΔt}E[W_{l+1}]
    diagnostics: SolverDiagnostics | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        freeze_arrays(self)

    # ---------------------------------------------------------------------------------------- #
    @property
    def dt(self) -> float:
        """``Δt = T/L``."""
        return self.option.maturity / self.n_steps

    @property
    def exercise_threshold(self) -> float:
        """``d^* = λΔt log 2 / (1 − κΔt/2)``: exercise iff ``g − C_l ≥ d^*``."""
        return self.stats["exercise_threshold"]

    def _date(self, l, *, allow_maturity: bool) -> int:
        """Validated date index (``L`` itself only where the payoff is meant)."""
        top = self.n_steps if allow_maturity else self.n_steps - 1
        return check_int("l", l, minimum=0, maximum=top,
                         fix=f"pass a date index 0 <= l <= {top} (t_l = l*{self.dt:.6g})")

    def _spots(self, x) -> np.ndarray:
        """Validated spots as a float array (any shape)."""
        x = np.asarray(x, dtype=float)
        if not np.all(np.isfinite(x)) or np.any(x <= 0.0):
            raise ValueError(f"x must contain finite spots > 0, got {x!r}; pass positive spot prices")
        return x

    def _payoff_ext(self, x):
        """In-the-money branch ``±(x − K)`` of the payoff (negative out of the money)."""
        return self.option.strike - x if self.option.kind == "put" else x - self.option.strike

    def _shape(self, x, value):
        """A float for scalar ``x``, the array otherwise."""
        return float(value) if np.ndim(x) == 0 else value

    def continuation(self, l, x):
        """``C_l(x) = e^{−rΔt} E[V_{l+1}(X_{l+1}) | X_l = x]`` for ``0 ≤ l < L``, vectorized in ``x``."""
        l = self._date(l, allow_maturity=False)
        x = self._spots(x)
        return self._shape(x, interpolate(self._grid, self._continuation[l], np.log(x)))

    def value(self, l, x):
        """``V_l(x)``: the continuation value interpolated (smooth), then the scalar equation solved at x.

        Parameters
        ----------
        l : int
            Date index ``0 ≤ l ≤ L`` (``V_L = g``).
        x : float or array_like
            Spots > 0 (any shape).
        """
        l = self._date(l, allow_maturity=True)
        x = self._spots(x)
        payoff = self.option.payoff(x)
        if l == self.n_steps:
            return self._shape(x, payoff)
        c = interpolate(self._grid, self._continuation[l], np.log(x))
        v, _, _ = _solve_scalar(np.atleast_1d(payoff - c), self.penalty, self.temperature, self.dt, l)
        return self._shape(x, c + v.reshape(np.shape(c)))

    def exercise(self, l, x):
        """The execution rule at date ``l < L``: ``V_l(x) ≤ g(x)`` (``π ≥ ½``), as booleans."""
        l = self._date(l, allow_maturity=False)
        x = self._spots(x)
        c = interpolate(self._grid, self._continuation[l], np.log(x))
        rule = self._payoff_ext(x) - c >= self.exercise_threshold
        return bool(rule) if np.ndim(x) == 0 else rule

    def policy(self, l, x):
        """Stopping probability ``π_l(x) = sigmoid(κ(g − V_l)/λ)`` at date ``l < L``.

        At ``λ = 0`` it is the bang-bang rule ``1{V_l ≤ g}`` restricted to the money (``g > 0``).
        """
        l = self._date(l, allow_maturity=False)
        x = self._spots(x)
        c = interpolate(self._grid, self._continuation[l], np.log(x))
        if self.temperature == 0.0:
            return self._shape(x, (self._payoff_ext(x) - c >= 0.0).astype(float))
        _, pi, _ = _solve_scalar(np.atleast_1d(self.option.payoff(x) - c), self.penalty, self.temperature,
                                 self.dt, l)
        return self._shape(x, pi.reshape(np.shape(c)))

    def stopping_value(self, l, x):
        """``U_l(x)``: value at date ``l`` of exercising by the rule from ``l`` on (``P_stopping`` at 0)."""
        l = self._date(l, allow_maturity=True)
        x = self._spots(x)
        payoff = self.option.payoff(x)
        if l == self.n_steps:
            return self._shape(x, payoff)
        cont = interpolate(self._grid, self._stopping_continuation[l], np.log(x))
        return self._shape(x, np.where(self.exercise(l, x), payoff, cont))

    def control_value(self, l, x):
        """``W_l(x)``: the penalized bang-bang value of the rule (``P_control`` at l = 0)."""
        l = self._date(l, allow_maturity=True)
        x = self._spots(x)
        if l == self.n_steps:
            return self._shape(x, self.option.payoff(x))
        cont = interpolate(self._grid, self._control_continuation[l], np.log(x))
        kdt = min(self.penalty * self.dt, 1.0)
        return self._shape(x, cont + np.where(self.exercise(l, x), kdt * (self._payoff_ext(x) - cont), 0.0))

    def summary(self) -> dict:
        """Scalars for tables and JSON: the three prices, the boundary at t = 0, the settings, stats."""
        return {
            "kind": self.option.kind, "spot": self.spot, "strike": self.option.strike,
            "maturity": self.option.maturity, "volatility": self.model.volatility, "rate": self.model.rate,
            "dividend": self.model.dividend, "n_steps": self.n_steps, "penalty": self.penalty,
            "temperature": self.temperature, "value0": self.value0, "p_stopping": self.p_stopping,
            "p_control": self.p_control, "boundary_t0": float(self.boundary[0]), **self.stats,
        }

    def plot(self, ax=None, **kwargs):
        """Draw the exercise boundary ``S*(t_l)`` against ``t_l`` on ``ax`` (created if None); returns ax."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots()
        label = kwargs.pop("label", f"oracle L={self.n_steps}, κ={self.penalty:g}, λ={self.temperature:g}")
        ax.plot(self.times, self.boundary, drawstyle="steps-post", label=label, **kwargs)
        ax.set_xlabel("t")
        ax.set_ylabel("exercise boundary S*(t)")
        ax.legend()
        return ax


# ============================================================================================ #
# Facade
# ============================================================================================ #

def _validate(model, option, n_steps, penalty, temperature, spot, nodes_per_std, n_std, settings=None, *,
              budget: bool = True):
    if not isinstance(model, BlackScholes):
        raise ValueError(f"model must be a pdecore.BlackScholes, got {type(model).__name__}; "
                         "pass BlackScholes(volatility=..., rate=..., dividend=...)")
    if not isinstance(option, AmericanOption):
        raise ValueError(f"option must be a pdecore.AmericanOption, got {type(option).__name__}; "
                         "pass AmericanOption(kind=..., strike=..., maturity=...)")
    n_steps = check_int("n_steps", n_steps, minimum=1, fix="pass the number of RL dates, e.g. n_steps=50")
    penalty = check_positive("penalty", penalty, fix="pass a positive penalty factor such as 10")
    temperature = check_temperature(temperature, fix="pass a temperature >= 0 (0 is the bang-bang limit), e.g. 1")
    if spot is None:
        spot = option.strike
    else:
        spot = check_positive("spot", spot, fix="pass a positive spot such as 40")
        if abs(math.log(spot / option.strike)) > 50.0:  # as solve_american: e^50 ≈ 5e21 strikes away
            raise ValueError(f"spot={spot!r} is e^{abs(math.log(spot / option.strike)):.0f} strikes from strike="
                             f"{option.strike!r}; pass a spot with |log(spot/strike)| <= 50")
    settings = OracleSettings() if settings is None else settings
    if not isinstance(settings, OracleSettings):
        raise ValueError(f"settings must be a pdecore.OracleSettings, got {settings!r}; "
                         "pass e.g. OracleSettings(nodes_per_std=24)")
    # the keywords override the settings (validated by the settings' own checks)
    settings = OracleSettings(nodes_per_std=settings.nodes_per_std if nodes_per_std is None else nodes_per_std,
                              n_std=settings.n_std if n_std is None else n_std)
    nodes_per_std, n_std = float(settings.nodes_per_std), float(settings.n_std)
    if budget:
        _check_budget(model, option, n_steps, spot, nodes_per_std, n_std)
    ratio = penalty * option.maturity / n_steps
    if ratio > 1.0 + 1e-12:
        raise ValueError(
            f"penalty*maturity/n_steps = {penalty:g}*{option.maturity:g}/{n_steps} = {ratio:.6g} > 1: "
            f"the survival factor 1 - penalty*pi*dt of the RL recursion would be negative; use n_steps >= "
            f"{math.ceil(penalty * option.maturity - 1e-12)}, or penalty <= {n_steps / option.maturity:.6g}, "
            "or a shorter maturity")
    return n_steps, penalty, temperature, spot, nodes_per_std, n_std


#: Optimistic throughput of the recursion (node × kernel-weight products per second on one core): the
#: work refusal fires only for grids that cannot finish within the budget.
_OPERATIONS_PER_SECOND = 2e9


def _check_budget(model, option, n_steps, spot, nodes_per_std, n_std) -> None:
    """Refuse, before any allocation, grids past the memory or work budget (:mod:`pdecore.budget`).

    The recursion holds ``V, U, W`` at every date on the interior (``3 (L+1) n``) and their three
    continuation values on the padded grid (``3 L (n + 2 n_pad)``); ``n`` grows like
    ``2 n_std · nodes_per_std · √L`` (the node spacing is a fraction of the one-step s.d.), so the memory
    grows like ``L^{3/2}``: ``n_steps=20000`` at the defaults needs about 23 GB. The work is one
    convolution of the grid with the ``2 n_pad + 1`` kernel weights per date and value function.
    """
    try:
        steps = float(n_steps)
        n_nodes, n_pad = _grid_size(model, option, spot, option.maturity / steps, nodes_per_std, n_std)
    except (ZeroDivisionError, OverflowError):  # more steps than a float holds, or Δt underflows to 0
        steps = n_nodes = n_pad = math.inf
    what = f"stopping_oracle with n_steps={n_steps}, nodes_per_std={nodes_per_std:g}, n_std={n_std:g}"
    fix = ("pass fewer n_steps or nodes_per_std (the recursion's memory grows like n_steps^1.5 × nodes_per_std;"
           " n_steps=50, nodes_per_std=12 need about 4 MB)")
    check_memory(what, 8.0 * 6.0 * (steps + 1.0) * n_nodes, fix=fix)
    check_work(what, 3.0 * steps * n_nodes * (2.0 * n_pad + 1.0), rate=_OPERATIONS_PER_SECOND, fix=fix)


def stopping_oracle(model: BlackScholes, option: AmericanOption, *, n_steps: int, penalty: float,
                    temperature: float, spot: float | None = None, nodes_per_std: float | None = None,
                    n_std: float | None = None, settings: OracleSettings | None = None) -> StoppingOracle:
    """Compute the discrete-time fixed point of the RL stopping scheme and its two execution prices.

    Parameters
    ----------
    model : BlackScholes
        Risk-neutral dynamics.
    option : AmericanOption
        Put or call, strike, maturity.
    n_steps : int
        ``L``, the number of RL dates (``Δt = T/L``).
    penalty : float
        ``κ > 0`` with ``κT/L ≤ 1``.
    temperature : float
        ``λ ≥ 0``; 0 is the bang-bang (penalized Bermudan-type) limit ``V_l = C_l + κΔt (g − C_l)^+``.
    spot : float, optional
        Spot at which ``value0``, ``p_stopping`` and ``p_control`` are quoted (default: the strike).
    nodes_per_std, n_std : float, optional
        Override the fields of ``settings`` (defaults 12 nodes per one-step standard deviation, a
        half-width of 7 standard deviations of ``log S_T``).
    settings : OracleSettings, optional
        The grid numerics (:class:`OracleSettings`).

    Returns
    -------
    StoppingOracle

    Raises
    ------
    ValueError
        Invalid parameters, ``penalty*maturity/n_steps > 1``, or a grid past the memory or work budget
        of :mod:`pdecore.budget` (estimated from the arguments before anything is allocated: the memory
        grows like ``n_steps^1.5 · nodes_per_std``, ``n_steps=20000`` needs about 22 GiB).
    ConvergenceError
        If the scalar equation's safeguarded Newton iteration fails at some node.

    Notes
    -----
    The recursion and the two prices are those of SPEC section 2 (paper eqs. 4.5 and 4.7); the
    quadrature is described in the module docstring. SPEC reference, put ``S0 = K = 40``,
    ``r = 0.06``, ``σ = 0.4``, ``T = 1``, ``L = 50``, ``(κ, λ) = (10, 1)``: ``V_0 ≈ 5.3219``,
    ``P_stopping ≈ 5.3072``, ``P_control ≈ 5.2673``.
    """
    n_steps, penalty, temperature, spot, nodes_per_std, n_std = _validate(
        model, option, n_steps, penalty, temperature, spot, nodes_per_std, n_std, settings)
    return _backward_recursion(model, option, n_steps, penalty, temperature, spot, nodes_per_std, n_std,
                               execution_prices=True)


def _payoff_piecewise(y: np.ndarray, option: AmericanOption) -> Piecewise:
    """The payoff on the padded grid ``y`` with its kink at the strike as an exact piece:
    ``g = A + sign 1{y ≤ log K} g_ext`` (put: ``A = 0``, sign +1; call: ``A = g_ext``, sign −1)."""
    spots = np.exp(y)
    payoff_ext = option.strike - spots if option.kind == "put" else spots - option.strike
    base = np.zeros_like(y) if option.kind == "put" else payoff_ext.copy()
    return Piecewise(base, [(math.log(option.strike), 1.0 if option.kind == "put" else -1.0, payoff_ext)])


def _backward_recursion(model, option, n_steps, penalty, temperature, spot, nodes_per_std, n_std, *,
                        execution_prices: bool) -> StoppingOracle:
    """The recursion of :func:`stopping_oracle` on validated inputs.

    With ``execution_prices=False`` only ``V`` is computed (``U``, ``W`` and their prices are NaN):
    :func:`bermudan_price` uses it, since at ``κΔt = 1``, ``λ = 0`` all three recursions coincide.
    """
    started = time.perf_counter()
    maturity, strike, kind = option.maturity, option.strike, option.kind
    dt = maturity / n_steps
    kdt = min(penalty * dt, 1.0)  # κΔt = 1 up to rounding is allowed (the Bermudan case)
    effective_penalty = kdt / dt
    threshold = temperature * dt * math.log(2.0) / (1.0 - 0.5 * kdt)

    # 1. grid
    grid = _build_grid(model, option, spot, dt, nodes_per_std, n_std)
    y = grid.y
    spots_padded = np.exp(y)
    log_strike = math.log(strike)
    # The smooth in-the-money branch of the payoff, used inside every exercise-type piece.
    payoff_ext = strike - spots_padded if kind == "put" else spots_padded - strike
    payoff = np.maximum(payoff_ext, 0.0)
    in_the_money_sign = 1.0 if kind == "put" else -1.0  # ITM = {y ≤ log K} for the put

    n_interior = y.size - 2 * grid.n_pad
    interior = grid.interior
    values = np.empty((n_steps + 1, n_interior))
    stopping_values = np.empty_like(values)
    control_values = np.empty_like(values)
    values[-1] = stopping_values[-1] = control_values[-1] = payoff[interior]
    continuation = np.empty((n_steps, y.size))
    stopping_continuation = np.empty_like(continuation)
    control_continuation = np.empty_like(continuation)
    boundary = np.full(n_steps + 1, np.nan)
    boundary[-1] = strike
    max_iterations = 0
    total_iterations = 0  # sum over dates of the per-date maximum (the diagnostics' counter)
    unresolved_steps = 0
    # Extent of the bump ρ in units of λ/κ (see _bump_extent).
    bump_extent = _bump_extent(effective_penalty, temperature, dt) if temperature > 0.0 else None

    v_next, u_next, w_next = (_payoff_piecewise(y, option) for _ in range(3))
    with np.errstate(under="ignore"):
        for l in range(n_steps - 1, -1, -1):
            # 2. continuation values of the three recursions (smooth, extended onto the pads)
            c = pad_linear(grid, expectation(grid, v_next))
            if execution_prices:
                cu = pad_linear(grid, expectation(grid, u_next))
                cw = pad_linear(grid, expectation(grid, w_next))
            else:
                cu = cw = np.full(y.size, np.nan)
            continuation[l], stopping_continuation[l], control_continuation[l] = c, cu, cw

            # 3. exercise set {V_l ≤ g} = {g_ext − C_l ≥ d*}
            right_exercise, crossings = _crossings(grid, payoff_ext - c - threshold)
            if kind == "put":
                stops = [root for root, sign, _ in crossings if sign > 0]
                boundary[l] = math.exp(max(stops)) if stops else np.nan
            else:
                starts = [root for root, sign, _ in crossings if sign < 0]
                boundary[l] = math.exp(min(starts)) if starts else np.nan

            # 4. V_l = C_l + v(g − C_l)
            if temperature > 0.0:
                v_itm, _, it_itm = _solve_scalar(payoff_ext - c, effective_penalty, temperature, dt, l)
                v_otm, _, it_otm = _solve_scalar(-c, effective_penalty, temperature, dt, l)
                max_iterations = max(max_iterations, it_itm, it_otm)
                total_iterations += max(it_itm, it_otm)
                value_itm, value_otm = c + v_itm, c + v_otm
                nodal_value = np.where(in_the_money_sign * (y - log_strike) <= 0.0, value_itm, value_otm)
                # Is the turn of v(d) at d = 0 (width λ/κ in d) resolved by the grid?
                right_zero, zeros = _crossings(grid, payoff_ext - c)
                widths = [temperature / effective_penalty / max(abs(slope), 1e-300) for _, _, slope in zeros]
                if bump_extent is not None and widths and min(widths) < grid.h:
                    # Unresolved: v = κΔt d^+ (exact kink pieces) + ρ(d) (narrow bumps, each on a
                    # local sub-grid four times finer than its width, with the kink at b on a node).
                    unresolved_steps += 1
                    jump = kdt * (payoff_ext - c)
                    base = (value_otm if kind == "put" else c) + jump * right_zero
                    bumps = []
                    for (root, _, slope), width in zip(zeros, widths):
                        nodes, weights_sub = _bump_nodes(root, slope, width, bump_extent, grid)
                        c_sub = interpolate(grid, c, nodes)
                        spots_sub = np.exp(nodes)
                        d_sub = (strike - spots_sub if kind == "put" else spots_sub - strike) - c_sub
                        v_sub, _, _ = _solve_scalar(d_sub, effective_penalty, temperature, dt, l)
                        in_the_money = in_the_money_sign * (nodes - log_strike) <= 0.0
                        rho = (v_sub - kdt * np.maximum(d_sub, 0.0)) * in_the_money
                        bumps.append((nodes, weights_sub * rho))
                    v_next = Piecewise(base, [(log_strike, in_the_money_sign, c - value_otm)]
                                        + [(root, sign, jump) for root, sign, _ in zeros], bumps)
                else:
                    # Smooth branches glued at the strike, where g_ext = 0 makes them equal.
                    base = value_otm if kind == "put" else value_itm
                    v_next = Piecewise(base, [(log_strike, in_the_money_sign, value_itm - value_otm)])
            else:
                jump = kdt * (payoff_ext - c)
                v_next = Piecewise(c + jump * right_exercise,
                                    [(root, sign, jump) for root, sign, _ in crossings])
                nodal_value = None

            # 5. P_stopping (U) and P_control (W) under the rule u_l = 1{V_l ≤ g}
            values[l] = (v_next.nodal(y) if nodal_value is None else nodal_value)[interior]
            if not execution_prices:
                stopping_values[l] = control_values[l] = np.nan
                continue
            stop_jump = payoff_ext - cu
            u_next = Piecewise(cu + stop_jump * right_exercise,
                                [(root, sign, stop_jump) for root, sign, _ in crossings])
            control_jump = kdt * (payoff_ext - cw)
            w_next = Piecewise(cw + control_jump * right_exercise,
                                [(root, sign, control_jump) for root, sign, _ in crossings])

            stopping_values[l] = u_next.nodal(y)[interior]
            control_values[l] = w_next.nodal(y)[interior]

    stats = {"wall_time_s": 0.0, "n_nodes": int(n_interior), "n_pad": int(grid.n_pad), "grid_step": grid.h,
             "max_newton_iterations": int(max_iterations), "exercise_threshold": threshold,
             "bump_steps": int(unresolved_steps),
             "exercise_dates": int(np.count_nonzero(np.isfinite(boundary[:-1])))}
    oracle = StoppingOracle(
        model=model, option=option, n_steps=n_steps, penalty=penalty, temperature=temperature, spot=spot,
        times=np.linspace(0.0, maturity, n_steps + 1), spots=spots_padded[interior], values=values,
        stopping_values=stopping_values, control_values=control_values, boundary=boundary,
        value0=0.0, p_stopping=0.0, p_control=0.0, stats=stats, _grid=grid, _continuation=continuation,
        _stopping_continuation=stopping_continuation, _control_continuation=control_continuation)
    # The quoted prices use the smooth continuation values at the spot, never a kinked interpolant.
    object.__setattr__(oracle, "value0", float(oracle.value(0, spot)))
    if execution_prices:
        object.__setattr__(oracle, "p_stopping", float(oracle.stopping_value(0, spot)))
        object.__setattr__(oracle, "p_control", float(oracle.control_value(0, spot)))
    else:
        object.__setattr__(oracle, "p_stopping", math.nan)
        object.__setattr__(oracle, "p_control", math.nan)
    stats["wall_time_s"] = time.perf_counter() - started
    object.__setattr__(oracle, "diagnostics", SolverDiagnostics(
        status=STATUS_OK, message=STATUS_MESSAGES[STATUS_OK], total_iterations=total_iterations,
        max_iterations=max_iterations, n_steps=n_steps, n_time=n_steps, n_space=n_interior,
        wall_seconds=stats["wall_time_s"]))
    return oracle


def rule_value(model: BlackScholes, option: AmericanOption, *, n_steps: int, exercise, spot: float | None = None,
               nodes_per_std: float | None = None, n_std: float | None = None,
               settings: OracleSettings | None = None) -> float:
    """Value at ``spot`` of a given Markov exercise rule on the dates ``t_j = jT/N``, ``j = 0..N``.

    The holder exercises at the first date ``j < N`` where ``exercise(j, S_j)`` holds, else receives
    ``g(S_T)`` at ``T``. Backward induction on the oracle's grid and quadrature,
    ``U_N = g``, ``U_j = g`` where the rule exercises and ``e^{−rΔt} E[U_{j+1}]`` elsewhere, so it is exact
    up to the grid: the rule is read at the nodes (its exercise set resolved to ``h/2``, ``h`` the node
    spacing; the jump of ``U`` across a boundary is ``g − C``, small for any sensible rule). It scores a
    rule of the same form as a learned one without Monte Carlo noise; e.g. the decision-date oracle's
    premium interpolated in time on a finer grid (``validation.high_dim_stopping.interpolated_oracle_value``).
    Checked against the oracle's own ``p_stopping`` and the European price (never exercise).

    Parameters
    ----------
    model, option, spot, nodes_per_std, n_std, settings
        As in :func:`stopping_oracle`.
    n_steps : int
        ``N``, the number of steps of the rule's date grid.
    exercise : callable
        ``exercise(j, spots) -> bool array`` (the shape of ``spots``) for ``0 ≤ j < N``.

    Returns
    -------
    float
    """
    n_steps = check_int("n_steps", n_steps, minimum=1, fix="pass the number of steps of the rule's dates, e.g. 1000")
    if not callable(exercise):
        raise ValueError(f"exercise must be a callable exercise(j, spots) -> bool array, got {exercise!r}; "
                         "pass e.g. lambda j, s: s <= 30.0")
    n_steps, _, _, spot, nodes_per_std, n_std = _validate(
        model, option, n_steps, n_steps / option.maturity, 0.0, spot, nodes_per_std, n_std, settings, budget=False)
    # one value array on the grid (not the oracle's six per date): only the work can be out of reach
    n_nodes, n_pad = _grid_size(model, option, spot, option.maturity / n_steps, nodes_per_std, n_std)
    check_work(f"rule_value with n_steps={n_steps}, nodes_per_std={nodes_per_std:g}, n_std={n_std:g}",
               float(n_steps) * n_nodes * (2.0 * n_pad + 1.0), rate=_OPERATIONS_PER_SECOND,
               fix="pass fewer n_steps or nodes_per_std")
    grid = _build_grid(model, option, spot, option.maturity / n_steps, nodes_per_std, n_std)
    spots = np.exp(grid.y_interior)
    payoff = option.payoff(spots)
    next_values = _payoff_piecewise(grid.y, option)  # U_N = g, its kink at the strike an exact piece
    for j in range(n_steps - 1, -1, -1):
        continuation = expectation(grid, next_values)
        decision = np.asarray(exercise(j, spots), dtype=bool)
        if decision.shape != spots.shape:
            raise ValueError(f"exercise({j}, spots) returned shape {decision.shape} for spots of shape "
                             f"{spots.shape}; return one boolean per spot")
        values = np.where(decision, payoff, continuation)
        next_values = Piecewise(pad_linear(grid, values))
    return float(values[np.argmin(np.abs(grid.y_interior - math.log(spot)))])


def bermudan_price(model: BlackScholes, option: AmericanOption, *, n_steps: int, spot: float | None = None,
                   nodes_per_std: float | None = None, n_std: float | None = None,
                   settings: OracleSettings | None = None) -> float:
    """Bermudan price with exercise dates ``t_l = lT/L``, ``l = 0..L``, by ``V_l = max(g, C_l)``.

    This is the oracle's recursion at ``κΔt = 1``, ``λ = 0`` (then ``C + κΔt(g − C)^+ = max(g, C)``), so it
    checks the quadrature machinery against an independent number: SPEC's 5.31196 for the put
    ``S0 = K = 40``, ``r = 0.06``, ``σ = 0.4``, ``T = 1``, ``L = 50``.

    Parameters
    ----------
    model, option, n_steps, spot, nodes_per_std, n_std, settings
        As in :func:`stopping_oracle`.

    Returns
    -------
    float
        The Bermudan price at ``spot`` (default: the strike).
    """
    n_steps = check_int("n_steps", n_steps, minimum=1, fix="pass the number of exercise dates, e.g. 50")
    args = _validate(model, option, n_steps, n_steps / getattr(option, "maturity", 1.0), 0.0, spot,
                     nodes_per_std, n_std, settings)
    return _backward_recursion(model, option, *args, execution_prices=False).value0
