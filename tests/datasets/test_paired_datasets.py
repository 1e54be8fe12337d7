"""Paired COCO datasets: ir_path parsing, ignore regions, registration, pipelines, CocoMetric."""
import json

import numpy as np
import pytest
import torch
from mmdet.evaluation import CocoMetric
from mmdet.registry import DATASETS

from fusion_mamba.datasets import DEMO_CLASSES, M3FD_CLASSES, generate_demo_dataset


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('paired') / 'demo_pairs'
    generate_demo_dataset(str(root), seed=0, num_train=16, num_val=6)
    return str(root)


def write_coco(path, images, annotations, classes=('person', )):
    path.write_text(json.dumps(dict(
        images=images, annotations=annotations,
        categories=[dict(id=i + 1, name=n) for i, n in enumerate(classes)])))
    return str(path)


def image(img_id, **extra):
    record = dict(id=img_id, file_name=f'vis/{img_id}.jpg', ir_file_name=f'ir/{img_id}.jpg',
                  width=100, height=80)
    record.update(extra)
    return record


def box(ann_id, img_id, **extra):
    record = dict(id=ann_id, image_id=img_id, category_id=1, bbox=[10, 10, 20, 30], area=600,
                  iscrowd=0)
    record.update(extra)
    return record


def build(ann_file, **kwargs):
    return DATASETS.build(dict(type='PairedCocoDataset', ann_file=ann_file, data_root='root',
                               metainfo=dict(classes=('person', )), pipeline=[], **kwargs))


def test_parses_ir_path_tags_and_ignore_regions(tmp_path):
    ann_file = write_coco(tmp_path / 'a.json', [image(1, condition='night'), image(2)],
                          [box(1, 1), box(2, 1, ignore=1), box(3, 2, iscrowd=1)])
    dataset = build(ann_file, test_mode=True)
    first = dataset.get_data_info(0)
    assert first['img_path'] == 'root/vis/1.jpg' and first['ir_path'] == 'root/ir/1.jpg'
    assert first['condition'] == 'night' and 'condition' not in dataset.get_data_info(1)
    assert [inst['ignore_flag'] for inst in first['instances']] == [0, 1]
    assert dataset.get_data_info(1)['instances'][0]['ignore_flag'] == 1


def test_separate_infrared_prefix(tmp_path):
    ann_file = write_coco(tmp_path / 'a.json', [image(1)], [box(1, 1)])
    dataset = build(ann_file, data_prefix=dict(img='rgb', ir='thermal'), test_mode=True)
    assert dataset.get_data_info(0)['ir_path'] == 'root/thermal/ir/1.jpg'


def test_filter_empty_gt_like_mmdet(tmp_path):
    ann_file = write_coco(tmp_path / 'a.json', [image(1), image(2)], [box(1, 1)])
    assert len(build(ann_file, filter_cfg=dict(filter_empty_gt=True))) == 1
    assert len(build(ann_file, filter_cfg=dict(filter_empty_gt=True), test_mode=True)) == 2


def test_not_paired_json_names_the_file(tmp_path):
    record = image(1)
    del record['ir_file_name']
    ann_file = write_coco(tmp_path / 'plain.json', [record], [])
    with pytest.raises(KeyError, match='plain.json'):
        build(ann_file)


@pytest.mark.parametrize('name, classes', [('LLVIPDataset', ('person', )),
                                           ('M3FDDataset', M3FD_CLASSES),
                                           ('FLIRAlignedDataset', ('person', 'car', 'bicycle')),
                                           ('KAISTDataset', ('person', )),
                                           ('DemoPairsDataset', DEMO_CLASSES)])
def test_registered_with_classes_and_palette(name, classes):
    cls = DATASETS.get(name)
    assert cls.METAINFO['classes'] == classes
    assert len(cls.METAINFO['palette']) == len(classes)


TRAIN_PIPELINE = [
    dict(type='PairedMosaic', img_scale=(320, 256), pad_val=114.0),
    dict(type='PairedRandomAffine', scaling_ratio_range=(0.5, 1.5), border=(-160, -128)),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='PairedRandomFlip', prob=0.5),
    dict(type='PairedResize', scale=(320, 256), keep_ratio=True),
    dict(type='PairedPad', size=(320, 256), pad_val=dict(img=(114, 114, 114))),
    dict(type='RandomModalityDropout', prob=0.1),
    dict(type='PackMultiModalDetInputs'),
]
LOAD = [dict(type='LoadPairedImagesFromFile', ir_color_type='grayscale'),
        dict(type='LoadAnnotations', with_bbox=True)]


def test_demo_training_pipeline_with_mosaic(demo_root):
    dataset = DATASETS.build(dict(
        type='MultiImageMixDataset', pipeline=TRAIN_PIPELINE,
        dataset=dict(type='DemoPairsDataset', data_root=demo_root,
                     generator=dict(num_train=16, num_val=6),
                     ann_file='annotations/train.json', pipeline=LOAD,
                     filter_cfg=dict(filter_empty_gt=True))))
    np.random.seed(0)
    for i in range(4):
        out = dataset[i]
        assert out['inputs']['visible'].shape == (3, 256, 320)
        assert out['inputs']['infrared'].shape == (1, 256, 320)
        assert out['inputs']['visible'].dtype == torch.uint8
        assert out['data_samples'].metainfo['ir_path'].endswith('.jpg')


def test_demo_test_pipeline_and_coco_metric(demo_root):
    """Ground truth fed back as predictions scores mAP 1 with mmdet's CocoMetric."""
    dataset = DATASETS.build(dict(
        type='DemoPairsDataset', data_root=demo_root, generator=dict(num_train=16, num_val=6),
        ann_file='annotations/val.json', test_mode=True,
        pipeline=LOAD + [dict(type='PairedResize', scale=(640, 512), keep_ratio=True),
                         dict(type='PackMultiModalDetInputs')]))
    metric = CocoMetric(ann_file=f'{demo_root}/annotations/val.json', metric='bbox')
    metric.dataset_meta = dataset.metainfo
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        assert sample.metainfo['scale_factor'] == (2.0, 2.0)
        gt = sample.gt_instances
        pred = dict(bboxes=gt.bboxes.tensor / 2.0, labels=gt.labels,
                    scores=torch.ones(len(gt.labels)))
        metric.process({}, [dict(img_id=sample.img_id, ori_shape=sample.ori_shape,
                                 pred_instances=pred)])
    results = metric.evaluate(len(dataset))
    assert results['coco/bbox_mAP'] == pytest.approx(1.0)
