"""Command probe of issue 12: every ``pderl`` command's numeric and path flags against bad values.

Each case runs :func:`validation.cli.main` in this process (argparse and the handlers' checks refuse
bad values before any heavy work, so a case costs milliseconds) under ``PDERL_MEMORY_BUDGET=1G`` and
``PDERL_TIME_BUDGET=60`` and a ``SIGALRM`` watchdog. The contract checked for every case:

* a bad value ends with exit code 2 (3: a solver that did not converge) and exactly **one** line on
  stderr that names the flag (or the parameter it feeds); never a traceback, never a long run;
* exit 0 only for the values listed in :data:`MEANINGFUL` (e.g. ``--rate 0``, ``--seed 0``), each with
  the reason it is a valid input.

Commands owned elsewhere (``validate policy``, ``dynkin``) are probed by their owners' tests.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import traceback
from pathlib import Path

import pytest

from validation.cli import main

FLOATS = ("nan", "inf", "-inf", "-1", "0", "1e300", "abc")
INTS = ("nan", "-1", "0", "1e300", "abc", "2.5", str(10**12), str(10**30))
SEEDS = ("nan", "-1", "abc", "2.5", "1e300", str(10**30))

#: (command, flag) → values that are meaningful inputs (exit 0 expected), with the reason.
MEANINGFUL = {
    ("price american", "--rate"): {"-1", "0"},            # rates may be zero or negative (|r| <= 100)
    ("price american", "--dividend"): {"0"},
    ("price american", "--temperature"): {"0"},           # 0: no exploration (the VI / penalized PDE)
    ("price american --penalty", "--temperature"): {"0"},
    ("solve merton --penalty", "--temperature"): {"0"},
    ("boundary american", "--rate"): {"-1", "0"},
    ("boundary american", "--dividend"): {"0"},
    ("boundary american", "--temperature"): {"0"},
    ("oracle stopping", "--rate"): {"-1", "0"},
    ("oracle stopping", "--dividend"): {"0"},
    ("oracle stopping", "--temperature"): {"0"},          # the bang-bang limit
    ("solve merton", "--rate"): {"-1", "0"},
    ("solve merton", "--cost"): {"0"},                    # frictionless: the Merton line
    ("solve merton", "--temperature"): {"0"},
    ("backtest merton", "--rate"): {"-1", "0"},
    ("backtest merton", "--cost"): {"0"},
    ("backtest merton", "--temperature"): {"0"},
    # 0: at the end only / from the start; a period or warm-up longer than the run is the same request
    ("train stopping", "--eval-every"): {"0", str(10**12)},
    ("train stopping", "--checkpoint-every"): {"0", str(10**12)},
    ("train stopping", "--sigma-warmup"): {"0", str(10**12)},
    # a long training run is what a user may ask for (it checkpoints and resumes; budgets bound only
    # evaluations, see pdecore.budget): checked by the parser only
    ("train stopping", "--steps"): {str(10**12)},
    ("train mm", "--steps"): {str(10**12)},
    ("train stopping", "--seed"): {"0"},
    ("train mm", "--seed"): {"0"},
    ("evaluate mm", "--seed"): {"0"},
    ("validate mm", "--seed"): {"0"},
    ("reproduce", "--seed"): {"0"},
    ("sweep", "--retries"): {"0"},                        # 0: no retry
}

AMERICAN = ["--strike", "40", "--rate", "0.06", "--volatility", "0.2", "--maturity", "1"]
#: command → (argv prefix, cheap valid flags; a probed flag replaces its own value here)
COMMANDS = {
    "price american": (["price", "american"], ["--spot", "36", *AMERICAN, "--precision", "fast"]),
    "boundary american": (["boundary", "american"], [*AMERICAN, "--precision", "fast"]),
    "oracle stopping": (["oracle", "stopping"], ["--spot", "36", *AMERICAN, "--steps", "10", "--penalty", "1",
                                                 "--temperature", "0.1", "--nodes-per-std", "4"]),
    "solve merton": (["solve", "merton"], ["--n-space", "100", "--n-time", "20"]),
    # the exploratory engines: --temperature is probed with a finite penalty
    "price american --penalty": (["price", "american"], ["--spot", "36", *AMERICAN, "--precision", "fast",
                                                        "--penalty", "1"]),
    "solve merton --penalty": (["solve", "merton"], ["--n-space", "100", "--n-time", "20", "--penalty", "5"]),
    "backtest merton": (["backtest", "merton"], ["--n-space", "100", "--n-time", "20", "--years", "0.1",
                                                 "--paths", "20", "--steps-per-year", "50"]),
    "train stopping": (["train", "stopping"], ["--steps", "1", "--batch", "16", "--eval-paths", "64",
                                               "--n-steps", "10", "--eval-every", "0", "--sigma-warmup", "0",
                                               "--threads", "1", "--no-progress", "--out", "{new}"]),
    "evaluate stopping": (["evaluate", "stopping", "{stopping_run}"], ["--test-paths", "64"]),
    "validate stopping": (["validate", "stopping", "{stopping_run}"], ["--test-paths", "64", "--out", "{new}"]),
    "train mm": (["train", "mm"], ["--config", "{mm_config}", "--out", "{new}", "--no-progress", "--no-reference",
                                   "--threads", "1"]),
    "evaluate mm": (["evaluate", "mm", "{mm_run}"], ["--paths", "20"]),
    "validate mm": (["validate", "mm", "{mm_run}"], ["--paths", "20", "--out", "{new}"]),
    "reproduce": (["reproduce"], ["--quick", "--only", "american", "--no-progress", "--out", "{new}"]),
    "sweep": (["sweep", "{sweep_spec}"], ["--out", "{new}", "--no-progress"]),
}

FLOAT_FLAGS = {
    "price american --penalty": ["--temperature"],
    "solve merton --penalty": ["--temperature"],
    "price american": ["--spot", "--strike", "--rate", "--volatility", "--maturity", "--dividend", "--penalty",
                       "--temperature"],
    "boundary american": ["--strike", "--rate", "--volatility", "--maturity", "--dividend", "--penalty",
                          "--temperature"],
    "oracle stopping": ["--spot", "--strike", "--rate", "--volatility", "--maturity", "--dividend", "--penalty",
                        "--temperature", "--nodes-per-std"],
    "solve merton": ["--drift", "--rate", "--volatility", "--cost", "--maturity", "--penalty", "--temperature"],
    "backtest merton": ["--drift", "--rate", "--volatility", "--cost", "--maturity", "--years"],
    "train stopping": ["--penalty", "--temperature", "--lr", "--sigma-lr", "--initial-sigma"],
    "train mm": ["--lr"],
}
INT_FLAGS = {
    "price american": ["--n-space", "--n-time"],
    "boundary american": ["--n-space", "--n-time"],
    "oracle stopping": ["--steps"],
    "solve merton": ["--n-space", "--n-time"],
    "backtest merton": ["--n-space", "--n-time", "--paths", "--steps-per-year"],
    "train stopping": ["--steps", "--batch", "--n-steps", "--sigma-warmup", "--eval-every", "--eval-paths",
                       "--checkpoint-every", "--threads"],
    "evaluate stopping": ["--test-paths"],
    "validate stopping": ["--test-paths"],
    "train mm": ["--steps", "--threads"],
    "evaluate mm": ["--paths", "--n-steps", "--threads"],
    "validate mm": ["--paths", "--n-steps", "--threads"],
    "sweep": ["--workers", "--retries"],
}
SEED_FLAGS = {"backtest merton": ["--seed"], "train stopping": ["--seed"], "train mm": ["--seed"],
              "evaluate mm": ["--seed"], "validate mm": ["--seed"], "reproduce": ["--seed"]}

#: Commands that run for seconds or more even on valid input: their meaningful values are checked by
#: the parser only (the run itself is covered by each command's own tests).
HEAVY = {"train stopping--steps", "evaluate mm", "validate mm", "train mm", "reproduce", "sweep", "validate stopping"}

#: flag → other names a message may use for the parameter the flag feeds.
ALIASES = {"--batch": ("batch_size",), "--lr": ("learning_rate", "lr"), "--sigma-lr": ("volatility_learning_rate",),
           "--initial-sigma": ("initial_volatility",), "--sigma-warmup": ("volatility_warmup",),
           "--steps": ("n_steps", "steps", "total_steps"), "--spot": ("spot",), "--years": ("years",),
           "--nodes-per-std": ("nodes_per_std",), "--n-steps": ("n_steps",), "--paths": ("paths", "n_paths"),
           "--test-paths": ("test_paths",), "--eval-paths": ("eval_paths",)}


def _cases():
    for table, values in ((FLOAT_FLAGS, FLOATS), (INT_FLAGS, INTS), (SEED_FLAGS, SEEDS)):
        for command, flags in table.items():
            for flag in flags:
                for value in values:
                    yield pytest.param(command, flag, value, id=f"{command.replace(' ', '-')}{flag}={value[:8]}")


def _names(flag: str) -> tuple[str, ...]:
    bare = flag.lstrip("-")
    return (flag, bare, bare.replace("-", "_"), *ALIASES.get(flag, ()))


def _argv(command: str, flag: str | None, value: str | None, fill: dict) -> list[str]:
    prefix, flags = COMMANDS[command]
    flags = list(flags)
    if flag is not None:
        if flag in flags:
            flags[flags.index(flag) + 1] = value
        else:
            flags += [flag, value]
    return [part.format_map(fill) for part in (*prefix, *flags)]


class _Timeout(Exception):
    pass


def run_cli(argv: list[str], *, seconds: int = 20) -> tuple[int | str, str, str]:
    """``main(argv)`` in-process: ``(exit code or 'traceback'/'timeout', stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()

    def alarm(signum, frame):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
    except _Timeout:
        code = "timeout"
    except Exception:  # noqa: BLE001 - the probe's point: any escaping exception is a failure
        code = "traceback"
        err.write(traceback.format_exc())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def fill(tmp_path_factory):
    """Run folders and spec files the commands need (trained once, as small as the learners allow)."""
    base = tmp_path_factory.mktemp("probe")
    budget = {"PDERL_MEMORY_BUDGET": "1G", "PDERL_TIME_BUDGET": "60"}
    saved = {key: os.environ.get(key) for key in budget}
    os.environ.update(budget)
    mm_config = base / "mm.toml"
    mm_config.write_text(MM_SPEC)
    sweep_spec = base / "sweep.toml"
    sweep_spec.write_text(SWEEP_SPEC)
    counter = iter(range(10**9))
    paths = {"stopping_run": str(base / "stopping_run"), "mm_run": str(base / "mm_run"),
             "mm_config": str(mm_config), "sweep_spec": str(sweep_spec)}
    code, _, err = run_cli(_argv("train stopping", None, None, {**paths, "new": paths["stopping_run"]}), seconds=120)
    assert code == 0, err
    code, _, err = run_cli(_argv("train mm", None, None, {**paths, "new": paths["mm_run"]}), seconds=120)
    assert code == 0, err

    class Fill(dict):
        def __getitem__(self, key):
            return str(base / f"new{next(counter)}") if key == "new" else dict.__getitem__(self, key)

    yield Fill(paths)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


MM_SPEC = """kind = "market_making"
[model]
preset = "paper"
n_options = 1
strikes = [100.0]
maturities = [30.0]
max_inventory = 20
temperature = 0.1
spread_bounds = [0.0, 4.0]
[numerics]
method = "grid"
n_time = 50
[train]
steps = 1
eval_every = 0
checkpoint_every = 0
hidden = 8
layers = 1
batch_paths = 8
paths_every = 1
paths_per_step = 4
n_steps = 20
seed = 0
threads = 1
"""

SWEEP_SPEC = """base = "{base}"
[train]
steps = 1
batch_size = 16
n_steps = 10
volatility_warmup = 0
eval_every = 0
threads = 1
[evaluate]
eval_paths = 64
test_paths = 64
[grid]
"train.seed" = [0]
""".replace("{base}", os.path.join(os.path.dirname(__file__), "..", "..", "examples", "stopping_paper.toml"))


#: Values a command may either accept or refuse (negative dividend yields: a borrow cost is one; the
#: engines decide by their own ranges).
EITHER = {("price american", "--dividend", "-1"), ("boundary american", "--dividend", "-1"),
          ("oracle stopping", "--dividend", "-1")}


def _check(command, flag, value, code, err):
    if (command, flag, value) in EITHER and code == 0:
        return
    lines = [line for line in err.splitlines() if line.strip()]
    if value in MEANINGFUL.get((command, flag), ()):
        assert code == 0, f"{flag} {value} is a meaningful value but got exit {code}:\n{err}"
        return
    assert code in (2, 3), f"{command} {flag} {value}: exit {code}\n{err}"
    assert len(lines) == 1, f"{command} {flag} {value}: {len(lines)} stderr lines:\n{err}"
    assert any(name in lines[0] for name in _names(flag)), f"{command} {flag} {value}: flag not named: {lines[0]}"


@pytest.mark.parametrize("command, flag, value", list(_cases()))
def test_bad_value_refused_in_one_line(command, flag, value, fill):
    if (command in HEAVY or command + flag in HEAVY) and value in MEANINGFUL.get((command, flag), ()):
        from validation.cli import build_parser

        build_parser().parse_args(_argv(command, flag, value, fill))
        return
    code, _, err = run_cli(_argv(command, flag, value, fill))
    _check(command, flag, value, code, err)


# ------------------------------------------------------------------------------------------------ path flags
#: (command, flag or None for the positional, kind of bad path); the flag's value replaces its own.
PATH_CASES = [
    *[("boundary american", "--csv", kind) for kind in ("folder", "no_parent", "existing")],
    *[("boundary american", "--plot", kind) for kind in ("folder", "no_parent", "bad_suffix", "existing")],
    *[("solve merton", "--plot", kind) for kind in ("folder", "no_parent", "bad_suffix", "existing")],
    *[("solve mm", "--config", kind) for kind in ("folder", "missing", "binary")],
    *[("solve mm", "--plot", kind) for kind in ("existing", "no_parent")],
    *[("train stopping", "--config", kind) for kind in ("folder", "missing", "binary")],
    ("train stopping", "--out", "existing"),  # a run folder's missing parents are created (--out runs/r1)
    *[("train mm", "--config", kind) for kind in ("folder", "missing", "binary")],
    ("train mm", "--out", "existing"),
    *[("evaluate stopping", None, kind) for kind in ("missing", "existing")],
    *[("evaluate mm", None, kind) for kind in ("missing", "existing")],
    ("validate stopping", "--out", "existing"),
    ("validate mm", "--out", "existing"),
    ("reproduce", "--out", "existing"),
    *[("sweep", None, kind) for kind in ("folder", "missing", "binary")],
    ("sweep", "--out", "existing"),
]
COMMANDS["solve mm"] = (["solve", "mm"], ["--config", "{mm_config}"])


def _bad_path(kind: str, base) -> str:
    if kind == "folder":
        return str(base)
    if kind == "no_parent":
        return str(base / "no" / "such" / "x.png")
    if kind == "bad_suffix":
        return str(base / "figure.xyz")
    if kind == "missing":
        return str(base / "missing.toml")
    path = base / ("binary.toml" if kind == "binary" else "existing.png")
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary" if kind == "binary" else b"a user's file\n")
    return str(path)


@pytest.mark.parametrize("command, flag, kind", PATH_CASES,
                         ids=[f"{c.replace(' ', '-')}{f or '-RUN'}={k}" for c, f, k in PATH_CASES])
def test_bad_path_refused_in_one_line(command, flag, kind, fill, tmp_path):
    value = _bad_path(kind, tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    if flag is None:
        prefix, flags = COMMANDS[command]
        argv = [part.format_map(fill) for part in prefix[:2]] + [value] + \
            [part.format_map(fill) for part in (*prefix[3:], *flags)]
    else:
        argv = _argv(command, flag, value, fill)
    code, _, err = run_cli(argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, f"{argv}: exit {code}\n{err}"
    assert value in lines[0] or repr(value) in lines[0], f"path not named: {lines[0]}"
    if flag is not None:
        assert flag in lines[0], f"flag not named: {lines[0]}"
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "a refused command wrote next to the path"
    if kind == "existing":
        assert Path(value).read_bytes() == b"a user's file\n", "a user's file was changed"
