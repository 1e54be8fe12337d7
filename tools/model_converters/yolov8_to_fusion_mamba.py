"""Initialise this project's YOLOv8 / Fusion-Mamba models from ultralytics YOLOv8 weights.

The source is an ultralytics checkpoint (``yolov8n.pt`` ... ``yolov8x.pt``: a pickled model,
read here WITHOUT ultralytics installed) or a plain state dict with ultralytics' key names
(``model.0.conv.weight`` ... ``model.22.dfl.conv.weight``). The output is an mmengine
checkpoint (``{'state_dict': ..., 'meta': ...}``) for ``load_from``.

Examples::

    # single-stream YOLOv8 detector (backbone / neck / bbox_head), scale inferred
    python tools/model_converters/yolov8_to_fusion_mamba.py yolov8l.pt yolov8l_mm.pth

    # dual-stream layout: both streams get the backbone weights
    python tools/model_converters/yolov8_to_fusion_mamba.py yolov8l.pt fm_init.pth \\
        --dual-stream --num-classes 3

    # check against the exact model of a config (reports every parameter left unfilled)
    python tools/model_converters/yolov8_to_fusion_mamba.py yolov8l.pt fm_init.pth \\
        --dual-stream --config path/to/config.py

Every source key that is not mapped and every target key that is not filled is reported
(with ``--config``, or for the single-stream model built from the scale; without a config the
dual-stream target is the replicated single-stream model, so fusion modules are not listed).
The class-prediction convs of the head are copied only when the class count matches.

Only convert files you trust: unpickling can run code. The unpickler used for ultralytics
``.pt`` files resolves only torch / numpy / standard-library data types and replaces every
``ultralytics`` class by an inert ``nn.Module`` stub holding the pickled state.
"""
import _compat_pickle
import argparse
import pickle
import re
import types
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

# ultralytics yolov8.yaml (P5) layer index -> (module path in our models, layer kind)
YOLOV8_LAYERS = {
    0: ('backbone.stem', 'conv'),
    1: ('backbone.stage1.0', 'conv'),
    2: ('backbone.stage1.1', 'c2f'),
    3: ('backbone.stage2.0', 'conv'),
    4: ('backbone.stage2.1', 'c2f'),
    5: ('backbone.stage3.0', 'conv'),
    6: ('backbone.stage3.1', 'c2f'),
    7: ('backbone.stage4.0', 'conv'),
    8: ('backbone.stage4.1', 'c2f'),
    9: ('backbone.stage4.2', 'sppf'),
    12: ('neck.top_down_layers.0', 'c2f'),
    15: ('neck.top_down_layers.1', 'c2f'),
    16: ('neck.downsample_layers.0', 'conv'),
    18: ('neck.bottom_up_layers.0', 'c2f'),
    19: ('neck.downsample_layers.1', 'conv'),
    21: ('neck.bottom_up_layers.1', 'c2f'),
    22: ('bbox_head.head_module', 'detect'),
}
# layer kind -> (ultralytics sub-key pattern, our sub-key) rules
SUBKEY_RULES = {
    'conv': [(r'^(conv|bn)\.', r'\1.')],
    'c2f': [(r'^cv1\.', 'main_conv.'), (r'^cv2\.', 'final_conv.'),
            (r'^m\.(\d+)\.cv1\.', r'blocks.\1.conv1.'),
            (r'^m\.(\d+)\.cv2\.', r'blocks.\1.conv2.')],
    'sppf': [(r'^cv1\.', 'conv1.'), (r'^cv2\.', 'conv2.')],
    'detect': [(r'^cv2\.(\d+)\.', r'reg_preds.\1.'), (r'^cv3\.(\d+)\.', r'cls_preds.\1.')],
}
# stem channels of the public scales
STEM_CHANNELS_TO_SCALE = {16: 'n', 32: 's', 48: 'm', 64: 'l', 80: 'x'}
DUAL_STREAM_PREFIXES = ('backbone.rgb_stream.', 'backbone.ir_stream.')


class UltralyticsStub(nn.Module):
    """Stand-in for a pickled ultralytics class: holds the pickled ``__dict__`` so that
    ``state_dict()`` works; it cannot run."""

    def forward(self, *args, **kwargs):
        raise RuntimeError(f'{type(self).__name__} is a stub of an ultralytics class')


_STUBS: Dict[Tuple[str, str], type] = {}
_SAFE_BUILTINS = {'set', 'frozenset', 'slice', 'range', 'complex', 'bytearray', 'bytes',
                  'dict', 'list', 'tuple', 'int', 'float', 'str', 'bool', 'object'}
_SAFE_MODULE_PREFIXES = ('torch', 'collections', 'numpy', 'copyreg', '_codecs', 'pathlib',
                         'types', 'argparse', 'datetime')
_UNSAFE_TORCH_PREFIXES = ('torch.hub', 'torch.utils.cpp_extension', 'torch.jit',
                          'torch.package', 'torch.distributed', 'torch.ops')


