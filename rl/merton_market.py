"""The physical market of Merton's problem with proportional costs, shared by the backtest and the env.

Two pieces of accounting that :mod:`validation.backtest_merton` (the 20-year daily backtest of SPEC
section 4) and :mod:`rl.envs.merton` (the Gymnasium environment) must compute identically, so they
live once, here, below both:

* :func:`gbm_returns` — daily gross stock returns ``exp((α − σ²/2)Δt + σ√Δt Z)`` under the physical
  measure (exact GBM steps), one generator so every strategy sees the same paths;
* :func:`rebalance` — the minimal trade that brings the bond/stock ratio ``x = B/S`` back into a band
  ``[sell, buy]``, paying ``θ`` on the traded stock value (Davis & Norman 1990; SPEC section 4).
"""

from __future__ import annotations

import math

import numpy as np


def rebalance(bond, stock, sell_ratio, buy_ratio, cost):
    """Minimal trades that bring ``x = B/S`` back into ``[sell_ratio, buy_ratio]`` (vectorized).

    Parameters
    ----------
    bond, stock : ndarray
        Positions (values), ``stock > 0`` wherever a trade can be needed.
    sell_ratio, buy_ratio : float or ndarray
        Band edges (±inf allowed).
    cost : float
        θ.

    Returns
    -------
    bond, stock : ndarray
        New positions.
    traded : ndarray
        Stock value bought (``> 0``) or sold (``< 0``).
    """
    bond = np.asarray(bond, dtype=float)
    stock = np.asarray(stock, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(stock > 0, bond / np.where(stock > 0, stock, 1.0), np.inf)
    sell_ratio = np.asarray(sell_ratio, dtype=float)
    buy_ratio = np.asarray(buy_ratio, dtype=float)
    sell = ratio < sell_ratio
    buy = ratio > buy_ratio
    xs = np.where(sell, sell_ratio, 0.0)
    xb = np.where(buy, buy_ratio, 0.0)
    delta_sell = np.where(sell, (xs * stock - bond) / (xs + 1.0 - cost), 0.0)
    delta_buy = np.where(buy, (bond - xb * stock) / (xb + 1.0 + cost), 0.0)
    new_bond = bond + (1.0 - cost) * delta_sell - (1.0 + cost) * delta_buy
    new_stock = stock - delta_sell + delta_buy
    return new_bond, new_stock, delta_buy - delta_sell


def gbm_returns(model, n_days, n_paths, dt, seed, chunk_hint=None):
    """Daily gross returns ``exp((α − σ²/2)Δt + σ√Δt Z)``, one array of ``n_paths`` per day (exact GBM
    under the physical measure, drift α; one generator, so every strategy sees the same paths)."""
    rng = np.random.default_rng(seed)
    drift = (model.drift - 0.5 * model.volatility**2) * dt
    vol = model.volatility * math.sqrt(dt)
    for _ in range(n_days):
        yield np.exp(drift + vol * rng.standard_normal(n_paths))


__all__ = ["gbm_returns", "rebalance"]
