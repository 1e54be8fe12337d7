"""Latency, throughput and peak memory of a paired (visible + infrared) detector.

    python tools/analysis_tools/benchmark_detector.py CONFIG [CHECKPOINT] [--num-iters 200]
        [--warmup 20] [--batch-size 1] [--device cuda|cpu] [--shape H W] [--synthetic]
        [--amp [--amp-dtype bf16|fp16]] [--cuda-graph | --compile [--compile-mode MODE]
        [--compile-backend NAME]] [--profile N] [--launch-config JSON] [--out results.json]
        [--parts detector backbone] [--cfg-options key=value ...]

Two parts are timed, each after ``--warmup`` untimed iterations (``--parts`` picks one;
each compiled or captured part is compiled or captured on its own, so timing one part
halves that time):

- ``detector``: :meth:`test_step` in predict mode, i.e. the data preprocessor (host to
  device copy, normalisation, padding), both backbone streams with the fusion blocks, the
  neck, the head and its NMS;
- ``backbone+fusion``: ``model.backbone(visible, infrared)`` alone, on inputs preprocessed
  beforehand.

Inputs are real samples of the config's test dataloader (after its pipeline) when the
dataset's files exist (the demo dataset is generated on first use), else (or with
``--synthetic``) random uint8 image pairs of ``--shape H W``. At most ``POOL_BATCHES``
batches are loaded before timing and cycled. CUDA is synchronised before and after each
timed iteration; latency is given per image pair (iteration time / batch size), throughput
in pairs per second, peak memory as ``torch.cuda.max_memory_allocated`` over the timed
iterations (weights included; for ``backbone+fusion`` also the pooled preprocessed
batches, which stay on the device). The selective-scan backend the scan modules resolve to
on the device is printed (it decides most of the fusion blocks' speed). Without a
checkpoint the weights are random, which changes how many boxes reach the NMS.

``--cuda-graph`` replays the network (backbone, fusion, neck, head forward) of the detector
part as CUDA graphs (:meth:`MultiModalDetector.use_cuda_graphs`; preprocessing, box decoding
and NMS stay eager) and the backbone + fusion part as a graph of its own. ``--compile`` runs
the same two through ``torch.compile`` instead (:meth:`MultiModalDetector.use_compile`;
``--compile-mode`` and ``--compile-backend`` are passed on), compiled during the warm-up.
``--amp`` runs both parts under ``torch.autocast`` (bfloat16 where the device supports it,
else float16; ``--amp-dtype`` chooses). ``--profile N`` then runs N more iterations of each
part under ``torch.profiler`` and prints where the device time goes: the kernels (or CPU
operators) with the most self time, their launch counts per iteration, and the total; the
traces are written beside ``--out`` (``*.trace.json``, for chrome://tracing or Perfetto).
``--launch-config`` launches the Triton scan kernels as a JSON file says (see
``triton_kernels.use_launch_table``), e.g. with the sequential forward cut into segments.

On CPU, torch runs ``torch.get_num_threads()`` OpenMP threads (printed); on a machine where
other processes keep the cores busy, spinning threads can slow a small model down a
hundredfold (seen on a shared 2-core machine: 4.1 s instead of 27 ms per pair), so set
``OMP_NUM_THREADS`` to the cores that are actually free.
"""
import argparse
import itertools
import json
import os
import os.path as osp
import re
import time
from typing import Callable, Dict, List

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.runner import load_checkpoint

from fusion_mamba.engine import add_amp_arguments, amp_from_args
from fusion_mamba.ops.selective_scan import add_launch_config_argument, use_launch_config
from fusion_mamba.utils import load_tool_config
from fusion_mamba.utils.profiling import profile_steps

