"""``pderl oracle stopping``: the discrete-time fixed point of the RL stopping scheme (SPEC section 2).

Prints ``value0`` (``V_0`` at the spot: what a perfect learner's value network converges to),
``p_stopping`` and ``p_control`` (the two prices of executing its rule "exercise iff ``V_l ≤ g``", paper
eqs. 4.5 and 4.7), the exercise boundary at ``t = 0``, the Bermudan price on the same dates for
reference, and solver statistics. ``--json`` prints the same as JSON. The engine is imported inside
the handler so that ``pderl --help`` stays instant.
"""

from __future__ import annotations

import math

from validation.cli.common import (add_black_scholes_arguments, add_json_flag, black_scholes_model_and_option,
                                   check_temperature, emit, finite_float, positive_int)


def register(verbs) -> None:
    parser = verbs["oracle"].add_parser(
        "stopping", help="fixed point of the RL optimal-stopping scheme: V0, P_stopping, P_control",
        description="Backward recursion of the exploratory penalized stopping scheme on n dates "
                    "(SPEC section 2), computed by exact Gaussian quadrature on a fine log-spot grid. "
                    "Requires penalty*maturity/steps <= 1.")
    add_black_scholes_arguments(parser, spot=True)
    parser.add_argument("--steps", type=positive_int, required=True, help="number L of RL dates (Δt = T/L)")
    parser.add_argument("--penalty", type=finite_float, required=True, help="penalty factor κ (κT/L <= 1)")
    parser.add_argument("--temperature", type=finite_float, required=True,
                        help="entropy temperature λ >= 0 (0: bang-bang limit)")
    parser.add_argument("--nodes-per-std", type=finite_float, default=12.0,
                        help="grid nodes per one-step standard deviation of log S (default 12)")
    add_json_flag(parser)
    parser.set_defaults(handler=_stopping)


def _stopping(args) -> int:
    from pdecore.oracle import bermudan_price, stopping_oracle

    model, option = black_scholes_model_and_option(args)
    # the engine's reach (solve_american's spot check) and the training flags' temperature bound
    if not 0 < args.spot or abs(math.log(args.spot / args.strike)) > 50:
        raise ValueError(f"--spot {args.spot:g} is outside (0, e^50·strike], where the option is worth its "
                         "intrinsic value or 0 to double precision; pass a spot within the engine's reach")
    check_temperature(args.temperature)
    oracle = stopping_oracle(model, option, n_steps=args.steps, penalty=args.penalty,
                             temperature=args.temperature, spot=args.spot, nodes_per_std=args.nodes_per_std)
    bermudan = bermudan_price(model, option, n_steps=args.steps, spot=args.spot,
                              nodes_per_std=args.nodes_per_std)
    boundary_t0 = float(oracle.boundary[0])
    stats = dict(oracle.stats)
    payload = {
        "value0": oracle.value0,
        "p_stopping": oracle.p_stopping,
        "p_control": oracle.p_control,
        "boundary_t0": boundary_t0 if math.isfinite(boundary_t0) else None,
        "bermudan": bermudan,
        "stats": stats,
    }
    if args.json:
        emit(payload, as_json=True)
        return 0
    lines = [
        f"RL stopping oracle, {args.kind} S0={args.spot:g} K={args.strike:g} T={args.maturity:g} "
        f"r={args.rate:g} q={args.dividend:g} sigma={args.volatility:g}; L={args.steps} dates, "
        f"penalty={args.penalty:g}, temperature={args.temperature:g}",
        f"{'value0':>12}: {oracle.value0:.6f}   (V_0 at the spot)",
        f"{'p_stopping':>12}: {oracle.p_stopping:.6f}   (stop when V_l <= g)",
        f"{'p_control':>12}: {oracle.p_control:.6f}   (penalized bang-bang value of the same rule)",
        f"{'boundary_t0':>12}: " + ("none" if payload["boundary_t0"] is None else f"{boundary_t0:.4f}"),
        f"{'bermudan':>12}: {bermudan:.6f}   (max(g, C) on the same dates)",
        f"{'grid':>12}: {stats['n_nodes']} nodes, step {stats['grid_step']:.3g} in log S, "
        f"Newton iterations <= {stats['max_newton_iterations']}, {1e3 * stats['wall_time_s']:.1f} ms",
    ]
    if stats["exercise_dates"] == 0:
        lines.append("note: the rule never exercises (the entropy threshold exceeds the gain from stopping, "
                     "e.g. temperature*log 2 >= rate*strike for a put), so P_stopping is the European price")
    emit(payload, as_json=False, text="\n".join(lines))
    return 0
