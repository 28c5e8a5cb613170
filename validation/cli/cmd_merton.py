"""``pderl solve merton`` and ``pderl backtest merton``: Merton's problem with transaction costs.

``solve`` prints the no-trade band at ``t = 0`` (JSON keys ``sell_boundary_t0``, ``buy_boundary_t0``,
``merton_ratio``; a boundary is ``±Infinity`` where its trading region is absent) and optionally plots
both boundaries over time (``--plot FILE``). ``backtest`` simulates daily band rebalancing under the
physical measure (JSON keys ``omniscient_mean``, ``omniscient_se``, ``buy_and_hold_mean``,
``buy_and_hold_se``, ``merton_reference``, bankrupt shares, and one entry per ``--band``).
Defaults are SPEC section 4's market: α = 0.168, r = 0.008, σ = 0.3, θ = 0.005, T = 1.
"""

from __future__ import annotations

from validation.cli.common import (IMAGE_SUFFIXES, add_json_flag, add_overwrite_flag, check_output_file,
                                   check_temperature, emit,
                                   finite_float, positive_int, seed_int)

def _defaults() -> dict:
    from validation.reference_data import spec_value

    return spec_value("merton.default_market")


DEFAULTS = _defaults()  # SPEC section 4 (validation/data/spec_reference.json)


def _add_market(parser) -> None:
    """Market, cost, horizon and grid options shared by ``solve merton`` and ``backtest merton``.

    Every market value defaults to SPEC section 4 so that ``pderl solve merton`` alone reproduces the
    paper's figure; ``--maturity`` is the horizon of the PDE problem whose ``t = 0`` band is reported (and
    backtested), not the backtest horizon (``--years``).
    """
    parser.add_argument("--drift", type=finite_float, default=DEFAULTS["drift"], help="stock drift α (default 0.168)")
    parser.add_argument("--rate", type=finite_float, default=DEFAULTS["rate"], help="bond rate r (default 0.008)")
    parser.add_argument("--volatility", type=finite_float, default=DEFAULTS["volatility"],
                        help="stock volatility σ (default 0.3)")
    parser.add_argument("--cost", type=finite_float, default=DEFAULTS["cost"],
                        help="proportional transaction cost θ in [0, 1) (default 0.005)")
    parser.add_argument("--maturity", type=finite_float, default=DEFAULTS["maturity"],
                        help="horizon T of the PDE problem in years (default 1)")
    parser.add_argument("--n-space", type=positive_int, default=None, help="grid nodes (default 600)")
    parser.add_argument("--n-time", type=positive_int, default=None, help="time levels (default 100)")


def register(verbs) -> None:
    """Add ``solve merton`` and ``backtest merton`` to the verb sub-parsers (CLI framework hook)."""
    p = verbs["solve"].add_parser(
        "merton", help="no-trade band of Merton's problem with proportional costs (Dynkin game PDE)",
        description="Solve Merton's log-utility problem with proportional transaction costs as a Dynkin game "
                    "(SPEC section 4) and print the sell/buy boundaries at t = 0.")
    _add_market(p)
    p.add_argument("--penalty", type=finite_float, default=None,
                   help="finite penalty κ (default: none, the variational inequality)")
    p.add_argument("--temperature", type=finite_float, default=0.0,
                   help="exploration temperature λ > 0 (needs --penalty): the softplus game")
    p.add_argument("--plot", metavar="FILE", default=None, help="write a figure of both boundaries over time")
    add_overwrite_flag(p)
    add_json_flag(p)
    p.set_defaults(handler=_solve)

    b = verbs["backtest"].add_parser(
        "merton", help="backtest the PDE band against buy-and-hold on simulated paths",
        description="Daily minimal-trade rebalancing into a no-trade band, paying the cost on every trade, "
                    "under the physical measure; mean log return of the liquidated wealth with its standard error.")
    _add_market(b)
    b.add_argument("--years", type=finite_float, default=20.0, help="backtest horizon in years (default 20)")
    b.add_argument("--paths", type=positive_int, default=10_000, help="simulated paths (default 10000)")
    b.add_argument("--seed", type=seed_int, default=0, help="seed of the path generator (default 0)")
    b.add_argument("--steps-per-year", type=positive_int, default=252, help="rebalancing dates per year (default 252)")
    b.add_argument("--band", nargs=2, type=finite_float, action="append", metavar=("XS", "XB"), default=None,
                   help="an extra band [XS, XB] in x = B/S to backtest (repeatable)")
    add_json_flag(b)
    b.set_defaults(handler=_backtest)


