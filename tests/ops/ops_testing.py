"""Input factories and tolerance checks shared by the selective-scan tests."""
import torch

# mamba-ssm's test tolerances against the sequential reference: (rtol, atol) per input dtype
TOLERANCES = {
    torch.float32: (6e-4, 2e-3),
    torch.float16: (3e-3, 5e-3),
    torch.bfloat16: (3e-2, 5e-2),
    torch.float64: (1e-7, 1e-7),
}
# extra slack per gradient, as in mamba-ssm's tests (sums over long sequences)
GRAD_SCALE = dict(u=2, x=2, delta=5, A=5, B=2, C=2, D=2, z=2)  # keyed by the name's stem


def scan_inputs(batch, dim, d_state, length, groups=None, dtype=torch.float32, device='cpu',
                extras=True, seed=0):
    """Random mamba-ssm style inputs; returns a dict of leaf tensors requiring grad."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0, shift=0.0, dt=dtype):
        return (torch.randn(*shape, generator=gen) * scale + shift).to(device, dt)

    bc = (batch, d_state, length) if groups is None else (batch, groups, d_state, length)
    inputs = dict(u=rand(batch, dim, length), delta=rand(batch, dim, length, scale=0.5),
                  A=(-0.5 - torch.rand(dim, d_state, generator=gen)).to(device),
                  B=rand(*bc), C=rand(*bc))
    if extras:
        inputs.update(D=rand(dim, dt=torch.float32), z=rand(batch, dim, length),
                      delta_bias=rand(dim, scale=0.3, dt=torch.float32))
    return {k: v.requires_grad_() for k, v in inputs.items()}


def ss2d_inputs(batch, dim, d_state, height, width, dtype=torch.float32, device='cpu', seed=0,
                extras=True, groups=None):
    """Random SS2D inputs in the spatial layout; a dict of leaf tensors requiring grad. With
    ``groups`` B and C are (B, 4, G, N, H, W), one per channel group."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0, dt=dtype):
        return (torch.randn(*shape, generator=gen) * scale).to(device, dt)

    grouped = () if groups is None else (groups, )
    inputs = dict(x=rand(batch, dim, height, width),
                  delta=rand(batch, 4, dim, height, width, scale=0.5),
                  A=(-0.5 - torch.rand(4 * dim, d_state, generator=gen)).to(device),
                  B=rand(batch, 4, *grouped, d_state, height, width),
                  C=rand(batch, 4, *grouped, d_state, height, width))
    if extras:
        inputs.update(D=rand(4 * dim, dt=torch.float32),
                      delta_bias=rand(4 * dim, scale=0.3, dt=torch.float32))
    return {k: v.requires_grad_() for k, v in inputs.items()}


def relayout(tensor, order):
    """A leaf with ``tensor``'s values whose memory holds the dimensions in ``order``."""
    inverse = [order.index(i) for i in range(len(order))]
    return tensor.detach().permute(*order).contiguous().permute(*inverse).requires_grad_()


def channels_last_ss2d(inputs):
    """SS2D inputs laid out as the channels-last SS2D module makes them: x (B, H, W, D) in
    memory, delta (K, B, H, W, D), B and C (B, H, W, K, N); same values, fresh leaves."""
    grouped = inputs['B'].dim() == 6  # (B, H, W, K, G, N)
    bc = (0, 4, 5, 1, 2, 3) if grouped else (0, 3, 4, 1, 2)
    orders = dict(x=(0, 2, 3, 1), delta=(1, 0, 3, 4, 2), B=bc, C=bc)
    return {k: relayout(v, orders[k]) if k in orders else v.detach().requires_grad_()
            for k, v in inputs.items()}


def detached_copy(inputs, dtype=None):
    """Fresh leaves with the same values (optionally upcast) for a second backend."""
    return {k: v.detach().to(dtype or v.dtype).requires_grad_() for k, v in inputs.items()}


def grads_of(out, inputs, seed=1):
    """Gradients of a fixed random projection of ``out`` w.r.t. every input.

    The weights are rounded to bfloat16, so the output gradient is exact in every dtype and
    low-precision outputs are compared with a float32 reference on the same footing. An
    input the output does not depend on (A for a one-token scan from a zero state) has a
    zero gradient."""
    outs = out if isinstance(out, tuple) else (out, )
    gen = torch.Generator().manual_seed(seed)
    loss = sum((o.float() * torch.randn(o.shape, generator=gen).bfloat16().float().to(o.device))
               .sum() for o in outs)
    grads = torch.autograd.grad(loss, list(inputs.values()), allow_unused=True,
                                materialize_grads=True)
    return dict(zip(inputs, grads))


def assert_close(actual, expected, dtype, name='', scale=1):
    rtol, atol = TOLERANCES[dtype]
    torch.testing.assert_close(actual.float(), expected.float(), rtol=rtol * scale,
                               atol=atol * scale, msg=lambda m: f'{name}: {m}')


