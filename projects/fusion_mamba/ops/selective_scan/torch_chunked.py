"""Selective scan in pure PyTorch: blocks of tokens, a two-level parallel scan inside each.

The sequence is cut into blocks of ``block`` tokens (sized so that one (block, B, D, N)
tensor holds about ``BLOCK_ELEMENTS`` numbers) and the blocks are processed one after the
other, carrying the (B, D, N) state. Inside a block the linear recurrence
``h_t = a_t h_{t-1} + b_t`` is solved by :func:`linear_scan`: about ``sqrt(block)`` sub-chunks
are scanned side by side, then their start states are chained and added back with the
sub-chunk decays ``prod a``. Only products of decays ``a = exp(delta * A) <= 1`` are formed,
never ``exp(-cumsum)``, so nothing overflows however large ``delta * |A|`` gets. The Python
loops run about ``2 sqrt(block)`` steps per block, each over a whole slice of the block.

Backward recomputes each block's states from the state saved at the block's start and runs
the adjoint recurrence backwards through the blocks, so the memory held between forward and
backward is the inputs plus one (B, D, N) state per block.
"""
import math

import torch

from .common import as_grouped, compute_dtype, prepare_delta, skip_and_gate

# numbers in one (block, B, D, N) tensor: small enough for CPU caches, larger on a GPU
BLOCK_ELEMENTS = dict(cpu=1 << 21, cuda=1 << 24)


