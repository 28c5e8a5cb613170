"""``pderl price american`` and ``pderl boundary american``: the penalty engine from the shell.

``price`` prints the price, delta and gamma at the spot, the exercise boundary at ``t = 0`` and the
solver statistics (JSON keys ``price``, ``delta``, ``gamma``, ``boundary_t0``, ``stats``).
``boundary`` writes the whole free boundary ``S*(t)`` as CSV (``--csv``) and/or a figure (``--plot``).
Engines are imported inside the handlers so that ``pderl --help`` stays instant.
"""

from __future__ import annotations

import math

from validation.cli.common import (IMAGE_SUFFIXES, add_black_scholes_arguments, add_json_flag, add_overwrite_flag,
                                   black_scholes_model_and_option, check_output_file, check_temperature, emit,
                                   finite_float, positive_int)


def _add_contract_arguments(parser, *, spot: bool) -> None:
    """Model, contract and numerical options shared by both commands."""
    add_black_scholes_arguments(parser, spot=spot)
    parser.add_argument("--penalty", type=finite_float, default=None,
                        help="finite penalty factor κ (default: none, i.e. the variational inequality)")
    parser.add_argument("--temperature", type=finite_float, default=0.0,
                        help="exploration temperature λ > 0 (needs --penalty): the softplus HJB")
    parser.add_argument("--premium", action="store_true",
                        help="solve for the early-exercise premium V - V_European (smooth terminal data)")
    parser.add_argument("--n-space", type=positive_int, default=None, help="spatial nodes (default: adaptive)")
    parser.add_argument("--n-time", type=positive_int, default=None, help="time levels (default: adaptive)")
    parser.add_argument("--precision", choices=("fast", "accurate", "high"), default="accurate",
                        help="error target of the adaptive grid (default accurate: max(2e-6 K, 1e-5 V))")


def _solve(args):
    """Build the validated model and option from the arguments and run :func:`solve_american`.

    Bad values raise ``ValueError`` from the parameter classes, which the CLI's main turns into a
    one-line message and exit code 2.
    """
    from pdecore import solve_american

    model, option = black_scholes_model_and_option(args)
    check_temperature(args.temperature)
    return solve_american(model, option, n_space=args.n_space, n_time=args.n_time, penalty=args.penalty,
                          temperature=args.temperature, premium=args.premium, precision=args.precision,
                          spot=getattr(args, "spot", None))  # the grid covers the spot, the estimate is there


def _summary_stats(stats: dict) -> dict:
    """Solver statistics without the per-step iteration list (kept short for the terminal)."""
    return {key: value for key, value in stats.items() if key != "newton_iterations"}


def _solver_label(stats: dict) -> str:
    """How the steps were solved: the projected (Brennan–Schwartz) solve of the variational inequality,
    or the penalty iteration (hard, finite κ, or softplus)."""
    if stats["solver"] == "projected":
        return "projected LCP solve (Brennan-Schwartz, certified)"
    return f"{stats['mode']} penalty iteration"


def _price(args) -> int:
    """Handler of ``pderl price american``: price, greeks at ``--spot``, ``S*(0)`` and statistics."""
    result = _solve(args)
    boundary_t0 = float(result.boundary[0])
    payload = {
        "price": result.price(args.spot),
        "delta": result.delta(args.spot),
        "gamma": result.gamma(args.spot),
        "boundary_t0": boundary_t0 if math.isfinite(boundary_t0) else None,
        "stats": _summary_stats(result.stats),
    }
    if args.json:
        emit(payload, as_json=True)
        return 0
    stats = payload["stats"]
    text = "\n".join([
        f"American {args.kind} S0={args.spot:g} K={args.strike:g} T={args.maturity:g} "
        f"r={args.rate:g} q={args.dividend:g} sigma={args.volatility:g}",
        f"{'price':>12}: {payload['price']:.6f} (estimated error {stats['price_error_estimate']:.1e}, "
        f"precision {stats['precision']})",
        f"{'delta':>12}: {payload['delta']:.6f}",
        f"{'gamma':>12}: {payload['gamma']:.6f}",
        f"{'boundary_t0':>12}: "
        + ("none" if payload["boundary_t0"] is None else f"{payload['boundary_t0']:.4f}"),
        f"{'solver':>12}: " + _solver_label(stats) + f", {stats['n_space']} nodes x {stats['n_time']} steps, "
        f"linear solves total {stats['total_newton_iterations']} (max {stats['max_newton_iterations']}/step), "
        f"{1e3 * stats['wall_seconds']:.1f} ms",
    ])
    emit(payload, as_json=False, text=text)
    return 0


