"""The inventory grid of the market-making HJB: ``q ∈ {−Q̄..Q̄}^n`` as a flat C-order array (SPEC section 5).

One layout for every consumer (the grid solver and its NumPy twin in :mod:`pdecore`, the RL policy
that reads a solved θ table, the evaluation box of the RL learner): state ``q`` sits at the flat
index ``Σ_i (q_i + Q̄) s_i`` with strides ``s_i = (2Q̄+1)^{n−1−i}`` (the last option varies fastest,
as ``numpy.reshape`` of a ``(2Q̄+1,)*n`` array), so a flat vector and its n-dimensional view are the
same memory. Written once because the kernels, the tables and the tests must agree on it exactly.
"""

from __future__ import annotations

import numpy as np

from pdecore.budget import check_memory
from pdecore.checks import check_int

__all__ = ["inventory_axis", "inventory_strides", "inventory_mesh", "inventory_states"]


def _checked(n_options, max_inventory) -> tuple[int, int]:
    n = check_int("n_options", n_options, minimum=1, fix="pass the number of options, e.g. 1")
    qbar = check_int("max_inventory", max_inventory, minimum=0, fix="pass the inventory bound Q̄, e.g. 100")
    return n, qbar


def inventory_axis(max_inventory: int) -> np.ndarray:
    """The integers ``−Q̄..Q̄`` (int64): one option's inventories, index ``q + Q̄``."""
    _, qbar = _checked(1, max_inventory)
    return np.arange(-qbar, qbar + 1, dtype=np.int64)


def inventory_strides(n_options: int, max_inventory: int) -> np.ndarray:
    """Flat-index strides ``s_i = (2Q̄+1)^{n−1−i}`` (int64, shape ``(n,)``) of the C-order layout."""
    n, qbar = _checked(n_options, max_inventory)
    size = 2 * qbar + 1
    return np.array([size ** (n - 1 - i) for i in range(n)], dtype=np.int64)


def _check_grid_memory(n: int, qbar: int) -> None:
    """Refuse, before allocating, a grid whose coordinates (``2n`` int64 arrays of ``(2Q̄+1)^n`` states:
    the mesh and its stacked copy) pass the memory budget of :mod:`pdecore.budget`."""
    try:
        states = (2.0 * qbar + 1.0) ** n
    except OverflowError:  # more states than a float holds
        states = float("inf")
    shown = qbar if qbar < 10**15 else f"{float(qbar):.3g}"
    check_memory(f"the inventory grid with n_options={n}, max_inventory={shown} ({states:.3g} states)",
                 8.0 * 2.0 * n * states, fix="lower max_inventory or n_options")


def inventory_mesh(n_options: int, max_inventory: int) -> tuple[np.ndarray, ...]:
    """The n inventory coordinates, each an int64 array of shape ``(2Q̄+1,)*n`` (``indexing="ij"``)."""
    n, qbar = _checked(n_options, max_inventory)
    _check_grid_memory(n, qbar)
    return tuple(np.meshgrid(*([inventory_axis(qbar)] * n), indexing="ij"))


def inventory_states(n_options: int, max_inventory: int) -> np.ndarray:
    """Every inventory of the grid, shape ``((2Q̄+1)^n, n)`` int64, row ``r`` at flat index ``r``."""
    return np.stack([m.reshape(-1) for m in inventory_mesh(n_options, max_inventory)], axis=1)
