"""The market-making paper's claims, each shown or refuted on the inventory-grid HJB (SPEC section 5).

Fang & Xu's market-making section makes four statements about the optimal quotes that the grid HJB
(:func:`pdecore.solve_market_making`, exact up to its time stepping) can check directly. Each function
below returns the numbers that decide a claim and a ``status`` string (``"reproduced"``,
``"refuted: <reason>"`` or ``"corrected: <reason>"``); :func:`plot_claims` draws their figures and the
reproduce stage ``stage_55_mm_claims`` puts both in the report. Why on the grid and not on a learner:
a claim about the *model's* optimal quotes must be decided by the model's exact solution; the learner
is compared with that solution elsewhere (``validation.market_making``).

The claims
----------
(a) Figure 1: with ``ψ0 = 0`` (and ``φ = γ = 0``) the spreads are flat in inventory and equal at every
    date, ``δ = 1/k``. True where the inventory cannot reach the bound ``Q̄`` before T (the bound blocks
    one side, which costs income and bends the quotes near it): :func:`claim_flat_spreads`.
(b) "Out-of-the-money options quote wider spreads". With common fill parameters ``(A, k)`` the quotes at
    ``q = 0`` do not depend on the strike: by symmetry ``δ^b(0) = δ^a(0) = 1/k + a(t)`` (γ = 0, up to the
    lot-size term), ``a`` the inventory aversion ``−½ ∂²_q θ``, and the small-skew Riccati
    ``a(t) = c/(1 + 4 A e^{−1} k c (T − t))`` tends to ``1/(4 A e^{−1} k (T − t))`` once
    ``c = ψ0 E[P_T²]`` is large, whatever the strike. The claim holds only if the order flow differs
    across strikes: :func:`claim_strike_independence` shows both, the second with the shipped
    ``examples/mm_moneyness_intensities.toml`` (``k_i`` scaled by the option's vega).
(c) Figure 6: "inventory accumulates in the first half and declines in the second". With symmetric
    intensities and a martingale mid the optimal policy is odd in ``q`` (``δ^b(q) = δ^a(−q)``), so the
    mean inventory from ``Q_0 = 0`` is zero at every date: :func:`claim_inventory_paths` simulates it,
    and the asymmetry that does give the paper's hump: an order-flow imbalance the quotes do not price.
(d) Figures 2–5: the paper's text says a long inventory lowers the bid spread and raises the ask
    spread; economic sense (and the grid) says the opposite (SPEC section 5's **[fix]**): a long
    maker quotes a wider bid (buys less) and a narrower ask (sells more). :func:`claim_quote_direction`
    shows both and what the text's direction costs on common random numbers.

Plus the error of the quadratic approximation against a *converged* grid
(:func:`quadratic_error_converged`): a grid truncated at a small ``Q̄`` moves the quotes on the compared
box, so the bound is raised until they stop moving before the approximation is judged.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["claim_flat_spreads", "claim_strike_independence", "claim_inventory_paths", "claim_quote_direction",
           "quadratic_error_converged", "moneyness_model", "vega_scaled_decay", "aversion_at",
           "MONEYNESS_CONFIG", "plot_claims"]

#: The shipped configuration whose fill parameters make claim (b) true.
MONEYNESS_CONFIG = Path(__file__).resolve().parent.parent / "examples" / "mm_moneyness_intensities.toml"


# ====================================================================== helpers
_SOLVED: dict = {}


def _solve(model, n_time: int):
    """``solve_market_making(model, n_time=n_time)``, remembered (claims (c) and (d) share one solve)."""
    from pdecore import solve_market_making

    key = (model, int(n_time))
    if key not in _SOLVED:
        if len(_SOLVED) > 8:
            _SOLVED.clear()
        _SOLVED[key] = solve_market_making(model, n_time=n_time)
    return _SOLVED[key]

def aversion_at(result, t: float, q: int = 0, option: int = 0) -> float:
    """``a(t) = −½ (θ(q+1) + θ(q−1) − 2θ(q))``, the grid's inventory aversion at ``q`` (one option)."""
    theta = [result.theta(t, (q + d,)) for d in (-1, 0, 1)]
    return -0.5 * (theta[0] + theta[2] - 2.0 * theta[1])


