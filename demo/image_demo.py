"""Detect objects in one visible + infrared image pair and draw them on both images.

    python demo/image_demo.py VISIBLE INFRARED CONFIG CHECKPOINT [--out-dir DIR]
        [--score-thr 0.3] [--device cpu] [--cfg-options key=value ...]

The pair goes through the config's test pipeline (without its annotation loading) and the
detector's predict mode; the detections scoring above ``--score-thr`` are drawn on the
visible image (left) and the infrared image (right) at their original size, as
``tools/test.py --show-dir`` draws them (``PairedDetVisualizationHook.draw_pair`` with the
config's visualizer), and the side-by-side image is written to
``DIR/<visible file name>_pair.jpg``. Class names and colours come from the checkpoint's
``dataset_meta``, else from the config's test dataset class.
"""
import argparse
import os
import os.path as osp

import cv2
import mmcv
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from fusion_mamba.engine.hooks import PairedDetVisualizationHook

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('visible', help='visible (RGB) image file')
    parser.add_argument('infrared', help='infrared image file, registered to the visible one')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-dir', default='work_dirs/image_demo',
                        help='folder of the drawn image (default work_dirs/image_demo)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='draw detections scoring above this (default 0.3)')
    parser.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu',
                        help='device (default cuda:0 when available, else cpu)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def check_pair(visible: str, infrared: str) -> None:
    """Both files exist, decode, and have the same width and height."""
    sizes = {}
    for name, path in (('visible', visible), ('infrared', infrared)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{name} image not found: {path}')
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise ValueError(f'cannot read the {name} image (not an image file?): {path}')
        sizes[name] = img.shape[:2]
    if sizes['visible'] != sizes['infrared']:
        (vh, vw), (ih, iw) = sizes['visible'], sizes['infrared']
        raise ValueError(f'the images of a pair must have the same size: visible {visible} is '
                         f'{vw}x{vh}, infrared {infrared} is {iw}x{ih} (W x H)')


def dataset_meta(cfg: Config, checkpoint: dict) -> dict:
    """Class names / palette of the checkpoint's ``dataset_meta``, else of the config's test
    dataset (its class's ``METAINFO`` updated by the config's ``metainfo``)."""
    from mmdet.registry import DATASETS
    meta = checkpoint.get('meta', {}).get('dataset_meta')
    if meta:
        return {k.lower(): v for k, v in meta.items()}
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cls = DATASETS.get(dataset_cfg.type)
    if dataset_cls is None:
        raise KeyError(f'test_dataloader.dataset.type {dataset_cfg.type!r} is not registered')
    meta = dict(getattr(dataset_cls, 'METAINFO', {}), **dataset_cfg.get('metainfo', {}))
    if 'classes' not in meta:
        raise ValueError(f'no class names: the checkpoint has no meta.dataset_meta and '
                         f'{dataset_cfg.type} has no METAINFO classes')
    return meta


def inference_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline without ``LoadAnnotations`` (there are none here)."""
    steps = [t for t in cfg.test_dataloader.dataset.pipeline
             if not t['type'].endswith('LoadAnnotations')]
    return Compose(steps)


def main(argv=None):
    args = parse_args(argv)
    check_pair(args.visible, args.infrared)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    from mmdet.registry import MODELS, VISUALIZERS

    model = MODELS.build(cfg.model)
    checkpoint = load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.dataset_meta = dataset_meta(cfg, checkpoint)
    model.to(args.device).eval()

    data = inference_pipeline(cfg)(dict(img_path=args.visible, ir_path=args.infrared, img_id=0))
    with torch.no_grad():
        result = model.test_step(pseudo_collate([data]))[0]

    # The hook draws with the current visualizer instance: the one built here.
    visualizer = VISUALIZERS.build(dict(cfg.visualizer, name='image_demo', vis_backends=None,
                                        save_dir=None))
    visualizer.dataset_meta = model.dataset_meta
    canvas = PairedDetVisualizationHook().draw_pair(result, args.score_thr)
    os.makedirs(args.out_dir, exist_ok=True)
    out_file = osp.join(args.out_dir, f'{osp.splitext(osp.basename(args.visible))[0]}_pair.jpg')
    mmcv.imwrite(canvas[..., ::-1], out_file)

    kept = result.pred_instances[result.pred_instances.scores > args.score_thr]
    classes = model.dataset_meta['classes']
    for label, score, box in zip(kept.labels.tolist(), kept.scores.tolist(),
                                 kept.bboxes.round().int().tolist()):
        print(f'{classes[label]:>12s} {score:.3f} {box}')
    print(f'{len(kept)} detections with score > {args.score_thr} drawn to {out_file}')


if __name__ == '__main__':
    main()
