"""Memory and work budgets: refuse, before allocating, what cannot fit or would not finish.

Every solver, simulator and evaluation of pderl knows from its arguments alone how many bytes it will
hold at once and how many elementary operations it will perform (grid nodes × time levels, paths ×
dates, states × steps). This module turns those estimates into one policy, so that
``solve_american(n_space=10**9)`` or ``pderl backtest merton --years 1000000`` fails in a millisecond
with a message naming the parameter and the fix, instead of swapping the machine or running for days.

Budgets
-------
memory
    ``PDERL_MEMORY_BUDGET`` (bytes, or with a suffix ``K``, ``M``, ``G``, ``T``: ``"8G"``) if set, else
    half of the physical memory (``os.sysconf``), else 4 GiB where that is unknown. Half, because an
    estimate counts the large arrays only (temporaries, the interpreter and torch's allocator come on
    top) and because the machine is usually shared with the user's other work.
work
    ``PDERL_TIME_BUDGET`` (seconds, or with a suffix ``s``, ``m``, ``h``, ``d``: ``"2h"``) if set, else
    one hour. The work of a call is converted to seconds with a deliberately optimistic throughput
    given by the caller (e.g. 1e8 path-steps per second for a vectorized simulator), so only calls that
    would certainly run past the budget are refused. Training runs are *not* bounded by time (a long
    run is what a user asks for, and it checkpoints); evaluations, backtests and oracles are.

Both variables are read at each call, so a user (or a test) can raise a budget for one process.
"""

from __future__ import annotations

import math
import os

#: Fallback memory budget where the physical memory cannot be read.
DEFAULT_MEMORY_BUDGET = 4 * 1024**3
#: Default work budget in seconds.
DEFAULT_TIME_BUDGET = 3600.0

_BYTE_SUFFIXES = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_TIME_SUFFIXES = {"": 1.0, "S": 1.0, "M": 60.0, "H": 3600.0, "D": 86400.0}


def _parse(text: str, suffixes: dict, variable: str) -> float:
    raw = text.strip().upper().removesuffix("IB").removesuffix("B") if variable.endswith("MEMORY_BUDGET") \
        else text.strip().upper()
    unit = raw[-1:] if raw[-1:].isalpha() else ""
    number = raw[: len(raw) - len(unit)]
    try:
        value = float(number) * suffixes[unit]
    except (KeyError, ValueError):
        raise ValueError(f"{variable}={text!r} is not understood; set it to a number with an optional "
                         f"suffix ({', '.join(k for k in suffixes if k)}), e.g. {variable}="
                         f"{'8G' if 'MEMORY' in variable else '2h'}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{variable}={text!r} must be a positive finite amount")
    return value


def memory_budget() -> int:
    """The memory budget in bytes (see the module docstring)."""
    text = os.environ.get("PDERL_MEMORY_BUDGET")
    if text:
        return int(_parse(text, _BYTE_SUFFIXES, "PDERL_MEMORY_BUDGET"))
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return DEFAULT_MEMORY_BUDGET
    return int(physical // 2) if physical > 0 else DEFAULT_MEMORY_BUDGET


def time_budget() -> float:
    """The work budget in seconds (see the module docstring)."""
    text = os.environ.get("PDERL_TIME_BUDGET")
    return _parse(text, _TIME_SUFFIXES, "PDERL_TIME_BUDGET") if text else DEFAULT_TIME_BUDGET


def format_bytes(n_bytes: float) -> str:
    """``1.5 GiB``-style text."""
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n_bytes >= size:
            return f"{n_bytes / size:.3g} {unit}"
    return f"{int(n_bytes)} B"


def format_seconds(seconds: float) -> str:
    """``3.2 h``-style text."""
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def check_memory(what: str, n_bytes: float, *, fix: str) -> float:
    """Refuse a call whose large arrays would exceed the memory budget.

    Parameters
    ----------
    what : str
        The parameters that set the size, with their values, e.g. ``"n_space=1000000000"``.
    n_bytes : float
        The estimate: bytes of the arrays held at once (compute it in floats: no overflow).
    fix : str
        What to change, e.g. ``"pass a smaller n_space (the default 641 is accurate to 1e-4)"``.

    Returns
    -------
    float
        ``n_bytes``, for logging.

    Raises
    ------
    ValueError
        ``"<what> needs about 7.45 GiB of memory, more than the budget of 4 GiB
        (PDERL_MEMORY_BUDGET); <fix>"``.
    """
    budget = memory_budget()
    if not math.isfinite(n_bytes) or n_bytes > budget:
        raise ValueError(f"{what} needs about {format_bytes(n_bytes) if math.isfinite(n_bytes) else 'unbounded'} "
                         f"of memory, more than the budget of {format_bytes(budget)} (set PDERL_MEMORY_BUDGET "
                         f"to raise it); {fix}")
    return n_bytes


def check_work(what: str, n_operations: float, *, rate: float, fix: str) -> float:
    """Refuse a call that would certainly run past the work budget.

    Parameters
    ----------
    what : str
        The parameters that set the work, with their values, e.g. ``"years=1000000, paths=10000"``.
    n_operations : float
        Elementary operations (path-steps, node-steps, states × steps).
    rate : float
        An optimistic throughput in operations per second on one core, so that only calls that
        cannot finish within the budget are refused.
    fix : str
        What to change.

    Returns
    -------
    float
        The estimated seconds.
    """
    seconds = n_operations / rate
    budget = time_budget()
    if not math.isfinite(seconds) or seconds > budget:
        raise ValueError(f"{what} would take at least {format_seconds(seconds) if math.isfinite(seconds) else 'forever'}"
                         f", more than the budget of {format_seconds(budget)} (set PDERL_TIME_BUDGET to raise it);"
                         f" {fix}")
    return seconds


__all__ = ["check_memory", "check_work", "memory_budget", "time_budget", "format_bytes", "format_seconds",
           "DEFAULT_MEMORY_BUDGET", "DEFAULT_TIME_BUDGET"]
