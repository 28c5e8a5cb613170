"""Sweeps: one base experiment × a grid of overrides, run on dask.distributed, aggregated with ±1 s.d.

The papers' experimental sections are grids of training runs (the stopping paper's penalty study:
κ ∈ {1, 5, 10, 20, 30, 40, 50} × 10 seeds; its temperature study; Dong vs DSXZ over λ × lr), each
curve a mean over seeds with a ±1 s.d. band. A sweep runs such a grid as independent
:func:`validation.experiments.run` calls, one run folder each, on a dask cluster, and aggregates
their final metrics. ``docs/sweeps.md`` is the user's guide.

Sweep spec
----------
A TOML file (or a mapping)::

    base = "stopping_paper.toml"   # an experiment spec, relative to this file; or the tables inline:
    kind = "stopping"              # kind, [model], [numerics], [train], [evaluate] (validation.experiments);
    [train]                        # inline tables are merged over the base file's, key by key
    steps = 5
    [grid]                         # dotted overrides -> lists of values; the cartesian product is run
    "train.penalty" = [1, 5]
    "train.seed" = [0, 1]
    "train.algorithm,train.steps" = [["ml", 1000], ["td0", 5000]]   # coupled keys: varied together
    [sweep]                        # optional: SWEEP_OPTIONS
    evaluate = true                # experiments.evaluate(run) after training, stored as evaluation.json
    metrics = ["evaluate/rel_error_stopping"]   # columns of results.csv aggregated and plotted
    x = "train.penalty"            # the figure's x-axis (a grid key)
    group = ["train.penalty"]      # the grid keys a grid point is made of (default: all but the seed)
    curves = ["eval/rel_error_stopping"]   # learning curves from each run's metrics.jsonl (curves.png)
    [sweep.floors]                 # metric -> floor metric, drawn dashed on the metric's panel
    "evaluate/rel_error_stopping" = "evaluate/oracle_floor_stopping"

A grid key of comma-joined dotted keys is *coupled*: each of its values is a list with one value per
key, and the keys vary together as one axis of the cartesian product (the stopping paper trains ML
for 1000 steps and TD(0) for 5000: two settings, not four). Everywhere else (run names, CSV columns,
``group``, ``x``) each key stands alone (:attr:`SweepSpec.keys`).

Every grid point is resolved with :func:`validation.experiments.load_spec` before anything runs, so
a bad value is refused with that function's message (naming table, key and value) and an unknown
key of the sweep file is refused by name.

Execution
---------
``DIR`` (``out``) is a pderl folder (the :data:`rl.runs.MARKER_NAME` marker, kind ``"sweep"``, by
:func:`rl.runs.claim_run_dir`: an existing folder needs ``resume`` or ``force``; it stays locked while
the sweep runs). Each grid point trains into ``DIR/runs/<name>``, ``<name>`` made from its
overrides (``penalty=5,seed=3``; a short hash is added when the name had to be made filesystem-safe
or shortened). A run whose ``summary.json`` says ``"completed"`` and whose ``config.json`` records
the same resolved spec is *finished* and never run again (with ``resume`` the sweep only schedules
the others; a task that dask reschedules after a worker died finds it finished too). A run with a
checkpoint of the same spec continues from it (``experiments.run(..., resume=True)``); any other
leftover of an interrupted attempt is started over. ``reuse`` names earlier sweep folders: a run
of this sweep that one of them finished (same resolved spec; the run name may differ) is copied into
``DIR/runs/<name>`` instead of trained again (the stopping paper's figures 4, 5 and 9 share 40 of
their 380 runs). Workers are :class:`distributed.LocalCluster`
processes with one thread each (default: ``min(cores, runs)`` of them) or the workers of an existing
scheduler (``scheduler="tcp://host:8786"``); each sets torch (and numba) to one thread, since the
parallelism is across runs.

A run that raises is retried ``retries`` times (a worker killed mid-run is one failed attempt, after
dask's own rescheduling); a run still failing is reported with its error in
:attr:`SweepResult.failures` and ``DIR/sweep.json``, and as a row with status ``"failed"`` in
``results.csv``, never dropped.

Outputs
-------
``DIR/results.csv``: one row per run (the run folder, the grid keys' resolved values, status, steps,
training seconds, attempts, error, then the final periodic evaluation of ``summary.json`` as
``eval/...`` columns and, with ``evaluate = true``, the scalar entries of
:func:`validation.experiments.evaluate` as ``evaluate/...``). ``DIR/summary.csv``: per grid point
(the ``group`` keys) the number of completed runs ``n`` and, per metric, the mean and the sample
standard deviation (``ddof = 1``: the spread of one seed's result, the paper's ±1 s.d. bands; empty
for ``n = 1``). ``DIR/sweep.png``: each plotted metric's mean ± 1 s.d. band over the ``x`` key, one
line per combination of the other group keys, and each ``floors`` metric's mean dashed on its
metric's panel (:data:`FLOOR_LABEL`). With ``curves``: ``DIR/curves.csv`` (per grid point and
training step, ``n``, mean and s.d. of each curve metric over the runs' ``metrics.jsonl``) and
``DIR/curves.png`` (mean ± 1 s.d. learning curves, the stopping paper's figure 6). ``DIR/sweep.json``: the plan, every run's status,
attempts and errors, the failures, the cluster used, the versions.

Python API::

    from validation.sweeps import run_sweep
    result = run_sweep("examples/sweep_smoke.toml", out="sweeps/smoke", workers=2)
    result.failures, result.results_csv
"""

from __future__ import annotations

import copy
import csv
import hashlib
import itertools
import json
import math
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

from validation import experiments

#: Top-level keys of a sweep file besides the experiment tables (``kind`` and experiments.TABLES).
SWEEP_TABLES = ("base", "grid", "sweep")

#: Keys of the ``[sweep]`` table and their defaults.
SWEEP_OPTIONS = {"evaluate": False, "metrics": None, "x": None, "group": None, "floors": None, "curves": None,
                 "title": None}

#: Legend of a floor drawn on its metric's panel (``[sweep] floors``): the stopping studies' floors are
#: the discrete oracle's errors at the run's own penalty and temperature (docs/stopping_studies.md).
FLOOR_LABEL = "discrete oracle floor (same κ, λ)"

#: The grid key that holds the repetitions averaged over (every other grid key makes a grid point).
SEED_KEY = "train.seed"

#: Metrics plotted by default, per kind, when present (the stopping paper's Figures 4-6 show price
#: errors and per-date accuracy; names without prefix are looked up as ``evaluate/`` then ``eval/``).
DEFAULT_PLOTTED = {"stopping": ("rel_error_stopping", "rel_error_control", "min_accuracy"),
                   "market_making": ()}

