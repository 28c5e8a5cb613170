"""Evaluation of a stopping learner on common test paths: the one implementation behind both the
trainer's periodic evaluation (:meth:`rl.stopping.learner.StoppingLearner.evaluate`) and the final
evaluation of :func:`validation.stopping.evaluate_learner`.

What is measured (Dai, Sun, Xu & Zhou, sections 4.3–4.4). The learned rule exercises at date ``t_l``
iff ``w_l(X_l) ≤ 0`` (``V_l ≤ g``, i.e. ``π ≥ ½``; :mod:`rl.stopping.policies`). On fresh test paths:

* ``P_stopping = E[e^{−rτ} g(X_τ)]`` with ``τ`` the first exercise date (else ``T``), paper eq. (4.5);
* ``P_control = E[Σ_l e^{−r t_l} R̃_l u_l κ g_l Δt + e^{−rT} R̃_L g_L]``, ``R̃_{l+1} = R̃_l (1 − u_l κΔt)``,
  the penalized bang-bang value, paper eq. (4.7);
* their plain Monte Carlo means and standard errors (the paper's estimator), control-variate
  estimates (:func:`control_variate`) and common-random-number estimates against the discrete
  oracle's rule (below), and relative errors of each against the American price;
* the per-date classification accuracy: the share of test points where the learned decision equals
  a given decision rule, the VI exercise boundary and/or the discrete oracle's boundary.

Who builds the references. A learner never solves a PDE: :class:`StoppingReference` carries numbers
that the caller computed (:func:`validation.stopping.build_reference` solves the variational
inequality and the discrete oracle with :mod:`pdecore`); ``None`` skips every reference metric.

Why the sums are running sums. The test set (2^18 paths by default) is evaluated in chunks of
:data:`EVAL_CHUNK` paths to bound memory, so every estimator is written in terms of running sums
(``Σy, Σy², Σz, Σz², Σyz`` and integer agreement counts). The counts are integers held exactly in
float64, so chunking never changes an accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from pdecore.budget import check_work

#: Optimistic path-dates per second of the chunked evaluation on one core (work refusals only).
EVAL_PATH_DATES_PER_SECOND = 1e7

EVAL_CHUNK = 2**15  # paths per forward pass in evaluation (bounds memory at ~L·21·chunk floats)


def payoff_torch(kind: str, spot: torch.Tensor, strike: float) -> torch.Tensor:
    """``g = (K − S)^+`` (put) or ``(S − K)^+`` (call)."""
    return torch.clamp(strike - spot, min=0.0) if kind == "put" else torch.clamp(spot - strike, min=0.0)


@dataclass(frozen=True)
class StoppingReference:
    """What the evaluation compares with: the American price and the exercise boundary at ``t_l``.

    Built by the caller (:func:`validation.stopping.build_reference` from pdecore's solvers, or by
    hand in tests); the learner only reads it.

    Attributes
    ----------
    price : float
        American (variational-inequality) price at ``S_0`` (SPEC: 5.318294).
    boundary : ndarray of shape (L,) or None
        PDE exercise boundary ``S*(t_l)``, ``l = 0..L−1`` (NaN where there is no exercise region).
    european : float or None
        European price at ``S_0``: the exact mean of the control variate ``e^{−rT} g(X_T)``.
    target_boundary : ndarray of shape (L,) or None
        Exercise boundary of the discrete oracle (:func:`pdecore.stopping_oracle`) at the run's
        ``κ, λ, L``: the decisions a perfect learner converges to. Accuracy against it measures
        learning; accuracy of the oracle itself against ``boundary`` is the floor of the accuracy
        against the VI boundary (about 95 % at the paper settings, where the κ = 10, λ = 1 boundary
        lies about 1.5 above the VI boundary at t = 0).
    target_p_stopping, target_p_control : float or None
        The oracle's exact ``P_stopping`` and ``P_control``. With them the evaluation also reports
        common-random-number estimates ``P̂ = P_learned − P_oracle-rule + P_oracle`` (both rules on the
        same test paths), whose sampling noise comes only from the paths where the two rules differ.
    source : str
        Where the numbers come from (reported, never interpreted).
    """

    price: float
    boundary: np.ndarray | None = None
    european: float | None = None
    target_boundary: np.ndarray | None = None
    target_p_stopping: float | None = None
    target_p_control: float | None = None
    source: str = "given"

    @classmethod
    def from_solutions(cls, config, american, oracle=None) -> "StoppingReference":
        """Read a reference off results the caller has solved (nothing is solved here).

        Parameters
        ----------
        config : rl.stopping.config.StoppingConfig
            The run: its spot, option and dates ``t_l = lΔt``, ``l = 0..L−1``.
        american : pdecore.AmericanResult
            The variational inequality: price at ``S_0``; its boundary is interpolated linearly to
            the dates.
        oracle : pdecore.StoppingOracle, optional
            The discrete oracle at the run's ``κ, λ, L``: boundary and exact prices of the target rule.

        The European price is the closed form (:func:`pdecore.bs_price`) at the true volatility.
        """
        from pdecore import bs_price

        dates = np.arange(config.n_steps) * config.dt
        european = bs_price(config.kind, config.spot, config.strike, config.maturity, config.volatility, config.rate,
                            config.dividend)
        targets = {} if oracle is None else {
            "target_boundary": np.asarray(oracle.boundary[:config.n_steps], dtype=float),
            "target_p_stopping": float(oracle.p_stopping), "target_p_control": float(oracle.p_control)}
        source = "pdecore.solve_american (VI)" + ("" if oracle is None else " and pdecore.stopping_oracle")
        return cls(price=float(american.price(config.spot)),
                   boundary=np.interp(dates, american.times, american.boundary), european=float(european),
                   source=source, **targets)


def true_decisions(spots: torch.Tensor, boundary: np.ndarray, kind: str) -> torch.Tensor:
    """The decision of a boundary rule at each date: ``x ≤ S*(t_l)`` (put) or ``x ≥ S*(t_l)`` (call).

    Shapes: ``spots`` ``(B, L)``, ``boundary`` ``(L,)`` → bool ``(B, L)``; NaN boundary: never exercise.
    """
    # a copy: reference arrays may be read-only (frozen results), which torch refuses to share
    edge = torch.as_tensor(np.array(boundary, dtype=float), dtype=spots.dtype, device=spots.device)
    finite = torch.isfinite(edge)
    edge = torch.where(finite, edge, torch.zeros_like(edge))
    exercise = spots <= edge if kind == "put" else spots >= edge
    return exercise & finite


def stopping_prices(paths: torch.Tensor, exercise: torch.Tensor, *, kind: str, strike: float, rate: float,
                    penalty: float, dt: float) -> dict[str, torch.Tensor]:
    """Per-path discounted payoffs of the two prices of paper section 4.4 (eqs. 4.5 and 4.7).

    Parameters
    ----------
    paths : (B, L + 1)
    exercise : bool (B, L)
        The execution rule's decision at ``t_0..t_{L−1}``.

    Returns
    -------
    dict with ``"stopping"`` and ``"control"``, float64 tensors of shape (B,): ``e^{−rτ} g(X_τ)`` with
    ``τ`` the first exercise date (else T), and ``Σ_l e^{−r t_l} R̃_l u_l κ g_l Δt + e^{−rT} R̃_L g_L``.
    """
    n_dates = exercise.shape[1]
    paths = paths.to(torch.float64)
    payoff = payoff_torch(kind, paths, strike)
    discount = torch.exp(-rate * dt * torch.arange(n_dates + 1, dtype=torch.float64, device=paths.device))
    # P_stopping: first exercise date via argmax over a boolean with an appended "always at T" column
    stops = torch.cat([exercise, torch.ones_like(exercise[:, :1])], dim=1)
    first = torch.argmax(stops.to(torch.int8), dim=1)
    stopping = discount[first] * payoff.gather(1, first.unsqueeze(1)).squeeze(1)
    # P_control: bang-bang penalized value with survival R̃
    u = exercise.to(torch.float64)
    survival = torch.cat([torch.ones_like(u[:, :1]), torch.cumprod(1.0 - penalty * dt * u, dim=1)], dim=1)
    running = (discount[:n_dates] * survival[:, :n_dates] * u * payoff[:, :n_dates]).sum(dim=1) * (penalty * dt)
    control = running + discount[n_dates] * survival[:, n_dates] * payoff[:, n_dates]
    return {"stopping": stopping, "control": control}


def control_variate(y_sum: float, y_sq: float, z_sum: float, z_sq: float, yz_sum: float, n: int,
                    z_mean_exact: float) -> tuple[float, float]:
    """Regression control-variate estimate ``ȳ − β(z̄ − E z)``, ``β = cov(y, z)/var(z)``, and its s.e.

    With ``z = e^{−rT} g(X_T)`` (the European payoff, ``E z`` = the Black–Scholes price) this removes
    most of the sampling noise of ``P_stopping`` and ``P_control`` (their payoffs are strongly
    correlated with ``z``), so that learning error is not hidden by Monte Carlo error. Takes running
    sums so that it works chunk by chunk.
    """
    y_mean, z_mean = y_sum / n, z_sum / n
    var_y = max(y_sq / n - y_mean**2, 0.0)
    var_z = max(z_sq / n - z_mean**2, 1e-300)
    cov = yz_sum / n - y_mean * z_mean
    beta = cov / var_z
    residual = max(var_y - cov**2 / var_z, 0.0)
    return y_mean - beta * (z_mean - z_mean_exact), math.sqrt(residual / n)


def _mean_and_stderr(total: float, squares: float, n: int) -> tuple[float, float]:
    """Sample mean and its standard error ``sqrt((E[y²] − ȳ²)/n)`` from running sums."""
    mean = total / n
    return mean, math.sqrt(max(squares / n - mean**2, 0.0) / n)


@torch.no_grad()
def evaluate_stopping(learner, n_paths: int, reference: StoppingReference | None, *, net=None,
                      visited_quantiles: tuple[float, float] | None = None, keep_paths: int = 0) -> dict:
    """Prices, errors and accuracies of a learner's execution rule on its common test paths.

    Parameters
    ----------
    learner : rl.stopping.learner.StoppingLearner
        Supplies the configuration, the test paths (:meth:`~rl.stopping.learner.StoppingLearner.test_paths`,
        the same for every run with the same ``eval_seed``) and ``w_l = V_l − h`` on them.
    n_paths : int
        Number of test paths, at least 2 (a standard error needs two).
    reference : StoppingReference or None
        What to compare with; each metric needs only its own fields (see Returns).
    net : rl.networks.BatchedValueNetwork, optional
        The evaluation copy of the networks (default: :meth:`evaluation_network`, calibrated anew).
    visited_quantiles : (low, high), optional
        Also record, per date, the lowest ``low``-quantile and highest ``high``-quantile of the spots
        over the chunks (the region where value errors are measured).
    keep_paths : int
        Also return the first ``keep_paths`` test paths and their decisions (for a scatter plot).

    Returns
    -------
    dict
        Always: ``p_stopping``, ``p_control`` and their ``_stderr`` (plain Monte Carlo, as in the
        paper); ``exercise_count`` (ndarray (L,), exercised test points per date);
        ``value0_paths`` (mean learned ``V_0 = g + w_0`` over the first chunk); ``test_paths``.
        With ``reference.european``: ``p_*_cv`` and ``p_*_cv_stderr``. With the oracle's boundary and
        prices: ``p_*_crn`` and ``p_*_crn_stderr``. With ``reference``: ``rel_error_*`` (plain, and
        ``_cv``/``_crn`` where those exist) against ``reference.price``. With ``reference.boundary``:
        ``accuracy_vi`` (ndarray (L,), agreement with the VI boundary) and ``accuracy`` (agreement with
        the oracle's decisions, or the VI boundary's where there is no oracle); with both boundaries
        also ``oracle_accuracy`` (the oracle's own agreement with the VI boundary: the floor of
        ``accuracy_vi``). Optionally ``visited_low``, ``visited_high`` and ``scatter``.
    """
    c = learner.config
    n_paths = int(n_paths)
    if n_paths < 2:
        raise ValueError(f"n_paths must be >= 2 (a standard error needs two paths), got {n_paths}; "
                         "pass e.g. 262144")
    # memory is bounded by the chunking (EVAL_CHUNK paths at a time); the work is not
    check_work(f"a stopping evaluation on test_paths={n_paths} with {c.n_steps} dates", float(n_paths) * c.n_steps,
               rate=EVAL_PATH_DATES_PER_SECOND, fix="pass fewer test paths (2^18 give a standard error of ~0.01%)")
    net = net if net is not None else learner.evaluation_network()
    n_dates = c.n_steps
    boundary = reference.boundary if reference is not None else None
    target_boundary = reference.target_boundary if reference is not None else None
    use_crn = target_boundary is not None and reference.target_p_stopping is not None
    sums = {key: 0.0 for key in ("s", "s2", "c", "c2", "z", "z2", "sz", "cz")}
    gaps = {"stopping": 0.0, "control": 0.0, "stopping_sq": 0.0, "control_sq": 0.0}
    agree_vi = torch.zeros(n_dates, dtype=torch.float64)
    agree_target = torch.zeros(n_dates, dtype=torch.float64)
    target_vs_vi = torch.zeros(n_dates, dtype=torch.float64)
    exercised = torch.zeros(n_dates, dtype=torch.float64)
    visited_low = np.full(n_dates, np.inf)
    visited_high = np.full(n_dates, -np.inf)
    value0 = math.nan
    scatter = None
    discount_T = math.exp(-c.rate * c.maturity)
    pricing = dict(kind=c.kind, strike=c.strike, rate=c.rate, penalty=c.penalty, dt=c.dt)
    for index, paths in enumerate(learner.test_paths(n_paths)):
        premium_part = learner.premium_part(paths, net)
        exercise = premium_part <= 0.0  # π ≥ ½ ⇔ V ≤ g ⇔ w ≤ 0
        spots = paths[:, :n_dates]
        prices = stopping_prices(paths, exercise, **pricing)
        y, v = prices["stopping"], prices["control"]
        z = discount_T * payoff_torch(c.kind, paths[:, -1].double(), c.strike)
        for key, value in (("s", y.sum()), ("s2", y.square().sum()), ("c", v.sum()), ("c2", v.square().sum()),
                           ("z", z.sum()), ("z2", z.square().sum()), ("sz", (y * z).sum()), ("cz", (v * z).sum())):
            sums[key] += value.item()
        exercised += exercise.double().sum(dim=0).cpu()
        target = true_decisions(spots, target_boundary, c.kind) if target_boundary is not None else None
        if use_crn:
            oracle_prices = stopping_prices(paths, target, **pricing)
            for name, learned in (("stopping", y), ("control", v)):
                gap = learned - oracle_prices[name]
                gaps[name] += gap.sum().item()
                gaps[name + "_sq"] += gap.square().sum().item()
        if boundary is not None:
            truth = true_decisions(spots, boundary, c.kind)
            agree_vi += (truth == exercise).double().sum(dim=0).cpu()
            if target is not None:
                agree_target += (target == exercise).double().sum(dim=0).cpu()
                target_vs_vi += (target == truth).double().sum(dim=0).cpu()
        if visited_quantiles is not None:
            # both quantiles from one partition of the chunk (half the time of two np.quantile calls)
            low, high = np.quantile(spots.double().cpu().numpy(), visited_quantiles, axis=0)
            visited_low = np.minimum(visited_low, low)
            visited_high = np.maximum(visited_high, high)
        if index == 0:
            value0 = float((payoff_torch(c.kind, paths[:, 0], c.strike) + premium_part[:, 0]).mean().item())
            if keep_paths:
                scatter = {"paths": paths[:keep_paths].double().cpu().numpy(),
                           "exercise": exercise[:keep_paths].cpu().numpy()}

    out: dict = {}
    european = reference.european if reference is not None else None
    for name, (k, k2, kz) in {"stopping": ("s", "s2", "sz"), "control": ("c", "c2", "cz")}.items():
        out[f"p_{name}"], out[f"p_{name}_stderr"] = _mean_and_stderr(sums[k], sums[k2], n_paths)
        if european is not None:
            out[f"p_{name}_cv"], out[f"p_{name}_cv_stderr"] = control_variate(
                sums[k], sums[k2], sums["z"], sums["z2"], sums[kz], n_paths, european)
    if use_crn:
        for name, exact in (("stopping", reference.target_p_stopping), ("control", reference.target_p_control)):
            gap, out[f"p_{name}_crn_stderr"] = _mean_and_stderr(gaps[name], gaps[name + "_sq"], n_paths)
            out[f"p_{name}_crn"] = exact + gap
    if reference is not None:
        for name in ("stopping", "control"):
            for suffix in ("", "_crn", "_cv"):
                if f"p_{name}{suffix}" in out:
                    out[f"rel_error_{name}{suffix}"] = abs(out[f"p_{name}{suffix}"] - reference.price) / reference.price
    if boundary is not None:
        out["accuracy_vi"] = (agree_vi / n_paths).numpy()
        # primary: against the oracle's decisions (the learner's exact target); the VI boundary where
        # there is no oracle (Dong's learner has none)
        out["accuracy"] = (agree_target / n_paths).numpy() if target_boundary is not None else out["accuracy_vi"]
        if target_boundary is not None:
            out["oracle_accuracy"] = (target_vs_vi / n_paths).numpy()
    out["exercise_count"] = exercised.numpy()
    out["value0_paths"] = value0
    if visited_quantiles is not None:
        out["visited_low"], out["visited_high"] = visited_low, visited_high
    if keep_paths:
        out["scatter"] = scatter
    out["test_paths"] = n_paths
    return out
