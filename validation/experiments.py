"""Experiments: one spec → learner → :class:`rl.trainer.Trainer` → run folder, for every learner.

This module is the only place that builds a :class:`~rl.trainer.Trainer`: the ``pderl train``
commands, the ``reproduce`` stages and the notebooks all call :func:`run`, so a run started from
Python and the same run started from the command line write the same ``metrics.jsonl`` (the CLI only
turns its flags into :func:`load_spec` overrides).

Spec
----
One schema for every kind of learner, a TOML file or a mapping::

    kind = "stopping"            # or "market_making" (a registry entry per kind: KINDS)
    [model]                      # the problem: market and contract(s)
    [numerics]                   # settings of the reference solver (market making: the grid HJB)
    [train]                      # the learner's settings and the trainer's: steps, eval_every,
                                 # checkpoint_every, eval_at_start, seed, device, threads (+ compile)
    [evaluate]                   # the evaluation: its paths, its seed, its reference ("pde", "grid", "none")

Every key has a default (:func:`schema` lists them per kind); an unknown table or key is refused with
a ``ValueError`` naming it and its table, a value of the wrong type with one naming the key, the type
expected and the value. :func:`load_spec` returns the *resolved* spec (every default filled in, every
value validated by building the learner's configuration); ``config.json`` records it under
``"spec"``, so that ``resume`` and :func:`evaluate` rebuild the run from its own record. Why one
schema: sweeps, resumes and reports handle runs of every kind the same way, and a learner added later
(a Dynkin game) is one more entry of :data:`KINDS` (an adapter that builds the learner and its
reference from a spec, names its trainer settings and rebuilds a learner from a ``config.json``).

Adding a kind
-------------
An adapter object with ``name``; ``schema()`` (table → key → :class:`Key`, with every key of
:data:`TRAINER_KEYS` in ``[train]``: that is where the kind names its trainer settings' defaults);
``resolve(spec)`` (fill the defaults that depend on other keys, validate by building the
configuration); ``build(spec, reference=None)`` (the learner, with its reference built from the spec
unless one is handed in); ``owns_record(learner_record)`` and ``learner_from_record(record, device,
reference)`` (rebuild from ``config.json``); ``evaluate(learner, record, **options)``; optionally
``after_load(learner)``. :func:`register` checks and adds it.

Python API (no argparse)::

    from validation import experiments
    summary = experiments.run("examples/stopping_paper.toml", out="runs/b",
                              overrides={"train.steps": 50, "train.seed": 3})
    evaluation = experiments.evaluate("runs/b")
    learner, record = experiments.load_run("runs/b")
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from pdecore.checks import check_int
from validation.configs import read_toml

TABLES = ("model", "numerics", "train", "evaluate")

#: Trainer settings shared by every kind (``[train]``); the kind's adapter gives their defaults.
TRAINER_KEYS = ("steps", "eval_every", "checkpoint_every", "eval_at_start", "device", "threads")

#: Keys of earlier TOML files and their name in the spec (named in the refusal, not silently accepted).
RENAMED = {"total_steps": "steps"}

ANY = object()  # a key whose type is checked by the configuration class it feeds (market-making [model])


class Key:
    """One key of a spec table: its default and the type its values must have.

    ``types`` is a tuple of Python types; ``float`` also accepts an ``int`` (converted, so that the
    resolved spec is canonical), and ``bool`` is never taken for an ``int``. ``optional`` lets the
    key be ``None`` (then the adapter resolves it, e.g. an evaluation period from the step count).
    """

    __slots__ = ("default", "types", "optional", "choices")

    def __init__(self, default, types=ANY, *, optional: bool = False, choices: tuple | None = None) -> None:
        self.default = default
        self.types = types
        self.optional = optional
        self.choices = choices

    @classmethod
    def like(cls, default) -> "Key":
        """A key typed after its default (a dataclass field's)."""
        if isinstance(default, bool):
            return cls(default, (bool,))
        if isinstance(default, int):
            return cls(default, (int,))
        if isinstance(default, float):
            return cls(default, (float,))
        if isinstance(default, str):
            return cls(default, (str,))
        if isinstance(default, (list, tuple)):
            return cls(default, (list, tuple))
        return cls(default)

    def check(self, table: str, key: str, value):
        """``value`` with its type checked (``ValueError`` naming ``[table] key``)."""
        if value is None and self.optional:
            return None
        if self.types is not ANY:
            ok = False
            for kind in self.types:
                if kind is bool:
                    ok = ok or isinstance(value, bool)
                elif kind is int:
                    ok = ok or (isinstance(value, int) and not isinstance(value, bool))
                elif kind is float:
                    ok = ok or (isinstance(value, (int, float)) and not isinstance(value, bool))
                else:
                    ok = ok or isinstance(value, kind)
            if not ok:
                names = " or ".join({bool: "a boolean (true/false)", int: "an integer", float: "a number",
                                     str: "a string", list: "a list", tuple: "a list"}.get(t, t.__name__)
                                    for t in self.types if t is not tuple)
                raise ValueError(f"[{table}] {key} must be {names}, got {value!r} "
                                 f"({type(value).__name__}); fix the value of {key} in [{table}]")
            if self.types == (float,):
                value = float(value)
            if isinstance(value, tuple):
                value = list(value)
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"[{table}] {key} must be one of {', '.join(map(repr, self.choices))}, got {value!r}")
        return value


