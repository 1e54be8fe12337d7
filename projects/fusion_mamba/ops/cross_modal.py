"""Cross-modal SS2D (S4Fusion's Cross SS2D): two modalities interleaved token by token.

In each of the four SS2D directions the sequences of modality a and b are merged into one
sequence of 2L tokens (a at even, b at odd positions) and scanned with modality-specific
delta / B / C and shared A / D, so each modality's state is driven by the other's tokens.
"""
import torch

from .selective_scan.backends import resolve_backend
from .ss2d import (DIRECTIONS, check_ss2d_inputs, cross_merge, cross_scan, directional_sequences,
                   scan_sequences, upcast_for)


def interleave_tokens(a, b):
    """(B, C, L) x 2 -> (B, C, 2L) with a at even and b at odd positions (any leading dims)."""
    if a.shape != b.shape:
        raise ValueError(f'interleaved tensors must have one shape, got {tuple(a.shape)} and '
                         f'{tuple(b.shape)}')
    return torch.stack((a, b), dim=-1).flatten(-2)


def deinterleave_tokens(x):
    """(B, C, 2L) -> ((B, C, L) even tokens, (B, C, L) odd tokens); inverse of interleave."""
    if x.shape[-1] % 2:
        raise ValueError(f'deinterleave_tokens needs an even length, got {x.shape[-1]}')
    return x[..., 0::2], x[..., 1::2]


def cross_modal_ss2d_scan(x_a, x_b, delta_a, delta_b, A, B_a, B_b, C_a, C_b, D=None,
                          delta_bias=None, delta_softplus=True, backend='auto'):
    """Four-direction scan of two interleaved modalities; returns ``(y_a, y_b)``.

    Args:
        x_a, x_b: (B, D, H, W) maps of the two modalities.
        delta_a, delta_b: (B, 4, D, H, W) per-direction time steps (spatial layout).
        A: (4 * D, N) shared. B_a, B_b, C_a, C_b: (B, 4, N, H, W) per modality and direction.
        D, delta_bias: (4 * D,) shared, or None.
        backend: as :func:`fusion_mamba.ops.selective_scan`.

    Returns:
        y_a, y_b: (B, D, H, W) each, the sum over directions of the outputs at that
        modality's tokens, put back at their spatial positions.
    """
    if any(t.dim() != 5 for t in (B_a, B_b, C_a, C_b)):
        raise ValueError('cross_modal_ss2d_scan: B and C must be (B, 4, N, H, W), without '
                         'channel groups')
    batch, dim, _, height, width, _ = check_ss2d_inputs(x_a, delta_a, A, B_a, C_a, D,
                                                        delta_bias)
    check_ss2d_inputs(x_b, delta_b, A, B_b, C_b, D, delta_bias)
    if x_a.shape != x_b.shape:
        raise ValueError(f'x_a and x_b must have one shape, got {tuple(x_a.shape)} and '
                         f'{tuple(x_b.shape)}')
    name = resolve_backend(backend, x_a.device)
    length = 2 * height * width
    dtype = x_a.dtype
    x_a, x_b, delta_a, delta_b, B_a, B_b, C_a, C_b = upcast_for(
        name, x_a, x_b, delta_a, delta_b, B_a, B_b, C_a, C_b)
    u = interleave_tokens(cross_scan(x_a), cross_scan(x_b))
    delta = interleave_tokens(directional_sequences(delta_a), directional_sequences(delta_b))
    B = interleave_tokens(directional_sequences(B_a), directional_sequences(B_b))
    C = interleave_tokens(directional_sequences(C_a), directional_sequences(C_b))
    y = scan_sequences(name, u.reshape(batch, DIRECTIONS * dim, length),
                       delta.reshape(batch, DIRECTIONS * dim, length), A, B, C, D, delta_bias,
                       delta_softplus)
    y_a, y_b = deinterleave_tokens(y.view(batch, DIRECTIONS, dim, length))
    return tuple(cross_merge(y, (height, width)).to(dtype) for y in (y_a, y_b))
