"""The ultralytics -> fusion_mamba YOLOv8 converter, on a synthetic YOLOv8n state dict built
from the rules of ultralytics' yolov8.yaml (key names and shapes as in yolov8n.pt), checked
against a functional re-implementation of the ultralytics forward pass."""
import importlib.util
import math
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fusion_mamba.models.backbones.yolov8_csp_darknet import YOLOv8CSPDarknet
from fusion_mamba.models.dense_heads.yolov8_head import YOLOv8Head
from fusion_mamba.models.necks.yolov8_pafpn import YOLOv8PAFPN

CONVERTER = Path(__file__).resolve().parents[3] / 'tools' / 'model_converters' / \
    'yolov8_to_fusion_mamba.py'
spec = importlib.util.spec_from_file_location('yolov8_to_fusion_mamba', CONVERTER)
converter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(converter)

# yolov8.yaml: (from, repeats, module, args) of the P5 model, and the n scale
YAML = [(-1, 1, 'Conv', (64, 3, 2)), (-1, 1, 'Conv', (128, 3, 2)), (-1, 3, 'C2f', (128, True)),
        (-1, 1, 'Conv', (256, 3, 2)), (-1, 6, 'C2f', (256, True)),
        (-1, 1, 'Conv', (512, 3, 2)), (-1, 6, 'C2f', (512, True)),
        (-1, 1, 'Conv', (1024, 3, 2)), (-1, 3, 'C2f', (1024, True)),
        (-1, 1, 'SPPF', (1024, 5)),
        (-1, 1, 'Upsample', ()), ((-1, 6), 1, 'Concat', ()), (-1, 3, 'C2f', (512, False)),
        (-1, 1, 'Upsample', ()), ((-1, 4), 1, 'Concat', ()), (-1, 3, 'C2f', (256, False)),
        (-1, 1, 'Conv', (256, 3, 2)), ((-1, 12), 1, 'Concat', ()), (-1, 3, 'C2f', (512, False)),
        (-1, 1, 'Conv', (512, 3, 2)), ((-1, 9), 1, 'Concat', ()), (-1, 3, 'C2f', (1024, False)),
        ((15, 18, 21), 1, 'Detect', ())]
DEPTH, WIDTH, MAX_CHANNELS, NUM_CLASSES, REG_MAX = 0.33, 0.25, 1024, 80, 16


