"""Exceptions raised by pdecore solvers."""

from __future__ import annotations


class ConvergenceError(RuntimeError):
    """An iterative solver (penalty Newton, root finder) did not converge.

    The message carries the diagnostics needed to act on it: the time step, the iteration count,
    the last residual and the penalty. The same values are available as attributes.
    """

    def __init__(self, message: str, **diagnostics):
        details = ", ".join(f"{key}={value!r}" for key, value in diagnostics.items())
        super().__init__(f"{message} ({details})" if details else message)
        self.diagnostics = diagnostics