class StubUnpickler(pickle.Unpickler):
    """Unpickler mapping ultralytics classes to :class:`UltralyticsStub` subclasses and
    refusing globals outside a small allow-list."""

    def find_class(self, module: str, name: str):
        # names of pickle protocols < 3 (torch.save uses protocol 2), e.g. __builtin__.set
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if module.split('.')[0] == 'ultralytics':
            key = (module, name)
            if key not in _STUBS:
                _STUBS[key] = type(name, (UltralyticsStub, ), {'__module__': module})
            return _STUBS[key]
        allowed = ((module == 'builtins' and name in _SAFE_BUILTINS)
                   or (module.split('.')[0] in _SAFE_MODULE_PREFIXES
                       and not module.startswith(_UNSAFE_TORCH_PREFIXES)
                       and name not in ('load', 'system', 'eval', 'exec')))
        if not allowed:
            raise pickle.UnpicklingError(f'refusing to load global {module}.{name}')
        return super().find_class(module, name)


_STUB_PICKLE = types.ModuleType('ultralytics_stub_pickle')
_STUB_PICKLE.Unpickler = StubUnpickler
_STUB_PICKLE.load = lambda file, **kwargs: StubUnpickler(file, **kwargs).load()


def _find_state_dict(obj) -> Dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint object."""
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        for key in ('ema', 'model', 'state_dict'):  # EMA weights first, as ultralytics
            if obj.get(key) is not None:
                return _find_state_dict(obj[key])
    raise ValueError(f'no state dict found in a {type(obj).__name__}')


def load_ultralytics_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Read an ultralytics ``.pt`` file or a state-dict file into float32 tensors."""
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:
        obj = torch.load(path, map_location='cpu', weights_only=False,
                         pickle_module=_STUB_PICKLE)
    return OrderedDict((k, v.float() if v.is_floating_point() else v)
                       for k, v in _find_state_dict(obj).items())


def map_key(src_key: str) -> Tuple[Optional[str], str]:
    """Our single-stream key of an ultralytics YOLOv8 key, or ``None`` and the reason."""
    match = re.match(r'^(?:model\.)?(\d+)\.(.+)$', src_key)
    if match is None:
        return None, 'not a YOLOv8 layer key'
    index, sub_key = int(match.group(1)), match.group(2)
    if index not in YOLOV8_LAYERS:
        return None, f'layer {index} is not a layer with weights of the YOLOv8 P5 model'
    path, kind = YOLOV8_LAYERS[index]
    for pattern, replacement in SUBKEY_RULES[kind]:
        if re.match(pattern, sub_key):
            return f'{path}.{re.sub(pattern, replacement, sub_key)}', ''
    if kind == 'detect' and sub_key.startswith('dfl.'):
        return None, 'fixed DFL projection (0..reg_max-1), built into YOLOv8Head'
    return None, f'unknown sub-key of a {kind} layer'


def convert(src_state: Dict[str, torch.Tensor],
            target_shapes: Dict[str, torch.Size],
            backbone_prefixes: Sequence[str] = ('backbone.', ),
            neck_prefix: str = 'neck.',
            head_prefix: str = 'bbox_head.') -> Tuple[OrderedDict, dict]:
    """Map an ultralytics YOLOv8 state dict onto a target model's keys.

    Args:
        src_state (dict): Ultralytics state dict.
        target_shapes (dict): Target ``state_dict`` key -> shape.
        backbone_prefixes (Sequence[str]): Prefix of every backbone copy (one per stream).
        neck_prefix (str): Prefix of the neck.
        head_prefix (str): Prefix of the head.

    Returns:
        tuple: the converted state dict and a report dict with ``unmapped`` (source key,
        reason), ``mismatched`` (source key, target key, source shape, target shape) and
        ``unfilled`` (target keys not filled).
    """
    prefixes = {'backbone.': tuple(backbone_prefixes), 'neck.': (neck_prefix, ),
                'bbox_head.': (head_prefix, )}
    state, unmapped, mismatched = OrderedDict(), [], []
    for src_key, value in src_state.items():
        key, reason = map_key(src_key)
        if key is None:
            unmapped.append((src_key, reason))
            continue
        part, rest = key.split('.', 1)
        for prefix in prefixes[part + '.']:
            target = prefix + rest
            if target not in target_shapes:
                unmapped.append((src_key, f'no {target} in the target model'))
            elif tuple(target_shapes[target]) != tuple(value.shape):
                mismatched.append((src_key, target, tuple(value.shape),
                                   tuple(target_shapes[target])))
            else:
                state[target] = value
    report = dict(unmapped=unmapped, mismatched=mismatched,
                  unfilled=[k for k in target_shapes if k not in state])
    return state, report


