"""YOLOv8 building blocks, backbone and neck: shapes, strides, scales, freezing, gradients."""
import pytest
import torch

from fusion_mamba.models.backbones.yolov8_csp_darknet import YOLOv8CSPDarknet
from fusion_mamba.models.dense_heads.yolov8_head import YOLOv8Head
from fusion_mamba.models.layers.yolov8_layers import (C2f, SPPF, YOLOV8_SCALES, make_divisible,
                                                      make_round)
from fusion_mamba.models.necks.yolov8_pafpn import YOLOv8PAFPN

TINY = dict(deepen_factor=0.33, widen_factor=0.125)


def _grads_everywhere(module):
    return all(p.grad is not None for p in module.parameters() if p.requires_grad)


def test_scaling_rules():
    assert make_divisible(64, 0.25) == 16
    assert make_divisible(min(1024, 768), 0.75) == 576
    assert make_divisible(min(1024, 512), 1.25) == 640
    assert make_divisible(3, 1.0) == 8
    assert [make_round(n, 0.33) for n in (1, 3, 6)] == [1, 1, 2]
    assert [make_round(n, 0.67) for n in (3, 6)] == [2, 4]


@pytest.mark.parametrize('add_identity', [True, False])
def test_c2f_forward_backward(add_identity):
    layer = C2f(12, 16, num_blocks=2, add_identity=add_identity)
    x = torch.randn(2, 12, 9, 7, requires_grad=True)
    out = layer(x)
    assert out.shape == (2, 16, 9, 7)
    assert len(layer.blocks) == 2 and layer.mid_channels == 8
    assert layer.final_conv.conv.in_channels == 4 * 8
    out.mean().backward()
    assert x.grad is not None and _grads_everywhere(layer)


def test_sppf_forward_backward():
    layer = SPPF(16, 24)
    x = torch.randn(2, 16, 5, 6, requires_grad=True)
    out = layer(x)
    assert out.shape == (2, 24, 5, 6)
    assert layer.conv2.conv.in_channels == 4 * 8
    out.sum().backward()
    assert _grads_everywhere(layer)


