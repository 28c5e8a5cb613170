"""``pderl reproduce``: every experiment next to its PDE oracle, as a report with figures."""

from __future__ import annotations


def register(verbs) -> None:
    parser = verbs["reproduce"]
    parser.add_argument("--quick", action="store_true",
                        help="short settings (a few minutes on 2 CPU cores) instead of the papers' full settings")
    parser.add_argument("--out", default="results", help="output folder (default: results/)")
    parser.add_argument("--seed", type=int, default=0, help="seed for every stage (default 0)")
    parser.add_argument("--only", nargs="+", metavar="STAGE", help="run only these stages")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder (only one pderl wrote)")
    parser.add_argument("--resume", action="store_true", help="continue the folder's run, skipping finished stages (same --quick/--seed)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
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
    print(f"wrote {args.out}/report.md, {args.out}/metrics.json and {sum(len(r.figures) for r in results.values())} "
          f"figures ({len(results)} stages)")
    return 0