#: Axis labels (with units) of the keys and metrics whose meaning is known.
LABELS = {
    "train.penalty": "penalty κ", "train.temperature": "temperature λ", "train.learning_rate": "learning rate",
    "train.steps": "training steps", "train.batch_size": "batch size (paths)", "train.seed": "seed",
    "train.algorithm": "algorithm", "train.n_steps": "exercise dates", "seconds": "training time (s)",
    "steps": "training steps",
    "rel_error_stopping": "|P_stop − V_PDE| / V_PDE", "rel_error_control": "|P_ctrl − V_PDE| / V_PDE",
    # the same errors with common random numbers (the oracle rule on the same paths as control) / a control variate
    "rel_error_stopping_crn": "|P_stop − V_PDE| / V_PDE (common random numbers)",
    "rel_error_control_crn": "|P_ctrl − V_PDE| / V_PDE (common random numbers)",
    "rel_error_stopping_cv": "|P_stop − V_PDE| / V_PDE (control variate)",
    "rel_error_control_cv": "|P_ctrl − V_PDE| / V_PDE (control variate)",
    "min_accuracy": "min per-date accuracy (fraction)", "mean_accuracy": "mean per-date accuracy (fraction)",
    "min_accuracy_vi": "min per-date accuracy vs VI boundary (fraction)",
    "mean_accuracy_vi": "mean per-date accuracy vs VI boundary (fraction)",
    "oracle_floor_stopping": "oracle |P_stop − V_PDE| / V_PDE", "oracle_floor_control": "oracle |P_ctrl − V_PDE| / V_PDE",
    "p_stopping": "P_stopping (price units)", "p_control": "P_control (price units)",
    "sigma_learned": "learned σ (per √year)", "volatility": "learned σ (per √year)",
}

#: Panel titles of the metrics whose meaning is known (the y-label carries the formula and the unit).
TITLES = {
    "rel_error_stopping": "P_stopping error", "rel_error_control": "P_control error",
    "rel_error_stopping_crn": "P_stopping error, common random numbers",
    "rel_error_control_crn": "P_control error, common random numbers",
    "rel_error_stopping_cv": "P_stopping error, control variate", "rel_error_control_cv": "P_control error, control variate",
    "min_accuracy": "worst-date accuracy vs the oracle's decisions",
    "min_accuracy_vi": "worst-date accuracy vs the VI boundary",
    "mean_accuracy": "mean accuracy vs the oracle's decisions", "mean_accuracy_vi": "mean accuracy vs the VI boundary",
}

#: Longest run-folder name kept readable (longer names are cut and hashed; most filesystems allow 255 bytes).
MAX_NAME = 100
#: Distinct warnings kept per run (each cut to MAX_WARNING_CHARS): a run's warnings travel back to the client
#: and are reported once per message for the whole sweep instead of once per run and worker on stderr.
MAX_RUN_WARNINGS = 20
MAX_WARNING_CHARS = 500

_SAFE = re.compile(r"[^A-Za-z0-9._=,+-]")
RESULTS_NAME, SUMMARY_NAME, FIGURE_NAME, RECORD_NAME = "results.csv", "summary.csv", "sweep.png", "sweep.json"
CURVES_NAME, CURVES_FIGURE_NAME = "curves.csv", "curves.png"
RUNS_FOLDER = "runs"
WORKER_WAIT = 30  # seconds a given scheduler may take to have a worker (workers started just before it)
CONNECT_TIMEOUT = 20  # seconds to reach a given scheduler
EVALUATION_NAME = "evaluation.json"


# ====================================================================== spec
@dataclass(frozen=True)
class GridPoint:
    """One run of a sweep: its overrides (dotted key -> value), folder name and resolved spec."""

    name: str
    overrides: dict
    spec: dict


@dataclass(frozen=True)
class SweepSpec:
    """A resolved sweep: the base experiment spec, the grid, the options and every grid point."""

    base: dict
    grid: dict
    options: dict
    points: tuple
    source: str

    @property
    def kind(self) -> str:
        return self.base["kind"]

    @property
    def keys(self) -> list[str]:
        """The overridden dotted keys, a coupled grid key (``"a,b"``) split into its components."""
        return [part for key in self.grid for part in split_grid_key(key)]

    @property
    def group(self) -> list[str]:
        """The grid keys that make a grid point (default: every grid key but :data:`SEED_KEY`)."""
        if self.options["group"] is not None:
            return list(self.options["group"])
        return [key for key in self.keys if key != SEED_KEY]


def _canonical(spec: Mapping) -> dict:
    """``spec`` as it reads back from JSON (how ``config.json`` records it), for comparisons."""
    from rl.runs import to_json

    return json.loads(to_json(spec, indent=None))


def _merge_tables(base: dict, inline: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in inline.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _format_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, ".12g")
    if isinstance(value, (list, tuple)):
        return "+".join(_format_value(item) for item in value)
    return str(value)


def _short_hash(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:8]


def split_grid_key(key: str) -> list[str]:
    """The dotted keys a grid key varies: ``"train.algorithm,train.steps"`` -> both (varied together)."""
    return [part.strip() for part in key.split(",")]


def run_name(overrides: Mapping[str, Any]) -> str:
    """The run folder's name: ``key=value`` pairs joined by commas, filesystem-safe.

    A key is written by its last component (``train.penalty`` -> ``penalty``) unless two grid keys
    share it. Characters other than letters, digits and ``._=,+-`` become ``_``; when that changed the
    name, or it is longer than :data:`MAX_NAME`, a hash of the overrides is appended so that distinct
    runs never share a folder. No overrides: ``"base"``.
    """
    if not overrides:
        return "base"
    short = [key.rpartition(".")[2] for key in overrides]
    labels = [s if short.count(s) == 1 else key for s, key in zip(short, overrides)]
    readable = ",".join(f"{label}={_format_value(value)}" for label, value in zip(labels, overrides.values()))
    safe = _SAFE.sub("_", readable)
    if safe != readable or len(safe) > MAX_NAME or safe.startswith("."):
        safe = f"{safe[:MAX_NAME].lstrip('.')}-{_short_hash(dict(overrides))}"
    return safe


def _check_options(options: Mapping, grid: list[str], source: str) -> dict:
    unknown = sorted(set(options) - set(SWEEP_OPTIONS))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in [sweep] of {source}; allowed keys: {', '.join(SWEEP_OPTIONS)}")
    resolved = {**SWEEP_OPTIONS, **options}
    if not isinstance(resolved["evaluate"], bool):
        raise ValueError(f"[sweep] evaluate must be a boolean (true/false), got {resolved['evaluate']!r}")
    examples = {"metrics": '["evaluate/rel_error_stopping"]', "group": '["train.penalty"]',
                "curves": '["eval/rel_error_stopping"]'}
    for key, example in examples.items():
        value = resolved[key]
        if value is not None and not (isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)):
            raise ValueError(f"[sweep] {key} must be a list of strings, got {value!r}; e.g. {key} = {example}")
        if value is not None:
            resolved[key] = list(value)
    floors = resolved["floors"]
    if floors is not None:
        if not (isinstance(floors, Mapping) and all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in floors.items())):
            raise ValueError(f"[sweep] floors must be a table of metric -> floor metric (strings), got {floors!r}; "
                             'e.g. floors = {"evaluate/rel_error_stopping" = "evaluate/oracle_floor_stopping"}')
        resolved["floors"] = dict(floors)
    for key in resolved["group"] or ():
        if key not in grid:
            raise ValueError(f"[sweep] group names {key!r}, which is not a key of [grid] ({', '.join(grid) or 'empty'}); "
                             "group lists grid keys")
    if resolved["title"] is not None and not isinstance(resolved["title"], str):
        raise ValueError(f"[sweep] title must be a string, got {resolved['title']!r}; e.g. title = "
                         '"Dai, Sun, Xu & Zhou, figure 5: temperature λ at κ = 10"')
    x = resolved["x"]
    if x is not None and (not isinstance(x, str) or x not in grid):
        raise ValueError(f"[sweep] x must be a key of [grid] ({', '.join(grid) or 'empty'}), got {x!r}")
    return resolved


