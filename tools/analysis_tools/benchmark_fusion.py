"""Latency and peak memory of ONE fusion block per fusion variant at FM-YOLOv8-l's shapes.

Blocks (settings read from the l-scale LLVIP configs, so the numbers follow the configs):

- ``fmb-ss2d``: FusionMambaBlock with SS2D (fusion_mamba/fm-yolov8_l_1xb4-150e_llvip.py)
- ``fmb-sasf``: FusionMambaBlock with SASF (variants/fm-yolov8_l-sasf_1xb4-150e_llvip.py)
- ``cmsa``: CMSAFusion (variants/cmsa-yolov8_l_1xb4-150e_llvip.py)
- ``cft``: TransformerFusion on 8x8 pooled tokens (variants/cft-yolov8_l_1xb4-150e_llvip.py)
- ``cft-global``: the same without pooling (attention over all 2HW tokens)

Shapes (channels, H x W) of P3 / P4 / P5: 640x640 input (256, 80x80), (512, 40x40),
(512, 20x20); 1280x1024, LLVIP's native size (256, 128x160), (512, 64x80), (512, 32x40).
Forward runs in eval mode without autograd (SASF then uses its merged kernel), forward +
backward in train mode with gradients for the inputs and all three outputs. Each is timed
as the median of ``--runs`` runs after ``--warmup`` (CUDA events on CUDA, perf_counter
otherwise); peak memory is the CUDA peak allocated above the parameters and inputs. A shape
that runs out of GPU memory is reported as OOM.

    python tools/analysis_tools/benchmark_fusion.py [--batch 1] [--runs 20] [--dtype bf16] \\
        [--launch-config JSON]
    python tools/analysis_tools/benchmark_fusion.py --device cpu --scale 0.125 --runs 1 \\
        --warmup 1   # smoke test: channels and sizes scaled down

Prints a markdown table and writes the rows to ``--out`` (JSON).
"""
import argparse
import contextlib
import gc
import json
import statistics
import time
from pathlib import Path

import torch
from mmdet.registry import MODELS
from mmengine.config import Config

