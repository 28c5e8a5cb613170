"""Frozen, validated *model* parameters shared by the PDE solvers and the RL simulators.

Numerical settings (grid sizes, penalty, tolerances) are deliberately kept out of these classes: a
model says what is being priced, never how (QuantLib's ``FdmSolverDesc`` vs ``FdmSchemeDesc``).
The RL simulators in :mod:`rl` take exactly these objects, so the PDE oracle and the learner can never
disagree about the problem they solve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pdecore.checks import check_choice, check_nonnegative, check_positive, check_range


# Model bounds: beyond them a parameter is meaningless and only overflows (refused by name). Annualized
# volatilities and rates of 10000 %, strikes of 1e15 currency units and horizons of 1000 years are far
# outside any market yet leave every solver in double precision.
MAX_VOLATILITY = 100.0
MAX_RATE = 100.0
MAX_STRIKE = 1e15
MAX_MATURITY = 1000.0


#: Largest temperature λ any engine accepts: past it the entropy term λ·log(1 + e^{κ(g − V)/λ}) is
#: λ·log 2 + κ(g − V)/2 to double precision, a constant source of order λ that swamps every price.
MAX_TEMPERATURE = 1e10
#: Largest finite penalty κ any engine accepts (κΔτ beyond double precision's use; None solves the
#: variational inequality itself).
MAX_PENALTY = 1e10


def check_temperature(value, *, fix: str) -> float:
    """``temperature`` in ``[0, MAX_TEMPERATURE]``, or a ValueError naming it."""
    value = check_nonnegative("temperature", value, fix=fix)
    if value > MAX_TEMPERATURE:
        raise ValueError(f"temperature must be <= {MAX_TEMPERATURE:g}, got {value!r}; {fix} (beyond it the entropy "
                         "term is a constant of order λ that swamps every value)")
    return value


def positive_at_most(name: str, value, maximum: float, *, fix: str) -> float:
    """``check_positive`` (message ``name must be > 0``) and then ``value <= maximum``."""
    value = check_positive(name, value, fix=fix)
    if value > maximum:
        raise ValueError(f"{name} must be <= {maximum:g}, got {value!r}; {fix}")
    return value


@dataclass(frozen=True, slots=True)
class BlackScholes:
    """Risk-neutral Black–Scholes dynamics ``dS = (r − q) S dt + σ S dW`` (SPEC section 1).

    Parameters
    ----------
    volatility : float
        σ > 0, annualized.
    rate : float
        Risk-free rate r (continuously compounded); may be negative but must be finite.
    dividend : float, default 0
        Continuous dividend yield q.
    """

    volatility: float
    rate: float
    dividend: float = 0.0

    def __post_init__(self) -> None:
        # bounds: 10000 %/year is beyond any market; larger values only overflow (e^{rT}, σ²S²)
        object.__setattr__(self, "volatility", positive_at_most(
            "volatility", self.volatility, MAX_VOLATILITY, fix="pass an annualized volatility such as 0.2 (at most 100)"))
        object.__setattr__(self, "rate", check_range(
            "rate", self.rate, -MAX_RATE, MAX_RATE,
            fix="pass a finite continuously compounded rate such as 0.05 (|rate| <= 100)"))
        object.__setattr__(self, "dividend", check_range(
            "dividend", self.dividend, -MAX_RATE, MAX_RATE,
            fix="pass a finite dividend yield such as 0.0 (|dividend| <= 100)"))

    @property
    def carry(self) -> float:
        """Risk-neutral drift of log-returns' level, ``r − q``."""
        return self.rate - self.dividend


