r"""Backtest of no-trade-band strategies for Merton's problem with proportional costs (SPEC section 4).

Accounting (exact, in money; no approximation anywhere)
-------------------------------------------------------
A portfolio holds ``B`` in the bond and ``S`` in the stock (values). Over one day of length ``Δt`` the
bond grows by ``e^{rΔt}`` and the stock by its gross return ``S_{k+1}/S_k``. The ratio is ``x = B/S``.
Trading at the proportional cost θ:

* **buy** stock worth ``δ > 0``: ``B ← B − (1+θ)δ``, ``S ← S + δ``;
* **sell** stock worth ``δ > 0``: ``B ← B + (1−θ)δ``, ``S ← S − δ``.

A band strategy ``[x_s, x_b]`` trades only when ``x`` leaves the band, and then by the *minimal* trade that
puts it back on the nearest edge:

* ``x < x_s`` (too much stock): sell ``δ = (x_s S − B)/(x_s + 1 − θ)``, which gives
  ``(B + (1−θ)δ)/(S − δ) = x_s``;
* ``x > x_b`` (too much bond): buy ``δ = (B − x_b S)/(x_b + 1 + θ)``, which gives
  ``(B − (1+θ)δ)/(S + δ) = x_b``.

Every strategy starts from wealth 1 in cash (``x = +∞``) and its first trade buys into its target
(``x_b`` for a band); at the horizon the stock is sold, so the reported log return is
``log(B_T + (1−θ)S_T)``, net of every cost. A path is *bankrupt* once its liquidation value
``B + (1−θ)S`` is ≤ 0 at a daily check (possible for a leveraged buy-and-hold, whose ratio is never
pulled back); it stays at zero wealth, log return ``−∞``, and the strategy reports the bankrupt share
instead of a mean.

Strategies of :func:`backtest_merton`: the PDE band at ``t = 0`` ("omniscient": it knows the model),
buy-and-hold of an all-stock position (``x = 0``, never traded again), a leveraged buy-and-hold that
starts at ``x_M``, any bands given by the user, and the frictionless Merton growth
``years·(r + (α − r)²/(2σ²))`` as a reference line. Stock paths are exact GBM steps under the physical
measure, ``S_{k+1} = S_k exp((α − σ²/2)Δt + σ√Δt Z)``, shared by all strategies (common random numbers),
generated one day at a time so memory does not grow with the horizon.

What it checks, and why (SPEC section 4). The Merton-with-costs paper backtests its learned band over
20 years and quotes "about 3.00" and "about 2.5": the first is the frictionless Merton growth
``20(r + (α − r)²/(2σ²))`` (a reference no strategy that pays costs can reach), the second the
buy-and-hold of an all-stock position. The band computed by the PDE (:func:`pdecore.solve_merton_costs`)
earns a little less than the frictionless value; the exact money accounting above makes the comparison
free of discretization error, so any gap is the strategy's, and common random numbers make the
differences between strategies more precise than their means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pdecore.budget import check_memory, check_work
from pdecore.checks import check_int, check_positive, check_range, check_real
# the market's accounting lives once in rl (the Gymnasium environment steps it too)
from rl.merton_market import gbm_returns as _gbm_returns  # noqa: F401  (validation.dynkin uses it)
from rl.merton_market import rebalance

__all__ = ["BandStrategy", "StrategyOutcome", "BacktestReport", "rebalance", "run_strategies", "backtest_merton"]


@dataclass(frozen=True)
class BandStrategy:
    """A no-trade band ``[sell_ratio, buy_ratio]`` in ``x = B/S`` and the ratio bought at the start.

    ``sell_ratio = −inf`` never sells, ``buy_ratio = +inf`` never buys; ``initial_ratio`` defaults to
    ``buy_ratio`` (the minimal first trade from cash).
    """

    name: str
    sell_ratio: float
    buy_ratio: float
    initial_ratio: float | None = None

    def __post_init__(self) -> None:
        if math.isnan(self.sell_ratio) or math.isnan(self.buy_ratio):
            raise ValueError(f"band of {self.name!r} must not contain NaN, got [{self.sell_ratio}, {self.buy_ratio}]; "
                             "pass two numbers XS <= XB")
        if not self.sell_ratio <= self.buy_ratio:
            raise ValueError(f"band of {self.name!r} must have sell_ratio <= buy_ratio, got "
                             f"[{self.sell_ratio}, {self.buy_ratio}]; swap the two numbers")
        start = self.start
        if not math.isfinite(start):
            raise ValueError(f"strategy {self.name!r} needs a finite initial ratio, got {start!r}; pass initial_ratio")

    @property
    def start(self) -> float:
        """The ratio bought at ``t = 0``."""
        return self.buy_ratio if self.initial_ratio is None else float(self.initial_ratio)


@dataclass(frozen=True)
class StrategyOutcome:
    """Per-path results of one strategy.

    Attributes
    ----------
    log_return : float64[paths]
        ``log`` of the liquidated terminal wealth (initial wealth 1); ``−inf`` on bankrupt paths.
    bankrupt : bool[paths]
    costs : float64[paths]
        Total transaction costs paid (``θ`` times the traded stock value), compounded at the bond rate
        to the horizon.
    mean, se : float or None
        Mean log return and its standard error; ``None`` if any path went bankrupt.
    bankrupt_share : float
    """

    name: str
    log_return: np.ndarray = field(repr=False)
    bankrupt: np.ndarray = field(repr=False)
    costs: np.ndarray = field(repr=False)
    bond: np.ndarray = field(repr=False)
    stock: np.ndarray = field(repr=False)

    @property
    def bankrupt_share(self) -> float:
        """Share of paths whose liquidation value ``B + (1−θ)S`` fell to ≤ 0 at a daily check."""
        return float(np.mean(self.bankrupt))

    @property
    def mean(self) -> float | None:
        """Mean log return over the paths; ``None`` once a path is bankrupt (its log return is −inf)."""
        if self.bankrupt.any():
            return None
        return float(np.mean(self.log_return))

    @property
    def se(self) -> float | None:
        """Standard error ``s/√n`` of :attr:`mean` (sample s.d. ``s``); ``None`` with bankrupt paths, NaN
        for one path."""
        if self.bankrupt.any():
            return None
        n = self.log_return.size
        return float(np.std(self.log_return, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")


def run_strategies(gross_returns, strategies, *, rate: float, cost: float, dt: float) -> dict[str, StrategyOutcome]:
    """Run band strategies on given stock paths with exact cash accounting (module docstring).

    Parameters
    ----------
    gross_returns : iterable of float64[paths]
        Daily gross stock returns ``S_{k+1}/S_k``, one array per day (a 2-D array ``(days, paths)`` works).
    strategies : sequence of BandStrategy
    rate : float
        Bond rate r.
    cost : float
        θ in [0, 1).
    dt : float
        Day length in years (the bond grows by ``e^{r dt}`` per day).

    Returns
    -------
    dict name -> StrategyOutcome
    """
    cost = check_range("cost", cost, 0.0, 1.0, closed_high=False, fix="pass a proportional cost in [0, 1)")
    rate = check_real("rate", rate)
    dt = check_positive("dt", dt)
    strategies = list(strategies)
    if not strategies:
        raise ValueError("strategies must not be empty; pass at least one BandStrategy")
    for s in strategies:
        # a never-selling strategy (sell_ratio = −inf) may drift towards insolvency: that is bankruptcy,
        # counted below; a finite sell edge at or below −(1−θ) cannot be traded back to
        if (math.isfinite(s.sell_ratio) and s.sell_ratio <= -(1.0 - cost)) or s.start <= -(1.0 - cost):
            raise ValueError(f"strategy {s.name!r} reaches the insolvency ratio -(1 - cost) = {-(1 - cost)}; "
                             "use ratios above it")
    iterator = iter(gross_returns)
    try:
        first = np.asarray(next(iterator), dtype=float)
    except StopIteration:
        raise ValueError("gross_returns must contain at least one day; pass a (days, paths) array") from None
    n_paths = first.size
    n_strat = len(strategies)
    xs = np.array([s.sell_ratio for s in strategies])[:, None]
    xb = np.array([s.buy_ratio for s in strategies])[:, None]
    start = np.array([s.start for s in strategies])[:, None]
    # initial purchase from wealth 1 in cash: B − (1+θ)δ = x0 δ
    delta0 = 1.0 / (start + 1.0 + cost)
    stock = np.broadcast_to(delta0, (n_strat, n_paths)).copy()
    bond = np.broadcast_to(1.0 - (1.0 + cost) * delta0, (n_strat, n_paths)).copy()
    costs = np.broadcast_to(cost * delta0, (n_strat, n_paths)).copy()
    bankrupt = np.zeros((n_strat, n_paths), dtype=bool)
    growth = math.exp(rate * dt)

    day_index = 0

    def day(gross):
        # in-place updates and trades computed only on the entries that leave their band: the loop runs
        # once per trading day over (strategies × paths) arrays
        nonlocal day_index, bond, stock, costs
        gross = np.asarray(gross, dtype=float)
        if gross.shape != (n_paths,) or not np.all(np.isfinite(gross)) or np.any(gross <= 0):
            raise ValueError(f"gross returns must be finite positive arrays of shape ({n_paths},); check the paths")
        bond *= growth
        stock *= gross[None, :]
        costs *= growth
        day_index += 1
        liquidation = bond + (1.0 - cost) * stock
        failed = liquidation <= 0.0
        if failed.any():
            bankrupt[failed] = True
            bond[failed] = 0.0
            stock[failed] = 0.0
        live_stock = np.where(bankrupt, 1.0, stock)  # bankrupt paths: ratio 0, never traded (bands exclude it below)
        ratio = bond / live_stock
        for mask, edge in ((ratio < xs, xs), (ratio > xb, xb)):
            mask &= ~bankrupt
            if not mask.any():
                continue
            k, p = np.nonzero(mask)
            edge_k = edge[k, 0]
            new_bond, new_stock, traded = rebalance(bond[k, p], stock[k, p], edge_k if edge is xs else -np.inf,
                                                    edge_k if edge is xb else np.inf, cost)
            bond[k, p] = new_bond
            stock[k, p] = new_stock
            costs[k, p] += cost * np.abs(traded)

    day(first)
    for gross in iterator:
        day(gross)
    wealth = bond + (1.0 - cost) * stock
    out = {}
    for k, s in enumerate(strategies):
        with np.errstate(divide="ignore"):
            log_return = np.where(bankrupt[k], -np.inf, np.log(np.where(bankrupt[k], 1.0, wealth[k])))
        out[s.name] = StrategyOutcome(name=s.name, log_return=log_return, bankrupt=bankrupt[k].copy(),
                                      costs=costs[k].copy(), bond=bond[k].copy(), stock=stock[k].copy())
    return out


@dataclass(frozen=True)
class BacktestReport:
    """Summary of :func:`backtest_merton` (``to_dict`` gives the CLI's JSON keys)."""

    years: float
    paths: int
    seed: int
    steps_per_year: int
    merton_reference: float
    omniscient_band: tuple[float, float]
    outcomes: dict[str, StrategyOutcome] = field(repr=False)
    user_bands: tuple[tuple[float, float], ...] = ()

    def to_dict(self) -> dict:
        """Flat JSON-ready summary: ``<strategy>_mean``, ``<strategy>_se``, ``<strategy>_bankrupt_share``."""
        out = {"years": self.years, "paths": self.paths, "seed": self.seed, "steps_per_year": self.steps_per_year,
               "merton_reference": self.merton_reference,
               "omniscient_band": list(self.omniscient_band)}
        for name, res in self.outcomes.items():
            if name.startswith("band_"):
                continue
            out[f"{name}_mean"] = res.mean
            out[f"{name}_se"] = res.se
            out[f"{name}_bankrupt_share"] = res.bankrupt_share
        out["bands"] = [{"sell_ratio": xs, "buy_ratio": xb, "mean": self.outcomes[f"band_{i}"].mean,
                         "se": self.outcomes[f"band_{i}"].se,
                         "bankrupt_share": self.outcomes[f"band_{i}"].bankrupt_share}
                        for i, (xs, xb) in enumerate(self.user_bands)]
        return out

    def table(self) -> str:
        """A Markdown table of the strategies."""
        rows = ["| strategy | band [x_s, x_b] | mean log return | s.e. | bankrupt share |",
                "|---|---|---|---|---|"]
        bands = {"omniscient": self.omniscient_band, "buy_and_hold": (0.0, 0.0)}
        for i, b in enumerate(self.user_bands):
            bands[f"band_{i}"] = b
        for name, res in self.outcomes.items():
            band = bands.get(name)
            band_text = "—" if band is None else f"[{band[0]:.4f}, {band[1]:.4f}]"
            mean = "bankrupt paths" if res.mean is None else f"{res.mean:.4f}"
            se = "—" if res.se is None else f"{res.se:.4f}"
            rows.append(f"| {name} | {band_text} | {mean} | {se} | {res.bankrupt_share:.4f} |")
        rows.append(f"| frictionless Merton (reference) | continuous at x_M | {self.merton_reference:.4f} | — | — |")
        return "\n".join(rows)




#: Optimistic (strategy × path)-days per second of the vectorized daily loop (work refusal only).
_PATH_DAYS_PER_SECOND = 1e8


def _ratio_pair(name: str, value) -> tuple[float, float]:
    """``(sell, buy)`` as floats, or a ValueError naming ``name`` (NaN and order as :class:`BandStrategy`)."""
    fix = "pass two ratios x = B/S, sell <= buy, e.g. (0.5, 1.5)"
    if isinstance(value, (str, bytes)) or np.ndim(value) != 1 or len(value) != 2:
        raise ValueError(f"{name} must be a pair (sell, buy) of ratios, got {value!r}; {fix}")
    sell, buy = value
    if any(isinstance(v, (bool, np.bool_)) for v in (sell, buy)):
        raise ValueError(f"{name} must hold numbers, got {value!r}; {fix}")
    try:
        sell, buy = float(sell), float(buy)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold numbers, got {value!r}; {fix}") from None
    try:
        BandStrategy(name, sell, buy)  # NaN, order and a finite start, with BandStrategy's own messages
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
    return sell, buy


def _check_budget(years: float, paths: int, steps_per_year: int, n_strategies: int) -> None:
    """Refuse, before drawing a path, a backtest past the memory or work budget (:mod:`pdecore.budget`).

    :func:`run_strategies` holds about 12 float arrays of ``strategies × paths`` (bond, stock, costs, the
    bankrupt flags and the day's temporaries) and the day's draws (3 of ``paths``); it runs
    ``days × strategies × paths`` updates, ``days = years × steps_per_year``.
    """
    days = max(1.0, years * float(steps_per_year))
    what = f"backtest_merton with years={years:g}, paths={paths}, steps_per_year={steps_per_year}"
    check_memory(what, 8.0 * float(paths) * (12.0 * n_strategies + 3.0),
                 fix="simulate fewer paths (10000 give standard errors of about 0.01 at 20 years)")
    check_work(what, days * float(paths) * n_strategies, rate=_PATH_DAYS_PER_SECOND,
               fix="pass fewer years or paths (20 years × 10000 paths take seconds)")


def backtest_merton(model, *, years: float = 20.0, paths: int = 10_000, seed: int = 0, steps_per_year: int = 252,
                    band: tuple[float, float] | None = None, extra_bands=(), n_space=None, n_time=None):
    """Backtest the PDE band against buy-and-hold over ``years`` with daily rebalancing.

    The "omniscient" strategy holds the PDE's ``t = 0`` no-trade band ``[x_s(0), x_b(0)]`` of ``model``
    (it knows α, σ, θ) fixed over the whole horizon; beside it run buy-and-hold of all stock, a
    leveraged buy-and-hold from the frictionless ratio ``x_M``, and ``extra_bands``, all on the same
    paths (module docstring). ``merton_reference = years · (r + (α − r)²/(2σ²))`` is the frictionless
    optimum, the paper's "about 3.00" at 20 years (SPEC section 4).

    Parameters
    ----------
    model : pdecore.MertonCosts
        Market, cost and the horizon ``maturity`` of the PDE problem whose ``t = 0`` band is used.
    years : float
        Backtest horizon.
    paths : int
        Number of simulated paths.
    seed : int
        Seed of the path generator (common to all strategies).
    steps_per_year : int
        Trading days per year (rebalancing dates).
    band : (float, float), optional
        Use this band as the "omniscient" one instead of solving the PDE.
    extra_bands : iterable of (float, float)
        Further bands to compare.
    n_space, n_time : int, optional
        PDE grid for the omniscient band.

    Returns
    -------
    BacktestReport

    Raises
    ------
    ValueError
        A parameter named with its value and the fix, including ``paths`` past the memory budget and
        ``years × steps_per_year × paths`` past the work budget of :mod:`pdecore.budget` (checked before
        any path is drawn: ``years=1000000`` used to run for days).
    """
    from pdecore.params import MertonCosts

    if not isinstance(model, MertonCosts):
        raise ValueError(f"model must be a pdecore.MertonCosts, got {type(model).__name__}")
    years = check_positive("years", years, fix="pass a horizon in years such as 20")
    paths = check_int("paths", paths, minimum=2, fix="simulate at least 2 paths")
    seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1, fix="pass a non-negative seed below 2**63")
    steps_per_year = check_int("steps_per_year", steps_per_year, minimum=1,
                               fix="pass the trading days per year, e.g. 252")
    if band is not None:
        band = _ratio_pair("band", band)
    if isinstance(extra_bands, (str, bytes)) or not hasattr(extra_bands, "__iter__"):
        raise ValueError(f"extra_bands must be a sequence of (sell, buy) pairs, got {extra_bands!r}; pass e.g. "
                         "[(0.5, 1.5)] or ()")
    user_bands = tuple(_ratio_pair(f"extra_bands[{i}]", pair) for i, pair in enumerate(extra_bands))
    _check_budget(years, paths, steps_per_year, 3 + len(user_bands))
    if band is None:
        from pdecore.merton import solve_merton_costs

        band = solve_merton_costs(model, n_space=n_space, n_time=n_time).band(0.0)
    band = (float(band[0]), float(band[1]))
    strategies = [BandStrategy("omniscient", *band),
                  BandStrategy("buy_and_hold", -np.inf, np.inf, initial_ratio=0.0),
                  BandStrategy("leveraged_buy_and_hold", -np.inf, np.inf, initial_ratio=model.merton_ratio)]
    strategies += [BandStrategy(f"band_{i}", a, b) for i, (a, b) in enumerate(user_bands)]
    n_days = max(1, int(round(years * steps_per_year)))
    dt = years / n_days
    outcomes = run_strategies(_gbm_returns(model, n_days, paths, dt, seed), strategies, rate=model.rate,
                              cost=model.cost, dt=dt)
    return BacktestReport(years=years, paths=paths, seed=seed, steps_per_year=steps_per_year,
                          merton_reference=years * model.merton_growth_rate, omniscient_band=band,
                          outcomes=outcomes, user_bands=user_bands)
