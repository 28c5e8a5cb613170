"""Tests of the Merton band backtester (validation.backtest_merton) and of the ``pderl`` Merton commands.

Exact cash accounting is checked on hand-made price paths against arithmetic written out in the test;
the minimal-trade rule against its defining properties; bankruptcy of a leveraged buy-and-hold on a
crash path; JSON keys of the CLI.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pdecore import MertonCosts
from validation.backtest_merton import BandStrategy, backtest_merton, rebalance, run_strategies
from validation.cli import main

DEFAULT = MertonCosts(drift=0.168, rate=0.008, volatility=0.3, cost=0.005, maturity=1.0)


def test_cash_accounting_on_a_hand_made_path():
    theta, rate, dt = 0.01, 0.05, 0.5
    growth = math.exp(rate * dt)
    prices = np.array([1.0, 2.0, 4.0, 3.0])
    gross = (prices[1:] / prices[:-1])[:, None]            # one path
    band = BandStrategy("band", sell_ratio=0.5, buy_ratio=1.0)
    out = run_strategies(gross, [band], rate=rate, cost=theta, dt=dt)["band"]

    # by hand: start with 1 in cash, buy into x = 1: B - (1+θ)δ0 = δ0
    d0 = 1.0 / (2.0 + theta)
    bond, stock, costs = 1.0 - (1 + theta) * d0, d0, theta * d0
    assert bond == pytest.approx(stock)
    interest = pnl = 0.0  # nominal bond interest and stock gains, for the budget identity below

    def move(bond, stock, costs, factor):
        nonlocal interest, pnl
        interest += bond * (growth - 1)
        pnl += stock * (factor - 1)
        return bond * growth, stock * factor, costs * growth

    # day 1: price x2, bond grows; x = B/S = growth/2 ≈ 0.513 is inside [0.5, 1]: no trade
    bond, stock, costs = move(bond, stock, costs, 2.0)
    assert 0.5 <= bond / stock <= 1.0
    # day 2: price x2 again; x ≈ 0.263 < 0.5: sell δ with (B + (1-θ)δ)/(S - δ) = 0.5
    bond, stock, costs = move(bond, stock, costs, 2.0)
    delta = (0.5 * stock - bond) / (0.5 + 1 - theta)
    bond, stock, costs = bond + (1 - theta) * delta, stock - delta, costs + theta * delta
    assert bond / stock == pytest.approx(0.5)
    # day 3: price x0.75; x = 0.5·growth/0.75 ≈ 0.684: inside, no trade
    bond, stock, costs = move(bond, stock, costs, 0.75)
    assert 0.5 <= bond / stock <= 1.0
    wealth = bond + (1 - theta) * stock  # liquidation at the horizon

    assert out.bond[0] == pytest.approx(bond, rel=1e-14)
    assert out.stock[0] == pytest.approx(stock, rel=1e-14)
    assert out.costs[0] == pytest.approx(costs, rel=1e-14)
    assert out.log_return[0] == pytest.approx(math.log(wealth), rel=1e-14)
    # budget identity: initial cash + interest + stock gains − every cost paid (two trades and liquidation)
    assert wealth == pytest.approx(1.0 + interest + pnl - theta * (d0 + delta) - theta * stock, rel=1e-14)


def test_buy_side_trade_and_buy_and_hold_on_a_hand_made_path():
    theta, rate, dt = 0.02, 0.0, 1.0
    gross = np.array([[0.5], [1.0]])
    strategies = [BandStrategy("band", -0.5, 0.2), BandStrategy("hold", -np.inf, np.inf, initial_ratio=0.0)]
    out = run_strategies(gross, strategies, rate=rate, cost=theta, dt=dt)
    # band: buy to x = 0.2 from cash; price halves -> x = 0.4 > 0.2: buy δ = (B - 0.2 S)/(0.2 + 1 + θ)
    d0 = 1.0 / (1.2 + theta)
    bond, stock = 1.0 - (1 + theta) * d0, d0
    stock *= 0.5
    delta = (bond - 0.2 * stock) / (1.2 + theta)
    bond, stock = bond - (1 + theta) * delta, stock + delta
    assert out["band"].bond[0] == pytest.approx(bond, rel=1e-14)
    assert out["band"].stock[0] == pytest.approx(stock, rel=1e-14)
    assert out["band"].costs[0] == pytest.approx(theta * (d0 + delta), rel=1e-14)
    # buy-and-hold: all-in at cost θ, never trades, liquidates at (1-θ)
    hold = out["hold"]
    assert hold.bond[0] == pytest.approx(0.0, abs=1e-15)
    assert hold.log_return[0] == pytest.approx(math.log(0.5 * (1 - theta) / (1 + theta)), rel=1e-14)


def test_rebalance_lands_on_the_band_and_conserves_value(rng):
    theta = 0.005
    stock = rng.uniform(0.5, 2.0, 1000)
    bond = stock * rng.uniform(-0.9, 1.5, 1000)
    xs, xb = -0.5, 0.3
    new_bond, new_stock, traded = rebalance(bond, stock, xs, xb, theta)
    ratio, new_ratio = bond / stock, new_bond / new_stock
    inside = (ratio >= xs) & (ratio <= xb)
    assert np.all(traded[inside] == 0) and np.all(new_ratio[inside] == ratio[inside])
    assert np.allclose(new_ratio[ratio < xs], xs) and np.all(traded[ratio < xs] < 0)
    assert np.allclose(new_ratio[ratio > xb], xb) and np.all(traded[ratio > xb] > 0)
    # cash accounting: B' + S' = B + S − θ|δ|
    assert np.allclose(new_bond + new_stock, bond + stock - theta * np.abs(traded), rtol=0, atol=1e-14)


def test_leveraged_buy_and_hold_reports_bankruptcy_on_a_crash():
    gross = np.array([[0.6, 1.0], [0.6, 1.0], [1.5, 1.0]])  # path 0 falls 40% twice, path 1 is flat
    strategies = [BandStrategy("levered", -np.inf, np.inf, initial_ratio=-0.5),
                  BandStrategy("band", -0.55, -0.35)]
    out = run_strategies(gross, strategies, rate=0.0, cost=0.01, dt=1.0)
    lev = out["levered"]
    assert lev.bankrupt.tolist() == [True, False]
    assert lev.log_return[0] == -np.inf and lev.mean is None and lev.se is None
    assert lev.bankrupt_share == 0.5
    # the band sells into the fall and survives
    assert not out["band"].bankrupt.any() and out["band"].mean is not None


def test_backtest_merton_small_run_and_reference():
    report = backtest_merton(DEFAULT, years=1.0, paths=200, seed=3, extra_bands=[(-0.46, -0.41)],
                             band=(-0.498, -0.349))
    data = report.to_dict()
    for key in ("omniscient_mean", "omniscient_se", "buy_and_hold_mean", "buy_and_hold_se", "merton_reference",
                "leveraged_buy_and_hold_bankrupt_share"):
        assert key in data
    assert data["merton_reference"] == pytest.approx(DEFAULT.merton_growth_rate)
    assert data["omniscient_se"] > 0 and data["buy_and_hold_se"] > 0
    assert len(data["bands"]) == 1 and data["bands"][0]["sell_ratio"] == -0.46
    # same seed, same numbers (common random numbers, reproducible)
    again = backtest_merton(DEFAULT, years=1.0, paths=200, seed=3, band=(-0.498, -0.349))
    assert again.to_dict()["omniscient_mean"] == data["omniscient_mean"]
    assert "| omniscient |" in report.table()


@pytest.mark.parametrize("kwargs, match", [
    (dict(years=0.0), "years must be > 0"),
    (dict(paths=1), "paths must be >= 2"),
    (dict(band=(-0.3, -0.5)), "sell_ratio <= buy_ratio"),
    (dict(band=(float("nan"), -0.3)), "must not contain NaN"),
    (dict(band=(-1.2, -0.3)), "insolvency"),
])
def test_backtest_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        backtest_merton(DEFAULT, **{"years": 0.1, "paths": 10, **kwargs})


def test_cli_solve_merton_json(capsys, tmp_path):
    figure = tmp_path / "band.png"
    assert main(["solve", "merton", "--json", "--plot", str(figure), "--n-space", "300", "--n-time", "50"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sell_boundary_t0"] == pytest.approx(-0.50, abs=0.01)
    assert data["buy_boundary_t0"] == pytest.approx(-0.35, abs=0.01)
    assert data["merton_ratio"] == pytest.approx(-0.4375)
    assert figure.exists() and figure.stat().st_size > 0


def test_cli_backtest_merton_json_and_bad_input(capsys):
    assert main(["backtest", "merton", "--years", "0.2", "--paths", "50", "--seed", "1", "--band", "-0.46", "-0.41",
                 "--json", "--n-space", "200", "--n-time", "30"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("omniscient_mean", "omniscient_se", "buy_and_hold_mean", "buy_and_hold_se"):
        assert isinstance(data[key], float)
    assert main(["solve", "merton", "--cost", "1.5"]) == 2
    assert "cost must lie in" in capsys.readouterr().err
    assert main(["solve", "merton", "--drift", "0.001"]) == 2
    assert "Merton fraction" in capsys.readouterr().err


# ------------------------------------------------------------------ budgets (issue 12, bad input)
def test_backtest_refuses_memory_and_hangs_before_drawing(monkeypatch):
    """``paths=100000000`` (memory) and ``years=1000000`` (path-days: a hang before) are refused from the
    arguments in milliseconds, naming the parameter and the fix."""
    import time

    from pdecore import MertonCosts
    from validation.backtest_merton import backtest_merton

    model = MertonCosts(drift=0.1, rate=0.02, volatility=0.3, cost=0.01, maturity=1.0)
    monkeypatch.setenv("PDERL_MEMORY_BUDGET", "1G")
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"paths=100000000, .*GiB of memory.*fewer paths"):
        backtest_merton(model, paths=100_000_000, band=(0.5, 1.5))
    with pytest.raises(ValueError, match=r"years=1e\+06.*would take at least.*PDERL_TIME_BUDGET.*fewer years"):
        backtest_merton(model, years=1_000_000, band=(0.5, 1.5))
    with pytest.raises(ValueError, match="steps_per_year"):
        backtest_merton(model, steps_per_year=10**12, band=(0.5, 1.5))
    assert time.perf_counter() - started < 5.0


@pytest.mark.parametrize("kwargs, word", [(dict(band=(1.5, 0.5)), "band"), (dict(band=5), "band"),
                                          (dict(band=("a", 1)), "band"), (dict(extra_bands=[(0.1,)]), "extra_bands"),
                                          (dict(extra_bands=5), "extra_bands"), (dict(seed=2**64), "seed")])
def test_backtest_bad_bands_named(kwargs, word):
    from pdecore import MertonCosts
    from validation.backtest_merton import backtest_merton

    model = MertonCosts(drift=0.1, rate=0.02, volatility=0.3, cost=0.01, maturity=1.0)
    kwargs.setdefault("band", (0.5, 1.5))
    with pytest.raises(ValueError, match=word):
        backtest_merton(model, years=0.1, paths=10, **kwargs)
