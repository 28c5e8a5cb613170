"""The fused network kernel (rl._kernels.batched_mlp, rl._fused_mlp) against its PyTorch twin.

The twin is the same BatchedValueNetwork with ``fused=False`` (layer by layer, PyTorch's batch norm),
itself tested against separate nn.Sequential networks in test_networks.py.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rl._fused_mlp as fused_module
from rl._kernels.batched_mlp import EVAL_TILE, _matmul, _matmul_transposed, _weight_gradient
from rl.networks import BatchedValueNetwork, use_fused_kernel


def _network(n_nets, in_features, hidden, n_hidden, seed=0):
    torch.manual_seed(seed)
    net = BatchedValueNetwork(n_nets, in_features=in_features, hidden=hidden, n_hidden=n_hidden)
    with torch.no_grad():  # scales and shifts away from their initial 1 and 0, so that every gradient is exercised
        for norm in net.norms:
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.3, 0.3)
    twin = copy.deepcopy(net)
    twin.fused = False
    return net, twin


def _inputs(n_nets, in_features, batch, seed=1):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n_nets, in_features, batch, generator=generator)
    x[:, -1] = torch.relu(x[:, -1]) + 0.1  # a payoff-like input
    weights = torch.randn(n_nets, batch, generator=generator)
    return x, weights


def _max_relative(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


@pytest.mark.parametrize("matmul_shape", [(21, 21), (21, 2), (1, 21), (5, 9), (4, 7), (3, 1), (2, 15)])
def test_blocked_matmuls_equal_numpy(matmul_shape):
    """The register-blocked products, on block-multiple and remainder shapes (3 × 7 and 3 × 4 tiles)."""
    rng = np.random.default_rng(0)
    rows, cols = matmul_shape
    W = rng.standard_normal((rows, cols)).astype(np.float32)
    a = rng.standard_normal((cols, 37)).astype(np.float32)
    d = rng.standard_normal((rows, 37)).astype(np.float32)
    out = np.full((rows, 37), np.nan, np.float32)
    _matmul(W, a, out)
    np.testing.assert_allclose(out, W.astype(np.float64) @ a, rtol=1e-5, atol=1e-5)
    out_t = np.full((cols, 37), np.nan, np.float32)
    _matmul_transposed(W, d, out_t)
    np.testing.assert_allclose(out_t, W.T.astype(np.float64) @ d, rtol=1e-5, atol=1e-5)
    grad = np.full((rows, cols), np.nan, np.float32)
    _weight_gradient(d, a, grad)
    np.testing.assert_allclose(grad, d.astype(np.float64) @ a.T, rtol=1e-5, atol=1e-4)


@settings(deadline=None, max_examples=25)
@given(n_nets=st.integers(1, 4), in_features=st.integers(2, 3), hidden=st.integers(2, 23),
       n_hidden=st.integers(1, 3), batch=st.integers(8, 70))
def test_fused_pass_equals_the_pytorch_twin(n_nets, in_features, hidden, n_hidden, batch):
    """Output, every parameter's gradient, the input's gradient and the running statistics. (Batches of
    8 paths or more: a batch of two normalizes to ±1 whatever its values, and gradients are then
    rounding noise in both implementations. Two inputs and two hidden units or more: a layer with one
    input feeding a batch norm gives ±x̂ whatever its weight, whose gradient is then rounding noise too.)"""
    net, twin = _network(n_nets, in_features, hidden, n_hidden)
    x, weights = _inputs(n_nets, in_features, batch)
    assert net._fused_applies(x) and not twin._fused_applies(x)
    x_fused, x_twin = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out, out_twin = net(x_fused), twin(x_twin)
    assert out.shape == out_twin.shape == (n_nets, batch)
    torch.testing.assert_close(out, out_twin, rtol=1e-4, atol=1e-4)
    (out * weights).sum().backward()
    (out_twin * weights).sum().backward()
    torch.testing.assert_close(x_fused.grad, x_twin.grad, rtol=1e-3,
                               atol=max(1e-3 * float(x_twin.grad.abs().max()), 1e-5))
    for (name, p), (_, q) in zip(net.named_parameters(), twin.named_parameters()):
        if name == "norms.0.bias":
            continue  # the output does not depend on it (the next batch norm removes it): both are rounding noise
        scale = float(q.grad.abs().max())
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=max(1e-3 * scale, 1e-5), msg=name)
    for (name, b), (_, c) in zip(net.named_buffers(), twin.named_buffers()):
        torch.testing.assert_close(b, c, rtol=1e-5, atol=1e-6, msg=name)


def test_paper_shapes_match_the_twin_closely():
    """L = 50 dates, hidden 21, two hidden layers, batch 1024 (paper section 4.1): to float32 rounding."""
    net, twin = _network(50, 2, 21, 2)
    x, weights = _inputs(50, 2, 1024)
    out, out_twin = net(x), twin(x)
    assert _max_relative(out, out_twin) < 2e-6
    (out * weights).sum().backward()
    (out_twin * weights).sum().backward()
    for (name, p), (_, q) in zip(net.named_parameters(), twin.named_parameters()):
        if name != "norms.0.bias":
            assert _max_relative(p.grad, q.grad) < 1e-5, name


def test_constant_date_gives_the_output_shift_exactly():
    """A date where every path sits at one point (t_0: S_0) normalizes to exactly 0 at every layer, so its
    training-mode value is the output layer's shift β (the twin leaves rounding noise there)."""
    net, _ = _network(3, 2, 21, 2)
    x, _ = _inputs(3, 2, 256)
    x[0] = torch.tensor([[40.0], [0.5]])  # date 0: one point
    out = net(x)
    assert torch.equal(out[0], net.norms[-1].bias[0, 0].expand(256))
    assert not torch.equal(out[1], out[1, :1].expand(256))


