"""``python -m validation.cli`` is the same as the ``pderl`` console script."""

import sys

from validation.cli import main

sys.exit(main())
