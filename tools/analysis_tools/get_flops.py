"""Parameters and GFLOPs of a paired detector, per part, with the selective scans counted.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--device cpu]
        [--out flops.json] [--cfg-options key=value ...]

The model runs in ``tensor`` mode (backbone streams, fusion blocks, neck, head; no data
preprocessing, no NMS) on one random pair of ``H x W`` (rounded up to the data
preprocessor's ``pad_size_divisor``), traced by mmengine's ``FlopAnalyzer`` (fvcore's
counter), which counts convolutions, linear layers, matmuls, einsums and norms with one
multiply-add = 1 FLOP and skips element-wise ops. The selective scans run inside custom
kernels / autograd functions that it cannot see, so forward hooks on the scan modules add
their analytic count, in the same unit (a multiply-add, a multiply, an ``exp`` or a
``softplus`` each count 1). For one directional scan of a (B, D, H, W) map, L = H * W tokens,
state size N, per token and channel:

- ``delta = softplus(delta + bias)``: 2
- decay ``exp(delta * A)``: 2N (the product and the exp)
- drive ``(delta * u) * B``: 1 + N
- recurrence ``h = decay * h + drive``: N (one multiply-add per state)
- readout ``y = C . h + D * u``: N + 1 (when the scan produces y)

``SS2D`` scans 4 directions with the readout and sums them back (3 adds per output):
``B*D*L*(4*(5N + 4) + 3)``. CMSA's ``CrossModalSS2D`` does the same over the 2L interleaved
tokens of its two (B, D, H, W) inputs: ``B*D*2L*(4*(5N + 4) + 3)``. ``SASF`` runs one scan for
the hidden states only, without the readout (its state-fusion convolution and ``C . h``
einsum are counted by mmengine): ``B*D*L*(4N + 3)``. mmengine has no counter for
``scaled_dot_product_attention`` (the CFT-style ``TransformerFusion``): it is added here as
the ``Q K^T`` and ``attention @ V`` multiply-adds, ``B*heads*Lq*Lk*(E + Ev)``.

The scans are traced with the pure-PyTorch backend (``torch``; Triton kernels do not compile
under jit tracing), which changes no count. The per-token projections to (dt, B, C) are
einsums and counted by mmengine. Element-wise ops outside the scans (activations, gates,
residual additions) are not counted, as in mmengine / fvcore.
"""
import argparse
import json
import math
import os
import os.path as osp
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import get_shape
from mmengine.config import Config, DictAction

from fusion_mamba.utils import load_tool_config

# Scan modules (by class name): number of directional scans and whether the scan itself
# computes the readout y = C . h + D * u (see the module docstring). Their (B, D, H, W) map
# inputs are scanned together: L is the sum of their H * W.
SCAN_MODULES = {'SS2D': dict(directions=4, readout=True),
                'CrossModalSS2D': dict(directions=4, readout=True),
                'SASF': dict(directions=1, readout=False)}
