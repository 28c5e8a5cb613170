"""Dual (upper) bound of an optimal stopping value from a learned value function.

Duality (Rogers 2002; Haugh & Kogan 2004; Andersen & Broadie 2004). For every martingale ``M`` with
``M_0 = 0`` on the dates ``n = 0..N``,

.. math::

    V_0 = \\sup_τ E[g_τ] \\le E\\Big[\\max_{0 \\le n \\le N} (g_n − M_n)\\Big],

with equality for the martingale part of the Snell envelope. A learned value function gives a
martingale close to it:

.. math::

    Ṽ_n = g_n + \\max(w_n, 0) \\; (n < N), \\quad Ṽ_N = g_N, \\qquad
    M_n = \\sum_{k=1}^{n} \\big(Ṽ_k − Ê_{k−1}[Ṽ_k]\\big),

where ``w_n = V − g`` is the networks' output (both formulations of :mod:`rl.stopping.high_dim`) and
``Ê_{k−1}`` averages ``Ṽ_k`` over ``J`` inner draws of date ``k`` given the path up to ``k − 1``
(antithetic pairs from the exact conditional law). The inner draws are independent of the outer path's
own date-``k`` value, so each increment has conditional mean 0: ``M`` is a martingale whatever the
networks are, the estimate is an upper bound in expectation, and the inner noise only raises it
(Andersen & Broadie). Together with the learned rule's value on the same outer paths (a lower bound) it
brackets the true value: the gap says how far the learned policy can be from optimal, with no reference.
The same martingale is a control variate of the rule's value: ``E[M_τ] = 0`` (optional stopping, τ ≤ N),
so ``g_τ − M_τ`` estimates it without bias and with far less variance, and
``max_n (g_n − M_n) − (g_τ − M_τ) ≥ 0`` on every path: the paired gap is never negative.

Implemented for the fractional Brownian motion (:mod:`rl.stopping.fbm`), whose date-``k`` value given
the past is one Gaussian coordinate: the inner states differ from the outer one only in the state's
first coordinate and in ``h``, and the batched networks evaluate every date's inner states at once.
The basket has an exact oracle (:mod:`pdecore.basket`) instead.
"""

from __future__ import annotations

import math

import torch

from pdecore.budget import check_memory
from pdecore.checks import check_int


