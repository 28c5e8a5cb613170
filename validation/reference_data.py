"""The reference numbers of SPEC.md, read from one data file.

Claim: every number that a test, a reproduce stage or a benchmark compares against and that comes from
SPEC.md (the American put table of section 1, the oracle's three prices of section 2, the paper's RL
figures of section 3, the Merton market, band and backtest of section 4) is written once, in
``validation/data/spec_reference.json``, with the SPEC section and the source it was taken from.
Before this module the same digits were typed into eleven files, where a correction in one of them
would have left the others stale.

Keys (dotted, grouped by problem; :func:`spec_keys` lists them):

* ``american.put.case`` (§1): ``{spot, strike, rate, dividend, volatility, maturity}``;
* ``american.put.price`` (§1): 5.318294, the variational-inequality price;
* ``american.put.european`` (§1): 5.059623;
* ``american.put.bermudan_50`` (§1): 5.31196, exercise dates ``j/50``;
* ``american.put.penalized`` (§1): ``{κ: V^κ}`` for κ = 1 … 1000;
* ``american.put.exploratory_kappa10`` (§1): ``{λ: V^Π}`` at κ = 10;
* ``american.put.boundary`` (§1): ``{t: S*(t)}``;
* ``oracle.kappa10_lambda1_L50`` (§2): ``{value0, p_stopping, p_control}``;
* ``rl_stopping.paper_errors`` (§2–3): the paper's 0.2 % / 1 % relative errors and 95 % accuracy;
* ``rl_stopping.sigma_learned`` (§3): 0.4006;
* ``rl_stopping.paper_american_price`` (§3): 5.317, the paper's own finite-difference price;
* ``merton.default_market`` (§4): ``{drift, rate, volatility, cost, maturity}``;
* ``merton.band_t0`` (§4): ``{sell: −0.50, buy: −0.35}``;
* ``merton.backtest_20y`` (§4): ``{frictionless_log_growth: 3.00, buy_and_hold_log_growth: 2.5}``.

Value shapes: a number is returned as ``float``; a JSON object as a ``dict`` of named floats; a list
of ``[parameter, value]`` pairs as a ``dict`` ``{parameter: value}`` (``κ``, ``λ`` or ``t``; an integer
parameter such as κ = 10 stays an ``int``, equal to ``10.0`` for look-ups), in the order SPEC lists them. Every call returns a fresh object, so a caller that edits it does
not change what the next caller reads.

Why ``importlib.resources``: the file ships as package data (``setup.cfg``:
``validation = data/*.csv, data/*.json``), so it is found the same way in a source checkout, an
editable install and a wheel, without assuming a directory layout.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = ["SpecReference", "spec_reference", "spec_value", "spec_keys", "DATA_FILE"]

DATA_FILE = "spec_reference.json"
"""Name of the data file inside the ``validation/data`` package-data folder."""


@dataclass(frozen=True, slots=True)
class SpecReference:
    """One SPEC reference number (or table) with its provenance.

    Attributes
    ----------
    key : str
        Dotted name, e.g. ``"american.put.price"``.
    value : float or dict
        The number, a mapping of named numbers, or ``{parameter: value}`` for a table.
    section : str
        SPEC.md section(s) that state it (e.g. ``"1"``, ``"2, 3"``).
    source : str
        Where SPEC takes it from (table row, paper section, peer library).
    note : str
        What exactly it is and how many digits are quoted (a tolerance below the last quoted digit
        tests the solver against SPEC's rounding, not against the truth).
    """

    key: str
    value: Any
    section: str
    source: str
    note: str = ""


@functools.lru_cache(maxsize=1)
def _entries() -> dict[str, dict]:
    """Parsed data file (cached: read once per process)."""
    text = resources.files("validation").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    raw = json.loads(text)
    entries = {key: entry for key, entry in raw.items() if not key.startswith("_")}
    for key, entry in entries.items():
        missing = {"value", "section", "source"} - set(entry)
        if missing:
            raise ValueError(f"{DATA_FILE}: entry {key!r} lacks {sorted(missing)}; every number needs its value, "
                             "SPEC section and source")
    return entries


def _convert(value):
    """JSON value → float, dict of floats, or ``{parameter: value}`` for a list of pairs."""
    if isinstance(value, bool):
        raise ValueError(f"{DATA_FILE}: a reference value must be numeric, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {name: _convert(item) for name, item in value.items()}
    if isinstance(value, list) and all(isinstance(pair, list) and len(pair) == 2 for pair in value):
        # keys keep their JSON type (κ = 1 stays an int, so labels read "κ = 1"); 1 == 1.0 for look-ups
        return {parameter if isinstance(parameter, int) else float(parameter): float(number)
                for parameter, number in value}
    raise ValueError(f"{DATA_FILE}: cannot read reference value {value!r}; use a number, an object of "
                     "numbers or a list of [parameter, value] pairs")


def spec_keys() -> tuple[str, ...]:
    """All keys of the data file, sorted."""
    return tuple(sorted(_entries()))


def spec_reference(key: str) -> SpecReference:
    """The entry ``key`` with its value and provenance (SPEC section, source, note).

    Raises
    ------
    ValueError
        For an unknown key (the message lists the known ones).
    """
    entry = _entries().get(key)
    if entry is None:
        raise ValueError(f"key must be one of the SPEC reference keys {', '.join(spec_keys())}; got {key!r}. "
                         f"Add the number to validation/data/{DATA_FILE} with its SPEC section and source")
    return SpecReference(key=key, value=_convert(entry["value"]), section=str(entry["section"]),
                         source=str(entry["source"]), note=str(entry.get("note", "")))


def spec_value(key: str, item: str | None = None):
    """The value of ``key`` (a float, or a fresh dict for a table); ``item`` picks one named number.

    Examples
    --------
    >>> spec_value("american.put.price")
    5.318294
    >>> spec_value("oracle.kappa10_lambda1_L50", "p_stopping")
    5.3072
    >>> spec_value("american.put.penalized")[10.0]
    5.2644
    """
    value = spec_reference(key).value
    if item is None:
        return value
    if not isinstance(value, dict) or item not in value:
        names = sorted(value) if isinstance(value, dict) else []
        raise ValueError(f"item must name one number of {key!r} ({names}), got {item!r}")
    return value[item]
