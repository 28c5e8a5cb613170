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

Scalars. ``penalty``, ``temperature``, ``rate`` and ``dt`` are Python floats or 0-d float64 tensors.
Compiled learners pass tensors (:func:`loss_scalars`): inside ``torch.compile`` a float is a constant of
the graph, so each new (κ, λ) of a sweep would compile a new graph; a tensor is an input of one graph.
"""

from __future__ import annotations

import math

import torch


def loss_scalars(*, penalty: float, temperature: float, rate: float, dt: float, tensors: bool) -> dict:
    """The loss functions' scalars (and the policy's ``κ/λ`` as ``logit_scale``), as floats or, with
    ``tensors``, as 0-d float64 CPU tensors holding the same values (see the module docstring)."""
    values = {"penalty": float(penalty), "temperature": float(temperature), "rate": float(rate), "dt": float(dt),
              "logit_scale": float(penalty) / float(temperature)}
    if not tensors:
        return values
    return {name: torch.tensor(value, dtype=torch.float64) for name, value in values.items()}


def _exp(value):
    """``e^value`` of a float (math) or of a 0-d tensor (torch), in double precision either way."""
    return torch.exp(value) if isinstance(value, torch.Tensor) else math.exp(value)


def _log(value):
    return torch.log(value) if isinstance(value, torch.Tensor) else math.log(value)


def neg_entropy(prob: torch.Tensor) -> torch.Tensor:
    """Negative Bernoulli entropy ``ℋ(π) = π log π + (1 − π) log(1 − π)`` with ``0 log 0 = 0``.

    Shape: any; values in ``[−log 2, 0]``.
    """
    return torch.xlogy(prob, prob) + torch.xlogy(1.0 - prob, 1.0 - prob)


def survival_weights(prob: torch.Tensor, *, penalty: float, dt: float) -> torch.Tensor:
    """``R_l = Π_{j<l} (1 − κ π_j Δt)`` for ``l = 0..L``.

    Shapes: ``prob`` ``(..., B, L)`` → ``(..., B, L + 1)`` with ``R_0 = 1`` (leading axes: replicas).
    """
    factors = 1.0 - (penalty * dt) * prob
    ones = torch.ones_like(prob[..., :1])
    return torch.cat([ones, torch.cumprod(factors, dim=-1)], dim=-1)


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

    Every argument may carry the same extra leading axes (independent replicas, see
    :mod:`rl.stopping.replicas`); rows never mix.
    """
    n_dates = values.shape[-1]
    survival = survival_weights(prob, penalty=penalty, dt=dt)
    discount = _discounts(n_dates + 1, rate=rate, dt=dt, like=values)
    weights = survival[..., :n_dates] * discount[:n_dates]
    rewards = weights * running_reward(payoffs, prob, penalty=penalty, temperature=temperature) * dt
    tail = torch.flip(torch.cumsum(torch.flip(rewards, [-1]), dim=-1), [-1])  # Σ_{j≥l}
    final = (discount[n_dates] * survival[..., n_dates] * terminal).unsqueeze(-1)
    return final - weights * values + tail


