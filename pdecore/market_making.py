"""Optimal quotes of a market maker in n options: the HJB on the inventory grid (SPEC section 5).

Problem
-------
With policies that depend on (t, Q) only, ``P_T`` and ``Q_T`` are independent and the terminal
penalty ``ψ0 Σ (P_iT Q_iT)²`` becomes ``Σ c_i q_i²`` with ``c_i = ψ0 E[P_iT²]``
(:meth:`~pdecore.market_making_params.MarketMakingModel.terminal_coefficients`). The value θ(t, q)
on ``q ∈ {−Q̄..Q̄}^n`` then solves the system of ODEs

.. math::

    θ_t − \\tfrac{φ}{2} q^\\top ΣΣ^\\top q
      + \\sum_i \\big[1_{q_i<Q̄} H^b_i(θ(q+e_i) − θ(q)) + 1_{q_i>−Q̄} H^a_i(θ(q−e_i) − θ(q))\\big] = 0,
    \\qquad θ(T, q) = −\\sum_i c_i q_i^2,

with, for a fill that changes the value by Δ (the *gain*),

* γ = 0: ``H(Δ) = max_{δ∈[δ_min,δ_max]} A e^{−kδ}(δ+Δ)``, ``δ* = clip(1/k − Δ, δ_min, δ_max)``;
* γ > 0 (the paper's exploratory problem, its eq. for π*): the Gibbs density
  ``π(δ) ∝ exp(A e^{−kδ}(δ+Δ)/γ)`` on ``[δ_min, δ_max]`` and
  ``H_γ(Δ) = γ log ∫ exp(A e^{−kδ}(δ+Δ)/γ) dδ``; the quoted spread reported is the policy's mean.

Discretization
--------------
*Space* is exact: the inventory grid is the state space. *Time*: classical RK4 in time-to-go
``τ = T − t`` (fourth order, observed order checked in the tests), ``n_time`` saved intervals with
``n_substeps`` RK4 steps each. RK4 is stable while ``Δτ · R ≤ 1.39`` where ``R`` is the largest
total fill rate out of a state (Gershgorin disk of the linearized generator inside the RK4 region);
the kernel monitors it at every stage and the facade refines the step until it holds.
*γ > 0 integrals* (:mod:`pdecore.gibbs`, shared with the quadratic approximation and the RL
policy): the exponent ``u(δ) = A e^{−kδ}(δ+Δ)/γ`` is interpolated linearly between
``n_quadrature + 1`` uniform nodes and ``exp(u)`` integrated exactly on each piece (an
"exponential-linear" rule: exact for the steep boundary layers of clipped modes, second order in
the node spacing elsewhere), in log-sum-exp form. The time loop reads ``H_γ`` from a cubic Hermite
table in ``x = z/(1+|z|)``, ``z = (Δ − center)/width``, built once per solve with this rule; its
interpolation error
is measured and reported in ``stats["hamiltonian_table_error"]``.

References
----------
SPEC.md section 5; the market-making-of-options paper in ``shared/seeds`` (sections 3–4);
Guéant, Lehalle & Fernandez-Tapia (2013) for the exponential-intensity Hamiltonian.
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field

import numpy as np

from pdecore._numba import STATUS_MESSAGES, STATUS_OK
from pdecore.budget import check_memory, check_work
from pdecore.checks import check_int, check_positive
from pdecore.diagnostics import SolverDiagnostics, freeze_arrays
from pdecore.exceptions import ConvergenceError
# the Gibbs density lives in pdecore.gibbs; gibbs_moments and deterministic_quotes stay importable
# from here for the callers written against this module (validation's stage 30)
from pdecore.gibbs import (DEFAULT_N_QUADRATURE, MAX_TABLE_POINTS, _GibbsTable, argmax_spread, deterministic_quotes,
                           gibbs_density, gibbs_moments)
from pdecore.inventory_grid import inventory_axis, inventory_states, inventory_strides
from pdecore.market_making_params import MarketMakingModel

__all__ = ["MarketMakingResult", "PolicyTable", "solve_market_making", "gibbs_moments",
           "gibbs_density", "deterministic_quotes"]

#: Saved time intervals when ``n_time`` is not given.
DEFAULT_N_TIME = 200
#: Target ``Δτ·R`` when the solver picks the number of RK4 substeps (accuracy, well inside stability).
DEFAULT_RATE_DT = 1.0
#: Refuse grids whose arrays would need more than this (bytes); the process-wide memory budget of
#: :mod:`pdecore.budget` applies as well (the smaller of the two wins).
DEFAULT_MEMORY_LIMIT = 2 * 1024**3
#: Optimistic throughputs (per second, one core) for the work refusals: state-neighbour updates of
#: the RK4 kernel, and node evaluations of the exponential-linear rule while building a Gibbs table.
_STATE_UPDATES_PER_SECOND = 2e8
_QUADRATURE_NODES_PER_SECOND = 2e8


# ============================================================================ grid helpers
def _memory_estimate(n_options: int, max_inventory: int, n_time: int) -> tuple[float, float]:
    """``(n_states, bytes)`` of the solve, as floats (no overflow for absurd arguments)."""
    n_states = (2.0 * max_inventory + 1.0) ** n_options
    # saved values + 7 work arrays + coords + running penalty + terminal values
    return n_states, 8.0 * n_states * (n_time + 1.0 + 7.0 + n_options + 2.0)


def _show(count) -> str:
    """A count for a message: exact up to 1e15, else ``1e+300``-style (a refusal stays one short line)."""
    return f"{int(count)}" if abs(float(count)) < 1e15 else f"{float(count):.3g}"


def _check_table_budget(what: str, n_quadrature: int, n_gains: float, n_tables: int) -> None:
    """Refuse Gibbs tables of ``n_gains`` gains × ``n_quadrature + 1`` spread nodes past the budgets.

    The node arrays (nodes, rates, exponents, pieces: about 6 of ``n_quadrature + 1`` floats) and the
    ``n_gains × (n_quadrature + 1)`` node evaluations per table are what grow with ``n_quadrature``.
    """
    fix = "pass n_quadrature of a few thousand at most (the default 1024 is accurate to ~1e-7)"
    check_memory(f"{what} with n_quadrature={_show(n_quadrature)}", 8.0 * 6.0 * (n_quadrature + 1.0) * max(1.0, n_tables),
                 fix=fix)
    check_work(f"{what} with n_quadrature={_show(n_quadrature)}", n_gains * (n_quadrature + 1.0) * n_tables,
               rate=_QUADRATURE_NODES_PER_SECOND, fix=fix)


def _gain_bound(model: MarketMakingModel, coeffs: np.ndarray) -> float:
    """A generous bound on |θ(q ± e_i) − θ(q)| used to size the Hamiltonian table."""
    qbar = model.max_inventory
    cov = model.noise_cov_array()
    terminal = float(np.max(np.abs(coeffs)) * (2 * qbar - 1)) if coeffs.size else 0.0
    running = model.horizon * 0.5 * model.risk_aversion * float(
        np.max(2 * qbar * np.abs(cov).sum(axis=1) + np.abs(np.diag(cov))))
    decay = model.decay_array()
    income = model.horizon * float(np.max(np.maximum(model.intensity_bid_array(), model.intensity_ask_array())
                                          / (math.e * decay)))
    return terminal + running + income + 2.0 / float(decay.min()) + 1.0


# ============================================================================ result
class PolicyTable(tuple):
    """``(times, inventory_grid, bid_spreads, ask_spreads)`` of a solved policy (a named tuple).

    ``bid_spreads[j, i_1, …, i_n, option]`` is the (mean) bid spread at ``times[j]`` and inventory
    ``(inventory_grid[i_1], …, inventory_grid[i_n])``; NaN where the side is not quoted (bid at Q̄,
    ask at −Q̄).
    """

    __slots__ = ()

    def __new__(cls, times, inventory_grid, bid_spreads, ask_spreads):
        return super().__new__(cls, (times, inventory_grid, bid_spreads, ask_spreads))

    times = property(lambda self: self[0])
    inventory_grid = property(lambda self: self[1])
    bid_spreads = property(lambda self: self[2])
    ask_spreads = property(lambda self: self[3])


@dataclass(frozen=True)
class MarketMakingResult:
    """Solution of the inventory-grid HJB: values, quotes, policy densities and diagnostics.

    Attributes
    ----------
    model : MarketMakingModel
    times : (n_time + 1,) ndarray
        Calendar times of the saved values, ascending from 0 to the horizon.
    inventory_grid : (2Q̄ + 1,) ndarray of int
        The inventory axis ``−Q̄..Q̄`` (the same for every option).
    values : ndarray, shape (n_time + 1,) + (2Q̄ + 1,)*n
        θ at every saved time and inventory.
    terminal_coeffs : (n,) ndarray
        The ``c_i`` of the terminal condition ``θ(T, q) = −Σ c_i q_i²``.
    stats : dict
        ``n_time``, ``n_substeps``, ``rk4_steps``, ``dt``, ``max_rate``, ``max_rate_dt``,
        ``stability_limit``, ``refinements``, ``n_states``, ``seconds``, and for γ > 0
        ``hamiltonian_table_error`` (relative, ``|error|/(1 + |H|)`` at sampled midpoints),
        ``table_points``, ``n_quadrature``.
    diagnostics : SolverDiagnostics
        The shape every pdecore result carries (status, message, counters, grid, wall time); the
        explicit RK4 march has no Newton iterations, so its step count is ``n_steps`` and the
        stability refinements are ``total_iterations``.

    Notes
    -----
    Between saved times θ is interpolated linearly in t (error O(Δt²) of the saved spacing); quotes
    at a time are computed from the interpolated θ.
    """

    model: MarketMakingModel
    times: np.ndarray
    inventory_grid: np.ndarray
    values: np.ndarray
    terminal_coeffs: np.ndarray
    stats: dict
    _tables: tuple | None = field(default=None, repr=False)
    diagnostics: SolverDiagnostics | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        freeze_arrays(self)

    # ---------------------------------------------------------------- value
    def _slice(self, t: float) -> np.ndarray:
        """θ(t, ·) on the whole grid, linear in t between saved times."""
        t = float(t)
        if not (self.times[0] - 1e-12 <= t <= self.times[-1] + 1e-12):
            raise ValueError(f"t must lie in [0, {self.times[-1]!r}] (the trading horizon), got {t!r}")
        j = int(np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, self.times.size - 2))
        w = (t - self.times[j]) / (self.times[j + 1] - self.times[j])
        w = min(max(w, 0.0), 1.0)
        return (1.0 - w) * self.values[j] + w * self.values[j + 1]

    def _index(self, inventory):
        q = np.asarray(inventory)
        n = self.model.n_options
        if q.shape[-1:] != (n,) and not (n == 1 and q.ndim == 0):
            raise ValueError(f"inventory must be a tuple of {n} integers (or an array (..., {n})), got "
                             f"{inventory!r}")
        if q.ndim == 0:
            q = q.reshape(1)
        if not np.all(np.asarray(q) == np.round(q)):
            raise ValueError(f"inventory must hold integers, got {inventory!r}")
        q = np.asarray(np.round(q), dtype=np.int64)
        qbar = self.model.max_inventory
        if np.any(np.abs(q) > qbar):
            raise ValueError(f"inventory must lie in [-{qbar}, {qbar}] (max_inventory), got {inventory!r}")
        return q + qbar

    def theta(self, t: float, inventory):
        """θ(t, q); ``inventory`` a tuple of n integers (float result) or an array ``(..., n)``."""
        index = self._index(inventory)
        slice_ = self._slice(t)
        result = slice_[tuple(np.moveaxis(index, -1, 0))]
        return float(result) if np.ndim(result) == 0 else result

    # ---------------------------------------------------------------- quotes
    def _gain(self, slice_, index, option, side):
        """θ(q ± e_i) − θ(q), NaN where the side is not quoted."""
        qbar = self.model.max_inventory
        shift = 1 if side == "bid" else -1
        neighbour = index.copy()
        neighbour[..., option] += shift
        quoted = (neighbour[..., option] >= 0) & (neighbour[..., option] <= 2 * qbar)
        neighbour[..., option] = np.clip(neighbour[..., option], 0, 2 * qbar)
        here = slice_[tuple(np.moveaxis(index, -1, 0))]
        there = slice_[tuple(np.moveaxis(neighbour, -1, 0))]
        return np.where(quoted, there - here, np.nan)

    def _spread_from_gain(self, gain, option, side):
        model = self.model
        low, high = model.spread_bounds
        gain = np.asarray(gain, dtype=float)
        if model.temperature > 0.0:
            table = self._tables[option][0 if side == "bid" else 1]
            return np.where(np.isnan(gain), np.nan, table.mean_spread(np.nan_to_num(gain)))
        decay = model.decay_array()[option]
        return np.where(np.isnan(gain), np.nan, argmax_spread(np.nan_to_num(gain), decay, low, high))

    def _check_option(self, option):
        return check_int("option", option, minimum=0, maximum=self.model.n_options - 1,
                         fix=f"options are numbered 0..{self.model.n_options - 1}")

    def _spread(self, t, inventory, option, side):
        option = self._check_option(option)
        index = self._index(inventory)
        gain = self._gain(self._slice(t), index, option, side)
        spread = self._spread_from_gain(gain, option, side)
        return float(spread) if np.ndim(spread) == 0 else spread

    def bid_spread(self, t: float, inventory, option: int = 0):
        """Optimal bid spread δ^b (the Gibbs policy's mean when γ > 0) at (t, q); NaN at ``q_i = Q̄``.

        ``inventory`` is a tuple of n integers, or an integer array of shape ``(..., n)`` for a batch.
        """
        return self._spread(t, inventory, option, "bid")

    def ask_spread(self, t: float, inventory, option: int = 0):
        """Optimal ask spread δ^a (the Gibbs policy's mean when γ > 0) at (t, q); NaN at ``q_i = −Q̄``."""
        return self._spread(t, inventory, option, "ask")

    def gain(self, t: float, inventory, option: int = 0, side: str = "bid"):
        """The value gain Δ of a fill: ``θ(t, q + e_i) − θ(t, q)`` (bid) or ``θ(t, q − e_i) − θ(t, q)``."""
        if side not in ("bid", "ask"):
            raise ValueError(f"side must be 'bid' or 'ask', got {side!r}")
        option = self._check_option(option)
        value = self._gain(self._slice(t), self._index(inventory), option, side)
        return float(value) if np.ndim(value) == 0 else value

    def policy_density(self, t: float, inventory, option: int = 0, side: str = "bid"):
        """Gibbs density of the spread at (t, q): ``(spreads, density)`` on the quadrature nodes.

        The density integrates to one under the exponential-linear rule (and to within the node
        spacing squared under the trapezoidal rule). Only defined for γ > 0.
        """
        model = self.model
        if model.temperature <= 0.0:
            raise ValueError("policy_density needs temperature > 0: with temperature=0 the policy is "
                             "the deterministic spread given by bid_spread/ask_spread")
        gain = self.gain(t, inventory, option, side)
        if not np.isscalar(gain) or math.isnan(gain):
            raise ValueError(f"the {side} side is not quoted at inventory {inventory!r} (inventory bound), "
                             "or inventory is a batch; pass one inventory tuple inside the bound")
        option = self._check_option(option)
        intensity = (model.intensity_bid_array() if side == "bid" else model.intensity_ask_array())[option]
        low, high = model.spread_bounds
        return gibbs_density(gain, intensity, model.decay_array()[option], model.temperature, low, high,
                             self.stats["n_quadrature"])

    def policy_table(self) -> PolicyTable:
        """``(times, inventory_grid, bid_spreads, ask_spreads)`` at every saved time and inventory.

        Shapes: ``bid_spreads`` is ``(n_time + 1,) + (2Q̄+1,)*n + (n,)``; NaN where not quoted. A
        simulator can index it by ``(time index, q + Q̄ …, option)``.
        """
        n = self.model.n_options
        bids = np.empty(self.values.shape + (n,))
        asks = np.empty_like(bids)
        for option in range(n):
            axis = option + 1
            forward = np.full(self.values.shape, np.nan)
            backward = np.full(self.values.shape, np.nan)
            lead = [slice(None)] * self.values.ndim
            lag = [slice(None)] * self.values.ndim
            lead[axis], lag[axis] = slice(1, None), slice(None, -1)
            forward[tuple(lag)] = self.values[tuple(lead)] - self.values[tuple(lag)]
            backward[tuple(lead)] = self.values[tuple(lag)] - self.values[tuple(lead)]
            bids[..., option] = self._spread_from_gain(forward, option, "bid")
            asks[..., option] = self._spread_from_gain(backward, option, "ask")
        return PolicyTable(self.times.copy(), self.inventory_grid.copy(), bids, asks)

    # ---------------------------------------------------------------- plots
    def plot_spreads_vs_inventory(self, ax=None, t: float = 0.0, *, option: int = 0, inventory=None):
        """Bid and ask spreads of ``option`` against its own inventory at time ``t``.

        The other options' inventories are held at ``inventory`` (default zero). Returns the Axes.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        option = self._check_option(option)
        base = np.zeros(self.model.n_options, dtype=np.int64) if inventory is None else np.array(inventory)
        batch = np.repeat(base[None, :], self.inventory_grid.size, axis=0)
        batch[:, option] = self.inventory_grid
        ax.plot(self.inventory_grid, self.bid_spread(t, batch, option), label=f"bid, option {option}")
        ax.plot(self.inventory_grid, self.ask_spread(t, batch, option), label=f"ask, option {option}")
        ax.set_xlabel(f"inventory of option {option}")
        ax.set_ylabel("spread")
        ax.set_title(f"spreads at t = {t:g}")
        ax.legend()
        return ax

    def plot_spreads_vs_time(self, ax=None, inventory=None, *, option: int = 0):
        """Bid and ask spreads of ``option`` over the saved times at a fixed inventory. Returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        option = self._check_option(option)
        if inventory is None:
            inventory = (0,) * self.model.n_options
        bids = [self.bid_spread(t, inventory, option) for t in self.times]
        asks = [self.ask_spread(t, inventory, option) for t in self.times]
        ax.plot(self.times, bids, label=f"bid, option {option}")
        ax.plot(self.times, asks, label=f"ask, option {option}")
        ax.set_xlabel("time")
        ax.set_ylabel("spread")
        ax.set_title(f"spreads at inventory {tuple(int(x) for x in np.atleast_1d(inventory))}")
        ax.legend()
        return ax


# ============================================================================ facade
def solve_market_making(model: MarketMakingModel, *, n_time: int | None = None, terminal_coeffs=None,
                        n_substeps: int | None = None, n_quadrature: int = DEFAULT_N_QUADRATURE,
                        memory_limit: float = DEFAULT_MEMORY_LIMIT) -> MarketMakingResult:
    """Solve the market-making HJB on the inventory grid (SPEC section 5; module docstring).

    Parameters
    ----------
    model : MarketMakingModel
    n_time : int, optional
        Number of saved time intervals (default 200). Values are saved at ``n_time + 1`` dates.
    terminal_coeffs : array_like (n,), optional
        Overrides ``c_i = ψ0 E[P_iT²]`` in ``θ(T, q) = −Σ c_i q_i²``.
    n_substeps : int, optional
        RK4 steps per saved interval. By default chosen so that ``Δτ·R ≤ 1`` at the horizon and
        refined automatically if the stability monitor (``Δτ·R ≤ 1.39``) trips later; when given
        explicitly, a violated stability bound raises :class:`ConvergenceError`.
    n_quadrature : int, default 1024
        Intervals of the spread quadrature (γ > 0 only).
    memory_limit : float, default 2 GiB
        Grids whose arrays would exceed this raise ``ValueError`` with the estimate. The memory and
        work budgets of :mod:`pdecore.budget` (``PDERL_MEMORY_BUDGET``, ``PDERL_TIME_BUDGET``) apply
        too, so a huge ``memory_limit`` lifts only this per-call cap.

    Returns
    -------
    MarketMakingResult

    Raises
    ------
    ValueError
        Bad arguments, a grid too large for ``memory_limit`` or the memory budget, Gibbs tables
        (``n_quadrature``) or RK4 substeps past the memory or work budget of :mod:`pdecore.budget`, all
        estimated from the arguments before the large arrays are allocated.
    ConvergenceError
        Non-finite values, or instability with an explicit ``n_substeps``.
    """
    if not isinstance(model, MarketMakingModel):
        raise ValueError(f"model must be a MarketMakingModel, got {type(model).__name__}")
    n_time = DEFAULT_N_TIME if n_time is None else check_int(
        "n_time", n_time, minimum=1, fix="pass the number of saved time intervals, e.g. n_time=200")
    if n_substeps is not None:
        n_substeps = check_int("n_substeps", n_substeps, minimum=1, fix="pass e.g. n_substeps=4 or None")
    n_quadrature = check_int("n_quadrature", n_quadrature, minimum=16, fix="pass e.g. n_quadrature=1024")
    memory_limit = check_positive("memory_limit", memory_limit, fix="pass a byte count such as 2**31")
    n = model.n_options
    qbar = model.max_inventory

    # 1. grid: refused before anything is allocated -------------------------------------------------
    n_states, needed = _memory_estimate(n, qbar, n_time)
    grid_fix = ("lower max_inventory or n_time, or use quadratic_approximation(model) for many options")
    if needed > memory_limit:
        raise ValueError(
            f"max_inventory={_show(qbar)} with {n} options gives {_show(2 * qbar + 1)}^{n} = {_show(n_states)} inventory "
            f"states; with n_time={_show(n_time)} the solver needs about {needed / 1024**3:.2f} GiB, more than "
            f"memory_limit={memory_limit / 1024**3:.2f} GiB; {grid_fix}, or raise memory_limit")
    check_memory(f"solve_market_making with max_inventory={_show(qbar)}, {n} options ({_show(n_states)} states) and "
                 f"n_time={_show(n_time)}", needed, fix=grid_fix)
    n_states = int(n_states)
    # at most 2n distinct (A, k) tables of MAX_TABLE_POINTS gains each (γ > 0); checked at γ = 0 too,
    # where the tables are not built, so that a config that could never be solved with γ > 0 is refused
    _check_table_budget("solve_market_making", n_quadrature, float(MAX_TABLE_POINTS), 2 * n)
    coords, strides = inventory_states(n, qbar), inventory_strides(n, qbar)

    # 2. operator: running penalty and order-flow coefficients -------------------------------------
    cov = model.noise_cov_array()
    running = 0.5 * model.risk_aversion * np.einsum("si,ij,sj->s", coords, cov, coords)
    intensity = np.stack([model.intensity_bid_array(), model.intensity_ask_array()], axis=1)
    decay = model.decay_array()
    low, high = model.spread_bounds
    with np.errstate(over="ignore"):
        exp_low = np.exp(-decay * low)
        exp_high = np.exp(-decay * high)

    # 3. terminal condition ------------------------------------------------------------------------
    coeffs = model.resolve_terminal_coefficients(terminal_coeffs)
    theta_terminal = -(coords**2) @ coeffs

    # 4. Hamiltonians: closed form (γ = 0) or tables (γ > 0) ----------------------------------------
    exploratory = model.temperature > 0.0
    gain_bound = _gain_bound(model, coeffs)
    tables = None
    table_args = (0.0, 1.0, 0.0, 1.0, np.zeros((n, 2, 2)), np.zeros((n, 2, 2)), np.zeros((n, 2, 2)))
    started = _time.perf_counter()
    diagnostics: dict = {"n_states": n_states, "n_time": n_time, "n_quadrature": n_quadrature}

    def build_tables(bound):
        center = float(np.mean(1.0 / decay)) - 0.5 * (low + high)
        width = 0.5 * (high - low) + float(np.ptp(1.0 / decay)) + 0.5
        cache: dict = {}
        per_option = []
        for i in range(n):
            sides = []
            for side in range(2):
                key = (float(intensity[i, side]), float(decay[i]))
                if key not in cache:
                    cache[key] = _GibbsTable.build(key[0], key[1], model.temperature, low, high,
                                                   n_quadrature, center, width, bound)
                sides.append(cache[key])
            per_option.append(tuple(sides))
        values = np.stack([[s.values for s in sides] for sides in per_option])
        slopes = np.stack([[s.scaled_slopes for s in sides] for sides in per_option])
        rates = np.stack([[s.slopes for s in sides] for sides in per_option])
        first = per_option[0][0]
        return tuple(per_option), (first.center, first.width, first.x_start, first.x_step, values, slopes,
                                   rates)

    if exploratory:
        tables, table_args = build_tables(gain_bound)

    # 5. time stepping ------------------------------------------------------------------------------
    from pdecore._kernels.hjb import (RK4_DISK_LIMIT, STATUS_TABLE_RANGE, STATUS_UNSTABLE, hjb_rhs,
                                      hjb_rk4)

    dt_saved = model.horizon / n_time
    work = np.empty((7, n_states))
    monitor = np.zeros(4)
    if n_substeps is None:
        rate = np.zeros(1)
        for _ in range(8):
            status = hjb_rhs(theta_terminal, strides, qbar, running, intensity, decay, low, high,
                             exp_low, exp_high, exploratory, *table_args, work[1], work[6], rate)
            if status != STATUS_TABLE_RANGE:
                break
            gain_bound *= 4.0  # the terminal gains already leave the table: widen it first
            tables, table_args = build_tables(gain_bound)
        terminal_rate = rate[0] if math.isfinite(rate[0]) else 0.0
        substeps = max(1, int(math.ceil(dt_saved * terminal_rate / DEFAULT_RATE_DT)))
        automatic = True
    else:
        substeps = n_substeps
        automatic = False
    saved = np.empty((n_time + 1, n_states))
    refinements = 0
    while True:
        # 4 RK4 stages × 2n neighbours of every state at every substep: refused when it cannot finish
        # (also before a refinement, which may multiply the substeps)
        check_work(f"solve_market_making with {n_states:,} states, n_time={n_time} and {_show(substeps)} RK4 substeps "
                   f"per interval (from n_substeps, or from the fill rates intensity_bid/intensity_ask)",
                   8.0 * n * n_states * n_time * float(substeps), rate=_STATE_UPDATES_PER_SECOND,
                   fix="lower n_time, n_substeps, max_inventory or the fill rates")
        dt = dt_saved / substeps
        status = hjb_rk4(theta_terminal, strides, qbar, running, intensity, decay, low, high,
                         exp_low, exp_high, exploratory, *table_args, n_time, substeps, dt, RK4_DISK_LIMIT,
                         saved, work, monitor)
        if status == STATUS_OK:
            break
        refinements += 1
        if refinements > 8:
            raise ConvergenceError("market-making HJB: could not reach a stable, finite solution",
                                   status=status, n_substeps=substeps, max_rate_dt=monitor[0])
        if status == STATUS_UNSTABLE:
            if not automatic:
                needed_substeps = int(math.ceil(substeps * monitor[0] / RK4_DISK_LIMIT)) + 1
                raise ConvergenceError(
                    f"RK4 stability bound violated: dt*max_rate = {monitor[0]:.3g} > {RK4_DISK_LIMIT} "
                    f"at saved step {int(monitor[2])}; pass n_substeps >= {needed_substeps} or None",
                    n_substeps=substeps, dt=dt, max_rate=monitor[3])
            substeps = int(math.ceil(substeps * monitor[3] * dt / DEFAULT_RATE_DT)) + 1
        elif status == STATUS_TABLE_RANGE:
            gain_bound *= 4.0
            tables, table_args = build_tables(gain_bound)
        else:
            message = STATUS_MESSAGES.get(status, f"status {status}")
            raise ConvergenceError(f"market-making HJB failed: {message}", status=status,
                                   saved_step=int(monitor[2]), n_substeps=substeps,
                                   max_rate=monitor[3], max_rate_dt=monitor[0])

    diagnostics.update(
        n_substeps=substeps, rk4_steps=int(monitor[1]), dt=dt, max_rate=float(monitor[3]),
        max_rate_dt=float(monitor[0]), stability_limit=RK4_DISK_LIMIT, refinements=refinements,
        seconds=_time.perf_counter() - started, gain_bound=gain_bound)
    if exploratory:
        unique = {id(t): t for sides in tables for t in sides}.values()
        diagnostics["hamiltonian_table_error"] = max(t.interpolation_error() for t in unique)
        diagnostics["table_points"] = int(tables[0][0].values.size)

    # saved[j] is τ = j·dt_saved (t = T − τ): reverse to calendar order
    shape = (n_time + 1,) + (2 * qbar + 1,) * n
    values = saved[::-1].reshape(shape)
    times = np.linspace(0.0, model.horizon, n_time + 1)
    return MarketMakingResult(model=model, times=times,
                              inventory_grid=inventory_axis(qbar), values=values,
                              terminal_coeffs=np.asarray(coeffs, dtype=float), stats=diagnostics,
                              _tables=tables,
                              diagnostics=SolverDiagnostics(
                                  status=0, message="completed", total_iterations=int(refinements),
                                  max_iterations=int(refinements), n_steps=int(monitor[1]), n_time=int(n_time),
                                  n_space=int(values[0].size), wall_seconds=float(diagnostics["seconds"])))
