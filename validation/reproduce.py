"""``pderl reproduce``: run every experiment stage and collect one report.

Stages live in :mod:`validation.stages` as modules named ``stage_NN_<name>.py`` and run in the order
of ``NN``. Each defines ``TITLE`` and ``run(ctx: StageContext) -> StageOutput``; it writes its figures
under ``ctx.out_dir`` (use :meth:`StageContext.figure_path`) and returns its metrics and a Markdown
section. Later issues add experiments by adding a stage module — nothing else changes. The report
(:mod:`validation.report`) opens with the map of both papers (:mod:`validation.paper_map`, data in
``validation/data/paper_map.json``); a stage whose verdict on a paper's claim depends on its own numbers
attaches it under its metrics key ``"paper_map"`` (``{item_id: {"status": ..., "note": ...}}``).

The output folder follows the run-folder policy of :mod:`rl.runs` (marker, ``--force`` only on pderl's
folders, a lock against a second process): ``run.json`` records the configuration and versions; every
finished stage is saved atomically under ``stages/<name>.json`` and ``report.md`` / ``metrics.json``
are rewritten after each stage from *every* finished stage of the folder, so Ctrl-C keeps what was
done, ``--resume`` skips finished stages, and ``--only a`` then ``--only b --resume`` report both.
``--resume`` refuses a ``quick``/``seed`` other than the recorded ones (the results would mix
settings under one header). A stage interrupted or killed midway reruns from its start on resume:
stages are deterministic for a seed, so the report ends as an uninterrupted run's.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path
from typing import Callable

from pdecore.checks import check_int
from rl.runs import (InterruptDeferral, atomic_write_json, claim_run_dir, environment_record,
                     read_json)
from validation.stages._types import StageContext, StageOutput

RUN_RECORD = "run.json"
_STAGE_FIELDS = {"title": str, "metrics": dict, "report": str, "figures": list, "seconds": (int, float)}


def available_stages() -> list[str]:
    """Stage names in run order (``stage_10_american`` → ``american``)."""
    import validation.stages as package

    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__) if info.name.startswith("stage_"))
    return names


def _short(module_name: str) -> str:
    return module_name.split("_", 2)[-1]


def _write_report(out_dir: Path, results: dict[str, StageOutput], config: dict) -> None:
    """``report.md`` + self-contained ``report.html`` (paper map first) and ``metrics.json``."""
    from validation.report import write_reports

    header = ["# pderl reproduction report", "",
              f"Mode: {'quick' if config['quick'] else 'full'}; seed {config['seed']}; "
              f"stages: {', '.join(results) or 'none yet'}.", ""]
    write_reports(out_dir, results, header)
    atomic_write_json(out_dir / "metrics.json", {name: out.metrics for name, out in results.items()})


def load_stage_record(path: str | Path) -> StageOutput:
    """A finished stage's ``stages/<name>.json`` as a :class:`StageOutput`.

    Raises
    ------
    ValueError
        One line naming the file: not JSON, missing or extra keys, or a value of the wrong type.
    """
    path = Path(path)
    data = read_json(path, what="stage record")
    if not isinstance(data, dict) or set(data) != set(_STAGE_FIELDS):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"stage record {str(path)!r} holds {found}, expected exactly {sorted(_STAGE_FIELDS)}; "
                         "delete it to rerun that stage")
    for key, kind in _STAGE_FIELDS.items():
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise ValueError(f"stage record {str(path)!r}: {key!r} is a {type(data[key]).__name__}; delete the file "
                             "to rerun that stage")
    return StageOutput(**data)


def _check_recorded_settings(out_dir: Path, quick: bool, seed: int) -> dict:
    """The folder's ``run.json``; refuses ``quick``/``seed`` other than the recorded ones."""
    path = out_dir / RUN_RECORD
    record = read_json(path, what="reproduce record")
    config = record.get("config") if isinstance(record, dict) else None
    if not isinstance(config, dict) or not {"quick", "seed", "stages"} <= set(config):
        raise ValueError(f"reproduce record {str(path)!r} lacks its config (quick, seed, stages); start a new "
                         "folder, or replace this one with --force")
    given, recorded = {"quick": quick, "seed": seed}, {"quick": config["quick"], "seed": config["seed"]}
    if given != recorded:
        show = ", ".join(f"{k}={v}" for k, v in recorded.items())
        raise ValueError(f"--resume of {str(out_dir)!r} with quick={quick}, seed={seed}, but {RUN_RECORD} records "
                         f"{show}; resume with {'--quick' if config['quick'] else 'no --quick'} and --seed "
                         f"{config['seed']}, or use another --out")
    return record


