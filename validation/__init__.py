"""validation: compare learned policies with the pdecore oracles, in numbers and figures, and the
``pderl`` command line (:mod:`validation.cli`). ``validation`` imports :mod:`rl` and :mod:`pdecore`,
never the reverse.
"""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    """``validation.validate_policy`` (issue 16), imported on first use: torch is heavy."""
    if name == "validate_policy":
        from validation.policies import validate_policy

        return validate_policy
    raise AttributeError(f"module 'validation' has no attribute {name!r}")