def _one_option(model, option: int, **overrides):
    """Option ``option`` of ``model`` as a one-option model (exact when φ = 0: the problem splits)."""
    from pdecore import MarketMakingModel

    noise = model.noise_cov_array()
    fields = dict(spot=model.spot, volatility=model.volatility, strikes=(model.strikes[option],),
                  maturities=(model.maturities[option],), horizon=model.horizon,
                  intensity_bid=float(model.intensity_bid_array()[option]),
                  intensity_ask=float(model.intensity_ask_array()[option]),
                  decay=float(model.decay_array()[option]), noise_cov=[[float(noise[option, option])]],
                  terminal_penalty=model.terminal_penalty, risk_aversion=model.risk_aversion,
                  max_inventory=model.max_inventory, spread_bounds=model.spread_bounds,
                  temperature=model.temperature)
    fields.update(overrides)
    return MarketMakingModel(**fields)


def vega_scaled_decay(strikes, *, spot: float = 100.0, volatility: float = 0.02, maturity: float = 30.0,
                      atm_decay: float = 1.5) -> np.ndarray:
    """``k_i = k_ATM · vega_i / vega_ATM`` (Black–Scholes vega at t = 0, zero rates).

    Why this form: the order flow of an option is assumed to react to the spread in proportion to the
    option's vega (thin, less price-sensitive flow away from the money), so the myopic spread ``1/k_i``
    widens away from the money. It is an assumption on the order flow, not a consequence of the
    model: the point of claim (b) is that the model itself does not make the strike matter.
    """
    strikes = np.asarray(strikes, dtype=float)
    total = volatility * math.sqrt(maturity)
    d1 = (np.log(spot / strikes) + 0.5 * total**2) / total
    d1_atm = 0.5 * total
    return atm_decay * np.exp(-0.5 * (d1**2 - d1_atm**2))


def moneyness_model(path=None):
    """The model of ``examples/mm_moneyness_intensities.toml`` (claim (b)'s corrected fill parameters)."""
    from validation.configs import load_mm_config

    model, _, _ = load_mm_config(MONEYNESS_CONFIG if path is None else path)
    return model


# ====================================================================== (a) figure 1
def claim_flat_spreads(*, max_inventory: int = 200, box: int = 80, n_time: int = 100,
                       dates=(0.0, 0.6)) -> dict:
    """Figure 1: with ``ψ0 = φ = γ = 0`` the spreads are ``1/k`` at every inventory and date.

    With ψ0 = φ = 0 the value has no inventory cost, so ``Δ = 0`` and ``δ = clip(1/k)`` wherever the
    bound ``Q̄`` cannot be reached before T; near the bound the blocked side costs income and the quotes
    move. Solved with the paper-like one-option defaults and ``Q̄ = max_inventory``; the spreads are
    measured on ``|q| ≤ box`` (far from the bound) and on the whole grid (to show the bound's effect).

    Returns
    -------
    dict
        ``max_deviation_box`` (units of 1/k, over dates, sides and ``|q| ≤ box``),
        ``max_deviation_whole_grid``, ``date_difference_box`` (max over q of the change between the
        dates), the ``curves`` (q, bid at each date) for the figure, and ``status``.
    """
    from pdecore import MarketMakingModel, solve_market_making

    model = MarketMakingModel.paper_defaults(1, max_inventory=max_inventory, terminal_penalty=0.0,
                                             temperature=0.0, risk_aversion=0.0)
    result = solve_market_making(model, n_time=n_time)
    k = float(model.decay_array()[0])
    q_all = np.arange(-max_inventory, max_inventory + 1)[:, None]
    inner = np.abs(q_all[:, 0]) <= box
    curves, dev_box, dev_all, per_date = {}, 0.0, 0.0, []
    for frac in dates:
        t = frac * model.horizon
        bid = result.bid_spread(t, q_all)
        ask = result.ask_spread(t, q_all)
        curves[f"{frac:g}T"] = {"bid": bid, "ask": ask}
        for side in (bid, ask):
            finite = np.isfinite(side)
            dev_box = max(dev_box, float(np.max(np.abs(side[inner] - 1.0 / k))) * k)
            dev_all = max(dev_all, float(np.max(np.abs(side[finite] - 1.0 / k))) * k)
        per_date.append(bid[inner])
    date_difference = float(np.max(np.abs(per_date[0] - per_date[-1]))) * k
    tolerance = 1e-3
    if dev_box <= tolerance:
        status = (f"reproduced: spreads within {dev_box:.1e}/k of 1/k on |q| ≤ {box} at t = "
                  f"{', '.join(f'{d:g}T' for d in dates)} (Q̄ = {max_inventory}); only next to the bound do "
                  f"they move (up to {dev_all:.2f}/k), where the blocked side costs income")
    else:
        status = f"refuted: spreads move by {dev_box:.3f}/k on |q| ≤ {box}"
    return {"max_deviation_box": dev_box, "max_deviation_whole_grid": dev_all,
            "date_difference_box": date_difference, "box": box, "max_inventory": max_inventory,
            "tolerance": tolerance, "inventory": q_all[:, 0], "curves": curves, "decay": k, "status": status}


