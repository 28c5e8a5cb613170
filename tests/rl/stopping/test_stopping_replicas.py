"""Several seeds trained as one batched model (rl.stopping.replicas) compute what separate runs do."""

from __future__ import annotations

import pytest
import torch

from rl.networks import BatchedValueNetwork, stack_networks, unstack_network
from rl.stopping.config import StoppingConfig
from rl.stopping.learner import StoppingLearner
from rl.stopping.replicas import ReplicatedStoppingLearner

SEEDS = [0, 3, 7]


def _small(**changes) -> StoppingConfig:
    settings = dict(n_steps=10, penalty=5.0, batch_size=64, volatility_warmup=2, volatility_coarse_steps=3,
                    eval_paths=256, test_paths=512)
    settings.update(changes)
    return StoppingConfig(**settings)


@pytest.mark.parametrize("changes", [{"algorithm": "ml"}, {"algorithm": "ml", "martingale_weighting": "survival"},
                                     {"algorithm": "td0"}, {"algorithm": "dong"},
                                     {"algorithm": "ml", "learn_volatility": False, "lr_decay_updates": 4}])
def test_replicas_learn_the_functions_of_separate_runs(changes):
    torch.set_num_threads(1)
    config = _small(**changes)
    replicated = ReplicatedStoppingLearner(config, SEEDS)
    singles = [StoppingLearner(config.replace(seed=seed)) for seed in SEEDS]
    for step in range(8):
        replicated.train_step(replicated.sample_batch(step))
        for learner in singles:
            learner.train_step(learner.sample_batch(step))
    for index, single in enumerate(singles):
        replica = replicated.replica(index)
        assert replica.config.seed == SEEDS[index]
        assert replica.volatility.item() == pytest.approx(single.volatility.item(), abs=1e-6)
        paths = next(single.test_paths(512))
        # The output agrees to float32 rounding. Parameters the output does not depend on (the input
        # batch norm's shift, date 0's inner weights: every path starts at S_0) get pure rounding-noise
        # gradients, which Adam scales to full steps: those may differ, harmlessly.
        torch.testing.assert_close(replica.premium_part(paths), single.premium_part(paths), rtol=0, atol=1e-4)
    if config.optimizer == "sgd":  # plain SGD does not amplify rounding noise: bit-exact weights
        for index, single in enumerate(singles):
            for key, value in single.net.state_dict().items():
                torch.testing.assert_close(replicated.replica(index).net.state_dict()[key], value, rtol=0, atol=0)


def test_stack_and_unstack_networks_round_trip():
    nets = [BatchedValueNetwork(4, hidden=5, generator=torch.Generator().manual_seed(seed)) for seed in range(3)]
    stacked = stack_networks(nets)
    assert stacked.n_nets == 12
    inputs = torch.randn(3, 4, 2, 16, generator=torch.Generator().manual_seed(9))
    out = stacked(inputs.reshape(12, 2, 16)).reshape(3, 4, 16)
    for index, net in enumerate(nets):
        torch.testing.assert_close(out[index], net(inputs[index]), rtol=0, atol=0)
        copy = unstack_network(stacked, index, BatchedValueNetwork(4, hidden=5))
        for key, value in net.state_dict().items():
            assert torch.equal(copy.state_dict()[key], value)
    with pytest.raises(ValueError, match="different shapes"):
        stack_networks([nets[0], BatchedValueNetwork(4, hidden=6)])


def test_replicas_refuse_bad_seeds():
    with pytest.raises(ValueError, match="at least one"):
        ReplicatedStoppingLearner(_small(), [])
    with pytest.raises(ValueError, match="distinct"):
        ReplicatedStoppingLearner(_small(), [1, 1])
