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
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint (to its recorded steps)")
    parser.add_argument("--force", action="store_true", help="replace an existing run folder (only one pderl wrote)")


def add_black_scholes_arguments(parser, *, spot: bool) -> None:
    """The market and contract of a Black–Scholes American option (``--kind ... --dividend``)."""
    parser.add_argument("--kind", choices=("put", "call"), default="put", help="option kind (default: put)")
    if spot:
        parser.add_argument("--spot", type=finite_float, required=True, help="spot price S0")
    parser.add_argument("--strike", type=finite_float, required=True, help="strike K")
    parser.add_argument("--rate", type=finite_float, required=True, help="risk-free rate r (continuous)")
    parser.add_argument("--volatility", type=finite_float, required=True, help="volatility σ (annualized)")
    parser.add_argument("--maturity", type=finite_float, required=True, help="maturity T in years")
    parser.add_argument("--dividend", type=finite_float, default=0.0, help="dividend yield q (default 0)")


def black_scholes_model_and_option(args):
    """Validated ``(BlackScholes, AmericanOption)`` from :func:`add_black_scholes_arguments`'s flags;
    bad values raise ``ValueError`` naming the parameter (exit code 2 from the CLI's main)."""
    from pdecore import AmericanOption, BlackScholes

    model = BlackScholes(volatility=args.volatility, rate=args.rate, dividend=args.dividend)
    option = AmericanOption(args.kind, strike=args.strike, maturity=args.maturity)
    return model, option


#: Largest ``--temperature`` the PDE commands take: the penalty bound of solve_american (λ enters the
#: exploratory HJB as λ/κ beside κ); past it the engines return finite but meaningless numbers (a price
#: of 5e305 for a 40-strike put at λ = 1e300), so the flag is refused by name.
def check_temperature(value) -> None:
    """Refuse ``--temperature`` above the engines' bound :data:`pdecore.params.MAX_TEMPERATURE`, naming
    the flag (the engines refuse it too, naming the parameter)."""
    from pdecore.params import MAX_TEMPERATURE

    if value is not None and value > MAX_TEMPERATURE:
        raise ValueError(f"--temperature {value:g} is past {MAX_TEMPERATURE:g}, where the exploratory scheme is "
                         "meaningless; pass a temperature of the scale of the payoff (e.g. 1)")


# ------------------------------------------------------------------------------------------------ file flags
#: Suffixes ``matplotlib``'s Agg backend saves (``fig.savefig`` picks the format from the suffix and
#: silently appends ``.png`` to a name without one, so ``--plot results`` would write ``results.png``).
IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".svgz", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff", ".webp",
                  ".pgf", ".raw", ".rgba")


def add_overwrite_flag(parser) -> None:
    """``--overwrite``: allow the command's output files to replace existing ones."""
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files (default: refuse)")


def _path_argument(flag: str, path, what: str = "file"):
    """``path`` as a ``Path``; an empty or non-path value is refused naming ``flag``."""
    from pathlib import Path

    if not isinstance(path, (str, Path)) or not str(path).strip():
        raise ValueError(f"{flag} needs a {what} name, got {path!r}")
    return Path(path)


def _check_suffix(flag: str, path, suffixes: tuple[str, ...] | None) -> None:
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise ValueError(f"{flag} {str(path)!r} has {'suffix ' + repr(path.suffix) if path.suffix else 'no suffix'}; "
                         f"use one of {', '.join(suffixes)}")


def check_output_file(flag: str, path, *, suffixes: tuple[str, ...] | None = None, overwrite: bool = False):
    """Validate a file an option writes, before any work is done.

    Refused, with one line naming ``flag`` and the path: an empty name, an existing folder, a parent
    folder that does not exist, a suffix outside ``suffixes`` (for figures: :data:`IMAGE_SUFFIXES`,
    so nothing is silently renamed), and an existing file unless ``overwrite``.

    Returns
    -------
    pathlib.Path
        The path.
    """
    path = _path_argument(flag, path)
    if path.is_dir():
        example = f"{path}/name{suffixes[0] if suffixes else ''}"
        raise ValueError(f"{flag} {str(path)!r} is a folder; give a file name such as {example!r}")
    if not path.parent.is_dir():
        raise ValueError(f"{flag} {str(path)!r}: folder {str(path.parent)!r} does not exist; create it or choose "
                         "another path")
    _check_suffix(flag, path, suffixes)
    if path.exists() and not overwrite:
        raise ValueError(f"{flag} {str(path)!r} already exists; choose a new name or pass --overwrite")
    return path


