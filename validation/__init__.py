"""validation: compare learned policies with the pdecore oracles, in numbers and figures, and the
``pderl`` command line (:mod:`validation.cli`). ``validation`` imports :mod:`rl` and :mod:`pdecore`,
never the reverse.
"""

from __future__ import annotations

__version__ = "0.1.0"