def dual_upper_bound(learner, *, n_paths: int = 4096, inner: int = 64, seed_offset: int = 7,
                     chunk: int | None = None) -> dict[str, float]:
    """Upper bound ``E[max_n (g_n − M_n)]`` and the learned rule's value on the same fresh outer paths.

    Parameters
    ----------
    learner : rl.stopping.high_dim.HighDimStoppingLearner
        A trained fBm learner (``problem="fbm"``); its calibrated evaluation networks are used.
    n_paths : int
        Outer paths (drawn from ``eval_seed + seed_offset``: not the training or the test paths).
    inner : int
        Inner draws per outer path and date (even: antithetic pairs).
    chunk : int, optional
        Outer paths per batched evaluation (default: as many as fit 256 MB of inner inputs). It changes
        which inner draws go with which outer path, not the outer paths or the estimator's law.

    Returns
    -------
    dict with ``upper`` and ``upper_stderr`` (the dual bound); ``lower`` (the learned rule's value on the
    same outer paths, ``g_τ − M_τ``: the martingale as control variate) and ``lower_plain`` (``g_τ``), each
    with ``_stderr``; ``gap`` = upper − lower with its paired ``gap_stderr``; ``n_paths``, ``inner``.
    """
    config = learner.config
    if config.problem != "fbm":
        raise ValueError(f"the dual upper bound is implemented for the fBm, got problem={config.problem!r}; the "
                         "basket has an exact oracle (pdecore.basket), use the evaluation's p_oracle_rule instead")
    n_paths = check_int("n_paths", n_paths, minimum=2, fix="pass at least 2 outer paths, e.g. 4096")
    inner = check_int("inner", inner, minimum=2, fix="pass an even number of inner draws, e.g. 64")
    if inner % 2:
        raise ValueError(f"inner must be even (antithetic pairs), got {inner}; pass e.g. 64")
    simulator = learner.simulator
    n_dates = config.n_dates
    features_in = simulator.dimension + 1
    element = torch.empty((), dtype=learner.dtype).element_size()
    per_outer = float(n_dates) * (features_in + 3 * config.hidden) * inner * element
    if chunk is None:
        chunk = max(1, int(256e6 // per_outer))
    chunk = check_int("chunk", chunk, minimum=1, fix="pass a positive number of outer paths per evaluation")
    check_memory(f"dual upper bound n_paths={n_paths}, chunk={chunk}, inner={inner}, n_dates={n_dates}",
                 chunk * per_outer + float(n_paths) * (n_dates + 1) * (8 + element) + 3 * 8 * n_paths,
                 fix="pass a smaller chunk, fewer inner draws or fewer outer paths")
    net = learner.evaluation_network()
    weight_on_last = simulator.terminal_mean_weight_on_last().to(learner.device)
    generator = torch.Generator().manual_seed(config.eval_seed + seed_offset)
    inner_generator = torch.Generator().manual_seed(config.eval_seed + seed_offset + 1)
    uppers, lowers, plains = [], [], []
    outer = learner.sample_raw(n_paths, generator)  # all at once: the outer paths do not depend on the chunk
    with torch.no_grad():
        for start in range(0, n_paths, chunk):
            raw = outer[start:start + chunk]
            gains, martingale, plain, stop = _martingale(learner, net, raw, inner, inner_generator, weight_on_last)
            uppers.append((gains - martingale).max(dim=1).values)  # max over n = 0..N of g_n − M_n
            lowers.append(plain - martingale.gather(1, stop.unsqueeze(1)).squeeze(1))  # g_τ − M_τ
            plains.append(plain)
    upper, lower, plain = torch.cat(uppers), torch.cat(lowers), torch.cat(plains)
    gap = upper - lower

    def stderr(values):
        return float(values.std(unbiased=True)) / math.sqrt(values.numel())

    return {"upper": float(upper.mean()), "upper_stderr": stderr(upper), "lower": float(lower.mean()),
            "lower_stderr": stderr(lower), "lower_plain": float(plain.mean()), "lower_plain_stderr": stderr(plain),
            "gap": float(gap.mean()), "gap_stderr": stderr(gap),
            "n_paths": n_paths, "inner": inner}


def _martingale(learner, net, raw, inner, generator, weight_on_last):
    """Per outer path the payoffs ``g_n`` and the martingale ``M_n`` (``n = 0..N``, float64 ``(B, N + 1)``),
    the learned rule's payoff ``g_τ`` (``(B,)``) and its stopping date τ (``(B,)``, int)."""
    n_dates = learner.config.n_dates
    inputs, _, _, gains, european = learner.features(raw)  # inputs (L, D + 1, B); gains (B, L + 1)
    batch = raw.shape[0]
    outputs = net(inputs).T.to(torch.float64)  # w = V − g, (B, L)
    exercise = outputs <= 0.0
    stopped_value, _, stop = learner.stopped(exercise, gains, european)

    # inner draws of every date m = 1..N given the path to m − 1: W_m = μ_m + s_m ξ (antithetic ξ)
    mean, std = learner.simulator.conditional_law(raw)  # (B, N), (N,)
    half = torch.randn((batch, n_dates, inner // 2), generator=generator, dtype=torch.float64).to(raw.device)
    draws = mean.unsqueeze(2) + std.view(1, -1, 1) * torch.cat([half, -half], dim=2)  # (B, N, J)

    new = draws[:, :n_dates - 1, :]  # inner W_m of dates m = 1..L−1, (B, L − 1, J)
    inner_inputs = _inner_inputs(learner, inputs, gains, new, weight_on_last)
    inner_w = net(inner_inputs.view(n_dates, inputs.shape[1], batch * inner)).to(torch.float64)
    inner_w = inner_w.view(n_dates, batch, inner)[1:].permute(1, 0, 2)  # (B, L − 1, J)
    inner_value = new + torch.clamp(inner_w, min=0.0)  # Ṽ_m on the inner draws, g = W_m
    expected = torch.cat([inner_value.mean(dim=2), mean[:, -1:]], dim=1)  # Ê_{m−1}[Ṽ_m], m = 1..N (Ṽ_N = W_N)

    values = torch.cat([gains[:, 1:n_dates] + torch.clamp(outputs[:, 1:], min=0.0), gains[:, -1:]], dim=1)
    martingale = torch.cat([torch.zeros_like(values[:, :1]), torch.cumsum(values - expected, dim=1)], dim=1)
    return gains, martingale, stopped_value, stop


def _inner_inputs(learner, inputs, gains, new, weight_on_last):
    """The networks' inputs on the inner states, ``(L, D + 1, B, J)``: slot ``m = 1..L−1`` holds date ``m``'s
    input of the outer path with ``W_m`` replaced by each inner draw ``new[:, m − 1, j]``; slot 0 the outer
    input (unused). Only the state's first coordinate (``W_m``) and ``h`` change: ``h = g − E_m[W_1]``
    (premium) or ``g`` (price), both linear in ``W_m``."""
    own = gains[:, 1:learner.config.n_dates]  # outer W_m, (B, L − 1)
    shift = new - own.unsqueeze(2)
    h_inner = inputs[1:, -1, :].T.to(torch.float64).unsqueeze(2) + shift  # g moves one for one
    if learner.premium:
        h_inner = h_inner - weight_on_last[1:].view(1, -1, 1) * shift  # and E_m[W_1] by its weight on W_m
    inner_inputs = inputs.unsqueeze(3).expand(-1, -1, -1, new.shape[2]).clone()
    inner_inputs[1:, 0] = new.permute(1, 0, 2).to(inner_inputs.dtype)
    inner_inputs[1:, -1] = h_inner.permute(1, 0, 2).to(inner_inputs.dtype)
    return inner_inputs


__all__ = ["dual_upper_bound"]
