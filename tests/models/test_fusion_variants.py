"""Fusion variants: SASF (Spatial-Mamba), CMSA (S4Fusion), CFT-style transformer fusion, and
their configs in configs/fusion_mamba/variants/."""
import ast
import itertools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from dispatch_testing import OpNames
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

from fusion_mamba.models.fusion.cmsa import CMSABlock, CMSAFusion, CrossModalSS2D
from fusion_mamba.models.fusion.fusion_mamba_block import FusionMambaBlock
from fusion_mamba.models.fusion.transformer_fusion import TransformerFusion
from fusion_mamba.models.layers.sasf import SASF
from fusion_mamba.ops import selective_scan, selective_scan_states

register_all_modules()  # mmdet's modules (losses, NMS config types) for the detector configs

VARIANT_DIR = Path(__file__).resolve().parents[2] / 'configs' / 'fusion_mamba' / 'variants'
VARIANTS = sorted(VARIANT_DIR.glob('*.py'))
FUSION_TYPES = dict(fm='FusionMambaBlock', cmsa='CMSAFusion', cft='TransformerFusion')


def randomize_(module, scale=0.3, seed=0):
    """Random values in every parameter, so that no path is an identity by initialisation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    return module


# ---------------------------------------------------------------------------------------- SASF


def explicit_state_fusion(h, kernels, dilations):
    """sum_k sum_{u,v} w_k[d, u, v] h[..., clamp(i + k u), clamp(j + k v)] (replicate padding),
    written with index clamping instead of convolutions; h (B, D, N, H, W), w_k (D, 1, 3, 3)."""
    height, width = h.shape[-2:]
    out = torch.zeros_like(h)
    for weight, dilation in zip(kernels, dilations):
        for u, v in itertools.product((-1, 0, 1), repeat=2):
            rows = (torch.arange(height) + dilation * u).clamp(0, height - 1)
            cols = (torch.arange(width) + dilation * v).clamp(0, width - 1)
            tap = weight[:, 0, u + 1, v + 1].view(1, -1, 1, 1, 1)
            out = out + tap * h[..., rows, :][..., cols]
    return out


def explicit_sasf(sasf, x):
    """SASF from its equations: sequential scan states, explicit fusion, y = C . h' + D u."""
    batch, dim, height, width = x.shape
    n, r = sasf.d_state, sasf.dt_rank
    proj = torch.einsum('bdhw,cd->bchw', x, sasf.x_proj_weight[0])
    dt, B, C = proj.split([r, n, n], dim=1)
    delta = torch.einsum('brhw,dr->bdhw', dt, sasf.dt_proj_weight[0])
    h = selective_scan_states(x.flatten(2), delta.flatten(2), -torch.exp(sasf.A_log),
                              B.flatten(2), sasf.dt_proj_bias[0], delta_softplus=True,
                              backend='reference')
    h = h.reshape(batch, dim, n, height, width)
    h = explicit_state_fusion(h, sasf.fusion_kernels, sasf.dilations)
    return (h * C.unsqueeze(1)).sum(2) + sasf.D.view(1, -1, 1, 1) * x


@pytest.mark.parametrize('d_state', [1, 3])
@pytest.mark.parametrize('training', [True, False], ids=['three-kernels', 'merged'])
def test_sasf_matches_its_equations(d_state, training):
    torch.manual_seed(0)
    sasf = randomize_(SASF(6, d_state=d_state, backend='torch')).train(training)
    x = torch.randn(2, 6, 4, 7)  # H < 2 * 5 + 1: the dilation-5 taps are clamped
    with torch.no_grad():
        torch.testing.assert_close(sasf(x), explicit_sasf(sasf, x), rtol=1e-4, atol=1e-4)