def load_sweep(spec, *, root=None) -> SweepSpec:
    """The resolved sweep of a TOML file or mapping (see the module docstring for the schema).

    Parameters
    ----------
    spec : path-like or mapping
        The sweep spec.
    root : path-like, optional
        Folder a mapping's ``base`` is relative to (default: the working directory; a file's ``base``
        is relative to the file).

    Returns
    -------
    SweepSpec
        With every grid point resolved by :func:`validation.experiments.load_spec`.

    Raises
    ------
    ValueError
        Unknown top-level keys or ``[sweep]`` keys (named), a grid key that is not a list or an empty
        or repeated list, a missing base file, any value :func:`~validation.experiments.load_spec`
        refuses (the message names the grid point).
    """
    if isinstance(spec, (str, Path)):
        source, root = str(spec), Path(spec).parent
        data = experiments.read_toml(spec)
    else:
        source, root = "the sweep spec", Path(root or ".")
        data = copy.deepcopy(dict(spec))
    allowed = ("kind",) + experiments.TABLES + SWEEP_TABLES
    for key in data:
        if key not in allowed:
            raise ValueError(f"unknown table or key {key!r} in {source}; allowed: base, kind, "
                             f"{', '.join('[' + t + ']' for t in experiments.TABLES)}, [grid], [sweep]")
    inline = {key: value for key, value in data.items() if key not in SWEEP_TABLES}
    base_data: dict = {}
    if "base" in data:
        if not isinstance(data["base"], str):
            raise ValueError(f"base in {source} must be the path of an experiment spec (a string), got {data['base']!r}")
        base_path = root / data["base"]
        if not base_path.is_file():
            raise ValueError(f"base {data['base']!r} of {source} not found (looked for {str(base_path)!r}); "
                             "give a path relative to the sweep file")
        base_data = experiments.read_toml(base_path)
    base_data = _merge_tables(base_data, inline)
    base = experiments.load_spec(base_data)
    grid = data.get("grid", {})
    if not isinstance(grid, Mapping):
        raise ValueError(f"grid in {source} must be a table [grid] of dotted keys to lists, got {grid!r}")
    owner: dict[str, str] = {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"[grid] {key!r} must be a non-empty list of values, got {values!r}; "
                             f"e.g. \"{key}\" = [1, 5, 10]")
        parts = split_grid_key(key)
        for part in parts:
            if not part:
                raise ValueError(f"[grid] {key!r} has an empty key between its commas; write e.g. "
                                 '"train.algorithm,train.steps"')
            if part in owner:
                raise ValueError(f"[grid] key {part!r} is varied twice (in {owner[part]!r} and {key!r}); "
                                 "give each key once")
            owner[part] = key
        if len(parts) > 1:  # coupled keys: each value is one tuple of values, varied together
            for value in values:
                if not isinstance(value, list) or len(value) != len(parts):
                    raise ValueError(f"[grid] {key!r} couples {len(parts)} keys, so each value must be a list of "
                                     f"{len(parts)} values (one per key), got {value!r}; e.g. \"{key}\" = "
                                     f"[[{', '.join(['...'] * len(parts))}], ...]")
    options = _check_options(data.get("sweep", {}), list(owner), source)
    points, seen = [], {}
    for values in itertools.product(*grid.values()):
        overrides = {}
        for key, value in zip(grid, values):
            parts = split_grid_key(key)
            overrides.update(zip(parts, value) if len(parts) > 1 else [(key, value)])
        try:
            resolved = experiments.load_spec(base_data, overrides)
        except ValueError as exc:
            raise ValueError(f"grid point {overrides} of {source}: {exc}") from None
        # the resolved values (5 -> 5.0 for a float key) name the folder and fill the CSV columns
        canonical = {key: _resolved_value(resolved, key) for key in overrides}
        signature = json.dumps(_canonical(resolved), sort_keys=True)
        if signature in seen:
            raise ValueError(f"grid points {seen[signature]} and {overrides} of {source} resolve to the same "
                             "experiment; remove the repeated value from [grid]")
        seen[signature] = overrides
        points.append(GridPoint(name=run_name(canonical), overrides=canonical, spec=_canonical(resolved)))
    names = [point.name for point in points]
    if len(set(names)) != len(names):  # e.g. two string values that differ only in unsafe characters
        points = [GridPoint(name=f"{p.name}-{_short_hash(p.overrides)}" if names.count(p.name) > 1 else p.name,
                            overrides=p.overrides, spec=p.spec) for p in points]
    return SweepSpec(base=_canonical(base), grid=dict(grid), options=options, points=tuple(points), source=source)


def _resolved_value(spec: dict, dotted: str):
    if dotted == "kind":
        return spec["kind"]
    table, _, key = dotted.partition(".")
    return spec[table][key]


# ====================================================================== one run (in a worker)
def _run_is_finished(run_dir: Path, spec: dict, evaluate: bool) -> bool:
    """Whether ``run_dir`` holds a completed run of ``spec`` (and its evaluation when asked for)."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        record = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if summary.get("status") != "completed" or record.get("spec") != spec:
        return False
    return not evaluate or (run_dir / EVALUATION_NAME).is_file()


def _limit_threads() -> None:
    """One thread per worker process: the sweep's parallelism is across runs (N runs on N cores)."""
    import torch

    torch.set_num_threads(1)
    try:
        import numba

        numba.set_num_threads(1)
    except (ImportError, ValueError):  # numba absent, or its threading layer already fixed
        pass