def _check_count(table: str, key: str, value, minimum: int) -> None:
    if value is not None and value < minimum:
        what = "a positive integer" if minimum == 1 else "a non-negative integer"
        raise ValueError(f"[{table}] {key} must be {what}, got {value!r}; pass e.g. {key} = 100")


# ====================================================================== kinds
class StoppingKind:
    """The stopping learners of :mod:`rl.stopping` (ML, TD(0), Dong) on an American option.

    ``[model]`` holds the market and the contract (:class:`pdecore.BlackScholes` and
    :class:`pdecore.AmericanOption` fields plus ``spot``), ``[train]`` the other
    :class:`rl.stopping.config.StoppingConfig` fields and the trainer's settings, ``[evaluate]`` the
    test paths and the reference (``"pde"``: the VI price and boundary and the discrete oracle,
    solved before training by :func:`validation.stopping.build_reference`; ``"none"``). ``[numerics]`` has no keys yet (the references use
    pdecore's default grids). Defaults: the paper's Table 1 (the same as ``pderl train stopping``).
    """

    name = "stopping"
    MODEL_FIELDS = ("kind", "spot", "strike", "maturity", "volatility", "rate", "dividend")
    EVALUATE_FIELDS = ("eval_paths", "test_paths", "eval_seed")
    TRAINER_DEFAULTS = {"steps": 1000, "eval_every": 10, "checkpoint_every": 100, "eval_at_start": True,
                        "device": "cpu", "threads": 0, "compile": False}

    def config_class(self):
        from rl.stopping.config import StoppingConfig

        return StoppingConfig

    def schema(self) -> dict[str, dict[str, Key]]:
        config_fields = {f.name: f.default for f in dataclass_fields(self.config_class())}
        model = {name: Key.like(config_fields[name]) for name in self.MODEL_FIELDS if name in config_fields}
        evaluate = {name: Key.like(config_fields[name]) for name in self.EVALUATE_FIELDS if name in config_fields}
        evaluate["reference"] = Key("pde", (str,), choices=("pde", "none"))
        if "kind" in model:  # the option's kind (the AmericanOption refuses others only when built)
            model["kind"].choices = ("put", "call")
        train = {name: Key.like(default) for name, default in config_fields.items()
                 if name not in model and name not in evaluate}
        train.update({name: Key.like(default) for name, default in self.TRAINER_DEFAULTS.items()})
        return {"model": model, "numerics": {}, "train": train, "evaluate": evaluate}

    def resolve(self, spec: dict) -> None:
        """Validate by building the configuration (a bad value is refused by StoppingConfig)."""
        self.config(spec)

    def config(self, spec: dict):
        names = {f.name for f in dataclass_fields(self.config_class())}
        values = {key: value for table in ("model", "train", "evaluate") for key, value in spec[table].items()
                  if key in names}
        return self.config_class()(**values)

    def reference(self, spec: dict, config):
        """The VI price and boundary and the discrete oracle (:func:`validation.stopping.build_reference`),
        solved here and handed to the learner, which only reads them."""
        from validation.stopping import build_reference

        return build_reference(config) if spec["evaluate"]["reference"] == "pde" else None

    def build(self, spec: dict, *, reference=None):
        import warnings

        from rl.stopping.config import ExerciseWarning
        from rl.stopping.learner import StoppingLearner

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExerciseWarning)  # already issued once by load_spec
            config = self.config(spec)
        if reference is None:
            reference = self.reference(spec, config)
        elif _is_factory(reference):
            reference = reference(config)
        return StoppingLearner(config, reference=reference, device=spec["train"]["device"],
                               compile=spec["train"]["compile"])

    def owns_record(self, learner_record: dict) -> bool:
        return learner_record.get("learner") == "stopping"

    def spec_from_record(self, record: dict) -> dict:
        """The spec of a run recorded before specs existed (its learner config and trainer settings)."""
        values = self.config_class().from_dict({k: v for k, v in record["learner"].items() if k != "learner"}).to_dict()
        keys = self.schema()
        spec = {"kind": self.name, "numerics": {}}
        for table in ("model", "train", "evaluate"):
            spec[table] = {key: values[key] for key in keys[table] if key in values}
        spec["train"].update(_recorded_trainer_settings(record))
        return spec

    def learner_from_record(self, record: dict, *, device: str = "cpu", reference="default"):
        from rl.stopping.learner import StoppingLearner

        config_fields = {k: v for k, v in record["learner"].items() if k != "learner"}
        config = self.config_class().from_dict(config_fields)
        if reference == "pde":
            from validation.stopping import build_reference

            reference = build_reference(config)
        elif _is_factory(reference):
            reference = reference(config)
        # default: none (the final evaluation, validation.stopping.evaluate_learner, solves its own)
        return StoppingLearner(config, reference=None if reference == "default" else reference, device=device)

    def evaluate(self, learner, record: dict, *, test_paths: int | None = None, **unknown) -> dict:
        """:func:`validation.stopping.evaluate_learner` on ``test_paths`` (default: the spec's)."""
        from validation.stopping import evaluate_learner, public_evaluation

        _refuse_options(unknown, ("test_paths", "device"))
        evaluation = public_evaluation(evaluate_learner(learner, test_paths=test_paths))
        evaluation["step"] = record["checkpoint_step"]
        evaluation["algorithm"] = learner.config.algorithm
        return evaluation


