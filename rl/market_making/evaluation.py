"""Accuracy of a market-making learner against the grid HJB: spread errors in units of 1/k.

``spread_errors`` compares the mean spreads of the learned Gibbs policy with the grid solution's on
the inventory box ``|q_i| <= Q̄/2`` (where the inventory bound does not move the grid's quotes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pdecore.checks import check_int, check_range
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
    w = model.max_inventory // 2 if half_width is None else check_int(
        "half_width", half_width, minimum=0, maximum=model.max_inventory,
        fix=f"pass an inventory half-width in [0, max_inventory={model.max_inventory}], or None for Q̄/2")
    if isinstance(times_fraction, (str, bytes)) or np.ndim(times_fraction) != 1:
        raise ValueError(f"times_fraction must be a sequence of fractions of the horizon, got {times_fraction!r}; "
                         "pass e.g. (0.0, 0.6)")
    times_fraction = [check_range(f"times_fraction[{i}]", frac, 0.0, 1.0, fix="pass fractions of the horizon in [0, 1]")
                      for i, frac in enumerate(times_fraction)]
    box = inventory_states(n, w)  # every inventory with |q_i| <= w (refused past the memory budget)
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
