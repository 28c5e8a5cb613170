"""Benchmark: the discrete-time stopping oracle (SPEC section 2) — accuracy, warm time, peers, table.

Case: SPEC's put (S0 = K = 40, r = 0.06, q = 0, σ = 0.4, T = 1), L = 50 RL dates.

Measured in one run:

1. the SPEC numbers at (κ, λ) = (10, 1) and their self-convergence (default grid vs a 4x finer one);
   the Bermudan price on dates j/50 against SPEC's 5.31196;
2. warm time of the default oracle (best of ``--repeats``; the first in-process call is reported as
   "first call": Numba cache load included);
3. peers at matched accuracy:
   * QuantLib's ``FdBlackScholesVanillaEngine`` pricing the Bermudan put with exercise every 5 days
     (73 dates in a 365-day year, so the problem is exactly ``bermudan_price(..., n_steps=73)``), on a
     family of grids; the cheapest grid within ``--target`` of pdecore's value is compared;
   * the brute-force twin :func:`pdecore._reference.oracle.stopping_oracle_reference` (plain
     trapezoid, no singularity treatment) at increasing resolution: error and time;
4. the sensitivity table of the paper (κ ∈ {1, 5, 10, 20, 30, 40, 50}, λ ∈ {0.1, 0.5, 1, 3, 5, 10}):
   ``V_0``, ``P_stopping``, ``P_control`` and the time per oracle.

Run::

    python benchmarks/bench_oracle.py            # tables
    python benchmarks/bench_oracle.py --json     # machine-readable
    python benchmarks/bench_oracle.py --quick    # skip the sensitivity table and the slowest peers

Timings depend on the machine and its load; both sides of each comparison run under the same
conditions in the same process.
"""

from __future__ import annotations

import argparse
import json
import time

from validation.reference_data import spec_value

SPEC = spec_value("oracle.kappa10_lambda1_L50")  # SPEC section 2: V_0, P_stopping, P_control
BERMUDAN_50 = spec_value("american.put.bermudan_50")  # SPEC section 1


