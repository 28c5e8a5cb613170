"""``pderl reproduce``: every experiment next to its PDE oracle, as a report with figures.

``--quick`` runs short settings (under 3 minutes); ``--full`` (the default when neither is given) runs
the papers' settings everywhere (Table 1 of the stopping paper: ML 1000 and TD(0) 5000 steps on 2^18 test
paths; the larger grids and path counts of the other stages). Both write ``report.md``, a self-contained
``report.html`` (figures embedded, no network needed) that opens with the map of both papers,
``metrics.json`` and the figures.
"""

from __future__ import annotations

from validation.cli.common import seed_int

#: Wall time of ``--full``, shown in ``--help``. Measured on 2 cores shared with other jobs (load average
#: about 10): american 10 s, merton 39 s, market_making 247 s, stopping_rl 700 s (ML 1000 + TD(0) 5000
#: steps, 2^18 test paths), mm_rl 1771 s, mm_claims 33 s: 47 minutes of wall time for 13.4 minutes of
#: CPU time, so about 15-20 minutes on 2 quiet cores (to be re-measured there).
FULL_RUN_TIME = "about 15-20 minutes on 2 quiet CPU cores (47 minutes measured on a busy machine)"


def register(verbs) -> None:
    parser = verbs["reproduce"]
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="short settings (target: under 3 minutes for all stages on 2 quiet CPU cores)")
    mode.add_argument("--full", action="store_true",
                      help=f"the papers' settings everywhere (ML 1000 / TD(0) 5000 steps, 2^18 test paths, larger "
                           f"grids); {FULL_RUN_TIME}. The default when neither --quick nor --full is given")
    parser.add_argument("--out", default="results", help="output folder (default: results/)")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed for every stage (default 0)")
    parser.add_argument("--only", nargs="+", metavar="STAGE", help="run only these stages (see --list)")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder (only one pderl wrote)")
    parser.add_argument("--resume", action="store_true", help="continue the folder's run, skipping finished stages (same --quick/--seed)")
    parser.add_argument("--no-progress", action="store_true",
                        help="hide progress bars (they are hidden anyway when stderr is not a terminal)")
    parser.add_argument("--list", action="store_true", help="list the stages and exit")
    parser.set_defaults(handler=_run)


def _run(args) -> int:
    from validation.reproduce import _short, available_stages, reproduce

    if args.list:
        for name in available_stages():
            print(_short(name))
        return 0
    results = reproduce(args.out, quick=args.quick, seed=args.seed, only=args.only, force=args.force,
                        resume=args.resume, progress=not args.no_progress)
    n_figures = sum(len(r.figures) for r in results.values())
    print(f"wrote {args.out}/report.html (self-contained), {args.out}/report.md, {args.out}/metrics.json and "
          f"{n_figures} figure{'s' if n_figures != 1 else ''} ({len(results)} stage{'s' if len(results) != 1 else ''})")
    return 0
