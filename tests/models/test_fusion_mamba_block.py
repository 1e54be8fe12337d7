"""Fusion-Mamba Block: DSSF and the FMB against Eq. 7-12 rebuilt with explicit tensor
operations, channel swap, cross terms, ablation switches, errors."""
import pytest
import torch
import torch.nn.functional as F
from dispatch_testing import OpNames

from fusion_mamba.models.fusion.fusion_mamba_block import DSSF, FusionMambaBlock, channel_swap
from fusion_mamba.models.fusion.simple_fusion import AddFusion, ConcatConvFusion
from fusion_mamba.ops import selective_scan

SSM = dict(type='SS2D', d_state=4, dt_rank='auto', backend='torch')
LN_EPS = 1e-6  # DSSF's default norm_cfg: AutocastLayerNorm, eps 1e-6


def dssf_weights(dssf, modality):
    """The weights modality 0 (RGB) or 1 (IR) of a DSSF module uses, as plain tensors.

    The only place that knows how DSSF stores its parameters (its ``state_dict`` keys):
    when the layout changes, only this helper changes. Keys of the result: ``norm_w``,
    ``norm_b`` (C,), ``in_proj`` (2 * D, C) (rows: x, then z), ``conv_w`` (D, 1, k, k),
    ``conv_b`` (D,), SS2D's ``x_proj`` (4, R + 2N, D), ``dt_proj`` (4, D, R), ``dt_bias``
    (4, D), ``A_log`` (4 * D, N), ``D`` (4 * D,), ``out_norm_w``, ``out_norm_b`` (D,),
    ``out_proj`` (C, D).
    """
    state = dssf.state_dict()
    shared = not any(key.startswith('branches.1.') for key in state)
    k = 0 if shared else modality
    branch = f'branches.{k}.'
    names = dict(norm_w='norm.weight', norm_b='norm.bias', in_proj='in_proj.weight',
                 conv_w='dwconv.weight', conv_b='dwconv.bias', x_proj='ssm.x_proj_weight',
                 dt_proj='ssm.dt_proj_weight', dt_bias='ssm.dt_proj_bias', A_log='ssm.A_log',
                 D='ssm.D', out_norm_w='out_norm.weight', out_norm_b='out_norm.bias')
    weights = {name: state[branch + key].detach().clone() for name, key in names.items()}
    weights['out_proj'] = state[f'out_projs.{k}.weight'].detach().clone()
    return weights


def layer_norm(x, weight, bias):
    """LayerNorm over the last axis, written out."""
    mean = x.mean(-1, keepdim=True)
    var = (x - mean).square().mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + LN_EPS) * weight + bias


def silu(x):
    return x * torch.sigmoid(x)


def directional_sequence(u, k):
    """(B, D, H, W) -> (B, D, H * W) in VMamba's direction k: 0 row-major, 1 column-major,
    2 and 3 the same reversed."""
    seq = (u.transpose(2, 3) if k % 2 else u).flatten(2)
    return seq.flip(-1) if k >= 2 else seq


def back_to_map(y, k, height, width):
    """Inverse of :func:`directional_sequence`: (B, D, H * W) -> (B, D, H, W)."""
    y = y.flip(-1) if k >= 2 else y
    if k % 2:
        return y.unflatten(-1, (width, height)).transpose(2, 3)
    return y.unflatten(-1, (height, width))


def ss2d_explicit(u, w):
    """SS2D from its definition: four directional sequences, each projected to (dt, B, C)
    with its own weights and scanned by the sequential reference scan with its own A, D and
    dt bias, put back in place and summed. u: (B, D, H, W)."""
    dim, height, width = u.shape[1:]
    d_state = w['A_log'].shape[1]
    rank = w['dt_proj'].shape[-1]
    out = 0
    for k in range(4):
        seq = directional_sequence(u, k)
        dt, B, C = torch.einsum('cd,bdl->bcl', w['x_proj'][k], seq).split(
            [rank, d_state, d_state], dim=1)
        delta = torch.einsum('dr,brl->bdl', w['dt_proj'][k], dt)
        rows = slice(k * dim, (k + 1) * dim)
        y = selective_scan(seq, delta, -torch.exp(w['A_log'][rows]), B, C, w['D'][rows],
                           delta_bias=w['dt_bias'][k], delta_softplus=True,
                           backend='reference')
        out = out + back_to_map(y, k, height, width)
    return out