TRACE_BACKEND = 'torch'  # scan backend while tracing: runs on any device under jit tracing


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=(640, 640),
                        help='input image size (default 640 640)')
    parser.add_argument('--device', default='cpu', help='device to trace on (default cpu)')
    parser.add_argument('--out', help='also write the counts to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    args = parser.parse_args(argv)
    if min(args.shape) < 1:
        parser.error(f'--shape must be two positive sizes H W, got {args.shape}')
    return args


def scan_flops(batch: int, dim: int, length: int, d_state: int, directions: int,
               readout: bool) -> int:
    """Analytic FLOPs of ``directions`` selective scans of (batch, dim, length) sequences
    with state size ``d_state``, summed back into one output (formula: module docstring)."""
    per_token = 4 * d_state + 3 + (d_state + 1 if readout else 0)
    return batch * dim * length * (directions * per_token + directions - 1)


class ScanFlopCounter:
    """Forward hooks on the scan modules of a model that add up their analytic FLOPs per
    module name (a module called twice, e.g. shared weights, counts twice).

    Use as a context manager around one forward pass; ``counts`` maps module names to FLOPs.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.counts: Dict[str, int] = {}
        self._handles = []

    def _hook(self, name: str, spec: dict):

        def hook(module, inputs, output):
            maps = [x for x in inputs if isinstance(x, torch.Tensor)]
            length = sum(int(x.shape[-2]) * int(x.shape[-1]) for x in maps)
            self.counts[name] = self.counts.get(name, 0) + scan_flops(
                int(maps[0].shape[0]), int(maps[0].shape[1]), length, module.d_state, **spec)

        return hook

    def __enter__(self) -> 'ScanFlopCounter':
        for name, module in self.model.named_modules():
            spec = SCAN_MODULES.get(type(module).__name__)
            if spec is not None:
                self._handles.append(module.register_forward_hook(self._hook(name, spec)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def sdpa_flop_jit(inputs: list, outputs: list) -> int:
    """mmengine op handle of ``aten::scaled_dot_product_attention``: ``Q K^T`` and the
    weighted sum of V, ``prod(batch dims) * Lq * Lk * (E + Ev)`` multiply-adds."""
    query, key, value = (get_shape(x) for x in inputs[:3])
    return math.prod(query[:-1]) * key[-2] * (query[-1] + value[-1])


class TensorForward(nn.Module):
    """``detector(dict(visible=..., infrared=...), mode='tensor')`` with two tensor
    arguments, the form jit tracing needs."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, visible: torch.Tensor, infrared: torch.Tensor):
        return self.detector(dict(visible=visible, infrared=infrared), mode='tensor')


def input_shape(cfg: Config, shape: Tuple[int, int]) -> Tuple[int, int]:
    """``shape`` rounded up to the data preprocessor's ``pad_size_divisor``."""
    divisor = cfg.model.get('data_preprocessor', {}).get('pad_size_divisor', 1) or 1
    return tuple(-(-s // divisor) * divisor for s in shape)


def components(model: nn.Module) -> List[Tuple[str, str]]:
    """``(module name, row label)`` of the parts reported, in table order; the empty name is
    the whole model."""
    names = dict(model.named_modules())
    rows = [(n, label) for n, label in (('backbone.rgb_stream', 'backbone: visible stream'),
                                        ('backbone.ir_stream', 'backbone: infrared stream'))
            if n in names]
    fusions = getattr(model.backbone, 'fusions', None)
    if fusions is not None:
        stages = getattr(model.backbone, 'stage_names', range(len(fusions)))
        rows += [(f'backbone.fusions.{i}', f'fusion {stage} ({type(m).__name__})')
                 for i, (stage, m) in enumerate(zip(stages, fusions))]
        rows.append(('backbone.fusions', 'fusion: all levels'))
    if not rows:
        rows.append(('backbone', 'backbone'))
    rows += [(n, n) for n in ('neck', 'bbox_head') if n in names]
    rows.append(('', 'total'))
    return rows


def count(cfg: Config, shape: Tuple[int, int], device: str) -> dict:
    """Parameters and FLOPs per part: ``{'input': ..., 'rows': [{name, label, params,
    flops_mmengine, flops_scan, flops}, ...]}``."""
    from mmdet.registry import MODELS
    model = MODELS.build(cfg.model).to(device).eval()
    for module in model.modules():
        if type(module).__name__ in SCAN_MODULES:
            module.backend = TRACE_BACKEND
    height, width = input_shape(cfg, shape)
    ir_chans = len(cfg.model.get('data_preprocessor', {}).get('ir_mean', (0., 0., 0.)))
    inputs = (torch.rand(1, 3, height, width, device=device),
              torch.rand(1, ir_chans, height, width, device=device))
    analyzer = FlopAnalyzer(TensorForward(model), inputs)
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad(), ScanFlopCounter(model) as scans:
        traced = analyzer.by_module()  # traces the forward once, running the hooks
    params = parameter_count(model)

    def scan_total(prefix: str) -> int:
        return sum(v for k, v in scans.counts.items()
                   if not prefix or k == prefix or k.startswith(prefix + '.'))

    rows = []
    for name, label in components(model):
        mm_flops = int(traced.get(f'detector.{name}' if name else 'detector', 0))
        scan = scan_total(name)
        rows.append(dict(name=name, label=label, params=int(params.get(name, 0)),
                         flops_mmengine=mm_flops, flops_scan=scan, flops=mm_flops + scan))
    return dict(input=dict(visible=list(inputs[0].shape), infrared=list(inputs[1].shape)),
                scan_modules=len(scans.counts), rows=rows)


def markdown_table(rows: List[dict]) -> str:
    lines = ['| part | params (M) | GFLOPs mmengine | GFLOPs scans | GFLOPs total |',
             '|---|---:|---:|---:|---:|']
    for r in rows:
        lines.append(f'| {r["label"]} | {r["params"] / 1e6:.3f} | '
                     f'{r["flops_mmengine"] / 1e9:.4f} | {r["flops_scan"] / 1e9:.4f} | '
                     f'{r["flops"] / 1e9:.4f} |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_tool_config(args.config, args.cfg_options)
    print(f'tracing {args.config} on {args.device} ...', flush=True)
    result = count(cfg, tuple(args.shape), args.device)
    vis, ir = result['input']['visible'], result['input']['infrared']
    if tuple(vis[-2:]) != tuple(args.shape):
        print(f'note: --shape {args.shape[0]} {args.shape[1]} padded to {vis[2]} {vis[3]} '
              '(the data preprocessor\'s pad_size_divisor)')
    print(f'input: visible {tuple(vis)}, infrared {tuple(ir)}; '
          f'{result["scan_modules"]} scan modules counted analytically\n'
          '1 multiply-add = 1 FLOP; element-wise ops outside the scans are not counted')
    print(markdown_table(result['rows']))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, **result), f, indent=2)
        print(f'counts written to {args.out}')


if __name__ == '__main__':
    main()
