"""Helpers shared by the CLI topic modules: printing results as text or JSON."""

from __future__ import annotations

import sys
from typing import Any


def emit(payload: dict[str, Any], *, as_json: bool, text: str | None = None, stream=None) -> None:
    """Print ``payload`` as JSON (``--json``) or ``text`` (default: ``key: value`` lines)."""
    from rl.runs import to_json

    stream = stream or sys.stdout
    if as_json:
        stream.write(to_json(payload) + "\n")
        return
    if text is None:
        lines = []
        for key, value in payload.items():
            if isinstance(value, float):
                lines.append(f"{key:>20}: {value:.10g}")
            else:
                lines.append(f"{key:>20}: {value}")
        text = "\n".join(lines)
    stream.write(text.rstrip("\n") + "\n")


def add_json_flag(parser) -> None:
    """The ``--json`` switch every result-printing command has."""
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")
