"""American option cases from QuantLib's own test suite (``test-suite/americanoption.cpp``).

Each row is ``(kind, strike, spot, dividend, rate, maturity, volatility, published)``. The published
values are those of the approximations being tested there (Barone-Adesi–Whaley/Haug 1998 p. 24,
Bjerksund–Stensland/Haug 1998 p. 27 and VBA code, Ju 1999 "An approximate formula for pricing American
options", J. Derivatives, exhibits 3 and 6), i.e. approximations themselves: the tests here re-price
every row with QuantLib's ``QdFpAmericanEngine`` (high-precision scheme) and use that as the truth,
with the source's tolerance (``TOLERANCES``). The greeks grid of ``testFdGreeks`` (spot 100, 540
contracts) is rebuilt by :func:`greeks_grid_cases`.
"""

from __future__ import annotations

import itertools

# QuantLib's tolerances for each table (absolute, in price units)
TOLERANCES = {"barone_adesi_whaley": 3e-3, "bjerksund_stensland": 5e-5, "ju": 1e-3}

BARONE_ADESI_WHALEY = [
    ("call", 100.0, 90.0, 0.10, 0.10, 0.10, 0.15, 0.0206),
    ("call", 100.0, 100.0, 0.10, 0.10, 0.10, 0.15, 1.8771),
    ("call", 100.0, 110.0, 0.10, 0.10, 0.10, 0.15, 10.0089),
    ("call", 100.0, 90.0, 0.10, 0.10, 0.10, 0.25, 0.3159),
    ("call", 100.0, 100.0, 0.10, 0.10, 0.10, 0.25, 3.1280),
    ("call", 100.0, 110.0, 0.10, 0.10, 0.10, 0.25, 10.3919),
    ("call", 100.0, 90.0, 0.10, 0.10, 0.10, 0.35, 0.9495),
    ("call", 100.0, 100.0, 0.10, 0.10, 0.10, 0.35, 4.3777),
    ("call", 100.0, 110.0, 0.10, 0.10, 0.10, 0.35, 11.1679),
    ("call", 100.0, 90.0, 0.10, 0.10, 0.50, 0.15, 0.8208),
    ("call", 100.0, 100.0, 0.10, 0.10, 0.50, 0.15, 4.0842),
    ("call", 100.0, 110.0, 0.10, 0.10, 0.50, 0.15, 10.8087),
    ("call", 100.0, 90.0, 0.10, 0.10, 0.50, 0.25, 2.7437),
    ("call", 100.0, 100.0, 0.10, 0.10, 0.50, 0.25, 6.8015),
    ("call", 100.0, 110.0, 0.10, 0.10, 0.50, 0.25, 13.0170),
    ("call", 100.0, 90.0, 0.10, 0.10, 0.50, 0.35, 5.0063),
    ("call", 100.0, 100.0, 0.10, 0.10, 0.50, 0.35, 9.5106),
    ("call", 100.0, 110.0, 0.10, 0.10, 0.50, 0.35, 15.5689),
    ("put", 100.0, 90.0, 0.10, 0.10, 0.10, 0.15, 10.0000),
    ("put", 100.0, 100.0, 0.10, 0.10, 0.10, 0.15, 1.8770),
    ("put", 100.0, 110.0, 0.10, 0.10, 0.10, 0.15, 0.0410),
    ("put", 100.0, 90.0, 0.10, 0.10, 0.10, 0.25, 10.2533),
    ("put", 100.0, 100.0, 0.10, 0.10, 0.10, 0.25, 3.1277),
    ("put", 100.0, 110.0, 0.10, 0.10, 0.10, 0.25, 0.4562),
    ("put", 100.0, 90.0, 0.10, 0.10, 0.10, 0.35, 10.8787),
    ("put", 100.0, 100.0, 0.10, 0.10, 0.10, 0.35, 4.3777),
    ("put", 100.0, 110.0, 0.10, 0.10, 0.10, 0.35, 1.2402),
    ("put", 100.0, 90.0, 0.10, 0.10, 0.50, 0.15, 10.5595),
    ("put", 100.0, 100.0, 0.10, 0.10, 0.50, 0.15, 4.0842),
    ("put", 100.0, 110.0, 0.10, 0.10, 0.50, 0.15, 1.0822),
    ("put", 100.0, 90.0, 0.10, 0.10, 0.50, 0.25, 12.4419),
    ("put", 100.0, 100.0, 0.10, 0.10, 0.50, 0.25, 6.8014),
    ("put", 100.0, 110.0, 0.10, 0.10, 0.50, 0.25, 3.3226),
    ("put", 100.0, 90.0, 0.10, 0.10, 0.50, 0.35, 14.6945),
    ("put", 100.0, 100.0, 0.10, 0.10, 0.50, 0.35, 9.5104),
    ("put", 100.0, 110.0, 0.10, 0.10, 0.50, 0.35, 5.8823),
    ("put", 100.0, 100.0, 0.00, 0.00, 0.50, 0.15, 4.2294),
]

