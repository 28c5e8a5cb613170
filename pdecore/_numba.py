"""The one place where pderl chooses its Numba options.

Every kernel is decorated with :func:`njit_kernel` so that the compilation policy is uniform:

* ``cache=True``: compiled machine code is written next to the source (``__pycache__``), so the
  compile cost is paid once per machine, not once per process. Caching treats module globals as
  compile-time constants, which is why kernels take every input as an argument.
* ``error_model="numpy"``: a division by zero gives ``inf``/``nan`` as in NumPy instead of raising
  inside the kernel; kernels report failure through integer status codes instead.
* ``fastmath=False``: the reference digits of SPEC.md must not depend on reassociation.

Setting the environment variable ``NUMBA_DISABLE_JIT=1`` runs every kernel as plain Python, which is
how the test-suite measures coverage of kernel code.
"""

from __future__ import annotations

import functools

import numba

njit_kernel = functools.partial(numba.njit, cache=True, error_model="numpy", fastmath=False)

# The one exception: the float32 training kernels of the learners' networks (rl._kernels). Their
# results are compared with PyTorch's to float32 rounding, not with reference digits, and their sums
# over the batch must run in vector lanes, which needs reassociation ("reassoc") and fused multiply-adds
# ("contract"); no flag that changes inf/nan semantics. Bounds checks off as everywhere (the default).
njit_float32_kernel = functools.partial(numba.njit, cache=True, error_model="numpy",
                                        fastmath={"reassoc", "contract", "arcp", "nsz"})

# Status codes returned by kernels (QuantEcon's ``_ECONVERGED`` convention).
STATUS_OK = 0
STATUS_MAX_ITER = -1
STATUS_SINGULAR = -2
STATUS_NOT_FINITE = -3
STATUS_NOT_ONE_INTERVAL = -4

STATUS_MESSAGES = {
    STATUS_OK: "converged",
    STATUS_MAX_ITER: "maximum number of Newton iterations reached",
    STATUS_SINGULAR: "zero pivot in the tridiagonal solve (matrix is not an M-matrix)",
    STATUS_NOT_FINITE: "non-finite value in the iterate",
    STATUS_NOT_ONE_INTERVAL: "the exercise region is not one interval at the end of the grid (projected solve inapplicable)",
}