def test_backbone_shapes_strides_and_layers():
    backbone = YOLOv8CSPDarknet(**TINY, out_indices=(0, 1, 2, 3, 4))
    assert backbone.layers == ['stem', 'stage1', 'stage2', 'stage3', 'stage4']
    assert backbone.stage_channels == [8, 16, 32, 64, 128]
    x = torch.randn(2, 3, 64, 96)
    outs = backbone(x)
    for i, (out, c) in enumerate(zip(outs, backbone.stage_channels)):
        stride = 2**(i + 1)
        assert out.shape == (2, c, 64 // stride, 96 // stride)
    # stage by stage through the named layers gives the same maps
    backbone.eval()
    y, staged = x, []
    for name in backbone.layers:
        y = getattr(backbone, name)(y)
        staged.append(y)
    for a, b in zip(backbone(x), staged):
        torch.testing.assert_close(a, b)


def test_backbone_default_out_indices_and_backward():
    backbone = YOLOv8CSPDarknet(**TINY)
    assert backbone.out_indices == (2, 3, 4) and backbone.out_channels == [32, 64, 128]
    outs = backbone(torch.randn(2, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [8, 4, 2]
    sum(o.mean() for o in outs).backward()
    assert _grads_everywhere(backbone)


@pytest.mark.parametrize('scale', sorted(YOLOV8_SCALES))
def test_backbone_scales(scale):
    expected = dict(n=[64, 128, 256], s=[128, 256, 512], m=[192, 384, 576],
                    l=[256, 512, 512], x=[320, 640, 640])
    expected_blocks = dict(n=(1, 2, 2, 1), s=(1, 2, 2, 1), m=(2, 4, 4, 2), l=(3, 6, 6, 3),
                           x=(3, 6, 6, 3))
    with torch.device('meta'):  # shapes only: no memory, no init cost
        backbone = YOLOv8CSPDarknet(scale=scale)
    assert backbone.out_channels == expected[scale]
    blocks = tuple(len(getattr(backbone, f'stage{i}')[1].blocks) for i in range(1, 5))
    assert blocks == expected_blocks[scale]


def test_backbone_explicit_factors_override_scale_and_errors():
    backbone = YOLOv8CSPDarknet(scale='n', widen_factor=0.125)
    assert (backbone.deepen_factor, backbone.widen_factor, backbone.max_channels) == (
        0.33, 0.125, 1024)
    with pytest.raises(ValueError, match='scale'):
        YOLOv8CSPDarknet(scale='q')
    with pytest.raises(ValueError, match='out_indices'):
        YOLOv8CSPDarknet(**TINY, out_indices=(5, ))
    with pytest.raises(ValueError, match='arch'):
        YOLOv8CSPDarknet(arch='P6')


def test_backbone_frozen_stages_and_norm_eval():
    backbone = YOLOv8CSPDarknet(**TINY, frozen_stages=1, norm_eval=True)
    backbone.train()
    for name in ('stem', 'stage1'):
        stage = getattr(backbone, name)
        assert not stage.training
        assert not any(p.requires_grad for p in stage.parameters())
    assert all(p.requires_grad for p in backbone.stage2.parameters())
    assert not any(m.training for m in backbone.modules()
                   if isinstance(m, torch.nn.BatchNorm2d))
    assert backbone.stage2[0].conv.training  # only BN layers are held in eval mode


def test_backbone_single_channel_input():
    backbone = YOLOv8CSPDarknet(**TINY, in_channels=1)
    assert [o.shape[1] for o in backbone(torch.randn(2, 1, 64, 64))] == [32, 64, 128]


def test_neck_shapes_and_backward():
    neck = YOLOv8PAFPN([256, 512, 1024], [256, 512, 1024], **TINY)
    assert neck.in_channels == [32, 64, 128] and neck.out_channels == [32, 64, 128]
    feats = [torch.randn(2, c, s, s, requires_grad=True)
             for c, s in zip(neck.in_channels, (8, 4, 2))]
    outs = neck(feats)
    assert [tuple(o.shape) for o in outs] == [(2, 32, 8, 8), (2, 64, 4, 4), (2, 128, 2, 2)]
    sum(o.mean() for o in outs).backward()
    assert _grads_everywhere(neck) and all(f.grad is not None for f in feats)


def test_neck_layer_channels_follow_yolov8n():
    """Channels of the C2f / conv layers 12-21 of ultralytics' yolov8n."""
    with torch.device('meta'):
        neck = YOLOv8PAFPN([256, 512, 1024], [256, 512, 1024], deepen_factor=0.33,
                           widen_factor=0.25)
    td, down, bu = neck.top_down_layers, neck.downsample_layers, neck.bottom_up_layers
    io = [(m.main_conv.conv.in_channels, m.final_conv.conv.out_channels)
          for m in (td[0], td[1], bu[0], bu[1])]
    assert io == [(256 + 128, 128), (128 + 64, 64), (64 + 128, 128), (128 + 256, 256)]
    assert [(d.conv.in_channels, d.conv.out_channels) for d in down] == [(64, 64), (128, 128)]
    assert all(len(m.blocks) == 1 and not m.blocks[0].add_identity for m in (*td, *bu))


def test_neck_rejects_wrong_inputs():
    with pytest.raises(ValueError, match='in_channels'):
        YOLOv8PAFPN([8, 16], [8, 16, 32])
    neck = YOLOv8PAFPN([8, 16, 32], [8, 16, 32], deepen_factor=0.33)
    with pytest.raises(ValueError, match='inputs'):
        neck([torch.randn(1, 8, 4, 4)])


@pytest.mark.parametrize('scale,public', [('n', 3157200), ('s', 11166560), ('m', 25902640),
                                          ('l', 43691520), ('x', 68229648)])
def test_parameter_counts_match_the_public_models(scale, public):
    """ultralytics' counts include the 16 fixed weights of its DFL conv, built in here."""
    with torch.device('meta'):
        backbone = YOLOv8CSPDarknet(scale=scale)
        channels = backbone.out_channels
        modules = (backbone, YOLOv8PAFPN(channels, channels, backbone.deepen_factor),
                   YOLOv8Head(80, channels))
    assert sum(p.numel() for m in modules for p in m.parameters()) == public - 16