def run_point(spec: dict, run_dir: str, evaluate: bool = False) -> dict:
    """Train (or finish) one grid point into ``run_dir``; runs inside a dask worker.

    Never raises: an error is returned as ``{"ok": False, "error": "Type: message", "traceback": ...}``
    so that the client records it with the attempt (a worker that dies is reported by dask instead).

    Returns
    -------
    dict
        ``ok``, ``computed`` (False when the run was already finished on disk), ``summary`` (the
        run's ``summary.json``), ``evaluation`` (:func:`validation.experiments.evaluate`'s mapping or
        None), ``worker`` (host:pid), ``wall`` (seconds of this call) and ``warnings`` (the distinct
        warnings the run raised, :func:`distinct_warnings`; the client reports them once per message
        for the whole sweep, not once per run on the workers' stderr).
    """
    import socket

    started = time.perf_counter()
    path = Path(run_dir)
    outcome = {"ok": True, "computed": False, "worker": f"{socket.gethostname()}:{os.getpid()}"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # every run records its own, even one the worker showed before
        _run_point(spec, path, evaluate, outcome)
    outcome["warnings"] = distinct_warnings(caught)
    outcome["wall"] = time.perf_counter() - started
    return outcome


def distinct_warnings(caught) -> list[str]:
    """``"Category: message"`` of each distinct warning in ``caught`` (``warnings.WarningMessage`` objects),
    in first-seen order, at most :data:`MAX_RUN_WARNINGS`, each at most :data:`MAX_WARNING_CHARS` long."""
    seen: list[str] = []
    for item in caught:
        text = f"{item.category.__name__}: {item.message}".strip()[:MAX_WARNING_CHARS]
        if text not in seen:
            seen.append(text)
        if len(seen) == MAX_RUN_WARNINGS:
            break
    return seen


def _run_point(spec: dict, path: Path, evaluate: bool, outcome: dict) -> None:
    """:func:`run_point`'s work: fills ``outcome``; an error is recorded in it, never raised."""
    import traceback

    try:
        _limit_threads()
        if not _run_is_finished(path, spec, evaluate=False):
            outcome["computed"] = True
            resumable = (path / "checkpoint.pt").is_file() and _recorded_spec(path) == spec
            started_before = path.is_dir() and any(path.iterdir())
            experiments.run(spec, out=path, resume=resumable, force=started_before and not resumable)
        summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
        evaluation = None
        if evaluate:
            evaluation_path = path / EVALUATION_NAME
            if evaluation_path.is_file() and not outcome["computed"]:
                evaluation = json.loads(evaluation_path.read_text(encoding="utf-8"))
            else:
                from rl.runs import atomic_write_text, to_json

                evaluation = experiments.evaluate(path)
                atomic_write_text(evaluation_path, to_json(evaluation))
                evaluation = json.loads(to_json(evaluation))
        outcome.update(summary=summary, evaluation=evaluation)
    except Exception as exc:  # reported to the client, retried there
        outcome.update(ok=False, error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                       traceback="".join(traceback.format_exception(exc))[-4000:])


def spec_key(spec) -> str:
    """A resolved spec as one comparable string (key order and tuple-vs-list do not matter)."""
    return json.dumps(spec, sort_keys=True)


def _reuse_index(reuse, out: Path) -> dict:
    """``{spec key: run folder}`` of the finished runs in the sweep folders ``reuse`` (first found wins).

    Refuses (ValueError) a folder that is not a sweep folder, and ``out`` itself. A run counts when its
    ``summary.json`` says completed and its ``config.json`` records a spec (:func:`_run_is_finished`).
    """
    index: dict = {}
    for source in reuse:
        folder = Path(source)
        if not (folder / RUNS_FOLDER).is_dir():
            raise ValueError(f"reuse: {str(folder)!r} is not a sweep folder (it has no {RUNS_FOLDER}/ inside); pass "
                             "the --out folder of an earlier `pderl sweep`")
        if folder.resolve() == out.resolve():
            raise ValueError(f"reuse: {str(folder)!r} is this sweep's own --out folder; its finished runs are kept "
                             "anyway with --resume")
        for run_dir in sorted((folder / RUNS_FOLDER).iterdir()):
            if run_dir.name.startswith("."):  # a copy in progress (or left by a crash), never a finished run
                continue
            spec = _recorded_spec(run_dir)
            if spec is None or spec_key(spec) in index or not _run_is_finished(run_dir, spec, evaluate=False):
                continue
            index[spec_key(spec)] = run_dir
    return index


def _copy_run(source: Path, run_dir: Path) -> None:
    """Copy the finished run ``source`` to ``run_dir``, replacing a leftover attempt there. Through a
    temporary sibling and a rename, so an interruption never leaves a half-copied run under the name."""
    for leftover in run_dir.parent.glob(f".{glob_escape(run_dir.name)}.copy-*"):  # of an interrupted copy
        shutil.rmtree(leftover, ignore_errors=True)
    temporary = run_dir.with_name(f".{run_dir.name}.copy-{os.getpid()}")
    shutil.copytree(source, temporary, ignore=shutil.ignore_patterns(".pderl-lock"))
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an unfinished attempt of the same spec, inside this sweep's own folder
    os.replace(temporary, run_dir)


def _recorded_spec(run_dir: Path):
    try:
        return json.loads((run_dir / "config.json").read_text(encoding="utf-8")).get("spec")
    except (OSError, ValueError):
        return None


# ====================================================================== the sweep
@dataclass
class SweepResult:
    """What :func:`run_sweep` did: every run's record, the failures and the files written.

    ``runs`` holds one mapping per grid point (``name``, ``overrides``, ``status`` — ``"completed"``
    or ``"failed"`` —, ``computed`` — False when it was finished before —, ``attempts``, ``errors``,
    ``summary``, ``evaluation``); ``failures`` the failed ones (``name``, ``overrides``, ``error``,
    ``attempts``, ``errors``).
    """

    out: Path
    runs: list
    failures: list
    seconds: float
    scheduler: str
    workers: int
    files: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def computed(self) -> int:
        return sum(1 for run in self.runs if run["status"] == "completed" and run["computed"])

    @property
    def reused(self) -> int:
        return sum(1 for run in self.runs if run["status"] == "completed" and not run["computed"])

    @property
    def copied(self) -> int:
        """Runs copied from the ``reuse`` folders (counted in :attr:`reused` too)."""
        return sum(1 for run in self.runs if run["status"] == "completed" and run.get("reused_from"))

    @property
    def results_csv(self) -> Path:
        return self.out / RESULTS_NAME

    @property
    def summary_csv(self) -> Path:
        return self.out / SUMMARY_NAME

    @property
    def figure(self) -> Path | None:
        return self.files.get("figure")

    def to_dict(self) -> dict:
        """A JSON-ready mapping (what ``pderl sweep --json`` prints)."""
        return {"out": str(self.out), "runs": len(self.runs), "computed": self.computed, "reused": self.reused,
                "copied": self.copied,
                "failed": len(self.failures), "failures": self.failures, "seconds": self.seconds,
                "scheduler": self.scheduler, "workers": self.workers,
                "files": {key: str(value) for key, value in self.files.items()}, "warnings": self.warnings}

    def one_line(self) -> str:
        """``sweep DIR: 4 runs, 3 computed, 1 reused, 0 failed in 12.3 s; wrote ...``."""
        copied = f" ({self.copied} copied from other sweeps)" if self.copied else ""
        text = (f"sweep {self.out}: {len(self.runs)} runs, {self.computed} computed, {self.reused} reused{copied}, "
                f"{len(self.failures)} failed in {self.seconds:.1f} s")
        if self.failures:
            first = self.failures[0]
            text += f" (first failure {first['name']}: {first['error']})"
        return text + "; wrote " + ", ".join(Path(p).name for p in self.files.values())


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


# The LocalCluster workers' dask settings (the nannies hand the client's configuration to the workers they
# spawn): no statistical profiler (by default it samples the task thread's stack every 10 ms, taking the GIL
# from a training step each time), and the event loop's housekeeping at 1 s instead of every 20-500 ms.
QUIET_WORKER_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
                       "distributed.worker.memory.monitor-interval": "1s",
                       "distributed.admin.system-monitor.interval": "1s"}


