r"""Closed-form quadratic approximation of the market-making value for many options (SPEC section 5).

When ``(2Q̄+1)^n`` states are too many, Bergault, Evangelista, Guéant & Vieira (2021) replace each
Hamiltonian by its second-order Taylor polynomial at Δ = 0,

.. math::

    H^s_i(p) ≈ α^s_{0,i} + α^s_{1,i} p + \\tfrac12 α^s_{2,i} p^2, \\qquad s ∈ \\{b, a\\},

and look for ``θ(t, q) ≈ −qᵀA(t)q − qᵀB(t) − C(t)``. BEGV treat the inventory as continuous
(``θ(q ± e_i) − θ(q) ≈ ±∂_iθ``); here the Taylor polynomials are evaluated at the *exact* discrete
gains of the quadratic θ, ``p^b_i = −(2(Aq)_i + B_i) − A_ii`` and ``p^a_i = 2(Aq)_i + B_i − A_ii``,
which keeps the lot-size term ``A_ii`` (the inventory cost of one fill) and is what the grid solves.
Matching powers of q in the HJB gives, in time-to-go ``τ = T − t`` with
``D = diag(α^b_2 + α^a_2)``, ``a_1 = α^b_1 − α^a_1``, ``e_2 = α^b_2 − α^a_2``, ``a_0 = α^b_0 + α^a_0``,
``S = (φ/2) ΣΣᵀ`` and ``d = diag(A)``:

.. math::

    A' &= −2ADA + S, & A(0) &= \mathrm{diag}(c),\\
    B' &= −2A\,(DB − a_1 + e_2 ∘ d), & B(0) &= 0,\\
    C' &= −\textstyle\sum_i \big[a_{0,i} − α^b_{1,i}(d_i + B_i) + α^a_{1,i}(B_i − d_i)
          + \tfrac12 α^b_{2,i}(d_i + B_i)^2 + \tfrac12 α^a_{2,i}(d_i − B_i)^2\big], & C(0) &= 0.

(``discrete_gains=False`` sets ``d = 0``: BEGV's continuum equations. A is the same either way; on
the two-option paper-like examples the ``A_ii`` terms cut the error of θ(0, 0) against the grid from
about 1.5 % to about 0.3 %.)

The matrix Riccati equation has the closed form ``A = Y X^{-1}`` with
``[X; Y](τ) = expm(τ [[0, 2D], [S, 0]]) [I; diag(c)]`` (the standard linearization of a Riccati
equation; it holds for singular D or S too). B and C solve ODEs driven by A and are integrated,
together with A's own ODE, by an eighth-order Runge–Kutta method (DOP853). Quotes are the model's
exact optimal quotes for the discrete gains of the quadratic θ, ``θ(q ± e_i) − θ(q)``, as BEGV
recommend.

With γ > 0 the α are the Taylor coefficients of the exploratory ``H_γ`` (computed with the same
quadrature as the grid solver, :mod:`pdecore.gibbs`), and the quoted spread is the Gibbs policy's mean.

References
----------
Bergault, P., Evangelista, D., Guéant, O. & Vieira, D. (2021). Closed-form approximations in
multi-asset market making. *Applied Mathematical Finance* 28(2), 101–142.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import expm

from pdecore.budget import check_memory
from pdecore.checks import check_int
from pdecore.gibbs import (DEFAULT_N_QUADRATURE, _GibbsTable, argmax_spread, deterministic_quotes,
                           gibbs_moments)
from pdecore.market_making_params import MarketMakingModel

__all__ = ["QuadraticApproximation", "quadratic_approximation", "hamiltonian_taylor"]


def hamiltonian_taylor(intensity: float, decay: float, temperature: float, low: float, high: float,
                       n_quadrature: int = DEFAULT_N_QUADRATURE) -> tuple[float, float, float]:
    """``(H(0), H'(0), H''(0))`` of one side's Hamiltonian.

    γ = 0: if ``1/k`` lies inside the bounds, ``H(p) = (A/(ek)) e^{kp}`` near 0, so
    ``(A/(ek), A/e, kA/e)``; otherwise the quote is pinned at the bound ``δ_c`` and
    ``H(p) = A e^{−kδ_c}(δ_c + p)`` (zero curvature). γ > 0: the discrete ``H_γ`` and its exact
    derivative (mean rate) from :func:`~pdecore.gibbs.gibbs_moments`, the curvature by a
    central difference of the derivative.
    """
    if temperature > 0.0:
        h = 1e-4
        values, rates, _ = gibbs_moments(np.array([0.0, -h, h]), intensity, decay, temperature, low, high,
                                         n_quadrature)
        return float(values[0]), float(rates[0]), float((rates[2] - rates[1]) / (2 * h))
    myopic = 1.0 / decay
    if low < myopic < high:
        return intensity / (math.e * decay), intensity / math.e, decay * intensity / math.e
    spread, rate, value = deterministic_quotes(0.0, intensity, decay, low, high)
    return float(value), float(rate), 0.0


@dataclass(frozen=True)
class QuadraticApproximation:
    """``θ(t, q) ≈ −qᵀA(t)q − qᵀB(t) − C(t)`` and its quotes (module docstring).

    Attributes
    ----------
    model : MarketMakingModel
    terminal_coeffs : (n,) ndarray
        ``c_i`` of ``A(T) = diag(c)``.
    taylor_bid, taylor_ask : (n, 3) ndarray
        ``(α_0, α_1, α_2)`` of each option's bid and ask Hamiltonians.
    """

    model: MarketMakingModel
    terminal_coeffs: np.ndarray
    taylor_bid: np.ndarray
    taylor_ask: np.ndarray
    _tau_grid: np.ndarray = field(repr=False)
    _linear: np.ndarray = field(repr=False)   # B on the τ grid, (m, n)
    _constant: np.ndarray = field(repr=False)  # C on the τ grid, (m,)
    _tables: dict = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ coefficients
    def _tau(self, t) -> float:
        t = float(t)
        if not (-1e-12 <= t <= self.model.horizon + 1e-12):
            raise ValueError(f"t must lie in [0, {self.model.horizon!r}] (the trading horizon), got {t!r}")
        return min(max(self.model.horizon - t, 0.0), self.model.horizon)

    def quadratic_matrix(self, t) -> np.ndarray:
        """``A(t)`` by the closed form (symmetric n×n)."""
        return _riccati_closed_form(self._tau(t), self._curvature(), self._risk_matrix(),
                                    self.terminal_coeffs)

    def linear_vector(self, t) -> np.ndarray:
        """``B(t)`` (zero when bid and ask are symmetric)."""
        tau = self._tau(t)
        return np.array([np.interp(tau, self._tau_grid, self._linear[:, i])
                         for i in range(self.model.n_options)])

    def constant(self, t) -> float:
        """``C(t)`` (``−θ(t, 0)``)."""
        return float(np.interp(self._tau(t), self._tau_grid, self._constant))

    def _curvature(self) -> np.ndarray:
        return np.diag(self.taylor_bid[:, 2] + self.taylor_ask[:, 2])

    def _risk_matrix(self) -> np.ndarray:
        return 0.5 * self.model.risk_aversion * self.model.noise_cov_array()

    # ------------------------------------------------------------------ value and quotes
    def _inventory(self, inventory) -> np.ndarray:
        q = np.asarray(inventory, dtype=float)
        n = self.model.n_options
        if q.ndim == 0 and n == 1:
            q = q.reshape(1)
        if q.shape[-1] != n:
            raise ValueError(f"inventory must have {n} entries per state (shape (..., {n})), got shape "
                             f"{q.shape}")
        return q

    def theta(self, t, inventory):
        """Approximate value at time ``t``; ``inventory`` a tuple of n numbers or an array ``(..., n)``."""
        q = self._inventory(inventory)
        a, b, c = self.quadratic_matrix(t), self.linear_vector(t), self.constant(t)
        value = -np.einsum("...i,ij,...j->...", q, a, q) - q @ b - c
        return float(value) if np.ndim(value) == 0 else value

    def gain(self, t, inventory, option: int = 0, side: str = "bid"):
        """Discrete gain of the quadratic θ: ``θ(q+e_i) − θ(q)`` (bid) or ``θ(q−e_i) − θ(q)`` (ask)."""
        if side not in ("bid", "ask"):
            raise ValueError(f"side must be 'bid' or 'ask', got {side!r}")
        option = check_int("option", option, minimum=0, maximum=self.model.n_options - 1)
        q = self._inventory(inventory)
        a, b = self.quadratic_matrix(t), self.linear_vector(t)
        slope = q @ a[:, option]  # (Aq)_i
        if side == "bid":
            value = -(2.0 * slope + a[option, option]) - b[option]
        else:
            value = 2.0 * slope - a[option, option] + b[option]
        return float(value) if np.ndim(value) == 0 else value

    def _spread(self, t, inventory, option, side):
        gain = np.asarray(self.gain(t, inventory, option, side))
        model = self.model
        low, high = model.spread_bounds
        intensity = (model.intensity_bid_array() if side == "bid" else model.intensity_ask_array())[option]
        decay = model.decay_array()[option]
        if model.temperature > 0.0:
            key = (float(intensity), float(decay))
            if key not in self._tables:
                center = 1.0 / decay - 0.5 * (low + high)
                self._tables[key] = _GibbsTable.build(key[0], key[1], model.temperature, low, high,
                                                      DEFAULT_N_QUADRATURE, center, 0.5 * (high - low) + 0.5,
                                                      50.0 / decay)
            spread = self._tables[key].mean_spread(gain)
        else:
            spread = argmax_spread(gain, decay, low, high)
        return float(spread) if np.ndim(spread) == 0 else spread

    def bid_spread(self, t, inventory, option: int = 0):
        """Bid spread for the quadratic θ's gains; vectorized over inventories ``(..., n)``."""
        return self._spread(t, inventory, option, "bid")

    def ask_spread(self, t, inventory, option: int = 0):
        """Ask spread for the quadratic θ's gains; vectorized over inventories ``(..., n)``."""
        return self._spread(t, inventory, option, "ask")


def _riccati_closed_form(tau: float, curvature: np.ndarray, risk: np.ndarray,
                         coeffs: np.ndarray) -> np.ndarray:
    """``A(τ)`` solving ``A' = −2ADA + S``, ``A(0) = diag(c)`` via ``A = Y X^{-1}``."""
    n = coeffs.size
    generator = np.block([[np.zeros((n, n)), 2.0 * curvature], [risk, np.zeros((n, n))]])
    flow = expm(tau * generator)
    start = np.vstack([np.eye(n), np.diag(coeffs)])
    x, y = np.split(flow @ start, 2)
    a = np.linalg.solve(x.T, y.T).T  # Y X^{-1}
    return 0.5 * (a + a.T)


def quadratic_approximation(model: MarketMakingModel, *, terminal_coeffs=None, n_tau: int = 401,
                            discrete_gains: bool = True):
    """Build the quadratic approximation of Bergault, Evangelista, Guéant & Vieira (2021).

    Parameters
    ----------
    model : MarketMakingModel
        Any number of options (the inventory bound Q̄ is ignored: the approximation is unbounded).
    terminal_coeffs : array_like (n,), optional
        Overrides ``c_i = ψ0 E[P_iT²]``.
    n_tau : int, default 401
        Dates on which B and C are stored (interpolated linearly between them).
    discrete_gains : bool, default True
        Expand the Hamiltonians at the exact discrete gains of the quadratic θ,
        ``∓(2(Aq)_i + B_i) − A_ii``, keeping the lot-size term ``A_ii`` in the B and C equations
        (module docstring); False drops it, as in BEGV's continuous-inventory derivation. A is the
        same either way.

    Returns
    -------
    QuadraticApproximation

    Raises
    ------
    ValueError
        A bad ``model``, ``terminal_coeffs``, ``n_tau`` or ``discrete_gains``, named with the fix, or an
        ``n_tau`` whose stored solution passes the memory budget of :mod:`pdecore.budget`.
    """
    from scipy.integrate import solve_ivp

    if not isinstance(model, MarketMakingModel):
        raise ValueError(f"model must be a MarketMakingModel, got {type(model).__name__}")
    n_tau = check_int("n_tau", n_tau, minimum=2, fix="pass e.g. n_tau=401")
    if not isinstance(discrete_gains, (bool, np.bool_)):
        raise ValueError(f"discrete_gains must be True or False, got {discrete_gains!r}; pass True (keep the "
                         "lot-size term, the default) or False (BEGV's continuum)")
    n = model.n_options
    # the stored solution (A, B, C at every date) and the integrator's output copy: refused before the solve
    check_memory(f"quadratic_approximation with n_tau={n_tau} and {n} options",
                 8.0 * 3.0 * float(n_tau) * (n * n + n + 2.0),
                 fix="pass n_tau of a few thousand at most (B and C are interpolated linearly between dates)")
    coeffs = model.resolve_terminal_coefficients(terminal_coeffs)
    low, high = model.spread_bounds
    decay = model.decay_array()
    taylor_bid = np.array([hamiltonian_taylor(a, k, model.temperature, low, high)
                           for a, k in zip(model.intensity_bid_array(), decay)])
    taylor_ask = np.array([hamiltonian_taylor(a, k, model.temperature, low, high)
                           for a, k in zip(model.intensity_ask_array(), decay)])
    curvature = np.diag(taylor_bid[:, 2] + taylor_ask[:, 2])
    risk = 0.5 * model.risk_aversion * model.noise_cov_array()
    drift = taylor_bid[:, 1] - taylor_ask[:, 1]
    level = float(np.sum(taylor_bid[:, 0] + taylor_ask[:, 0]))
    tau_grid = np.linspace(0.0, model.horizon, n_tau)

    a1_bid, a1_ask = taylor_bid[:, 1], taylor_ask[:, 1]
    a2_bid, a2_ask = taylor_bid[:, 2], taylor_ask[:, 2]
    lot = 1.0 if discrete_gains else 0.0

    def rhs(tau, state):
        # A rides along (its Riccati ODE) so that no matrix exponential is needed per evaluation
        a = state[:n * n].reshape(n, n)
        b = state[n * n:n * n + n]
        diag = lot * np.diag(a)  # the lot-size term A_ii of the discrete gains (0: BEGV's continuum)
        da = -2.0 * a @ curvature @ a + risk
        db = -2.0 * a @ (curvature @ b - drift + (a2_bid - a2_ask) * diag)
        dc = -(level - a1_bid @ (diag + b) + a1_ask @ (b - diag)
               + 0.5 * a2_bid @ (diag + b) ** 2 + 0.5 * a2_ask @ (diag - b) ** 2)
        return np.concatenate([da.reshape(-1), db, [dc]])

    start = np.concatenate([np.diag(coeffs).reshape(-1), np.zeros(n + 1)])
    solution = solve_ivp(rhs, (0.0, model.horizon), start, method="DOP853", t_eval=tau_grid,
                         rtol=1e-10, atol=1e-12)
    if not solution.success:  # pragma: no cover - smooth linear ODE
        from pdecore.exceptions import ConvergenceError

        raise ConvergenceError("quadratic approximation: B/C integration failed",
                               message=solution.message)
    linear = solution.y[n * n:n * n + n].T
    constant = solution.y[n * n + n]
    return QuadraticApproximation(model=model, terminal_coeffs=coeffs, taylor_bid=taylor_bid,
                                  taylor_ask=taylor_ask, _tau_grid=tau_grid, _linear=linear,
                                  _constant=constant)