def _model(args):
    """The validated :class:`pdecore.MertonCosts` from the parsed options (bad values raise ValueError,
    which the CLI main turns into a one-line message and exit code 2)."""
    from pdecore import MertonCosts

    return MertonCosts(drift=args.drift, rate=args.rate, volatility=args.volatility, cost=args.cost,
                       maturity=args.maturity)


def _fmt(value: float) -> str:
    """A boundary for the terminal, spelling out the ±inf convention (a region that is absent)."""
    return f"{value:+.6f}" if value == value and abs(value) != float("inf") else (
        "+inf (no buying)" if value > 0 else "-inf (no selling)")


def _solve(args) -> int:
    """Handler of ``pderl solve merton``: solve, print the t = 0 band (text or JSON), optionally plot.

    JSON keys: ``sell_boundary_t0``, ``buy_boundary_t0`` (``±Infinity`` where a region is absent),
    ``merton_ratio``, ``merton_fraction``, the numerical settings, the insolvency truncation, the Newton
    solve count and the wall time.
    """
    import time

    check_temperature(args.temperature)
    if args.plot:  # checked before the solve: a bad path costs nothing
        check_output_file("--plot", args.plot, suffixes=IMAGE_SUFFIXES, overwrite=args.overwrite)

    from pdecore import solve_merton_costs

    model = _model(args)
    start = time.perf_counter()
    result = solve_merton_costs(model, n_space=args.n_space, n_time=args.n_time, penalty=args.penalty,
                                temperature=args.temperature)
    seconds = time.perf_counter() - start
    sell, buy = result.band(0.0)
    payload = {"sell_boundary_t0": sell, "buy_boundary_t0": buy, "merton_ratio": result.merton_ratio,
               "merton_fraction": model.merton_fraction, "penalty": args.penalty, "temperature": args.temperature,
               "insolvency_truncation": result.insolvency_truncation, "n_space": int(result.grid.size),
               "n_time": int(result.times.size - 1), "newton_iterations": result.dynkin.total_newton_iterations,
               "wall_seconds": seconds}
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ax = result.plot()
        ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
        payload["plot"] = args.plot
    if args.json:
        emit(payload, as_json=True)
        return 0
    text = "\n".join([
        f"Merton with costs: alpha={model.drift:g} r={model.rate:g} sigma={model.volatility:g} "
        f"theta={model.cost:g} T={model.maturity:g} "
        + ("(variational inequality)" if args.penalty is None else f"(penalty {args.penalty:g}"
           + (f", temperature {args.temperature:g})" if args.temperature > 0 else ")")),
        f"{'sell below x_s(0)':>20}: {_fmt(sell)}",
        f"{'buy above x_b(0)':>20}: {_fmt(buy)}",
        f"{'Merton ratio x_M':>20}: {result.merton_ratio:+.6f}  (pi_M = {model.merton_fraction:.4f})",
        f"{'solver':>20}: {payload['n_space']} nodes x {payload['n_time']} levels, "
        f"{payload['newton_iterations']} Newton solves, {1e3 * seconds:.1f} ms",
    ] + ([f"{'plot':>20}: {args.plot}"] if args.plot else []))
    emit(payload, as_json=False, text=text)
    return 0


def _backtest(args) -> int:
    """Handler of ``pderl backtest merton``: the PDE band at t = 0 against buy-and-hold (and ``--band``s).

    JSON keys: ``<strategy>_mean``, ``<strategy>_se`` and ``<strategy>_bankrupt_share`` for
    ``omniscient``, ``buy_and_hold`` and ``leveraged_buy_and_hold`` (mean and s.e. are ``null`` when some
    path went bankrupt), ``merton_reference``, ``omniscient_band`` and a ``bands`` list for the user's bands.
    """
    from validation.backtest_merton import backtest_merton

    model = _model(args)
    report = backtest_merton(model, years=args.years, paths=args.paths, seed=args.seed,
                             steps_per_year=args.steps_per_year, extra_bands=args.band or (),
                             n_space=args.n_space, n_time=args.n_time)
    payload = report.to_dict()
    if args.json:
        emit(payload, as_json=True)
        return 0
    emit(payload, as_json=False, text=(f"{args.years:g}-year backtest, {args.paths} paths, seed {args.seed}, "
                                       f"{args.steps_per_year} rebalancing dates per year\n" + report.table()))
    return 0