BJERKSUND_STENSLAND = [
    ("call", 40.0, 42.0, 0.08, 0.04, 0.75, 0.35, 5.2704),
    ("put", 40.0, 36.0, 0.00, 0.06, 1.00, 0.20, 4.4531),
    ("call", 100.0, 100.0, 0.05, 0.05, 1.0, 0.0021, 0.08032314),   # ATM, very small volatility
    ("call", 100.0, 100.0, 0.05, 0.05, 1.0, 0.0001, 0.003860656),
    ("call", 100.0, 99.99, 0.05, 0.05, 1.0, 0.0001, 0.00081),
    ("call", 100.0, 110.0, 0.05, 0.05, 1.0, 0.0001, 10.0),        # ITM, very small volatility
    ("put", 110.0, 100.0, 0.05, 0.05, 1.0, 0.0001, 10.0),
    ("put", 100.0, 110.0, 0.05, 0.05, 1.0, 10.0, 94.89543),       # very large volatility
]

JU = [  # exhibit 3: short-dated puts; exhibit 6: long-dated calls with dividends
    ("put", 35.0, 40.0, 0.0, 0.0488, 0.0833, 0.2, 0.006),
    ("put", 35.0, 40.0, 0.0, 0.0488, 0.3333, 0.2, 0.201),
    ("put", 35.0, 40.0, 0.0, 0.0488, 0.5833, 0.2, 0.433),
    ("put", 40.0, 40.0, 0.0, 0.0488, 0.0833, 0.2, 0.851),
    ("put", 40.0, 40.0, 0.0, 0.0488, 0.3333, 0.2, 1.576),
    ("put", 40.0, 40.0, 0.0, 0.0488, 0.5833, 0.2, 1.984),
    ("put", 45.0, 40.0, 0.0, 0.0488, 0.0833, 0.2, 5.000),
    ("put", 45.0, 40.0, 0.0, 0.0488, 0.3333, 0.2, 5.084),
    ("put", 45.0, 40.0, 0.0, 0.0488, 0.5833, 0.2, 5.260),
    ("put", 35.0, 40.0, 0.0, 0.0488, 0.0833, 0.3, 0.078),
    ("put", 35.0, 40.0, 0.0, 0.0488, 0.3333, 0.3, 0.697),
    ("put", 35.0, 40.0, 0.0, 0.0488, 0.5833, 0.3, 1.218),
    ("put", 40.0, 40.0, 0.0, 0.0488, 0.0833, 0.3, 1.309),
    ("put", 40.0, 40.0, 0.0, 0.0488, 0.3333, 0.3, 2.477),
    ("put", 40.0, 40.0, 0.0, 0.0488, 0.5833, 0.3, 3.161),
    ("put", 45.0, 40.0, 0.0, 0.0488, 0.0833, 0.3, 5.059),
    ("put", 45.0, 40.0, 0.0, 0.0488, 0.3333, 0.3, 5.699),
    ("put", 45.0, 40.0, 0.0, 0.0488, 0.5833, 0.3, 6.231),
    ("put", 35.0, 40.0, 0.0, 0.0488, 0.0833, 0.4, 0.247),
    ("put", 35.0, 40.0, 0.0, 0.0488, 0.3333, 0.4, 1.344),
    ("put", 35.0, 40.0, 0.0, 0.0488, 0.5833, 0.4, 2.150),
    ("put", 40.0, 40.0, 0.0, 0.0488, 0.0833, 0.4, 1.767),
    ("put", 40.0, 40.0, 0.0, 0.0488, 0.3333, 0.4, 3.381),
    ("put", 40.0, 40.0, 0.0, 0.0488, 0.5833, 0.4, 4.342),
    ("put", 45.0, 40.0, 0.0, 0.0488, 0.0833, 0.4, 5.288),
    ("put", 45.0, 40.0, 0.0, 0.0488, 0.3333, 0.4, 6.501),
    ("put", 45.0, 40.0, 0.0, 0.0488, 0.5833, 0.4, 7.367),
    ("call", 100.0, 80.0, 0.07, 0.03, 3.0, 0.2, 2.605),
    ("call", 100.0, 90.0, 0.07, 0.03, 3.0, 0.2, 5.182),
    ("call", 100.0, 100.0, 0.07, 0.03, 3.0, 0.2, 9.065),
    ("call", 100.0, 110.0, 0.07, 0.03, 3.0, 0.2, 14.430),
    ("call", 100.0, 120.0, 0.07, 0.03, 3.0, 0.2, 21.398),
    ("call", 100.0, 80.0, 0.07, 0.03, 3.0, 0.4, 11.336),
    ("call", 100.0, 90.0, 0.07, 0.03, 3.0, 0.4, 15.711),
    ("call", 100.0, 100.0, 0.07, 0.03, 3.0, 0.4, 20.760),
    ("call", 100.0, 110.0, 0.07, 0.03, 3.0, 0.4, 26.440),
    ("call", 100.0, 120.0, 0.07, 0.03, 3.0, 0.4, 32.709),
    ("call", 100.0, 80.0, 0.07, 0.00001, 3.0, 0.3, 5.552),
    ("call", 100.0, 90.0, 0.07, 0.00001, 3.0, 0.3, 8.868),
    ("call", 100.0, 100.0, 0.07, 0.00001, 3.0, 0.3, 13.158),
    ("call", 100.0, 110.0, 0.07, 0.00001, 3.0, 0.3, 18.458),
    ("call", 100.0, 120.0, 0.07, 0.00001, 3.0, 0.3, 24.786),
    ("call", 100.0, 80.0, 0.03, 0.07, 3.0, 0.3, 12.177),
    ("call", 100.0, 90.0, 0.03, 0.07, 3.0, 0.3, 17.411),
    ("call", 100.0, 100.0, 0.03, 0.07, 3.0, 0.3, 23.402),
    ("call", 100.0, 110.0, 0.03, 0.07, 3.0, 0.3, 30.028),
    ("call", 100.0, 120.0, 0.03, 0.07, 3.0, 0.3, 37.177),
]

