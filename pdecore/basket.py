"""The American geometric-basket put in d dimensions through its exact 1-D equivalent (SPEC section 7).

Derivation. Under the risk-neutral measure the assets follow ``dX_i = (ρ − δ_i) X_i dt + σ_i X_i dW_i``
with ``d⟨W_i, W_j⟩ = c_ij dt``. The basket ``G = Π_k X_k^{a}`` (the paper's ``a = 1/√d``) has, by Itô,

.. math::

    d\\log G = a Σ_i (ρ − δ_i − σ_i²/2)\\,dt + a Σ_i σ_i\\,dW_i,

a Brownian motion with drift ``μ_G = a Σ_i (ρ − δ_i − σ_i²/2)`` and variance rate
``σ_G² = a² Σ_ij σ_i σ_j c_ij``. So ``G`` is a GBM ``dG = (ρ − q_G) G dt + σ_G G dB`` with

.. math::

    q_G = ρ − μ_G − σ_G²/2,

and since the payoff ``(Γ − G)^+`` and the filtration's information relevant to it only involve
``G`` (a Markov process on its own), the d-dimensional American (and Bermudan) put *is* the 1-D put on
``G``: same price, and the exercise region ``{x : Π x_k^a ≤ b(t)}`` with ``b`` the 1-D boundary.

The paper's parameters (``δ_i = ρ − (Σσ_j²/d²)(i − ½) − c/√d``, independent W, ``a = 1/√d``) give
``Σ_i(ρ − δ_i) = Σσ_j²/2 + c√d``, hence ``μ_G = c`` exactly and ``σ_G² = Σσ_i²/d``; for d a multiple
of 40, ``σ_G² = 0.2136`` (``σ_G = 0.462169``), ``q_G = ρ − c − σ_G²/2 = 0.2932`` (main case), and the
variant ``σ_G² = 0.02136``, ``q_G = 0.02932``. The prices (:func:`basket_reference`, ``precision="high"``):
American 6.545208 (SPEC's QuantLib QD+ value 6.545213 agrees to 5e-6, inside the solver's error
estimate 6e-6), European 3.565005; variant 10.815646 (SPEC 10.815654, estimate 8e-6) and 9.648890.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pdecore.checks import check_choice, check_int, check_real
from pdecore.european import bs_price
from pdecore.params import AmericanOption, BlackScholes

#: The paper's two cases (SPEC section 7): rate ρ, volatility scale, log-drift constant c, strike Γ.
BASKET_CASES = {"main": {"rate": 0.6, "volatility_scale": 1.0, "drift_constant": 0.2, "strike": 95.0},
                "variant": {"rate": 0.06, "volatility_scale": 1.0 / math.sqrt(10.0), "drift_constant": 0.02,
                            "strike": 110.0}}
#: SPEC section 7's quoted prices (QuantLib QD+ high precision), checked by the tests, not trusted.
SPEC_PRICES = {"main": {"american": 6.545213, "european": 3.565005},
               "variant": {"american": 10.815654, "european": 9.648890}}


def paper_volatilities(dimension: int, scale: float = 1.0) -> np.ndarray:
    """``σ_i = scale · min{0.04 ((i−1) mod 40), 1.6 − 0.04 ((i−1) mod 40)}``, ``i = 1..d`` (float64)."""
    dimension = check_int("dimension", dimension, minimum=1, fix="pass the number of assets, e.g. 40")
    k = np.arange(dimension) % 40
    return scale * np.minimum(0.04 * k, 1.6 - 0.04 * k)


def paper_dividends(volatilities: np.ndarray, rate: float, drift_constant: float) -> np.ndarray:
    """``δ_i = ρ − (Σ_j σ_j²/d²)(i − ½) − c/√d`` (SPEC section 7), which makes ``log G`` drift at ``c``."""
    volatilities = np.asarray(volatilities, dtype=float)
    d = volatilities.size
    i = np.arange(1, d + 1)
    return rate - volatilities.dot(volatilities) / d**2 * (i - 0.5) - drift_constant / math.sqrt(d)


def equicorrelation(dimension: int, correlation: float) -> np.ndarray:
    """The ``d × d`` matrix with 1 on the diagonal and ``correlation`` elsewhere."""
    matrix = np.full((dimension, dimension), float(correlation))
    np.fill_diagonal(matrix, 1.0)
    return matrix


def geometric_equivalent(volatilities, dividends, rate: float, *, exponent: float | None = None,
                         correlation=None) -> BlackScholes:
    """The GBM of ``G = Π X_k^a`` (module docstring): ``BlackScholes(σ_G, ρ, q_G)``.

    Parameters
    ----------
    volatilities, dividends : array (d,)
        ``σ_i ≥ 0`` and ``δ_i``.
    rate : float
        ``ρ``.
    exponent : float, optional
        ``a``; default ``1/√d`` (the paper's).
    correlation : float or array (d, d), optional
        ``c_ij`` (a float: equicorrelation); default independent.
    """
    sigma = np.asarray(volatilities, dtype=float)
    delta = np.asarray(dividends, dtype=float)
    if sigma.ndim != 1 or sigma.shape != delta.shape or sigma.size == 0:
        raise ValueError(f"volatilities and dividends must be 1-D arrays of the same length d >= 1, got shapes "
                         f"{sigma.shape} and {delta.shape}")
    if np.any(~np.isfinite(sigma)) or np.any(sigma < 0) or np.any(~np.isfinite(delta)):
        raise ValueError("volatilities must be finite and >= 0 and dividends finite; fix the offending entries")
    rate = check_real("rate", rate, fix="pass a finite rate, e.g. 0.6")
    d = sigma.size
    a = 1.0 / math.sqrt(d) if exponent is None else check_real("exponent", exponent, fix="pass e.g. 1/sqrt(d)")
    if correlation is None:
        matrix = np.eye(d)
    elif np.ndim(correlation) == 0:
        matrix = equicorrelation(d, float(correlation))
    else:
        matrix = np.asarray(correlation, dtype=float)
    if matrix.shape != (d, d) or not np.allclose(matrix, matrix.T) or np.any(np.abs(np.diag(matrix) - 1) > 1e-12):
        raise ValueError(f"correlation must be a symmetric ({d}, {d}) matrix with unit diagonal (or a float), "
                         f"got shape {matrix.shape}")
    variance = a * a * float(sigma @ matrix @ sigma)
    if not variance > 0.0:
        raise ValueError("the basket has zero volatility (all σ_i = 0 or perfectly hedged correlations); "
                         "it is deterministic and needs no PDE")
    log_drift = a * float(np.sum(rate - delta - 0.5 * sigma**2))
    return BlackScholes(volatility=math.sqrt(variance), rate=rate, dividend=rate - log_drift - 0.5 * variance)


def paper_equivalent(dimension: int, case: str = "main", correlation: float = 0.0) -> tuple[BlackScholes,
                                                                                             AmericanOption, float]:
    """``(model of G, put on G, G_0 = 100)`` for the paper's basket in ``dimension`` assets."""
    check_choice("case", case, tuple(BASKET_CASES), fix="use case='main' or case='variant'")
    p = BASKET_CASES[case]
    sigma = paper_volatilities(dimension, p["volatility_scale"])
    model = geometric_equivalent(sigma, paper_dividends(sigma, p["rate"], p["drift_constant"]), p["rate"],
                                 correlation=correlation)
    return model, AmericanOption("put", p["strike"], 1.0), 100.0


@dataclass(frozen=True)
class BasketReference:
    """Prices and exercise boundary of the basket put from its 1-D equivalent.

    Attributes
    ----------
    american, european : float
        Prices at ``G_0``.
    american_error_estimate : float
        The PDE solver's error estimate of ``american``.
    times, boundary : arrays
        ``b(t)`` on the solver's time grid: exercise iff ``G ≤ b(t)``.
    model, option, spot :
        The 1-D problem.
    """

    american: float
    european: float
    american_error_estimate: float
    times: np.ndarray
    boundary: np.ndarray
    model: BlackScholes
    option: AmericanOption
    spot: float
    exponent: float

    def boundary_at(self, t) -> np.ndarray:
        """``b(t)`` by linear interpolation on the solver's grid (NaN where there is no exercise)."""
        return np.interp(np.asarray(t, dtype=float), self.times, self.boundary)

    def exercise(self, t: float, log_prices) -> np.ndarray:
        """The boundary mapped back to the basket: exercise iff ``a Σ_k log x_k ≤ log b(t)``.

        ``log_prices`` has the assets on its last axis; returns a bool array of the other axes.
        """
        level = float(self.boundary_at(t))
        log_g = self.exponent * np.sum(np.asarray(log_prices, dtype=float), axis=-1)
        if not (np.isfinite(level) and level > 0.0):  # no exercise region at t
            return np.zeros(np.shape(log_g), dtype=bool)
        return log_g <= math.log(level)


def basket_reference(dimension: int, case: str = "main", *, correlation: float = 0.0,
                     precision: str = "high") -> BasketReference:
    """Solve the basket's 1-D equivalent with :func:`pdecore.american.solve_american` (VI, penalty method).

    Returns the American and European prices at ``G_0 = 100`` and the exercise boundary in ``G``.
    Cost: about a second at ``precision="high"``.
    """
    from pdecore.american import solve_american

    model, option, spot = paper_equivalent(dimension, case, correlation)
    result = solve_american(model, option, spot=spot, precision=precision)
    european = bs_price("put", spot, option.strike, option.maturity, model.volatility, model.rate, model.dividend)
    return BasketReference(american=float(result.price(spot)), european=float(european),
                           american_error_estimate=float(result.price_error_estimate),
                           times=np.asarray(result.times, dtype=float), boundary=np.asarray(result.boundary, dtype=float),
                           model=model, option=option, spot=spot, exponent=1.0 / math.sqrt(dimension))


__all__ = ["BASKET_CASES", "SPEC_PRICES", "BasketReference", "basket_reference", "equicorrelation",
           "geometric_equivalent", "paper_dividends", "paper_equivalent", "paper_volatilities"]
