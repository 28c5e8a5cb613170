"""``pderl reproduce``: run every experiment stage and collect one report.

Stages live in :mod:`validation.stages` as modules named ``stage_NN_<name>.py`` and run in the order
of ``NN``. Each defines ``TITLE`` and ``run(ctx: StageContext) -> StageOutput``; it writes its figures
under ``ctx.out_dir`` (use :meth:`StageContext.figure_path`) and returns its metrics and a Markdown
section. Later issues add experiments by adding a stage module — nothing else changes.

The output folder follows the run-folder policy of :mod:`rl.runs`: ``run.json`` records the
configuration and versions; every finished stage is saved atomically under ``stages/<name>.json``
and ``report.md`` / ``metrics.json`` are rewritten after each stage, so Ctrl-C keeps what was done and
``--resume`` skips finished stages.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rl.runs import atomic_write_json, atomic_write_text, environment_record, prepare_run_dir


@dataclass(frozen=True)
class StageContext:
    """What a stage needs to know about the run it is part of."""

    out_dir: Path
    quick: bool = True
    seed: int = 0
    progress: bool = True
    log: Callable[[str], None] = print

    def figure_path(self, name: str) -> Path:
        """Path of a figure file inside the run's ``figures/`` folder (created on demand)."""
        folder = self.out_dir / "figures"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def data_path(self, name: str) -> Path:
        """Path of a data file (CSV, tables) inside the run's ``data/`` folder."""
        folder = self.out_dir / "data"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name


@dataclass
class StageOutput:
    """What a stage returns: metrics for ``metrics.json`` and a Markdown section for ``report.md``.

    ``report`` may refer to figures by their path relative to the run folder
    (``figures/<name>.png``).
    """

    title: str
    metrics: dict[str, Any]
    report: str
    figures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def available_stages() -> list[str]:
    """Stage names in run order (``stage_10_american`` → ``american``)."""
    import validation.stages as package

    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__) if info.name.startswith("stage_"))
    return names


def _short(module_name: str) -> str:
    return module_name.split("_", 2)[-1]


def _write_report(out_dir: Path, results: dict[str, StageOutput], config: dict) -> None:
    lines = ["# pderl reproduction report", "",
             f"Mode: {'quick' if config['quick'] else 'full'}; seed {config['seed']}; "
             f"stages: {', '.join(results) or 'none yet'}.", ""]
    for name, output in results.items():
        lines += [f"## {output.title}", "", output.report.strip(), "",
                  f"_Stage `{name}` took {output.seconds:.1f} s._", ""]
    atomic_write_text(out_dir / "report.md", "\n".join(lines))
    atomic_write_json(out_dir / "metrics.json", {name: out.metrics for name, out in results.items()})


def reproduce(out_dir: str | Path = "results", *, quick: bool = True, seed: int = 0, only: list[str] | None = None,
              force: bool = False, resume: bool = False, progress: bool = True,
              log: Callable[[str], None] = print) -> dict[str, StageOutput]:
    """Run the stages and write ``report.md``, ``metrics.json`` and figures into ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Output folder; refused if it exists and is not empty, unless ``force`` or ``resume``.
    quick : bool
        Short settings (minutes on a laptop) instead of the papers' full settings.
    seed : int
        Seed handed to every stage.
    only : list of str, optional
        Run only these stages (short names such as ``"american"``).
    force, resume : bool
        Overwrite an existing folder, or continue it skipping finished stages.
    """
    stages = available_stages()
    short_names = [_short(name) for name in stages]
    if only:
        unknown = sorted(set(only) - set(short_names))
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; choose among {short_names}")
        stages = [name for name in stages if _short(name) in only]
    out_dir = prepare_run_dir(out_dir, force=force, resume=resume, kind="reproduce")
    config = {"quick": quick, "seed": seed, "stages": [_short(s) for s in stages]}
    atomic_write_json(out_dir / "run.json", {"config": config, **environment_record()})
    ctx = StageContext(out_dir=out_dir, quick=quick, seed=seed, progress=progress, log=log)
    results: dict[str, StageOutput] = {}
    stage_dir = out_dir / "stages"
    import json

    for module_name in stages:
        name = _short(module_name)
        saved = stage_dir / f"{name}.json"
        if resume and saved.exists():
            data = json.loads(saved.read_text())
            results[name] = StageOutput(**data)
            log(f"[reproduce] {name}: already done, skipped (--resume)")
            continue
        module = importlib.import_module(f"validation.stages.{module_name}")
        log(f"[reproduce] {name}: {module.TITLE} ...")
        start = time.perf_counter()
        try:
            output = module.run(ctx)
        finally:
            _write_report(out_dir, results, config)  # partial results survive an error or Ctrl-C
        output.seconds = time.perf_counter() - start
        results[name] = output
        atomic_write_json(saved, {"title": output.title, "metrics": output.metrics, "report": output.report,
                                  "figures": output.figures, "seconds": output.seconds})
        _write_report(out_dir, results, config)
        log(f"[reproduce] {name}: done in {output.seconds:.1f} s")
    return results