POOL_BATCHES = 16  # distinct batches loaded before timing, cycled through
PARTS = {'detector': 'detector (predict, incl. preprocess + NMS)',  # --parts: row names
         'backbone': 'backbone + fusion'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (default: random '
                        'weights)')
    parser.add_argument('--num-iters', type=int, default=200, help='timed iterations per '
                        'part (default 200)')
    parser.add_argument('--warmup', type=int, default=20, help='untimed iterations before '
                        'timing (default 20)')
    parser.add_argument('--batch-size', type=int, default=1, help='image pairs per '
                        'iteration (default 1)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='cuda, cuda:N or cpu (default cuda when available)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=(640, 640),
                        help='image size of the synthetic inputs (default 640 640)')
    parser.add_argument('--synthetic', action='store_true',
                        help='use synthetic inputs even when the test data exists')
    add_amp_arguments(parser)
    parser.add_argument('--cuda-graph', action='store_true',
                        help='replay the network as CUDA graphs (CUDA only)')
    parser.add_argument('--compile', action='store_true',
                        help='run the network through torch.compile')
    parser.add_argument('--compile-mode', default=None,
                        help="torch.compile's mode, e.g. max-autotune (default: its default)")
    parser.add_argument('--compile-backend', default='inductor',
                        help="torch.compile's backend (default inductor)")
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='profile N more iterations per part with torch.profiler')
    add_launch_config_argument(parser)
    parser.add_argument('--log-interval', type=int, default=50,
                        help='print progress every N timed iterations (default 50)')
    parser.add_argument('--out', help='also write the results to this JSON file')
    parser.add_argument('--parts', nargs='+', choices=PARTS, default=list(PARTS),
                        help='the parts to time (default: both)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    args = parser.parse_args(argv)
    for name in ('num_iters', 'batch_size', 'log_interval'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    if args.cuda_graph and not args.device.startswith('cuda'):
        parser.error('--cuda-graph needs --device cuda')
    if args.cuda_graph and args.compile:
        parser.error('--cuda-graph and --compile exclude each other (torch.compile has '
                     "CUDA graphs of its own: --compile-mode reduce-overhead)")
    if args.profile < 0:
        parser.error(f'--profile must be >= 0, got {args.profile}')
    if args.warmup < 0:
        parser.error(f'--warmup must be >= 0, got {args.warmup}')
    if min(args.shape) < 1:
        parser.error(f'--shape must be two positive sizes H W, got {args.shape}')
    return args


def check_device(name: str) -> torch.device:
    """``torch.device`` of ``--device``; raises when CUDA is asked for but not visible."""
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f'--device {name}: CUDA is not available on this machine; use '
                           '--device cpu')
    return device


def scan_backends(model: torch.nn.Module, device: torch.device) -> str:
    """The selective-scan backends the model's scan modules (SS2D, SASF, Cross SS2D) resolve
    to on ``device``."""
    from fusion_mamba.models.layers.selective_scan_module import SelectiveScanModule
    from fusion_mamba.ops import resolve_backend
    requested = sorted({m.backend for m in model.modules()
                        if isinstance(m, SelectiveScanModule)})
    if not requested:
        return 'none (the model has no selective-scan module)'
    return ', '.join(f'{resolve_backend(name, device)} (requested {name!r})'
                     for name in requested)


def ir_channels(cfg: Config) -> int:
    """Infrared channels the data preprocessor expects (one ``ir_mean`` value each)."""
    return len(cfg.model.get('data_preprocessor', {}).get('ir_mean', (0., 0., 0.)))


def synthetic_batches(shape, batch_size: int, ir_chans: int) -> List[dict]:
    """One batch of random uint8 pairs of ``shape`` (H, W), packed as the dataloader does."""
    from mmdet.structures import DetDataSample
    height, width = shape
    gen = torch.Generator().manual_seed(0)
    inputs = dict(visible=[], infrared=[])
    samples = []
    for index in range(batch_size):
        for key, chans in (('visible', 3), ('infrared', ir_chans)):
            inputs[key].append(
                torch.randint(0, 256, (chans, height, width), generator=gen, dtype=torch.uint8))
        samples.append(DetDataSample(metainfo=dict(
            img_id=index, img_shape=(height, width), ori_shape=(height, width),
            scale_factor=(1., 1.))))
    return [dict(inputs=inputs, data_samples=samples)]


def real_batches(dataset, batch_size: int) -> List[dict]:
    """Up to ``POOL_BATCHES`` batches of the dataset's first samples (pseudo-collated)."""
    count = min(len(dataset) // batch_size, POOL_BATCHES)
    if count == 0:
        raise ValueError(f'the test dataset has {len(dataset)} samples, fewer than '
                         f'--batch-size {batch_size}')
    return [pseudo_collate([dataset[i * batch_size + k] for k in range(batch_size)])
            for i in range(count)]


def build_inputs(cfg: Config, args) -> tuple:
    """``(batches, description)``: real test samples when the data exists, else synthetic."""
    from mmdet.registry import DATASETS
    reason = 'requested with --synthetic'
    if not args.synthetic:
        try:
            dataset = DATASETS.build(cfg.test_dataloader.dataset)
        except FileNotFoundError as err:
            reason = f'test data not found: {err}'
        else:
            batches = real_batches(dataset, args.batch_size)
            shapes = sorted({tuple(v.shape[-2:]) for b in batches for v in b['inputs']['visible']})
            sizes = ', '.join(f'{h}x{w}' for h, w in shapes)
            return batches, (f'real: {len(batches) * args.batch_size} pairs of the test set '
                             f'{type(dataset).__name__} (HxW after the pipeline: {sizes})')
    height, width = args.shape
    return (synthetic_batches(args.shape, args.batch_size, ir_channels(cfg)),
            f'synthetic: random uint8 pairs of {height}x{width} ({reason})')


def time_part(name: str, step: Callable[[object], object], batches: list, args,
              device: torch.device) -> Dict[str, float]:
    """Warm up, then time ``step(batch)`` for ``--num-iters`` iterations cycling ``batches``.

    Returns latency per pair (mean / p50 / p90 in ms), throughput (pairs/s) and peak CUDA
    memory (MiB, None on CPU).
    """
    cuda = device.type == 'cuda'

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    cycle = itertools.cycle(batches)
    with torch.no_grad():
        for _ in range(args.warmup):
            step(next(cycle))
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for it in range(1, args.num_iters + 1):
            batch = next(cycle)
            sync()
            start = time.perf_counter()
            step(batch)
            sync()
            times.append(time.perf_counter() - start)
            if it % args.log_interval == 0 and it < args.num_iters:
                print(f'  {name}: {it}/{args.num_iters} iterations, '
                      f'{1e3 * np.mean(times) / args.batch_size:.2f} ms/pair so far',
                      flush=True)
    per_pair = 1e3 * np.asarray(times) / args.batch_size
    return dict(latency_mean_ms=float(per_pair.mean()),
                latency_p50_ms=float(np.percentile(per_pair, 50)),
                latency_p90_ms=float(np.percentile(per_pair, 90)),
                throughput_pairs_per_s=float(args.batch_size * len(times) / sum(times)),
                peak_memory_mib=(torch.cuda.max_memory_allocated(device) / 2**20
                                 if cuda else None))


def under_autocast(step: Callable[[object], object], device: torch.device,
                   dtype) -> Callable[[object], object]:
    """``step`` run under ``torch.autocast(dtype)``; ``step`` itself when dtype is None."""
    if dtype is None:
        return step

    def autocast_step(batch):
        with torch.autocast(device_type=device.type, dtype=dtype):
            return step(batch)
    return autocast_step


def markdown_table(results: Dict[str, dict], batch_size: int) -> str:
    """One row per timed part."""
    lines = ['| part | batch | latency mean (ms/pair) | p50 (ms) | p90 (ms) | '
             'throughput (pairs/s) | peak GPU mem (MiB) |',
             '|---|---:|---:|---:|---:|---:|---:|']
    for part, r in results.items():
        mem = 'n/a' if r['peak_memory_mib'] is None else f'{r["peak_memory_mib"]:.1f}'
        lines.append(f'| {part} | {batch_size} | {r["latency_mean_ms"]:.2f} | '
                     f'{r["latency_p50_ms"]:.2f} | {r["latency_p90_ms"]:.2f} | '
                     f'{r["throughput_pairs_per_s"]:.2f} | {mem} |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    device = check_device(args.device)
    use_launch_config(args.launch_config)
    cfg = load_tool_config(args.config, args.cfg_options)
    from mmdet.registry import MODELS

    model = MODELS.build(cfg.model)
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.to(device).eval()
    backend = scan_backends(model, device)
    batches, inputs = build_inputs(cfg, args)
    where = torch.cuda.get_device_name(device) if device.type == 'cuda' else (
        f'CPU, intra-op threads: {torch.get_num_threads()}')
    print(f'config: {args.config}\ncheckpoint: {args.checkpoint or "none (random weights)"}\n'
          f'device: {device} ({where}); torch {torch.__version__}\n'
          f'scan backend: {backend}\ninputs: {inputs}\n'
          f'warm-up {args.warmup}, timed {args.num_iters} iterations per part, '
          f'batch size {args.batch_size}', flush=True)

    from fusion_mamba.engine import AMP_DTYPES
    amp = amp_from_args(args, device)
    dtype = AMP_DTYPES[amp] if amp else None
    compiled = (f'yes (backend {args.compile_backend}, mode {args.compile_mode or "default"})'
                if args.compile else 'no')
    print(f'precision: {f"autocast {amp}" if amp else "float32"}; CUDA graphs: '
          f'{"yes" if args.cuda_graph else "no"}; torch.compile: {compiled}', flush=True)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with torch.no_grad():
        preprocessed = [model.data_preprocessor(b, False)['inputs'] for b in batches]
    backbone = lambda x: model.backbone(x['visible'], x['infrared'])  # noqa: E731
    if args.cuda_graph:
        from fusion_mamba.utils.cuda_graph import CUDAGraphRunner
        model.use_cuda_graphs()
        backbone = CUDAGraphRunner(backbone)
    if args.compile:
        compile_kwargs = dict(mode=args.compile_mode, backend=args.compile_backend)
        model.use_compile(**compile_kwargs)
        backbone = torch.compile(backbone, **compile_kwargs)
    steps = dict(detector=(batches, model.test_step), backbone=(preprocessed, backbone))
    parts = {PARTS[part]: steps[part] for part in PARTS if part in args.parts}
    results, profiles = {}, []
    for part, (inputs_, step) in parts.items():
        step = under_autocast(step, device, dtype)
        print(f'timing {part} ...', flush=True)
        results[part] = time_part(part, step, inputs_, args, device)
        if args.profile:
            trace = None
            if args.out:
                tag = re.sub(r'\W+', '_', part.split(' (')[0]).strip('_')
                trace = f'{osp.splitext(args.out)[0]}.{tag}.trace.json'
            profiles.append(profile_steps(part, step, inputs_, args.profile, device, trace))

    print('\n\n'.join(profiles))
    print(markdown_table(results, args.batch_size))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, checkpoint=args.checkpoint, device=str(device),
                           device_name=where, torch=torch.__version__, scan_backend=backend,
                           inputs=inputs, precision=amp or 'fp32', cuda_graph=args.cuda_graph,
                           compile=dict(mode=args.compile_mode,
                                        backend=args.compile_backend) if args.compile else None,
                           batch_size=args.batch_size,
                           warmup=args.warmup, num_iters=args.num_iters, results=results,
                           profiles=profiles), f, indent=2)
        print(f'results written to {args.out}')


if __name__ == '__main__':
    main()