def worker_environment() -> dict[str, str]:
    """Environment of the LocalCluster's worker processes: one glibc malloc arena (``MALLOC_ARENA_MAX=1``,
    unless the caller's environment sets it).

    Why: a dask worker runs its tasks in a thread of its own, which glibc serves from a secondary arena
    made of 64 MiB heaps, not from the main arena that :func:`rl.trainer.reduce_allocation_overhead`
    tunes; most likely emptied heaps are unmapped and the next step's multi-MiB buffers fault their
    pages in afresh (not traced further). With one arena the task thread allocates as a plain process
    does. Measured on 2 cores (four 5000-step TD(0) runs on 2 workers, A/B twice each): the sweep
    60.7–69.1 s against 54.2–55.1 s, a worker's second run 26.3–31.3 s against 21.5–23.1 s. Workers
    started by hand for ``--scheduler`` should get the same (``MALLOC_ARENA_MAX=1 dask worker ...``,
    docs/sweeps.md).
    """
    return {"MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "1")}


def _start_client(scheduler: str | None, workers: int | None, n_runs: int):
    """A dask client: on the cluster at ``scheduler``, or on a new LocalCluster of one-thread processes."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT}s")
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"cannot reach the dask scheduler at {scheduler!r} ({exc}); start one with "
                             "`dask scheduler` and pass the address it prints (tcp://HOST:8786)") from None
        try:  # tasks sent to a scheduler without workers would wait forever
            client.wait_for_workers(1, timeout=WORKER_WAIT)
        except TimeoutError:
            client.close()
            raise ValueError(f"no dask worker is connected to the scheduler at {scheduler!r} (waited {WORKER_WAIT} s); "
                             f"start some with `MALLOC_ARENA_MAX=1 dask worker {scheduler} --nthreads 1`") from None
        return client, None
    n_workers = workers if workers is not None else max(1, min(_cores(), n_runs))
    # glibc reads MALLOC_ARENA_MAX when a process starts: it must be in the environment the nannies spawn
    # their workers with ("pre-spawn"; a nanny's ``env`` is applied inside the running worker, too late)
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **worker_environment()}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ, **QUIET_WORKER_CONFIG}):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=logging.ERROR)
    return Client(cluster), cluster


def _plan_record(sweep: SweepSpec) -> dict:
    return {"source": sweep.source, "base": sweep.base, "grid": sweep.grid, "options": sweep.options,
            "runs": [{"name": p.name, "overrides": p.overrides} for p in sweep.points]}


def _check_resumable(out: Path, sweep: SweepSpec) -> None:
    """Refuse to resume a sweep folder written from another base spec (its runs would not match)."""
    previous_path = out / RECORD_NAME
    if not previous_path.is_file():
        return
    try:
        previous = json.loads(previous_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if previous.get("plan", {}).get("base") not in (None, sweep.base):
        raise ValueError(f"--resume given but {str(out)!r} holds a sweep of another base experiment spec (its "
                         f"{RECORD_NAME} records a different one); use a new --out, or --force to start over")


def run_sweep(spec, *, out, scheduler: str | None = None, workers: int | None = None, resume: bool = False,
              force: bool = False, retries: int = 1, progress: bool | None = None, reuse=()) -> SweepResult:
    """Run every grid point of a sweep on dask.distributed and aggregate the results.

    Parameters
    ----------
    spec : path-like, mapping or SweepSpec
        The sweep spec (:func:`load_sweep`).
    out : path-like
        The sweep folder ``DIR`` (``DIR/runs/<name>`` per run, ``results.csv``, ``summary.csv``,
        ``sweep.png``, ``sweep.json``).
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://HOST:8786``); default a new
        :class:`distributed.LocalCluster`.
    workers : int, optional
        Worker processes of the LocalCluster (default ``min(cores, runs to do)``); refused with
        ``scheduler`` (its workers are started by hand).
    resume, force : bool
        Continue the sweep in an existing ``DIR`` (finished runs are kept, the others run or
        continue from their checkpoints); delete an existing ``DIR`` pderl wrote and start over.
    retries : int, default 1
        Attempts after the first for a run that fails (``retries = 1``: two attempts).
    progress : bool, optional
        A progress bar over runs on stderr; default: when stderr is a terminal.
    reuse : sequence of path-like, optional
        Earlier sweep folders: a grid point whose resolved spec one of their runs finished is copied from
        there (with its evaluation, or evaluated here when that run has none) instead of trained again.

    Returns
    -------
    SweepResult

    Raises
    ------
    ValueError
        A bad spec, ``DIR`` in use or existing without ``resume``/``force``, a bad ``workers`` or
        ``retries``, an unreachable scheduler. Failed runs do not raise: see ``failures``.
    """
    from rl.runs import atomic_write_json, claim_run_dir, environment_record

    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ValueError(f"retries must be a non-negative integer, got {retries!r}; pass e.g. --retries 1")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}; pass e.g. --workers 2")
    if workers is not None and scheduler is not None:
        raise ValueError("workers and scheduler are exclusive: --workers sizes a local cluster; with --scheduler "
                         "start the workers by hand (`dask worker ADDR --nthreads 1`)")
    sweep = spec if isinstance(spec, SweepSpec) else load_sweep(spec)
    out = Path(out)
    if isinstance(reuse, (str, os.PathLike)):
        reuse = [reuse]
    sources = _reuse_index(reuse, out)
    if resume and out.is_dir():
        _check_resumable(out, sweep)
    started = time.perf_counter()
    fresh = not resume and not (out.is_dir() and any(out.iterdir()))
    with claim_run_dir(out, force=force, resume=resume, kind="sweep"):
        runs_dir = out / RUNS_FOLDER
        runs_dir.mkdir(exist_ok=True)
        record = {"status": "running", "plan": _plan_record(sweep), "reuse": [str(Path(r)) for r in reuse],
                  "environment": environment_record()}
        atomic_write_json(out / RECORD_NAME, record)
        evaluate = sweep.options["evaluate"]
        states = {p.name: {"name": p.name, "overrides": p.overrides, "status": "pending", "computed": False,
                           "attempts": 0, "errors": [], "warnings": [], "summary": None, "evaluation": None}
                  for p in sweep.points}
        todo = []
        for point in sweep.points:
            run_dir = runs_dir / point.name
            source = sources.get(spec_key(point.spec))
            if source is not None and not _run_is_finished(run_dir, point.spec, evaluate=False):
                _copy_run(source, run_dir)
                states[point.name]["reused_from"] = str(source)
            if _run_is_finished(run_dir, point.spec, evaluate):
                states[point.name].update(status="completed", **_read_finished(run_dir, evaluate))
            else:
                todo.append(point)
        address, n_workers = "none (every run was finished)", 0
        connection = None
        if todo:
            try:
                connection = _start_client(scheduler, workers, len(todo))
            except ValueError:
                if fresh:  # nothing ran: leave no folder that a corrected command would need --resume for
                    shutil.rmtree(out, ignore_errors=True)
                raise
        try:
            if todo:
                address, n_workers = _execute(sweep, todo, states, runs_dir, connection, retries=retries,
                                              progress=progress, done=len(sweep.points) - len(todo))
        finally:
            runs = [states[p.name] for p in sweep.points]
            failures = [{"name": r["name"], "overrides": r["overrides"], "error": r["errors"][-1] if r["errors"] else
                         "not run (interrupted)", "attempts": r["attempts"], "errors": r["errors"]}
                        for r in runs if r["status"] != "completed"]
            result = SweepResult(out=out, runs=runs, failures=failures, seconds=time.perf_counter() - started,
                                 scheduler=address, workers=n_workers)
            result.files, output_warnings = write_outputs(sweep, result)
            result.warnings = run_warnings(runs) + output_warnings
            interrupted = sys.exc_info()[0] is not None  # Ctrl-C or a lost scheduler: the runs not done are listed
            record.update(status="interrupted" if interrupted else "completed" if not failures else "failed",
                          scheduler=address, workers=n_workers,
                          seconds=result.seconds, failures=failures, warnings=result.warnings,
                          runs=[{k: v for k, v in r.items() if k not in ("summary", "evaluation")} for r in runs])
            atomic_write_json(out / RECORD_NAME, record)
    return result


def run_warnings(runs: list) -> list[str]:
    """One line per distinct warning of the runs computed in this call: ``"N of M runs: Category: message"``
    (M the runs computed), in first-seen order; runs reused from an earlier call raised none now."""
    computed = [run for run in runs if run.get("computed") or run.get("status") == "failed"]
    counts: dict[str, int] = {}
    for run in computed:
        for text in run.get("warnings", []):
            counts[text] = counts.get(text, 0) + 1
    return [f"{count} of {len(computed)} runs: {text}" for text, count in counts.items()]


def _read_finished(run_dir: Path, evaluate: bool) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    evaluation = json.loads((run_dir / EVALUATION_NAME).read_text(encoding="utf-8")) if evaluate else None
    return {"summary": summary, "evaluation": evaluation}


def _expected_cost(spec: dict) -> int:
    """A run's training steps: the dask priority of its task, so that the longest runs start first and
    the sweep ends on short ones instead of one worker finishing a long run while the others idle
    (figure 5's 1000-step ML runs after its 5000-step TD(0) runs)."""
    return int(spec.get("train", {}).get("steps", 0))


def _execute(sweep: SweepSpec, todo: list, states: dict, runs_dir: Path, connection, *, retries: int,
             progress, done: int) -> tuple[str, int]:
    """Submit ``todo`` to dask, retry failures, fill ``states``; returns (scheduler address, workers)."""
    import uuid

    from distributed import as_completed
    from tqdm.auto import tqdm

    if progress is None:
        progress = sys.stderr.isatty()
    client, cluster = connection  # closed here, whatever happens
    try:
        address = client.scheduler.address
        n_workers = len(client.scheduler_info().get("workers", {}))
        evaluate = sweep.options["evaluate"]
        by_future = {}

        def submit(point):
            states[point.name]["attempts"] += 1
            key = f"pderl-sweep-{point.name}-{states[point.name]['attempts']}-{uuid.uuid4().hex[:8]}"
            future = client.submit(run_point, point.spec, str(runs_dir / point.name), evaluate, key=key, pure=False,
                                   priority=_expected_cost(point.spec))
            by_future[future.key] = point
            return future

        bar = tqdm(total=len(sweep.points), initial=done, unit="run", desc="sweep", disable=not progress,
                   file=sys.stderr)
        queue = as_completed([submit(point) for point in todo])
        for future in queue:
            point = by_future.pop(future.key)
            state = states[point.name]
            try:
                outcome = future.result()
            except Exception as exc:  # a dask-side failure: KilledWorker after a worker died, lost connection
                outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:500]}
            finally:
                future.release()
            state["warnings"] = outcome.get("warnings", [])
            if outcome["ok"]:
                state.update(status="completed", computed=outcome["computed"], summary=outcome["summary"],
                             evaluation=outcome["evaluation"], worker=outcome["worker"])
                bar.update(1)
            else:
                state["errors"].append(outcome["error"])
                if state["attempts"] <= retries:
                    queue.add(submit(point))
                    continue
                state["status"] = "failed"
                state["traceback"] = outcome.get("traceback")
                bar.update(1)
            bar.set_postfix(failed=sum(1 for s in states.values() if s["status"] == "failed"), refresh=False)
        bar.close()
        return address, n_workers
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ====================================================================== aggregation
def _scalars(mapping: Mapping | None, prefix: str) -> dict:
    """The number-valued entries of a metrics mapping, keys prefixed (``eval/...`` already are)."""
    values = {}
    for key, value in (mapping or {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        name = key if key.startswith(prefix) else f"{prefix}{key}"
        values[name] = float(value)
    return values


def results_rows(sweep: SweepSpec, result: SweepResult) -> tuple[list[str], list[dict]]:
    """The columns and rows of ``results.csv`` (one row per run, failed ones included)."""
    rows, metric_names = [], []
    for run in result.runs:
        summary = run["summary"] or {}
        metrics = {**_scalars(summary.get("evaluation"), "eval/"), **_scalars(run["evaluation"], "evaluate/")}
        for name in metrics:
            if name not in metric_names:
                metric_names.append(name)
        rows.append({"run": run["name"], **run["overrides"], "status": run["status"],
                     "steps": summary.get("step"), "seconds": summary.get("seconds"), "attempts": run["attempts"],
                     "error": run["errors"][-1] if run["status"] != "completed" and run["errors"] else "", **metrics})
    columns = ["run", *sweep.keys, "status", "steps", "seconds", "attempts", "error", *metric_names]
    return columns, rows


def _metric_column(name: str, columns: list[str]) -> str | None:
    if name in columns:
        return name
    for prefix in ("evaluate/", "eval/"):
        if prefix + name in columns:
            return prefix + name
    return None


def _mean_sd(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summary_rows(sweep: SweepSpec, columns: list[str], rows: list[dict],
                 metrics: list[str]) -> tuple[list[str], list[dict]]:
    """``summary.csv``: per grid point (the group keys) ``n`` completed runs, mean and s.d. per metric."""
    group = sweep.group
    points: dict[tuple, list[dict]] = {}
    for row in rows:
        key = tuple(json.dumps(row[g], sort_keys=True) for g in group)
        points.setdefault(key, [])
        if row["status"] == "completed":
            points[key].append(row)
    out_columns = [*group, "n", *[f"{m}_{stat}" for m in metrics for stat in ("mean", "sd")]]
    out_rows = []
    for key, members in points.items():
        entry = {g: json.loads(k) for g, k in zip(group, key)}
        entry["n"] = len(members)
        for metric in metrics:
            values = [float(r[metric]) for r in members if r.get(metric) is not None and math.isfinite(float(r[metric]))]
            mean, sd = _mean_sd(values) if values else (math.nan, math.nan)
            entry[f"{metric}_mean"], entry[f"{metric}_sd"] = mean, sd
        out_rows.append(entry)
    return out_columns, out_rows


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    import io

    from rl.runs import atomic_write_text

    def cell(value):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, (list, dict)):
            return json.dumps(value)
        return value

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(column)) for column in columns])
    atomic_write_text(path, buffer.getvalue())


