"""Dynkin-game losses (rl.losses, issue 13) checked by hand on pinned value functions."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from rl.losses import (dai_dong_intensities, dai_dong_td_loss, dynkin_martingale_increments,  # noqa: E402
                       dynkin_martingale_loss, dynkin_probabilities, dynkin_running_reward, dynkin_td0_errors,
                       dynkin_td0_loss)

KAPPA, LAM, DT = 5.0, 0.01, 0.1


def _h(p):
    return p * math.log(p) + (1 - p) * math.log(1 - p)


def _sig(z):
    return 1.0 / (1.0 + math.exp(-z))


def test_probabilities_by_hand():
    w, lo, up = (torch.tensor([v], dtype=torch.float64) for v in (-0.50, -0.503, -0.497))
    nu, mu = dynkin_probabilities(w, lo, up, penalty=KAPPA, temperature=LAM)
    assert nu.item() == pytest.approx(_sig(KAPPA * (-0.003) / LAM))
    assert mu.item() == pytest.approx(_sig(KAPPA * (-0.003) / LAM))


def test_martingale_increments_by_hand():
    """One path, two dates, pinned values and probabilities: every term written out."""
    values = torch.tensor([[-0.60, -0.55]], dtype=torch.float64)
    lower = torch.tensor([[-0.62, -0.57]], dtype=torch.float64)
    upper = torch.tensor([[-0.61, -0.56]], dtype=torch.float64)
    nu = torch.tensor([[0.3, 0.1]], dtype=torch.float64)
    mu = torch.tensor([[0.2, 0.6]], dtype=torch.float64)
    terminal = torch.tensor([-0.58], dtype=torch.float64)
    r = [KAPPA * (0.3 * -0.62 + 0.2 * -0.61) - LAM * (_h(0.3) - _h(0.2)),
         KAPPA * (0.1 * -0.57 + 0.6 * -0.56) - LAM * (_h(0.1) - _h(0.6))]
    reward = dynkin_running_reward(lower, upper, nu, mu, penalty=KAPPA, temperature=LAM)
    assert reward[0].tolist() == pytest.approx(r)
    R1 = 1 - KAPPA * DT * 0.5
    R2 = R1 * (1 - KAPPA * DT * 0.7)
    g0 = R2 * -0.58 - 1.0 * -0.60 + (r[0] + R1 * r[1]) * DT
    g1 = R2 * -0.58 - R1 * -0.55 + R1 * r[1] * DT
    got = dynkin_martingale_increments(values, lower, upper, terminal, nu, mu, penalty=KAPPA, temperature=LAM, dt=DT)
    assert got[0].tolist() == pytest.approx([g0, g1], abs=1e-15)
    loss = dynkin_martingale_loss(values, lower, upper, terminal, nu, mu, penalty=KAPPA, temperature=LAM, dt=DT)
    assert loss.item() == pytest.approx(0.5 * DT * (g0**2 + g1**2))
    weights = torch.tensor([[2.0, 3.0]], dtype=torch.float64)
    weighted = dynkin_martingale_loss(values, lower, upper, terminal, nu, mu, penalty=KAPPA, temperature=LAM, dt=DT,
                                      weights=weights)
    assert weighted.item() == pytest.approx(0.5 * DT * (2 * g0**2 + 3 * g1**2))


def test_td0_errors_and_loss_gradient_by_hand():
    values = torch.tensor([[-0.60, -0.55]], dtype=torch.float64, requires_grad=True)
    next_values = torch.tensor([[-0.56, -0.58]], dtype=torch.float64)
    lower = torch.tensor([[-0.62, -0.57]], dtype=torch.float64)
    upper = torch.tensor([[-0.61, -0.56]], dtype=torch.float64)
    nu = torch.tensor([[0.3, 0.1]], dtype=torch.float64)
    mu = torch.tensor([[0.2, 0.6]], dtype=torch.float64)
    r0 = KAPPA * (0.3 * -0.62 + 0.2 * -0.61) - LAM * (_h(0.3) - _h(0.2))
    d0 = (1 - KAPPA * DT * 0.5) * -0.56 + 0.60 + r0 * DT
    errors = dynkin_td0_errors(values, next_values, lower, upper, nu, mu, penalty=KAPPA, temperature=LAM, dt=DT)
    assert errors[0, 0].item() == pytest.approx(d0)
    loss = dynkin_td0_loss(values, next_values, lower, upper, nu, mu, penalty=KAPPA, temperature=LAM, dt=DT)
    loss.backward()
    # semi-gradient: ∂loss/∂w_l = −δ_l
    assert values.grad[0].tolist() == pytest.approx((-errors[0]).tolist())


def test_oracle_values_make_the_martingale_increments_centred():
    """At the discrete oracle's values and probabilities E[G_0 | x_0] = 0 (the loss' minimizer)."""
    import numpy as np

    from pdecore.dynkin_oracle import dynkin_oracle
    from rl.dynkin import DynkinConfig, DynkinLearner

    config = DynkinConfig()
    oracle = dynkin_oracle(config.model(), n_steps=10, penalty=5.0, temperature=1e-2)
    learner = DynkinLearner(config)
    paths = learner.simulator.sample(100_000, torch.Generator().manual_seed(1), dtype=torch.float64)
    _, lower, upper, terminal = learner.features(paths)
    values = torch.tensor(np.stack([oracle.value(l, paths[:, l].numpy()) for l in range(10)], 1))
    nu, mu = dynkin_probabilities(values, lower, upper, penalty=5.0, temperature=1e-2)
    g = dynkin_martingale_increments(values, lower, upper, terminal, nu, mu, penalty=5.0, temperature=1e-2, dt=0.1)
    x0 = paths[:, 0]
    for low in (-0.6, -0.45, -0.3):
        mask = (x0 >= low) & (x0 < low + 0.1)
        se = g[mask, 0].std() / mask.sum().sqrt()
        assert abs(g[mask, 0].mean().item()) < 4 * se.item()


def test_dai_dong_intensities_and_loss():
    w = torch.tensor([[-0.500]], dtype=torch.float64)
    lo, up = torch.tensor([[-0.503]], dtype=torch.float64), torch.tensor([[-0.497]], dtype=torch.float64)
    nu, mu = dai_dong_intensities(w, lo, up, temperature=LAM, dt=DT)
    assert nu.item() == pytest.approx(math.exp(-0.3)) and mu.item() == pytest.approx(math.exp(-0.3))
    big_nu, _ = dai_dong_intensities(torch.tensor([[-1.0]]), torch.tensor([[0.0]]), torch.tensor([[0.1]]),
                                     temperature=LAM, dt=DT)
    assert big_nu.item() == pytest.approx(1 / DT)  # truncated at 1/Δt
    values = w.clone().requires_grad_(True)
    nxt = torch.tensor([[-0.49]], dtype=torch.float64)
    n, m = nu.item(), mu.item()
    reward = n * -0.503 + m * -0.497 + LAM * ((n - n * math.log(n)) - (m - m * math.log(m)))
    delta = (1 - DT * (n + m)) * -0.49 + 0.5 + reward * DT
    loss = dai_dong_td_loss(values, nxt, lo, up, nu, mu, temperature=LAM, dt=DT)
    assert loss.item() == pytest.approx(0.5 * delta**2)
    weighted = dai_dong_td_loss(values, nxt, lo, up, nu, mu, temperature=LAM, dt=DT,
                                weights=torch.tensor([[4.0]], dtype=torch.float64))
    assert weighted.item() == pytest.approx(2.0 * delta**2)
