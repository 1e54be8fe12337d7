"""Selective scan as a log-depth parallel scan of plain tensor operations (``'parallel'``).

The linear recurrence ``h_t = a_t h_{t-1} + b_t`` (``a = exp(delta A)``, ``b = delta B u``)
is solved for all tokens at once by recursive doubling (Hillis-Steele): after the step with
shift ``s`` every token holds the composition of the ``2s`` pairs ending at it, so
``ceil(log2 L)`` steps of element-wise products, pads and slices give every state. The
decay of a window of tokens is ``exp(A * sum of delta over it)``, so only the window sums
of delta (B, D, L) are shifted besides the states (ONNX Runtime, demo FM-YOLOv8: 226 against
259 ms per pair for shifting the decay products too). No loop runs over tokens or chunks and
nothing is updated in place, so the operation graph grows with ``log2 L`` only: this is the
formulation to trace for export (ONNX), where a per-token loop would be unrolled into the
graph. With Mamba's delta >= 0 and A < 0 every decay is ``exp`` of a non-positive number,
so nothing overflows.

It materialises all states (B, D, N, L) in every step, about ``log2 L`` times the work of a
sequential scan and, under autograd, that many saved tensors: an inference and export path,
not a training one (``'auto'`` never picks it).
"""
import torch
import torch.nn.functional as F

from .common import as_grouped, compute_dtype, prepare_delta, skip_and_gate


def _per_channel(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Grouped (B, G, N, L) -> (B, D, N, L), channel d reading group d // (D // G)."""
    batch, groups, d_state, length = t.shape
    return t.unsqueeze(2).expand(batch, groups, dim // groups, d_state, length).reshape(
        batch, dim, d_state, length)


def _states(u, delta, A, B):
    """u, delta (B, D, L); A (D, N); B (B, G, N, L) -> all states h (B, D, N, L).

    Recursive doubling of ``h_t = a_t h_{t-1} + b_t``: before the step with shift ``s``,
    ``h_t`` is the state at t started from zero ``s`` tokens earlier, and ``window_t`` the
    sum of delta over those ``s`` tokens, whose decay product is ``exp(A window_t)``; the
    step composes each token with the one ``s`` earlier. Only h (B, D, N, L) is shifted;
    the decays come from the N times smaller window sums (B, D, L).
    """
    h = (delta * u).unsqueeze(2) * _per_channel(B, u.shape[1])
    window = delta
    length, shift = u.shape[-1], 1
    while shift < length:
        decay = torch.exp(window.unsqueeze(2) * A.unsqueeze(-1))  # over tokens t-s+1 .. t
        h = decay * F.pad(h[..., :-shift], (shift, 0)) + h
        window = window + F.pad(window[..., :-shift], (shift, 0))
        shift *= 2
    return h


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