def infer_scale(src_state: Dict[str, torch.Tensor]) -> str:
    """YOLOv8 scale from the stem width."""
    stem = next((v for k, v in src_state.items()
                 if map_key(k)[0] == 'backbone.stem.conv.weight'), None)
    if stem is None or stem.shape[0] not in STEM_CHANNELS_TO_SCALE:
        raise ValueError('cannot infer the YOLOv8 scale; pass --scale or --config')
    return STEM_CHANNELS_TO_SCALE[stem.shape[0]]


def infer_num_classes(src_state: Dict[str, torch.Tensor]) -> int:
    """Class count of the source head (its first class-prediction conv)."""
    for key, value in src_state.items():
        if map_key(key)[0] == 'bbox_head.head_module.cls_preds.0.2.bias':
            return value.shape[0]
    raise ValueError('cannot infer the class count; pass --num-classes or --config')


def yolov8_model_shapes(scale: str, num_classes: int,
                        backbone_prefixes: Sequence[str] = ('backbone.', ),
                        neck_prefix: str = 'neck.',
                        head_prefix: str = 'bbox_head.') -> Dict[str, torch.Size]:
    """State-dict shapes of our single-stream YOLOv8 of a public scale, the backbone
    replicated under each prefix."""
    from fusion_mamba.models.backbones.yolov8_csp_darknet import YOLOv8CSPDarknet
    from fusion_mamba.models.dense_heads.yolov8_head import YOLOv8Head
    from fusion_mamba.models.necks.yolov8_pafpn import YOLOv8PAFPN

    backbone = YOLOv8CSPDarknet(scale=scale)
    channels = backbone.out_channels
    neck = YOLOv8PAFPN(channels, channels, deepen_factor=backbone.deepen_factor)
    head = YOLOv8Head(num_classes, channels)
    shapes = OrderedDict()
    for prefixes, module in ((backbone_prefixes, backbone), ((neck_prefix, ), neck),
                             ((head_prefix, ), head)):
        for prefix in prefixes:
            shapes.update((prefix + k, v.shape) for k, v in module.state_dict().items())
    return shapes


def config_model_shapes(config: str) -> Dict[str, torch.Size]:
    """State-dict shapes of the model of an mmengine config."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.utils import import_modules_from_strings

    cfg = Config.fromfile(config)
    register_all_modules()
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    else:
        import fusion_mamba.models  # noqa: F401  (registers this project's models)
    model = MODELS.build(cfg.model)
    return OrderedDict((k, v.shape) for k, v in model.state_dict().items())


def format_report(report: dict) -> List[str]:
    lines = [f'{len(report["unmapped"])} source keys not mapped:']
    lines += [f'  {k}: {reason}' for k, reason in report['unmapped']]
    lines.append(f'{len(report["mismatched"])} source keys with a different target shape '
                 '(e.g. class count):')
    lines += [f'  {k} -> {t}: {s} vs {d}' for k, t, s, d in report['mismatched']]
    lines.append(f'{len(report["unfilled"])} target keys not filled:')
    lines += [f'  {k}' for k in report['unfilled']]
    return lines


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='ultralytics YOLOv8 .pt file or state-dict file')
    parser.add_argument('dst', help='output mmengine checkpoint')
    parser.add_argument('--config', help='config whose model is the target (recommended)')
    parser.add_argument('--scale', choices=sorted(STEM_CHANNELS_TO_SCALE.values()),
                        help='target scale without --config (default: the source scale)')
    parser.add_argument('--num-classes', type=int,
                        help='target classes without --config (default: the source count)')
    parser.add_argument('--dual-stream', action='store_true',
                        help='give the backbone weights to both streams')
    parser.add_argument('--stream-prefixes', nargs='+', default=list(DUAL_STREAM_PREFIXES),
                        help='state-dict prefixes of the streams with --dual-stream')
    parser.add_argument('--backbone-prefix', default='backbone.',
                        help='backbone prefix without --dual-stream')
    parser.add_argument('--neck-prefix', default='neck.')
    parser.add_argument('--head-prefix', default='bbox_head.')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    src_state = load_ultralytics_state_dict(args.src)
    backbone_prefixes = args.stream_prefixes if args.dual_stream else [args.backbone_prefix]
    if args.config:
        shapes = config_model_shapes(args.config)
    else:
        scale = args.scale or infer_scale(src_state)
        num_classes = args.num_classes or infer_num_classes(src_state)
        shapes = yolov8_model_shapes(scale, num_classes, backbone_prefixes, args.neck_prefix,
                                     args.head_prefix)
    state, report = convert(src_state, shapes, backbone_prefixes, args.neck_prefix,
                            args.head_prefix)
    Path(args.dst).parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state_dict=state,
                    meta=dict(source=Path(args.src).name, converter=Path(__file__).name)),
               args.dst)
    print(f'wrote {len(state)} tensors to {args.dst}')
    print('\n'.join(format_report(report)))
    return report


if __name__ == '__main__':
    main()
