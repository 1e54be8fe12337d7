"""Training-step time, throughput and peak memory of a paired detector on synthetic pairs.

    python tools/analysis_tools/benchmark_train.py CONFIG [--batch-size 8] [--amp]
        [--amp-dtype bf16|fp16] [--device cuda|cpu] [--num-iters 30] [--warmup 10]
        [--shape H W] [--profile N] [--saved-memory] [--tensor-memory]
        [--launch-config JSON] [--out results.json] [--cfg-options key=value ...]

Each step is ``model.train_step`` with the config's optimizer wrapper (``AmpOptimWrapper``
with ``--amp`` on CUDA, as ``tools/train.py --amp`` builds it; on CPU, where mmengine's
wrapper is not available, the plain wrapper under ``torch.autocast``): the data
preprocessor (normalisation, padding), forward with the loss (label assignment included),
backward, gradient clipping and the optimizer update. Data loading is excluded:
``POOL_BATCHES`` batches of random uint8 pairs of ``--shape`` with random boxes
(``BOXES_PER_IMAGE`` per image, random classes) are made and put on the device before
timing, then cycled. The device is synchronised around
every timed step; peak memory is ``torch.cuda.max_memory_allocated`` over the timed steps
(weights, gradients and optimizer state included). With a loss scaler (fp16) the steps it
skipped for overflowing gradients are counted and printed with its final scale.

``--profile N`` runs N more steps under ``torch.profiler`` and prints where the device time
goes (forward, backward and update together, per kernel group and per kernel).
``--saved-memory`` runs one more step and prints the activations autograd keeps for the
backward pass, by module class and by module path (gradient-checkpointed modules count
only what checkpointing keeps: a module's inputs, not what selective checkpointing caches).
``--tensor-memory`` runs one more step under torch's ``MemTracker`` and prints the tensor
memory at the step's peak by kind (parameters, gradients, activations, temporaries,
optimizer state), on CPU as well, checkpointing of every kind included (not the buffers an
operator allocates and frees inside itself); it is also in the JSON. ``--launch-config``:
as in ``benchmark_detector.py``.
"""
import argparse
import itertools
import json
import os
import os.path as osp
import time

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper

from fusion_mamba.engine import add_amp_arguments
from fusion_mamba.ops.selective_scan import add_launch_config_argument, use_launch_config
from fusion_mamba.utils import load_tool_config