class MarketMakingKind:
    """The market-making learner of :mod:`rl.market_making` (policy iteration, Fang & Xu Algorithm 1).

    ``[model]`` and ``[numerics]`` are the schema of ``pderl solve mm`` (:mod:`validation.configs`),
    ``[train]`` the :class:`rl.market_making.config.MMTrainConfig` fields (its ``total_steps`` is the
    trainer's ``steps``) and the trainer's settings, ``[evaluate]`` the reference of the periodic spread
    errors (``"grid"``: :func:`pdecore.solve_market_making` when the inventory grid is feasible and
    ``numerics.method = "grid"``; ``"none"``) and the defaults of :func:`evaluate` (paths, time steps,
    seed of the common random numbers).
    """

    name = "market_making"
    TRAINER_DEFAULTS = {"steps": 150, "eval_every": None, "checkpoint_every": None, "eval_at_start": False,
                        "device": "cpu", "threads": 1}

    def config_class(self):
        from rl.market_making.config import MMTrainConfig

        return MMTrainConfig

    def schema(self) -> dict[str, dict[str, Key]]:
        from validation.configs import MODEL_KEYS, NUMERICS_KEYS, PRESET_KEYS

        model = {name: Key(None) for name in MODEL_KEYS + PRESET_KEYS}
        numerics = {name: Key(None) for name in NUMERICS_KEYS}
        numerics.update({name: Key(None, (int,), optional=True) for name in ("n_time", "n_substeps", "n_quadrature")
                         if name in numerics})
        numerics["method"] = Key("grid", (str,), choices=("grid", "quadratic"))
        train = {f.name: Key.like(f.default) for f in dataclass_fields(self.config_class()) if f.name != "total_steps"}
        for name, default in self.TRAINER_DEFAULTS.items():
            if name not in train:
                train[name] = Key(default, (int,), optional=True) if default is None else Key.like(default)
        evaluate = {"reference": Key("grid", (str,), choices=("grid", "none")), "paths": Key(4000, (int,)),
                    "n_steps": Key(None, (int,), optional=True), "seed": Key(12345, (int,))}
        return {"model": model, "numerics": numerics, "train": train, "evaluate": evaluate}

    def resolve(self, spec: dict) -> None:
        train = spec["train"]
        every = max(1, train["steps"] // 10)  # ten evaluations and checkpoints per run unless told
        for key in ("eval_every", "checkpoint_every"):
            if train[key] is None:
                train[key] = every
        # the model keys without a value were not given: keep the table as written (presets fill it)
        spec["model"] = {key: value for key, value in spec["model"].items() if value is not None}
        spec["numerics"] = {key: value for key, value in spec["numerics"].items() if value is not None}
        _check_count("evaluate", "paths", spec["evaluate"]["paths"], 1)
        _check_count("evaluate", "n_steps", spec["evaluate"]["n_steps"], 1)
        _check_count("evaluate", "seed", spec["evaluate"]["seed"], 0)
        self.model(spec)
        self.config(spec)

    def model(self, spec: dict):
        from validation.configs import build_model

        try:
            return build_model(dict(spec["model"]))
        except TypeError as exc:  # a wrong type surfaces as TypeError inside the model's validators
            raise ValueError(f"[model] has a value of the wrong type: {exc}") from None

    def config(self, spec: dict):
        names = {f.name for f in dataclass_fields(self.config_class())}
        values = {key: value for key, value in spec["train"].items() if key in names}
        values["total_steps"] = spec["train"]["steps"]
        try:
            return self.config_class()(**values)
        except TypeError as exc:
            raise ValueError(f"[train] has a value of the wrong type: {exc}") from None

    def reference(self, spec: dict, model):
        from validation.market_making import grid_feasible

        numerics = spec["numerics"]
        if spec["evaluate"]["reference"] != "grid" or numerics.get("method", "grid") != "grid" \
                or not grid_feasible(model):
            return None
        import pdecore

        # at least 200 saved intervals: the spread errors interpolate the grid policy in time
        return pdecore.solve_market_making(model, n_time=max(200, int(numerics.get("n_time", 200))))

    def build(self, spec: dict, *, reference=None):
        from rl.market_making.learner import MarketMakingLearner

        model = self.model(spec)
        if reference is None:
            reference = self.reference(spec, model)
        elif _is_factory(reference):
            reference = reference(model)
        return MarketMakingLearner(model, self.config(spec), reference=reference)

    def owns_record(self, learner_record: dict) -> bool:
        return learner_record.get("kind") == "market_making"

    def spec_from_record(self, record: dict) -> dict:
        """The spec of a run recorded before specs existed: the model's recorded fields, the learner's
        settings (through ``MMTrainConfig.from_record``, which knows removed options), the trainer's, and
        the ``[numerics]`` of the recorded config file when it is still there (they set the reference
        grid of the spread errors)."""
        from dataclasses import asdict

        from validation.configs import load_mm_config

        train = asdict(self.config_class().from_record(record["learner"]["train"]))
        train.pop("total_steps")
        train.update(_recorded_trainer_settings(record))
        numerics = {}
        config_file = record.get("config_file")
        if config_file and Path(config_file).is_file():
            numerics = load_mm_config(config_file, extra_tables=("train", "evaluate")).numerics
        return {"kind": self.name, "model": dict(record["learner"]["model"]), "numerics": numerics, "train": train}

    def learner_from_record(self, record: dict, *, device: str = "cpu", reference="default"):
        from pdecore.market_making_params import MarketMakingModel
        from rl.market_making.learner import MarketMakingLearner

        learner_record = record["learner"]
        fields = dict(learner_record["model"])
        fields["spread_bounds"] = tuple(fields["spread_bounds"])
        model = MarketMakingModel(**fields)
        # from_record: runs recorded before an option was removed still load; device: where to evaluate
        train = self.config_class().from_record(learner_record["train"], device=device)
        return MarketMakingLearner(model, train, reference=None if reference == "default" else reference)

    def after_load(self, learner) -> None:
        learner.network.eval()

    def evaluate(self, learner, record: dict, *, paths: int | None = None, n_steps: int | None = None,
                 seed: int | None = None, reference=None, **unknown) -> dict:
        """:func:`validation.market_making.evaluate_run` (defaults: the spec's ``[evaluate]``)."""
        from validation.market_making import evaluate_run

        _refuse_options(unknown, ("paths", "n_steps", "seed", "reference"))
        defaults = record.get("spec", {}).get("evaluate", {})
        paths = defaults.get("paths", 4000) if paths is None else paths
        n_steps = defaults.get("n_steps") if n_steps is None else n_steps
        seed = defaults.get("seed", 12345) if seed is None else seed
        return evaluate_run(learner, n_paths=paths, n_steps=n_steps, seed=seed, reference=reference)


#: The registry of experiment kinds: one adapter per learner (a Dynkin learner adds one entry).
KINDS: dict[str, Any] = {}


def register(adapter) -> None:
    """Add an experiment kind (see "Adding a kind" in the module docstring)."""
    missing = [key for key in TRAINER_KEYS if key not in adapter.schema()["train"]]
    if missing:
        raise ValueError(f"experiment kind {adapter.name!r} lacks the trainer keys {missing} in its [train] schema")
    KINDS[adapter.name] = adapter


register(StoppingKind())
register(MarketMakingKind())


def _register_high_dim_stopping() -> None:
    """The d-dimensional stopping learner (basket put, fBm; issue 17), kept in its own module."""
    from validation.high_dim_stopping import HighDimStoppingKind

    register(HighDimStoppingKind())


_register_high_dim_stopping()


def _register_dynkin() -> None:
    """The Dynkin-game learners of Merton's problem with costs (issue 13), kept in validation.dynkin."""
    from validation.dynkin import DynkinKind

    register(DynkinKind())


_register_dynkin()


def trainer_settings(spec: dict) -> dict:
    """The :class:`rl.trainer.Trainer` keywords of a resolved spec (the same keys for every kind; the
    learner's own seed seeds the trainer's global generators too)."""
    train = spec["train"]
    return {"total_steps": train["steps"], "eval_every": train["eval_every"],
            "checkpoint_every": train["checkpoint_every"], "eval_at_start": train["eval_at_start"],
            "seed": train["seed"], "device": train["device"]}


def _recorded_trainer_settings(record: dict) -> dict:
    """The ``[train]`` trainer keys of a ``config.json``'s ``"trainer"`` entry (the source of truth on
    resume: a resume that extended the run updated it)."""
    trainer = record["trainer"]
    settings = {"steps": trainer["total_steps"], "eval_every": trainer["eval_every"],
                "checkpoint_every": trainer["checkpoint_every"]}
    settings.update({key: trainer[key] for key in ("eval_at_start", "device") if key in trainer})
    return settings


def _record_kind(record: dict, run_dir: Path) -> str:
    """The kind of a recorded run: its spec's, else the learner record's (runs from before specs)."""
    kind = record.get("spec", {}).get("kind")
    if kind is not None:
        return kind
    owners = [name for name, adapter in KINDS.items() if adapter.owns_record(record.get("learner", {}))]
    if not owners:
        raise ValueError(f"{str(run_dir)!r} holds a run of an unknown learner; known kinds: {', '.join(KINDS)}")
    return owners[0]


def _is_factory(reference) -> bool:
    """A reference given as a function of the learner's configuration (e.g. ``PDEReferences.stopping_reference``)."""
    import inspect

    return inspect.isfunction(reference) or inspect.ismethod(reference)


def _refuse_options(unknown: dict, allowed) -> None:
    if unknown:
        raise ValueError(f"unknown evaluation option(s) {sorted(unknown)}; allowed: {', '.join(allowed)}")


def _adapter(kind) -> Any:
    if kind not in KINDS:
        raise ValueError(f"unknown experiment kind {kind!r}; set kind to one of {', '.join(map(repr, KINDS))}")
    return KINDS[kind]


def schema(kind: str) -> dict[str, dict[str, Any]]:
    """The defaults of every table of a ``kind`` (``None``: not set, resolved by the kind)."""
    return {table: {key: entry.default for key, entry in keys.items()} for table, keys in _adapter(kind).schema().items()}


# ====================================================================== specs
def _parse_override_key(dotted: str) -> tuple[str, str | None]:
    if not isinstance(dotted, str):
        raise ValueError(f"override key {dotted!r} must be a string such as 'train.steps'")
    if dotted == "kind":
        return "kind", None
    table, _, key = dotted.partition(".")
    if table not in TABLES or not key or "." in key:
        raise ValueError(f"override key {dotted!r} is not 'table.key' with table one of {', '.join(TABLES)} "
                         "(e.g. 'train.steps')")
    return table, key


def load_spec(spec, overrides: Mapping[str, Any] | None = None, *, kind: str | None = None) -> dict:
    """The resolved, validated experiment spec.

    Parameters
    ----------
    spec : path-like or mapping
        A TOML file or a mapping with ``kind`` and the tables ``model``, ``numerics``, ``train``,
        ``evaluate`` (each optional).
    overrides : mapping, optional
        Dotted keys replacing single values: ``{"train.steps": 50, "train.seed": 3}``; an unknown
        dotted key is refused like an unknown key of the file.
    kind : str, optional
        The kind expected by the caller (``pderl train stopping`` expects ``"stopping"``): used when
        the spec names none, and a spec naming another kind is refused.

    Returns
    -------
    dict
        ``{"kind", "model", "numerics", "train", "evaluate"}`` with every default filled in (plain
        JSON types), validated by building the learner's configuration.

    Raises
    ------
    ValueError
        A missing or unreadable file, unknown tables or keys (named with their table), values of the
        wrong type (named), or values the configuration classes refuse.
    """
    source = str(spec) if isinstance(spec, (str, Path)) else "the spec"
    data = read_toml(spec) if isinstance(spec, (str, Path)) else copy.deepcopy(dict(spec))
    for key, value in data.items():
        if key == "kind":
            continue
        if key not in TABLES:
            raise ValueError(f"unknown table or key {key!r} in {source}; allowed: kind and the tables "
                             f"{', '.join('[' + t + ']' for t in TABLES)}")
        if not isinstance(value, Mapping):
            raise ValueError(f"{key!r} in {source} must be a table [{key}], got {value!r}")
    overrides = dict(overrides or {})
    if "kind" in overrides:
        data["kind"] = overrides.pop("kind")
    spec_kind = data.get("kind", kind)
    if spec_kind is None:
        raise ValueError(f"{source} names no kind; add kind = {' or '.join(map(repr, KINDS))} at its top")
    if kind is not None and spec_kind != kind:
        raise ValueError(f"{source} is a {spec_kind!r} spec, but a {kind!r} experiment was asked for; "
                         f"use `pderl train` with the matching kind or fix kind in the file")
    adapter = _adapter(spec_kind)
    keys = adapter.schema()
    resolved: dict[str, Any] = {"kind": spec_kind}
    for table in TABLES:
        given = dict(data.get(table, {}))
        for key in given:
            if key not in keys[table]:
                allowed = ", ".join(keys[table]) or "none yet"
                hint = f"rename it {RENAMED[key]!r}; " if RENAMED.get(key) in keys[table] else ""
                raise ValueError(f"unknown key {key!r} in [{table}] of {source} (kind {spec_kind!r}); "
                                 f"{hint}allowed keys: {allowed}")
        resolved[table] = {key: entry.check(table, key, given[key]) if key in given else copy.deepcopy(entry.default)
                           for key, entry in keys[table].items()}
    for dotted, value in overrides.items():
        table, key = _parse_override_key(dotted)
        if key not in keys[table]:
            raise ValueError(f"unknown override {dotted!r}: no key {key!r} in [{table}] for kind {spec_kind!r}; "
                             f"allowed keys: {', '.join(keys[table]) or 'none yet'}")
        resolved[table][key] = keys[table][key].check(table, key, value)
    train = resolved["train"]
    _check_count("train", "steps", train["steps"], 1)
    for key in ("eval_every", "checkpoint_every", "threads"):
        _check_count("train", key, train[key], 0)
    if not (train["device"] == "cpu" or train["device"].startswith("cuda")):
        raise ValueError(f"[train] device must be 'cpu' or 'cuda[:N]', got {train['device']!r}")
    adapter.resolve(resolved)
    return resolved


# ====================================================================== runs
def _read_record(run_dir: Path) -> dict:
    from rl.trainer import CONFIG_NAME

    path = run_dir / CONFIG_NAME
    if not path.is_file():
        raise ValueError(f"{str(run_dir)!r} is not a run folder (no {CONFIG_NAME}); train one with "
                         "`pderl train KIND --out DIR` or validation.experiments.run")
    from rl.runs import read_json

    record = read_json(path, what="run configuration")
    if not isinstance(record, dict):
        raise ValueError(f"run configuration {str(path)!r} is not a JSON object; restore the run's config.json")
    return record


def run(spec=None, *, out, overrides: Mapping[str, Any] | None = None, resume: bool = False, force: bool = False,
        progress: bool = False, kind: str | None = None, reference=None) -> dict:
    """Train one experiment into the run folder ``out``; returns the run's summary mapping.

    Parameters
    ----------
    spec : path-like, mapping or None
        The experiment spec (:func:`load_spec`). ``None`` with ``resume`` continues the run with the
        spec recorded in ``out/config.json``.
    out : path-like
        The run folder (policy of :func:`rl.runs.prepare_run_dir`: an existing one needs ``force``
        or ``resume``).
    overrides : mapping, optional
        Dotted keys over the spec (``{"train.steps": 50}``). With ``resume``, ``train.steps``
        continues the run to more steps; any change of the learner's settings is refused by the
        trainer (the checkpoint was made with the recorded ones).
    resume, force, progress : bool
        Continue from ``checkpoint.pt``; start over in an existing folder; show a progress bar.
    kind : str, optional
        The kind expected (see :func:`load_spec`).
    reference : object or callable, optional
        The learner's reference, built by the caller once for many runs (stage 40 hands in
        :meth:`validation.stopping.PDEReferences.stopping_reference`, a function of the learner's
        configuration). Default: the spec's ``[evaluate] reference``.

    Returns
    -------
    dict
        :meth:`rl.trainer.Trainer.fit`'s summary (``status``, ``step``, ``seconds``, ``train``,
        ``evaluation``, ``run_dir``) plus ``kind`` and the resolved ``spec``.
    """
    import torch

    from rl.trainer import Trainer, reduce_allocation_overhead, resolve_device

    out = Path(out)
    if spec is None:
        if not resume:
            raise ValueError("no spec given; pass a TOML file or a mapping (or resume=True to continue a run)")
        record = _read_record(out)
        if "spec" in record:
            spec = copy.deepcopy(record["spec"])
            spec["train"].update(_recorded_trainer_settings(record))
        else:  # a run from before experiment specs
            spec = _adapter(_record_kind(record, out)).spec_from_record(record)
    resolved = load_spec(spec, overrides, kind=kind)
    adapter = _adapter(resolved["kind"])
    train = resolved["train"]
    resolve_device(train["device"])
    if train["threads"]:
        torch.set_num_threads(train["threads"])
    reduce_allocation_overhead()
    learner = adapter.build(resolved, reference=reference)
    extra = {"spec": resolved}
    if isinstance(spec, (str, Path)):
        extra["spec_file"] = str(spec)
    trainer = Trainer(learner, out, **trainer_settings(resolved), progress=progress, resume=resume,
                      force=force, extra_config=extra)
    summary = trainer.fit()
    return {**summary, "kind": resolved["kind"], "spec": resolved}


def load_run(run_dir, device: str = "cpu", *, reference="default", kind: str | None = None) -> tuple[Any, dict]:
    """The trained learner of a run folder and its record, for every kind of run.

    Parameters
    ----------
    run_dir : path-like
        A folder written by :func:`run` (or by an earlier ``pderl train``: the learner is rebuilt from
        the ``"learner"`` entry of ``config.json``, which every version writes).
    device : str
        Where the networks go.
    reference : object, callable, None, "pde" or "default"
        The learner's reference, or a function of its configuration returning it, or ``"pde"``
        (stopping: :func:`validation.stopping.build_reference`). Default: none (the final evaluations
        of :func:`evaluate` build their own).
    kind : str, optional
        Refuse a run of another kind (``pderl evaluate stopping`` on a market-making run).

    Returns
    -------
    (learner, record)
        ``record`` is the parsed ``config.json`` plus ``kind`` and ``checkpoint_step``.
    """
    from rl.runs import load_checkpoint
    from rl.trainer import CHECKPOINT_NAME

    run_dir = Path(run_dir)
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if not (run_dir / "config.json").is_file() or not checkpoint_path.is_file():
        raise ValueError(f"{str(run_dir)!r} is not a finished or checkpointed run (missing config.json or "
                         f"{CHECKPOINT_NAME}); train one with `pderl train KIND --out DIR` "
                         "(pderl train stopping, pderl train mm)")
    record = _read_record(run_dir)
    expected, kind = kind, _record_kind(record, run_dir)
    if expected is not None and kind != expected:
        raise ValueError(f"{str(run_dir)!r} holds a {kind!r} run, not a {expected!r} one")
    adapter = _adapter(kind)
    learner = adapter.learner_from_record(record, device=device, reference=reference)
    state = load_checkpoint(checkpoint_path)  # weights only: a crafted checkpoint cannot run code
    try:
        learner.load_state_dict(state["learner"])
    except (RuntimeError, KeyError, ValueError, TypeError) as error:
        # e.g. config.json edited by hand (hidden = 7) so that the networks it builds no longer fit the weights
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"checkpoint {str(checkpoint_path)!r} does not fit the learner that "
                         f"{str(run_dir / 'config.json')!r} describes ({first.rstrip(':')}); restore the run's "
                         "config.json or train a new run") from None
    if hasattr(adapter, "after_load"):
        adapter.after_load(learner)
    record["kind"] = kind
    record["checkpoint_step"] = int(state["step"])
    return learner, record


