"""``pderl sweep FILE.toml --out DIR``: a grid of experiments on dask.distributed (:mod:`validation.sweeps`).

A thin caller of :func:`validation.sweeps.run_sweep`: the flags are its keyword arguments. Exit code 0
when every run completed, 1 when any run finally failed (one line names the first failure; all of them
are in ``DIR/sweep.json`` and ``results.csv``), 2 for a bad spec or folder (the CLI's ValueError rule).
"""

from __future__ import annotations

import sys

from validation.cli.common import add_json_flag, emit, retry_count, thread_count



def register(verbs) -> None:
    """Add the arguments of the ``sweep`` verb (it takes no noun)."""
    parser = verbs["sweep"]
    parser.description = ("Run every point of a sweep spec (a base experiment spec and a [grid] of overrides) as "
                          "its own training run on dask.distributed, then write DIR/results.csv, "
                          "DIR/summary.csv (mean and s.d. over seeds), DIR/sweep.png (with each [sweep.floors] "
                          "floor dashed) and, with [sweep] curves, DIR/curves.csv and DIR/curves.png (learning "
                          "curves over training steps). See docs/sweeps.md.")
    parser.add_argument("spec", metavar="FILE.toml", help="the sweep spec (e.g. examples/sweep_smoke.toml)")
    parser.add_argument("--out", required=True, metavar="DIR", help="sweep folder (DIR/runs/<name> per run)")
    parser.add_argument("--scheduler", default=None, metavar="ADDR",
                        help="address of a running dask scheduler (tcp://HOST:8786); default: a local cluster")
    parser.add_argument("--workers", type=thread_count, default=None, metavar="N",
                        help="worker processes of the local cluster (default: min(cores, runs))")
    parser.add_argument("--resume", action="store_true",
                        help="continue the sweep in DIR: finished runs are kept, the others run or continue")
    parser.add_argument("--force", action="store_true", help="delete DIR (a pderl folder) and start over")
    parser.add_argument("--retries", type=retry_count, default=1, metavar="R",
                        help="attempts after the first for a failing run (default 1)")
    parser.add_argument("--reuse", nargs="+", default=[], metavar="DIR",
                        help="earlier sweep folders: a run one of them finished with the same resolved spec is copied "
                             "from there instead of trained again (figures 4, 5 and 9 share 40 runs)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_json_flag(parser)
    parser.set_defaults(handler=_sweep)


def _sweep(args) -> int:
    from validation.sweeps import run_sweep

    result = run_sweep(args.spec, out=args.out, scheduler=args.scheduler, workers=args.workers,
                       resume=args.resume, force=args.force, retries=args.retries,
                       progress=False if args.no_progress else None, reuse=args.reuse)
    if args.json:
        emit(result.to_dict(), as_json=True)
    else:
        print(result.one_line(), file=sys.stdout if result.ok else sys.stderr)
        for warning in result.warnings:
            print(f"pderl: warning: {warning}", file=sys.stderr)
    return 0 if result.ok else 1