TABLES = {"barone_adesi_whaley": BARONE_ADESI_WHALEY, "bjerksund_stensland": BJERKSUND_STENSLAND, "ju": JU}


def greeks_grid_cases():
    """The contracts of QuantLib's ``testFdGreeks`` (spot 100): kind × strike × q × r × T × σ, as rows
    ``(kind, strike, spot, dividend, rate, maturity, volatility, None)`` (no published value)."""
    rows = []
    for kind, strike, years, dividend, rate, volatility in itertools.product(
            ("call", "put"), (50.0, 99.5, 100.0, 100.5, 150.0), (1.0, 2.0), (0.04, 0.05, 0.06),
            (0.01, 0.05, 0.15), (0.11, 0.50, 1.20)):
        rows.append((kind, strike, 100.0, dividend, rate, years, volatility, None))
    return rows


def quantlib_qdfp(kind: str, strike: float, spot: float, dividend: float, rate: float, maturity: float,
                  volatility: float) -> float:
    """QuantLib's ``QdFpAmericanEngine`` with ``highPrecisionScheme()`` for the exact year fraction.

    QuantLib measures time in whole days; the contract is mapped to a one-year (365-day, Actual/365)
    contract with ``σ√T``, ``rT``, ``qT`` kept (Black–Scholes prices depend on T only through these),
    so that any maturity, including 1e-4 years, is priced exactly.
    """
    import math

    import QuantLib as ql

    today = ql.Date(2, 1, 2024)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, dividend * maturity, day_count, ql.Continuous)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, rate * maturity, day_count, ql.Continuous)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(),
                                                           volatility * math.sqrt(maturity), day_count)))
    payoff = ql.PlainVanillaPayoff(ql.Option.Put if kind == "put" else ql.Option.Call, strike)
    option = ql.VanillaOption(payoff, ql.AmericanExercise(today, today + 365))
    option.setPricingEngine(ql.QdFpAmericanEngine(process, ql.QdFpAmericanEngine.highPrecisionScheme()))
    return option.NPV()