@dataclass(frozen=True, slots=True)
class AmericanOption:
    """An American put or call with payoff ``(K − S)^+`` or ``(S − K)^+``.

    Parameters
    ----------
    kind : {"put", "call"}
    strike : float
        K > 0 (the stopping paper writes Γ).
    maturity : float
        T > 0 in years.
    """

    kind: str
    strike: float
    maturity: float

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str):  # an array would make `in` elementwise (ambiguous truth value)
            raise ValueError(f"kind must be the string 'put' or 'call', got {self.kind!r} of type "
                             f"{type(self.kind).__name__}; use kind=\"put\" or kind=\"call\"")
        check_choice("kind", self.kind, ("put", "call"), fix='use kind="put" or kind="call"')
        object.__setattr__(self, "strike", positive_at_most("strike", self.strike, MAX_STRIKE,
                                                            fix="pass a positive strike such as 40 (at most 1e15)"))
        object.__setattr__(self, "maturity", positive_at_most(
            "maturity", self.maturity, MAX_MATURITY, fix="pass a positive maturity in years such as 1 (at most 1000)"))

    def payoff(self, spot):
        """Exercise value ``g(S)``, vectorized over NumPy arrays."""
        import numpy as np

        spot = np.asarray(spot, dtype=float)
        if self.kind == "put":
            return np.maximum(self.strike - spot, 0.0)
        return np.maximum(spot - self.strike, 0.0)


@dataclass(frozen=True, slots=True)
class MertonCosts:
    """Merton's log-utility portfolio problem with proportional transaction costs (SPEC section 4).

    Bond ``dB = r B dt``, stock ``dS = α S dt + σ S dW``, a cost θ on every trade, log utility of the
    liquidated wealth at T. The state is the bond/stock ratio ``x = B/S``.

    Parameters
    ----------
    drift : float
        α, the stock's physical drift.
    rate : float
        r, the bond rate.
    volatility : float
        σ > 0.
    cost : float
        θ in [0, 1), the proportional cost.
    maturity : float
        T > 0.

    Raises
    ------
    ValueError
        If the frictionless Merton fraction ``π_M = (α − r)/σ²`` is not positive: the optimal position
        then holds no stock and the ratio B/S is undefined.
    """

    drift: float
    rate: float
    volatility: float
    cost: float
    maturity: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "drift", check_range("drift", self.drift, -MAX_RATE, MAX_RATE,
                                                      fix="pass e.g. drift=0.168 (|drift| <= 100)"))
        object.__setattr__(self, "rate", check_range("rate", self.rate, -MAX_RATE, MAX_RATE,
                                                     fix="pass e.g. rate=0.008 (|rate| <= 100)"))
        object.__setattr__(self, "volatility", positive_at_most("volatility", self.volatility, MAX_VOLATILITY,
                                                                fix="pass e.g. volatility=0.3 (at most 100)"))
        object.__setattr__(self, "cost", check_range("cost", self.cost, 0.0, 1.0, closed_high=False,
                                                     fix="pass a proportional cost in [0, 1) such as 0.005"))
        object.__setattr__(self, "maturity", positive_at_most("maturity", self.maturity, MAX_MATURITY,
                                                              fix="pass a positive horizon in years (at most 1000)"))
        # (α − r)/σ² can overflow to ±inf or nan (σ = 1e-200, α = 1e308, r = −1e308) without an exception
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            fraction = np.float64(self.drift - self.rate) / np.float64(self.volatility) ** 2
        if not np.isfinite(fraction):
            raise ValueError(
                f"drift={self.drift!r}, rate={self.rate!r}, volatility={self.volatility!r} give a Merton fraction "
                f"(drift - rate)/volatility**2 = {float(fraction)!r} that is not a finite number; pass a market "
                "with |drift - rate|/volatility**2 well inside double precision (e.g. drift=0.168, rate=0.008, "
                "volatility=0.3)")
        if not self.merton_fraction > 0.0:
            raise ValueError(
                f"drift, rate and volatility give a Merton fraction (drift - rate)/volatility**2 = "
                f"{self.merton_fraction!r} <= 0, where the bond/stock ratio is undefined; "
                "choose drift > rate")

    @property
    def merton_fraction(self) -> float:
        """Frictionless optimal stock weight ``π_M = (α − r)/σ²``."""
        return (self.drift - self.rate) / self.volatility**2

    @property
    def merton_ratio(self) -> float:
        """Frictionless optimal bond/stock ratio ``x_M = (1 − π_M)/π_M``."""
        pi = self.merton_fraction
        return (1.0 - pi) / pi

    @property
    def merton_growth_rate(self) -> float:
        """Frictionless optimal log-growth rate ``r + (α − r)²/(2σ²)`` per year."""
        return self.rate + (self.drift - self.rate) ** 2 / (2.0 * self.volatility**2)