def linear_scan(a, b, h0, reverse=False):
    """Solve ``h_t = a_t * h_{t-1} + b_t`` along dim 0, ``h_{-1} = h0``.

    a, b: (T, *S); h0: (*S). Returns all states (T, *S). With ``reverse=True`` it solves
    ``h_t = a_t * h_{t+1} + b_t`` with ``h_T = h0`` instead. ``a`` and ``b`` are used as
    workspace and overwritten: pass tensors that are not needed afterwards.
    """
    length, rest = a.shape[0], a.shape[1:]
    sub = max(1, math.isqrt(length))
    n_sub = -(-length // sub)
    pad = n_sub * sub - length
    if pad:
        a = torch.cat([a, a.new_ones(pad, *rest)])
        b = torch.cat([b, b.new_zeros(pad, *rest)])
    decay = a.reshape(n_sub, sub, *rest)  # becomes the decay from the sub-chunk's edge
    h = b.reshape(n_sub, sub, *rest)  # becomes the states
    step = 1 if reverse else -1
    for j in (range(sub - 2, -1, -1) if reverse else range(1, sub)):  # all sub-chunks at once
        h[:, j].addcmul_(decay[:, j], h[:, j + step])
        decay[:, j].mul_(decay[:, j + step])
    starts = torch.empty_like(h[:, 0])
    state = h0
    edge = 0 if reverse else -1
    for i in (range(n_sub - 1, -1, -1) if reverse else range(n_sub)):  # chain the sub-chunks
        starts[i] = state
        state = torch.addcmul(h[i, edge], decay[i, edge], state)
    h.addcmul_(decay, starts.unsqueeze(1))
    return h.reshape(n_sub * sub, *rest)[:length]


def _block_length(batch, dim, d_state, device):
    budget = BLOCK_ELEMENTS.get(device.type, BLOCK_ELEMENTS['cpu'])
    return max(1, budget // (batch * dim * d_state))


def _contract_channels(x, w):
    """sum_d x[..., d, n] * w[..., d]: x (..., Dg, N), w (..., Dg) -> (..., N)."""
    return torch.matmul(x.transpose(-1, -2), w.unsqueeze(-1)).squeeze(-1)


class _ChunkedScan(torch.autograd.Function):
    """Core scan on compute-dtype tensors in token-major layout.

    Forward inputs: u, delta (L, B, G, Dg); A (G, Dg, N); B (L, B, G, N); C (L, B, G, N) or
    None. Returns ``(out, last_state)``: out is y (L, B, G, Dg) when C is given, else all
    states (L, B, G, Dg, N); last_state (B, G, Dg, N) is not differentiable.
    """

    @staticmethod
    def _terms(u, delta, A, B):
        decay = torch.exp(delta.unsqueeze(-1) * A)
        drive = (delta * u).unsqueeze(-1) * B.unsqueeze(-2)
        return decay, drive

    @staticmethod
    def forward(ctx, u, delta, A, B, C):
        length, batch, groups, dg = u.shape
        block = _block_length(batch, groups * dg, A.shape[-1], u.device)
        state = u.new_zeros(batch, groups, dg, A.shape[-1])
        out = u.new_empty((length, batch, groups, dg) if C is not None else
                          (length, batch, groups, dg, A.shape[-1]))
        starts = []
        for s in range(0, length, block):
            e = min(s + block, length)
            decay, drive = _ChunkedScan._terms(u[s:e], delta[s:e], A, B[s:e])
            h = linear_scan(decay, drive, state)
            starts.append(state)
            state = h[-1].clone()
            if C is not None:
                out[s:e] = torch.matmul(h, C[s:e].unsqueeze(-1)).squeeze(-1)
            else:
                out[s:e] = h
        ctx.block = block
        ctx.save_for_backward(u, delta, A, B, C, torch.stack(starts))
        ctx.mark_non_differentiable(state)
        return out, state

    @staticmethod
    def backward(ctx, grad_out, _grad_state):
        u, delta, A, B, C, starts = ctx.saved_tensors
        length, block = u.shape[0], ctx.block
        grad_u, grad_delta = torch.empty_like(u), torch.empty_like(delta)
        grad_A = torch.zeros_like(A)
        grad_B = torch.empty_like(B)
        grad_C = torch.empty_like(C) if C is not None else None
        carry = torch.zeros_like(starts[0])  # a_{e} * dL/dh_{e} at the next block's start e
        for i in range(len(starts) - 1, -1, -1):
            s = i * block
            e = min(s + block, length)
            decay, drive = _ChunkedScan._terms(u[s:e], delta[s:e], A, B[s:e])
            h = linear_scan(decay.clone(), drive, starts[i])
            if C is not None:  # direct gradient reaching each state
                src = grad_out[s:e].unsqueeze(-1) * C[s:e].unsqueeze(-2)
                grad_C[s:e] = _contract_channels(h, grad_out[s:e])
            else:
                src = grad_out[s:e].clone()
            # k_t = a_t * dL/dh_t satisfies k_t = a_t * (src_t + k_{t+1})
            k = linear_scan(decay, decay * src, carry, reverse=True)
            grad_h = src  # dL/dh_t = src_t + k_{t+1}
            grad_h[:-1] += k[1:]
            grad_h[-1] += carry
            carry = k[0].clone()
            # dL/d(delta_t * A) = dL/dh_t * a_t * h_{t-1} = k_t * h_{t-1}
            grad_pre = k
            grad_pre[1:] *= h[:-1]
            grad_pre[0] *= starts[i]
            del decay, h
            gb = torch.matmul(grad_h, B[s:e].unsqueeze(-1)).squeeze(-1)
            grad_delta[s:e] = (grad_pre * A).sum(-1) + u[s:e] * gb
            grad_u[s:e] = delta[s:e] * gb
            grad_A += (grad_pre * delta[s:e].unsqueeze(-1)).sum((0, 1))
            grad_B[s:e] = _contract_channels(grad_h, delta[s:e] * u[s:e])
        return grad_u, grad_delta, grad_A, grad_B, grad_C


def _token_major(u, delta, A, B, C):
    """Channels-first inputs -> the layout of :class:`_ChunkedScan` (see its docstring)."""
    batch, dim, length = u.shape
    groups = B.shape[1]
    dg = dim // groups

    def seq(t):
        return t.permute(2, 0, 1).reshape(length, batch, groups, dg)

    def params(t):
        return None if t is None else t.permute(3, 0, 1, 2)

    return seq(u), seq(delta), A.reshape(groups, dg, -1), params(B), params(C)


def _cast(dtype, *tensors):
    return [None if t is None else t.to(dtype) for t in tensors]


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False):
    """Chunked selective scan; returns ``(y (B, D, L), last_state (B, D, N))`` in the compute
    dtype. Arguments as :func:`fusion_mamba.ops.selective_scan`."""
    batch, dim, length = u.shape
    dtype = compute_dtype(u.dtype)
    u, delta, A, B, C, D, z, delta_bias = _cast(dtype, u, delta, A, as_grouped(B), as_grouped(C),
                                                D, z, delta_bias)
    delta = prepare_delta(delta, delta_bias, delta_softplus)
    y, last = _ChunkedScan.apply(*_token_major(u, delta, A, B, C))
    y = y.reshape(length, batch, dim).permute(1, 2, 0)
    return skip_and_gate(y, u, D, z), last.reshape(batch, dim, -1)


def selective_scan_states(u, delta, A, B, delta_bias=None, delta_softplus=False):
    """All hidden states h (B, D, N, L) in the compute dtype, differentiable."""
    batch, dim, length = u.shape
    u, delta, A, B, delta_bias = _cast(compute_dtype(u.dtype), u, delta, A, as_grouped(B),
                                       delta_bias)
    delta = prepare_delta(delta, delta_bias, delta_softplus)
    h, _ = _ChunkedScan.apply(*_token_major(u, delta, A, B, None))
    return h.reshape(length, batch, dim, -1).permute(1, 2, 3, 0)
