"""The sequential selective-scan recurrence, one token at a time (exact semantics, slow).

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t,    y_t = C_t . h_t (+ D u_t)

computed in float32 (float64 for float64 inputs) and differentiated by autograd. It defines
what every other backend must reproduce; use it in tests, not in models.
"""
import torch

from .common import as_grouped, compute_dtype, prepare_delta, skip_and_gate


def _all_states(u, delta, A, B):
    """u, delta (B, D, L); A (D, N); B (B, G, N, L) -> h (B, D, N, L), all in one dtype."""
    batch, dim, length = u.shape
    B = B.repeat_interleave(dim // B.shape[1], dim=1)  # (B, D, N, L)
    decay = torch.exp(delta.unsqueeze(2) * A.unsqueeze(-1))  # (B, D, N, L)
    drive = (delta * u).unsqueeze(2) * B
    h = u.new_zeros(batch, dim, A.shape[1])
    states = []
    for t in range(length):
        h = decay[..., t] * h + drive[..., t]
        states.append(h)
    return torch.stack(states, dim=-1)


def _cast(dtype, *tensors):
    return [None if t is None else t.to(dtype) for t in tensors]


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False):
    """Reference selective scan; arguments as :func:`fusion_mamba.ops.selective_scan`.

    Returns ``(y, last_state)`` in the compute dtype: y (B, D, L), last_state (B, D, N).
    """
    dtype = compute_dtype(u.dtype)
    u, delta, A, B, C, D, z, delta_bias = _cast(dtype, u, delta, A, as_grouped(B), as_grouped(C),
                                                D, z, delta_bias)
    delta = prepare_delta(delta, delta_bias, delta_softplus)
    h = _all_states(u, delta, A, B)
    C = C.repeat_interleave(u.shape[1] // C.shape[1], dim=1)
    y = skip_and_gate((h * C).sum(2), u, D, z)
    return y, h[..., -1]


def selective_scan_states(u, delta, A, B, delta_bias=None, delta_softplus=False):
    """Reference hidden states h (B, D, N, L) in the compute dtype."""
    dtype = compute_dtype(u.dtype)
    u, delta, A, B, delta_bias = _cast(dtype, u, delta, A, as_grouped(B), delta_bias)
    return _all_states(u, prepare_delta(delta, delta_bias, delta_softplus), A, B)
