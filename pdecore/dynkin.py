r"""Double-obstacle (Dynkin game) penalty solver on a 1-D grid.

Problem
-------
Two players stop a diffusion ``X``: the *lower* player receives ``ℓ(X)`` when she stops and wants the
value high, the *upper* player pays ``u(X)`` and wants it low, ``ℓ ≤ u``. The value
``w(t, x)`` solves the double-obstacle variational inequality (SPEC section 4, written for a general
generator)

.. math::

    \max\{\min\{-w_t - 𝓖w,\; w - ℓ\},\; w - u\} = 0, \qquad w(T, x) = g(x),
    \qquad 𝓖 = a(x)\,∂_{xx} + b(x)\,∂_x + c(x),

its penalized approximation with a finite factor κ (stopping paper, appendix D, eq. D.3)

.. math::

    w_t + 𝓖w + κ(ℓ - w)^+ - κ(w - u)^+ = 0,

and the exploratory (entropy-regularized) version with temperature λ, where each player randomizes
her stopping decision (appendix D, eqs. D.8–D.11)

.. math::

    w_t + 𝓖w + λ\log(1 + e^{κ(ℓ - w)/λ}) - λ\log(1 + e^{κ(w - u)/λ}) = 0,

with stopping probabilities ``ν* = sigmoid(κ(ℓ − w)/λ)`` (lower player) and
``μ* = sigmoid(κ(w − u)/λ)`` (upper player).

Two-sided sandwich (SPEC section 1, Theorem 2.5, carried over to two obstacles): the softplus
``λ sp(z/λ)`` differs from ``z^+`` by a number in ``[0, λ log 2]``, so the exploratory Hamiltonian
differs from the penalized one by at most ``λ log 2`` in either direction; as both Hamiltonians are
non-increasing in ``w`` and the generator has no reaction term here (``c = 0``), the comparison
principle gives

.. math::

    |w^{λ}(t, x) - w^{κ}(t, x)| \le λ (T - t) \log 2

(for ``c ≤ 0`` the same bound holds a fortiori). Likewise ``ℓ − C_ℓ/κ ≤ w^κ ≤ u + C_u/κ`` with
``C_ℓ = max (−𝓖ℓ)^+`` and ``C_u = max (𝓖u)^+`` (``ℓ − C_ℓ/κ`` is a sub-solution), and
``|w^κ − w^{VI}| = O(1/κ)``.

Discretization
--------------
Time-to-go ``τ = T − t``; the θ-scheme with Rannacher start-up on graded levels
(:class:`pdecore.schemes.ThetaScheme`), the M-matrix generator of
:func:`pdecore._kernels.operator.build_generator` and the penalty Newton march of
:func:`pdecore._kernels.penalty.penalty_march` (Forsyth & Vetzal 2002, SIAM J. Sci. Comput. 23(6)):
the variational inequality uses ``Large = 1/tol`` fully implicitly, the finite penalty and the
softplus are θ-weighted like 𝓖. An independent check, Howard's policy iteration on the exact
discrete complementarity problem, lives in :mod:`pdecore._reference.dynkin`.

Contact regions and boundaries
------------------------------
A node is in the lower (upper) contact region when ``w ≤ ℓ`` (``w ≥ u``), up to a round-off
tolerance for the variational inequality (:func:`contact_tolerance`): the penalty set of the
variational inequality and of the finite penalty, and the set where the randomized player stops with
probability at least ½ in the exploratory problem (``ν* ≥ ½``). Nodes where the obstacles touch
(``ℓ = u``) belong to both. For a region that sits on the *left* of the continuation region the
boundary is the right end of the maximal contact run that starts at the first interior node
(``−inf`` if that node is not in contact, ``+inf`` if the run covers every interior node); mirror
images for a region on the right. Sub-grid location: for the variational inequality the gap
``w − ℓ`` grows quadratically away from the free boundary (smooth fit), so ``sqrt(gap)`` is linearly
extrapolated from the first two free nodes; for the penalized and exploratory problems the signed gap
crosses zero transversally and is linearly interpolated.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np

from pdecore.budget import check_memory, check_work
from pdecore.checks import check_choice, check_finite_array, check_int, check_positive
from pdecore.diagnostics import SolverDiagnostics, freeze_arrays
from pdecore.exceptions import ConvergenceError
from pdecore.params import check_temperature
from pdecore.schemes import ThetaScheme

__all__ = ["DynkinSettings", "DynkinResult", "solve_dynkin", "contact_boundary", "contact_tolerance"]

_BOUNDARY_CODES = {"degenerate": 0, "dirichlet": 1}
# Obstacle value that switches the obstacle terms off at a Dirichlet node in every mode
# (softplus(κ·(−1e100)/λ) = 0 without overflow for any κ ≤ 1e150·λ).
_INACTIVE = 1e100


@dataclass(frozen=True, slots=True)
class DynkinSettings:
    """Numerical settings of :func:`solve_dynkin` (kept apart from the problem, like
    :class:`pdecore.AmericanSettings` and QuantLib's ``FdmSchemeDesc``).

    The spatial grid is part of the problem (the caller places the nodes), so only the time
    discretization and the Newton iteration are settings. The penalty factor κ and the temperature λ
    are *not* settings: they choose which problem is solved (variational inequality, penalized PDE or
    exploratory HJB), so they stay keywords of the facade, as in :func:`pdecore.solve_american`.

    Parameters
    ----------
    n_time : int
        Number of graded time levels (≥ 1), default 100.
    scheme : ThetaScheme
        Default: Crank–Nicolson with 2 Rannacher steps on a grid graded with exponent 2. The finite
        penalty and the softplus are θ-weighted like the generator, so for a large finite κ
        (``κΔτ ≫ 2``) Crank–Nicolson is not monotone; ``ThetaScheme.implicit_euler(grading=2)`` keeps
        the discrete comparison principle.
    tol : float
        Newton tolerance on the relative change (> 0); ``Large = 1/tol`` in the variational inequality
        (Forsyth & Vetzal 2002).
    max_iter : int
        Newton iterations allowed per time sub-step (≥ 1) before :class:`ConvergenceError`.
    """

    n_time: int = 100
    scheme: ThetaScheme = ThetaScheme()
    tol: float = 1e-8
    max_iter: int = 100

    def __post_init__(self) -> None:
        # stored converted (a TOML 200.0 becomes 200): the kernels take int64
        object.__setattr__(self, "n_time", check_int("n_time", self.n_time, minimum=1,
                                                     fix="use at least 1 time level (default 100)"))
        if not isinstance(self.scheme, ThetaScheme):
            raise ValueError(f"scheme must be a ThetaScheme, got {self.scheme!r}; "
                             "pass e.g. ThetaScheme.crank_nicolson()")
        # a relative change of 1 or more accepts any iterate (and Large = 1/tol would stop penalizing)
        if check_positive("tol", self.tol, fix="pass e.g. 1e-8") >= 1.0:
            raise ValueError(f"tol must be < 1 (a relative change of 1 or more accepts any iterate), got "
                             f"{self.tol!r}; pass a relative tolerance such as 1e-8")
        object.__setattr__(self, "max_iter", check_int("max_iter", self.max_iter, minimum=1, maximum=10**6,
                                                       fix="allow e.g. 100 iterations (at most 1e6)"))


@dataclass(frozen=True)
class DynkinResult:
    """Solution of a double-obstacle problem (see the module docstring).

    Attributes
    ----------
    grid : float64[n]
        Spatial nodes.
    times : float64[L]
        Calendar times ``t``, ascending from 0 to the maturity ``T``.
    values : float64[L, n]
        ``w(t_j, x_i)``.
    lower_obstacle, upper_obstacle : float64[n]
        ``ℓ`` and ``u`` on the grid.
    lower_region, upper_region : bool[L, n]
        Contact sets ``w ≤ ℓ`` and ``w ≥ u`` (exploratory: stopping probability ≥ ½); computed on first
        access.
    lower_boundary, upper_boundary : float64[L]
        Edges of the two contact regions over time, located on the sides given by
        ``lower_side``/``upper_side`` (±inf where a region is absent or covers the grid); computed on
        first access.
    lower_side, upper_side : {"left", "right"}
        Where each region lies relative to the continuation region.
    mode : {"variational inequality", "penalty", "exploratory"}
    penalty : float or None
        κ (``None`` for the variational inequality, which uses ``Large = 1/tol``).
    temperature : float
        λ (0 unless exploratory).
    newton_iterations : int64[m]
        Linear solves of each time sub-step.
    n_upwind : int
        Interior rows where the drift had to be upwinded to keep the M-matrix property.
    diagnostics : SolverDiagnostics
        Status, Newton counters, grid used and wall time (the shape shared by every pdecore result).
    """

    grid: np.ndarray
    times: np.ndarray
    values: np.ndarray
    lower_obstacle: np.ndarray
    upper_obstacle: np.ndarray
    lower_side: str
    upper_side: str
    mode: str
    penalty: float | None
    temperature: float
    newton_iterations: np.ndarray = field(repr=False)
    n_upwind: int = 0
    tol: float = 1e-8
    diagnostics: SolverDiagnostics | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        freeze_arrays(self)

    # --- regions and boundaries: derived on first use (cached), so that callers who post-process the
    # values themselves (the Merton facade) do not pay for them ---
    @functools.cached_property
    def _gaps(self):
        return self.values - self.lower_obstacle[None, :], self.upper_obstacle[None, :] - self.values

    @functools.cached_property
    def _tolerances(self):
        hard = self.penalty is None
        return contact_tolerance(self.lower_obstacle, hard=hard), contact_tolerance(self.upper_obstacle, hard=hard)

    @functools.cached_property
    def lower_region(self) -> np.ndarray:
        """bool[L, n]: ``w ≤ ℓ`` (up to :func:`contact_tolerance`)."""
        return _frozen(self._gaps[0] <= self._tolerances[0][None, :])

    @functools.cached_property
    def upper_region(self) -> np.ndarray:
        """bool[L, n]: ``w ≥ u`` (up to :func:`contact_tolerance`)."""
        return _frozen(self._gaps[1] <= self._tolerances[1][None, :])

    @functools.cached_property
    def lower_boundary(self) -> np.ndarray:
        """float64[L]: edge of the lower contact region on ``lower_side`` (±inf convention)."""
        return _frozen(contact_boundary(self.grid, self._gaps[0], side=self.lower_side, hard=self.penalty is None,
                                        wildcard=self.lower_obstacle == self.upper_obstacle,
                                        contact_tol=self._tolerances[0]))

    @functools.cached_property
    def upper_boundary(self) -> np.ndarray:
        """float64[L]: edge of the upper contact region on ``upper_side`` (±inf convention)."""
        return _frozen(contact_boundary(self.grid, self._gaps[1], side=self.upper_side, hard=self.penalty is None,
                                        wildcard=self.lower_obstacle == self.upper_obstacle,
                                        contact_tol=self._tolerances[1]))

    @property
    def maturity(self) -> float:
        """The horizon ``T``."""
        return float(self.times[-1])

    @property
    def total_newton_iterations(self) -> int:
        """Linear solves over the whole march (scipy's ``nlu`` counter)."""
        return int(np.sum(self.newton_iterations))

    def value(self, t, x):
        """``w(t, x)`` by linear interpolation in ``x`` and in ``t`` between stored levels.

        Parameters
        ----------
        t : float
            Calendar time in ``[0, T]``.
        x : float or array_like
            Points inside the grid.
        """
        return _interpolate_value(self.grid, self.times, self.values, t, x)

    def lower_probability(self, level: int = 0):
        """Exploratory stopping probability of the lower player ``ν* = sigmoid(κ(ℓ − w)/λ)`` at a
        stored level (``0`` is ``t = 0``); the indicator of ``w ≤ ℓ`` when ``λ = 0``."""
        return _stop_probability(self.lower_obstacle - self.values[level], self.penalty, self.temperature)

    def upper_probability(self, level: int = 0):
        """Exploratory stopping probability of the upper player ``μ* = sigmoid(κ(w − u)/λ)``."""
        return _stop_probability(self.values[level] - self.upper_obstacle, self.penalty, self.temperature)

    def plot(self, ax=None):
        """Plot both contact boundaries over time on ``ax`` (created if ``None``); returns the Axes.

        Times where a region is absent (boundary ±inf) are left blank and marked in the legend.
        """
        return _plot_boundaries(ax, self.times, {"lower contact": (self.lower_boundary, self.lower_side),
                                                 "upper contact": (self.upper_boundary, self.upper_side)},
                                xlabel="t", ylabel="x", title=f"Dynkin contact boundaries ({self.mode})")


def _frozen(array):
    """Read-only view for the lazily derived arrays (the fields are frozen by :func:`freeze_arrays`)."""
    array.setflags(write=False)
    return array


def _stop_probability(gap, penalty, temperature):
    gap = np.asarray(gap, dtype=float)
    if temperature > 0.0:
        z = penalty * gap / temperature
        e = np.exp(-np.abs(z))  # only non-positive exponents: no overflow
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return (gap >= 0).astype(float)


def _interpolate_value(grid, times, values, t, x):
    t = float(t)
    if not (times[0] - 1e-12 <= t <= times[-1] + 1e-12):
        raise ValueError(f"t must lie in [{times[0]}, {times[-1]}], got {t!r}; pass a time inside the horizon")
    x_arr = np.asarray(x, dtype=float)
    if np.any(~np.isfinite(x_arr)) or np.any(x_arr < grid[0] - 1e-12) or np.any(x_arr > grid[-1] + 1e-12):
        raise ValueError(f"x must lie in the grid [{grid[0]}, {grid[-1]}], got {x!r}; "
                         "pass points inside the computational domain")
    j = int(np.clip(np.searchsorted(times, t) - 1, 0, len(times) - 2))
    span = times[j + 1] - times[j]
    weight = 0.0 if span <= 0 else (t - times[j]) / span
    weight = min(max(weight, 0.0), 1.0)
    row = (1.0 - weight) * values[j] + weight * values[j + 1]
    out = np.interp(x_arr, grid, row)
    return float(out) if np.ndim(out) == 0 else out


def contact_boundary(grid, gap, *, side: str, hard: bool, wildcard=None, contact_tol=0.0):
    """Edge of a contact region at every stored time level (vectorized over levels).

    Parameters
    ----------
    grid : float64[n]
        Nodes.
    gap : float64[L, n]
        Signed gap to the obstacle: ``≤ 0`` in contact, ``> 0`` in the continuation region
        (``w − ℓ`` for a lower obstacle, ``u − w`` for an upper one).
    side : {"left", "right"}
        The region is ``{x ≤ boundary}`` ("left") or ``{x ≥ boundary}`` ("right").
    hard : bool
        Variational inequality (quadratic gap at the boundary: square-root extrapolation) or
        penalized/exploratory (transversal crossing: linear interpolation).
    wildcard : bool[n], optional
        Nodes that count as contact whatever the gap (where the obstacles touch).
    contact_tol : float or float64[n]
        A node is in contact when ``gap ≤ contact_tol`` (see :func:`contact_tolerance`).

    Returns
    -------
    float64[L]
        The boundary; ``-inf``/``+inf`` when the region is absent (``-inf`` for a left region,
        ``+inf`` for a right one) or covers every interior node (the opposite infinity).
    """
    check_choice("side", side, ("left", "right"))
    grid = np.asarray(grid, dtype=float)
    gap = np.atleast_2d(np.asarray(gap, dtype=float))
    if side == "right":  # mirror: x -> -x turns a right region into a left one
        tol_flipped = np.broadcast_to(np.asarray(contact_tol, dtype=float), grid.shape)[::-1]
        flipped = contact_boundary(-grid[::-1], gap[:, ::-1], side="left", hard=hard,
                                   wildcard=None if wildcard is None else np.asarray(wildcard)[::-1],
                                   contact_tol=tol_flipped)
        return -flipped
    n_levels, n = gap.shape
    contact_tol = np.broadcast_to(np.asarray(contact_tol, dtype=float), (n,))
    contact = gap <= contact_tol[None, :]
    if wildcard is not None:
        contact = contact | np.asarray(wildcard, dtype=bool)[None, :]
    interior = contact[:, 1:n - 1]
    # first interior node (offset 1) that is *not* in contact; the run is [1, stop-1]
    not_contact = ~interior
    has_stop = not_contact.any(axis=1)
    stop = np.argmax(not_contact, axis=1) + 1
    out = np.empty(n_levels)
    absent = has_stop & (stop == 1)
    full = ~has_stop
    out[absent] = -np.inf
    out[full] = np.inf
    rows = np.nonzero(has_stop & (stop > 1))[0]
    if rows.size:
        i = stop[rows] - 1  # last contact node
        x0, x1 = grid[i], grid[i + 1]
        g0 = np.minimum(gap[rows, i], 0.0)  # a contact node's gap counts as 0 (or its negative value)
        g1 = gap[rows, i + 1]  # > 0 unless a wildcard (then 0)
        if hard:
            # smooth fit: gap ≈ c (x − x*)² outside contact, so sqrt(gap) is linear in x
            i2 = np.minimum(i + 2, n - 1)
            x2 = grid[i2]
            s1 = np.sqrt(np.maximum(g1, 0.0))
            s2 = np.sqrt(np.maximum(gap[rows, i2], 0.0))
            ok = (s2 > s1) & (i2 > i + 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                est = np.where(ok, x1 - s1 * (x2 - x1) / np.where(ok, s2 - s1, 1.0), 0.5 * (x0 + x1))
            # the discrete contact set is itself only O(h)-accurate: the estimate may fall one cell further in
            x0 = grid[np.maximum(i - 1, 0)]
        else:
            denom = g1 - g0
            with np.errstate(divide="ignore", invalid="ignore"):
                frac = np.where(denom > 0, -g0 / np.where(denom > 0, denom, 1.0), 0.5)
            est = x0 + frac * (x1 - x0)
        out[rows] = np.clip(est, x0, x1)
    return out


def contact_tolerance(obstacle, *, hard: bool):
    """Gap below which a node counts as touching ``obstacle``.

    Penalized and exploratory problems: 0 (the sign of the gap is the region, ``π* ≥ ½``). Variational
    inequality: ``1e-10·(1 + |obstacle|)``, so that nodes which an exact complementarity solver puts on
    the obstacle up to round-off (gap ``+1e-16``) and the penalty puts at ``−O(1/Large)`` are classified
    alike; free nodes next to a free boundary have gaps ``≈ c h² ≫ 1e-10`` on any practical grid.
    """
    obstacle = np.asarray(obstacle, dtype=float)
    return 1e-10 * (1.0 + np.abs(obstacle)) if hard else np.zeros_like(obstacle)


def _plot_boundaries(ax, times, curves, *, xlabel, ylabel, title, reference=None, reference_label=None):
    """Shared plotting of contact boundaries with the ±inf convention (used by Merton too)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    notes = []
    for label, (boundary, side) in curves.items():
        b = np.asarray(boundary, dtype=float)
        finite = np.isfinite(b)
        line, = ax.plot(np.where(finite, times, np.nan), np.where(finite, b, np.nan), label=label)
        for sign, word in ((-1, "-inf"), (1, "+inf")):
            mask = np.isinf(b) & (np.sign(b) == sign)
            if mask.any():
                t_inf = times[mask]
                meaning = "region absent" if (side == "left") == (sign < 0) else "region covers the grid"
                notes.append(f"{label}: {word} ({meaning}) at {mask.sum()} of {len(b)} times, "
                             f"t in [{t_inf.min():.3g}, {t_inf.max():.3g}]")
                # a marker strip at the top/bottom edge of the axes shows where the boundary is infinite
                ax.plot(t_inf, np.full(t_inf.shape, 1.0 if sign > 0 else 0.0), linestyle="none", marker="|",
                        color=line.get_color(), transform=ax.get_xaxis_transform(), clip_on=False,
                        label=f"{label} = {word}")
    if reference is not None:
        ax.axhline(reference, color="k", linestyle=":", linewidth=1, label=reference_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="best", fontsize="small")
    if notes:
        ax.text(0.01, 0.01, "\n".join(notes), transform=ax.transAxes, fontsize="x-small", va="bottom")
    return ax


#: Optimistic node updates per second of the penalty Newton march (work refusal only).
_NODE_STEPS_PER_SECOND = 1e8
#: Largest Δτ·|G| an implicit step resolves in float64 (1/ε ≈ 4.5e15, with a margin).
_MAX_STEP_RATE = 1e15


def _show(count) -> str:
    """A count for a message: exact up to 1e15, else ``1e+300``-style."""
    return f"{int(count)}" if abs(float(count)) < 1e15 else f"{float(count):.3g}"


def solve_dynkin(grid, *, diffusion, drift, lower_obstacle, upper_obstacle, terminal, maturity,
                 reaction=None, penalty: float | None = None, temperature: float = 0.0,
                 left_boundary: str = "degenerate", right_boundary: str = "degenerate", lower_side: str = "left",
                 upper_side: str = "right", settings: DynkinSettings | None = None) -> DynkinResult:
    """Solve the double-obstacle problem ``w_t + 𝓖w + κ(ℓ − w)^+ − κ(w − u)^+ = 0`` (or its variational
    inequality / exploratory version) backwards from ``w(T) = terminal``.

    Parameters
    ----------
    grid : array_like, float[n]
        Strictly increasing nodes, ``n ≥ 5``.
    diffusion, drift : array_like, float[n]
        ``a(x) ≥ 0`` (the coefficient of ``w_xx``, i.e. half the squared volatility of ``X``) and
        ``b(x)`` of the generator ``𝓖 = a ∂_xx + b ∂_x + c``.
    lower_obstacle, upper_obstacle : array_like, float[n]
        ``ℓ ≤ u`` (time-independent).
    terminal : array_like, float[n]
        ``w(T, x)``.
    maturity : float
        ``T > 0``.
    reaction : array_like, float[n], optional
        ``c(x) ≤ 0``-type reaction term (default 0).
    penalty : float, optional
        κ. ``None`` solves the variational inequality (penalty Newton with ``Large = 1/settings.tol``).
    temperature : float
        λ ≥ 0; ``λ > 0`` solves the exploratory (softplus) problem and needs a finite ``penalty``.
    left_boundary, right_boundary : {"degenerate", "dirichlet"}
        End rows: the PDE without diffusion and with the drift taken into the domain (exact where the
        diffusion vanishes), or a Dirichlet row holding ``terminal`` at that node for all times
        (obstacle terms switched off there).
    lower_side, upper_side : {"left", "right"}
        Where each contact region lies relative to the continuation region (for the boundaries).
    settings : DynkinSettings, optional
        Time levels, time scheme and Newton tolerance/cap (default ``DynkinSettings()``: 100 levels,
        Crank–Nicolson with Rannacher start-up, ``tol = 1e-8``, 100 iterations).

    Returns
    -------
    DynkinResult

    Raises
    ------
    ValueError
        On malformed input (lengths, NaN, booleans, ``ℓ > u``, ``a < 0``, ``λ > 0`` without κ, ...), on
        coefficients whose rates ``Δτ·|G|`` pass 1e15 (the implicit step would lose the identity in
        rounding), or on a grid × levels past the memory or work budget of :mod:`pdecore.budget`.
    ConvergenceError
        If a Newton iteration does not converge within ``settings.max_iter``.

    References
    ----------
    Forsyth & Vetzal (2002), "Quadratic convergence for valuing American options using a penalty
    method", SIAM J. Sci. Comput. 23(6). Dong, Dai et al., "Learning to optimally stop diffusions",
    appendix D, eqs. (D.1)–(D.11) (Dynkin game, penalized and exploratory forms).
    """
    from pdecore._kernels.operator import build_generator
    from pdecore._kernels.penalty import MODE_FINITE, MODE_HARD, MODE_SOFTPLUS, penalty_march
    from pdecore._numba import STATUS_MESSAGES, STATUS_OK

    started = time.perf_counter()
    # === 0. validation === #
    x = check_finite_array("grid", grid, ndim=1, fix="pass a 1-D array of finite nodes").copy()
    n = x.size
    if n < 5:
        raise ValueError(f"grid must have at least 5 nodes, got {n}; pass a finer grid")
    if not np.all(np.diff(x) > 0):
        raise ValueError("grid must be strictly increasing; sort the nodes and remove duplicates")

    def _array(name, values):
        if isinstance(values, (bool, np.bool_)) or np.asarray(values).dtype == bool:
            raise ValueError(f"{name} must be numbers, got {values!r}; pass {n} finite numbers, one per grid node")
        arr = check_finite_array(name, values, fix=f"pass {n} finite numbers, one per grid node")
        arr = np.broadcast_to(arr, (n,)).astype(float) if arr.ndim == 0 else arr
        if arr.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) like the grid, got {arr.shape}; "
                             "pass one value per grid node")
        return np.array(arr, dtype=float)  # a private copy: the result freezes it

    a = _array("diffusion", diffusion)
    b = _array("drift", drift)
    c = _array("reaction", 0.0 if reaction is None else reaction)
    lo_obs = _array("lower_obstacle", lower_obstacle)
    up_obs = _array("upper_obstacle", upper_obstacle)
    term = _array("terminal", terminal)
    if np.any(a < 0):
        raise ValueError(f"diffusion must be >= 0 everywhere, got min {a.min()!r}; pass half the squared "
                         "volatility of the state")
    if np.any(lo_obs > up_obs):
        i = int(np.argmax(lo_obs - up_obs))
        raise ValueError(f"lower_obstacle must not exceed upper_obstacle, got {lo_obs[i]!r} > {up_obs[i]!r} at "
                         f"x={x[i]!r}; swap the obstacles or fix their formulas")
    # the game's value lies between the obstacles at every time, T included: a terminal value outside
    # them is not a Dynkin game (the first step would jump to the obstacle), so it is refused, not clipped
    slack = 1e-12 * (1.0 + np.maximum(np.abs(lo_obs), np.abs(up_obs)))
    outside = (term < lo_obs - slack) | (term > up_obs + slack)
    if np.any(outside):
        i = int(np.argmax(outside))
        raise ValueError(f"terminal must lie between the obstacles, got {term[i]!r} outside [{lo_obs[i]!r}, "
                         f"{up_obs[i]!r}] at x={x[i]!r}; pass a terminal value with lower_obstacle <= terminal <= "
                         "upper_obstacle")
    maturity = check_positive("maturity", maturity, fix="pass a positive horizon")
    settings = DynkinSettings() if settings is None else settings
    if not isinstance(settings, DynkinSettings):
        raise ValueError(f"settings must be a pdecore.DynkinSettings, got {settings!r}; "
                         "pass e.g. DynkinSettings(n_time=200)")
    n_time, scheme, tol, max_iter = settings.n_time, settings.scheme, settings.tol, settings.max_iter
    temperature = check_temperature(temperature, fix="pass 0 (no exploration) or λ > 0")
    if penalty is not None:
        penalty = check_positive("penalty", penalty, fix="pass κ > 0, or None for the variational inequality")
    if temperature > 0.0 and penalty is None:
        raise ValueError(f"temperature={temperature!r} > 0 needs a finite penalty (the exploratory problem is "
                         "defined for a finite κ); pass e.g. penalty=5")
    check_choice("left_boundary", left_boundary, tuple(_BOUNDARY_CODES))
    check_choice("right_boundary", right_boundary, tuple(_BOUNDARY_CODES))
    check_choice("lower_side", lower_side, ("left", "right"))
    check_choice("upper_side", upper_side, ("left", "right"))

    if penalty is None:
        mode_code, mode_name = MODE_HARD, "variational inequality"
    elif temperature > 0.0:
        mode_code, mode_name = MODE_SOFTPLUS, "exploratory"
    else:
        mode_code, mode_name = MODE_FINITE, "penalty"

    # the value table ((n_time + 1) × n), about 16 node arrays and the sub-step lists: refused before
    # any is allocated; the work is a few Newton sweeps of the n nodes per sub-step
    what = f"solve_dynkin with {n} grid nodes and settings.n_time={_show(n_time)}"
    fix = "pass a coarser grid or fewer time levels (settings=DynkinSettings(n_time=...))"
    check_memory(what, 8.0 * ((float(n_time) + 1.0) * n + 16.0 * n + 12.0 * float(n_time)), fix=fix)
    check_work(what, 4.0 * float(n_time) * (n + 64.0), rate=_NODE_STEPS_PER_SECOND, fix=fix)

    # === 1. grid and 2. operator === #
    lower = np.zeros(n)
    diag = np.zeros(n)
    upper = np.zeros(n)
    n_upwind = build_generator(x, a, b, c, _BOUNDARY_CODES[left_boundary], _BOUNDARY_CODES[right_boundary],
                               lower, diag, upper)
    # An implicit step solves (I − Δτ θ G) w = ...; once Δτ·|G| exceeds 1/ε ≈ 4.5e15 the identity is lost
    # in rounding and the tridiagonal pivots cancel (zero pivot): name the coefficient that causes it.
    with np.errstate(over="ignore", invalid="ignore"):
        widest_step = maturity / max(1, n_time) * 2.0  # graded steps are at most about twice the mean
        rates = {"diffusion": np.max(np.abs(a) / np.diff(x).min() ** 2), "drift": np.max(np.abs(b) / np.diff(x).min()),
                 "reaction": np.max(np.abs(c))}
    culprit = max(rates, key=lambda key: rates[key])
    if not rates[culprit] * widest_step <= _MAX_STEP_RATE:
        raise ValueError(f"{culprit} (with maturity={maturity:g} over {n_time} levels) gives generator rates "
                         f"|G|·Δτ ≈ {rates[culprit] * widest_step:.3g} > {_MAX_STEP_RATE:g}, beyond which the implicit "
                         f"step I − Δτ·G loses the identity in rounding; pass {culprit} of a realistic size, more "
                         "time levels or a shorter maturity")

    # === 3. obstacles (switched off on Dirichlet rows so that the held value is not moved) === #
    kern_lo = lo_obs.copy()
    kern_up = up_obs.copy()
    for index, kind in ((0, left_boundary), (n - 1, right_boundary)):
        if kind == "dirichlet":
            kern_lo[index] = -_INACTIVE
            kern_up[index] = _INACTIVE

    # === 4. time stepping === #
    dtau, weights, levels = scheme.time_steps(maturity, n_time)
    values_tau = np.empty((levels.size, n))
    iterations = np.zeros(dtau.size, dtype=np.int64)
    changes = np.zeros(dtau.size)
    status, failing = penalty_march(lower, diag, upper, term.copy(), dtau, weights, levels, kern_lo[None, :],
                                    kern_up[None, :], True, np.zeros((1, n)), False, mode_code,
                                    1.0 if penalty is None else float(penalty), float(temperature), float(tol),
                                    int(max_iter), values_tau, iterations, changes)
    if status != STATUS_OK:
        tau_fail = float(np.sum(dtau[:failing + 1])) if failing >= 0 else float("nan")
        raise ConvergenceError(f"double-obstacle penalty iteration failed: {STATUS_MESSAGES.get(status, status)}",
                               sub_step=int(failing), time=maturity - tau_fail, penalty=penalty,
                               temperature=temperature, last_change=float(changes[max(failing, 0)]),
                               max_iter=max_iter)

    # === 5. wrap: calendar time ascending, regions, boundaries === #
    tau_levels = scheme.level_times(maturity, n_time)
    times = maturity - tau_levels[::-1]
    times[0] = 0.0
    values = values_tau[::-1].copy()
    diagnostics = SolverDiagnostics.from_iterations(iterations, status=status, n_time=n_time, n_space=n,
                                                    wall_seconds=time.perf_counter() - started)
    return DynkinResult(grid=x, times=times, values=values, lower_obstacle=lo_obs, upper_obstacle=up_obs,
                        lower_side=lower_side, upper_side=upper_side,
                        mode=mode_name, penalty=penalty, temperature=temperature, newton_iterations=iterations,
                        n_upwind=int(n_upwind), tol=tol, diagnostics=diagnostics)
