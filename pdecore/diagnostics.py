"""One diagnostics shape for every pdecore result, and the freezing of result arrays.

Every solver facade (:func:`pdecore.solve_american`, :func:`pdecore.solve_dynkin`,
:func:`pdecore.solve_merton_costs`, :func:`pdecore.stopping_oracle`, ...) attaches a
:class:`SolverDiagnostics` to its result as ``result.diagnostics``, so that a caller (a benchmark, a
validation stage, a sweep that aggregates hundreds of runs) reads the same fields whatever the engine:
the kernel's status code and its name, a message, the Newton counters and the grid actually used and
the wall time. The shape follows scipy's ``OdeResult``/``OptimizeResult`` (``status``, ``message``,
``success``, ``nfev/njev/nlu`` counters) and QuantEcon's ``results(root, function_calls, iterations,
converged)``; the status codes are the kernels' (:mod:`pdecore._numba`, QuantEcon's ``_ECONVERGED = 0``).

Why a result can still carry a failure status: today every facade raises
:class:`pdecore.exceptions.ConvergenceError` instead of returning a failed result, so ``status`` is 0 on
every returned result; the field is there so that a future ``raise_on_failure=False`` mode (scipy's
convention) needs no new shape.

Results are frozen dataclasses, but a frozen dataclass only stops *rebinding* its fields: the NumPy
arrays inside stay writable, and a caller that writes ``result.values[0] = 0`` would silently change a
cached spline or a later interpolation. :func:`freeze_arrays` marks every ndarray field read-only
(``ndarray.setflags(write=False)``); every result calls it in ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pdecore._numba import STATUS_MAX_ITER, STATUS_MESSAGES, STATUS_NOT_FINITE, STATUS_OK, STATUS_SINGULAR

__all__ = ["SolverDiagnostics", "freeze_arrays", "STATUS_NAMES"]

STATUS_NAMES = {
    STATUS_OK: "converged",
    STATUS_MAX_ITER: "max_iter",
    STATUS_SINGULAR: "singular",
    STATUS_NOT_FINITE: "not_finite",
}
"""Short machine-readable names of the kernel status codes of :mod:`pdecore._numba`."""


@dataclass(frozen=True, slots=True)
class SolverDiagnostics:
    """How a pdecore solve went: status, iteration counters, grid used and wall time.

    Attributes
    ----------
    status : int
        Kernel status code (:mod:`pdecore._numba`): 0 converged, −1 iteration cap reached, −2 zero pivot,
        −3 non-finite iterate.
    message : str
        Human-readable status (the kernel's message, possibly with the solver's context).
    total_iterations : int
        Newton (policy-iteration) steps over the whole solve, i.e. linear solves: scipy's ``nlu``.
    max_iterations : int
        The largest number of Newton steps in one time step (how close the solve came to the cap).
    n_steps : int
        Time sub-steps actually taken (Rannacher half-steps counted separately; for the oracle, the
        number of dates).
    n_time : int
        Time levels requested/stored (the ``n_time`` setting; the oracle's ``n_steps``).
    n_space : int
        Spatial nodes actually used (for the oracle, the interior nodes of its log grid).
    wall_seconds : float
        Wall-clock time of the whole facade call (validation, assembly, kernel, wrapping).
    """

    status: int
    message: str
    total_iterations: int
    max_iterations: int
    n_steps: int
    n_time: int
    n_space: int
    wall_seconds: float

    def __post_init__(self) -> None:
        for name in ("status", "total_iterations", "max_iterations", "n_steps", "n_time", "n_space"):
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name} must be an integer, got {value!r}; pass the kernel's counter")
            object.__setattr__(self, name, int(value))
        for name in ("total_iterations", "max_iterations", "n_steps", "n_time", "n_space"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}; counters cannot be negative")
        if self.max_iterations > self.total_iterations:
            raise ValueError(f"max_iterations={self.max_iterations} exceeds total_iterations="
                             f"{self.total_iterations}; pass the per-step maximum and the total")
        if not isinstance(self.message, str):
            raise ValueError(f"message must be a str, got {self.message!r}")
        seconds = float(self.wall_seconds)
        if not (math.isfinite(seconds) and seconds >= 0.0):
            raise ValueError(f"wall_seconds must be finite and >= 0, got {self.wall_seconds!r}")
        object.__setattr__(self, "wall_seconds", seconds)

    @property
    def success(self) -> bool:
        """``True`` when the kernel converged (``status == 0``), as scipy's ``OdeResult.success``."""
        return self.status == STATUS_OK

    @property
    def status_name(self) -> str:
        """Short name of :attr:`status` (``"converged"``, ``"max_iter"``, ``"singular"``, ``"not_finite"``)."""
        return STATUS_NAMES.get(self.status, f"status_{self.status}")

    @classmethod
    def from_iterations(cls, iterations, *, status: int = STATUS_OK, message: str | None = None, n_time: int,
                        n_space: int, wall_seconds: float) -> "SolverDiagnostics":
        """Build the diagnostics from the per-step Newton counts a kernel wrote (``int64[m]``)."""
        iterations = np.asarray(iterations, dtype=np.int64)
        return cls(status=int(status), message=STATUS_MESSAGES.get(status, f"status {status}") if message is None
                   else message, total_iterations=int(iterations.sum()),
                   max_iterations=int(iterations.max()) if iterations.size else 0, n_steps=int(iterations.size),
                   n_time=int(n_time), n_space=int(n_space), wall_seconds=float(wall_seconds))

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready mapping (fields plus ``success`` and ``status_name``), for run records."""
        record = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        record.update(success=self.success, status_name=self.status_name)
        return record


def freeze_arrays(result) -> None:
    """Mark every ndarray field of the dataclass instance ``result`` read-only (in place).

    Called from the ``__post_init__`` of every pdecore result. Arrays the facade passes in are its own
    (copies of user input), so freezing them does not reach into a caller's data.
    """
    for f in dataclasses.fields(result):
        value = getattr(result, f.name, None)
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
