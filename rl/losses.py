"""Pure loss functions of the stopping learners (SPEC section 3). No state, no modules: tensors in,
tensors out, shape contracts below.

Notation: ``B`` paths, ``L`` decision dates ``t_l = lΔt`` (``l = 0..L−1``) and the maturity
``t_L = T``; ``κ`` = ``penalty``, ``λ`` = ``temperature``, ``r`` = ``rate``. The exploratory control
problem (Dai, Sun, Xu & Zhou, section 3) carries the survival weight ``R`` (``R_0 = 1``,
``R_{l+1} = R_l (1 − κ π_l Δt)``) and the running reward ``κ g π − λ ℋ(π)``, where
``ℋ(π) = π log π + (1 − π) log(1 − π) ∈ [−log 2, 0]`` is the *negative* Bernoulli entropy.

Gradients. Each function differentiates through exactly what it is given: callers detach the
policy ``π`` (and hence ``R``) by default, so that only the value ``V_l`` receives gradient, as in the
paper's algorithms.
"""

from __future__ import annotations

import math

import torch


def neg_entropy(prob: torch.Tensor) -> torch.Tensor:
    """Negative Bernoulli entropy ``ℋ(π) = π log π + (1 − π) log(1 − π)`` with ``0 log 0 = 0``.

    Shape: any; values in ``[−log 2, 0]``.
    """
    return torch.xlogy(prob, prob) + torch.xlogy(1.0 - prob, 1.0 - prob)


def survival_weights(prob: torch.Tensor, *, penalty: float, dt: float) -> torch.Tensor:
    """``R_l = Π_{j<l} (1 − κ π_j Δt)`` for ``l = 0..L``.

    Shapes: ``prob`` ``(B, L)`` → ``(B, L + 1)`` with ``R_0 = 1``.
    """
    factors = 1.0 - (penalty * dt) * prob
    ones = torch.ones_like(prob[:, :1])
    return torch.cat([ones, torch.cumprod(factors, dim=1)], dim=1)


def _discounts(n_dates: int, *, rate: float, dt: float, like: torch.Tensor) -> torch.Tensor:
    """``e^{−r t_l}`` for ``l = 0..n_dates−1`` as a row vector matching ``like``'s dtype/device."""
    times = torch.arange(n_dates, dtype=torch.float64, device=like.device) * dt
    return torch.exp(-rate * times).to(like.dtype)


def running_reward(payoff: torch.Tensor, prob: torch.Tensor, *, penalty: float, temperature: float) -> torch.Tensor:
    """Reward rate ``κ g π − λ ℋ(π)`` of the exploratory stopping problem (same shape as inputs)."""
    return penalty * payoff * prob - temperature * neg_entropy(prob)


def martingale_increments(values: torch.Tensor, payoffs: torch.Tensor, terminal: torch.Tensor,
                          prob: torch.Tensor, *, penalty: float, temperature: float, rate: float,
                          dt: float) -> torch.Tensor:
    """The martingale differences ``G_l`` of the offline martingale loss (SPEC section 3).

    ``G_l = e^{−rT} R_L g_L − e^{−r t_l} R_l V_l + Σ_{j≥l} e^{−r t_j} R_j [κ g_j π_j − λ ℋ(π_j)] Δt``

    (Dai, Sun, Xu & Zhou, eq. (3.4) with the discounting of section 4; premium formulation: pass
    ``h`` as ``payoffs`` and zeros as ``terminal``). The tail sums are one reversed cumulative sum.

    Parameters
    ----------
    values : (B, L)
        ``V_l(X_l)``, ``l = 0..L−1``.
    payoffs : (B, L)
        ``g(t_l, X_l)`` (or ``h``).
    terminal : (B,)
        ``g(X_T)`` (premium: zeros).
    prob : (B, L)
        ``π_l``.

    Returns
    -------
    (B, L)
    """
    n_dates = values.shape[1]
    survival = survival_weights(prob, penalty=penalty, dt=dt)
    discount = _discounts(n_dates + 1, rate=rate, dt=dt, like=values)
    weights = survival[:, :n_dates] * discount[:n_dates]
    rewards = weights * running_reward(payoffs, prob, penalty=penalty, temperature=temperature) * dt
    tail = torch.flip(torch.cumsum(torch.flip(rewards, [1]), dim=1), [1])  # Σ_{j≥l}
    final = (discount[n_dates] * survival[:, n_dates] * terminal).unsqueeze(1)
    return final - weights * values + tail