POOL_BATCHES = 4
BOXES_PER_IMAGE = 8


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--batch-size', type=int, default=8, help='image pairs per step')
    add_amp_arguments(parser, 'training')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                        help='cuda, cuda:N or cpu (default cuda when available)')
    parser.add_argument('--num-iters', type=int, default=30, help='timed steps (default 30)')
    parser.add_argument('--warmup', type=int, default=10,
                        help='untimed steps before timing (default 10)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=(640, 640),
                        help='image size (default 640 640)')
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='profile N more steps with torch.profiler')
    add_launch_config_argument(parser)
    parser.add_argument('--saved-memory', action='store_true',
                        help='print the activations saved for backward, by module')
    parser.add_argument('--tensor-memory', action='store_true',
                        help="print the tensor memory at a step's peak by kind (any device)")
    parser.add_argument('--out', help='also write the results to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    args = parser.parse_args(argv)
    for name in ('batch_size', 'num_iters'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    for name in ('warmup', 'profile'):
        if getattr(args, name) < 0:
            parser.error(f'--{name} must be >= 0, got {getattr(args, name)}')
    if min(args.shape) < 32:
        parser.error(f'--shape must be two sizes >= 32, got {args.shape}')
    return args


def synthetic_batch(shape, batch_size: int, ir_chans: int, num_classes: int,
                    device: torch.device, seed: int) -> dict:
    """A packed batch of random uint8 pairs with ``BOXES_PER_IMAGE`` random boxes each (boxes
    at least 8 pixels wide, inside the image), its tensors already on ``device``."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.bbox import HorizontalBoxes
    from mmengine.structures import InstanceData
    height, width = shape
    gen = torch.Generator().manual_seed(seed)
    inputs = dict(visible=[], infrared=[])
    samples = []
    for index in range(batch_size):
        for key, chans in (('visible', 3), ('infrared', ir_chans)):
            image = torch.randint(0, 256, (chans, height, width), generator=gen,
                                  dtype=torch.uint8)
            inputs[key].append(image.to(device))
        xy = torch.rand(BOXES_PER_IMAGE, 2, generator=gen) * torch.tensor([width, height])
        wh = 8 + torch.rand(BOXES_PER_IMAGE, 2, generator=gen) * torch.tensor(
            [width / 4, height / 4])
        boxes = torch.cat([xy, xy + wh], dim=1)
        boxes = boxes.clamp(min=0).minimum(torch.tensor([width, height, width, height]))
        gt = InstanceData(bboxes=HorizontalBoxes(boxes.to(device)),
                          labels=torch.randint(0, num_classes, (BOXES_PER_IMAGE, ),
                                               generator=gen).to(device))
        sample = DetDataSample(metainfo=dict(img_id=index, img_shape=(height, width),
                                             ori_shape=(height, width),
                                             scale_factor=(1., 1.)))
        sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def build_training(cfg: Config, args, device: torch.device):
    """The model in train mode on ``device`` and its optimizer wrapper; returns
    ``(model, optim_wrapper, precision)``."""
    from mmdet.registry import MODELS

    from fusion_mamba.engine import amp_from_args, amp_optim_wrapper_cfg
    model = MODELS.build(cfg.model).to(device).train()
    wrapper_cfg = cfg.optim_wrapper.copy()
    precision = amp_from_args(args, device) or 'fp32'
    if args.amp:
        if device.type == 'cuda':
            wrapper_cfg = amp_optim_wrapper_cfg(wrapper_cfg, precision)
        # mmengine's AmpOptimWrapper needs a GPU: on CPU the steps run under autocast
    return model, build_optim_wrapper(model, wrapper_cfg), precision


def train_step_fn(model, optim_wrapper, cpu_autocast=None):
    """``step(batch)``: one ``model.train_step`` (under CPU autocast to ``cpu_autocast``
    when given); returns the log variables."""
    def step(batch):
        with torch.autocast('cpu', dtype=cpu_autocast, enabled=cpu_autocast is not None):
            return model.train_step(batch, optim_wrapper)
    return step


def time_steps(model, optim_wrapper, batches, args, device, cpu_autocast=None) -> dict:
    """Warm up, then time ``--num-iters`` training steps; per-step statistics.
    ``cpu_autocast``: the autocast dtype of CPU steps (None: float32)."""
    cuda = device.type == 'cuda'
    train_step = train_step_fn(model, optim_wrapper, cpu_autocast)

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    scaler = getattr(optim_wrapper, 'loss_scaler', None)
    scaler = scaler if scaler is not None and scaler.is_enabled() else None
    skipped = []  # steps whose gradients overflowed (the scaler lowered its scale)

    def step(batch):
        scale = scaler.get_scale() if scaler is not None else None
        log_vars = train_step(batch)
        if scaler is not None:
            skipped.append(scaler.get_scale() < scale)
        return log_vars

    cycle = itertools.cycle(batches)
    losses = []
    for _ in range(args.warmup):
        step(next(cycle))
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(args.num_iters):
        batch = next(cycle)
        sync()
        start = time.perf_counter()
        log_vars = step(batch)
        sync()
        times.append(time.perf_counter() - start)
        losses.append(float(log_vars['loss']))
    times = np.asarray(times)
    if not np.isfinite(losses).all():
        print(f'warning: non-finite loss in {int((~np.isfinite(losses)).sum())} timed steps')
    return dict(step_mean_s=float(times.mean()), step_p50_s=float(np.median(times)),
                step_p90_s=float(np.percentile(times, 90)),
                pairs_per_s=float(args.batch_size / times.mean()),
                peak_memory_mib=(torch.cuda.max_memory_allocated(device) / 2**20
                                 if cuda else None),
                first_loss=losses[0], last_loss=losses[-1],
                loss_scale=scaler.get_scale() if scaler is not None else None,
                skipped_steps=sum(skipped) if scaler is not None else None,
                skipped_timed_steps=sum(skipped[args.warmup:]) if scaler is not None else None)


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    use_launch_config(args.launch_config)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f'--device {args.device}: CUDA is not available; use --device cpu')
    cfg = load_tool_config(args.config, args.cfg_options)
    model, optim_wrapper, precision = build_training(cfg, args, device)
    ir_chans = len(cfg.model.get('data_preprocessor', {}).get('ir_mean', (0., 0., 0.)))
    num_classes = model.bbox_head.num_classes
    batches = [synthetic_batch(args.shape, args.batch_size, ir_chans, num_classes, device, seed)
               for seed in range(POOL_BATCHES)]
    where = torch.cuda.get_device_name(device) if device.type == 'cuda' else (
        f'CPU, intra-op threads: {torch.get_num_threads()}')
    print(f'config: {args.config}\ndevice: {device} ({where}); torch {torch.__version__}\n'
          f'precision: {precision} ({type(optim_wrapper).__name__})\n'
          f'batch size {args.batch_size}, {args.shape[0]}x{args.shape[1]} synthetic pairs '
          f'(data loading excluded); warm-up {args.warmup}, timed {args.num_iters} steps',
          flush=True)
    from fusion_mamba.engine import AMP_DTYPES
    cpu_autocast = AMP_DTYPES[precision] if args.amp and device.type == 'cpu' else None
    result = time_steps(model, optim_wrapper, batches, args, device, cpu_autocast)
    mem = result['peak_memory_mib']
    if result['loss_scale'] is not None:
        print(f'loss scaler: scale {result["loss_scale"]:g} after all steps; '
              f'{result["skipped_steps"]} of {args.warmup + args.num_iters} steps skipped for '
              f'overflowing gradients ({result["skipped_timed_steps"]} of the timed ones)')
    print('| config | batch | precision | step mean (s) | p50 (s) | p90 (s) | pairs/s | '
          'peak GPU mem (MiB) |\n|---|---:|---|---:|---:|---:|---:|---:|')
    print(f'| {osp.basename(args.config)} | {args.batch_size} | {precision} | '
          f'{result["step_mean_s"]:.4f} | {result["step_p50_s"]:.4f} | '
          f'{result["step_p90_s"]:.4f} | {result["pairs_per_s"]:.2f} | '
          f'{"n/a" if mem is None else f"{mem:.0f}"} |')
    diagnostics = []
    step = train_step_fn(model, optim_wrapper, cpu_autocast)
    if args.profile:
        from fusion_mamba.utils.profiling import profile_steps
        diagnostics.append(profile_steps('training step', step, batches, args.profile,
                                         device, grad=True))
    if args.saved_memory:
        from fusion_mamba.utils.profiling import SavedActivationCounter
        with SavedActivationCounter(model) as counter:
            step(batches[0])
        diagnostics.append(counter.summary())
    if args.tensor_memory:
        from fusion_mamba.utils.profiling import tensor_memory, tensor_memory_summary
        result['tensor_memory_mib'] = tensor_memory(step, batches[0], model,
                                                    optim_wrapper.optimizer)
        diagnostics.append(tensor_memory_summary('one training step',
                                                 result['tensor_memory_mib']))
    if diagnostics:
        print('\n\n'.join(diagnostics))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, device=str(device), device_name=where,
                           torch=torch.__version__, precision=precision,
                           batch_size=args.batch_size, shape=list(args.shape),
                           warmup=args.warmup, num_iters=args.num_iters, result=result,
                           diagnostics=diagnostics), f,
                      indent=2)
        print(f'results written to {args.out}')


if __name__ == '__main__':
    main()
