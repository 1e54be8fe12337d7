"""Train a detector from a config (MMDetection conventions, mmengine Runner).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--amp-dtype {bf16,fp16}] [--cfg-options key=value ...]
        [--launcher {none,pytorch,slurm,mpi}]

``--resume`` alone resumes from the last checkpoint in the work dir (if there is one);
``--resume CKPT`` resumes from that file. ``--amp`` trains in mixed precision: bfloat16
where the GPU supports it, else float16 (``--amp-dtype`` chooses), with a dynamic loss
scaler whose scale and skipped steps are logged (``LossScaleMonitorHook``).
"""
import argparse
import os

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from fusion_mamba.engine import add_amp_arguments, amp_from_args, amp_optim_wrapper_cfg
from fusion_mamba.utils import load_runner_config


def parse_args():
    parser = argparse.ArgumentParser(description='Train a multispectral detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and checkpoints')
    add_amp_arguments(parser, 'training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate with the total batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint of the work '
                        'dir when no file is given')
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
    amp = amp_from_args(args, 'cuda' if torch.cuda.is_available() else 'cpu')
    if amp:
        cfg.optim_wrapper = amp_optim_wrapper_cfg(cfg.optim_wrapper, amp)
        hooks = cfg.get('custom_hooks', [])
        if not any(h.get('type') == 'LossScaleMonitorHook' for h in hooks):
            cfg.custom_hooks = hooks + [dict(type='LossScaleMonitorHook')]
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ValueError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main():
    cfg = build_cfg(parse_args())
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    main()