def martingale_loss(values: torch.Tensor, payoffs: torch.Tensor, terminal: torch.Tensor, prob: torch.Tensor, *,
                    penalty: float, temperature: float, rate: float, dt: float) -> torch.Tensor:
    """Offline martingale loss ``½ E[Σ_l G_l² Δt]`` (scalar; shapes as :func:`martingale_increments`)."""
    increments = martingale_increments(values, payoffs, terminal, prob, penalty=penalty,
                                       temperature=temperature, rate=rate, dt=dt)
    return 0.5 * dt * increments.square().sum(dim=1).mean()


def td0_errors(values: torch.Tensor, next_values: torch.Tensor, payoffs: torch.Tensor, prob: torch.Tensor, *,
               penalty: float, temperature: float, rate: float, dt: float) -> torch.Tensor:
    """TD(0) errors of the online learner (SPEC section 3, **[fix]** ``r V_l Δt``).

    ``δ_l = (1 − κ π_l Δt) V_{l+1} − V_l + [κ g_l π_l − λ ℋ(π_l)] Δt − r V_l Δt``

    The paper (eq. 3.7 with the discounting of section 4) prints ``− r V_l`` without ``Δt``; the
    continuous-time TD error ``dV + (reward − rV) dt`` needs it.

    Shapes: ``values``, ``next_values`` (``V_{l+1}``, with ``V_L`` = terminal payoff), ``payoffs``,
    ``prob`` all ``(B, L)`` → ``(B, L)``.
    """
    reward = running_reward(payoffs, prob, penalty=penalty, temperature=temperature)
    return (1.0 - penalty * dt * prob) * next_values - values + (reward - rate * values) * dt


def td0_loss(values: torch.Tensor, next_values: torch.Tensor, payoffs: torch.Tensor, prob: torch.Tensor, *,
             penalty: float, temperature: float, rate: float, dt: float) -> torch.Tensor:
    """Semi-gradient TD(0) surrogate: ``½ E[Σ_l (sg[target_l] − V_l)²]`` with ``δ_l = target_l − V_l``.

    Its gradient is ``−E[Σ_l δ_l ∇V_l]``, so a gradient step is the paper's update
    ``θ_l += α ∇V_l δ_l`` (eq. 3.7). The target ``δ_l + V_l`` (which contains ``V_{l+1}`` and the
    ``− r V_l Δt`` term) is detached. Because date ``l``'s update only touches network ``l`` and reads
    network ``l + 1`` (updated later in the paper's loop over ``l``), one batched step equals the
    paper's sequential sweep over the dates. Shapes as :func:`td0_errors`; returns a scalar.
    """
    errors = td0_errors(values, next_values, payoffs, prob, penalty=penalty, temperature=temperature,
                        rate=rate, dt=dt)
    target = (errors + values).detach()
    return 0.5 * (target - values).square().sum(dim=1).mean()


def volatility_martingale_loss(european_values: torch.Tensor, terminal_payoff: torch.Tensor, *, rate: float,
                               dt: float) -> torch.Tensor:
    """Martingale loss of the European claim used to learn σ (paper appendix B, eq. B.9).

    ``½ E[Σ_{l<L} (e^{−rT} g(X_T) − e^{−r t_l} V_E^ϕ(t_l, X_l))² Δt]``

    Shapes: ``european_values`` ``(B, L)`` (``V_E^ϕ`` at the decision dates, differentiable in ϕ),
    ``terminal_payoff`` ``(B,)`` → scalar. Minimized at ``V_E^ϕ = e^{r t_l}E[e^{−rT} g(X_T) | X_l]``,
    i.e. at the true volatility when the Black–Scholes family contains the truth.
    """
    n_dates = european_values.shape[1]
    discount = _discounts(n_dates + 1, rate=rate, dt=dt, like=european_values)
    residual = (discount[n_dates] * terminal_payoff).unsqueeze(1) - discount[:n_dates] * european_values
    return 0.5 * dt * residual.square().sum(dim=1).mean()


