"""Frozen, validated model of a market maker quoting n call options on one underlying (SPEC section 5).

One object describes the market; the inventory-grid HJB (:func:`pdecore.solve_market_making`), the
quadratic approximation (:func:`pdecore.quadratic_approximation`) and the RL simulator all read it, so
the oracle and the learner can never disagree about the problem.

Model
-----
Underlying ``dS/S = σ dW`` (zero rates, zero drift). Option i is a European call with strike ``K_i``
and maturity ``T_i > T`` (the trading horizon); its mid is ``P_i = p_i(S, t) + ξ_i`` with ``p_i`` the
Black–Scholes price and ``dξ = Σ dW'`` correlated supply/demand shocks, ``ξ_0 = 0``. The maker quotes
bid ``P_i − δ^b_i`` and ask ``P_i + δ^a_i``; bid fills (``Q_i += 1``) arrive at rate
``A^b_i exp(−k_i δ^b_i)``, ask fills (``Q_i −= 1``) at ``A^a_i exp(−k_i δ^a_i)``. The objective is

.. math::

    \\mathbb E\\Big[X_T - ψ_0 \\sum_i (P_{iT} Q_{iT})^2
        - \\frac{φ}{2}\\int_0^T Q_t^\\top ΣΣ^\\top Q_t\\,dt
        - γ \\int_0^T \\int π \\log π \\,dδ\\,dt\\Big],

the paper's objective (Baldacci-style exponential intensities, terminal penalty ψ0) with the running
risk penalty φ as an extension (φ = 0 is the paper) and the entropy weight γ of the exploratory
(Gibbs) formulation (γ = 0 is the classical control problem).

Units
-----
The class is unit-agnostic, but every default (:meth:`MarketMakingModel.paper_defaults`) is in
**days**: ``volatility`` is per square-root day, ``horizon`` and ``maturities`` are in days,
``intensity_*`` are fills per day, ``noise_cov`` is price² per day and ``risk_aversion`` per
(price · day). Spreads, ``1/decay`` and ``temperature`` are in price units (``temperature`` is in
price units per unit of time: it weighs an entropy rate against a P&L rate).

References
----------
SPEC.md section 5; the market-making-of-options paper in ``shared/seeds`` (section 2); Bergault,
Evangelista, Guéant & Vieira (2021), "Closed-form approximations in multi-asset market making".
"""

from __future__ import annotations

import math
import numbers
from dataclasses import KW_ONLY, dataclass

import numpy as np

from pdecore.checks import check_finite_array, check_int, check_nonnegative, check_positive, check_real
from pdecore.gibbs import MAX_MAGNITUDE as GIBBS_MAX_MAGNITUDE
from pdecore.gibbs import check_spread_bounds

__all__ = ["MarketMakingModel", "MAX_MAGNITUDE", "MAX_INVENTORY"]

#: Largest magnitude of a model parameter in its own unit (prices, days, fills per day, ...), the same
#: bound as the Gibbs rule's (:data:`pdecore.gibbs.MAX_MAGNITUDE`). Every quantity of the problem is a
#: product of at most four of them (``ψ0 (P Q)²``, ``A e^{−kδ}(δ+Δ) T``), so 1e12 per factor keeps every
#: product far inside float64 (1e308) with no overflow anywhere; and a fill rate ``A`` must be resolved by
#: time steps ``Δt ≲ 1/A``, so ``A T`` beyond ~1e12 steps could not be solved or simulated anyway. No
#: meaningful market comes near it.
MAX_MAGNITUDE = GIBBS_MAX_MAGNITUDE
#: Largest inventory bound Q̄: the simulator holds inventories as float64 (exact to 2^53) and every
#: solver's grid is refused by memory far earlier.
MAX_INVENTORY = 10**9


def _bounded(name: str, value: float, fix: str, *, unit: str = "") -> float:
    """``value`` (already finite) if ``|value| <= MAX_MAGNITUDE``, else a ValueError explaining the bound."""
    if abs(value) > MAX_MAGNITUDE:
        why = (" (every solver resolves single fills with time steps below 1/A, so A·horizon steps or more; "
               "nothing finishes beyond that)" if name.startswith("intensity") else
               " (products of up to four model quantities must stay far inside the float64 range)")
        raise ValueError(f"{name} must be <= {MAX_MAGNITUDE:g}{unit}{why}, got {value!r}; {fix}")
    return value


