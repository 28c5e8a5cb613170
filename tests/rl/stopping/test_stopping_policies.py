"""Bernoulli stopping policy: the sigmoid rule, its entropy, the ½ execution rule."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from rl.stopping.policies import BernoulliStoppingPolicy  # noqa: E402


def test_probability_entropy_and_execution():
    policy = BernoulliStoppingPolicy(penalty=10.0, temperature=1.0)
    payoff = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    value = torch.tensor([1.0, 1.1, 0.9], dtype=torch.float64)
    prob = policy(payoff, value)
    expected = [0.5, 1 / (1 + math.exp(1.0)), 1 / (1 + math.exp(-1.0))]
    torch.testing.assert_close(prob, torch.tensor(expected, dtype=torch.float64))
    assert policy.neg_entropy(payoff, value)[0].item() == pytest.approx(-math.log(2.0))
    # exercise iff π ≥ ½ iff V ≤ g
    assert policy.execute(payoff, value).tolist() == (prob >= 0.5).tolist() == [True, False, True]


def test_detach_switch_and_sampling_frequency():
    payoff = torch.tensor([2.0])
    value = torch.tensor([1.9], requires_grad=True)
    assert not BernoulliStoppingPolicy(10.0, 1.0)(payoff, value).requires_grad
    assert BernoulliStoppingPolicy(10.0, 1.0, detach=False)(payoff, value).requires_grad
    policy = BernoulliStoppingPolicy(10.0, 1.0)
    coins = policy.sample(payoff.expand(100_000), value.detach().expand(100_000), torch.Generator().manual_seed(0))
    assert coins.float().mean().item() == pytest.approx(1 / (1 + math.exp(-1.0)), abs=0.01)


def test_bad_parameters():
    with pytest.raises(ValueError, match="temperature"):
        BernoulliStoppingPolicy(10.0, 0.0)
