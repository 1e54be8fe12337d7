"""Dual-stream backbone over registry backbones, and the multimodal preprocessor."""
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

import fusion_mamba  # noqa: F401  registers the components

SSM = dict(type='SS2D', d_state=2, backend='torch')
CSP = dict(type='mmdet.CSPDarknet', deepen_factor=0.33, widen_factor=0.125,
           out_indices=(2, 3, 4))
CSP_CHANNELS = [32, 64, 128]


def build_backbone(stream=CSP, channels=CSP_CHANNELS, fusion=None, **kwargs):
    fusion = fusion or dict(type='FusionMambaBlock', num_dssf=1, ssm_cfg=SSM)
    return MODELS.build(dict(type='DualStreamBackbone', rgb_stream=stream, fusion=fusion,
                             in_channels=channels, stage_names=('P3', 'P4', 'P5'),
                             **kwargs))


def test_stage_by_stage_outputs_and_strides():
    backbone = build_backbone()
    assert backbone.layouts == ('layers', 'layers')
    outs = backbone(torch.randn(2, 3, 64, 96), torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 32, 8, 12), (2, 64, 4, 6), (2, 128, 2, 3)]
    sum(o.sum() for o in outs).backward()
    assert backbone.rgb_stream.stem.conv.conv.weight.grad is not None
    assert backbone.ir_stream.stem.conv.conv.weight.grad is not None


def test_streams_have_their_own_weights_and_feedback_switch():
    torch.manual_seed(0)
    fed = build_backbone().eval()
    assert fed.rgb_stream is not fed.ir_stream
    plain = build_backbone(feedback=False).eval()
    plain.load_state_dict(fed.state_dict())
    x = (torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64))
    with torch.no_grad():
        a, b = fed(*x), plain(*x)
    torch.testing.assert_close(a[0], b[0])  # P3 is fused before any feedback
    assert not torch.allclose(a[2], b[2])  # P5 sees the enhanced P3 / P4 features


def test_add_baseline_equals_sum_of_streams():
    backbone = build_backbone(fusion=dict(type='AddFusion')).eval()
    x_r, x_i = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        fused = backbone(x_r, x_i)
        ref = [r + i for r, i in zip(backbone.rgb_stream(x_r), backbone.ir_stream(x_i))]
    for f, r in zip(fused, ref):
        torch.testing.assert_close(f, r)


def test_resnet_streams_run_stage_by_stage():
    stream = dict(type='ResNet', depth=18, out_indices=(1, 2, 3), norm_eval=False)
    backbone = build_backbone(stream, [128, 256, 512], out_indices=(1, 2, 3),
                              fusion=dict(type='ConcatConvFusion'))
    assert backbone.layouts == ('res_layers', 'res_layers')
    outs = backbone(torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64))
    assert [o.shape[1:] for o in outs] == [(128, 8, 8), (256, 4, 4), (512, 2, 2)]


def test_whole_backbone_fallback_with_mmpretrain_convnext():
    stream = dict(type='mmpretrain.ConvNeXt', arch='atto', out_indices=(1, 2, 3),
                  gap_before_final_norm=False)
    backbone = build_backbone(stream, [80, 160, 320], out_indices=(1, 2, 3))
    assert backbone.layouts == ('whole', 'whole')
    outs = backbone(torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [80, 160, 320]


def test_wrong_channels_and_sizes_are_reported():
    backbone = build_backbone(channels=[32, 64, 96], fusion=dict(type='AddFusion'))
    with pytest.raises(ValueError, match='128 channels at P5, but in_channels says 96'):
        backbone(torch.randn(1, 3, 64, 64), torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match='same N, H, W'):
        backbone(torch.randn(1, 3, 64, 64), torch.randn(1, 3, 32, 64))
    with pytest.raises(ValueError, match='out_indices'):
        build_backbone(out_indices=(3, 4, 5))


def make_batch(sizes, ir_channels=3):
    visible = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in sizes]
    infrared = [torch.randint(0, 256, (ir_channels, h, w), dtype=torch.uint8)
                for h, w in sizes]
    samples = [DetDataSample(metainfo=dict(img_shape=s)) for s in sizes]
    return dict(inputs=dict(visible=visible, infrared=infrared), data_samples=samples)


def test_preprocessor_normalises_each_modality_and_pads_identically():
    pre = MODELS.build(dict(type='MultiModalDetDataPreprocessor', mean=[10, 20, 30],
                            std=[2, 2, 2], ir_mean=[100], ir_std=[50], bgr_to_rgb=True,
                            pad_size_divisor=32))
    data = make_batch([(40, 50), (33, 64)], ir_channels=1)
    out = pre(data, training=True)
    vis, ir = out['inputs']['visible'], out['inputs']['infrared']
    assert vis.shape == (2, 3, 64, 64) and ir.shape == (2, 1, 64, 64)
    raw_v, raw_i = data['inputs']['visible'][1], data['inputs']['infrared'][1]
    expected_v = (raw_v.flip(0).float() - torch.tensor([10., 20, 30]).view(3, 1, 1)) / 2
    torch.testing.assert_close(vis[1, :, :33, :64], expected_v)
    torch.testing.assert_close(ir[1, :, :33, :64], (raw_i.float() - 100) / 50)
    assert (vis[0, :, 40:] == 0).all() and (ir[0, :, 40:] == 0).all()
    assert out['data_samples'][0].batch_input_shape == (64, 64)
    assert out['data_samples'][0].pad_shape == (64, 64)


def test_preprocessor_errors():
    pre = MODELS.build(dict(type='MultiModalDetDataPreprocessor', ir_mean=[0], ir_std=[1]))
    with pytest.raises(TypeError, match='PackMultiModalDetInputs'):
        pre(dict(inputs=[torch.zeros(3, 8, 8, dtype=torch.uint8)], data_samples=None))
    bad = make_batch([(16, 16)], ir_channels=1)
    bad['inputs']['infrared'][0] = torch.zeros(1, 16, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match='sizes differ'):
        pre(bad)
    with pytest.raises(ValueError, match='3 channels but ir_mean has 1'):
        pre(make_batch([(16, 16)], ir_channels=3))
    with pytest.raises(ValueError, match='batch_augments'):
        MODELS.build(dict(type='MultiModalDetDataPreprocessor',
                          batch_augments=[dict(type='BatchSyncRandomResize')]))