def assert_grads_close(actual, expected, dtype):
    for name, grad in expected.items():
        scale = GRAD_SCALE.get(name.split('_')[0], 1)
        assert_close(actual[name], grad, dtype, f'grad {name}', scale)


def direction_indices(height, width, device='cpu'):
    """Explicit spatial indices (into the flattened map) of the 4 SS2D scan orders."""
    row = [h * width + w for h in range(height) for w in range(width)]
    col = [h * width + w for w in range(width) for h in range(height)]
    orders = [row, col, row[::-1], col[::-1]]
    return [torch.tensor(o, device=device) for o in orders]


def explicit_ss2d(x, delta, A, B, C, D=None, delta_bias=None, delta_softplus=True,
                  backend='reference'):
    """Cross-scan -> 4 separate 1D scans -> cross-merge, written out with explicit indices;
    with grouped B / C (B, 4, G, N, H, W) one such SS2D per channel group, concatenated."""
    from fusion_mamba.ops import selective_scan
    batch, dim, height, width = x.shape
    if B.dim() == 6:
        size = dim // B.shape[2]

        def rows(t, g):  # (4 * dim, ...) or None -> group g's rows of every direction
            return None if t is None else t.unflatten(0, (4, dim))[
                :, g * size:(g + 1) * size].flatten(0, 1)
        return torch.cat([explicit_ss2d(
            x[:, g * size:(g + 1) * size], delta[:, :, g * size:(g + 1) * size], rows(A, g),
            B[:, :, g], C[:, :, g], rows(D, g), rows(delta_bias, g), delta_softplus, backend)
            for g in range(B.shape[2])], dim=1)
    out = x.new_zeros(batch, dim, height * width, dtype=torch.float32)
    for k, idx in enumerate(direction_indices(height, width, x.device)):
        rows = slice(k * dim, (k + 1) * dim)
        y = selective_scan(x.flatten(2)[..., idx], delta[:, k].flatten(2)[..., idx], A[rows],
                           B[:, k].flatten(2)[..., idx], C[:, k].flatten(2)[..., idx],
                           None if D is None else D[rows], None,
                           None if delta_bias is None else delta_bias[rows], delta_softplus,
                           backend=backend)
        out = out.index_add(2, idx, y.float())
    return out.view(batch, dim, height, width).to(x.dtype)


def explicit_cross_modal(x_a, x_b, delta_a, delta_b, A, B_a, B_b, C_a, C_b, D=None,
                         delta_bias=None, delta_softplus=True, backend='reference'):
    """Per direction: interleave the two modalities by hand, scan, split, put back, sum."""
    from fusion_mamba.ops import selective_scan
    batch, dim, height, width = x_a.shape
    length = height * width
    outs = [x_a.new_zeros(batch, dim, length, dtype=torch.float32) for _ in range(2)]
    for k, idx in enumerate(direction_indices(height, width, x_a.device)):
        rows = slice(k * dim, (k + 1) * dim)

        def pair(a, b):
            seq = a.new_empty(*a.shape[:-1], 2 * length)
            seq[..., 0::2], seq[..., 1::2] = a[..., idx], b[..., idx]
            return seq

        y = selective_scan(pair(x_a.flatten(2), x_b.flatten(2)),
                           pair(delta_a[:, k].flatten(2), delta_b[:, k].flatten(2)), A[rows],
                           pair(B_a[:, k].flatten(2), B_b[:, k].flatten(2)),
                           pair(C_a[:, k].flatten(2), C_b[:, k].flatten(2)),
                           None if D is None else D[rows], None,
                           None if delta_bias is None else delta_bias[rows], delta_softplus,
                           backend=backend)
        outs = [o.index_add(2, idx, y[..., m::2].float()) for m, o in enumerate(outs)]
    return tuple(o.view(batch, dim, height, width).to(x_a.dtype) for o in outs)


def cross_modal_inputs(batch, dim, d_state, height, width, dtype=torch.float32, device='cpu'):
    """Inputs of ``cross_modal_ss2d_scan`` as a dict of leaves requiring grad."""
    a = ss2d_inputs(batch, dim, d_state, height, width, dtype, device, seed=0)
    b = ss2d_inputs(batch, dim, d_state, height, width, dtype, device, seed=1, extras=False)
    return dict(x_a=a['x'], x_b=b['x'], delta_a=a['delta'], delta_b=b['delta'], A=a['A'],
                B_a=a['B'], B_b=b['B'], C_a=a['C'], C_b=b['C'], D=a['D'],
                delta_bias=a['delta_bias'])


def segmented_launch(triton_kernels, programs=2048):
    """The default launch with the sequential forward cut into segments below ``programs``
    programs (0: never)."""
    def config(d_state, per_block, length):
        return triton_kernels.default_config(d_state, per_block, length)._replace(
            seq_fwd_programs=programs)
    return config