# ---------------------------------------------------------------------------------------------- Dong
def dong_intensity(payoff: torch.Tensor, value: torch.Tensor, *, temperature: float, dt: float) -> torch.Tensor:
    """Dong (2024) stopping intensity ``π̃ = min(exp((g − V)/λ), 1/Δt)``.

    The truncation at ``1/Δt`` keeps the survival factor ``1 − π̃ Δt`` in ``[0, 1]``. Computed as
    ``exp(min((g − V)/λ, −log Δt))`` so that it never overflows.
    """
    return torch.exp(torch.clamp((payoff - value) / temperature, max=-math.log(dt)))


def dong_regularizer(intensity: torch.Tensor) -> torch.Tensor:
    """Dong's unnormalized entropy ``π̃ − π̃ log π̃`` (weighted by λ in the reward)."""
    return intensity - torch.xlogy(intensity, intensity)


def dong_td_errors(values: torch.Tensor, next_values: torch.Tensor, payoffs: torch.Tensor,
                   intensity: torch.Tensor, *, temperature: float, rate: float, dt: float) -> torch.Tensor:
    """TD errors of Dong's formulation (no penalty factor: ``π̃`` plays the role of ``κπ``).

    ``δ_l = (1 − π̃_l Δt) V_{l+1} − V_l + [π̃_l g_l + λ (π̃_l − π̃_l log π̃_l)] Δt − r V_l Δt``

    Shapes: all ``(B, L)`` → ``(B, L)``. The HJB ``V_t + 𝓛V + sup_π̃ [π̃ (g − V) + λ(π̃ − π̃ log π̃)] = 0``
    has the maximizer ``π̃* = exp((g − V)/λ)`` and the value ``λ π̃*``.
    """
    reward = intensity * payoffs + temperature * dong_regularizer(intensity)
    return (1.0 - dt * intensity) * next_values - values + (reward - rate * values) * dt


def dong_loss(values: torch.Tensor, next_values: torch.Tensor, payoffs: torch.Tensor, intensity: torch.Tensor, *,
              temperature: float, rate: float, dt: float) -> torch.Tensor:
    """Semi-gradient squared TD error of Dong (2024), ``½ E[Σ_l (sg[target_l] − V_l)²]`` (scalar)."""
    errors = dong_td_errors(values, next_values, payoffs, intensity, temperature=temperature, rate=rate, dt=dt)
    target = (errors + values).detach()
    return 0.5 * (target - values).square().sum(dim=1).mean()


# ---------------------------------------------------------------- market making (Fang & Xu)
def continuous_td_loss(values: torch.Tensor, next_values: torch.Tensor, reward_rate: torch.Tensor,
                       dt: torch.Tensor, mask: torch.Tensor | None = None,
                       weights: torch.Tensor | None = None) -> torch.Tensor:
    """Discretized continuous-time TD loss (Fang & Xu eqs. 20–21): ``E Σ_j δ_j² Δt_j``.

    ``δ_j = (next_values_j − values_j)/Δt_j + reward_rate_j``.

    Parameters
    ----------
    values : Tensor[..., N]
        ``V(t_j, Y_j)``, j = 0..N−1 (trailing axis: time steps; leading axes: paths).
    next_values : Tensor[..., N]
        ``V(t_{j+1}, ·)``, or its conditional expectation over the step's fills.
    reward_rate : Tensor[..., N]
        Reward per unit time over the step (expected spread income + γ·entropy − running risk).
    dt : Tensor[N] or Tensor[..., N]
        Step lengths ``Δt_j > 0``.
    mask : Tensor[..., N] of bool, optional
        Steps to include (others contribute zero).
    weights : Tensor[N] or Tensor[..., N], optional
        Positive weights ``w_j`` of the squared errors (``Σ_j w_j δ_j² Δt_j``): a preconditioner that
        leaves the zero-residual solution unchanged.

    Returns
    -------
    Tensor[]
        ``mean over leading axes of Σ_j δ_j² Δt_j``.
    """
    if values.shape != next_values.shape or values.shape != reward_rate.shape:
        raise ValueError(f"values, next_values and reward_rate must have the same shape [..., N], got "
                         f"{tuple(values.shape)}, {tuple(next_values.shape)}, {tuple(reward_rate.shape)}")
    delta = (next_values - values) / dt + reward_rate
    terms = delta**2 * dt
    if weights is not None:
        terms = terms * weights
    if mask is not None:
        terms = torch.where(mask, terms, torch.zeros_like(terms))
    return terms.sum(dim=-1).mean()
