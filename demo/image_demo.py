"""Detect objects in one visible + infrared image pair and draw them on both images.

    python demo/image_demo.py VISIBLE INFRARED CONFIG CHECKPOINT [--out-dir DIR]
        [--score-thr THR] [--device cpu] [--amp [--amp-dtype {bf16,fp16}]] [--cuda-graph]
        [--cfg-options key=value ...]

The pair goes through ``FusionMambaInferencer`` (the config's test pipeline without its
annotation loading, the detector's predict mode); the detections are drawn on the visible
image (left) and the infrared image (right) at their original size, as ``tools/test.py
--show-dir`` draws them, and the side-by-side image is written to ``DIR/<visible file
name>_pair.jpg``. Without ``--score-thr`` the detections drawn are those above the
per-class thresholds the checkpoint was validated with (best F1 on the validation set),
0.3 for classes without one. Class names and colours come from the checkpoint's
``dataset_meta``, else from the config's test dataset class.
"""
import argparse
import os.path as osp

import mmcv

from fusion_mamba.apis.cli import (add_inference_args, describe_thresholds,
                                   inferencer_from_args)
from fusion_mamba.visualization import select_detections


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('visible', help='visible (RGB) image file')
    parser.add_argument('infrared', help='infrared image file, registered to the visible one')
    add_inference_args(parser)
    parser.add_argument('--out-dir', default='work_dirs/image_demo',
                        help='folder of the drawn image (default work_dirs/image_demo)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    inferencer = inferencer_from_args(args)
    prediction = next(inferencer.iter_predictions((args.visible, args.infrared)))
    out_file = osp.join(args.out_dir, f'{prediction.name}_pair.jpg')
    mmcv.imwrite(inferencer.visualize(prediction, args.score_thr)[..., ::-1], out_file)

    kept = select_detections(prediction.data_sample.pred_instances,
                             inferencer.drawing_thresholds(args.score_thr))
    for label, score, box in zip(kept.labels.tolist(), kept.scores.tolist(),
                                 kept.bboxes.round().int().tolist()):
        print(f'{inferencer.classes[label]:>12s} {score:.3f} {box}')
    print(f'{len(kept)} detections {describe_thresholds(inferencer, args.score_thr)} drawn '
          f'to {out_file}')


if __name__ == '__main__':
    main()
