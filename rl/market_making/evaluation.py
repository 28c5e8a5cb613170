"""Accuracy of a market-making learner against the grid HJB: spread errors in units of 1/k.

``spread_errors`` compares the mean spreads of the learned Gibbs policy with the grid solution's on
the inventory box ``|q_i| <= Q̄/2`` (where the inventory bound does not move the grid's quotes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pdecore.inventory_grid import inventory_states

if TYPE_CHECKING:  # the learner imports this module: a runtime import would be circular
    from rl.market_making.learner import MarketMakingLearner


def spread_errors(learner: MarketMakingLearner, reference, *, times_fraction=(0.0, 0.6),
                  half_width: int | None = None) -> dict[str, float]:
    """Max |learned − grid| mean spread in units of 1/k, per date, over ``|q_i| ≤ Q̄/2``.

    Returns ``max_spread_error`` (over both dates, options and sides) and
    ``max_spread_error_t{fraction}`` per date.
    """
    model = learner.model
    n = model.n_options
    w = model.max_inventory // 2 if half_width is None else int(half_width)
    box = inventory_states(n, w)  # every inventory with |q_i| <= w
    decay = model.decay_array()
    out = {}
    worst = 0.0
    for frac in times_fraction:
        t = frac * model.horizon
        bid, ask = learner.mean_spreads(t, box)
        err = 0.0
        for i in range(n):
            grid_bid = reference.bid_spread(t, box, option=i)
            grid_ask = reference.ask_spread(t, box, option=i)
            err = max(err, float(np.nanmax(np.abs(bid[:, i] - grid_bid))) * decay[i],
                      float(np.nanmax(np.abs(ask[:, i] - grid_ask))) * decay[i])
        out[f"max_spread_error_t{frac:g}"] = err
        worst = max(worst, err)
    out["max_spread_error"] = worst
    return out


__all__ = ["spread_errors"]
