"""Evaluate a checkpoint on a config's test set (MMDetection conventions).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
        [--show-dir DIR] [--amp [--amp-dtype {bf16,fp16}]] [--cuda-graph]
        [--cfg-options key=value ...] [--launcher ...]

``--show-dir`` draws the detections on the visible and infrared images side by side.
``--amp`` runs the model under ``torch.autocast`` (bfloat16 where the GPU supports it, else
float16; ``--amp-dtype`` chooses); boxes are decoded and NMS'ed in float32. ``--cuda-graph``
replays the network (everything before box decoding and NMS) as a CUDA graph per input shape,
which removes the kernel-launch overhead that dominates at small batches.
"""
import argparse
import os

import torch
from mmengine.config import Config, DictAction
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from fusion_mamba.engine import add_amp_arguments, amp_from_args
from fusion_mamba.utils import load_runner_config


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a multispectral detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='dump predictions to a pickle file (.pkl)')
    parser.add_argument('--show-dir', help='draw detections on both modalities into this '
                        'folder (inside the work dir)')
    add_amp_arguments(parser)
    parser.add_argument('--cuda-graph', action='store_true',
                        help='replay the network as CUDA graphs (CUDA only)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_cfg(args) -> Config:
    cfg = load_runner_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = args.checkpoint
    amp = amp_from_args(args, 'cuda' if torch.cuda.is_available() else 'cpu')
    if amp:
        cfg.test_cfg = dict(type='AmpTestLoop', dtype=amp)
    if args.show_dir:
        vis_hook = cfg.default_hooks.get('visualization')
        if vis_hook is None:
            raise ValueError('--show-dir needs default_hooks.visualization in the config')
        vis_hook.draw = True
        vis_hook.test_out_dir = args.show_dir
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}')
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=args.out))
    return cfg


def main():
    args = parse_args()
    cfg = build_cfg(args)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    if args.cuda_graph:
        if not torch.cuda.is_available():
            raise ValueError('--cuda-graph needs a CUDA GPU')
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.use_cuda_graphs()
    runner.test()


if __name__ == '__main__':
    main()
