"""Selective scan as a log-depth parallel scan of plain tensor operations (``'parallel'``).

The linear recurrence ``h_t = a_t h_{t-1} + b_t`` (``a = exp(delta A)``, ``b = delta B u``)
is solved for all tokens at once by recursive doubling (Hillis-Steele): after the step with
shift ``s`` every token holds the composition of the ``2s`` pairs ending at it, so
``ceil(log2 L)`` steps of element-wise products, pads and slices give every state. No loop
runs over tokens or chunks and nothing is updated in place, so the operation graph grows
with ``log2 L`` only: this is the formulation to trace for export (ONNX), where a per-token
loop would be unrolled into the graph. Only products of decays ``<= 1`` are formed, so
nothing overflows.

It materialises all states (B, D, N, L) in every step, about ``log2 L`` times the work of a
sequential scan and, under autograd, that many saved tensors: an inference and export path,
not a training one (``'auto'`` never picks it).
"""
import torch
import torch.nn.functional as F

from .common import as_grouped, compute_dtype, prepare_delta, skip_and_gate


def doubling_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor = None) -> torch.Tensor:
    """Solve ``h_t = a_t * h_{t-1} + b_t`` along the last dim with ``h_{-1} = h0``.

    a, b: (..., L) of one shape; h0: broadcastable to (...), default 0. Returns h (..., L)
    after ``ceil(log2 L)`` doubling steps.
    """
    length = a.shape[-1]
    h0 = a.new_zeros(()) if h0 is None else h0
    b = torch.cat([b[..., :1] + a[..., :1] * h0.unsqueeze(-1), b[..., 1:]], dim=-1)
    shift = 1
    while shift < length:
        # compose each token's pair with the one ``shift`` tokens earlier (identity before 0)
        a_earlier = F.pad(a[..., :-shift], (shift, 0), value=1.0)
        b_earlier = F.pad(b[..., :-shift], (shift, 0))
        b = a * b_earlier + b
        a = a * a_earlier
        shift *= 2
    return b


def _per_channel(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Grouped (B, G, N, L) -> (B, D, N, L), channel d reading group d // (D // G)."""
    batch, groups, d_state, length = t.shape
    return t.unsqueeze(2).expand(batch, groups, dim // groups, d_state, length).reshape(
        batch, dim, d_state, length)


def _states(u, delta, A, B):
    """u, delta (B, D, L); A (D, N); B (B, G, N, L) -> all states h (B, D, N, L)."""
    decay = torch.exp(delta.unsqueeze(2) * A.unsqueeze(-1))
    drive = (delta * u).unsqueeze(2) * _per_channel(B, u.shape[1])
    return doubling_scan(decay, drive)


def _cast(dtype, *tensors):
    return [None if t is None else t.to(dtype) for t in tensors]


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False):
    """Parallel selective scan; arguments as :func:`fusion_mamba.ops.selective_scan`.

    Returns ``(y (B, D, L), last_state (B, D, N))`` in the compute dtype.
    """
    dtype = compute_dtype(u.dtype)
    u, delta, A, B, C, D, z, delta_bias = _cast(dtype, u, delta, A, as_grouped(B), as_grouped(C),
                                                D, z, delta_bias)
    h = _states(u, prepare_delta(delta, delta_bias, delta_softplus), A, B)
    y = (h * _per_channel(C, u.shape[1])).sum(2)
    return skip_and_gate(y, u, D, z), h[..., -1]


def selective_scan_states(u, delta, A, B, delta_bias=None, delta_softplus=False):
    """All hidden states h (B, D, N, L) in the compute dtype."""
    dtype = compute_dtype(u.dtype)
    u, delta, A, B, delta_bias = _cast(dtype, u, delta, A, as_grouped(B), delta_bias)
    return _states(u, prepare_delta(delta, delta_bias, delta_softplus), A, B)