def test_compiled_fused_pass_equals_eager():
    """torch.compile treats the kernel as one opaque operator: same values and gradients as eager."""
    net, _ = _network(4, 2, 21, 2)
    compiled_net = copy.deepcopy(net)
    x, weights = _inputs(4, 2, 128)
    (net(x) * weights).sum().backward()
    compiled = torch.compile(compiled_net, fullgraph=True)
    (compiled(x) * weights).sum().backward()
    for (name, p), (_, q) in zip(net.named_parameters(), compiled_net.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-6, atol=1e-6, msg=name)
    for (name, b), (_, c) in zip(net.named_buffers(), compiled_net.named_buffers()):
        torch.testing.assert_close(b, c, msg=name)


def test_the_kernel_is_deterministic():
    """Same inputs, same bits: what a bit-exact resume needs."""
    grads = []
    for _ in range(2):
        net, _ = _network(5, 2, 21, 2)
        x, weights = _inputs(5, 2, 300)
        (net(x) * weights).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    assert torch.equal(grads[0], grads[1])


def test_parallel_kernels_give_the_serial_bits():
    """Two torch threads run the dates on two Numba threads; each date is computed alone either way."""
    def train_pass():
        net, _ = _network(7, 2, 21, 2)
        x, weights = _inputs(7, 2, 200)
        out = net(x)
        (out * weights).sum().backward()
        return torch.cat([out.detach().flatten()] + [p.grad.flatten() for p in net.parameters()]
                         + [b.flatten() for b in net.buffers()])

    serial, parallel = _at_one_and_two_threads(train_pass)
    assert torch.equal(serial, parallel)


def _at_one_and_two_threads(compute):
    """``compute()`` with one torch thread (serial kernels), then two (parallel kernels)."""
    results = []
    threads = torch.get_num_threads()
    try:
        for n_threads in (1, 2):
            torch.set_num_threads(n_threads)
            results.append(compute())
    finally:
        torch.set_num_threads(threads)
    return results


def test_other_passes_take_the_pytorch_path():
    """Evaluation mode, calibration, float64, shared input layers and input_affine=False are not fused
    (by the training kernel; evaluation has its own, tested below)."""
    net, _ = _network(3, 2, 8, 2)
    x, _ = _inputs(3, 2, 64)
    assert net._fused_applies(x)
    assert not net._fused_applies(x.double())
    net.eval()
    assert not net._fused_applies(x)
    shared = BatchedValueNetwork(3, in_features=2, hidden=8, shared_input=True, input_affine=False)
    assert not shared._fused_applies(x)
    shared.train()
    assert shared(x).shape == (3, 64)


def test_a_batch_of_one_path_is_refused():
    net, _ = _network(2, 2, 8, 2)
    with pytest.raises(ValueError, match="batch of at least 2 paths"):
        net(torch.randn(2, 2, 1))


def test_use_fused_kernel_switches_every_network_of_a_module():
    holder = torch.nn.ModuleDict({"a": BatchedValueNetwork(2), "b": torch.nn.Sequential(BatchedValueNetwork(3))})
    assert use_fused_kernel(holder, False) is holder
    assert not holder["a"].fused and not holder["b"][0].fused
    use_fused_kernel(holder)
    assert holder["a"].fused and holder["b"][0].fused


# ------------------------------------------------------------------ evaluation kernel and calibration
def _calibration_inputs(n_nets, in_features, batch, seed=2):
    x, _ = _inputs(n_nets, in_features, batch, seed=seed)
    x = x * 3.0 + 40.0  # spot-like levels: the evaluation affine map works far from zero
    x[0] = x[0, :, :1]  # a point-mass date (every path at S_0), marked constant by calibration
    return x


@settings(deadline=None, max_examples=20)
@given(n_nets=st.integers(1, 4), in_features=st.integers(2, 3), hidden=st.integers(2, 23),
       n_hidden=st.integers(1, 3), batch=st.sampled_from([1, 5, 64, EVAL_TILE, EVAL_TILE + 3, 2 * EVAL_TILE + 17]))