def reproduce(out_dir: str | Path = "results", *, quick: bool = True, seed: int = 0, only: list[str] | None = None,
              force: bool = False, resume: bool = False, progress: bool = True,
              log: Callable[[str], None] = print) -> dict[str, StageOutput]:
    """Run the stages and write ``report.md``, ``report.html``, ``metrics.json`` and figures into ``out_dir``.

    ``report.html`` is self-contained (figures embedded as base64 PNG, no network needed) and, like
    ``report.md``, opens with the map of both papers (:mod:`validation.paper_map`, :mod:`validation.report`).

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
        Replace an existing folder (only one pderl wrote), or continue it: finished stages are
        skipped, ``quick``/``seed`` must equal the recorded ones.

    Returns
    -------
    dict
        Every finished stage of the folder (earlier sessions' included), in run order.
    """
    if quick not in (True, False):
        raise ValueError(f"quick must be True or False, got {quick!r}")
    seed = check_int("seed", seed, minimum=0, fix="pass a non-negative integer seed such as 0")
    stages = available_stages()
    short_names = [_short(name) for name in stages]
    if only:
        if isinstance(only, str) or not all(isinstance(name, str) for name in only):
            raise ValueError(f"only must be a list of stage names, got {only!r}; choose among {short_names}")
        unknown = sorted(set(only) - set(short_names))
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; choose among {short_names}")
        stages = [name for name in stages if _short(name) in only]
    # Ctrl-C stops a stage at once (stages rerun from their start), but never tears a record write
    with claim_run_dir(out_dir, force=force, resume=resume, kind="reproduce") as lock, \
            InterruptDeferral(message="", defer=False) as interrupts:
        out_dir = lock.path
        stage_dir = out_dir / "stages"
        requested = [_short(s) for s in stages]
        if resume:
            record = _check_recorded_settings(out_dir, quick, seed)
            done = [name for name in short_names if (stage_dir / f"{name}.json").exists()]
            listed = set(record["config"]["stages"]) | set(requested) | set(done)
            config = {"quick": quick, "seed": seed, "stages": [name for name in short_names if name in listed]}
            record["config"] = config
            record.setdefault("resumes", []).append({"stages": requested, **environment_record()})
        else:
            config = {"quick": quick, "seed": seed, "stages": requested}
            record = {"config": config, **environment_record()}
        with interrupts.shielded():
            atomic_write_json(out_dir / RUN_RECORD, record)
        # every finished stage of the folder, also those of earlier sessions outside ``only``
        results: dict[str, StageOutput] = {}
        if resume:
            for name in short_names:
                if (stage_dir / f"{name}.json").exists():
                    results[name] = load_stage_record(stage_dir / f"{name}.json")

        def ordered() -> dict[str, StageOutput]:
            return {name: results[name] for name in short_names if name in results}

        # progress bars only on a terminal: in a log file every redraw is a new line (issue 14 item 6)
        show_bars = bool(progress) and sys.stderr.isatty()
        ctx = StageContext(out_dir=out_dir, quick=quick, seed=seed, progress=show_bars, log=log)
        for module_name in stages:
            name = _short(module_name)
            if name in results:
                log(f"[reproduce] {name}: already done, skipped (--resume)")
                continue
            module = importlib.import_module(f"validation.stages.{module_name}")
            log(f"[reproduce] {name}: {module.TITLE} ...")
            start = time.perf_counter()
            try:
                output = module.run(ctx)
            finally:
                with interrupts.shielded():
                    _write_report(out_dir, ordered(), config)  # partial results survive an error or Ctrl-C
            output.seconds = time.perf_counter() - start
            results[name] = output
            with interrupts.shielded():
                atomic_write_json(stage_dir / f"{name}.json",
                                  {"title": output.title, "metrics": output.metrics, "report": output.report,
                                   "figures": output.figures, "seconds": output.seconds})
                _write_report(out_dir, ordered(), config)
            log(f"[reproduce] {name}: done in {output.seconds:.1f} s")
        return ordered()


__all__ = ["StageContext", "StageOutput", "available_stages", "load_stage_record", "reproduce"]