# ====================================================================== (b) moneyness
def claim_strike_independence(*, strikes=(90.0, 95.0, 100.0, 105.0, 110.0, 115.0), max_inventory: int = 100,
                              n_time: int = 50, temperature: float = 0.1, moneyness_path=None) -> dict:
    """"OTM options quote wider spreads": refuted for common ``(A, k)``, made true by vega-scaled ``k``.

    Part 1: one call per strike, common ``A = 100``, ``k = 1.5`` (paper-like defaults otherwise); the
    mean quotes at ``q = 0``, t = 0, their spread over strikes in units of 1/k, and the aversion
    ``a(0)`` (:func:`aversion_at`) against ``1/(4 A e^{−1} k T)``, its limit once ``c = ψ0 E[P_T²]``
    is large (SPEC section 5's small-skew Riccati ``a = c/(1 + 4Ae^{−1}kcT)``).
    Part 2: the options of :data:`MONEYNESS_CONFIG` (φ = 0: the problem splits exactly into one
    problem per option, so each is solved on its own 1-D grid), the same quotes at ``q = 0``.

    Returns
    -------
    dict
        ``common``: rows (strike, c, bid/ask at q = 0, aversion, predicted limit) and
        ``max_quote_difference`` (units of 1/k); ``moneyness``: rows (strike, k, bid/ask at q = 0) and
        ``otm_wider`` (each call's q = 0 spread at or above the next lower strike's from the ATM one
        up); ``status`` of the claim for common parameters and ``corrected_status`` with the config.
    """
    from pdecore import MarketMakingModel, solve_market_making

    rows = []
    for strike in strikes:
        model = MarketMakingModel.paper_defaults(1, max_inventory=max_inventory, strikes=(float(strike),),
                                                 temperature=temperature)
        result = solve_market_making(model, n_time=n_time)
        intensity = float(model.intensity_bid_array()[0])
        k = float(model.decay_array()[0])
        rows.append({"strike": float(strike), "terminal_coeff": float(result.terminal_coeffs[0]),
                     "bid_q0": float(result.bid_spread(0.0, (0,))), "ask_q0": float(result.ask_spread(0.0, (0,))),
                     "aversion_t0": aversion_at(result, 0.0),
                     "aversion_limit": 1.0 / (4.0 * intensity * math.exp(-1.0) * k * model.horizon),
                     "decay": k})
    k = rows[0]["decay"]
    quotes = np.array([[r["bid_q0"], r["ask_q0"]] for r in rows])
    spread_over_strikes = float(np.ptp(quotes, axis=0).max()) * k
    model = moneyness_model(moneyness_path)
    if model.risk_aversion != 0.0:
        raise ValueError(f"the moneyness configuration must have risk_aversion = 0 (got {model.risk_aversion}) "
                         "so that its options split into independent one-option problems")
    money_rows = []
    for i in range(model.n_options):
        single = _one_option(model, i, max_inventory=max_inventory)  # the file's Q̄ serves its 3-D grid
        result = solve_market_making(single, n_time=n_time)
        money_rows.append({"strike": float(model.strikes[i]), "decay": float(model.decay_array()[i]),
                           "intensity": float(model.intensity_bid_array()[i]),
                           "bid_q0": float(result.bid_spread(0.0, (0,))),
                           "ask_q0": float(result.ask_spread(0.0, (0,))),
                           "bid_curve": result.bid_spread(0.0, np.arange(-20, 21)[:, None]),
                           "ask_curve": result.ask_spread(0.0, np.arange(-20, 21)[:, None])})
    atm = int(np.argmin([abs(r["strike"] - model.spot) for r in money_rows]))
    otm_spreads = [r["bid_q0"] for r in money_rows[atm:]]
    otm_wider = bool(len(otm_spreads) > 1 and np.all(np.diff(otm_spreads) > 0.0))
    aversions = ", ".join(f"{r['aversion_t0'] / r['aversion_limit']:.2f}" for r in rows)
    status = (f"refuted: with common A, k the q = 0 quotes at t = 0 differ by {spread_over_strikes:.1e}/k across "
              f"strikes {', '.join(f'{s:g}' for s in strikes)} (terminal coefficients c from "
              f"{min(r['terminal_coeff'] for r in rows):.2f} to {max(r['terminal_coeff'] for r in rows):.2f}, "
              f"γ = {temperature:g}, Q̄ = {max_inventory}): by symmetry the q = 0 quote is 1/k plus the aversion "
              f"a(0), and a(0) × 4Ae⁻¹kT = {aversions} for every strike — once c is large the aversion is "
              "set by the order flow (A, k) and the horizon, not by the option")
    corrected = (f"{'reproduced' if otm_wider else 'not reproduced'} with vega-scaled k "
                 f"(examples/mm_moneyness_intensities.toml): q = 0 bid "
                 + ", ".join(f"{r['bid_q0']:.3f} (K = {r['strike']:g})" for r in money_rows)
                 + " — wider out of the money because the assumed flow is less price-sensitive there")
    return {"common": rows, "max_quote_difference": spread_over_strikes, "moneyness": money_rows,
            "otm_wider": otm_wider, "status": status, "corrected_status": corrected}


