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


def add_run_folder_arguments(parser) -> None:
    """``--out/--resume/--force`` of the training commands (the run-folder policy of ``rl.runs``)."""
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    parser.add_argument("--force", action="store_true", help="overwrite an existing run folder")


def add_black_scholes_arguments(parser, *, spot: bool) -> None:
    """The market and contract of a Black–Scholes American option (``--kind ... --dividend``)."""
    parser.add_argument("--kind", choices=("put", "call"), default="put", help="option kind (default: put)")
    if spot:
        parser.add_argument("--spot", type=float, required=True, help="spot price S0")
    parser.add_argument("--strike", type=float, required=True, help="strike K")
    parser.add_argument("--rate", type=float, required=True, help="risk-free rate r (continuous)")
    parser.add_argument("--volatility", type=float, required=True, help="volatility σ (annualized)")
    parser.add_argument("--maturity", type=float, required=True, help="maturity T in years")
    parser.add_argument("--dividend", type=float, default=0.0, help="dividend yield q (default 0)")


def black_scholes_model_and_option(args):
    """Validated ``(BlackScholes, AmericanOption)`` from :func:`add_black_scholes_arguments`'s flags;
    bad values raise ``ValueError`` naming the parameter (exit code 2 from the CLI's main)."""
    from pdecore import AmericanOption, BlackScholes

    model = BlackScholes(volatility=args.volatility, rate=args.rate, dividend=args.dividend)
    option = AmericanOption(args.kind, strike=args.strike, maturity=args.maturity)
    return model, option
