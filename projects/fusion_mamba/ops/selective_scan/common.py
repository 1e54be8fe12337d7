"""Input checks and the element-wise pieces every selective-scan backend shares.

Shapes (mamba-ssm's names): ``u`` and ``delta`` (B, D, L); ``A`` (D, N); ``B`` and ``C``
(B, N, L) or grouped (B, G, N, L), channel ``d`` using group ``d // (D // G)``; ``D`` and
``delta_bias`` (D,); ``z`` (B, D, L).
"""
import torch
import torch.nn.functional as F

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def compute_dtype(dtype):
    """float64 stays float64 (gradcheck); every other input dtype is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_float(name, t):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, got {type(t).__name__}')
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f'{name} must be a floating tensor ({", ".join(map(str, FLOAT_DTYPES))}), '
                        f'got {t.dtype}')


def _check_shape(name, t, shape):
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f'{name} must have shape {tuple(shape)}, got {tuple(t.shape)}')


def check_dtypes_and_devices(u, delta, A, B, C=None, D=None, z=None, delta_bias=None):
    """Every given argument is a floating tensor on one device; delta and z have u's dtype and
    B / C u's dtype or float32. Raises ``TypeError`` or ``ValueError`` (devices)."""
    named = dict(u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias)
    given = {k: v for k, v in named.items() if v is not None}
    for name, t in given.items():
        _check_float(name, t)
    if len({t.device for t in given.values()}) > 1:
        where = ', '.join(f'{k}: {v.device}' for k, v in given.items())
        raise ValueError(f'selective scan inputs must be on one device, got {where}')
    for name in ('delta', 'z'):
        if name in given and given[name].dtype != u.dtype:
            raise TypeError(f'{name} must have the dtype of u ({u.dtype}), got {given[name].dtype}')
    for name in ('B', 'C'):
        if name in given and given[name].dtype not in (u.dtype, torch.float32, torch.float64):
            raise TypeError(f'{name} must have the dtype of u ({u.dtype}) or float32, '
                            f'got {given[name].dtype}')


def check_scan_inputs(u, delta, A, B, C=None, D=None, z=None, delta_bias=None):
    """Validate the arguments of a selective scan; return ``(batch, dim, length, groups, d_state)``.

    ``C`` is None for the hidden-state variant. Raises ``TypeError`` for non-float tensors or
    mismatched dtypes and ``ValueError`` for mismatched shapes or devices.
    """
    check_dtypes_and_devices(u, delta, A, B, C, D, z, delta_bias)
    if u.dim() != 3:
        raise ValueError(f'u must be (batch, dim, length), got shape {tuple(u.shape)}')
    batch, dim, length = u.shape
    if length == 0 or dim == 0 or batch == 0:
        raise ValueError(f'u must not be empty, got shape {tuple(u.shape)}')
    _check_shape('delta', delta, u.shape)
    if A.dim() != 2 or A.shape[0] != dim or A.shape[1] == 0:
        raise ValueError(f'A must be (dim={dim}, d_state >= 1), got shape {tuple(A.shape)}')
    d_state = A.shape[1]
    groups = None
    for name, t in (('B', B), ('C', C)):
        if t is None:
            continue
        if t.dim() == 3:
            _check_shape(name, t, (batch, d_state, length))
            g = 1
        elif t.dim() == 4:
            g = t.shape[1]
            _check_shape(name, t, (batch, g, d_state, length))
            if g == 0 or dim % g:
                raise ValueError(f'{name} has {g} groups, which must divide dim={dim}')
        else:
            raise ValueError(f'{name} must be (batch, d_state, length) or (batch, groups, d_state, '
                             f'length), got shape {tuple(t.shape)}')
        if groups is not None and g != groups:
            raise ValueError(f'B and C must have the same number of groups, got {groups} and {g}')
        groups = g
    for name, t in (('D', D), ('delta_bias', delta_bias)):
        if t is not None:
            _check_shape(name, t, (dim, ))
    if z is not None:
        _check_shape('z', z, u.shape)
    return batch, dim, length, groups, d_state


def as_grouped(t):
    """(B, N, L) -> (B, 1, N, L); (B, G, N, L) is returned as is."""
    return t.unsqueeze(1) if t.dim() == 3 else t


def prepare_delta(delta, delta_bias=None, delta_softplus=False):
    """delta (B, D, L) in the compute dtype -> softplus(delta + delta_bias[:, None]) if asked."""
    if delta_bias is not None:
        delta = delta + delta_bias.to(delta.dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    return delta


def skip_and_gate(y, u, D=None, z=None):
    """y + D[:, None] * u, then * silu(z); all (B, D, L) in the compute dtype."""
    if D is not None:
        y = y + D.to(y.dtype)[:, None] * u
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    return y