# ====================================================================== (c) figure 6
def claim_inventory_paths(*, max_inventory: int = 100, n_paths: int = 1000, n_steps: int = 200, seed: int = 0,
                          n_time: int = 200, learner=None, imbalance=(120.0, 80.0)) -> dict:
    """Figure 6: the optimal policy's mean inventory is zero; an unpriced order-flow imbalance gives the hump.

    Symmetric case: the paper-like one-option model (γ = 0.1, ``A^b = A^a``), the grid-optimal Gibbs
    policy simulated from ``Q_0 = 0`` (:func:`validation.market_making.compare_policies`, common
    random numbers with the learned policy when ``learner`` is given). By the symmetry ``q → −q`` of
    the model the mean is zero at every date; measured as ``max_j |mean_j| / s.e._j`` over the dates
    ``T/4, T/2, 3T/4, T``. Asymmetric case: the market fills bids at ``A^b = imbalance[0]`` and asks at
    ``A^a = imbalance[1]`` while the quotes are the symmetric model's optimal ones (an imbalance the
    policy does not price): the inventory drifts up while the aversion ``a(t) ≈ 1/(4Ae^{−1}k(T−t))``
    is small, and is unwound as it grows towards T — the paper's "accumulate, then decline". The
    optimal policy of the asymmetric model (which prices the imbalance) is simulated too.

    Returns
    -------
    dict
        ``symmetric``: times, mean, s.d., s.e. of the grid policy (and the learned one),
        ``max_abs_mean_over_stderr``; ``imbalanced``: mean paths of the unpriced and the priced policy,
        the peak date and the mean at T/2 and T; ``status``.
    """
    import torch

    from pdecore import MarketMakingModel, solve_market_making
    from rl.market_making.policies import GibbsSpreadTable
    from validation.market_making import compare_policies, grid_policy

    torch_threads = torch.get_num_threads()
    model = MarketMakingModel.paper_defaults(1, max_inventory=max_inventory)
    result = _solve(model, n_time)
    table = GibbsSpreadTable.from_model(model)
    policies = {"grid": grid_policy(model, result, table)}
    if learner is not None:
        policies["learned"] = learner.policy(execution="sample")

    def band(name):
        out = compare_policies(model, {name: policies[name]}, n_paths=n_paths, n_steps=n_steps, seed=seed,
                               record=name)["_paths"]
        inventory = out["inventory"][..., 0]
        return {"times": np.asarray(out["times"]), "mean": inventory.mean(1), "sd": inventory.std(1),
                "stderr": inventory.std(1, ddof=1) / math.sqrt(inventory.shape[1])}

    symmetric = {name: band(name) for name in policies}
    grid_band = symmetric["grid"]
    checks = [int(round(f * n_steps)) for f in (0.25, 0.5, 0.75, 1.0)]
    ratio = float(np.max(np.abs(grid_band["mean"][checks]) / grid_band["stderr"][checks]))
    # imbalanced market, quotes of the symmetric model (unpriced) and of the imbalanced model (priced)
    market = MarketMakingModel.paper_defaults(1, max_inventory=max_inventory, intensity_bid=float(imbalance[0]),
                                              intensity_ask=float(imbalance[1]))
    priced_result = solve_market_making(market, n_time=n_time)
    market_table = GibbsSpreadTable.from_model(market)
    unpriced = grid_policy(model, result, table)  # the symmetric model's quotes and Gibbs table
    priced = grid_policy(market, priced_result, market_table)
    imbalanced = {}
    for name, policy in (("unpriced", unpriced), ("priced", priced)):
        out = compare_policies(market, {name: policy}, n_paths=n_paths, n_steps=n_steps, seed=seed,
                               record=name)["_paths"]
        inventory = out["inventory"][..., 0]
        imbalanced[name] = {"times": np.asarray(out["times"]), "mean": inventory.mean(1),
                            "stderr": inventory.std(1, ddof=1) / math.sqrt(inventory.shape[1])}
    hump = imbalanced["unpriced"]
    peak = int(np.argmax(hump["mean"]))
    half, end = n_steps // 2, n_steps
    hump_shape = bool(hump["mean"][half] > 3.0 * hump["stderr"][half] and hump["mean"][end] < 0.5 * hump["mean"][peak]
                      and 0 < peak < end)
    torch.set_num_threads(torch_threads)
    learned_note = ""
    if "learned" in symmetric:
        band_l = symmetric["learned"]
        learned_note = (f"; the learned policy on the same random numbers: mean {band_l['mean'][checks[1]]:+.1f} ± "
                        f"{band_l['stderr'][checks[1]]:.1f} at T/2, s.d. {band_l['sd'][checks[1]]:.1f} against the "
                        f"grid's {grid_band['sd'][checks[1]]:.1f}")
    status = (f"refuted: with symmetric intensities and a martingale mid the optimal policy's mean inventory is "
              f"zero by symmetry (|mean|/s.e. ≤ {ratio:.1f} at T/4, T/2, 3T/4, T over {n_paths} paths). "
              f"The paper's hump needs an asymmetry: with bid fills at A = {imbalance[0]:g} and ask fills at "
              f"{imbalance[1]:g} per day that the quotes do not price, the mean inventory "
              f"{'rises to' if hump_shape else 'reaches'} {hump['mean'][peak]:.1f} lots at t = "
              f"{hump['times'][peak]:.1f} d and falls to {hump['mean'][end]:.1f} at T (the aversion grows "
              f"towards T); the optimal policy of that market prices the imbalance (mean at T/2 "
              f"{imbalanced['priced']['mean'][half]:+.1f}){learned_note}")
    return {"symmetric": symmetric, "max_abs_mean_over_stderr": ratio, "imbalanced": imbalanced,
            "peak_time": float(hump["times"][peak]), "mean_half": float(hump["mean"][half]),
            "mean_end": float(hump["mean"][end]), "hump_shape": hump_shape, "imbalance": tuple(imbalance),
            "n_paths": n_paths, "status": status}


