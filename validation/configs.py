"""TOML configuration of the market-making engine (``pderl solve mm --config FILE.toml``).

Schema (every key optional unless marked; units are those of the model, days in the examples)::

    [model]                       # required table
    preset = "paper"              # optional: start from MarketMakingModel.paper_defaults(n_options)
    n_options = 2                 # only with preset = "paper" (1, 2 or 3)
    spot = 100.0                  # S0
    volatility = 0.02             # σ per sqrt(time unit)
    strikes = [100.0, 105.0]      # one per option (required without preset)
    maturities = [30.0, 30.0]     # one per option, after the horizon
    horizon = 10.0                # T
    intensity_bid = 100.0         # A^b: number or list (one per option)
    intensity_ask = 100.0         # A^a
    decay = 1.5                   # k: number or list
    noise_cov = [[0.0025, 0.00125], [0.00125, 0.0025]]   # ΣΣᵀ (n×n), default zero
    terminal_penalty = 0.1        # ψ0
    risk_aversion = 0.0           # φ
    max_inventory = 30            # Q̄ (required without preset)
    spread_bounds = [0.0, 4.0]    # [δ_min, δ_max]; TOML's inf / -inf allowed when temperature = 0
    temperature = 0.1             # γ

    [numerics]                    # optional table
    method = "grid"               # "grid" (inventory-grid HJB) or "quadratic" (closed-form approx.)
    n_time = 200                  # saved time intervals of the grid solver
    n_substeps = 4                # RK4 steps per interval (default: automatic, stability-checked)
    n_quadrature = 1024           # spread quadrature intervals (γ > 0)
    terminal_coeffs = [1.0, 0.5]  # override c_i = ψ0 E[P_iT²]

Any other key or table raises ``ValueError`` naming it, except the tables listed in
``extra_tables``, which are returned unparsed, and a top-level ``kind = "market_making"`` (the
experiment-spec header of :mod:`validation.experiments`, whose ``[train]`` and ``[evaluate]`` tables
extend this schema for the RL market maker; a training TOML therefore also solves with
``pderl solve mm``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, NamedTuple

MODEL_KEYS = ("spot", "volatility", "strikes", "maturities", "horizon", "intensity_bid", "intensity_ask",
              "decay", "noise_cov", "terminal_penalty", "risk_aversion", "max_inventory", "spread_bounds",
              "temperature")
PRESET_KEYS = ("preset", "n_options")
NUMERICS_KEYS = ("method", "n_time", "n_substeps", "n_quadrature", "terminal_coeffs")
METHODS = ("grid", "quadratic")


class MMConfig(NamedTuple):
    """``(model, numerics, extras)`` read from a market-making TOML file."""

    model: Any
    numerics: dict
    extras: dict


def _check_keys(table: dict, allowed, where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ValueError(f"unknown key {key!r} in [{where}] of the market-making config; allowed keys: "
                             f"{', '.join(allowed)}")


def build_model(table: dict):
    """A :class:`~pdecore.MarketMakingModel` from the ``[model]`` table (validated by the class)."""
    from pdecore.market_making_params import MarketMakingModel

    _check_keys(table, MODEL_KEYS + PRESET_KEYS, "model")
    fields = {key: value for key, value in table.items() if key not in PRESET_KEYS}
    if isinstance(fields.get("spread_bounds"), list):  # TOML arrays are lists; the model refuses other types by name
        fields["spread_bounds"] = tuple(fields["spread_bounds"])
    preset = table.get("preset")
    if preset is not None:
        if preset != "paper":
            raise ValueError(f"unknown preset {preset!r} in [model]; the only preset is \"paper\"")
        return MarketMakingModel.paper_defaults(table.get("n_options", 1), **fields)
    if "n_options" in table:
        raise ValueError("key 'n_options' in [model] is only used with preset = \"paper\"; otherwise the "
                         "number of options is the length of 'strikes'")
    required = ("strikes", "maturities", "max_inventory")
    missing = [key for key in required if key not in fields]
    if missing:
        raise ValueError(f"[model] is missing required key(s) {', '.join(missing)} "
                         '(or use preset = "paper")')
    defaults = dict(spot=100.0, volatility=0.02, horizon=10.0, intensity_bid=100.0, intensity_ask=100.0,
                    decay=1.5)
    return MarketMakingModel(**{**defaults, **fields})


def read_toml(path) -> dict:
    """The mapping of a TOML file; a missing file, a folder or bad TOML is a one-line ``ValueError``."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"spec file {str(path)!r} is a directory, not a TOML file; pass --config FILE.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"spec file {str(path)!r} does not exist; pass --config FILE.toml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"spec file {str(path)!r} cannot be read: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"spec file {str(path)!r} is not valid TOML: {exc}") from None


def load_mm_config(path, extra_tables=()) -> MMConfig:
    """Read a market-making TOML file into ``(model, numerics, extras)``.

    Parameters
    ----------
    path : str or Path
        The TOML file.
    extra_tables : sequence of str
        Top-level tables besides ``[model]`` and ``[numerics]`` that the caller handles itself;
        they are returned in ``extras`` as plain dicts.

    Raises
    ------
    ValueError
        Unreadable TOML, a missing ``[model]``, unknown tables or keys (named), or invalid values.
    """
    path = Path(path)
    data = read_toml(path)
    if data.get("kind", "market_making") != "market_making":
        raise ValueError(f"{path.name} is a {data['kind']!r} spec, not a market-making one")
    data.pop("kind", None)
    allowed_tables = ("model", "numerics") + tuple(extra_tables)
    for key, value in data.items():
        if key not in allowed_tables:
            raise ValueError(f"unknown table or key {key!r} in {path.name}; allowed tables: "
                             f"{', '.join('[' + t + ']' for t in allowed_tables)}")
        if not isinstance(value, dict):
            raise ValueError(f"{key!r} in {path.name} must be a table [{key}], got {value!r}")
    if "model" not in data:
        raise ValueError(f"{path.name} has no [model] table; see docs/market_making.md for the schema")
    model = build_model(data["model"])
    numerics = dict(data.get("numerics", {}))
    _check_keys(numerics, NUMERICS_KEYS, "numerics")
    numerics.setdefault("method", "grid")
    if numerics["method"] not in METHODS:
        raise ValueError(f"[numerics] method must be one of {', '.join(METHODS)}, got {numerics['method']!r}")
    extras = {name: dict(data[name]) for name in extra_tables if name in data}
    return MMConfig(model, numerics, extras)
