"""The Numba kernels of :mod:`rl._kernels.batched_mlp` as one PyTorch operator with its gradient.

:func:`fused_mlp_forward` is the training-mode forward pass of a :class:`rl.networks.BatchedValueNetwork`
(per-date layers, batch norms with scale and shift) on a CPU float32 batch. It is registered as a
``torch.library`` custom operator, so ``torch.compile`` treats it as one opaque call inside the
learners' compiled losses (no graph break), and its backward is the kernel's backward pass.

It returns the network's output and each batch norm's batch mean and biased variance; the caller
updates the running statistics from those, as ``F.batch_norm`` does (:mod:`rl.networks`). The kernel's
saved values (``x̂`` and ``1/sqrt(v + ε)`` of every batch norm) are further outputs that the backward
pass reads; they carry no gradient.

Two gradient-free passes serve evaluation: :func:`fused_mlp_eval` (evaluation mode, each batch norm
an affine map from its running statistics) and :func:`fused_mlp_statistics` (training mode over a
large batch in blocks of dates, for :meth:`rl.networks.BatchedValueNetwork.calibrate`).
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from rl._kernels.batched_mlp import (mlp_backward, mlp_backward_parallel, mlp_eval, mlp_eval_parallel, mlp_forward,
                                     mlp_forward_parallel)

Tensor = torch.Tensor


def _array(t: Tensor):
    return t.detach().contiguous().numpy()


def _kernels():
    """The serial kernels (forward, backward, evaluation) at one torch thread, else the parallel ones on
    as many Numba threads: a run given two threads gets both, as PyTorch's own operators would
    (measured at L = 50, batch 1024, two threads: TD(0) 3.8 ms a step serial against 3.2 ms on the
    PyTorch path)."""
    threads = torch.get_num_threads()
    if threads <= 1:
        return mlp_forward, mlp_backward, mlp_eval
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return mlp_forward_parallel, mlp_backward_parallel, mlp_eval_parallel


@torch.library.custom_op("pderl::mlp_train_forward", mutates_args=())
def _forward(x: Tensor, w_in: Tensor, w_hidden: Tensor, w_out: Tensor, g_in: Tensor, b_in: Tensor,
             g_hidden: Tensor, b_hidden: Tensor, g_out: Tensor, b_out: Tensor, eps: float
             ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
                        Tensor, Tensor]:
    L, I, B = x.shape
    K1, H = g_hidden.shape[0], g_hidden.shape[2]
    new = x.new_empty
    out = new(L, B)
    xhat_in, inv_in, mean_in, var_in = new(L, I, B), new(L, I), new(L, I), new(L, I)
    xhat_hidden, inv_hidden, mean_hidden, var_hidden = new(K1, L, H, B), new(K1, L, H), new(K1, L, H), new(K1, L, H)
    xhat_out, inv_out, mean_out, var_out = new(L, 1, B), new(L, 1), new(L, 1), new(L, 1)
    forward = _kernels()[0]
    forward(_array(x), _array(w_in), _array(w_hidden), _array(w_out), _array(g_in), _array(b_in),
            _array(g_hidden), _array(b_hidden), _array(g_out), _array(b_out), float(eps),
            xhat_in.numpy(), inv_in.numpy(), mean_in.numpy(), var_in.numpy(),
            xhat_hidden.numpy(), inv_hidden.numpy(), mean_hidden.numpy(), var_hidden.numpy(),
            xhat_out.numpy(), inv_out.numpy(), mean_out.numpy(), var_out.numpy(), out.numpy())
    return (out, mean_in, var_in, mean_hidden, var_hidden, mean_out, var_out,
            xhat_in, inv_in, xhat_hidden, inv_hidden, xhat_out, inv_out)


@_forward.register_fake
def _forward_fake(x, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out, eps):
    L, I, B = x.shape
    K1, H = g_hidden.shape[0], g_hidden.shape[2]
    new = x.new_empty
    return (new(L, B), new(L, I), new(L, I), new(K1, L, H), new(K1, L, H), new(L, 1), new(L, 1),
            new(L, I, B), new(L, I), new(K1, L, H, B), new(K1, L, H), new(L, 1, B), new(L, 1))


@torch.library.custom_op("pderl::mlp_train_backward", mutates_args=())
def _backward_op(dout: Tensor, w_in: Tensor, w_hidden: Tensor, w_out: Tensor, g_in: Tensor, b_in: Tensor,
                 g_hidden: Tensor, b_hidden: Tensor, g_out: Tensor, b_out: Tensor, xhat_in: Tensor,
                 inv_in: Tensor, xhat_hidden: Tensor, inv_hidden: Tensor, xhat_out: Tensor, inv_out: Tensor
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    grads = [torch.empty_like(t) for t in (xhat_in, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden,
                                            g_out, b_out)]
    backward = _kernels()[1]
    backward(_array(dout), _array(w_in), _array(w_hidden), _array(w_out), _array(g_in), _array(b_in),
             _array(g_hidden), _array(b_hidden), _array(g_out), _array(b_out), _array(xhat_in), _array(inv_in),
             _array(xhat_hidden), _array(inv_hidden), _array(xhat_out), _array(inv_out),
             *[g.numpy() for g in grads])
    return tuple(grads)


@_backward_op.register_fake
def _backward_fake(dout, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out, xhat_in, inv_in,
                   xhat_hidden, inv_hidden, xhat_out, inv_out):
    return tuple(torch.empty_like(t) for t in (xhat_in, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden,
                                               g_out, b_out))


def _setup_context(ctx, inputs, output):
    x, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out, _eps = inputs
    ctx.save_for_backward(w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out, *output[7:])


def _backward(ctx, dout, *_unused):
    saved = ctx.saved_tensors
    grads = _backward_op(dout.contiguous(), *saved)
    return (*grads, None)


_forward.register_autograd(_backward, setup_context=_setup_context)


def fused_mlp_forward(x: Tensor, w_in: Tensor, w_hidden: Tensor, w_out: Tensor, g_in: Tensor, b_in: Tensor,
                      g_hidden: Tensor, b_hidden: Tensor, g_out: Tensor, b_out: Tensor, eps: float
                      ) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Training-mode forward pass of ``L`` per-date networks (shapes: :func:`rl._kernels.batched_mlp.mlp_forward`).

    Returns ``(out (L, B), stats)``; ``stats`` = (mean, biased variance) of the input batch norm
    ``(L, I)``, of the hidden ones ``(K + 1, L, H)`` and of the output one ``(L, 1)``, in that order.
    Differentiable in ``x`` and every parameter.
    """
    results = _forward(x.contiguous(), w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out,
                       float(eps))
    return results[0], results[1:7]