def check_output_folder(flag: str, path):
    """Validate a folder an option writes files into: refused when the path is an existing file or
    its parent folder does not exist (one line naming ``flag`` and the path)."""
    path = _path_argument(flag, path, "folder")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {str(path)!r} is a file, not a folder; give a folder name")
    if not path.exists() and not path.parent.is_dir():
        raise ValueError(f"{flag} {str(path)!r}: folder {str(path.parent)!r} does not exist; create it or choose "
                         "another path")
    return path


def check_input_text_file(flag: str, path, *, suffixes: tuple[str, ...] | None = None):
    """Validate a text file an option reads (e.g. ``--config FILE.toml``): it must exist, be a file and be
    UTF-8 text (a binary file is refused here instead of failing deep inside a parser).

    Returns
    -------
    pathlib.Path
        The path.
    """
    path = _path_argument(flag, path)
    if not path.exists():
        raise ValueError(f"{flag} {str(path)!r} does not exist")
    if path.is_dir():
        raise ValueError(f"{flag} {str(path)!r} is a directory, so it is not a file; give the file's path")
    if not path.is_file():
        raise ValueError(f"{flag} {str(path)!r} is not a regular file")
    _check_suffix(flag, path, suffixes)
    try:
        data = path.read_bytes()
        if b"\x00" in data:
            raise UnicodeDecodeError("utf-8", data, data.index(b"\x00"), data.index(b"\x00") + 1, "NUL byte")
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{flag} {str(path)!r} is not UTF-8 text (byte {exc.start}); pass a text file") from None
    except OSError as exc:
        raise ValueError(f"{flag} {str(path)!r} cannot be read ({exc.strerror or exc})") from None
    return path


# ------------------------------------------------------------------------------------------ argparse types
#: Largest integer a count or seed flag accepts: numpy's and torch's int64 (a larger value cannot be
#: a count any array holds nor a seed torch.manual_seed takes; sizes below it meet the memory and work
#: budgets of :mod:`pdecore.budget`).
MAX_FLAG_INTEGER = 2**63 - 1


def _integer(text: str, minimum: int, what: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < minimum or value > MAX_FLAG_INTEGER:
        raise argparse.ArgumentTypeError(f"expected {what} (at most 2**63 - 1), got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type of counts (paths, steps, nodes, threads): an integer ``1 <= n <= 2**63 - 1``."""
    return _integer(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    """argparse type of periods where 0 means 'never/at the end' and of retries: ``0 <= n <= 2**63 - 1``."""
    return _integer(text, 0, "a non-negative integer")


def seed_int(text: str) -> int:
    """argparse type of seeds: ``0 <= seed <= 2**63 - 1`` (what numpy's and torch's generators take)."""
    return _integer(text, 0, "a non-negative integer seed")


def finite_float(text: str) -> float:
    """argparse type of real parameters: any finite float (NaN and ±inf are refused here, by the flag's
    name; the parameter classes check the ranges, e.g. a positive volatility)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


#: Most torch threads a ``--threads`` flag takes (torch stores the count in a C int; beyond the cores of
#: any machine more threads only wait for each other).
MAX_THREADS = 1024


def thread_count(text: str) -> int:
    """argparse type of ``--threads``/``--workers``: ``1 <= n <= MAX_THREADS``."""
    import argparse

    value = positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_THREADS} threads, got {value}")
    return value


def retry_count(text: str) -> int:
    """argparse type of ``--retries``: ``0 <= n <= 100`` (a run failing 100 times fails for a reason)."""
    import argparse

    value = nonnegative_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected at most 100 retries, got {value}")
    return value


def integer(text: str) -> int:
    """argparse type of an integer whose range the handler checks (its ``ValueError`` names the flag):
    only the syntax and ``|n| <= 2**63 - 1`` here."""
    return _integer(text, -MAX_FLAG_INTEGER, "an integer")
