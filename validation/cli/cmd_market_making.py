"""``pderl solve mm --config FILE.toml [--json] [--plot DIR]``: optimal option market-making quotes.

Reads the TOML schema of :mod:`validation.configs` (documented in ``docs/market_making.md``),
solves the inventory-grid HJB (``method = "grid"``) or builds the closed-form quadratic
approximation (``method = "quadratic"``, for many options), and prints θ(0, 0) and, for each option,
the bid and ask spreads at t = 0 over its own inventory axis ``−Q̄..Q̄`` (other inventories at 0).
JSON keys: ``method``, ``n_options``, ``theta_0_0``, ``options`` (a list of ``{option, strike,
maturity, inventory, bid_spread, ask_spread}``; a spread is ``null`` where the side is not quoted),
and ``diagnostics`` for the grid. ``--plot DIR`` writes ``spreads_vs_inventory.png`` (t = 0 and 0.6 T)
and ``spreads_vs_time.png`` (a fixed long inventory) for the first option.
"""

from __future__ import annotations

from validation.cli.common import add_json_flag, check_input_text_file, check_output_folder, emit


def register(verbs) -> None:
    p = verbs["solve"].add_parser(
        "mm", help="optimal quotes of an option market maker (inventory-grid HJB or quadratic approximation)",
        description="Solve the multi-option market-making HJB of SPEC section 5 from a TOML config "
                    "(see docs/market_making.md) and print θ(0, 0) and the spreads at t = 0.")
    p.add_argument("--config", required=True, metavar="FILE.toml", help="model and numerics (TOML)")
    p.add_argument("--plot", metavar="DIR", default=None, help="write spread figures into DIR")
    add_json_flag(p)
    p.set_defaults(handler=_solve)


def _clean(values):
    import math

    return [None if (v is None or (isinstance(v, float) and math.isnan(v))) else float(v) for v in values]


def _solve(args) -> int:
    import numpy as np

    from validation.configs import load_mm_config

    check_input_text_file("--config", args.config)
    if args.plot:
        check_output_folder("--plot", args.plot)
    model, numerics, _ = load_mm_config(args.config)
    method = numerics.get("method", "grid")
    n = model.n_options
    axis = np.arange(-model.max_inventory, model.max_inventory + 1)
    if method == "quadratic":
        from pdecore.quadratic import quadratic_approximation

        solution = quadratic_approximation(model, terminal_coeffs=numerics.get("terminal_coeffs"))
        diagnostics = {}
    else:
        from pdecore.market_making import solve_market_making

        options = {key: numerics[key] for key in ("n_time", "n_substeps", "n_quadrature", "terminal_coeffs")
                   if key in numerics}
        solution = solve_market_making(model, **options)
        diagnostics = solution.stats
    payload = {"method": method, "n_options": n, "theta_0_0": float(solution.theta(0.0, (0,) * n)),
               "options": []}
    for i in range(n):
        batch = np.zeros((axis.size, n), dtype=np.int64)
        batch[:, i] = axis
        payload["options"].append({
            "option": i, "strike": model.strikes[i], "maturity": model.maturities[i],
            "inventory": axis.tolist(),
            "bid_spread": _clean(np.atleast_1d(solution.bid_spread(0.0, batch, i)).tolist()),
            "ask_spread": _clean(np.atleast_1d(solution.ask_spread(0.0, batch, i)).tolist()),
        })
    if diagnostics:
        payload["diagnostics"] = diagnostics
    if args.plot:
        payload["figures"] = _plots(solution, model, args.plot)
    if args.json:
        emit(payload, as_json=True)
    else:
        lines = [f"method: {method}   options: {n}   theta(0, 0) = {payload['theta_0_0']:.6g}"]
        for entry in payload["options"]:
            middle = len(entry["inventory"]) // 2
            lines.append(f"option {entry['option']} (K={entry['strike']:g}, T={entry['maturity']:g}): "
                         f"at q=0 bid {entry['bid_spread'][middle]:.5f} "
                         f"ask {entry['ask_spread'][middle]:.5f}")
        if args.plot:
            lines.append("figures: " + ", ".join(payload["figures"]))
        emit(payload, as_json=False, text="\n".join(lines))
    return 0


def _plots(solution, model, folder) -> list[str]:
    """Spreads against inventory at t = 0 and 0.6 T, and over time at a long inventory (option 0)."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    n = model.n_options
    axis = np.arange(-model.max_inventory, model.max_inventory + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    for t in (0.0, 0.6 * model.horizon):
        batch = np.zeros((axis.size, n), dtype=np.int64)
        batch[:, 0] = axis
        ax.plot(axis, solution.bid_spread(t, batch, 0), label=f"bid, t={t:g}")
        ax.plot(axis, solution.ask_spread(t, batch, 0), "--", label=f"ask, t={t:g}")
    ax.set_xlabel("inventory of option 0")
    ax.set_ylabel("spread")
    ax.legend()
    first = out / "spreads_vs_inventory.png"
    fig.savefig(first, dpi=120, bbox_inches="tight")
    plt.close(fig)
    long_inventory = (max(1, model.max_inventory // 3),) + (0,) * (n - 1)
    times = np.linspace(0.0, model.horizon, 101)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(times, [solution.bid_spread(t, long_inventory, 0) for t in times], label="bid")
    ax.plot(times, [solution.ask_spread(t, long_inventory, 0) for t in times], label="ask")
    ax.set_xlabel("time")
    ax.set_ylabel("spread")
    ax.set_title(f"option 0 at inventory {long_inventory}")
    ax.legend()
    second = out / "spreads_vs_time.png"
    fig.savefig(second, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return [str(first), str(second)]