def branch_explicit(f, w):
    """Eq. 7-8 for one modality: y = Norm(SS2D(SiLU(DWConv(x)))), z = SiLU(z) with
    [x, z] = Linear(LN(F)). f: (B, C, H, W) -> y, z: (B, H, W, D)."""
    d_inner = w['conv_w'].shape[0]
    n = layer_norm(f.permute(0, 2, 3, 1), w['norm_w'], w['norm_b'])
    x = n @ w['in_proj'][:d_inner].T
    z = n @ w['in_proj'][d_inner:].T
    x = F.conv2d(x.permute(0, 3, 1, 2), w['conv_w'], w['conv_b'],
                 padding=w['conv_w'].shape[-1] // 2, groups=d_inner)
    y = ss2d_explicit(silu(x), w)
    y = layer_norm(y.permute(0, 2, 3, 1), w['out_norm_w'], w['out_norm_b'])
    return y, silu(z)


def dssf_explicit(dssf, f_rgb, f_ir, ir_to_rgb=True, rgb_to_ir=True):
    """One DSSF step, Eq. 7-11, from the module's weights."""
    w_r, w_i = dssf_weights(dssf, 0), dssf_weights(dssf, 1)
    y_r, z_r = branch_explicit(f_rgb, w_r)
    y_i, z_i = branch_explicit(f_ir, w_i)
    mixed_r = y_r * z_r + (z_r * y_i if ir_to_rgb else 0)  # Eq. 9
    mixed_i = y_i * z_i + (z_i * y_r if rgb_to_ir else 0)  # Eq. 10
    out_r = f_rgb + (mixed_r @ w_r['out_proj'].T).permute(0, 3, 1, 2)  # Eq. 11
    out_i = f_ir + (mixed_i @ w_i['out_proj'].T).permute(0, 3, 1, 2)
    return out_r, out_i


def randomize_(module, scale=0.3, seed=0):
    """Random values in every parameter, so that no path is an identity by initialisation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    return module


CROSS_TERMS = [(True, True), (False, True), (True, False), (False, False)]


@pytest.mark.parametrize('share_weights', [False, True], ids=['separate', 'shared'])
@pytest.mark.parametrize('ir_to_rgb,rgb_to_ir', CROSS_TERMS,
                         ids=['both', 'no-ir2rgb', 'no-rgb2ir', 'none'])
def test_dssf_matches_eq_7_to_11(ir_to_rgb, rgb_to_ir, share_weights):
    torch.manual_seed(0)
    dssf = randomize_(DSSF(8, SSM, ir_to_rgb=ir_to_rgb, rgb_to_ir=rgb_to_ir,
                           share_weights=share_weights, ssm_ratio=1.5))
    f_r, f_i = torch.randn(2, 8, 3, 5), torch.randn(2, 8, 3, 5)
    with torch.no_grad():
        out = dssf(f_r, f_i)
        expected = dssf_explicit(dssf, f_r, f_i, ir_to_rgb, rgb_to_ir)
        full = dssf_explicit(dssf, f_r, f_i)
    for got, want in zip(out, expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    # each switched-off cross term changes its own modality's update, and only that one
    for switched_off, got, with_term in zip((not ir_to_rgb, not rgb_to_ir), out, full):
        assert torch.allclose(got, with_term, atol=1e-4) != switched_off


@pytest.mark.parametrize('device', ['cpu', pytest.param('cuda', marks=pytest.mark.cuda)])
def test_dssf_under_bf16_autocast_matches_eq_7_to_11_with_16_bit_gates(device):
    """Under bf16 autocast the norms hand bf16 maps on: the gated product y * z reaches the
    output projection in bfloat16, and the step still follows the float32 equations within
    bfloat16's rounding. Only the CUDA case tells the norms from nn.LayerNorm (CUDA autocast
    runs that in float32, so the product would be float32; CPU autocast keeps it bf16)."""
    torch.manual_seed(0)
    ssm = dict(SSM, backend='auto' if device == 'cuda' else 'torch')
    dssf = randomize_(DSSF(8, ssm, ssm_ratio=1.5)).to(device)
    f_r, f_i = torch.randn(2, 8, 5, 6, device=device), torch.randn(2, 8, 5, 6, device=device)
    gated = []
    hooks = [proj.register_forward_pre_hook(lambda _, args: gated.append(args[0].dtype))
             for proj in dssf.out_projs]
    with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16):
        out = dssf(f_r, f_i)
    for hook in hooks:
        hook.remove()
    assert gated == [torch.bfloat16] * 2
    with torch.no_grad():
        expected = dssf_explicit(dssf.cpu(), f_r.cpu(), f_i.cpu())
    for got, want in zip(out, expected):
        torch.testing.assert_close(got.float().cpu(), want, rtol=0, atol=3e-2 * want.abs().max())


@pytest.mark.parametrize('layout', ['channel_major', 'channels_last'])
@pytest.mark.parametrize('share_weights', [False, True], ids=['separate', 'shared'])
def test_dssf_scans_both_branches_in_one_call(share_weights, layout, monkeypatch):
    """Where the scan operators group (on CUDA with Triton; forced here on CPU), both
    branches of a DSSF step go through one grouped SS2D scan (in either layout of the
    scanned maps), with the output and the gradients of two separate scans; the CPU
    backends scan them one by one."""
    from fusion_mamba.models.layers import ss2d
    torch.manual_seed(0)
    dssf = randomize_(DSSF(8, SSM, share_weights=share_weights, ssm_ratio=1.5))
    branch = dssf.branches[0].ssm
    assert not branch.groups_with(branch, torch.device('cpu'))
    assert branch.same_configuration(dssf.branches[-1].ssm)
    monkeypatch.setattr(ss2d.SS2D, 'groups_with',
                        lambda self, other, device: self.same_configuration(other))
    monkeypatch.setattr(ss2d.SS2D, 'prefers_channels_last',
                        lambda *args, **kwargs: layout == 'channels_last')
    calls = []
    scan = ss2d.ss2d_selective_scan
    monkeypatch.setattr(ss2d, 'ss2d_selective_scan',
                        lambda x, *args, **kwargs: calls.append(x) or scan(x, *args, **kwargs))
    f = [torch.randn(2, 8, 3, 5, requires_grad=True) for _ in range(2)]

    def run():
        dssf.zero_grad()
        out = dssf(*f)
        grads = torch.autograd.grad(sum((o * o).sum() for o in out), f + list(dssf.parameters()))
        return out, grads

    out, grads = run()
    assert [tuple(x.shape) for x in calls] == [(2, 24, 3, 5)]  # 2 x 12 channels
    assert (calls[0].stride(1) == 1) == (layout == 'channels_last')
    monkeypatch.setattr(ss2d.SS2D, 'groups_with', lambda self, other, device: False)
    calls.clear()
    separate, separate_grads = run()
    assert len(calls) == 2
    for got, want in zip(out + grads, separate + separate_grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def saved_bytes(fn):
    """Bytes of the distinct storages autograd keeps for the backward of ``fn()``."""
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        fn()
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in saved}
    return sum(storages.values())


def test_grouped_dssf_keeps_the_scanned_maps_once(monkeypatch):
    """A grouped DSSF step (channels-last, as on CUDA) keeps no more for its backward than
    the two branches' separate steps, to within less than one scanned map: the projected
    maps are concatenated once, before the convolution, and the token projections read
    slices of the concatenation that the scan keeps."""
    from fusion_mamba.models.layers import ss2d
    monkeypatch.setattr(ss2d.SS2D, 'prefers_channels_last', lambda *args, **kwargs: True)
    dssf = DSSF(8, SSM)
    f = [torch.randn(2, 8, 6, 5, requires_grad=True) for _ in range(2)]
    one_map = 2 * dssf.branches[0].d_inner * 6 * 5 * 4  # (B, D, H, W) float32
    separate = saved_bytes(lambda: dssf(*f))
    monkeypatch.setattr(ss2d.SS2D, 'groups_with',
                        lambda self, other, device: self.same_configuration(other))
    grouped = saved_bytes(lambda: dssf(*f))
    assert grouped < separate + one_map


@pytest.mark.parametrize('path', ['sscs', 'dssf-only', 'grouped'])
def test_fusion_modules_pass_channels_last_maps_without_copies(path, monkeypatch):
    """The FMB's modules hand each other channels-last maps: SSCS and each VSS / DSSF
    module return them (from channel-major inputs too), the next module's norms read them in
    place (the same storage, contiguous rows of C channels), and the block returns its
    inputs' layout for the neck. On the grouped path (as on CUDA) each DSSF step runs one
    convolution, over both branches' maps."""
    from fusion_mamba.models.layers import ss2d
    if path == 'grouped':
        monkeypatch.setattr(ss2d.SS2D, 'groups_with',
                            lambda self, other, device: self.same_configuration(other))
        monkeypatch.setattr(ss2d.SS2D, 'prefers_channels_last', lambda *args, **kwargs: True)
    torch.manual_seed(0)
    block = FusionMambaBlock(8, num_dssf=2, ssm_cfg=SSM, use_sscs=path != 'dssf-only')
    norm_inputs = []
    for dssf in block.dssf:
        for branch in dssf.branches:
            branch.norm.register_forward_pre_hook(lambda m, args: norm_inputs.append(args[0]))
    f_r, f_i = torch.randn(2, 8, 4, 3), torch.randn(2, 8, 4, 3)
    maps = [f_r, f_i]
    if block.use_sscs:
        swapped = channel_swap(f_r, f_i)
        maps = [block.vss_rgb(swapped[0]), block.vss_ir(swapped[1])]
        for t in (*swapped, *maps):
            assert t.is_contiguous(memory_format=torch.channels_last)
    for dssf in block.dssf:
        norm_inputs.clear()
        with OpNames() as ops:
            out = dssf(*maps)
        if maps[0].is_contiguous(memory_format=torch.channels_last):
            for t, n in zip(maps, norm_inputs):
                assert n.is_contiguous() and n.data_ptr() == t.data_ptr()
        assert ops.names.count('aten::convolution') == (1 if path == 'grouped' else 2)
        maps = out
        assert all(t.is_contiguous(memory_format=torch.channels_last) for t in maps)
    assert all(t.is_contiguous() for t in block(f_r, f_i))


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16], ids=str)
def test_token_parameters_of_channels_last_half_maps(dtype):
    """Channels-last 16-bit maps (as SS2D makes them on CUDA) give delta in the maps' dtype
    and B / C in float32 with each token's states contiguous (the sequential kernels then
    convert none per token), equal to the 16-bit projection computed explicitly; B / C's
    gradients reach the projection weight."""
    from fusion_mamba.models.layers.ss2d import SS2D
    torch.manual_seed(0)
    ss2d = SS2D(8, d_state=4, dt_rank=2, backend='torch')
    x = torch.randn(2, 8, 3, 5).to(dtype).to(memory_format=torch.channels_last)
    delta, B, C = ss2d.token_parameters(x, ss2d.x_proj_weight, ss2d.dt_proj_weight)
    assert delta.dtype == dtype and B.dtype == C.dtype == torch.float32
    assert B.shape == C.shape == (2, 4, 4, 3, 5) and B.stride(2) == C.stride(2) == 1
    w = ss2d.x_proj_weight.detach().to(dtype)  # (K, R + 2N, D)
    proj = torch.einsum('krd,bdhw->bkrhw', w.float(), x.float()).to(dtype)
    torch.testing.assert_close(B, proj[:, :, 2:6].float(), rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(C, proj[:, :, 6:].float(), rtol=1e-2, atol=1e-2)
    (B.sum() + C.sum()).backward()
    assert ss2d.x_proj_weight.grad[:, 2:].abs().sum() > 0


@pytest.mark.parametrize('use_sscs', [False, True], ids=['dssf-only', 'sscs+dssf'])
def test_fusion_mamba_block_matches_eq_12(use_sscs):
    """F^ = F + DSSF^N(T) (Eq. 12) with T the channel-swapped maps through the VSS blocks
    (SSCS, Eq. 5-6) or the inputs themselves, and P = F^_R + F^_IR."""
    torch.manual_seed(0)
    block = randomize_(FusionMambaBlock(8, num_dssf=2, use_sscs=use_sscs, ssm_cfg=SSM))
    f_r, f_i = torch.randn(1, 8, 4, 3), torch.randn(1, 8, 4, 3)
    with torch.no_grad():
        fused, rgb, ir = block(f_r, f_i)
        t_r, t_i = f_r, f_i
        if use_sscs:
            groups_r, groups_i = f_r.chunk(4, dim=1), f_i.chunk(4, dim=1)
            t_r = torch.cat([groups_r[0], groups_i[1], groups_r[2], groups_i[3]], dim=1)
            t_i = torch.cat([groups_i[0], groups_r[1], groups_i[2], groups_r[3]], dim=1)
            t_r, t_i = block.vss_rgb(t_r), block.vss_ir(t_i)
        for dssf in block.dssf:
            t_r, t_i = dssf_explicit(dssf, t_r, t_i)
    torch.testing.assert_close(rgb, f_r + t_r, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ir, f_i + t_i, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fused, f_r + t_r + f_i + t_i, rtol=1e-4, atol=1e-4)


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def test_channel_swap_exact_groups():
    r = torch.arange(8.).view(1, 8, 1, 1)
    i = 100 + torch.arange(8.).view(1, 8, 1, 1)
    t_r, t_i = channel_swap(r, i)
    assert t_r.flatten().tolist() == [0, 1, 102, 103, 4, 5, 106, 107]
    assert t_i.flatten().tolist() == [100, 101, 2, 3, 104, 105, 6, 7]


@pytest.mark.parametrize('width', [6, 10])
def test_width_not_divisible_by_4_is_refused(width):
    with pytest.raises(ValueError, match=rf'at P4.*width {width}.*divisible by 4'):
        FusionMambaBlock(width, stage_name='P4', ssm_cfg=SSM)
    FusionMambaBlock(width, stage_name='P4', use_sscs=False, num_dssf=1, ssm_cfg=SSM)


def test_forward_backward_shapes_and_gradients():
    torch.manual_seed(0)
    block = FusionMambaBlock(8, num_dssf=2, ssm_cfg=SSM)
    f_r = torch.randn(2, 8, 5, 7, requires_grad=True)
    f_i = torch.randn(2, 8, 5, 7, requires_grad=True)
    fused, r, i = block(f_r, f_i)
    assert fused.shape == r.shape == i.shape == (2, 8, 5, 7)
    fused.sum().backward()
    assert f_r.grad.abs().sum() > 0 and f_i.grad.abs().sum() > 0
    assert all(p.grad is not None for p in block.parameters())


def test_ablation_switches_change_parameters_as_stated():
    full = FusionMambaBlock(8, num_dssf=2, ssm_cfg=SSM)
    no_sscs = FusionMambaBlock(8, num_dssf=2, use_sscs=False, ssm_cfg=SSM)
    sscs_only = FusionMambaBlock(8, num_dssf=0, ssm_cfg=SSM)
    four = FusionMambaBlock(8, num_dssf=4, ssm_cfg=SSM)
    shared = FusionMambaBlock(8, num_dssf=2, share_weights=True, ssm_cfg=SSM)
    one_dssf = num_params(DSSF(8, SSM))
    assert num_params(full) == num_params(sscs_only) + 2 * one_dssf
    assert num_params(four) == num_params(full) + 2 * one_dssf
    assert num_params(no_sscs) == 2 * one_dssf
    assert num_params(shared) * 2 == num_params(full)
    cross_off = FusionMambaBlock(8, num_dssf=2, ir_to_rgb=False, ssm_cfg=SSM)
    assert num_params(cross_off) == num_params(full)  # Eq. 9/10 terms have no weights
    d_state_8 = FusionMambaBlock(8, num_dssf=2, ssm_cfg=dict(SSM, d_state=8))
    assert num_params(d_state_8) > num_params(full)
    ratio_1 = FusionMambaBlock(8, num_dssf=2, ssm_ratio=1.0, ssm_cfg=SSM)
    assert num_params(ratio_1) < num_params(full)


@pytest.mark.parametrize('ir_to_rgb,rgb_to_ir', [(False, True), (True, False)])
def test_dssf_cross_terms_route_information_as_stated(ir_to_rgb, rgb_to_ir):
    """Without the IR->RGB term the RGB update cannot see IR (and vice versa)."""
    torch.manual_seed(0)
    dssf = DSSF(8, SSM, ir_to_rgb=ir_to_rgb, rgb_to_ir=rgb_to_ir)
    f_r = torch.randn(1, 8, 4, 4, requires_grad=True)
    f_i = torch.randn(1, 8, 4, 4, requires_grad=True)
    out_r, out_i = dssf(f_r, f_i)
    g_r_from_i, = torch.autograd.grad(out_r.sum(), f_i, retain_graph=True, allow_unused=True)
    g_i_from_r, = torch.autograd.grad(out_i.sum(), f_r, allow_unused=True)
    # ``None``: the output does not depend on the other modality at all.
    assert (g_r_from_i is not None and bool(g_r_from_i.abs().sum() > 0)) == ir_to_rgb
    assert (g_i_from_r is not None and bool(g_i_from_r.abs().sum() > 0)) == rgb_to_ir


def test_shared_weights_treat_modalities_symmetrically():
    """With shared weights and no channel swap the block is symmetric in its inputs."""
    torch.manual_seed(0)
    block = FusionMambaBlock(8, num_dssf=1, use_sscs=False, share_weights=True,
                             ssm_cfg=SSM).eval()
    a, b = torch.randn(1, 8, 3, 5), torch.randn(1, 8, 3, 5)
    _, r_ab, i_ab = block(a, b)
    _, r_ba, i_ba = block(b, a)
    torch.testing.assert_close(r_ab, i_ba)
    torch.testing.assert_close(i_ab, r_ba)


def activation_mib_after_forward(block, inputs):
    """Activation memory autograd holds at the end of ``block``'s forward (torch's
    MemTracker, checkpointed modules included), and the output."""
    from torch.distributed._tools.mem_tracker import MemTracker
    tracker = MemTracker()
    tracker.track_external(block)
    with tracker:
        out = block(*inputs)[0]
        current = tracker.get_tracker_snapshot('current')[inputs[0].device]
    return {k.value: v for k, v in current.items() if hasattr(k, 'value')}['Activation'], out


@pytest.mark.parametrize('device', ['cpu', pytest.param('cuda', marks=pytest.mark.cuda)])
@pytest.mark.parametrize('with_cp', [True, 'selective'])
def test_gradient_checkpointing_matches(with_cp, device, request):
    """Checkpointed blocks give the plain block's gradients and hold less memory after the
    forward. ``True`` runs every scan's forward again during the backward and keeps the
    least; ``'selective'`` keeps the scans' outputs and runs none of them again (the cpp
    scan operator on CPU, the Triton one on CUDA)."""
    if device == 'cpu':
        request.getfixturevalue('needs_cpp')
    backend, op = ('cpp', 'cpu_scan') if device == 'cpu' else ('triton', 'triton_scan')
    torch.manual_seed(0)
    block = FusionMambaBlock(8, num_dssf=2, ssm_cfg=dict(SSM, backend=backend)).to(device)
    block.train()
    x = (torch.randn(2, 8, 12, 10, device=device, requires_grad=True),
         torch.randn(2, 8, 12, 10, device=device))
    # scan calls: one VSS per modality; on CUDA one for both branches of each DSSF
    scans = 2 + 2 * (2 if device == 'cpu' else 1)
    held = {}
    for mode in (False, with_cp) if with_cp is True else (False, True, with_cp):
        block.with_cp = mode
        block.zero_grad()
        held[mode], out = activation_mib_after_forward(block, x)
        with OpNames() as backward:
            out.sum().backward()
        if mode is False:
            grads = [p.grad.clone() for p in block.parameters()]
            x_grad, x[0].grad = x[0].grad, None
            continue
        for g, p in zip(grads, block.parameters()):
            torch.testing.assert_close(p.grad, g)
        torch.testing.assert_close(x[0].grad, x_grad)
        x[0].grad = None
        assert backward.names.count(f'fusion_mamba::{op}_backward') == scans
        rerun = backward.names.count(f'fusion_mamba::{op}_forward')
        assert rerun == (scans if mode is True else 0), backward.names
    assert held[True] < held[False]
    if with_cp == 'selective':
        assert held[True] < held['selective'] < held[False]


def test_with_cp_must_be_a_mode():
    with pytest.raises(ValueError, match='FusionMambaBlock at P3: with_cp must be False, True '
                                         "or \"selective\", got 'yes'"):
        FusionMambaBlock(8, stage_name='P3', num_dssf=1, ssm_cfg=SSM, with_cp='yes')


def test_simple_fusions():
    r, i = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
    fused, r_out, i_out = AddFusion(8)(r, i)
    torch.testing.assert_close(fused, r + i)
    assert r_out is r and i_out is i
    fused, _, _ = ConcatConvFusion(8)(r, i)
    assert fused.shape == (2, 8, 4, 4)
    assert num_params(AddFusion(8)) == 0