def _boundary(args) -> int:
    """Handler of ``pderl boundary american``: ``S*(t)`` on every time level, as CSV and/or a figure.

    The CSV has a header ``t,boundary`` and one row per stored level (calendar time ascending; the
    last row is the limit ``S*(T−)``). The text output samples the boundary at six times.
    """
    import numpy as np

    # output paths are checked before the solve: a bad one costs nothing and never writes elsewhere
    if args.csv:
        check_output_file("--csv", args.csv, overwrite=args.overwrite)
    if args.plot:
        check_output_file("--plot", args.plot, suffixes=IMAGE_SUFFIXES, overwrite=args.overwrite)
    result = _solve(args)
    if args.csv:
        from rl.runs import atomic_write_text

        lines = ["t,boundary"] + [f"{t:.10g},{b:.10g}" for t, b in zip(result.times, result.boundary)]
        atomic_write_text(args.csv, "\n".join(lines) + "\n")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(result.times, result.boundary, label="S*(t)")
        ax.axhline(args.strike, color="k", lw=0.8, ls="--", label="strike")
        ax.set_xlabel("t")
        ax.set_ylabel("exercise boundary S*(t)")
        ax.set_title(f"American {args.kind}: free boundary")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        plt.close(fig)
    finite = np.isfinite(result.boundary)
    payload = {
        "times": result.times.tolist(),
        "boundary": [float(b) if f else None for b, f in zip(result.boundary, finite)],
        "boundary_t0": float(result.boundary[0]) if finite[0] else None,
        "csv": args.csv, "plot": args.plot,
        "stats": _summary_stats(result.stats),
    }
    if args.json:
        emit(payload, as_json=True)
        return 0
    sample = np.linspace(0.0, args.maturity, 6)
    rows = [f"{'t':>10} {'S*(t)':>10}"] + [
        f"{t:10.4f} {float(np.interp(t, result.times, result.boundary)):10.4f}" for t in sample]
    written = [f"wrote {path}" for path in (args.csv, args.plot) if path]
    emit(payload, as_json=False, text="\n".join(rows + written))
    return 0


def register(verbs) -> None:
    """Add ``american`` to the ``price`` and ``boundary`` verbs."""
    p = verbs["price"].add_parser(
        "american", help="price an American option (finite differences, certified LCP or penalty solves)",
        description="Price an American put or call under Black-Scholes: the variational inequality by a "
                    "certified Brennan-Schwartz solve per step (the Forsyth-Vetzal penalty iteration as the "
                    "fallback), the penalized PDE with --penalty, the exploratory HJB with --temperature; "
                    "prints price, delta, gamma, the boundary at t=0 and solver statistics.")
    _add_contract_arguments(p, spot=True)
    add_json_flag(p)
    p.set_defaults(handler=_price)

    b = verbs["boundary"].add_parser(
        "american", help="the free boundary S*(t) of an American option",
        description="Compute the exercise boundary S*(t) on the solver's time levels and write it as CSV "
                    "and/or a PNG figure.")
    _add_contract_arguments(b, spot=False)
    b.add_argument("--csv", default=None, help="write t,boundary rows to this CSV file")
    b.add_argument("--plot", default=None, help="write a figure of S*(t) to this image file (.png, .pdf, .svg, ...)")
    add_overwrite_flag(b)
    add_json_flag(b)
    b.set_defaults(handler=_boundary)
