"""SS2D (VMamba's 2D selective scan): four directional scans of a (B, D, H, W) map, merged.

Direction k reads the H x W tokens in the order: 0 row-major, 1 column-major, 2 row-major
reversed, 3 column-major reversed. Per-direction parameters are given in the spatial layout
(a per-token projection commutes with the reordering), so the fused Triton kernel reads
everything in place; the other backends build the four sequences explicitly.
"""
import torch

from .selective_scan.backends import get_backend, resolve_backend
from .selective_scan.common import check_dtypes_and_devices, compute_dtype

DIRECTIONS = 4


def scan_order(x, k):
    """(..., H, W) -> (..., H * W): the tokens in the order direction ``k`` reads them."""
    seq = (x.transpose(-1, -2) if k % 2 else x).flatten(-2)
    return seq.flip(-1) if k >= 2 else seq


def spatial_order(y, k, hw):
    """Inverse of :func:`scan_order`: (..., H * W) in direction k's order -> (..., H, W)."""
    height, width = hw
    if k >= 2:
        y = y.flip(-1)
    if k % 2:
        return y.unflatten(-1, (width, height)).transpose(-1, -2)
    return y.unflatten(-1, (height, width))


def cross_scan(x):
    """(B, D, H, W) -> (B, 4, D, H * W): the four directional sequences of one map."""
    return torch.stack([scan_order(x, k) for k in range(DIRECTIONS)], dim=1)


def directional_sequences(p):
    """(B, 4, C, H, W) per-direction maps -> (B, 4, C, H * W), map k read in direction k's order."""
    # unbind, not p[:, k]: one stacked gradient instead of four full-size zero tensors
    return torch.stack([scan_order(pk, k) for k, pk in enumerate(p.unbind(1))], dim=1)


def cross_merge(y, hw=None):
    """Put four directional sequences back in place and sum them: -> (B, D, H, W).

    ``y`` is (B, 4, D, L) with ``hw=(H, W)``, or (B, 4, D, H, W) holding each direction's
    sequence in scan order viewed as (H, W) (VMamba's convention; ``hw`` then comes from it).
    """
    if y.dim() == 5:
        hw = hw or tuple(y.shape[-2:])
        y = y.flatten(-2)
    if y.dim() != 4 or y.shape[1] != DIRECTIONS or hw is None or hw[0] * hw[1] != y.shape[-1]:
        raise ValueError(f'cross_merge expects (B, 4, D, H*W) with hw=(H, W) or (B, 4, D, H, W), '
                         f'got shape {tuple(y.shape)} and hw={hw}')
    return sum(spatial_order(yk, k, hw) for k, yk in enumerate(y.unbind(1)))


def _check_shape(name, t, shape):
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f'{name} must have shape {tuple(shape)}, got {tuple(t.shape)}')


def check_ss2d_inputs(x, delta, A, B, C, D=None, delta_bias=None):
    """Validate SS2D arguments (shapes as :func:`ss2d_selective_scan`); return (B, D, N, H, W,
    G)."""
    check_dtypes_and_devices(x, delta, A, B, C, D, None, delta_bias)
    if x.dim() != 4:
        raise ValueError(f'x must be (B, D, H, W), got shape {tuple(x.shape)}')
    batch, dim, height, width = x.shape
    if A.dim() != 2:
        raise ValueError(f'A must be (4 * D, N), got shape {tuple(A.shape)}')
    d_state = A.shape[1]
    _check_shape('A', A, (DIRECTIONS * dim, d_state))
    _check_shape('delta', delta, (batch, DIRECTIONS, dim, height, width))
    groups = B.shape[2] if B.dim() == 6 else 1
    if groups < 1 or dim % groups:
        raise ValueError(f'B: {groups} channel groups do not divide the {dim} channels of x')
    grouped = (groups, ) if B.dim() == 6 else ()
    _check_shape('B', B, (batch, DIRECTIONS, *grouped, d_state, height, width))
    _check_shape('C', C, (batch, DIRECTIONS, *grouped, d_state, height, width))
    for name, t in (('D', D), ('delta_bias', delta_bias)):
        if t is not None:
            _check_shape(name, t, (DIRECTIONS * dim, ))
    return batch, dim, d_state, height, width, groups