def restarted_martingale_residuals(values: torch.Tensor, payoffs: torch.Tensor, terminal: torch.Tensor,
                                  prob: torch.Tensor, *, penalty: float, temperature: float, rate: float,
                                  dt: float) -> torch.Tensor:
    """The martingale differences restarted at each date, ``G_l / R_l`` (shapes as
    :func:`martingale_increments`).

    ``G_l / R_l = e^{−r t_l} (Y_l − V_l)`` with the pathwise return from date ``l`` on,

    ``Y_l = [κ g_l π_l − λ ℋ(π_l)] Δt + (1 − κ π_l Δt) e^{−rΔt} Y_{l+1}``,  ``Y_L = g_L``,

    i.e. the survival weight counted from ``t_l`` instead of from ``t_0`` (``R_j / R_l``). Computed by
    this backward recursion, never by dividing by ``R_l``, which underflows to 0 on paths that have
    been exercising for many dates (``R_l = 0`` exactly when ``κΔt = 1`` and ``π = 1``).

    Why. The paper's increment is ``G_l = R_l e^{−r t_l} (Y_l − V_l)``, so the martingale loss weighs
    date ``l``'s squared residual by ``R_l²``. ``R_l`` is known at ``t_l`` (a function of the path up
    to ``t_l``, π detached) and ``E[Y_l | 𝓕_l] = E[Y_l | X_l]`` (Markov), so for *any* positive
    ``𝓕_l``-measurable weight the minimizer over ``V_l`` is the same conditional expectation, the
    fixed point of SPEC section 2: ``E[R_l² (Y_l − V_l)²] = E[R_l² (Y_l − m_l)²] + E[R_l² (m_l − V_l)²]``
    with ``m_l = E[Y_l | X_l]``. Only which points the network fits changes: with ``R_l²`` deep
    in-the-money points at late dates, reached after many exercising dates (``R ≈ 0.8^20``), get no
    gradient and the network extrapolates there freely (measured: 88–90 % accuracy at date 48 on
    seed 3 of the paper settings); restarted, every path counts at every date.
    """
    n_dates = values.shape[-1]
    discount = _discounts(n_dates, rate=rate, dt=dt, like=values)
    rewards = running_reward(payoffs, prob, penalty=penalty, temperature=temperature) * dt
    carry = (1.0 - (penalty * dt) * prob) * _exp(-rate * dt)
    returns = []
    future = terminal
    for date in range(n_dates - 1, -1, -1):  # a linear recurrence: L small vector ops
        future = rewards[..., date] + carry[..., date] * future
        returns.append(future)
    returns = torch.stack(returns[::-1], dim=-1)
    return discount * (returns - values)


MARTINGALE_WEIGHTINGS = ("survival", "restarted")


def martingale_loss(values: torch.Tensor, payoffs: torch.Tensor, terminal: torch.Tensor, prob: torch.Tensor, *,
                    penalty: float, temperature: float, rate: float, dt: float,
                    weighting: str = "survival") -> torch.Tensor:
    """Offline martingale loss ``½ E[Σ_l G_l² Δt]`` (scalar; shapes as :func:`martingale_increments`).

    ``weighting="survival"`` (default): the paper's increments ``G_l`` (:func:`martingale_increments`,
    Algorithm 1). ``"restarted"``: ``G_l / R_l`` (:func:`restarted_martingale_residuals`), the same
    minimizer with every path weighted equally at every date.
    """
    if weighting == "survival":
        increments = martingale_increments(values, payoffs, terminal, prob, penalty=penalty,
                                           temperature=temperature, rate=rate, dt=dt)
    elif weighting == "restarted":
        increments = restarted_martingale_residuals(values, payoffs, terminal, prob, penalty=penalty,
                                                    temperature=temperature, rate=rate, dt=dt)
    else:
        raise ValueError(f"weighting must be one of {MARTINGALE_WEIGHTINGS}, got {weighting!r}; use \"survival\" "
                         "(the paper's loss) or \"restarted\"")
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
    residual = volatility_martingale_residuals(european_values, terminal_payoff, rate=rate, dt=dt)
    return 0.5 * dt * residual.square().sum(dim=1).mean()


def volatility_martingale_residuals(european_values: torch.Tensor, terminal_payoff: torch.Tensor, *, rate: float,
                                    dt: float) -> torch.Tensor:
    """``e^{−rT} g(X_T) − e^{−r t_l} V_E^ϕ(t_l, X_l)``, the residuals of
    :func:`volatility_martingale_loss`; shapes ``(..., B, L)`` and ``(..., B)`` → ``(..., B, L)``."""
    n_dates = european_values.shape[-1]
    discount = _discounts(n_dates + 1, rate=rate, dt=dt, like=european_values)
    return (discount[n_dates] * terminal_payoff).unsqueeze(-1) - discount[:n_dates] * european_values


# ---------------------------------------------------------------------------------------------- Dong
def dong_intensity(payoff: torch.Tensor, value: torch.Tensor, *, temperature: float, dt: float) -> torch.Tensor:
    """Dong (2024) stopping intensity ``π̃ = min(exp((g − V)/λ), 1/Δt)``.

    The truncation at ``1/Δt`` keeps the survival factor ``1 − π̃ Δt`` in ``[0, 1]``. Computed as
    ``exp(min((g − V)/λ, −log Δt))`` so that it never overflows.
    """
    return torch.exp(torch.clamp((payoff - value) / temperature, max=-_log(dt)))


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


