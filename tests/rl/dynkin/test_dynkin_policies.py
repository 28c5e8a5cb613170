"""Two-player policy of the Dynkin learners (issue 13) against the discrete oracle's probabilities."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pdecore.dynkin_oracle import clamped_obstacles, dynkin_oracle  # noqa: E402
from pdecore.params import MertonCosts  # noqa: E402
from rl.dynkin.policies import TwoPlayerPolicy  # noqa: E402

MARKET = MertonCosts(drift=0.168, rate=0.008, volatility=0.3, cost=0.005, maturity=1.0)


def test_policy_reproduces_oracle_probabilities_and_band():
    oracle = dynkin_oracle(MARKET, n_steps=10, penalty=5.0, temperature=1e-2)
    policy = TwoPlayerPolicy(5.0, 1e-2)
    x = np.linspace(-0.8, -0.1, 1401)
    w = oracle.value(0, x)
    sell, buy = clamped_obstacles(x, MARKET.cost, oracle.insolvency_floor)
    lower, upper = np.minimum(sell, buy), np.maximum(sell, buy)
    nu, mu = policy(torch.tensor(w), torch.tensor(lower), torch.tensor(upper))
    nu_o, mu_o = oracle.probabilities(0, x)
    np.testing.assert_allclose(nu.numpy(), nu_o, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(mu.numpy(), mu_o, rtol=1e-12, atol=1e-15)
    sell_now, buy_now = policy.trades(torch.tensor(x), torch.tensor(w), torch.tensor(sell), torch.tensor(buy))
    xs, xb = oracle.band(0)
    # on x < 0 the lower player sells: selling exactly where ν ≥ ½, i.e. left of x_s; buying right of x_b
    assert np.array_equal(sell_now.numpy(), nu_o >= 0.5)
    assert np.all(x[sell_now.numpy()] <= xs + 1e-3) and np.all(x[buy_now.numpy()] >= xb - 1e-3)
    assert not np.any(sell_now.numpy() & buy_now.numpy())


def test_trades_on_the_positive_half_line_swap_players():
    x = torch.tensor([0.5, 0.5, 0.5])
    sell, buy = x / (x + 0.995), x / (x + 1.005)  # on x > 0 the sell obstacle is the upper one
    w = torch.stack([sell[0] + 1e-3, 0.5 * (sell[1] + buy[1]), buy[2] - 1e-3])
    sell_now, buy_now = TwoPlayerPolicy.trades(x, w, sell, buy)
    assert sell_now.tolist() == [True, False, False] and buy_now.tolist() == [False, False, True]


def test_detach_switch():
    w = torch.tensor([0.1], requires_grad=True)
    nu, _ = TwoPlayerPolicy(5.0, 0.01)(w, torch.tensor([0.0]), torch.tensor([0.2]))
    assert not nu.requires_grad
    nu, _ = TwoPlayerPolicy(5.0, 0.01, detach=False)(w, torch.tensor([0.0]), torch.tensor([0.2]))
    assert nu.requires_grad
    with pytest.raises(ValueError, match="temperature"):
        TwoPlayerPolicy(5.0, 0.0)