import fusion_mamba  # noqa: F401  registers the fusion modules
from fusion_mamba.ops import resolve_backend
from fusion_mamba.ops.selective_scan import add_launch_config_argument, use_launch_config

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = REPO_ROOT / 'configs' / 'fusion_mamba'
BLOCKS = {
    'fmb-ss2d': (CONFIGS / 'fm-yolov8_l_1xb4-150e_llvip.py', {}),
    'fmb-sasf': (CONFIGS / 'variants' / 'fm-yolov8_l-sasf_1xb4-150e_llvip.py', {}),
    'cmsa': (CONFIGS / 'variants' / 'cmsa-yolov8_l_1xb4-150e_llvip.py', {}),
    'cft': (CONFIGS / 'variants' / 'cft-yolov8_l_1xb4-150e_llvip.py', {}),
    'cft-global': (CONFIGS / 'variants' / 'cft-yolov8_l_1xb4-150e_llvip.py',
                   dict(pool_size=None)),
}
# input size -> (level, channels, height, width) of FM-YOLOv8-l's fused levels
SHAPES = {
    '640x640': (('P3', 256, 80, 80), ('P4', 512, 40, 40), ('P5', 512, 20, 20)),
    '1280x1024': (('P3', 256, 128, 160), ('P4', 512, 64, 80), ('P5', 512, 32, 40)),
}
DTYPES = dict(fp32=None, bf16=torch.bfloat16, fp16=torch.float16)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--blocks', nargs='+', choices=list(BLOCKS), default=list(BLOCKS))
    parser.add_argument('--inputs', nargs='+', choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument('--dtype', choices=list(DTYPES), default='fp32',
                        help='fp32, or autocast to bf16 / fp16')
    parser.add_argument('--backend', default='auto', help='selective-scan backend')
    parser.add_argument('--scale', type=float, default=1.0,
                        help='scale channels and sizes (e.g. 0.125 for a CPU smoke test)')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--out', default='work_dirs/benchmark_fusion.json')
    add_launch_config_argument(parser)
    return parser.parse_args(argv)


def fusion_cfg(name, backend):
    """The fusion module config of block ``name``, with the scan backend set."""
    path, overrides = BLOCKS[name]
    cfg = Config.fromfile(str(path)).model.backbone.fusion.to_dict()
    cfg.update(overrides)
    if 'ssm_cfg' in cfg:
        cfg['ssm_cfg']['backend'] = backend
    elif 'backend' in cfg:
        cfg['backend'] = backend
    return cfg


def scaled(level, scale):
    """(level, C, H, W) scaled: C to a multiple of 8 (>= 8), H and W to >= 1."""
    name, channels, height, width = level
    return (name, max(8, int(round(channels * scale / 8)) * 8), max(1, round(height * scale)),
            max(1, round(width * scale)))


def measure(fn, device, warmup, runs):
    """Median milliseconds of ``fn`` over ``runs`` after ``warmup`` calls, and on CUDA the
    peak memory (MiB) allocated above what was allocated before."""
    cuda = device.type == 'cuda'
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(runs):
        if cuda:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
    peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20 if cuda else None
    return statistics.median(times), peak


def release_memory(device):
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def bench_block(cfg, level, args, device):
    """One row: the block built at one level, timed forward and forward + backward."""
    name, channels, height, width = level
    block = MODELS.build(dict(cfg, in_channels=channels, stage_name=name)).to(device)
    params = sum(p.numel() for p in block.parameters()) / 1e6
    shape = (args.batch, channels, height, width)
    f_rgb = torch.randn(shape, device=device, requires_grad=True)
    f_ir = torch.randn(shape, device=device, requires_grad=True)
    grads = [torch.randn(shape, device=device) for _ in range(3)]
    dtype = DTYPES[args.dtype]
    autocast = (torch.autocast(device.type, dtype=dtype) if dtype is not None
                else contextlib.nullcontext())

    def forward():
        with torch.no_grad(), autocast:
            block(f_rgb, f_ir)

    def forward_backward():
        with autocast:
            outs = block(f_rgb, f_ir)
        torch.autograd.backward(outs, grads)

    row = dict(channels=channels, height=height, width=width, params_m=round(params, 3))
    for key, mode, fn in (('fwd', False, forward), ('fwd_bwd', True, forward_backward)):
        block.train(mode)
        try:
            ms, peak = measure(fn, device, args.warmup, args.runs)
            row[f'{key}_ms'], row[f'{key}_peak_mib'] = round(ms, 3), peak and round(peak, 1)
        except torch.cuda.OutOfMemoryError:
            row[f'{key}_ms'] = row[f'{key}_peak_mib'] = 'OOM'
        if row[f'{key}_ms'] == 'OOM':  # outside the handler: the traceback holds tensors
            release_memory(device)
    return row


def markdown(rows):
    def cell(value, fmt):
        return '-' if value is None else value if isinstance(value, str) else fmt.format(value)

    lines = ['| block | input | level | C | H x W | params (M) | fwd ms | fwd peak MiB | '
             'fwd+bwd ms | fwd+bwd peak MiB |', '|' + '---|' * 10]
    for r in rows:
        lines.append(
            f"| {r['block']} | {r['input']} | {r['level']} | {r['channels']} | "
            f"{r['height']} x {r['width']} | {r['params_m']:.2f} | "
            f"{cell(r['fwd_ms'], '{:.2f}')} | {cell(r['fwd_peak_mib'], '{:.0f}')} | "
            f"{cell(r['fwd_bwd_ms'], '{:.2f}')} | {cell(r['fwd_bwd_peak_mib'], '{:.0f}')} |")
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    use_launch_config(args.launch_config)
    device = torch.device(args.device)
    backend = resolve_backend(args.backend, device)
    states = backend if backend in ('reference', 'torch') else 'torch'
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'
    print(f'device: {name}; torch {torch.__version__}; batch {args.batch}; {args.dtype}; '
          f'scale {args.scale}; warm-up {args.warmup}, median of {args.runs} runs')
    print(f'scan backend: {backend} (SS2D, CMSA); SASF hidden states: {states} '
          '(selective_scan_states has no fused kernel)')
    torch.manual_seed(0)
    rows = []
    for block_name in args.blocks:
        cfg = fusion_cfg(block_name, args.backend)
        for input_size in args.inputs:
            for level in SHAPES[input_size]:
                level = scaled(level, args.scale)
                row = dict(block=block_name, input=input_size, level=level[0])
                row.update(bench_block(cfg, level, args, device))
                release_memory(device)  # the block and its inputs are gone now
                rows.append(row)
                print(f"  {block_name} {input_size} {level[0]}: fwd {row['fwd_ms']} ms, "
                      f"fwd+bwd {row['fwd_bwd_ms']} ms", flush=True)
    print(markdown(rows))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(device=name, torch=torch.__version__, scan_backend=backend,
                                   sasf_state_backend=states, args=vars(args), rows=rows),
                              indent=2))
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