# ------------------------------------------------------- Dynkin game (paper section 4.7, appendix D)
# Two randomized stoppers on the obstacles ℓ ≤ u (SPEC section 4): the lower player (maximizer) stops
# with probability ν = sigmoid(κ(ℓ − w)/λ), the upper one (minimizer) with μ = sigmoid(κ(w − u)/λ).
# Survival R_{l+1} = R_l (1 − κ(ν_l + μ_l)Δt) (ν + μ ≤ 1, so κΔt ≤ 1 keeps it in [0, 1]); running reward
# κ(νℓ + μu) − λℋ(ν) + λℋ(μ): the maximizer is paid her entropy, the minimizer pays his. No discounting
# (the ratio generator has no reaction term). Shapes: B paths, L dates.
def dynkin_probabilities(values: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, *, penalty: float,
                         temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ν, μ) = (sigmoid(κ(ℓ − w)/λ), sigmoid(κ(w − u)/λ))`` (same shape as the inputs)."""
    scale = penalty / temperature
    return torch.sigmoid((lower - values) * scale), torch.sigmoid((values - upper) * scale)


def dynkin_running_reward(lower: torch.Tensor, upper: torch.Tensor, nu: torch.Tensor, mu: torch.Tensor, *,
                          penalty: float, temperature: float) -> torch.Tensor:
    """Reward rate ``κ(ν ℓ + μ u) − λℋ(ν) + λℋ(μ)`` of the exploratory Dynkin game (same shape)."""
    return penalty * (nu * lower + mu * upper) - temperature * (neg_entropy(nu) - neg_entropy(mu))


def dynkin_martingale_increments(values: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor,
                                 terminal: torch.Tensor, nu: torch.Tensor, mu: torch.Tensor, *, penalty: float,
                                 temperature: float, dt: float) -> torch.Tensor:
    """``G_l = R_L w_L − R_l w_l + Σ_{j≥l} R_j [κ(ν_j ℓ_j + μ_j u_j) − λℋ(ν_j) + λℋ(μ_j)] Δt``.

    The stopping increments of :func:`martingale_increments` with the two players' joint survival and
    reward and no discounting. Minimizing ``½ E[Σ_l G_l² Δt]`` over ``w_l`` gives
    ``w_l = E[(R_L w_L + Σ_{j≥l} R_j r_j Δt)/R_l | X_l]``, the value of the current policies, whose
    fixed point is :func:`pdecore.dynkin_oracle.dynkin_oracle`.

    Parameters
    ----------
    values, lower, upper, nu, mu : (B, L)
        ``w_l(X_l)``, ``ℓ(X_l)``, ``u(X_l)``, ``ν_l``, ``μ_l`` for ``l = 0..L−1``.
    terminal : (B,)
        ``w_L = s(X_L)``, the sell obstacle (liquidation).

    Returns
    -------
    (B, L)
    """
    survival = survival_weights(nu + mu, penalty=penalty, dt=dt)
    n_dates = values.shape[1]
    weights = survival[:, :n_dates]
    rewards = weights * dynkin_running_reward(lower, upper, nu, mu, penalty=penalty, temperature=temperature) * dt
    tail = torch.flip(torch.cumsum(torch.flip(rewards, [1]), dim=1), [1])  # Σ_{j≥l}
    return (survival[:, n_dates] * terminal).unsqueeze(1) - weights * values + tail


def dynkin_martingale_loss(values: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, terminal: torch.Tensor,
                           nu: torch.Tensor, mu: torch.Tensor, *, penalty: float, temperature: float,
                           dt: float, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Offline martingale loss ``½ E[Σ_l ω_l G_l² Δt]`` of the game (scalar; shapes as
    :func:`dynkin_martingale_increments`).

    ``weights`` ``(B, L)``: optional ``ω_l = ω(X_l) > 0``, functions of the current state only. They do
    not move the minimizer: over functions ``w_l`` of ``X_l`` the minimizer of
    ``E[ω(X_l)(Y_l − R_l w_l(X_l))²]`` is ``E[R_l Y_l | X_l]/E[R_l² | X_l]`` whatever ``ω``, since ``ω(X_l)``
    factors out of both conditional expectations. They only redistribute the fitting effort over states
    (a preconditioner); default 1.
    """
    increments = dynkin_martingale_increments(values, lower, upper, terminal, nu, mu, penalty=penalty,
                                              temperature=temperature, dt=dt)
    squares = increments.square() if weights is None else weights * increments.square()
    return 0.5 * dt * squares.sum(dim=1).mean()