def _as_per_option(name: str, value, n_options: int, fix: str):
    """Normalize a scalar-or-sequence positive parameter: scalars stay floats, sequences -> tuples."""
    if isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, bool):
        return _bounded(name, check_positive(name, value, fix=fix), fix)
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a positive number or a sequence of {n_options} positive "
                         f"numbers, got {value!r}; {fix}") from None
    if len(items) != n_options:
        raise ValueError(f"{name} must have one entry per option ({n_options}), got {len(items)} "
                         f"entries {value!r}; {fix}")
    return tuple(_bounded(f"{name}[{i}]", check_positive(f"{name}[{i}]", item, fix=fix), fix)
                 for i, item in enumerate(items))


@dataclass(frozen=True, slots=True)
class MarketMakingModel:
    """Market maker in n call options on one underlying (SPEC section 5), frozen and validated.

    Parameters
    ----------
    spot : float
        ``S_0 > 0``, the underlying's price at t = 0.
    volatility : float
        σ > 0 of ``dS/S = σ dW``, per square root of the time unit (daily σ = 0.02 in the defaults).
    strikes : sequence of float
        ``K_i > 0``, one per option; stored as a tuple. Its length is ``n_options``.
    maturities : sequence of float
        ``T_i``, one per option, each strictly after ``horizon`` (the paper assumes T < min T_i).
    horizon : float
        T > 0, the end of the trading period, where the terminal penalty is charged.
    intensity_bid, intensity_ask : float or sequence of float
        ``A^b_i, A^a_i > 0``: fill rates (per time unit) of quotes at zero spread. A scalar applies to
        every option and is stored as a float; a sequence is stored as a tuple.
    decay : float or sequence of float
        ``k_i > 0``: the fill rate is ``A exp(−k δ)``; ``1/k`` is the myopic optimal spread.
    noise_cov : n×n array-like, optional
        ``ΣΣᵀ``, covariance rate of the mid-price shocks ξ (price² per time unit), symmetric positive
        semidefinite; stored as a nested tuple, zeros when omitted.
    terminal_penalty : float, default 0
        ψ0 ≥ 0 of the terminal penalty ``ψ0 Σ_i (P_iT Q_iT)²``.
    risk_aversion : float, default 0
        φ ≥ 0 of the running penalty ``(φ/2) Qᵀ ΣΣᵀ Q`` (an extension; the paper has φ = 0).
    max_inventory : int
        Q̄ ≥ 1: each inventory stays in ``{−Q̄, …, Q̄}`` (no bid quote at Q̄, no ask quote at −Q̄).
    spread_bounds : (float, float), default (0, inf)
        ``[δ_min, δ_max]`` for both sides of every option; ``δ_min`` may be ``-inf`` and ``δ_max``
        ``inf`` (unbounded spreads, used by the closed-form check) when ``temperature == 0``.
    temperature : float, default 0
        γ ≥ 0, the entropy weight. γ > 0 gives the paper's Gibbs policy, which is only normalizable
        on a bounded spread interval, so both bounds must then be finite.

    Attributes
    ----------
    All parameters above under the same names, plus the derived read-only ``n_options`` and the
    helpers ``intensity_bid_array()``, ``intensity_ask_array()``, ``decay_array()``,
    ``noise_cov_array()``, ``mid_prices(spot_values, t)`` and ``terminal_coefficients()``.

    Raises
    ------
    ValueError
        Non-positive spot/volatility/horizon/strikes/intensities/decay, maturities not after the
        horizon, mismatched lengths, a non-symmetric or non-PSD ``noise_cov``, negative
        ψ0/φ/γ, ``max_inventory < 1``, empty/inverted/NaN spread bounds, or γ > 0 with an unbounded
        spread interval; booleans and strings where numbers are expected; any parameter beyond
        :data:`MAX_MAGNITUDE` = 1e12 in its unit (``max_inventory`` beyond 1e9), with the reason of the
        bound. Each message names the parameter, its value and the fix.
    """

    spot: float
    volatility: float
    strikes: tuple
    maturities: tuple
    horizon: float
    intensity_bid: float | tuple
    intensity_ask: float | tuple
    decay: float | tuple
    _: KW_ONLY
    max_inventory: int
    noise_cov: tuple | None = None
    terminal_penalty: float = 0.0
    risk_aversion: float = 0.0
    spread_bounds: tuple = (0.0, math.inf)
    temperature: float = 0.0

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        def positive(name, value, fix):
            return _bounded(name, check_positive(name, value, fix=fix), fix)

        def nonnegative(name, value, fix):
            return _bounded(name, check_nonnegative(name, value, fix=fix), fix)

        put("spot", positive("spot", self.spot, "pass the underlying price, e.g. spot=100"))
        put("volatility", positive("volatility", self.volatility,
                                   "pass σ per square-root time unit, e.g. 0.02 per sqrt(day)"))
        put("horizon", positive("horizon", self.horizon, "pass the trading horizon T, e.g. horizon=10 (days)"))
        # --- strikes / maturities: same length n >= 1, maturities after the horizon ---
        strikes = self._sequence("strikes", self.strikes, "pass e.g. strikes=(100, 105)")
        put("strikes", tuple(positive(f"strikes[{i}]", k, "strikes must be positive prices")
                             for i, k in enumerate(strikes)))
        n = len(self.strikes)
        maturities = self._sequence("maturities", self.maturities, f"pass {n} maturities after the horizon")
        if len(maturities) != n:
            raise ValueError(f"maturities must have one entry per strike (strikes has {n}), got "
                             f"{len(maturities)}: {self.maturities!r}; pass {n} maturities or {len(maturities)} "
                             "strikes")
        checked = []
        for i, m in enumerate(maturities):
            m = _bounded(f"maturities[{i}]", check_real(f"maturities[{i}]", m,
                                                        fix="pass option maturities in the horizon's time unit"),
                         "pass option maturities in the horizon's time unit")
            if not m > self.horizon:
                raise ValueError(f"maturities[{i}] must be > horizon={self.horizon!r} (the options must "
                                 f"outlive the trading period), got {m!r}; pass a later maturity or a "
                                 "shorter horizon")
            checked.append(m)
        put("maturities", tuple(checked))
        # --- order-flow parameters ---
        put("intensity_bid", _as_per_option("intensity_bid", self.intensity_bid, n,
                                            "pass fills per time unit at zero spread, e.g. 100 (per day)"))
        put("intensity_ask", _as_per_option("intensity_ask", self.intensity_ask, n,
                                            "pass fills per time unit at zero spread, e.g. 100 (per day)"))
        put("decay", _as_per_option("decay", self.decay, n,
                                    "pass the intensity decay k > 0 (1/k is the myopic spread), e.g. 1.5"))
        # --- noise covariance ΣΣᵀ: symmetric PSD n×n ---
        put("noise_cov", self._check_noise_cov(self.noise_cov, n))
        put("terminal_penalty", nonnegative("terminal_penalty", self.terminal_penalty,
                                            "pass ψ0 >= 0, e.g. 0.1 (0 disables the penalty)"))
        put("risk_aversion", nonnegative("risk_aversion", self.risk_aversion, "pass φ >= 0 (0 is the paper's model)"))
        put("max_inventory", check_int("max_inventory", self.max_inventory, minimum=1, maximum=MAX_INVENTORY,
                                       fix="pass the inventory bound Q̄ >= 1, e.g. max_inventory=30 (at most 1e9: "
                                           "inventories are float64 in the simulator)"))
        put("temperature", nonnegative("temperature", self.temperature,
                                       "pass γ >= 0 (0 gives the deterministic optimal quotes)"))
        bounds = check_spread_bounds(self.spread_bounds, self.temperature)
        for side, value in zip(("low", "high"), bounds):
            if math.isfinite(value):
                _bounded(f"spread_bounds {side} end", value, "pass spread_bounds=(low, high), e.g. (0.0, 4.0)")
        put("spread_bounds", bounds)

    # ------------------------------------------------------------------ validation helpers
    @staticmethod
    def _sequence(name, value, fix):
        if isinstance(value, (str, bytes)) or np.ndim(value) != 1:
            raise ValueError(f"{name} must be a one-dimensional sequence, got {value!r}; {fix}")
        items = tuple(np.asarray(value).tolist())
        if not items:
            raise ValueError(f"{name} must not be empty, got {value!r}; {fix}")
        return items

    @staticmethod
    def _check_noise_cov(value, n):
        if value is None:
            return tuple(tuple(0.0 for _ in range(n)) for _ in range(n))
        if isinstance(value, (bool, np.bool_, str, bytes)) or np.asarray(value).dtype.kind in "bUSO":
            raise ValueError(f"noise_cov must be a numeric {n}x{n} matrix, got {value!r}; pass ΣΣᵀ as "
                             "nested lists of numbers")
        try:
            matrix = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"noise_cov must be a numeric {n}x{n} matrix, got {value!r}; pass ΣΣᵀ as "
                             "nested lists") from None
        if matrix.ndim == 0 and n == 1:
            matrix = matrix.reshape(1, 1)
        if matrix.shape != (n, n):
            raise ValueError(f"noise_cov must have shape ({n}, {n}), got shape {matrix.shape}; pass the "
                             "n×n covariance ΣΣᵀ of the mid-price shocks")
        if not np.all(np.isfinite(matrix)):
            raise ValueError(f"noise_cov must be finite, got {value!r}; remove NaN/inf entries")
        if np.max(np.abs(matrix)) > MAX_MAGNITUDE**2:
            raise ValueError(f"noise_cov entries must be <= {MAX_MAGNITUDE**2:g} (price² per time unit; products "
                             f"with the inventories must stay inside the float64 range), got {value!r}; pass "
                             "ΣΣᵀ in price² per time unit")
        scale = max(1.0, float(np.max(np.abs(matrix))))
        if not np.allclose(matrix, matrix.T, rtol=0.0, atol=1e-12 * scale):
            raise ValueError(f"noise_cov must be symmetric, got {matrix.tolist()!r}; pass ΣΣᵀ, e.g. "
                             "(M + M.T)/2 of your estimate")
        eigenvalues = np.linalg.eigvalsh(matrix)
        if eigenvalues.min() < -1e-12 * scale:
            raise ValueError(f"noise_cov must be positive semidefinite, got smallest eigenvalue "
                             f"{eigenvalues.min():.3g} for {matrix.tolist()!r}; pass a covariance ΣΣᵀ")
        matrix = 0.5 * (matrix + matrix.T)
        return tuple(tuple(float(x) for x in row) for row in matrix)


    # ------------------------------------------------------------------ derived quantities
    @property
    def n_options(self) -> int:
        """Number n of options quoted."""
        return len(self.strikes)

    def _per_option(self, value) -> np.ndarray:
        if isinstance(value, tuple):
            return np.array(value, dtype=float)
        return np.full(self.n_options, float(value))

    def intensity_bid_array(self) -> np.ndarray:
        """``A^b_i`` as a float array of shape ``(n_options,)`` (a fresh copy)."""
        return self._per_option(self.intensity_bid)

    def intensity_ask_array(self) -> np.ndarray:
        """``A^a_i`` as a float array of shape ``(n_options,)`` (a fresh copy)."""
        return self._per_option(self.intensity_ask)

    def decay_array(self) -> np.ndarray:
        """``k_i`` as a float array of shape ``(n_options,)`` (a fresh copy)."""
        return self._per_option(self.decay)

    def noise_cov_array(self) -> np.ndarray:
        """``ΣΣᵀ`` as a float array of shape ``(n_options, n_options)`` (a fresh copy)."""
        return np.array(self.noise_cov, dtype=float)

    def mid_prices(self, spot_values, t) -> np.ndarray:
        """Black–Scholes mids ``p_i(S, t)`` of the calls (zero rates), shape ``spot.shape + (n,)``.

        Parameters
        ----------
        spot_values : float or array
            Underlying prices S.
        t : float or array broadcastable with ``spot_values``
            Calendar time (same unit as ``horizon``); the time to maturity is ``T_i − t``.

        Uses :func:`pdecore.european.bs_price` (one source of truth for Black–Scholes prices).
        """
        spot = np.asarray(spot_values, dtype=float)[..., None]
        t = np.asarray(t, dtype=float)[..., None]
        strikes = np.asarray(self.strikes)
        tau = np.asarray(self.maturities) - t
        from pdecore.european import bs_price

        return np.asarray(bs_price("call", spot, strikes, tau, self.volatility, 0.0), dtype=float)

    def terminal_coefficients(self, *, n_quad: int = 96) -> np.ndarray:
        """``c_i = ψ0 E[P_iT²] = ψ0 (E[p_i(S_T, T)²] + (ΣΣᵀ)_ii T)``, shape ``(n_options,)``.

        For policies that depend only on (t, Q), ``P_T`` and ``Q_T`` are independent, so the terminal
        penalty ``ψ0 Σ (P_iT Q_iT)²`` has conditional mean ``Σ c_i Q_iT²`` (SPEC section 5).
        ``E[p_i(S_T)²]`` is integrated over the lognormal ``S_T = S_0 exp(σ√T Z − σ²T/2)`` with
        ``n_quad``-point Gauss–Hermite quadrature (the integrand is smooth in Z, so 96 points give
        ~machine precision for the paper-like defaults).
        """
        n_quad = check_int("n_quad", n_quad, minimum=8, fix="pass e.g. n_quad=96")
        nodes, weights = np.polynomial.hermite_e.hermegauss(n_quad)  # weight exp(−z²/2)
        weights = weights / math.sqrt(2.0 * math.pi)
        scale = self.volatility * math.sqrt(self.horizon)
        spot_T = self.spot * np.exp(scale * nodes - 0.5 * scale**2)
        prices = self.mid_prices(spot_T, self.horizon)  # (n_quad, n)
        second_moment = weights @ prices**2
        noise_variance = np.diag(self.noise_cov_array()) * self.horizon
        return self.terminal_penalty * (second_moment + noise_variance)

    def resolve_terminal_coefficients(self, override=None) -> np.ndarray:
        """``override`` checked as n finite coefficients ``c_i >= 0`` (named ``terminal_coeffs``), or
        :meth:`terminal_coefficients` when it is None: the ``terminal_coeffs`` argument of both solvers."""
        n = self.n_options
        if override is None:
            return self.terminal_coefficients()
        coeffs = check_finite_array("terminal_coeffs", override, ndim=1,
                                    fix=f"pass {n} coefficients c_i >= 0, one per option")
        if coeffs.shape != (n,) or np.any(coeffs < 0):
            raise ValueError(f"terminal_coeffs must be {n} finite numbers >= 0, got {override!r}; pass one "
                             "coefficient c_i >= 0 per option")
        return coeffs

    # ------------------------------------------------------------------ defaults
    @classmethod
    def paper_defaults(cls, n_options: int = 1, **overrides) -> "MarketMakingModel":
        """SPEC section 5's paper-like defaults, **in days**; keyword ``overrides`` replace any field.

        ``spot=100``, ``volatility=0.02`` per sqrt(day), ``horizon=10`` days, call strikes
        ``(100,)``, ``(100, 105)`` or ``(95, 100, 105)``, maturities 30 days (20 days of life left
        at the horizon), ``intensity_bid = intensity_ask = 100`` fills per day, ``decay=1.5``
        (myopic spread 1/k ≈ 0.667), ``terminal_penalty=0.1``, ``temperature=0.1``,
        ``risk_aversion=0``, ``spread_bounds=(0, 4)`` (the Gibbs density needs a bounded interval;
        at δ = 4 the fill rate is 100·e⁻⁶ ≈ 0.25 per day), ``noise_cov`` = shocks of 0.05 price
        units per sqrt(day) with correlation 0.5 between options.

        ``max_inventory`` is 100 / 60 / 30 for n = 1 / 2 / 3. Without inventory control the
        inventory is a random walk with about ``2 A e⁻¹ ≈ 74`` fills per day, so its s.d. over 10
        days is ≈ 27 lots; the optimal policy mean-reverts, so ±100 (n = 1) and ±60 (n = 2) are
        rarely reached. For n = 3 the bound is a compromise with the grid size (61³ states).
        """
        n_options = check_int("n_options", n_options, minimum=1, maximum=3,
                              fix="paper_defaults covers 1, 2 or 3 options; build larger models directly")
        strikes = {1: (100.0,), 2: (100.0, 105.0), 3: (95.0, 100.0, 105.0)}[n_options]
        shock_sd, correlation = 0.05, 0.5
        cov = np.full((n_options, n_options), correlation * shock_sd**2)
        np.fill_diagonal(cov, shock_sd**2)
        fields = dict(
            spot=100.0, volatility=0.02, strikes=strikes, maturities=(30.0,) * n_options,
            horizon=10.0, intensity_bid=100.0, intensity_ask=100.0, decay=1.5,
            noise_cov=cov.tolist(), terminal_penalty=0.1, risk_aversion=0.0,
            max_inventory={1: 100, 2: 60, 3: 30}[n_options], spread_bounds=(0.0, 4.0),
            temperature=0.1,
        )
        unknown = set(overrides) - set(fields)
        if unknown:
            raise ValueError(f"paper_defaults got unknown field(s) {sorted(unknown)}; valid fields are "
                             f"{sorted(fields)}")
        fields.update(overrides)
        return cls(**fields)