# x̂ floats kept at once by fused_mlp_statistics (64 MiB): a calibration batch of 2^15 paths runs in
# blocks of about 24 dates instead of holding 2 × 50 × 21 × 2^15 floats (275 MB) for a backward pass
# that never comes
STATISTICS_BLOCK_FLOATS = 2**24


@torch.no_grad()
def fused_mlp_eval(x: Tensor, w_in: Tensor, w_hidden: Tensor, w_out: Tensor, a_in: Tensor, c_in: Tensor,
                   a_hidden: Tensor, c_hidden: Tensor, a_out: Tensor, c_out: Tensor) -> Tensor:
    """Evaluation-mode forward pass of ``L`` per-date networks: ``(L, I, B)`` → ``(L, B)``, no gradient.

    Each batch norm enters as its affine map ``α z + β'`` (``α = γ / sqrt(v_run + ε)``, ``β' = β − μ_run α``;
    shapes of :func:`rl._kernels.batched_mlp.mlp_eval`).
    """
    L, _, B = x.shape
    out = x.new_empty(L, B)
    kernel = _kernels()[2]
    kernel(_array(x), _array(w_in), _array(w_hidden), _array(w_out), _array(a_in), _array(c_in), _array(a_hidden),
           _array(c_hidden), _array(a_out), _array(c_out), out.numpy())
    return out


@torch.no_grad()
def fused_mlp_statistics(x: Tensor, w_in: Tensor, w_hidden: Tensor, w_out: Tensor, g_in: Tensor, b_in: Tensor,
                         g_hidden: Tensor, b_hidden: Tensor, g_out: Tensor, b_out: Tensor, eps: float
                         ) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Training-mode forward pass without gradient: the outputs and every batch norm's batch statistics.

    The same numbers as :func:`fused_mlp_forward` (the same kernel), computed in blocks of dates so that
    the normalized values a backward pass would need are never all held: for batch-norm calibration on
    a large batch. Returns ``(out (L, B), stats)`` with ``stats`` as in :func:`fused_mlp_forward`.
    """
    L, I, B = x.shape
    K1, H = g_hidden.shape[0], g_hidden.shape[2]
    new = x.new_empty
    out = new(L, B)
    mean_in, var_in, mean_hidden, var_hidden, mean_out, var_out = (new(L, I), new(L, I), new(K1, L, H),
                                                                   new(K1, L, H), new(L, 1), new(L, 1))
    block = max(1, min(L, STATISTICS_BLOCK_FLOATS // max(1, (K1 * H + I + 1) * B)))
    f32 = np.float32
    forward = _kernels()[0]
    xa, wi, wh, wo, gi, bi, gh, bh, go, bo = [_array(t) for t in (x, w_in, w_hidden, w_out, g_in, b_in, g_hidden,
                                                                   b_hidden, g_out, b_out)]
    m_in, v_in, m_h, v_h, m_o, v_o, o = [t.numpy() for t in (mean_in, var_in, mean_hidden, var_hidden, mean_out,
                                                              var_out, out)]
    for start in range(0, L, block):
        n, part = min(block, L - start), slice(start, min(L, start + block))
        # fresh C-contiguous scratch per block (one compiled specialization; a slice of the hidden
        # arrays' second axis would not be contiguous)
        mh, vh = np.empty((K1, n, H), f32), np.empty((K1, n, H), f32)
        forward(xa[part], wi[part], np.ascontiguousarray(wh[:, part]), wo[part], gi[part], bi[part],
                np.ascontiguousarray(gh[:, part]), np.ascontiguousarray(bh[:, part]), go[part], bo[part], float(eps),
                np.empty((n, I, B), f32), np.empty((n, I), f32), m_in[part], v_in[part],
                np.empty((K1, n, H, B), f32), np.empty((K1, n, H), f32), mh, vh,
                np.empty((n, 1, B), f32), np.empty((n, 1), f32), m_o[part], v_o[part], o[part])
        m_h[:, part] = mh
        v_h[:, part] = vh
    return out, (mean_in, var_in, mean_hidden, var_hidden, mean_out, var_out)