def dynkin_td0_errors(values: torch.Tensor, next_values: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor,
                      nu: torch.Tensor, mu: torch.Tensor, *, penalty: float, temperature: float,
                      dt: float) -> torch.Tensor:
    """``δ_l = (1 − κ(ν_l + μ_l)Δt) w_{l+1} − w_l + [κ(ν ℓ + μ u) − λℋ(ν) + λℋ(μ)] Δt``.

    Shapes: all ``(B, L)`` (``next_values`` holds ``w_{l+1}``, with ``w_L`` the terminal value) → ``(B, L)``.
    """
    reward = dynkin_running_reward(lower, upper, nu, mu, penalty=penalty, temperature=temperature)
    return (1.0 - penalty * dt * (nu + mu)) * next_values - values + reward * dt


def dynkin_td0_loss(values: torch.Tensor, next_values: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor,
                    nu: torch.Tensor, mu: torch.Tensor, *, penalty: float, temperature: float,
                    dt: float, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Semi-gradient TD(0) surrogate ``½ E[Σ_l ω_l (sg[δ_l + w_l] − w_l)²]`` (scalar; see :func:`td0_loss`;
    ``weights`` as in :func:`dynkin_martingale_loss`)."""
    errors = dynkin_td0_errors(values, next_values, lower, upper, nu, mu, penalty=penalty,
                               temperature=temperature, dt=dt)
    target = (errors + values).detach()
    squares = (target - values).square()
    return 0.5 * (squares if weights is None else weights * squares).sum(dim=1).mean()


def dai_dong_intensities(values: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, *, temperature: float,
                         dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Dai & Dong (2024) Cox intensities ``ν̃ = exp((ℓ − w)/λ)``, ``μ̃ = exp((w − u)/λ)``, each truncated
    at ``1/Δt`` (:func:`dong_intensity` for each player: the maximizer of ``ν̃(ℓ − w) + λ(ν̃ − ν̃ log ν̃)``
    and the minimizer of ``μ̃(u − w) − λ(μ̃ − μ̃ log μ̃)``)."""
    return (dong_intensity(lower, values, temperature=temperature, dt=dt),
            dong_intensity(-upper, -values, temperature=temperature, dt=dt))


def dai_dong_td_loss(values: torch.Tensor, next_values: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor,
                     nu: torch.Tensor, mu: torch.Tensor, *, temperature: float, dt: float,
                     weights: torch.Tensor | None = None) -> torch.Tensor:
    """Semi-gradient squared TD error of the Dai & Dong (2024) game (scalar).

    ``δ_l = (1 − (ν̃ + μ̃)Δt)^+ w_{l+1} − w_l + [ν̃ ℓ + μ̃ u + λ(ν̃ − ν̃ log ν̃) − λ(μ̃ − μ̃ log μ̃)] Δt``;
    shapes all ``(B, L)``. The survival factor is clipped at 0 (each intensity is truncated at
    ``1/Δt``, their sum may exceed it). ``weights`` as in :func:`dynkin_martingale_loss` (the same
    training structure for both algorithms: without them neither learns the buy boundary).
    """
    reward = nu * lower + mu * upper + temperature * (dong_regularizer(nu) - dong_regularizer(mu))
    errors = torch.clamp(1.0 - dt * (nu + mu), min=0.0) * next_values - values + reward * dt
    target = (errors + values).detach()
    squares = (target - values).square()
    return 0.5 * (squares if weights is None else weights * squares).sum(dim=1).mean()