# ====================================================================== (d) figures 2–5
def claim_quote_direction(*, max_inventory: int = 100, long_inventory: int = 20, n_time: int = 200,
                          n_paths: int = 500, n_steps: int = 200, seed: int = 0) -> dict:
    """Figures 2–5: a long inventory widens the bid and narrows the ask (SPEC's **[fix]**), not the reverse.

    The grid's quotes at ``q = ±long_inventory`` (t = 0 and 0.6 T) against the direction of the paper's
    text (bid and ask swapped), and both as policies on common random numbers: the text's direction
    quotes a narrower bid when long, so it buys more when it already holds too much, and the inventory
    runs to the bound. Returns the quotes, the two P&Ls (mean, paired difference ± s.e., mean ``|Q_T|``)
    and ``status``.
    """
    from pdecore import MarketMakingModel
    from rl.market_making.policies import DifferencePolicy, GibbsSpreadTable
    from validation.market_making import compare_policies, grid_policy

    model = MarketMakingModel.paper_defaults(1, max_inventory=max_inventory)
    result = _solve(model, n_time)
    table = GibbsSpreadTable.from_model(model)
    quotes = {}
    for frac in (0.0, 0.6):
        t = frac * model.horizon
        quotes[f"{frac:g}T"] = {"bid_long": float(result.bid_spread(t, (long_inventory,))),
                                "ask_long": float(result.ask_spread(t, (long_inventory,))),
                                "bid_short": float(result.bid_spread(t, (-long_inventory,))),
                                "ask_short": float(result.ask_spread(t, (-long_inventory,)))}
    optimal = grid_policy(model, result, table)
    # the text's direction: the bid quoted from the ask's gain and vice versa (a long book narrows its bid)
    swapped = DifferencePolicy(table, lambda t, state: optimal.differences(t, state).flip(-1))
    pnl = compare_policies(model, {"economic": optimal, "paper_text": swapped}, n_paths=n_paths, n_steps=n_steps,
                           seed=seed, reference="economic")
    right = all(q["bid_long"] > q["ask_long"] and q["ask_short"] > q["bid_short"] for q in quotes.values())
    text = pnl["paper_text"]
    status = (f"corrected: a long inventory ({long_inventory} lots) widens the bid and narrows the ask on the grid "
              f"({'at t = 0 and 0.6T' if right else 'NOT at every date'}: bid {quotes['0T']['bid_long']:.3f} > ask "
              f"{quotes['0T']['ask_long']:.3f} at t = 0), the opposite of the paper's text. Why: a long maker "
              f"wants to sell, so it improves its ask and backs off its bid. Quoting the text's way loses "
              f"{-text['pnl_diff_vs_ref']:.0f} ± {text['pnl_diff_stderr']:.0f} per path on common random numbers "
              f"(mean |Q_T| {text['mean_abs_terminal_inventory']:.0f} lots against "
              f"{pnl['economic']['mean_abs_terminal_inventory']:.1f}): it buys more when already long")
    return {"quotes": quotes, "economic_direction": right, "pnl": {k: v for k, v in pnl.items() if not k.startswith("_")},
            "long_inventory": long_inventory, "status": status,
            "curves": {"inventory": np.arange(-40, 41),
                       "bid": result.bid_spread(0.0, np.arange(-40, 41)[:, None]),
                       "ask": result.ask_spread(0.0, np.arange(-40, 41)[:, None])}}


