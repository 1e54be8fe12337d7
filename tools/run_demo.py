"""The README's main job: train and evaluate FM-YOLOv8 on the built-in demo data.

    python tools/run_demo.py [--config CONFIG] [--work-dir DIR] [--cfg-options k=v ...]

1. generates the procedural RGB + IR demo pairs into ``data/demo_pairs`` (first run only:
   ``DemoPairsDataset`` does it when the runner builds the dataloaders);
2. trains the demo config (``make demo`` again after an interruption resumes from the last
   checkpoint instead of starting over; a finished run is not retrained);
3. evaluates on the demo validation pairs with COCO metrics (EMA weights);
4. draws the detections on the visible and infrared image of every validation pair (above
   the per-class best-F1 score thresholds of the validation, ``ScoreThresholdHook``) and
   prints the metrics, the thresholds, the drawings' folder and the wall time; they also go
   to ``<work_dir>/demo_metrics.json``.
"""
import argparse
import json
import os.path as osp
import time

from mmengine.config import DictAction
from mmengine.runner import Runner

from fusion_mamba.engine.hooks import SCORE_THRESHOLDS_KEY
from fusion_mamba.utils import load_runner_config

DEFAULT_CONFIG = 'configs/fusion_mamba/fm-yolov8_demo_1xb8-5e_demo-pairs.py'


def parse_args():
    parser = argparse.ArgumentParser(description='Train + evaluate on the built-in demo data')
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='demo config')
    parser.add_argument('--work-dir', help='default: work_dirs/<config name>')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args()


def find_hook(runner: Runner, type_name: str):
    for hook in runner.hooks:
        if type(hook).__name__ == type_name:
            return hook
    raise KeyError(f'{type_name} is not among the runner hooks')


def main():
    args = parse_args()
    start = time.time()
    cfg = load_runner_config(args.config, args.cfg_options, args.work_dir)
    # Continue an interrupted run from its last checkpoint (no-op on a fresh work dir).
    cfg.resume = True
    runner = Runner.from_cfg(cfg)
    runner.train()
    train_time = time.time() - start

    vis_hook = find_hook(runner, 'PairedDetVisualizationHook')
    vis_hook.draw = True
    vis_hook.test_out_dir = 'detections'
    metrics = runner.test()
    total_time = time.time() - start

    summary = dict(config=args.config, work_dir=osp.abspath(runner.work_dir),
                   train_minutes=round(train_time / 60, 2),
                   total_minutes=round(total_time / 60, 2),
                   metrics={k: float(v) for k, v in metrics.items()},
                   score_thresholds=runner.message_hub.get_info(SCORE_THRESHOLDS_KEY),
                   detections_dir=osp.abspath(vis_hook.test_out_dir))
    with open(osp.join(runner.work_dir, 'demo_metrics.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    print('\n==== demo finished ====')
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75'):
        print(f'{key:24s} {metrics[key]:.3f}')
    for key, value in metrics.items():
        if key.endswith('_precision'):
            print(f'{key:24s} {value:.3f}')
    print(f'score thresholds         {summary["score_thresholds"]} (best F1 on validation, '
          'used to draw)')
    print(f'train time               {train_time / 60:.1f} min (total {total_time / 60:.1f} min)')
    print(f'drawn detections         {summary["detections_dir"]} (visible | infrared)')
    print(f'metrics                  {osp.join(osp.abspath(runner.work_dir), "demo_metrics.json")}')


if __name__ == '__main__':
    main()
