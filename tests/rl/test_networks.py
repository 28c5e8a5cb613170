"""The batched per-date value networks equal a loop of separate networks (SPEC section 3)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rl.networks import BatchedValueNetwork, sequential_copy  # noqa: E402


def _loop(network, x):
    copies = [sequential_copy(network, l).train(network.training) for l in range(network.n_nets)]
    return torch.stack([copies[l](x[l].T).squeeze(-1) for l in range(network.n_nets)])


@pytest.mark.parametrize("batch_norm", [True, False])
def test_batched_module_equals_loop_of_networks(batch_norm):
    generator = torch.Generator().manual_seed(1)
    network = BatchedValueNetwork(4, hidden=7, batch_norm=batch_norm, generator=generator)
    x = torch.randn(4, 2, 33, generator=generator, dtype=torch.float32) * 3.0 + 1.0
    # training mode: batch statistics, running statistics updated the same way
    network.train()
    copies = [sequential_copy(network, l).train() for l in range(4)]
    batched = network(x)
    looped = torch.stack([copies[l](x[l].T).squeeze(-1) for l in range(4)])
    torch.testing.assert_close(batched, looped, rtol=1e-5, atol=1e-5)
    if batch_norm:
        for l in range(4):
            torch.testing.assert_close(network.norms[2].running_var[l], copies[l][5].running_var)
    # evaluation mode: running statistics
    network.eval()
    torch.testing.assert_close(network(x), _loop(network, x).detach(), rtol=1e-5, atol=1e-5)


def test_gradients_match_loop():
    generator = torch.Generator().manual_seed(2)
    network = BatchedValueNetwork(3, hidden=5, generator=generator)
    x = torch.randn(3, 2, 16, generator=generator)
    copies = [sequential_copy(network, l) for l in range(3)]
    network(x).square().sum().backward()
    sum(copies[l](x[l].T).square().sum() for l in range(3)).backward()
    for l in range(3):
        torch.testing.assert_close(network.linears[1].weight.grad[l], copies[l][4].weight.grad, rtol=1e-4,
                                   atol=1e-5)


def test_calibrate_reproduces_training_outputs_and_handles_point_masses():
    generator = torch.Generator().manual_seed(3)
    network = BatchedValueNetwork(3, hidden=6, generator=generator)
    x = torch.randn(3, 2, 256, generator=generator) * 2.0 + 5.0
    x[0] = torch.tensor([40.0, -8.0])[:, None]  # date 0: every path at the same point
    network.train()
    with torch.no_grad():
        trained = network(x)
    calibrated = network.calibrate(x)
    assert not network.training
    with torch.no_grad():
        evaluated = network(x)
    torch.testing.assert_close(calibrated, trained, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(evaluated, trained, rtol=1e-4, atol=1e-4)
    # the point-mass date evaluates to the output shift (what training mode produces), also off the point
    shifted = x.clone()
    shifted[0, 0] += 1.0
    with torch.no_grad():
        off_point = network(shifted)[0]
    torch.testing.assert_close(off_point, trained[0], rtol=1e-5, atol=1e-5)


def test_bad_shapes_and_small_batches_are_refused():
    network = BatchedValueNetwork(2, hidden=3)
    with pytest.raises(ValueError, match="shape"):
        network(torch.zeros(3, 2, 8))
    with pytest.raises(ValueError, match="at least 2"):
        network.train()(torch.zeros(2, 2, 1))
    with pytest.raises(ValueError, match="n_nets"):
        BatchedValueNetwork(0)


def test_same_generator_same_initial_weights():
    a = BatchedValueNetwork(5, generator=torch.Generator().manual_seed(9))
    b = BatchedValueNetwork(5, generator=torch.Generator().manual_seed(9))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def _equals_loop_of_copies(network, x):
    """Assert the batched module equals the loop of its per-net copies on ``x`` (training mode), back-
    propagate the same loss through both, and return the copies (their gradients set)."""
    network.train()
    copies = [sequential_copy(network, l).double().train() for l in range(network.n_nets)]
    batched = network(x)
    looped = torch.stack([copies[l](x[l].T).squeeze(-1) for l in range(network.n_nets)])
    torch.testing.assert_close(batched, looped, rtol=1e-10, atol=1e-10)
    batched.square().sum().backward()
    looped.square().sum().backward()
    return copies


@pytest.mark.parametrize("in_features", [2, 9])  # the elementwise input layer and the matmul one
def test_shared_input_layer_is_one_map_for_every_net(in_features):
    """``shared_input=True``: one input weight for all nets, the rest per net; the module equals the
    loop of networks that all hold that weight, and the shared weight's gradient is the sum of theirs."""
    generator = torch.Generator().manual_seed(4)
    network = BatchedValueNetwork(3, in_features=in_features, hidden=5, generator=generator,
                                  shared_input=True).double()  # float64: sums of gradients compared to 1e-10
    assert network.linears[0].weight.shape == (1, 5, in_features)
    assert network.linears[1].weight.shape == (3, 5, 5)
    x = torch.randn(3, in_features, 16, generator=generator, dtype=torch.float64)
    copies = _equals_loop_of_copies(network, x)
    pooled = sum(copies[l][1].weight.grad for l in range(3))
    torch.testing.assert_close(network.linears[0].weight.grad[0], pooled, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shared_input", [False, True])
def test_input_batch_norm_without_affine_only_standardizes(shared_input):
    """``input_affine=False``: the input batch norm has no scale or shift (the later ones keep theirs); the
    batched module still equals the loop of plain networks, and in evaluation mode after calibration."""
    generator = torch.Generator().manual_seed(6)
    network = BatchedValueNetwork(3, in_features=4, hidden=5, generator=generator, shared_input=shared_input,
                                  input_affine=False).double()
    assert network.norms[0].weight is None and network.norms[0].bias is None
    assert "norms.0.weight" not in network.state_dict() and "norms.1.weight" in network.state_dict()
    x = torch.randn(3, 4, 32, generator=generator, dtype=torch.float64) * 7.0 + 3.0
    network.train()
    copies = [sequential_copy(network, l).double().train() for l in range(3)]
    looped = torch.stack([copies[l](x[l].T).squeeze(-1) for l in range(3)])
    torch.testing.assert_close(network(x), looped, rtol=1e-10, atol=1e-10)
    standardized = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(network.norms[0](x), standardized, rtol=1e-10, atol=1e-10)
    trained = network(x).detach()
    network.calibrate(x)
    with torch.no_grad():
        torch.testing.assert_close(network(x), trained, rtol=1e-8, atol=1e-8)
    with pytest.raises(ValueError, match="input_affine=False.*batch_norm=False"):
        BatchedValueNetwork(2, batch_norm=False, input_affine=False)


def test_shared_hidden_layers_are_one_map_for_every_net_too():
    """``shared_hidden=True``: the hidden-to-hidden weights are one map as well (output layers and batch
    norms per net); equal to the loop of networks holding them, gradients summed over the nets."""
    generator = torch.Generator().manual_seed(5)
    network = BatchedValueNetwork(3, in_features=4, hidden=5, n_hidden=3, generator=generator, shared_input=True,
                                  shared_hidden=True).double()
    assert [linear.weight.shape[0] for linear in network.linears] == [1, 1, 1, 3]
    x = torch.randn(3, 4, 16, generator=generator, dtype=torch.float64)
    copies = _equals_loop_of_copies(network, x)
    pooled = sum(copies[l][4].weight.grad for l in range(3))  # norm, linear, norm, relu, linear (the second)
    torch.testing.assert_close(network.linears[1].weight.grad[0], pooled, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="shared_hidden=True.*shared_input=True"):
        BatchedValueNetwork(3, hidden=5, shared_hidden=True)


def test_shared_input_networks_are_not_stacked_as_replicas():
    from rl.networks import stack_networks

    with pytest.raises(ValueError, match="shared input layer"):
        stack_networks([BatchedValueNetwork(2, hidden=3, shared_input=True)] * 2)


@pytest.mark.parametrize("shared_input", [False, True])
def test_blocks_of_nets_compute_what_the_whole_computes(monkeypatch, shared_input):
    """Large inputs run through the layers in blocks of nets (rl.networks.NET_BLOCK_FLOATS): outputs,
    gradients, running statistics and calibration are those of one pass over all nets."""
    import copy

    import rl.networks as networks

    generator = torch.Generator().manual_seed(7)
    whole = BatchedValueNetwork(5, hidden=6, generator=generator, shared_input=shared_input)
    blocked = copy.deepcopy(whole)
    x = torch.randn(5, 2, 64, generator=generator) * 2.0 + 3.0
    x[0] = torch.tensor([40.0, 0.0])[:, None]  # a point-mass date, as date 0 of the stopping paths
    whole(x).square().sum().backward()
    monkeypatch.setattr(networks, "NET_BLOCK_FLOATS", 2 * 6 * 64)  # blocks of 2 nets: 2 + 2 + 1
    blocked(x).square().sum().backward()
    for (name, a), (_, b) in zip(whole.named_parameters(), blocked.named_parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-5, msg=name)  # as test_gradients_match_loop
    for (name, a), (_, b) in zip(whole.named_buffers(), blocked.named_buffers()):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7, msg=name)
    monkeypatch.setattr(networks, "NET_BLOCK_FLOATS", 2**30)
    calibrated_whole = whole.calibrate(x)
    monkeypatch.setattr(networks, "NET_BLOCK_FLOATS", 2 * 6 * 64)
    calibrated_blocked = blocked.calibrate(x)
    torch.testing.assert_close(calibrated_blocked, calibrated_whole, rtol=1e-6, atol=1e-6)
    for (name, a), (_, b) in zip(whole.named_buffers(), blocked.named_buffers()):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7, msg=name)
    with torch.no_grad():
        torch.testing.assert_close(blocked(x), whole(x), rtol=1e-6, atol=1e-6)
