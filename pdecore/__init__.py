"""pdecore: implicit penalty finite-difference oracles for optimal stopping, Dynkin games and
option market making.

Public names are loaded lazily (PEP 562) so that ``import pdecore`` and the ``pderl`` command start
quickly and only the engine you use pays its import (and Numba cache-load) cost.

Engines
-------
* American options by the Forsyth–Vetzal penalty Newton iteration (:func:`solve_american`) and the
  discrete-time fixed point of the RL scheme (:func:`stopping_oracle`) — SPEC sections 1–2.
* Double-obstacle (Dynkin) penalty solver and Merton's problem with transaction costs
  (:func:`solve_dynkin`, :func:`solve_merton_costs`) — SPEC section 4.
* Multi-option market-making HJB on the inventory grid (:func:`solve_market_making`,
  :func:`quadratic_approximation`) — SPEC section 5.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "ConvergenceError": "pdecore.exceptions",
    # model parameters (one source of truth, shared with the RL simulators)
    "BlackScholes": "pdecore.params",
    "AmericanOption": "pdecore.params",
    "MertonCosts": "pdecore.params",
    "MarketMakingModel": "pdecore.market_making_params",
    # numerics
    "SinhGrid": "pdecore.grids",
    "ThetaScheme": "pdecore.schemes",
    # European closed forms
    "bs_price": "pdecore.european",
    "bs_delta": "pdecore.european",
    "bs_gamma": "pdecore.european",
    "bs_vega": "pdecore.european",
    "bs_theta": "pdecore.european",
    # American engine
    "solve_american": "pdecore.american",
    "AmericanResult": "pdecore.american",
    "AmericanSettings": "pdecore.american",
    "SolverDiagnostics": "pdecore.diagnostics",
    "stopping_oracle": "pdecore.oracle",
    "StoppingOracle": "pdecore.oracle",
    "OracleSettings": "pdecore.oracle",
    "bermudan_price": "pdecore.oracle",
    "rule_value": "pdecore.oracle",
    # the facade function keeps its module path (pdecore.dynkin_oracle.dynkin_oracle): its name is the
    # submodule's, which the import system binds on the package, so it cannot be a top-level export
    "DynkinOracle": "pdecore.dynkin_oracle",
    # Dynkin / Merton engine
    "solve_dynkin": "pdecore.dynkin",
    "DynkinResult": "pdecore.dynkin",
    "DynkinSettings": "pdecore.dynkin",
    "solve_merton_costs": "pdecore.merton",
    "MertonResult": "pdecore.merton",
    "MertonSettings": "pdecore.merton",
    # market making engine
    "solve_market_making": "pdecore.market_making",
    "MarketMakingResult": "pdecore.market_making",
    "quadratic_approximation": "pdecore.quadratic",
    "QuadraticApproximation": "pdecore.quadratic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pdecore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
