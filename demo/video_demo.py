"""Detect objects in a visible + infrared video pair and write the drawn side-by-side video.

    python demo/video_demo.py VISIBLE.mp4 INFRARED.mp4 CONFIG CHECKPOINT --out out.mp4
        [--batch-size 1] [--score-thr THR] [--device cpu] [--amp [--amp-dtype bf16]]
        [--cuda-graph] [--cfg-options key=value ...]

The two videos must be registered and synchronised: same frame count, frame size and frame
rate (checked first; a difference is an error naming both files). Every frame pair goes
through ``FusionMambaInferencer``; the output video shows visible | infrared (2W x H) with
the detections drawn as ``demo/image_demo.py`` draws them, at the input frame rate.
"""
import argparse
import os
import os.path as osp
import sys

import cv2
from mmengine.utils import ProgressBar

from fusion_mamba.apis import PairedVideoReader, video_pairs
from fusion_mamba.apis.cli import (add_inference_args, describe_thresholds,
                                   inferencer_from_args)

FOURCC = {'.mp4': 'mp4v', '.avi': 'XVID'}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('visible', help='visible (RGB) video file')
    parser.add_argument('infrared', help='infrared video file, synchronised with the visible')
    add_inference_args(parser)
    parser.add_argument('--out', required=True, help='output video (.mp4 or .avi)')
    parser.add_argument('--batch-size', type=int, default=1, help='frame pairs per forward')
    return parser.parse_args(argv)


def open_writer(path: str, fps: float, size: tuple) -> cv2.VideoWriter:
    """A ``cv2.VideoWriter`` of (W, H) ``size`` frames, or ``ValueError`` naming ``path``."""
    ext = osp.splitext(path)[1].lower()
    if ext not in FOURCC:
        raise ValueError(f'--out must end with {" or ".join(FOURCC)}, got {path}')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*FOURCC[ext]), fps, size)
    if not writer.isOpened():
        raise ValueError(f'cannot write the video {path}')
    return writer


def main(argv=None):
    args = parse_args(argv)
    with PairedVideoReader(args.visible, args.infrared) as reader:
        inferencer = inferencer_from_args(args)
        writer = open_writer(args.out, reader.fps, (2 * reader.width, reader.height))
        print(f'{len(reader)} frame pairs of {reader.width}x{reader.height} at '
              f'{reader.fps:g} fps; drawing detections '
              f'{describe_thresholds(inferencer, args.score_thr)}')
        progress = ProgressBar(len(reader), file=sys.stdout)
        try:
            for prediction in inferencer.iter_predictions(video_pairs(reader),
                                                          args.batch_size):
                drawing = inferencer.visualize(prediction, args.score_thr)
                writer.write(cv2.cvtColor(drawing, cv2.COLOR_RGB2BGR))
                progress.update()
        finally:
            writer.release()
    print(f'\nwrote {args.out}')


if __name__ == '__main__':
    main()