def test_sasf_starts_as_a_plain_raster_scan():
    """With the initial (identity) fusion kernels SASF is Mamba's 1D scan in raster order."""
    torch.manual_seed(0)
    sasf = SASF(5, d_state=2, backend='torch')
    x = torch.randn(1, 5, 3, 4)
    n, r = sasf.d_state, sasf.dt_rank
    dt, B, C = torch.einsum('bdhw,cd->bchw', x, sasf.x_proj_weight[0]).split([r, n, n], 1)
    delta = torch.einsum('brhw,dr->bdhw', dt, sasf.dt_proj_weight[0])
    y = selective_scan(x.flatten(2), delta.flatten(2), -torch.exp(sasf.A_log), B.flatten(2),
                       C.flatten(2), sasf.D, delta_bias=sasf.dt_proj_bias[0],
                       delta_softplus=True, backend='reference')
    with torch.no_grad():
        torch.testing.assert_close(sasf(x), y.view_as(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('dilations', [(1, 3, 5), (2, ), (1, 4)], ids=str)
def test_sasf_merged_kernel_equals_dilated_kernels(dilations):
    sasf = randomize_(SASF(4, d_state=2, dilations=dilations))
    size = 2 * max(dilations) + 1
    assert sasf.merged_kernel().shape == (4, 1, size, size)
    h = torch.randn(2, 4, 2, 3, 6)
    with torch.no_grad():
        merged = sasf.fuse_states(h, merged=True)
        separate = sasf.fuse_states(h, merged=False)
    torch.testing.assert_close(merged, separate, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(separate, explicit_state_fusion(h, sasf.fusion_kernels,
                                                               dilations), rtol=1e-5, atol=1e-5)


def test_sasf_merged_kernel_follows_weight_updates(monkeypatch):
    """Eval merges the kernels, and the merged kernel is never stale: not after an optimizer
    step that follows an eval pass (a validation run mid-training), not after an EMA-style
    update through ``.data`` (no version bump, same storage), not after load_state_dict."""
    merges = []
    merged_kernel = SASF.merged_kernel
    monkeypatch.setattr(SASF, 'merged_kernel', lambda self: merges.append(1) or
                        merged_kernel(self))
    torch.manual_seed(0)
    sasf = randomize_(SASF(6, d_state=1, backend='torch'))
    x = torch.randn(1, 6, 5, 8)
    optimizer = torch.optim.SGD(sasf.parameters(), lr=1.0)

    def eval_matches_three_kernel_path():
        sasf.train()
        with torch.no_grad():
            expected = sasf(x)
        assert not merges, 'training must run the three dilated kernels'
        sasf.eval()
        with torch.no_grad():
            out = sasf(x)
        assert merges, 'eval must run the merged kernel'
        merges.clear()
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
        return out

    outs = [eval_matches_three_kernel_path()]
    sasf.train()
    sasf(x).square().mean().backward()
    merges.clear()
    optimizer.step()
    assert sasf.fusion_kernels.grad.abs().sum() > 0
    outs.append(eval_matches_three_kernel_path())
    sasf.fusion_kernels.data.mul_(0.5).add_(0.05)  # how mmengine's EMA updates its copy
    outs.append(eval_matches_three_kernel_path())
    state = randomize_(SASF(6, d_state=1), seed=1).state_dict()
    sasf.load_state_dict(state)
    outs.append(eval_matches_three_kernel_path())
    for before, after in zip(outs, outs[1:]):
        assert not torch.allclose(before, after, atol=1e-4)


def test_sasf_merges_once_per_weight_state_in_eval(monkeypatch):
    """Repeated gradient-free eval forwards reuse the merged kernel; an in-place update of
    the kernels in eval mode (version bump) or a new storage (``.data =``) rebuilds it."""
    merges = []
    merged_kernel = SASF.merged_kernel
    monkeypatch.setattr(SASF, 'merged_kernel', lambda self: merges.append(1) or
                        merged_kernel(self))
    torch.manual_seed(0)
    sasf = randomize_(SASF(6, d_state=1, backend='torch')).eval()
    x = torch.randn(1, 6, 5, 8)
    with torch.no_grad():
        first = sasf(x)
        sasf(x)
        assert len(merges) == 1
        sasf.fusion_kernels.mul_(0.5)
        halved = sasf(x)
        assert len(merges) == 2
        sasf.fusion_kernels.data = sasf.fusion_kernels.data * 2.0
        restored = sasf(x)
        assert len(merges) == 3
    assert not torch.allclose(first, halved, atol=1e-4)
    torch.testing.assert_close(restored, first, rtol=1e-5, atol=1e-5)


def test_sasf_in_fusion_mamba_block_vss_and_dssf():
    torch.manual_seed(0)
    block = FusionMambaBlock(8, num_dssf=1, ssm_cfg=dict(type='SASF', d_state=1,
                                                         backend='torch'))
    ssms = [m.ssm for m in block.modules() if hasattr(m, 'ssm')]
    assert len(ssms) == 4 and all(isinstance(m, SASF) for m in ssms)  # 2 VSS + 2 DSSF branches
    f_r = torch.randn(2, 8, 5, 6, requires_grad=True)
    f_i = torch.randn(2, 8, 5, 6, requires_grad=True)
    fused, rgb, ir = block(f_r, f_i)
    assert fused.shape == rgb.shape == ir.shape == (2, 8, 5, 6)
    fused.sum().backward()
    assert f_r.grad.abs().sum() > 0 and f_i.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())
    block.eval()
    with torch.no_grad():
        torch.testing.assert_close(block(f_r, f_i)[0], fused, rtol=1e-5, atol=1e-5)


def test_sasf_errors_name_the_parameter():
    with pytest.raises(ValueError, match='dilations'):
        SASF(4, dilations=(1, 0))
    with pytest.raises(ValueError, match=r'SASF expects \(B, 4, H, W\)'):
        SASF(4)(torch.randn(1, 3, 2, 2))


# ---------------------------------------------------------------------------------------- CMSA


def test_cmsa_forward_backward():
    torch.manual_seed(0)
    fusion = CMSAFusion(8, 'P3', num_blocks=2, d_state=4, backend='torch')
    f_r = torch.randn(2, 8, 4, 5, requires_grad=True)
    f_i = torch.randn(2, 8, 4, 5, requires_grad=True)
    fused, rgb, ir = fusion(f_r, f_i)
    assert fused.shape == rgb.shape == ir.shape == (2, 8, 4, 5)
    # the K blocks run in sequence on the (RGB, IR) pair, the fused map is their sum
    with torch.no_grad():
        r, i = f_r, f_i
        for block in fusion.blocks:
            r, i = block(r, i)
    torch.testing.assert_close(rgb, r)
    torch.testing.assert_close(ir, i)
    torch.testing.assert_close(fused, r + i)
    fused.sum().backward()
    assert f_r.grad.abs().sum() > 0 and f_i.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fusion.parameters())
    one = sum(p.numel() for p in CMSABlock(8, scan_cfg=dict(d_state=4)).parameters())
    assert sum(p.numel() for p in fusion.parameters()) == 2 * one


def test_cmsa_interleave_and_recover_are_exact():
    """With C = 0 and D = 1 the scan outputs u at every token: what comes back must be each
    modality's own map, every token at its own place, exactly (4 directions: 4 u)."""
    scan = CrossModalSS2D(3, d_state=2, backend='torch')
    with torch.no_grad():
        scan.x_proj_weight[:, :, scan.dt_rank + scan.d_state:] = 0
        scan.D.fill_(1.0)
    x_a = torch.randint(-64, 64, (2, 3, 5, 4)) / 8  # exact in float32, sums too
    x_b = torch.randint(-64, 64, (2, 3, 5, 4)) / 8
    with torch.no_grad():
        y_a, y_b = scan(x_a, x_b)
    assert torch.equal(y_a, 4 * x_a) and torch.equal(y_b, 4 * x_b)


def c_rows(scan):
    return slice(scan.dt_rank + scan.d_state, None)


@pytest.mark.parametrize('reader', [0, 1], ids=['a', 'b'])
def test_cmsa_modality_projections_only_act_at_their_tokens(reader):
    """A modality's C projection reads the shared state only at its own tokens: the other
    modality's output has exactly zero gradient w.r.t. it, but not w.r.t. that modality's
    delta / B projections (its tokens write into the state the reader reads)."""
    torch.manual_seed(0)
    scan = randomize_(CrossModalSS2D(4, d_state=3, backend='torch'), scale=0.1)
    x_a, x_b = torch.randn(1, 4, 3, 5), torch.randn(1, 4, 3, 5)
    y = scan(x_a, x_b)[reader]
    g_x, g_dt = torch.autograd.grad(y.square().sum(), (scan.x_proj_weight, scan.dt_proj_weight))
    other = 1 - reader
    assert torch.count_nonzero(g_x[other, :, c_rows(scan)]) == 0
    assert g_x[other, :, :c_rows(scan).start].abs().min() > 0  # delta and B of the writer
    assert g_dt[other].abs().sum() > 0
    assert g_x[reader].abs().sum() > 0


def test_cmsa_block_scans_ir_tokens_first():
    """S4Fusion interleaves [I_1, V_1, I_2, ...]: modality a (even tokens, weight set 0) of the
    block's scan is IR, so the RGB output ignores set 0's C projection, and vice versa."""
    torch.manual_seed(0)
    block = CMSABlock(4, scan_cfg=dict(d_state=2, backend='torch'))
    f_r, f_i = torch.randn(1, 4, 3, 4), torch.randn(1, 4, 3, 4)
    out_r, out_i = block(f_r, f_i)
    rows = c_rows(block.scan)
    g_r, = torch.autograd.grad(out_r.square().sum(), block.scan.x_proj_weight, retain_graph=True)
    g_i, = torch.autograd.grad(out_i.square().sum(), block.scan.x_proj_weight)
    assert torch.count_nonzero(g_r[0, :, rows]) == 0 and g_r[1, :, rows].abs().sum() > 0
    assert torch.count_nonzero(g_i[1, :, rows]) == 0 and g_i[0, :, rows].abs().sum() > 0


@pytest.mark.parametrize('with_cp', [True, 'selective'])
@pytest.mark.parametrize('backend', ['torch', 'cpp'])
def test_cmsa_gradient_checkpointing_matches(backend, with_cp, request):
    """Checkpointed CMSA blocks give the plain blocks' gradients; with the cpp scan operator
    the backward runs each block's scan again with ``True`` and never with ``'selective'``
    (the ``torch`` backend's scan is plain tensor operations, recomputed in both modes)."""
    if backend == 'cpp':
        request.getfixturevalue('needs_cpp')
    torch.manual_seed(0)
    fusion = CMSAFusion(4, num_blocks=2, d_state=2, backend=backend).train()
    x = (torch.randn(1, 4, 3, 3, requires_grad=True), torch.randn(1, 4, 3, 3))
    fusion(*x)[0].sum().backward()
    grads = [p.grad.clone() for p in fusion.parameters()]
    fusion.zero_grad()
    fusion.with_cp = with_cp
    out = fusion(*x)[0].sum()
    with OpNames() as backward:
        out.backward()
    for g, p in zip(grads, fusion.parameters()):
        torch.testing.assert_close(p.grad, g)
    if backend == 'cpp':
        assert backward.names.count('fusion_mamba::cpu_scan_backward') == 2
        rerun = backward.names.count('fusion_mamba::cpu_scan_forward')
        assert rerun == (2 if with_cp is True else 0), backward.names


@pytest.mark.parametrize('kwargs, match', [
    (dict(in_channels=10, ssm_ratio=1.25), r'at P4.*1\.25 \* 10 must be a positive integer'),
    (dict(in_channels=8, num_blocks=0), 'at P4: num_blocks'),
    (dict(in_channels=8, d_conv=2), 'at P4: d_conv'),
])
def test_cmsa_errors_name_stage_and_width(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CMSAFusion(stage_name='P4', **kwargs)


# --------------------------------------------------------------------------------- transformer


def test_transformer_fusion_pools_tokens_and_returns_residual_streams():
    torch.manual_seed(0)
    fusion = TransformerFusion(8, 'P3', num_layers=2, num_heads=2, pool_size=(3, 2))
    fusion.init_weights()
    seen = []
    fusion.layers[0].register_forward_hook(lambda m, args, out: seen.append(args[0].shape))
    f_r = torch.randn(2, 8, 7, 5, requires_grad=True)
    f_i = torch.randn(2, 8, 7, 5, requires_grad=True)
    fused, rgb, ir = fusion(f_r, f_i)
    assert seen == [(2, 2 * 3 * 2, 8)]  # both modalities' pooled tokens in one sequence
    assert fused.shape == rgb.shape == ir.shape == (2, 8, 7, 5)
    fused.sum().backward()
    assert f_r.grad.abs().sum() > 0 and f_i.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fusion.parameters())
    with torch.no_grad():
        assert not torch.allclose(fusion(f_r, f_i)[1], fusion(f_r, f_i)[1])  # dropout on
        fusion.eval()  # no dropout: deterministic, and as CFT's equations say
        out = fusion(f_r, f_i)
        torch.testing.assert_close(fusion(f_r, f_i)[1], out[1])
        expected = explicit_transformer_fusion(fusion, f_r, f_i)
    for got, want in zip(out, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def explicit_transformer_fusion(fusion, f_r, f_i):
    """TransformerFusion from its description (eval mode): pool each stream to the grid, RGB
    tokens then IR tokens (row-major) plus the position embedding, the module's layers and
    final norm, each half back on the grid, bilinearly resized and added to its stream."""
    height, width = f_r.shape[-2:]
    grid = fusion.pool_size
    tokens = []
    for m, f in enumerate((f_r, f_i)):
        pooled = F.adaptive_avg_pool2d(f, grid) + fusion.pos_embed[m]
        tokens.append(pooled.flatten(2).transpose(1, 2))  # (B, h * w, C)
    x = torch.cat(tokens, dim=1)
    for layer in fusion.layers:
        x = layer(x)
    x = fusion.norm(x)
    outs = []
    for f, half in zip((f_r, f_i), x.chunk(2, dim=1)):
        half = half.transpose(1, 2).unflatten(2, grid)
        outs.append(f + F.interpolate(half, size=(height, width), mode='bilinear',
                                      align_corners=False))
    return outs[0] + outs[1], outs[0], outs[1]


def test_transformer_fusion_attends_globally_across_modalities():
    """Without pooling, every RGB output token sees every IR input token (one attention over
    the concatenated sequence); the position embedding is resized to the token grid."""
    torch.manual_seed(0)
    fusion = TransformerFusion(8, num_layers=1, num_heads=4, pool_size=None,
                               pos_embed_size=(3, 3), drop=0.0, attn_drop=0.0)
    f_r = torch.randn(1, 8, 5, 6)
    f_i = torch.randn(1, 8, 5, 6, requires_grad=True)
    _, rgb, _ = fusion(f_r, f_i)
    # a random projection: the channel sum of a LayerNorm output is constant
    g, = torch.autograd.grad((rgb[0, :, 0, 0] * torch.randn(8)).sum(), f_i)
    assert g[0, :, -1, -1].abs().sum() > 0
    assert fusion.pos_embed.shape == (2, 8, 3, 3)


def test_transformer_fusion_errors_name_stage_and_width():
    with pytest.raises(ValueError, match='at P5: the width 12 must be divisible by num_heads=8'):
        TransformerFusion(12, 'P5', num_heads=8)
    with pytest.raises(ValueError, match='pool_size'):
        TransformerFusion(8, 'P5', pool_size=(8, ))


# ------------------------------------------------------------------------------------- configs


def test_every_variant_exists():
    expected = {f'{prefix}_1xb4-150e_{data}.py'
                for prefix in ('fm-yolov8_l-sasf', 'cmsa-yolov8_l', 'cft-yolov8_l')
                for data in ('llvip', 'm3fd', 'flir_aligned')}
    expected |= {f'{prefix}_1xb8-5e_demo-pairs.py'
                 for prefix in ('fm-yolov8_demo-sasf', 'cmsa-yolov8_demo', 'cft-yolov8_demo')}
    assert {p.name for p in VARIANTS} == expected


def base_of(path):
    """The ``_base_`` file a variant config names (one string)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and node.targets[0].id == '_base_':
            return (path.parent / node.value.value).resolve()
    raise AssertionError(f'{path.name} names no _base_')


@pytest.mark.parametrize('path', VARIANTS, ids=lambda p: p.name)
def test_variant_changes_only_the_fusion_and_builds(path):
    cfg = Config.fromfile(str(path)).to_dict()
    base = Config.fromfile(str(base_of(path))).to_dict()
    fusion = cfg['model']['backbone'].pop('fusion')
    base_fusion = base['model']['backbone'].pop('fusion')
    assert cfg == base, 'a variant may change the fusion only'
    assert fusion['type'] == FUSION_TYPES[path.name.split('-')[0]]
    if fusion['type'] == 'FusionMambaBlock':
        assert fusion['ssm_cfg']['type'] == 'SASF'
        assert {k: v for k, v in fusion.items() if k != 'ssm_cfg'} == {
            k: v for k, v in base_fusion.items() if k != 'ssm_cfg'}

    model_cfg = Config.fromfile(str(path)).model
    if 'demo' not in path.name:
        # the l-scale models are only built, on the meta device (no memory, no init cost)
        with torch.device('meta'):
            model = MODELS.build(model_cfg)
        assert [f.in_channels for f in model.backbone.fusions] == [256, 512, 512]
        assert all(type(f).__name__ == fusion['type'] for f in model.backbone.fusions)
        return
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).eval()
    assert all(type(f).__name__ == fusion['type'] for f in model.backbone.fusions)
    pair = dict(visible=torch.rand(1, 3, 64, 64), infrared=torch.rand(1, 3, 64, 64))
    with torch.no_grad():
        feats = model.extract_feat(pair)
        cls_scores = model.bbox_head(feats)[0]
    assert [tuple(f.shape[-2:]) for f in feats] == [(8, 8), (4, 4), (2, 2)]
    num_classes = model_cfg.bbox_head.num_classes
    assert [tuple(s.shape) for s in cls_scores] == [(1, num_classes, 8, 8),
                                                    (1, num_classes, 4, 4),
                                                    (1, num_classes, 2, 2)]
    assert all(torch.isfinite(s).all() for s in cls_scores)
