"""Argument checks shared by every public entry point.

Each check raises :class:`ValueError` whose message names the parameter, shows the offending value
and says how to fix it, e.g. ``volatility must be a finite number > 0, got nan; pass e.g.
volatility=0.2``. Checks return the value converted to the expected Python type so that callers can
write ``self_value = check_positive("volatility", value)``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _fix(fix: str | None) -> str:
    return f"; {fix}" if fix else ""


def check_real(name: str, value, *, fix: str | None = None) -> float:
    """Return ``value`` as a finite float, or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ValueError(f"{name} must be a real number, got {value!r} of type "
                         f"{type(value).__name__}{_fix(fix)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}{_fix(fix)}")
    return value


def check_positive(name: str, value, *, fix: str | None = None) -> float:
    """Finite and strictly positive."""
    value = check_real(name, value, fix=fix)
    if not value > 0.0:
        raise ValueError(f"{name} must be > 0, got {value!r}{_fix(fix)}")
    return value


def check_nonnegative(name: str, value, *, fix: str | None = None) -> float:
    """Finite and ``>= 0``."""
    value = check_real(name, value, fix=fix)
    if value < 0.0:
        raise ValueError(f"{name} must be >= 0, got {value!r}{_fix(fix)}")
    return value


def check_range(name: str, value, low: float, high: float, *, closed_low: bool = True,
                closed_high: bool = True, fix: str | None = None) -> float:
    """Finite and inside ``[low, high]`` (open ends on request)."""
    value = check_real(name, value, fix=fix)
    ok_low = value >= low if closed_low else value > low
    ok_high = value <= high if closed_high else value < high
    if not (ok_low and ok_high):
        interval = f"{'[' if closed_low else '('}{low}, {high}{']' if closed_high else ')'}"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}{_fix(fix)}")
    return value


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None,
              fix: str | None = None) -> int:
    """An integer (bools refused) within optional bounds."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer, got {value!r}{_fix(fix)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}{_fix(fix)}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}{_fix(fix)}")
    return value


def check_choice(name: str, value, choices, *, fix: str | None = None):
    """One of ``choices``."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}{_fix(fix)}")
    return value


def check_finite_array(name: str, values, *, ndim: int | None = None, fix: str | None = None) -> np.ndarray:
    """A float array with only finite entries (and optionally a given number of dimensions)."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {values!r}{_fix(fix)}") from exc
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}{_fix(fix)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite numbers, got {values!r}{_fix(fix)}")
    return array