def _best_time(function, repeats):
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def _quantlib_bermudan(n_grid: int):
    import QuantLib as ql

    today = ql.Date(2, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(40.0)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, day_count)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, 0.06, day_count)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), 0.4, day_count)))
    option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Put, 40.0),
                              ql.BermudanExercise([today + 5 * j for j in range(1, 74)]))
    option.setPricingEngine(ql.FdBlackScholesVanillaEngine(process, n_grid, n_grid))
    return option.NPV()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--target", type=float, default=2e-6, help="matched accuracy for the peers")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from pdecore import AmericanOption, BlackScholes
    from pdecore._reference.oracle import stopping_oracle_reference
    from pdecore.oracle import bermudan_price, stopping_oracle

    model = BlackScholes(volatility=0.4, rate=0.06)
    put = AmericanOption("put", strike=40.0, maturity=1.0)
    report = {}

    # === 1. accuracy and 2. time === #
    started = time.perf_counter()
    oracle = stopping_oracle(model, put, n_steps=50, penalty=10.0, temperature=1.0)
    first_call = time.perf_counter() - started
    warm, oracle = _best_time(lambda: stopping_oracle(model, put, n_steps=50, penalty=10.0, temperature=1.0),
                              args.repeats)
    fine = stopping_oracle(model, put, n_steps=50, penalty=10.0, temperature=1.0, nodes_per_std=48)
    bermudan = bermudan_price(model, put, n_steps=50)
    report["spec"] = {name: {"value": getattr(oracle, name), "spec": SPEC[name],
                             "gap_to_spec": getattr(oracle, name) - SPEC[name],
                             "gap_to_4x_finer_grid": getattr(oracle, name) - getattr(fine, name)}
                      for name in SPEC}
    report["bermudan_50"] = {"value": bermudan, "spec": BERMUDAN_50, "gap": bermudan - BERMUDAN_50}
    report["timing"] = {"first_call_s": first_call, "warm_s": warm, "n_nodes": oracle.stats["n_nodes"]}

    # === 3a. QuantLib FD Bermudan, 73 dates === #
    # Truth: pdecore on a 4x finer grid (QuantLib converges to it, see the table).
    ours = bermudan_price(model, put, n_steps=73, nodes_per_std=48)
    ours_rows = []
    for nodes in (3, 4, 6, 8, 12):
        elapsed, value = _best_time(lambda n=nodes: bermudan_price(model, put, n_steps=73, nodes_per_std=n),
                                    args.repeats)
        ours_rows.append({"nodes_per_std": nodes, "value": value, "error": value - ours, "time_s": elapsed})
    rows = []
    for n_grid in ([100, 200, 400, 800, 1600] if args.quick else [100, 200, 400, 800, 1600, 3200]):
        repeats = 1 if n_grid >= 1600 else args.repeats
        ql_time, value = _best_time(lambda n=n_grid: _quantlib_bermudan(n), repeats)
        rows.append({"grid": n_grid, "value": value, "error": value - ours, "time_s": ql_time})
    ours_matched = next((row for row in ours_rows if abs(row["error"]) <= args.target), None)
    matched = next((row for row in rows if abs(row["error"]) <= args.target), None)
    report["quantlib_bermudan_73"] = {
        "truth": ours, "pdecore": ours_rows, "quantlib": rows, "pdecore_matched": ours_matched,
        "quantlib_matched": matched,
        "speedup": matched["time_s"] / ours_matched["time_s"] if matched and ours_matched else None}

    # === 3b. brute-force twin === #
    reference_rows = []
    for nodes in ([32, 64] if args.quick else [32, 64, 128, 256]):
        started = time.perf_counter()
        values = stopping_oracle_reference(model, put, n_steps=50, penalty=10.0, temperature=1.0, spot=40.0,
                                           nodes_per_std=nodes)
        elapsed = time.perf_counter() - started
        reference_rows.append({"nodes_per_std": nodes, "time_s": elapsed,
                               "max_gap": max(abs(v - getattr(fine, n)) for v, n in zip(values, SPEC))})
    report["brute_force_twin"] = reference_rows

    # === 4. sensitivity table === #
    table = []
    if not args.quick:
        for penalty in (1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0):
            for temperature in (0.1, 0.5, 1.0, 3.0, 5.0, 10.0):
                started = time.perf_counter()
                result = stopping_oracle(model, put, n_steps=50, penalty=penalty, temperature=temperature)
                table.append({"penalty": penalty, "temperature": temperature, "value0": result.value0,
                              "p_stopping": result.p_stopping, "p_control": result.p_control,
                              "time_s": time.perf_counter() - started})
    report["sensitivity"] = table

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print("SPEC case, L = 50, (κ, λ) = (10, 1)")
    for name, row in report["spec"].items():
        print(f"  {name:>10}: {row['value']:.6f}  (SPEC {row['spec']}, gap {row['gap_to_spec']:+.1e}; "
              f"vs 4x finer grid {row['gap_to_4x_finer_grid']:+.1e})")
    print(f"  Bermudan j/50: {bermudan:.7f} (SPEC {BERMUDAN_50}, gap {bermudan - BERMUDAN_50:+.1e})")
    print(f"  time: first call {first_call * 1e3:.0f} ms, warm {warm * 1e3:.0f} ms "
          f"({oracle.stats['n_nodes']} nodes)")
    q = report["quantlib_bermudan_73"]
    print(f"\nBermudan put, 73 dates (every 5 days), truth {ours:.8f} (pdecore, 48 nodes/std); "
          "errors and warm times:")
    for row in ours_rows:
        print(f"  pdecore {row['nodes_per_std']:>3} nodes/std  : {row['value']:.8f}  "
              f"error {row['error']:+.1e}"
              f"  {row['time_s'] * 1e3:8.1f} ms")
    for row in rows:
        print(f"  QuantLib FD {row['grid']:>5} x {row['grid']:<5}: {row['value']:.8f}  "
              f"error {row['error']:+.1e}"
              f"  {row['time_s'] * 1e3:8.1f} ms")
    if matched and ours_matched:
        print(f"  matched |error| <= {args.target:g}: pdecore {ours_matched['time_s'] * 1e3:.1f} ms, "
              "QuantLib "
              f"{matched['time_s'] * 1e3:.1f} ms, ratio {q['speedup']:.1f}x")
    else:
        print(f"  one engine did not reach |error| <= {args.target:g} on these grids")
    print("\nBrute-force twin (plain trapezoid, no singularity treatment), same case:")
    for row in reference_rows:
        print(f"  {row['nodes_per_std']:>4} nodes/std: max gap {row['max_gap']:.1e}, "
              f"{row['time_s'] * 1e3:.0f} ms")
    if table:
        print("\nSensitivity (L = 50): penalty temperature  V0  P_stopping  P_control  ms")
        for row in table:
            print(f"  {row['penalty']:>5g} {row['temperature']:>5g}  {row['value0']:.4f}  "
                  f"{row['p_stopping']:.4f}  "
                  f"{row['p_control']:.4f}  {row['time_s'] * 1e3:6.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