def _direction_groups(p, groups):
    """(B, 4, [G,] N, H, W) -> (B, 4 * G, N, H * W): group g of direction k at k * G + g,
    read in direction k's order. The sizes come from the tensors (not unflatten): a traced
    export keeps the batch dynamic."""
    if p.dim() == 5:
        return directional_sequences(p)
    batch, _, _, d_state = p.shape[:4]
    seq = directional_sequences(p.flatten(2, 3))  # (B, 4, G N, L)
    return seq.reshape(batch, DIRECTIONS * groups, d_state, seq.shape[-1])


def upcast_for(backend, *tensors):
    """The torch, cpp, parallel and reference backends compute in float32: cast their inputs
    before the cross-scan so that the four directions' gradients are also summed in float32."""
    if backend not in ('torch', 'reference', 'cpp', 'parallel'):
        return tensors
    return tuple(t.to(compute_dtype(t.dtype)) for t in tensors)


def scan_sequences(backend, u, delta, A, B, C, D, delta_bias, delta_softplus):
    """Scan already-checked (B, 4 * D, L) sequences with 4 groups of B / C on a concrete backend;
    returns y in float32 so that the four directions are summed without rounding."""
    y, _ = get_backend(backend).selective_scan(u, delta, A, B, C, D, None, delta_bias,
                                               delta_softplus, False)
    return y.float()


def ss2d_prefers_channels_last(batch, dim, d_state, device, backend='auto', needs_grad=True):
    """Whether :func:`ss2d_selective_scan` on (batch, dim, H, W) maps is fastest given them
    channels-last: on the 'triton' backend when its sequential kernels take the scan (see
    ``triton_kernels._sequential``: without a backward (``needs_grad`` False) on every grid,
    with one on large grids); the other backends and small grids with a backward read
    channel-major maps (a channels-last map is copied for them)."""
    if resolve_backend(backend, device) != 'triton':
        return False
    return get_backend('triton').sequential_scan(batch, DIRECTIONS, dim, d_state, needs_grad)


def ss2d_scans_group(dim, d_state, device, backend='auto'):
    """Whether several SS2D scans of (B, dim, H, W) maps on ``device`` are faster as one call
    with grouped B / C (:func:`ss2d_selective_scan`): on the 'triton' backend (one launch
    of a larger grid), where the channel blocks of its sequential kernels fit one map's
    channels (else the grouped call would fall back to the chunked kernels); the other
    backends gain nothing."""
    return (resolve_backend(backend, device) == 'triton'
            and get_backend('triton').groups_keep_sequential(d_state, dim))


def ss2d_selective_scan(x, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True,
                        backend='auto'):
    """Sum of the four directional selective scans of a map, each put back in place.

    Args:
        x: (B, D, H, W) input map.
        delta: (B, 4, D, H, W) per-direction time steps, in the spatial layout.
        A: (4 * D, N), rows k * D ... (k + 1) * D - 1 for direction k.
        B, C: (B, 4, N, H, W) per-direction input / output projections, spatial layout;
            or (B, 4, G, N, H, W): the channels in G equal groups, group g (channels g * D /
            G ... (g + 1) * D / G - 1) reading B[:, k, g] (several scans of the same shapes
            in one call, their maps concatenated along the channels).
        D, delta_bias: (4 * D,) or None.
        backend: as :func:`fusion_mamba.ops.selective_scan`; 'triton' runs one fused kernel
            with no cross-scan copy, the others cross-scan, scan (B, 4 * D, H * W) with 4
            groups, and cross-merge.

    Returns:
        (B, D, H, W) in x's dtype.
    """
    batch, dim, _, height, width, groups = check_ss2d_inputs(x, delta, A, B, C, D, delta_bias)
    name = resolve_backend(backend, x.device)
    if name == 'triton':
        return get_backend(name).ss2d_scan(x, delta, A, B, C, D, delta_bias, delta_softplus)
    length = height * width
    dtype = x.dtype
    x, delta, B, C = upcast_for(name, x, delta, B, C)
    y = scan_sequences(name, cross_scan(x).reshape(batch, DIRECTIONS * dim, length),
                       directional_sequences(delta).reshape(batch, DIRECTIONS * dim, length),
                       A, _direction_groups(B, groups), _direction_groups(C, groups), D,
                       delta_bias, delta_softplus)
    return cross_merge(y.view(batch, DIRECTIONS, dim, length), (height, width)).to(dtype)
