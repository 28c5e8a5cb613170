"""The ``pderl`` command line.

The first word is a verb, the second names what it acts on::

    pderl price american ...        pderl solve merton ...      pderl train stopping ...
    pderl boundary american ...     pderl solve mm ...          pderl evaluate stopping RUN
    pderl oracle stopping ...       pderl backtest merton ...   pderl validate stopping RUN
    pderl reproduce --quick

Each topic lives in its own module ``validation/cli/cmd_<topic>.py`` exposing
``register(verbs)``, where ``verbs`` maps a verb to its ``argparse`` sub-parser collection; the
topic adds its nouns there and sets ``handler`` with ``set_defaults``. Topic modules import heavy
packages (numba kernels, torch) inside their handlers only, so ``pderl --help`` stays instant.

Errors: a :class:`ValueError` (bad input) becomes a one-line message on stderr and exit code 2; a
:class:`pdecore.exceptions.ConvergenceError` exit code 3; Ctrl-C exit code 130 with one line (training
commands save their last step boundary first, see :meth:`rl.trainer.Trainer.fit`; further Ctrl-C
while exiting are ignored, so a quick series never ends in a traceback).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import signal
import sys

VERBS = {
    "price": "price a contract with a PDE engine",
    "boundary": "compute a whole free boundary",
    "oracle": "compute a discrete-time oracle of an RL scheme",
    "solve": "solve a control problem with a PDE engine",
    "backtest": "backtest a strategy on simulated paths",
    "train": "train a reinforcement-learning agent into a run folder",
    "evaluate": "evaluate a trained run on fresh paths",
    "validate": "write validation figures for a trained run",
    "reproduce": "reproduce the papers' experiments next to the PDE oracle",
    "sweep": "run a grid of experiments on dask.distributed (docs/sweeps.md)",
}


class OneLineErrorParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr (exit code 2).

    argparse's default prints the whole usage block above the error; the CLI's contract (issue 12) is
    one line naming the flag, like the handlers' own ``ValueError`` refusals, so scripts can show it
    as is. The usage stays one ``--help`` away, which the line says.
    """

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _topic_modules():
    package = importlib.import_module(__name__)
    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__) if info.name.startswith("cmd_"))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and documentation)."""
    from pdecore import __version__

    parser = OneLineErrorParser(
        prog="pderl",
        description="PDE oracles and reinforcement learning for optimal stopping and option market making.",
    )
    parser.add_argument("--version", action="version", version=f"pderl {__version__}")
    verb_parsers = parser.add_subparsers(dest="verb", metavar="COMMAND")
    verbs = {}
    for verb, help_text in VERBS.items():
        sub = verb_parsers.add_parser(verb, help=help_text, description=help_text)
        sub.set_defaults(_verb_parser=sub)
        if verb not in ("reproduce", "sweep"):  # verbs without a noun
            verbs[verb] = sub.add_subparsers(dest="noun", metavar="TARGET")
        else:
            verbs[verb] = sub
    for module in _topic_modules():
        module.register(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pderl`` console script; returns the exit code.

    ``argv=None`` (the console script: arguments from ``sys.argv``) means the process exits right after:
    once a Ctrl-C has been caught, later ones are ignored so that exiting cannot be interrupted into a
    traceback and status -2. With an explicit ``argv`` (in-process callers, tests) the SIGINT handler
    is left as it was.
    """
    previous = signal.getsignal(signal.SIGINT)
    try:
        return _dispatch(argv)
    except KeyboardInterrupt:
        if _is_main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("pderl: interrupted (Ctrl-C); a training or reproduce folder continues with --resume", file=sys.stderr)
        if argv is not None and _is_main_thread() and previous is not None:
            signal.signal(signal.SIGINT, previous)
        return 130


def _is_main_thread() -> bool:
    """Whether this is the main thread (the only one where Python may change signal handlers)."""
    import threading

    return threading.current_thread() is threading.main_thread()


def _dispatch(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        target = getattr(args, "_verb_parser", parser)
        target.print_help(sys.stderr)
        return 2
    from pdecore.exceptions import ConvergenceError

    try:
        return int(handler(args) or 0)
    except ValueError as exc:
        print(f"pderl: error: {exc}", file=sys.stderr)
        return 2
    except ConvergenceError as exc:
        print(f"pderl: solver did not converge: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