def qd_random_cases(count: int = 482, seed: int = 12345):
    """The random contracts of QuantLib's ``testQdAmericanEngines`` (QD+ and QdFp engines), rebuilt from
    its generator: QuantLib's ``PseudoRandom`` Gaussian sequence (Mersenne twister, seed 12345,
    inverse-cumulative normal), seven draws per contract in the test's order — call if the first is
    positive, spot and strike ``100 e^{1.5 Z}``, ``1 + ⌊365 e^{2Z}⌋`` days, σ ``0.5 e^Z``, r and q
    ``0.1 e^Z``. Rows ``(kind, strike, spot, dividend, rate, maturity, volatility, None)``; the test's
    own criterion against its cached PDE values is 0.5 % relative above 0.1, else 5e-4 absolute
    (``QD_RANDOM_RTOL``, ``QD_RANDOM_ATOL``). The rebuilt contracts reproduce those cached values with
    QdFp within that criterion."""
    import math

    import QuantLib as ql

    rng = ql.InvCumulativeMersenneTwisterGaussianRng(ql.MersenneTwisterUniformRng(seed))
    rows = []
    for _ in range(count):
        kind = "call" if rng.next().value() > 0 else "put"
        spot = 100.0 * math.exp(1.5 * rng.next().value())
        strike = 100.0 * math.exp(1.5 * rng.next().value())
        days = int(1 + 365 * math.exp(2.0 * rng.next().value()))
        volatility = 0.5 * math.exp(rng.next().value())
        rate = 0.10 * math.exp(rng.next().value())
        dividend = 0.10 * math.exp(rng.next().value())
        rows.append((kind, strike, spot, dividend, rate, days / 365.0, volatility, None))
    return rows


QD_RANDOM_RTOL, QD_RANDOM_ATOL = 5e-3, 5e-4

# The edge contracts of QuantLib's ``testQdAmericanEngines``: (kind, spot, strike, days, σ, r, q). Those
# with a zero volatility, strike, spot or maturity are outside pdecore's inputs (each is refused by
# name); the others are priced against QdFp high precision (the test's cached values are the QD+
# approximation's own: e.g. 22.9738 for the first, where QdFp and pdecore give 23.000294).
QD_EDGE_CASES = [
    ("put", 100.0, 120.0, 3650, 0.25, 0.10, 0.03), ("call", 120.0, 100.0, 3650, 0.25, 0.03, 0.10),
    ("put", 100.0, 0.0, 365, 0.25, 0.02, 0.02), ("put", 100.0, 1e-8, 365, 0.25, 0.02, 0.02),
    ("call", 100.0, 0.0, 365, 0.25, 0.05, 0.01), ("call", 100.0, 1e-7, 365, 0.25, 0.05, 0.01),
    ("call", 100.0, 50.0, 365, 0.0, 0.05, 0.01), ("call", 100.0, 50.0, 365, 1e-8, 0.05, 0.01),
    ("put", 100.0, 120.0, 4 * 3650, 1e-6, 0.01, 0.50), ("put", 100.0, 120.0, 4 * 3650, 0.0, 0.01, 0.50),
    ("put", 100.0, 120.0, 365, 1e-7, 0.05, 0.01), ("put", 100.0, 120.0, 365, 0.0, 0.05, 0.01),
    ("put", 100.0, 120.0, 365, 1e-7, 0.00, 0.05), ("put", 100.0, 120.0, 365, 0.0, 0.00, 0.05),
    ("put", 1e-6, 120.0, 365, 0.25, -0.075, 0.05), ("put", 0.0, 120.0, 365, 0.25, -0.075, 0.05),
    ("call", 1e-6, 120.0, 365, 0.25, 0.075, 0.05), ("call", 0.0, 120.0, 365, 0.25, 0.075, 0.05),
    ("put", 100.0, 120.0, 1, 0.25, 0.05, 0.0), ("put", 100.0, 120.0, 0, 0.25, 0.05, 0.0),
    ("put", 0.0, 0.0, 365, 0.0, 0.0, 0.0),
    ("call", 100.0, 1e-7, 365, 1e-8, 0.05, 0.025), ("call", 100.0, 0.0, 365, 1e-8, 0.05, 0.025),
    ("call", 1e-8, 100.0, 365, 1e-8, 0.05, 0.025),
    ("call", 100.0, 100.0, 365, 0.25, 0.0, 0.025), ("call", 100.0, 100.0, 365, 0.25, 0.05, 0.0),
    ("call", 1e10, 100.0, 365, 0.25, 0.01, 0.05), ("call", 100.0, 1e10, 365, 0.25, 0.01, 0.05),
    ("call", 100.0, 100.0, 365, 100.0, 0.01, 0.05), ("call", 100.0, 100.0, 365, 0.25, 0.10, 10.0),
    ("call", 100.0, 100.0, 170 * 365, 0.25, 0.01, 0.002),
]
