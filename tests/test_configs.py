"""Every config under configs/ loads, names registered components and builds its model."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import fusion_mamba  # noqa: F401  registers the components
from mmdet.registry import DATASETS, METRICS, MODELS

CONFIG_ROOT = Path(__file__).resolve().parents[1] / 'configs'
CONFIGS = sorted(p for p in CONFIG_ROOT.rglob('*.py') if '_base_' not in p.parts)


def config_id(path: Path) -> str:
    return str(path.relative_to(CONFIG_ROOT))


def _datasets(dataloader_cfg) -> list:
    dataset = dataloader_cfg.dataset
    return [dataset, dataset.dataset] if 'dataset' in dataset else [dataset]


def test_configs_found():
    assert len(CONFIGS) >= 20


@pytest.mark.parametrize('path', CONFIGS, ids=config_id)
def test_config_is_complete_and_builds(path):
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports.imports == ['fusion_mamba']
    init_default_scope('mmdet')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for dataset in _datasets(cfg[loader]):
            assert DATASETS.get(dataset.type) is not None, dataset.type
    evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator, list) else [
        cfg.val_evaluator]
    val_ann = cfg.val_dataloader.dataset.data_root + cfg.val_dataloader.dataset.ann_file
    for evaluator in evaluators:
        assert METRICS.get(evaluator.type) is not None
        assert evaluator.ann_file == val_ann, 'evaluator and val dataset disagree'
    model = MODELS.build(cfg.model)
    num_classes = cfg.model.bbox_head.num_classes
    val_dataset = cfg.val_dataloader.dataset
    classes = (val_dataset.get('metainfo') or {}).get('classes')  # set by the config
    if classes is None:
        classes = DATASETS.get(val_dataset.type).METAINFO.get('classes')
    if classes is not None:
        assert num_classes == len(classes)
    for dataset in _datasets(cfg.train_dataloader):
        if 'metainfo' in dataset:
            assert dataset.metainfo == val_dataset.metainfo, 'train and val classes differ'
    assert sum(p.numel() for p in model.parameters()) > 0


def test_demo_model_predicts_with_nms():
    """The demo model runs end to end on a batch of two pairs, one without objects."""
    cfg = Config.fromfile(str(CONFIG_ROOT / 'fusion_mamba/fm-yolov8_demo_1xb8-5e_demo-pairs.py'))
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model).eval()
    from mmdet.structures import DetDataSample
    samples = [DetDataSample(metainfo=dict(img_shape=(128, 160), ori_shape=(128, 160),
                                           scale_factor=(1.0, 1.0))) for _ in range(2)]
    data = dict(inputs=dict(visible=[torch.randint(0, 255, (3, 128, 160), dtype=torch.uint8)] * 2,
                            infrared=[torch.randint(0, 255, (3, 128, 160), dtype=torch.uint8)] * 2),
                data_samples=samples)
    with torch.no_grad():
        results = model.test_step(data)
    assert len(results) == 2
    for result in results:
        boxes = result.pred_instances.bboxes
        assert boxes.shape[1] == 4 and len(boxes) <= cfg.model.test_cfg.max_per_img
        assert (result.pred_instances.scores > cfg.model.test_cfg.score_thr).all()
