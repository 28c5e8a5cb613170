"""Acceptance runs of issue 17: the basket put in d dimensions and the fBm, timed, against the references.

::

    python benchmarks/bench_high_dim.py basket --dimension 40 --seeds 0 1 2 --out /tmp/basket_d40.json
    python benchmarks/bench_high_dim.py fbm --hurst 0.05 0.3 0.5 0.7 0.95 --out /tmp/fbm.json
    python benchmarks/bench_high_dim.py basket --dimension 200 --steps 1000 --threads 1
    python benchmarks/bench_high_dim.py basket --dimension 40 --seeds 0 --set evaluate.execution_substeps=1 --set evaluate.antithetic_test_paths=false

Each run trains :class:`rl.stopping.high_dim.HighDimStoppingLearner` from the shipped spec
(``examples/basket_d{D}.toml``, or ``basket_d40.toml`` with ``model.dimension`` overridden for a d
without one, or ``examples/fbm.toml`` with ``model.hurst``), times the training (wall clock, ``--threads`` torch threads; ``seconds``) and the evaluation
(``eval_seconds``, with the reference's oracle) with
:func:`validation.high_dim_stopping.evaluate_learner` on the spec's test paths (2^17 basket, 2^15 fBm).
Prints the comparison table (:func:`validation.high_dim_stopping.comparison_table`) and writes every
evaluation to ``--out`` as JSON. Timings on a shared machine are upper bounds: say so when quoting them.
"""

from __future__ import annotations

import argparse
import json
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_one(problem: str, *, seed: int, dimension: int | None, hurst: float | None, steps: int | None,
            threads: int, test_paths: int | None, overrides: dict, dual_paths: int = 0) -> dict:
    import torch

    from rl.stopping.high_dim import HighDimStoppingLearner
    from validation import experiments
    from validation.high_dim_stopping import HighDimStoppingKind, build_reference, evaluate_learner

    torch.set_num_threads(threads)
    from validation.stages.stage_70_high_dim_stopping import basket_spec_file

    base = basket_spec_file(dimension) if problem == "basket" else ROOT / "examples" / "fbm.toml"
    values = {"train.seed": seed, **overrides}
    if dimension is not None:
        values["model.dimension"] = dimension
    if hurst is not None:
        values["model.hurst"] = hurst
    if steps is not None:
        values["train.steps"] = steps
    spec = experiments.load_spec(base, values)
    config = HighDimStoppingKind().config(spec)
    reference = build_reference(config)
    learner = HighDimStoppingLearner(config, reference={"price": reference["price"]})
    started = time.perf_counter()
    for step in range(spec["train"]["steps"]):
        learner.train_step(learner.sample_batch(step))
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    evaluation = evaluate_learner(learner, test_paths=test_paths, reference=reference,
                                  dual_paths=dual_paths if problem == "fbm" else 0)
    evaluation["eval_seconds"] = time.perf_counter() - started
    label = f"d={config.dimension}" if problem == "basket" else f"H={config.hurst}"
    return {**evaluation, "seconds": seconds, "seed": seed, "steps": spec["train"]["steps"], "threads": threads,
            "label": f"{label} seed {seed}"}


def main(argv=None) -> int:
    from validation.high_dim_stopping import comparison_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("problem", choices=["basket", "fbm"])
    parser.add_argument("--dimension", type=int, nargs="*", default=[40])
    parser.add_argument("--hurst", type=float, nargs="*", default=[0.05, 0.3, 0.5, 0.7, 0.95])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: the spec's)")
    parser.add_argument("--lr-decay-every", type=int, default=None, help="override the LR decay period")
    parser.add_argument("--formulation", choices=["price", "premium"], default=None)
    parser.add_argument("--test-paths", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other spec key, e.g. --set train.n_dates=200 (value parsed as TOML)")
    parser.add_argument("--out", default=None, help="JSON file for the evaluations")
    parser.add_argument("--dual-paths", type=int, default=4096,
                        help="fBm: outer paths of the dual upper bound (rl.stopping.dual; 0: off)")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, text = item.partition("=")
        if not text:
            parser.error(f"--set {item!r}: write KEY=VALUE, e.g. train.n_dates=200")
        try:
            overrides[key.strip()] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:  # a bare word: a string (e.g. --set train.formulation=price)
            overrides[key.strip()] = text
    if args.lr_decay_every is not None:
        overrides["train.lr_decay_every"] = args.lr_decay_every
    if args.formulation is not None:
        overrides["train.formulation"] = args.formulation
    rows = []
    grid = args.dimension if args.problem == "basket" else args.hurst
    for value in grid:
        for seed in args.seeds:
            row = run_one(args.problem, seed=seed, dimension=value if args.problem == "basket" else None,
                          hurst=value if args.problem == "fbm" else None, steps=args.steps, threads=args.threads,
                          test_paths=args.test_paths, overrides=overrides, dual_paths=args.dual_paths)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if not isinstance(v, (dict, list))}), flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps(rows, indent=1, default=str))
    print(comparison_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