def _ultralytics_yolov8n_state(seed=0):
    """State dict of an ultralytics YOLOv8n (random values), built from the yaml rules.

    Returns the state dict and, per layer, ``(module, from, repeats, shortcut)``.
    """
    gen = torch.Generator().manual_seed(seed)
    state, layers, channels = OrderedDict(), [], []

    def conv(prefix, c1, c2, k):
        state[prefix + 'conv.weight'] = torch.randn(c2, c1, k, k, generator=gen) / math.sqrt(
            c1 * k * k)
        state[prefix + 'bn.weight'] = torch.rand(c2, generator=gen) + 0.5
        state[prefix + 'bn.bias'] = torch.randn(c2, generator=gen) * 0.1
        state[prefix + 'bn.running_mean'] = torch.randn(c2, generator=gen) * 0.1
        state[prefix + 'bn.running_var'] = torch.rand(c2, generator=gen) + 0.5
        state[prefix + 'bn.num_batches_tracked'] = torch.tensor(100)

    def width(c):
        return int(math.ceil(min(c, MAX_CHANNELS) * WIDTH / 8) * 8)

    for i, (src, repeats, module, args) in enumerate(YAML):
        p = f'model.{i}.'
        if i == 0:
            c1 = 3
        elif src == -1:
            c1 = channels[-1]
        else:
            c1 = sum(channels[j] for j in src) if module == 'Concat' else None
        n = max(round(repeats * DEPTH), 1) if repeats > 1 else repeats
        if module == 'Conv':
            c2 = width(args[0])
            conv(p, c1, c2, args[1])
        elif module == 'C2f':
            c2, c = width(args[0]), int(width(args[0]) * 0.5)
            conv(p + 'cv1.', c1, 2 * c, 1)
            for j in range(n):
                conv(f'{p}m.{j}.cv1.', c, c, 3)
                conv(f'{p}m.{j}.cv2.', c, c, 3)
            conv(p + 'cv2.', (2 + n) * c, c2, 1)
        elif module == 'SPPF':
            c2, c_ = width(args[0]), c1 // 2
            conv(p + 'cv1.', c1, c_, 1)
            conv(p + 'cv2.', 4 * c_, c2, 1)
        elif module == 'Detect':
            ch = [channels[j] for j in src]
            c2, c3 = max(16, ch[0] // 4, REG_MAX * 4), max(ch[0], min(NUM_CLASSES, 100))
            for level, cx in enumerate(ch):
                for branch, mid, out in (('cv2', c2, 4 * REG_MAX), ('cv3', c3, NUM_CLASSES)):
                    conv(f'{p}{branch}.{level}.0.', cx, mid, 3)
                    conv(f'{p}{branch}.{level}.1.', mid, mid, 3)
                    state[f'{p}{branch}.{level}.2.weight'] = torch.randn(
                        out, mid, 1, 1, generator=gen) / math.sqrt(mid)
                    state[f'{p}{branch}.{level}.2.bias'] = torch.randn(out, generator=gen)
            state[p + 'dfl.conv.weight'] = torch.arange(REG_MAX, dtype=torch.float).view(
                1, REG_MAX, 1, 1)
            c2 = None
        else:  # Upsample, Concat
            c2 = c1
        channels.append(c2)
        layers.append((module, src, n, args[1] if module == 'C2f' else None))
    return state, layers


def _reference_forward(state, layers, x):
    """The ultralytics YOLOv8 forward pass (eval mode) written directly from its modules;
    returns the per-level raw Detect outputs ``cat(box_dist, cls)``."""

    def conv(p, x, stride=1):
        w = state[p + 'conv.weight']
        y = F.conv2d(x, w, None, stride, w.shape[-1] // 2)
        y = F.batch_norm(y, state[p + 'bn.running_mean'], state[p + 'bn.running_var'],
                         state[p + 'bn.weight'], state[p + 'bn.bias'], False, 0.0, 1e-3)
        return F.silu(y)

    outputs = []
    for i, (module, src, n, shortcut) in enumerate(layers):
        p = f'model.{i}.'
        inp = x if i == 0 else (outputs[-1] if src == -1 else None)
        if module == 'Conv':
            y = conv(p, inp, 2)
        elif module == 'C2f':
            ys = list(conv(p + 'cv1.', inp).chunk(2, 1))
            for j in range(n):
                z = conv(f'{p}m.{j}.cv2.', conv(f'{p}m.{j}.cv1.', ys[-1]))
                ys.append(ys[-1] + z if shortcut else z)
            y = conv(p + 'cv2.', torch.cat(ys, 1))
        elif module == 'SPPF':
            ys = [conv(p + 'cv1.', inp)]
            for _ in range(3):
                ys.append(F.max_pool2d(ys[-1], 5, 1, 2))
            y = conv(p + 'cv2.', torch.cat(ys, 1))
        elif module == 'Upsample':
            y = F.interpolate(inp, scale_factor=2, mode='nearest')
        elif module == 'Concat':
            y = torch.cat([outputs[j] for j in src], 1)
        else:  # Detect
            y = []
            for level, j in enumerate(src):
                branches = []
                for branch in ('cv2', 'cv3'):
                    b = f'{p}{branch}.{level}.'
                    h = conv(b + '1.', conv(b + '0.', outputs[j]))
                    branches.append(F.conv2d(h, state[b + '2.weight'], state[b + '2.bias']))
                y.append(torch.cat(branches, 1))
        outputs.append(y)
    return outputs[-1]


class _Detector(nn.Module):
    """backbone / neck / bbox_head of our YOLOv8n, keyed like a detector's state dict."""

    def __init__(self, num_classes=NUM_CLASSES):
        super().__init__()
        self.backbone = YOLOv8CSPDarknet(scale='n')
        channels = self.backbone.out_channels
        self.neck = YOLOv8PAFPN(channels, channels, deepen_factor=DEPTH)
        self.bbox_head = YOLOv8Head(num_classes, channels)

    def forward(self, x):
        return self.bbox_head(self.neck(self.backbone(x)))


@pytest.fixture(scope='module')
def source():
    return _ultralytics_yolov8n_state()


def test_mapping_fills_every_parameter_of_yolov8n(source):
    state, _ = source
    model = _Detector()
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == dict(converter.yolov8_model_shapes('n', NUM_CLASSES))
    converted, report = converter.convert(state, shapes)
    assert report['unfilled'] == [] and report['mismatched'] == []
    assert [k for k, _ in report['unmapped']] == ['model.22.dfl.conv.weight']
    assert len(converted) == len(state) - 1
    model.load_state_dict(converted, strict=True)


def test_converted_model_reproduces_the_ultralytics_forward(source):
    state, layers = source
    model = _Detector()
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    model.load_state_dict(converter.convert(state, shapes)[0])
    model.eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        cls_scores, dist_preds = model(x)
        expected = _reference_forward(state, layers, x)
    for cls, dist, ref in zip(cls_scores, dist_preds, expected):
        torch.testing.assert_close(torch.cat([dist, cls], 1), ref, rtol=1e-4, atol=1e-4)


def test_class_mismatch_and_dual_stream_layout(source):
    state, _ = source
    prefixes = ('backbone.rgb_stream.', 'backbone.ir_stream.')
    shapes = converter.yolov8_model_shapes('n', 3, backbone_prefixes=prefixes)
    converted, report = converter.convert(state, shapes, backbone_prefixes=prefixes)
    # YOLOv8n's class branch is max(64, min(num_classes, 100)) wide: 80 in the source, 64
    # here, so the whole branch (but its BN counters) differs; the box branch is copied
    cls_branch = {k for k in shapes if '.cls_preds.' in k and 'num_batches' not in k}
    assert {t for _, t, _, _ in report['mismatched']} == cls_branch
    assert set(report['unfilled']) == cls_branch
    for prefix in prefixes:
        torch.testing.assert_close(converted[prefix + 'stem.conv.weight'],
                                   state['model.0.conv.weight'])
    assert not any(k.startswith('backbone.stem') for k in converted)


def test_unknown_target_keys_are_reported(source):
    state, _ = source
    shapes = converter.yolov8_model_shapes('n', NUM_CLASSES, head_prefix='head.')
    _, report = converter.convert(state, shapes)  # converting for 'bbox_head.'
    assert any('no bbox_head.' in reason for _, reason in report['unmapped'])
    assert all(k.startswith('head.') for k in report['unfilled']) and report['unfilled']


def test_cli_on_a_state_dict_file(source, tmp_path, capsys):
    state, _ = source
    src = tmp_path / 'yolov8n_state.pt'
    torch.save(OrderedDict((k, v.half() if v.is_floating_point() else v)
                           for k, v in state.items()), src)
    dst = tmp_path / 'out' / 'yolov8n_mm.pth'
    report = converter.main([str(src), str(dst), '--dual-stream'])
    assert report['unfilled'] == [] and len(report['unmapped']) == 1
    checkpoint = torch.load(dst, map_location='cpu', weights_only=True)
    assert checkpoint['state_dict']['backbone.ir_stream.stem.conv.weight'].dtype == torch.float32
    assert '1 source keys not mapped' in capsys.readouterr().out


def _fake_ultralytics_checkpoint(path):
    """Pickle a model whose classes live in a (temporary) ``ultralytics`` package."""
    names = ['ultralytics', 'ultralytics.nn', 'ultralytics.nn.tasks']
    fakes = {name: types.ModuleType(name) for name in names}
    tasks = fakes['ultralytics.nn.tasks']

    class Conv(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3, bias=False)
            self.bn = nn.BatchNorm2d(16)

    class DetectionModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.Sequential(Conv())
            self.names = {0: 'person'}

    for cls in (Conv, DetectionModel):
        cls.__module__, cls.__qualname__ = tasks.__name__, cls.__name__
        setattr(tasks, cls.__name__, cls)
    sys.modules.update(fakes)
    try:
        model = DetectionModel().half()
        torch.save(dict(model=model, ema=None, train_args=dict(epochs=1)), path)
    finally:
        for name in names:
            del sys.modules[name]
    return model.state_dict()


def test_loads_pickled_ultralytics_model_without_ultralytics(tmp_path):
    path = tmp_path / 'fake_yolov8.pt'
    expected = _fake_ultralytics_checkpoint(path)
    assert 'ultralytics' not in sys.modules
    state = converter.load_ultralytics_state_dict(str(path))
    assert list(state) == list(expected)
    torch.testing.assert_close(state['model.0.conv.weight'],
                               expected['model.0.conv.weight'].float())
    assert converter.map_key('model.0.conv.weight')[0] == 'backbone.stem.conv.weight'


def test_refuses_unsafe_globals(tmp_path):
    path = tmp_path / 'evil.pt'

    class Evil:
        def __reduce__(self):
            return (print, ('should not run', ))

    torch.save(dict(model=Evil()), path)
    with pytest.raises(pickle.UnpicklingError):
        converter.load_ultralytics_state_dict(str(path))


def test_cli_with_a_config(source, tmp_path, capsys):
    state, _ = source
    src = tmp_path / 'yolov8n_state.pt'
    torch.save(state, src)
    config = tmp_path / 'yolov8_n_3cls.py'
    config.write_text("""
custom_imports = dict(imports=[
    'fusion_mamba.models.backbones.yolov8_csp_darknet', 'fusion_mamba.models.necks',
    'fusion_mamba.models.dense_heads'], allow_failed_imports=False)
model = dict(
    type='SingleStageDetector',
    backbone=dict(type='YOLOv8CSPDarknet', scale='n'),
    neck=dict(type='YOLOv8PAFPN', in_channels=[256, 512, 1024],
              out_channels=[256, 512, 1024], deepen_factor=0.33, widen_factor=0.25),
    bbox_head=dict(type='YOLOv8Head', num_classes=3, in_channels=[256, 512, 1024],
                   widen_factor=0.25))
""")
    report = converter.main([str(src), str(tmp_path / 'out.pth'), '--config', str(config)])
    unfilled = set(report['unfilled'])
    assert unfilled and all('.cls_preds.' in k for k in unfilled)
    assert 'target keys not filled' in capsys.readouterr().out
