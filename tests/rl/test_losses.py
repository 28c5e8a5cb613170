"""Loss functions checked by hand on pinned value functions, and the shared fixed point of ML and
TD(0) on a toy problem (SPEC section 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rl import losses  # noqa: E402
from rl.stopping.policies import BernoulliStoppingPolicy  # noqa: E402

DT = 0.25
PENALTY = 2.0
TEMPERATURE = 0.5
RATE = 0.1


def test_neg_entropy_values():
    prob = torch.tensor([0.0, 0.5, 1.0, 0.2], dtype=torch.float64)
    expected = [0.0, -math.log(2.0), 0.0, 0.2 * math.log(0.2) + 0.8 * math.log(0.8)]
    np.testing.assert_allclose(losses.neg_entropy(prob).numpy(), expected, rtol=1e-14, atol=1e-15)


def test_survival_weights_by_hand():
    prob = torch.tensor([[0.5, 1.0, 0.0]], dtype=torch.float64)
    got = losses.survival_weights(prob, penalty=PENALTY, dt=DT)
    # factors 1 − κπΔt = 0.75, 0.5, 1
    np.testing.assert_allclose(got.numpy(), [[1.0, 0.75, 0.375, 0.375]], rtol=1e-15)


def _pinned():
    """Two paths, three dates, constant (pinned) values V and payoffs g, probabilities π."""
    values = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]], dtype=torch.float64)
    payoffs = torch.tensor([[2.0, 1.0, 0.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    terminal = torch.tensor([4.0, 1.0], dtype=torch.float64)
    prob = torch.tensor([[0.3, 0.6, 0.9], [0.5, 0.5, 0.5]], dtype=torch.float64)
    return values, payoffs, terminal, prob


def _hand_increments(values, payoffs, terminal, prob):
    """G_l written out with explicit loops (the definition, SPEC section 3)."""
    values, payoffs, terminal, prob = (a.numpy() for a in (values, payoffs, terminal, prob))
    n_paths, n_dates = values.shape
    out = np.zeros_like(values)
    for b in range(n_paths):
        survival = [1.0]
        for l in range(n_dates):
            survival.append(survival[-1] * (1.0 - PENALTY * prob[b, l] * DT))
        for l in range(n_dates):
            total = math.exp(-RATE * n_dates * DT) * survival[n_dates] * terminal[b]
            total -= math.exp(-RATE * l * DT) * survival[l] * values[b, l]
            for j in range(l, n_dates):
                p = prob[b, j]
                entropy = p * math.log(p) + (1 - p) * math.log(1 - p)
                reward = PENALTY * payoffs[b, j] * p - TEMPERATURE * entropy
                total += math.exp(-RATE * j * DT) * survival[j] * reward * DT
            out[b, l] = total
    return out


def test_martingale_increments_and_loss_by_hand():
    values, payoffs, terminal, prob = _pinned()
    got = losses.martingale_increments(values, payoffs, terminal, prob, penalty=PENALTY, temperature=TEMPERATURE,
                                       rate=RATE, dt=DT)
    expected = _hand_increments(values, payoffs, terminal, prob)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-13)
    loss = losses.martingale_loss(values, payoffs, terminal, prob, penalty=PENALTY, temperature=TEMPERATURE,
                                  rate=RATE, dt=DT)
    assert loss.item() == pytest.approx(0.5 * DT * (expected**2).sum(axis=1).mean(), rel=1e-13)


def test_restarted_residuals_are_the_increments_over_their_survival_weight():
    values, payoffs, terminal, prob = _pinned()
    kwargs = dict(penalty=PENALTY, temperature=TEMPERATURE, rate=RATE, dt=DT)
    increments = losses.martingale_increments(values, payoffs, terminal, prob, **kwargs)
    survival = losses.survival_weights(prob, penalty=PENALTY, dt=DT)[:, :-1]
    restarted = losses.restarted_martingale_residuals(values, payoffs, terminal, prob, **kwargs)
    np.testing.assert_allclose(restarted.numpy(), (increments / survival).numpy(), rtol=1e-12)
    loss = losses.martingale_loss(values, payoffs, terminal, prob, weighting="restarted", **kwargs)
    assert loss.item() == pytest.approx(0.5 * DT * restarted.square().sum(dim=1).mean().item(), rel=1e-13)


def test_restarted_residuals_stay_finite_where_survival_is_zero():
    # κΔt = 1 and π = 1 at date 0: R_1 = R_2 = 0 exactly; G_l / R_l would be 0/0, the recursion is not
    values = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    payoffs = torch.tensor([[4.0, 5.0, 6.0]], dtype=torch.float64)
    terminal = torch.tensor([7.0], dtype=torch.float64)
    prob = torch.tensor([[1.0, 0.5, 0.5]], dtype=torch.float64)
    dt = 0.25
    restarted = losses.restarted_martingale_residuals(values, payoffs, terminal, prob, penalty=4.0, temperature=1.0,
                                                      rate=0.0, dt=dt)
    assert torch.isfinite(restarted).all()
    # the last date by hand: Y_2 = [κ g π − λℋ(π)]Δt + (1 − κπΔt) g_T
    last = (4.0 * 6.0 * 0.5 + math.log(2.0)) * dt + (1.0 - 4.0 * 0.5 * dt) * 7.0
    assert restarted[0, 2].item() == pytest.approx(last - 3.0, rel=1e-14)
    with pytest.raises(ValueError, match="weighting"):
        losses.martingale_loss(values, payoffs, terminal, prob, penalty=4.0, temperature=1.0, rate=0.0, dt=dt,
                               weighting="uniform")


def test_martingale_loss_gradient_flows_only_through_values():
    values, payoffs, terminal, prob = _pinned()
    values = values.clone().requires_grad_(True)
    loss = losses.martingale_loss(values, payoffs, terminal, prob, penalty=PENALTY, temperature=TEMPERATURE,
                                  rate=RATE, dt=DT)
    loss.backward()
    increments = _hand_increments(values.detach(), payoffs, terminal, prob)
    survival = losses.survival_weights(prob, penalty=PENALTY, dt=DT)[:, :3].numpy()
    discount = np.exp(-RATE * DT * np.arange(3))
    # d/dV_l of ½ Δt mean_b Σ_l G_l² = −Δt G_l e^{−r t_l} R_l / B
    expected = -DT * increments * discount * survival / values.shape[0]
    np.testing.assert_allclose(values.grad.numpy(), expected, rtol=1e-12)


def test_scalars_as_0d_tensors_give_the_float_results():
    """Compiled learners pass κ, λ, r, Δt as 0-d float64 tensors (graph inputs, not constants): every
    stopping loss gives what the floats give, in float32 as the learners run it."""
    values, payoffs, terminal, prob = (t.float() for t in _pinned())
    next_values = torch.cat([values[:, 1:], terminal.unsqueeze(1)], dim=1)
    floats = losses.loss_scalars(penalty=PENALTY, temperature=TEMPERATURE, rate=RATE, dt=DT, tensors=False)
    tensors = losses.loss_scalars(penalty=PENALTY, temperature=TEMPERATURE, rate=RATE, dt=DT, tensors=True)
    assert floats == {"penalty": PENALTY, "temperature": TEMPERATURE, "rate": RATE, "dt": DT,
                      "logit_scale": PENALTY / TEMPERATURE}
    assert all(t.dtype == torch.float64 and t.dim() == 0 and t.item() == floats[k] for k, t in tensors.items())

    def all_losses(s):
        kw = dict(penalty=s["penalty"], temperature=s["temperature"], rate=s["rate"], dt=s["dt"])
        intensity = losses.dong_intensity(payoffs, values, temperature=s["temperature"], dt=s["dt"])
        return [losses.martingale_loss(values, payoffs, terminal, prob, weighting=w, **kw)
                for w in ("survival", "restarted")] + [
            losses.td0_loss(values, next_values, payoffs, prob, **kw), intensity,
            losses.dong_loss(values, next_values, payoffs, intensity, temperature=s["temperature"], rate=s["rate"],
                             dt=s["dt"]),
            BernoulliStoppingPolicy(PENALTY, TEMPERATURE).probability_of_gap(payoffs - values,
                                                                             scale=s["logit_scale"])]

    for from_floats, from_tensors in zip(all_losses(floats), all_losses(tensors)):
        torch.testing.assert_close(from_tensors.float(), from_floats, rtol=1e-6, atol=0)
    assert torch.equal(BernoulliStoppingPolicy(PENALTY, TEMPERATURE).probability_of_gap(payoffs - values),
                       all_losses(floats)[-1])  # the default scale is κ/λ


def test_td0_errors_by_hand():
    values, payoffs, terminal, prob = _pinned()
    next_values = torch.cat([values[:, 1:], terminal[:, None]], dim=1)
    got = losses.td0_errors(values, next_values, payoffs, prob, penalty=PENALTY, temperature=TEMPERATURE,
                            rate=RATE, dt=DT)
    v, nv, g, p = (a.numpy() for a in (values, next_values, payoffs, prob))
    entropy = p * np.log(p) + (1 - p) * np.log(1 - p)
    expected = (1 - PENALTY * p * DT) * nv - v + (PENALTY * g * p - TEMPERATURE * entropy) * DT - RATE * v * DT
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-13)
    # the semi-gradient: d loss / dV = −δ / B
    values = values.clone().requires_grad_(True)
    loss = losses.td0_loss(values, next_values, payoffs, prob, penalty=PENALTY, temperature=TEMPERATURE,
                           rate=RATE, dt=DT)
    loss.backward()
    np.testing.assert_allclose(values.grad.numpy(), -expected / 2, rtol=1e-12)
    assert loss.item() == pytest.approx(0.5 * (expected**2).sum(axis=1).mean(), rel=1e-12)


def test_volatility_loss_by_hand():
    european = torch.tensor([[5.0, 4.0], [6.0, 1.0]], dtype=torch.float64)
    terminal = torch.tensor([3.0, 0.0], dtype=torch.float64)
    dt, rate = 0.5, 0.2
    got = losses.volatility_martingale_loss(european, terminal, rate=rate, dt=dt).item()
    total = 0.0
    for b in range(2):
        for l in range(2):
            total += (math.exp(-rate * 1.0) * terminal[b].item() - math.exp(-rate * l * dt) * european[b, l].item()) ** 2
    assert got == pytest.approx(0.5 * dt * total / 2, rel=1e-13)


def test_dong_intensity_and_errors_by_hand():
    payoff = torch.tensor([[1.0, 0.0, 5.0]], dtype=torch.float64)
    value = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64)
    intensity = losses.dong_intensity(payoff, value, temperature=0.5, dt=0.1)
    # exp(0) = 1, exp(−2), exp(10) truncated at 1/Δt = 10
    np.testing.assert_allclose(intensity.numpy(), [[1.0, math.exp(-2.0), 10.0]], rtol=1e-14)
    next_values = torch.tensor([[2.0, 3.0, 4.0]], dtype=torch.float64)
    errors = losses.dong_td_errors(value, next_values, payoff, intensity, temperature=0.5, rate=0.05, dt=0.1)
    q = intensity.numpy()
    reg = q - q * np.log(q)
    expected = (1 - 0.1 * q) * next_values.numpy() - value.numpy() + (q * payoff.numpy() + 0.5 * reg
                                                                       - 0.05 * value.numpy()) * 0.1
    np.testing.assert_allclose(errors.numpy(), expected, rtol=1e-13)


# ------------------------------------------------------------------------------------------------
# toy problem: X_0 = x0, X_1 ∈ {a, b} with probability ½ each, X_2 = X_1 (terminal). Tabular values.
# ------------------------------------------------------------------------------------------------
TOY_PAYOFF = {"x0": 1.0, "a": 2.0, "b": 0.0}


def _scalar_fixed_point(payoff, continuation, *, rate_factor, penalty, temperature, dt):
    """Solve V = rate_factor·(1 − κπΔt)·C + Δt[κπg − λℋ(π)], π = sigmoid(κ(g − V)/λ) by bisection."""
    def residual(v):
        p = 1.0 / (1.0 + math.exp(-penalty * (payoff - v) / temperature))
        entropy = p * math.log(p) + (1 - p) * math.log(1 - p)
        return rate_factor * (1 - penalty * p * dt) * continuation + dt * (penalty * p * payoff - temperature * entropy) - v

    low, high = -50.0, 50.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if residual(mid) > 0:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def _toy_solution(rate_factor, *, penalty, temperature, dt):
    v1 = {s: _scalar_fixed_point(TOY_PAYOFF[s], TOY_PAYOFF[s], rate_factor=rate_factor, penalty=penalty,
                                 temperature=temperature, dt=dt) for s in ("a", "b")}
    v0 = _scalar_fixed_point(TOY_PAYOFF["x0"], 0.5 * (v1["a"] + v1["b"]), rate_factor=rate_factor,
                             penalty=penalty, temperature=temperature, dt=dt)
    return np.array([v0, v1["a"], v1["b"]])


def _toy_tensors(table):
    payoffs = torch.tensor([[TOY_PAYOFF["x0"], TOY_PAYOFF["a"]], [TOY_PAYOFF["x0"], TOY_PAYOFF["b"]]],
                           dtype=torch.float64)
    terminal = torch.tensor([TOY_PAYOFF["a"], TOY_PAYOFF["b"]], dtype=torch.float64)
    values = torch.stack([table[[0, 0]], table[[1, 2]]], dim=1)  # the two equally likely paths
    return values, payoffs, terminal


def _toy_loss(algorithm, table, *, rate, penalty, temperature, dt):
    values, payoffs, terminal = _toy_tensors(table)
    prob = BernoulliStoppingPolicy(penalty, temperature)(payoffs, values)  # detached π, as the learners use it
    if algorithm in ("ml", "ml_restarted"):
        weighting = "restarted" if algorithm == "ml_restarted" else "survival"
        return losses.martingale_loss(values, payoffs, terminal, prob, penalty=penalty, temperature=temperature,
                                      rate=rate, dt=dt, weighting=weighting)
    next_values = torch.cat([values[:, 1:], terminal[:, None]], dim=1)
    return losses.td0_loss(values, next_values, payoffs, prob, penalty=penalty, temperature=temperature,
                           rate=rate, dt=dt)


def _gradient_at(algorithm, point, **settings):
    table = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    _toy_loss(algorithm, table, **settings).backward()
    return table.grad.numpy()


def _train_toy(algorithm, *, steps=200, lr=1.0, **settings):
    table = torch.zeros(3, dtype=torch.float64, requires_grad=True)  # V_0(x0), V_1(a), V_1(b)
    optimizer = torch.optim.SGD([table], lr=lr)
    for _ in range(steps):
        loss = _toy_loss(algorithm, table, **settings)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return table.detach().numpy()


SETTINGS = {"penalty": 3.0, "temperature": 0.4, "dt": 0.25}


@pytest.mark.parametrize("algorithm", ["ml", "ml_restarted", "td0"])
def test_ml_and_td0_share_the_fixed_point_without_discounting(algorithm):
    solution = _toy_solution(1.0, **SETTINGS)
    # the (exact-expectation) update vanishes at the recursion's fixed point and not elsewhere
    np.testing.assert_allclose(_gradient_at(algorithm, solution, rate=0.0, **SETTINGS), 0.0, atol=1e-12)
    assert np.abs(_gradient_at(algorithm, solution + 0.1, rate=0.0, **SETTINGS)).min() > 1e-3
    # and training from zero converges to it
    np.testing.assert_allclose(_train_toy(algorithm, rate=0.0, **SETTINGS), solution, atol=1e-6,
                               err_msg=f"{algorithm} fixed point")


def test_ml_discounts_exactly_and_td0_to_order_r_dt_squared():
    rate, dt = 0.2, SETTINGS["dt"]
    # ML: V_l = e^{−rΔt}[(1 − κπΔt)E V_{l+1}] + Δt[...]; TD(0) solves V(1 + rΔt) = (1 − κπΔt)E V_{l+1} + Δt[...]
    ml_point = _toy_solution(math.exp(-rate * dt), **SETTINGS)
    np.testing.assert_allclose(_gradient_at("ml", ml_point, rate=rate, **SETTINGS), 0.0, atol=1e-12)
    # the restarted weighting (G_l / R_l) has exactly the same discounted fixed point
    np.testing.assert_allclose(_gradient_at("ml_restarted", ml_point, rate=rate, **SETTINGS), 0.0, atol=1e-12)
    gradient = _gradient_at("td0", ml_point, rate=rate, **SETTINGS)
    # TD(0)'s residual at ML's point is O(rΔt²): e^{−rΔt} vs 1/(1 + rΔt) on the continuation is
    # O((rΔt)²) and the 1/(1 + rΔt) on the reward Δt[κπg − λℋ] is O(rΔt · Δt)
    reward_bound = SETTINGS["penalty"] * max(TOY_PAYOFF.values()) + SETTINGS["temperature"] * math.log(2.0)
    assert np.abs(gradient).max() < (rate * dt) ** 2 * np.abs(ml_point).max() + rate * dt * dt * reward_bound
    assert np.abs(gradient).max() > 0.0
