"""Draw the visible and infrared images of a dataset side by side, with their boxes, after
the config's pipeline, to image files.

    python tools/analysis_tools/browse_dataset.py CONFIG [--split train] [--num 20]
        [--output-dir work_dirs/browse] [--cfg-options key=value ...]

Each output file is ``<index>_<image name>.jpg``: visible | infrared (H x 2W), ground-truth
boxes in the class colours, ignored boxes in gray; a blank half means the modality was
dropped by RandomModalityDropout.
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np
from mmengine.config import DictAction

from fusion_mamba.utils import load_tool_config

GAP = 4  # pixels between the two images
IGNORED_COLOR = (160, 160, 160)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--split', default='train', choices=('train', 'val', 'test'),
                        help='which dataloader\'s dataset to browse (default train)')
    parser.add_argument('--num', type=int, default=20, help='samples to draw (default 20)')
    parser.add_argument('--output-dir', default='work_dirs/browse_dataset')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def to_bgr(chw) -> np.ndarray:
    """(C, H, W) uint8 tensor with C = 1 or 3 -> (H, W, 3) BGR array."""
    img = np.ascontiguousarray(chw.numpy().transpose(1, 2, 0))
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.shape[2] == 1 else img


def draw_boxes(img: np.ndarray, boxes: np.ndarray, labels, classes, palette,
               ignored: bool = False) -> None:
    """Draw (N, 4) x1y1x2y2 boxes with class names on ``img`` in place."""
    for (x1, y1, x2, y2), label in zip(boxes.round().astype(int), labels):
        rgb = IGNORED_COLOR if ignored else palette[label]
        color = tuple(int(c) for c in rgb[::-1])
        cv2.rectangle(img, (x1, y1), (x2, y2), color, 1)
        cv2.putText(img, classes[label], (x1, max(y1 - 2, 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    color, 1, cv2.LINE_AA)


def draw_pair(packed: dict, classes, palette) -> np.ndarray:
    """visible | infrared canvas of one packed sample, boxes drawn on both halves."""
    sample = packed['data_samples']
    halves = [to_bgr(packed['inputs'][key]) for key in ('visible', 'infrared')]
    for half in halves:
        for instances, ignored in ((sample.gt_instances, False),
                                   (sample.ignored_instances, True)):
            if len(instances):
                draw_boxes(half, instances.bboxes.numpy(), instances.labels.tolist(),
                           classes, palette, ignored)
    gap = np.full((halves[0].shape[0], GAP, 3), 255, np.uint8)
    return np.concatenate([halves[0], gap, halves[1]], axis=1)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_tool_config(args.config, args.cfg_options)
    import fusion_mamba.datasets  # noqa: F401  registers the paired transforms
    from mmdet.registry import DATASETS
    dataset = DATASETS.build(cfg[f'{args.split}_dataloader']['dataset'])
    classes = dataset.metainfo['classes']
    palette = dataset.metainfo.get('palette') or [(0, 255, 0)] * len(classes)
    os.makedirs(args.output_dir, exist_ok=True)
    for index in range(min(args.num, len(dataset))):
        packed = dataset[index]
        name = osp.splitext(osp.basename(packed['data_samples'].img_path))[0]
        path = osp.join(args.output_dir, f'{index:05d}_{name}.jpg')
        cv2.imwrite(path, draw_pair(packed, classes, palette))
    print(f'{min(args.num, len(dataset))} samples drawn to {args.output_dir}')


if __name__ == '__main__':
    main()
