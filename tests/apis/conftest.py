"""A tiny FM-YOLOv8 (random weights) on tiny demo data, for the inferencer and the demos."""
from pathlib import Path

import mmengine
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / 'configs/fusion_mamba/fm-yolov8_demo_1xb8-5e_demo-pairs.py'
GENERATOR = dict(num_train=1, num_val=4, img_size=(160, 128))

TINY_CONFIG = """
_base_ = {base!r}
img_scale = (128, 128)
model = dict(
    backbone=dict(rgb_stream=dict(widen_factor=0.125), in_channels=[32, 64, 128],
                  fusion=dict(num_dssf=1, ssm_cfg=dict(d_state=4))),
    neck=dict(widen_factor=0.125), bbox_head=dict(widen_factor=0.125))
test_pipeline = [
    dict(type='LoadPairedImagesFromFile'),
    dict(type='PairedResize', scale=img_scale, keep_ratio=True),
    dict(type='PairedPad', size=img_scale, pad_val=dict(img=(114, 114, 114))),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackMultiModalDetInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
"""


@pytest.fixture(scope='session')
def tiny_detector(tmp_path_factory):
    """``dict(folder, data_root, config, checkpoint, save)``: 4 demo validation pairs of
    160x128, a tiny config, a randomly initialised checkpoint with the demo classes in its
    meta, and ``save(path, **meta)`` writing that checkpoint with more meta."""
    from mmengine.registry import init_default_scope

    from fusion_mamba.datasets import DemoPairsDataset, ensure_demo_dataset
    from mmdet.registry import MODELS
    folder = tmp_path_factory.mktemp('tiny_detector')
    data_root = folder / 'demo'
    ensure_demo_dataset(str(data_root), **GENERATOR)
    config = folder / 'tiny.py'
    config.write_text(TINY_CONFIG.format(base=str(DEMO_CONFIG)))
    init_default_scope('mmdet')
    torch.manual_seed(0)
    state_dict = MODELS.build(mmengine.Config.fromfile(config).model).state_dict()

    def save(path, **meta):
        mmengine.runner.save_checkpoint(
            dict(state_dict=state_dict,
                 meta=dict(dataset_meta=dict(DemoPairsDataset.METAINFO), **meta)), str(path))
        return path

    return dict(folder=folder, data_root=data_root, config=config,
                checkpoint=save(folder / 'tiny.pth'), save=save)