# ====================================================================== quadratic approximation
def quadratic_error_converged(*, box: int = 10, one_option_bounds=(20, 40, 60, 80, 100, 150),
                              two_option_bounds=(20, 30, 40), n_time: int = 100, settle: float = 1e-3,
                              phi0_options=(0, 1)) -> dict:
    """Error of the quadratic approximation against a grid whose bound no longer moves the quotes.

    A grid truncated at ``Q̄`` blocks one side at the bound, which moves the quotes well inside it (one
    option, γ = 0.1: the bid at q = 10 is 0.7194 with Q̄ = 20 and 0.6790 with Q̄ = 100), so an error
    measured against a small-Q̄ grid is mostly the grid's truncation. ``Q̄`` is raised over the given
    bounds until the grid's quotes on ``|q_i| ≤ box`` (t = 0, every option and side) move by less than
    ``settle``/k between successive bounds; the approximation's error is measured against that grid.
    Cases: φ = 0 (two calls, strikes 100 and 105; the problem splits exactly into two one-option
    problems, so 1-D grids go to large Q̄; ``phi0_options`` picks which) and φ = 2 with correlated
    shocks (two calls, 2-D grid; skipped when ``two_option_bounds`` is empty).

    Returns
    -------
    dict
        per case: ``bounds``, ``moves`` (max quote change in 1/k between successive bounds),
        ``errors`` (the approximation against each bound's grid), ``converged_bound``,
        ``error_converged`` (units of 1/k; NaN when no bound settled) and ``error_smallest_bound``.
    """
    from pdecore import MarketMakingModel, quadratic_approximation, solve_market_making

    axis = np.arange(-box, box + 1)
    out = {}
    # φ = 0: two independent one-option problems, one 1-D grid per option
    two = MarketMakingModel.paper_defaults(2, risk_aversion=0.0)
    cases = {"phi0": [[_one_option(two, i, max_inventory=qbar) for i in phi0_options]
                      for qbar in one_option_bounds]}
    correlated = dict(risk_aversion=2.0, noise_cov=[[0.01, 0.008], [0.008, 0.01]])
    if two_option_bounds:
        cases["phi_correlated"] = [[MarketMakingModel.paper_defaults(2, max_inventory=qbar, **correlated)]
                                   for qbar in two_option_bounds]
    for name, per_bound in cases.items():
        bounds, grid_quotes, errors = [], [], []
        for models in per_bound:
            models = list(models)
            quotes, approx_quotes, decays = [], [], []
            for model in models:
                n = model.n_options
                inventories = (axis[:, None] if n == 1 else
                               np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2))
                result = solve_market_making(model, n_time=n_time)
                approx = quadratic_approximation(model)
                for option in range(n):
                    for side in ("bid", "ask"):
                        quotes.append(getattr(result, f"{side}_spread")(0.0, inventories, option))
                        approx_quotes.append(getattr(approx, f"{side}_spread")(0.0, inventories, option))
                        decays.append(float(model.decay_array()[option]))
            k = np.asarray(decays)[:, None]
            grid_q, approx_q = np.asarray(quotes) * k, np.asarray(approx_quotes) * k
            bounds.append(models[0].max_inventory)
            grid_quotes.append(grid_q)
            errors.append(float(np.max(np.abs(grid_q - approx_q))))
        moves = [float(np.max(np.abs(b - a))) for a, b in zip(grid_quotes[:-1], grid_quotes[1:])]
        settled = [i + 1 for i, move in enumerate(moves) if move < settle]
        converged = settled[0] if settled else None
        out[name] = {"bounds": bounds, "moves": moves, "errors": errors, "box": box, "settle": settle,
                     "converged_bound": None if converged is None else bounds[converged],
                     "error_converged": float("nan") if converged is None else errors[converged],
                     "error_smallest_bound": errors[0]}
    return out


