"""Command-line options of the demos (``demo/image_demo.py``, ``demo/video_demo.py``)."""
import argparse

import torch
from mmengine.config import Config, DictAction

from fusion_mamba.engine import add_amp_arguments, amp_from_args
from fusion_mamba.visualization import DEFAULT_SCORE_THR
from .inferencer import FusionMambaInferencer
from .model_loading import find_config


def add_inference_args(parser: argparse.ArgumentParser) -> None:
    """CONFIG, CHECKPOINT and the inference options, after a demo's input arguments."""
    parser.add_argument('config', help='config file (or config name under configs/)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--score-thr', type=float, default=None,
                        help='draw detections scoring above this (default: the '
                        "checkpoint's per-class validation thresholds, else "
                        f'{DEFAULT_SCORE_THR})')
    parser.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu',
                        help='device (default cuda:0 when available, else cpu)')
    add_amp_arguments(parser)
    parser.add_argument('--cuda-graph', action='store_true',
                        help='replay the network as CUDA graphs (CUDA only)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')


def inferencer_from_args(args: argparse.Namespace) -> FusionMambaInferencer:
    """The inferencer of :func:`add_inference_args`' options."""
    amp = amp_from_args(args, args.device)
    cfg = Config.fromfile(find_config(args.config))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return FusionMambaInferencer(
        cfg, args.checkpoint, device=args.device,
        amp=amp,
        cuda_graph=args.cuda_graph, show_progress=False)


def describe_thresholds(inferencer: FusionMambaInferencer, score_thr=None) -> str:
    """Which detections are drawn, in words."""
    if score_thr is not None:
        return f'with score > {score_thr}'
    if inferencer.score_thresholds:
        chosen = ', '.join(f'{name} {thr:.3f}'
                           for name, thr in inferencer.score_thresholds.items())
        return (f'above the per-class validation thresholds ({chosen}; '
                f'{DEFAULT_SCORE_THR} for other classes)')
    return f'with score > {DEFAULT_SCORE_THR} (the checkpoint has no validation thresholds)'