def test_evaluation_kernel_equals_the_pytorch_twin(n_nets, in_features, hidden, n_hidden, batch):
    """Evaluation mode under no_grad: the kernel (tiles of EVAL_TILE paths, the last one partial) against
    PyTorch's batch norms, on the same calibrated statistics (constant date 0 included)."""
    net, _ = _network(n_nets, in_features, hidden, n_hidden)
    net.calibrate(_calibration_inputs(n_nets, in_features, 300))
    twin = use_fused_kernel(copy.deepcopy(net), False)
    x = _calibration_inputs(n_nets, in_features, batch, seed=3)
    with torch.no_grad():
        assert net._eval_kernel_applies(x) and not twin._eval_kernel_applies(x)
        out, out_twin = net(x), twin(x)
    assert out.shape == (n_nets, batch)
    torch.testing.assert_close(out, out_twin, rtol=1e-5, atol=1e-5 * float(out_twin.abs().max()) + 1e-6)
    assert torch.equal(out[0], torch.full_like(out[0], float(net.norms[-1].bias[0, 0])))  # constant date: β


def test_kernel_calibration_equals_pytorch_calibration():
    """Statistics of every batch norm from the training kernel's pass (in blocks of dates) against
    PyTorch's calibration: the same means, biased variances and constant-channel marks, and outputs.
    Date 0 (a point mass) apart: there the kernel's input batch norm gives exactly 0, so every later
    channel is constant and marked (output β); PyTorch's gives rounding noise × 1/sqrt(ε), which its
    hidden layers carry as small non-constant channels."""
    net, _ = _network(5, 2, 21, 2)
    twin = use_fused_kernel(copy.deepcopy(net), False)
    x = _calibration_inputs(5, 2, 3000)
    out, out_twin = net.calibrate(x), twin.calibrate(x)
    assert not net.training and not twin.training
    torch.testing.assert_close(out, out_twin, rtol=1e-4, atol=1e-4)
    for norm, norm_twin in zip(net.norms, twin.norms):
        torch.testing.assert_close(norm.running_mean[1:], norm_twin.running_mean[1:], rtol=1e-5, atol=1e-5)
        finite = torch.isfinite(norm_twin.running_var[1:])
        assert torch.equal(torch.isfinite(norm.running_var[1:]), finite)
        torch.testing.assert_close(norm.running_var[1:][finite], norm_twin.running_var[1:][finite], rtol=1e-4,
                                   atol=1e-6)
        assert not torch.isfinite(norm.running_var[0]).any()  # date 0: every channel marked constant


def test_statistics_in_blocks_of_dates_equal_one_pass(monkeypatch):
    """fused_mlp_statistics holds x̂ for a block of dates at a time: the blocks give the one-pass bits."""
    net, _ = _network(7, 2, 9, 3)
    x = _calibration_inputs(7, 2, 200)
    whole = copy.deepcopy(net).calibrate(x)
    monkeypatch.setattr(fused_module, "STATISTICS_BLOCK_FLOATS", 3 * (2 * 9 + 3) * 200)  # 3 dates a block
    blocked_net = copy.deepcopy(net)
    blocked = blocked_net.calibrate(x)
    assert torch.equal(whole, blocked)
    reference = copy.deepcopy(net)
    reference.calibrate(x)
    for norm, other in zip(blocked_net.norms, reference.norms):
        assert torch.equal(norm.running_mean, other.running_mean) and torch.equal(norm.running_var, other.running_var)


def test_an_empty_batch_evaluates_to_an_empty_output():
    net, _ = _network(3, 2, 8, 2)
    net.calibrate(_calibration_inputs(3, 2, 100))
    with torch.no_grad():
        assert net(torch.zeros(3, 2, 0)).shape == (3, 0)


def test_evaluation_with_gradient_takes_the_pytorch_path():
    """The evaluation kernel has no backward: with gradients on, evaluation mode stays differentiable."""
    net, _ = _network(3, 2, 8, 2)
    net.calibrate(_calibration_inputs(3, 2, 100))
    x = _calibration_inputs(3, 2, 50, seed=4)
    assert not net._eval_kernel_applies(x)
    out = net(x)
    assert out.requires_grad
    out.sum().backward()
    assert net.linears[0].weight.grad is not None


def test_parallel_evaluation_kernel_gives_the_serial_bits():
    def evaluation_pass():
        net, _ = _network(7, 2, 21, 2)
        net.calibrate(_calibration_inputs(7, 2, 500))
        with torch.no_grad():
            return net(_calibration_inputs(7, 2, 3000, seed=5))

    serial, parallel = _at_one_and_two_threads(evaluation_pass)
    assert torch.equal(serial, parallel)