# ====================================================================== figures
def plot_claims(claims: dict, out_dir) -> list[Path]:
    """One figure per claim from the dicts of the functions above (keys ``flat``, ``strike``, ``paths``,
    ``direction``; any may be missing); returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        written.append(out_dir / name)

    if "flat" in claims:
        flat = claims["flat"]
        fig, ax = plt.subplots(figsize=(6, 4))
        for style, (label, curve) in zip(("-", "--"), flat["curves"].items()):
            ax.plot(flat["inventory"], curve["bid"] * flat["decay"], style, color="C0", label=f"bid, t = {label}")
            ax.plot(flat["inventory"], curve["ask"] * flat["decay"], style, color="C3", label=f"ask, t = {label}")
        ax.axvspan(-flat["box"], flat["box"], color="0.9", label=f"|q| ≤ {flat['box']}")
        ax.set_xlabel("inventory (lots)")
        ax.set_ylabel("spread × k")
        ax.set_title("(a) ψ0 = φ = γ = 0: spreads flat at 1/k away from the bound")
        ax.legend(fontsize=7)
        save(fig, "mm_claim_a_flat_spreads.png")
    if "strike" in claims:
        strike = claims["strike"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        rows = strike["common"]
        axes[0].plot([r["strike"] for r in rows], [r["bid_q0"] for r in rows], "o-", label="common A, k")
        money = strike["moneyness"]
        axes[0].plot([r["strike"] for r in money], [r["bid_q0"] for r in money], "s--", label="vega-scaled k")
        axes[0].set_xlabel("strike K (price units)")
        axes[0].set_ylabel("mean spread at q = 0, t = 0 (price units)")
        axes[0].set_title("(b) quotes at q = 0 against the strike")
        axes[0].legend(fontsize=7)
        q = np.arange(-20, 21)
        for j, r in enumerate(money):
            axes[1].plot(q, r["bid_curve"], "-", color=f"C{j}", label=f"bid K = {r['strike']:g}")
            axes[1].plot(q, r["ask_curve"], "--", color=f"C{j}")
        axes[1].set_xlabel("inventory (lots)")
        axes[1].set_ylabel("mean spread at t = 0, price units (ask dashed)")
        axes[1].set_title("vega-scaled k (examples/mm_moneyness_intensities.toml)")
        axes[1].legend(fontsize=7)
        save(fig, "mm_claim_b_moneyness.png")
    if "paths" in claims:
        paths = claims["paths"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        # the grid's and the learned mean nearly coincide: a dashed second line keeps both visible
        for color, style, (name, band) in zip(("C0", "C1"), ("-", "--"), paths["symmetric"].items()):
            axes[0].plot(band["times"], band["mean"], color=color, linestyle=style, label=f"{name}: mean")
            axes[0].fill_between(band["times"], band["mean"] - band["sd"], band["mean"] + band["sd"], color=color,
                                 alpha=0.2, label=f"{name}: ± 1 s.d.")
        axes[0].axhline(0.0, color="k", lw=0.5)
        axes[0].set_xlabel("t (days)")
        axes[0].set_ylabel("inventory (lots)")
        axes[0].set_title("(c) symmetric intensities: mean inventory 0")
        axes[0].legend(fontsize=7)
        for color, (name, band) in zip(("C3", "C2"), paths["imbalanced"].items()):
            axes[1].plot(band["times"], band["mean"], color=color, label=f"{name} imbalance")
            axes[1].fill_between(band["times"], band["mean"] - 2 * band["stderr"], band["mean"] + 2 * band["stderr"],
                                 color=color, alpha=0.2)
        axes[1].axhline(0.0, color="k", lw=0.5)
        axes[1].set_xlabel("t (days)")
        axes[1].set_ylabel("mean inventory (± 2 s.e.)")
        axes[1].set_title(f"bid/ask fill rates {paths['imbalance'][0]:g}/{paths['imbalance'][1]:g} per day")
        axes[1].legend(fontsize=7)
        save(fig, "mm_claim_c_inventory_paths.png")
    if "direction" in claims:
        direction = claims["direction"]
        curves = direction["curves"]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(curves["inventory"], curves["bid"], "-", color="C0", label="bid (economic, grid)")
        ax.plot(curves["inventory"], curves["ask"], "-", color="C3", label="ask (economic, grid)")
        ax.plot(curves["inventory"], curves["ask"], ":", color="C0", lw=2, label="bid (paper's text)")
        ax.plot(curves["inventory"], curves["bid"], ":", color="C3", lw=2, label="ask (paper's text)")
        ax.set_xlabel("inventory (lots)")
        ax.set_ylabel("mean spread at t = 0")
        ax.set_title("(d) direction of the quotes: a long book widens its bid")
        ax.legend(fontsize=7)
        save(fig, "mm_claim_d_direction.png")
    return written
