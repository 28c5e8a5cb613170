"""Forward and backward pass of the stopping learners' L per-date networks in one Numba kernel each.

The network of every date ``l`` (SPEC section 3; paper section 4.1) is::

    a⁰ = γ⁰ x̂⁰ + β⁰,                     x̂⁰ = BN(x)              (input batch norm, affine)
    z¹ = W¹ a⁰,            h¹ = ReLU(γ¹ x̂¹ + β¹),   x̂¹ = BN(z¹)
    zᵏ⁺¹ = Wᵏ⁺¹ hᵏ,        hᵏ⁺¹ = ReLU(γᵏ⁺¹ x̂ᵏ⁺¹ + βᵏ⁺¹)           (k = 1 … K, K = n_hidden − 1)
    zᵒ = Wᵒ hᴷ⁺¹,          y = γᵒ x̂ᵒ + βᵒ                     (output layer and its batch norm)

with ``BN(z)_cb = (z_cb − μ_c) / sqrt(v_c + ε)``, ``μ_c`` and ``v_c`` the mean and biased variance of
channel ``c`` over the batch ``b`` (training mode). Linear layers have no bias (a batch norm follows
each). Arrays are features-major, ``(date, feature, batch)``, as in :mod:`rl.networks`.

The backward pass is the chain rule layer by layer; for a batch norm with output gradient ``dy``::

    dγ_c = Σ_b dy_cb x̂_cb,     dβ_c = Σ_b dy_cb,
    dz_cb = γ_c / sqrt(v_c + ε) · (dy_cb − dβ_c / B − x̂_cb dγ_c / B),

a ReLU passes ``dy`` where its input ``γ x̂ + β`` is positive, and a linear layer gives
``dW = dz · hᵀ`` and ``dh = Wᵀ · dz``. Only the normalized values ``x̂`` and ``1/sqrt(v + ε)`` of
each batch norm are kept from the forward pass; the activations ``h`` are recomputed from them.

Why a kernel: PyTorch runs each layer over all L dates before the next (one batched matmul, one batch
norm), so every activation passes through memory several times, and the matmuls' inner dimension (21)
is far below what BLAS is tuned for. Here each date's whole network runs while its activations
(21 × batch floats per layer) stay in the core's caches, and the 21 × 21 matmuls are register-blocked
(3 output rows × 7 inputs per pass over the batch; 3 × 4 dot products for the weight gradients).

Evaluation mode (:func:`mlp_eval`) has no batch statistics: each batch norm is the affine map
``α_c z + β'_c`` with ``α = γ / sqrt(v_run + ε)`` and ``β' = β − μ_run α`` (PyTorch's own evaluation
formula), and nothing is kept for a backward pass. The batch is processed in tiles of
:data:`EVAL_TILE` paths, so that a date's activations stay in the L2 cache whatever the batch.

The means are computed around the channel's first value (``μ = z_0 + Σ (z_b − z_0) / B``): exact for
a constant channel (every path at S_0 on date 0), which then normalizes to exactly 0, as the training-
mode function of a point mass is; PyTorch's kernel leaves rounding noise there instead.

Float32 throughout, summed with reassociation (vector lanes): results equal PyTorch's to rounding
(tested against :class:`rl.networks.BatchedValueNetwork`, ``tests/rl/test_batched_mlp_kernel.py``).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from pdecore._numba import njit_float32_kernel


@njit_float32_kernel
def _matmul(W, a, out):
    """``out (O, B) = W (O, I) @ a (I, B)``: 3 output rows × 7 inputs per pass over the batch."""
    O, I = W.shape
    B = a.shape[1]
    O3 = O - O % 3
    I7 = I - I % 7
    for o in range(0, O3, 3):
        r0 = out[o]
        r1 = out[o + 1]
        r2 = out[o + 2]
        for b in range(B):
            r0[b] = 0.0
            r1[b] = 0.0
            r2[b] = 0.0
        for i in range(0, I7, 7):
            a0 = a[i]
            a1 = a[i + 1]
            a2 = a[i + 2]
            a3 = a[i + 3]
            a4 = a[i + 4]
            a5 = a[i + 5]
            a6 = a[i + 6]
            u0, u1, u2, u3, u4, u5, u6 = W[o, i], W[o, i + 1], W[o, i + 2], W[o, i + 3], W[o, i + 4], W[o, i + 5], W[o, i + 6]
            v0, v1, v2, v3, v4, v5, v6 = (W[o + 1, i], W[o + 1, i + 1], W[o + 1, i + 2], W[o + 1, i + 3],
                                          W[o + 1, i + 4], W[o + 1, i + 5], W[o + 1, i + 6])
            w0, w1, w2, w3, w4, w5, w6 = (W[o + 2, i], W[o + 2, i + 1], W[o + 2, i + 2], W[o + 2, i + 3],
                                          W[o + 2, i + 4], W[o + 2, i + 5], W[o + 2, i + 6])
            for b in range(B):
                x0 = a0[b]
                x1 = a1[b]
                x2 = a2[b]
                x3 = a3[b]
                x4 = a4[b]
                x5 = a5[b]
                x6 = a6[b]
                r0[b] += u0 * x0 + u1 * x1 + u2 * x2 + u3 * x3 + u4 * x4 + u5 * x5 + u6 * x6
                r1[b] += v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3 + v4 * x4 + v5 * x5 + v6 * x6
                r2[b] += w0 * x0 + w1 * x1 + w2 * x2 + w3 * x3 + w4 * x4 + w5 * x5 + w6 * x6
        for i in range(I7, I):
            u = W[o, i]
            v = W[o + 1, i]
            w = W[o + 2, i]
            ai = a[i]
            for b in range(B):
                x = ai[b]
                r0[b] += u * x
                r1[b] += v * x
                r2[b] += w * x
    for o in range(O3, O):
        r = out[o]
        for b in range(B):
            r[b] = 0.0
        for i in range(0, I7, 7):
            a0 = a[i]
            a1 = a[i + 1]
            a2 = a[i + 2]
            a3 = a[i + 3]
            a4 = a[i + 4]
            a5 = a[i + 5]
            a6 = a[i + 6]
            u0, u1, u2, u3, u4, u5, u6 = W[o, i], W[o, i + 1], W[o, i + 2], W[o, i + 3], W[o, i + 4], W[o, i + 5], W[o, i + 6]
            for b in range(B):
                r[b] += (u0 * a0[b] + u1 * a1[b] + u2 * a2[b] + u3 * a3[b] + u4 * a4[b] + u5 * a5[b]
                         + u6 * a6[b])
        for i in range(I7, I):
            u = W[o, i]
            ai = a[i]
            for b in range(B):
                r[b] += u * ai[b]


@njit_float32_kernel
def _matmul_transposed(W, d, out):
    """``out (I, B) = Wᵀ (I, O) @ d (O, B)`` (the transpose is a small copy)."""
    O, I = W.shape
    Wt = np.empty((I, O), np.float32)
    for o in range(O):
        for i in range(I):
            Wt[i, o] = W[o, i]
    _matmul(Wt, d, out)


@njit_float32_kernel
def _weight_gradient(d, a, out):
    """``out (O, I) = d (O, B) @ aᵀ (B, I)``: 3 × 4 dot products per pass over the batch."""
    O, B = d.shape
    I = a.shape[0]
    O3 = O - O % 3
    I4 = I - I % 4
    for o in range(0, O3, 3):
        p = d[o]
        q = d[o + 1]
        r = d[o + 2]
        for i in range(0, I4, 4):
            x0 = a[i]
            x1 = a[i + 1]
            x2 = a[i + 2]
            x3 = a[i + 3]
            s00 = s01 = s02 = s03 = np.float32(0.0)
            s10 = s11 = s12 = s13 = np.float32(0.0)
            s20 = s21 = s22 = s23 = np.float32(0.0)
            for b in range(B):
                pb = p[b]
                qb = q[b]
                rb = r[b]
                y0 = x0[b]
                y1 = x1[b]
                y2 = x2[b]
                y3 = x3[b]
                s00 += pb * y0
                s01 += pb * y1
                s02 += pb * y2
                s03 += pb * y3
                s10 += qb * y0
                s11 += qb * y1
                s12 += qb * y2
                s13 += qb * y3
                s20 += rb * y0
                s21 += rb * y1
                s22 += rb * y2
                s23 += rb * y3
            out[o, i], out[o, i + 1], out[o, i + 2], out[o, i + 3] = s00, s01, s02, s03
            out[o + 1, i], out[o + 1, i + 1], out[o + 1, i + 2], out[o + 1, i + 3] = s10, s11, s12, s13
            out[o + 2, i], out[o + 2, i + 1], out[o + 2, i + 2], out[o + 2, i + 3] = s20, s21, s22, s23
        for i in range(I4, I):
            x = a[i]
            s0 = s1 = s2 = np.float32(0.0)
            for b in range(B):
                y = x[b]
                s0 += p[b] * y
                s1 += q[b] * y
                s2 += r[b] * y
            out[o, i], out[o + 1, i], out[o + 2, i] = s0, s1, s2
    for o in range(O3, O):
        p = d[o]
        for i in range(I):
            x = a[i]
            s = np.float32(0.0)
            for b in range(B):
                s += p[b] * x[b]
            out[o, i] = s


@njit_float32_kernel
def _batch_norm_forward(z, gamma, beta, eps, relu, xhat, inv_std, mean, var, out):
    """Training-mode batch norm of ``z (C, B)``: ``x̂``, ``1/sqrt(v + ε)``, ``μ``, ``v`` (biased) per
    channel, and ``out = γ x̂ + β`` (then ReLU if ``relu``)."""
    C, B = z.shape
    for c in range(C):
        row = z[c]
        shift = row[0]
        s = np.float32(0.0)
        for b in range(B):
            s += row[b] - shift
        m = shift + s / B
        q = np.float32(0.0)
        for b in range(B):
            e = row[b] - m
            q += e * e
        v = q / B
        inv = np.float32(1.0) / np.sqrt(v + eps)
        mean[c] = m
        var[c] = v
        inv_std[c] = inv
        g = gamma[c]
        h = beta[c]
        xr = xhat[c]
        orow = out[c]
        for b in range(B):
            xh = (row[b] - m) * inv
            xr[b] = xh
            y = g * xh + h
            if relu and y < 0.0:
                y = np.float32(0.0)
            orow[b] = y


@njit_float32_kernel
def _activation(xhat, gamma, beta, relu, out):
    """``out = γ x̂ + β`` per channel (then ReLU if ``relu``): a layer's output recomputed from its ``x̂``,
    and in evaluation mode a whole batch norm (``α z + β'``; ``out`` may be ``xhat`` itself)."""
    C, B = xhat.shape
    for c in range(C):
        g = gamma[c]
        h = beta[c]
        xr = xhat[c]
        orow = out[c]
        for b in range(B):
            y = g * xr[b] + h
            if relu and y < 0.0:
                y = np.float32(0.0)
            orow[b] = y


@njit_float32_kernel
def _batch_norm_backward(dout, xhat, inv_std, gamma, beta, relu, dgamma, dbeta, dz):
    """Gradient through ``out = [ReLU](γ x̂ + β)``, ``x̂ = BN(z)``: ``dγ``, ``dβ`` and ``dz`` from ``dout``."""
    C, B = xhat.shape
    for c in range(C):
        g = gamma[c]
        h = beta[c]
        xr = xhat[c]
        drow = dout[c]
        zrow = dz[c]
        sg = np.float32(0.0)
        sb = np.float32(0.0)
        for b in range(B):
            dy = drow[b]
            if relu and g * xr[b] + h <= 0.0:
                dy = np.float32(0.0)
            zrow[b] = dy
            sb += dy
            sg += dy * xr[b]
        dgamma[c] = sg
        dbeta[c] = sb
        k = g * inv_std[c]
        mb = sb / B
        mg = sg / B
        for b in range(B):
            zrow[b] = k * (zrow[b] - mb - xr[b] * mg)


@njit_float32_kernel
def _forward_date(l, x, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out, eps,
                  xhat_in, inv_in, mean_in, var_in, xhat_hidden, inv_hidden, mean_hidden, var_hidden,
                  xhat_out, inv_out, mean_out, var_out, out):
    """Date ``l``'s network, forward (see :func:`mlp_forward`); its scratch is its own."""
    I, B = x.shape[1], x.shape[2]
    K = w_hidden.shape[0]
    H = w_in.shape[1]
    a = np.empty((I, B), np.float32)
    z = np.empty((H, B), np.float32)
    h = np.empty((H, B), np.float32)
    z_out = np.empty((1, B), np.float32)
    _batch_norm_forward(x[l], g_in[l], b_in[l], eps, False, xhat_in[l], inv_in[l], mean_in[l], var_in[l], a)
    _matmul(w_in[l], a, z)
    _batch_norm_forward(z, g_hidden[0, l], b_hidden[0, l], eps, True, xhat_hidden[0, l], inv_hidden[0, l],
                        mean_hidden[0, l], var_hidden[0, l], h)
    for k in range(K):
        _matmul(w_hidden[k, l], h, z)
        _batch_norm_forward(z, g_hidden[k + 1, l], b_hidden[k + 1, l], eps, True, xhat_hidden[k + 1, l],
                            inv_hidden[k + 1, l], mean_hidden[k + 1, l], var_hidden[k + 1, l], h)
    _matmul(w_out[l], h, z_out)
    _batch_norm_forward(z_out, g_out[l], b_out[l], eps, False, xhat_out[l], inv_out[l], mean_out[l], var_out[l],
                        out[l:l + 1])


@njit_float32_kernel
def _backward_date(l, dout, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out,
                   xhat_in, inv_in, xhat_hidden, inv_hidden, xhat_out, inv_out,
                   dx, dw_in, dw_hidden, dw_out, dg_in, db_in, dg_hidden, db_hidden, dg_out, db_out):
    """Date ``l``'s network, backward (see :func:`mlp_backward`); its scratch is its own."""
    I, B = w_in.shape[2], dout.shape[1]
    K = w_hidden.shape[0]
    H = w_in.shape[1]
    dz_out = np.empty((1, B), np.float32)
    h = np.empty((H, B), np.float32)
    dh = np.empty((H, B), np.float32)
    dz = np.empty((H, B), np.float32)
    a = np.empty((I, B), np.float32)
    da = np.empty((I, B), np.float32)
    _batch_norm_backward(dout[l:l + 1], xhat_out[l], inv_out[l], g_out[l], b_out[l], False, dg_out[l], db_out[l],
                         dz_out)
    _activation(xhat_hidden[K, l], g_hidden[K, l], b_hidden[K, l], True, h)
    _weight_gradient(dz_out, h, dw_out[l])
    _matmul_transposed(w_out[l], dz_out, dh)
    for k in range(K, 0, -1):
        _batch_norm_backward(dh, xhat_hidden[k, l], inv_hidden[k, l], g_hidden[k, l], b_hidden[k, l], True,
                             dg_hidden[k, l], db_hidden[k, l], dz)
        _activation(xhat_hidden[k - 1, l], g_hidden[k - 1, l], b_hidden[k - 1, l], True, h)
        _weight_gradient(dz, h, dw_hidden[k - 1, l])
        _matmul_transposed(w_hidden[k - 1, l], dz, dh)
    _batch_norm_backward(dh, xhat_hidden[0, l], inv_hidden[0, l], g_hidden[0, l], b_hidden[0, l], True,
                         dg_hidden[0, l], db_hidden[0, l], dz)
    _activation(xhat_in[l], g_in[l], b_in[l], False, a)
    _weight_gradient(dz, a, dw_in[l])
    _matmul_transposed(w_in[l], dz, da)
    _batch_norm_backward(da, xhat_in[l], inv_in[l], g_in[l], b_in[l], False, dg_in[l], db_in[l], dx[l])


@njit_float32_kernel
def mlp_forward(x, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out, eps,
                xhat_in, inv_in, mean_in, var_in, xhat_hidden, inv_hidden, mean_hidden, var_hidden,
                xhat_out, inv_out, mean_out, var_out, out):
    """Training-mode forward pass of ``L`` networks, one date at a time.

    Shapes (``L`` dates, ``I`` inputs, ``H`` hidden units, ``K = n_hidden − 1``, batch ``B``):
    ``x (L, I, B)``; ``w_in (L, H, I)``, ``w_hidden (K, L, H, H)``, ``w_out (L, 1, H)``; ``g_in, b_in
    (L, I)``, ``g_hidden, b_hidden (K + 1, L, H)``, ``g_out, b_out (L, 1)``. Writes ``out (L, B)`` and,
    per batch norm, ``x̂`` (``xhat_in (L, I, B)``, ``xhat_hidden (K + 1, L, H, B)``, ``xhat_out (L, 1,
    B)``), ``1/sqrt(v + ε)``, ``μ`` and the biased ``v`` (shapes of the matching γ).
    """
    for l in range(x.shape[0]):
        _forward_date(l, x, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out, eps,
                      xhat_in, inv_in, mean_in, var_in, xhat_hidden, inv_hidden, mean_hidden, var_hidden,
                      xhat_out, inv_out, mean_out, var_out, out)


@njit_float32_kernel(parallel=True)
def mlp_forward_parallel(x, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out, eps,
                         xhat_in, inv_in, mean_in, var_in, xhat_hidden, inv_hidden, mean_hidden, var_hidden,
                         xhat_out, inv_out, mean_out, var_out, out):
    """:func:`mlp_forward` with the dates shared among Numba's threads (dates are independent: the same
    bits as the serial kernel)."""
    for l in prange(x.shape[0]):
        _forward_date(l, x, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out, eps,
                      xhat_in, inv_in, mean_in, var_in, xhat_hidden, inv_hidden, mean_hidden, var_hidden,
                      xhat_out, inv_out, mean_out, var_out, out)


@njit_float32_kernel
def mlp_backward(dout, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out,
                 xhat_in, inv_in, xhat_hidden, inv_hidden, xhat_out, inv_out,
                 dx, dw_in, dw_hidden, dw_out, dg_in, db_in, dg_hidden, db_hidden, dg_out, db_out):
    """Backward pass of :func:`mlp_forward` for the output gradient ``dout (L, B)``.

    Writes the gradients of the input (``dx``, shape of ``x``) and of every weight, scale and shift
    (each the shape of its parameter), from the forward pass's ``x̂`` and ``1/sqrt(v + ε)``.
    """
    for l in range(dout.shape[0]):
        _backward_date(l, dout, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out,
                       xhat_in, inv_in, xhat_hidden, inv_hidden, xhat_out, inv_out,
                       dx, dw_in, dw_hidden, dw_out, dg_in, db_in, dg_hidden, db_hidden, dg_out, db_out)


@njit_float32_kernel(parallel=True)
def mlp_backward_parallel(dout, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out,
                          xhat_in, inv_in, xhat_hidden, inv_hidden, xhat_out, inv_out,
                          dx, dw_in, dw_hidden, dw_out, dg_in, db_in, dg_hidden, db_hidden, dg_out, db_out):
    """:func:`mlp_backward` with the dates shared among Numba's threads (the same bits as the serial kernel)."""
    for l in prange(dout.shape[0]):
        _backward_date(l, dout, w_in, w_hidden, w_out, g_in, b_in, g_hidden, b_hidden, g_out, b_out,
                       xhat_in, inv_in, xhat_hidden, inv_hidden, xhat_out, inv_out,
                       dx, dw_in, dw_hidden, dw_out, dg_in, db_in, dg_hidden, db_hidden, dg_out, db_out)


EVAL_TILE = 1024  # paths per tile of the evaluation kernel: 21 × 1024 floats per activation, in the L2 cache


@njit_float32_kernel
def _eval_date(l, x, w_in, w_hidden, w_out, a_in, c_in, a_hidden, c_hidden, a_out, c_out, out):
    """Date ``l``'s network in evaluation mode (see :func:`mlp_eval`), tile by tile; its scratch is its own."""
    I, B = x.shape[1], x.shape[2]
    K = w_hidden.shape[0]
    H = w_in.shape[1]
    T = min(B, EVAL_TILE)
    a_buf = np.empty(I * T, np.float32)
    z_buf = np.empty(H * T, np.float32)
    h_buf = np.empty(H * T, np.float32)
    o_buf = np.empty(T, np.float32)
    for start in range(0, B, T):
        n = min(T, B - start)
        a = a_buf[:I * n].reshape((I, n))
        z = z_buf[:H * n].reshape((H, n))
        h = h_buf[:H * n].reshape((H, n))
        z_out = o_buf[:n].reshape((1, n))
        for i in range(I):
            for b in range(n):
                a[i, b] = x[l, i, start + b]
        _activation(a, a_in[l], c_in[l], False, a)
        _matmul(w_in[l], a, z)
        _activation(z, a_hidden[0, l], c_hidden[0, l], True, h)
        for k in range(K):
            _matmul(w_hidden[k, l], h, z)
            _activation(z, a_hidden[k + 1, l], c_hidden[k + 1, l], True, h)
        _matmul(w_out[l], h, z_out)
        g = a_out[l, 0]
        s = c_out[l, 0]
        for b in range(n):
            out[l, start + b] = g * z_out[0, b] + s


@njit_float32_kernel
def mlp_eval(x, w_in, w_hidden, w_out, a_in, c_in, a_hidden, c_hidden, a_out, c_out, out):
    """Evaluation-mode forward pass of ``L`` networks: every batch norm the affine map ``α z + β'``.

    Shapes as :func:`mlp_forward`, with each batch norm's ``α`` and ``β'`` in place of its ``γ`` and
    ``β`` (``a_in, c_in (L, I)``, ``a_hidden, c_hidden (K + 1, L, H)``, ``a_out, c_out (L, 1)``).
    Writes ``out (L, B)``; any batch size (tiles of :data:`EVAL_TILE` paths).
    """
    for l in range(x.shape[0]):
        _eval_date(l, x, w_in, w_hidden, w_out, a_in, c_in, a_hidden, c_hidden, a_out, c_out, out)


@njit_float32_kernel(parallel=True)
def mlp_eval_parallel(x, w_in, w_hidden, w_out, a_in, c_in, a_hidden, c_hidden, a_out, c_out, out):
    """:func:`mlp_eval` with the dates shared among Numba's threads (the same bits as the serial kernel)."""
    for l in prange(x.shape[0]):
        _eval_date(l, x, w_in, w_hidden, w_out, a_in, c_in, a_hidden, c_hidden, a_out, c_out, out)