def _bare(key: str) -> str:
    """A metric column without its ``evaluate/`` or ``eval/`` prefix."""
    return key.split("/", 1)[1] if "/" in key else key


def _label(key: str) -> str:
    """The axis label of a grid key or metric column (with its unit where known), else the key itself."""
    return LABELS.get(key) or LABELS.get(_bare(key)) or key


def _title(key: str) -> str:
    """A panel's title: what the metric is where known, else its key."""
    return TITLES.get(_bare(key)) or key


def _figure_title(sweep: "SweepSpec") -> str:
    """``[sweep] title`` (the paper's figure it reproduces), else the sweep file's name."""
    return sweep.options.get("title") or Path(sweep.source).name


def plot_summary(sweep: SweepSpec, rows: list[dict], metrics: list[str], path: Path,
                 floors: Mapping[str, str] | None = None) -> Path | None:
    """``sweep.png``: one panel per metric, mean ± 1 s.d. over seeds against the ``x`` key.

    Lines are the combinations of the other group keys; a numeric x with positive values spanning
    two decades or more gets a log axis, and so do positive means spanning two decades. ``floors``
    maps a plotted metric column to the column of its floor (``[sweep] floors``), drawn dashed on the
    metric's panel as its mean over seeds at each x, each distinct floor once (:func:`_draw_floors`:
    the oracle's floor depends on κ and λ, not on the learner). One legend below the panels. Nothing
    is drawn (None) without completed runs or metrics.
    """
    floors = dict(floors or {})
    group = sweep.group
    if not metrics or not any(row["n"] for row in rows):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key = sweep.options["x"] or next((g for g in group if all(
        isinstance(r[g], (int, float)) and not isinstance(r[g], bool) for r in rows)), group[0] if group else None)
    others = [g for g in group if g != x_key]
    x_values = sorted({json.dumps(r[x_key]) for r in rows}, key=lambda s: (json.loads(s) if _numeric(s) else 0, s)) \
        if x_key else ['"all runs"']
    numeric = x_key is not None and all(_numeric(s) for s in x_values)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.8), squeeze=False)
    legend = False
    for ax, metric in zip(axes[0], metrics):
        floor_lines: list[tuple] = []
        drawn: list[float] = []
        lines: dict[tuple, list[dict]] = {}
        for row in rows:
            lines.setdefault(tuple(json.dumps(row[o]) for o in others), []).append(row)
        for line_key, members in lines.items():
            members = sorted((r for r in members if r["n"] and math.isfinite(r[f"{metric}_mean"])),
                             key=lambda r: x_values.index(json.dumps(r[x_key])) if x_key else 0)
            if not members:
                continue
            xs = [float(r[x_key]) if numeric else x_values.index(json.dumps(r[x_key])) if x_key else 0 for r in members]
            mean = [r[f"{metric}_mean"] for r in members]
            sd = [r[f"{metric}_sd"] if math.isfinite(r[f"{metric}_sd"]) else 0.0 for r in members]
            label = ", ".join(f"{o.rpartition('.')[2]}={json.loads(k)}" for o, k in zip(others, line_key)) or None
            # error bars as well as the band: a band over a single x (one grid point) has no width
            line = ax.errorbar(xs, mean, yerr=sd, marker="o", capsize=3, label=label).lines[0]
            drawn.extend(mean)
            ax.fill_between(xs, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                            color=line.get_color(), alpha=0.2, linewidth=0)
            if metric in floors:
                floor_points = [(x, r[f"{floors[metric]}_mean"]) for x, r in zip(xs, members)
                                if math.isfinite(r[f"{floors[metric]}_mean"])]
                floor_lines.append((floor_points, line.get_color(), label))
        _draw_floors(ax, floor_lines)
        _log_scale_if_wide(ax, drawn, metric)
        if numeric:
            positives = [float(json.loads(s)) for s in x_values]
            if min(positives) > 0 and max(positives) / min(positives) >= 100:
                ax.set_xscale("log")
        else:
            ax.set_xticks(range(len(x_values)), [str(json.loads(s)) for s in x_values])
            ax.set_xlim(-0.5, len(x_values) - 0.5)
        ax.set_xlabel(_label(x_key) if x_key else "")
        ax.set_ylabel(_label(metric))
        ax.set_title(_title(metric), fontsize=9)
        ax.grid(alpha=0.3)
        legend = legend or len(lines) > 1 or bool(floor_lines)
    counts = sorted({r["n"] for r in rows if r["n"]})
    fig.suptitle(f"{_figure_title(sweep)}: mean ± 1 s.d. over seeds (n = {', '.join(map(str, counts))})",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    if legend:
        _figure_legend(fig, axes[0], fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # "tight": the legend below the panels is kept
    plt.close(fig)
    return path


def _log_scale_if_wide(ax, values: list[float], metric: str) -> None:
    """A log y-axis when the plotted means are all positive and span two decades or more (figure 6: Dong
    at lr 0.1 is 50 % off, the others a fraction of a percent, which a linear axis flattens to zero).
    Never for an accuracy: a fraction of [0, 1] reads on a linear axis, and on a log one its ± 1 s.d. band
    below the lowest mean fell off the panel (figure 6, Dong at lr 0.1: 0.7 % worst-date accuracy)."""
    if "accuracy" in _bare(metric):
        return
    positives = [v for v in values if v > 0]
    if positives and len(positives) == len(values) and max(positives) / min(positives) >= 100:
        ax.set_yscale("log")


def _figure_legend(fig, axes, *, fontsize: float) -> None:
    """One legend for all panels, below them: every panel draws the same lines, and a legend inside a
    panel hides its data (figure 6's eight lines and four floors covered half of each panel)."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if not entries:
        return
    width = fig.get_size_inches()[0]
    longest = max(len(label) for label in entries)
    columns = max(1, min(len(entries), int(width / (0.075 * fontsize / 8 * longest + 0.5))))
    fig.legend(list(entries.values()), list(entries), loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=columns, fontsize=fontsize, frameon=False)


def _draw_floors(ax, floor_lines: list[tuple]) -> None:
    """Dashed floors on a panel, each distinct floor once: one grey line labelled :data:`FLOOR_LABEL` when
    every line's floor is the same; a line's own floor in its colour; a floor several (not all) lines
    share in a grey, labelled with what those lines have in common (figure 6: Dong's and TD(0)'s floors at
    the same λ are the same oracle's, drawn once per λ instead of once per learner)."""
    floor_lines = [entry for entry in floor_lines if entry[0]]
    groups: list[list[tuple]] = []
    for entry in floor_lines:
        group = next((g for g in groups if _same_points(g[0][0], entry[0])), None)
        if group is None:
            groups.append([entry])
        else:
            group.append(entry)
    greys = iter(("0.35", "0.55", "0.7") * len(groups))
    for group in groups:
        points, color, label = group[0]
        if len(groups) == 1:  # every line's floor is the same
            color, text = "0.35", FLOOR_LABEL
        elif len(group) == 1:
            text = FLOOR_LABEL if label is None else f"{label}: {FLOOR_LABEL}"
        else:
            parts = [part for part in (label or "").split(", ")
                     if all(part in (other or "").split(", ") for _, _, other in group)]
            color, text = next(greys), f"{', '.join(parts)}: {FLOOR_LABEL}" if parts else FLOOR_LABEL
        ax.plot([x for x, _ in points], [y for _, y in points], linestyle="--", color=color, linewidth=1.3,
                marker="_", label=text)


def _same_points(first: list[tuple], other: list[tuple]) -> bool:
    return len(first) == len(other) and all(
        xa == xb and math.isclose(ya, yb, rel_tol=1e-9, abs_tol=1e-15) for (xa, ya), (xb, yb) in zip(first, other))


def _numeric(text: str) -> bool:
    value = json.loads(text)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def write_outputs(sweep: SweepSpec, result: SweepResult) -> tuple[dict, list[str]]:
    """Write ``results.csv``, ``summary.csv`` and ``sweep.png``; returns (files, warnings)."""
    columns, rows = results_rows(sweep, result)
    metric_columns = [c for c in columns if c.startswith(("eval/", "evaluate/"))]
    warnings = []
    requested = sweep.options["metrics"]
    if requested is None:
        aggregated = ["seconds", *metric_columns]
        plotted = [c for c in (_metric_column(m, columns) for m in DEFAULT_PLOTTED.get(sweep.kind, ())) if c]
        plotted = plotted or metric_columns[:3] or ["seconds"]  # a run without evaluations still has its time
    else:
        plotted = []
        for name in requested:
            column = _metric_column(name, columns)
            if column is None:
                warnings.append(f"[sweep] metrics names {name!r}, which no run reported; columns of {RESULTS_NAME}: "
                                f"{', '.join(metric_columns[:8])}{', ...' if len(metric_columns) > 8 else ''}")
            else:
                plotted.append(column)
        aggregated = list(dict.fromkeys(["seconds", *plotted]))
    floors = {}
    for name, floor_name in (sweep.options["floors"] or {}).items():
        column, floor_column = _metric_column(name, columns), _metric_column(floor_name, columns)
        if column is None or floor_column is None:
            missing = name if column is None else floor_name
            warnings.append(f"[sweep] floors names {missing!r}, which no run reported; its floor is not drawn")
        elif column not in plotted:
            warnings.append(f"[sweep] floors names {name!r}, which is not a plotted metric ({', '.join(plotted)}); "
                            "add it to [sweep] metrics to draw its floor")
        else:
            floors[column] = floor_column
    aggregated = list(dict.fromkeys([*aggregated, *floors.values()]))
    files = {"results": result.out / RESULTS_NAME, "summary": result.out / SUMMARY_NAME}
    _write_csv(files["results"], columns, rows)
    summary_columns, summary = summary_rows(sweep, columns, rows, aggregated)
    _write_csv(files["summary"], summary_columns, summary)
    figure = plot_summary(sweep, summary, plotted, result.out / FIGURE_NAME, floors=floors)
    if figure is not None:
        files["figure"] = figure
    if sweep.options["curves"]:
        files.update(write_curves(sweep, result, warnings))
    return files, warnings


# ====================================================================== learning curves
def curve_rows(sweep: SweepSpec, result: SweepResult, metrics: list[str]) -> tuple[list[str], list[dict], list[str]]:
    """``curves.csv``: per grid point (the group keys) and training step, mean and s.d. of each metric.

    Each completed run's ``runs/<name>/metrics.jsonl`` (one record per periodic evaluation, with its
    ``step``) is read; the runs of a grid point are the seeds averaged over, as in ``summary.csv``
    (``n`` counts the runs holding a finite value at that step; s.d. with ``ddof = 1``, empty for
    ``n = 1``). A metric is looked up as given, then as ``eval/<name>``.

    Returns
    -------
    columns, rows, found
        ``found``: the metric names (as written in the records) that some run reported.
    """
    from rl.runs import read_jsonl

    group = sweep.group
    names = {metric: None for metric in metrics}
    series: dict[tuple, dict[int, dict[str, list[float]]]] = {}
    for run in result.runs:
        if run["status"] != "completed":
            continue
        path = result.out / RUNS_FOLDER / run["name"] / "metrics.jsonl"
        if not path.is_file():
            continue
        key = tuple(json.dumps(run["overrides"][g], sort_keys=True) for g in group)
        steps = series.setdefault(key, {})
        for record in read_jsonl(path):
            for metric in metrics:
                name = metric if metric in record else f"eval/{metric}" if f"eval/{metric}" in record else None
                value = record.get(name) if name else None
                if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                names[metric] = name
                if math.isfinite(float(value)):
                    steps.setdefault(int(record["step"]), {}).setdefault(metric, []).append(float(value))
    found = [m for m in metrics if names[m] is not None]
    columns = [*group, "step", *[f"{names[m]}_{stat}" for m in found for stat in ("n", "mean", "sd")]]
    rows = []
    for key, steps in series.items():
        for step in sorted(steps):
            entry = {g: json.loads(k) for g, k in zip(group, key)}
            entry["step"] = step
            for metric in found:
                values = steps[step].get(metric, [])
                mean, sd = _mean_sd(values) if values else (math.nan, math.nan)
                entry.update({f"{names[metric]}_n": len(values), f"{names[metric]}_mean": mean,
                              f"{names[metric]}_sd": sd})
            rows.append(entry)
    return columns, rows, [names[m] for m in found]


def plot_curves(sweep: SweepSpec, rows: list[dict], metrics: list[str], path: Path) -> Path | None:
    """``curves.png``: one panel per metric, its mean ± 1 s.d. band over seeds against training steps,
    one line per grid point (the paper's figure 6 learning curves). A metric whose positive values
    span two decades or more gets a log y-axis (errors fall from 100 % to a fraction of a percent)."""
    if not metrics or not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    group = sweep.group
    n_lines = len({tuple(json.dumps(row[g]) for g in group) for row in rows})
    many = n_lines > 8  # e.g. the Dynkin grid's 24 (algorithm, λ, lr): 12 colours × 4 line styles
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.4 * len(metrics), 4.0), squeeze=False)
    palette = plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2][:2]  # 12 distinct colours
    for ax, metric in zip(axes[0], metrics):
        lines: dict[tuple, list[dict]] = {}
        for row in rows:
            lines.setdefault(tuple(json.dumps(row[g]) for g in group), []).append(row)
        drawn = []
        for index, (line_key, members) in enumerate(lines.items()):
            members = [r for r in members if r[f"{metric}_n"] and math.isfinite(r[f"{metric}_mean"])]
            if not members:
                continue
            steps = [r["step"] for r in members]
            mean = [r[f"{metric}_mean"] for r in members]
            sd = [r[f"{metric}_sd"] if math.isfinite(r[f"{metric}_sd"]) else 0.0 for r in members]
            label = ", ".join(f"{g.rpartition('.')[2]}={json.loads(k)}" for g, k in zip(group, line_key)) or None
            style = {"color": palette[index % 12], "linestyle": ("-", "--", ":", "-.")[index // 12 % 4]} if many else {}
            line, = ax.plot(steps, mean, label=label, linewidth=1.4, **style)
            ax.fill_between(steps, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                            color=line.get_color(), alpha=0.2, linewidth=0)
            drawn.extend(mean)
        _log_scale_if_wide(ax, drawn, metric)
        ax.set_xlabel("training steps")
        ax.set_ylabel(_label(metric))
        ax.set_title(_title(metric), fontsize=9)
        ax.grid(alpha=0.3)
    counts = sorted({r[f"{m}_n"] for r in rows for m in metrics if r[f"{m}_n"]})
    fig.suptitle(f"{_figure_title(sweep)}: learning curves, mean ± 1 s.d. over seeds "
                 f"(n = {', '.join(map(str, counts))})", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    if n_lines > 1:
        _figure_legend(fig, axes[0], fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # "tight": the legend below the panels is kept
    plt.close(fig)
    return path


def write_curves(sweep: SweepSpec, result: SweepResult, warnings: list[str]) -> dict:
    """Write ``curves.csv`` and ``curves.png`` for ``[sweep] curves``; appends to ``warnings``."""
    requested = sweep.options["curves"]
    columns, rows, found = curve_rows(sweep, result, requested)
    for metric in requested:
        if metric not in found and f"eval/{metric}" not in found:
            warnings.append(f"[sweep] curves names {metric!r}, which no run's metrics.jsonl records; "
                            "curves need periodic evaluations (train.eval_every > 0)")
    files = {}
    if rows:
        files["curves"] = result.out / CURVES_NAME
        _write_csv(files["curves"], columns, rows)
        figure = plot_curves(sweep, rows, found, result.out / CURVES_FIGURE_NAME)
        if figure is not None:
            files["curves_figure"] = figure
    return files


__all__ = ["FLOOR_LABEL", "GridPoint", "LABELS", "SWEEP_OPTIONS", "SweepResult", "SweepSpec", "curve_rows",
           "load_sweep", "plot_curves", "run_name", "run_point", "run_sweep", "split_grid_key", "write_curves"]