def evaluate(run_dir, *, device: str = "cpu", kind: str | None = None, threads: int | None = None,
             **options) -> dict:
    """The evaluation mapping of a trained run (the numbers of ``pderl evaluate KIND``).

    ``threads``: torch CPU threads for the evaluation; default the run's recorded ``[train] threads``
    (0 or none recorded: torch's choice). Why: an evaluation is as heavy as a training (the basket's
    2^17 paths on 1000 dates take minutes), and torch's default of one thread per core, with a second
    job on the machine, oversubscribes the cores: OpenMP's barriers then spin against each other
    (measured: a d = 40 basket evaluation beside another evaluation, 2 threads each on 2 cores, over
    12 minutes instead of 3.5).

    Stopping: ``test_paths`` (default the spec's, ``2^18``); :func:`validation.stopping.evaluate_learner`
    on fresh common test paths against the PDE (``p_stopping``, ``p_control``, their relative errors,
    ``min_accuracy``, ``sigma_learned``, ...). Market making: ``paths``, ``n_steps``, ``seed`` (defaults:
    the spec's ``[evaluate]``); :func:`validation.market_making.evaluate_run` (spread errors in units
    of 1/k and P&L of the learned, grid, quadratic and constant policies on common random numbers).
    """
    from rl.trainer import reduce_allocation_overhead

    reduce_allocation_overhead()
    if threads is not None:
        check_int("threads", threads, minimum=0, fix="pass 0 (torch's choice) or a positive thread count")
    learner, record = load_run(run_dir, device=device, kind=kind)
    if threads is None:
        threads = record.get("spec", {}).get("train", {}).get("threads") or 0
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    return _adapter(record["kind"]).evaluate(learner, record, **options)


__all__ = ["KINDS", "TABLES", "evaluate", "load_run", "load_spec", "read_toml", "register", "run", "schema",
           "trainer_settings"]
