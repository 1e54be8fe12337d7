"""mmdet's CocoMetric, fed the way the test loop feeds it, reproduces published COCO stats.

Each results json is turned into one data sample per image of the annotation file (``img_id``,
``ori_shape``, ``pred_instances`` with xyxy ``bboxes``, ``scores`` and ``labels``); labels
index ``dataset_meta['classes']``, which lists the annotation file's category names in file
order, the order in which CocoMetric maps class names back to category ids. Boxes and scores
stay float64, the values of the results json: two fake boxes have an IoU within 1e-6 of a COCO
threshold, and float32 rounding alone moves fake100's AP from .505 to .504.

CocoMetric rounds every stat to 3 decimals, so published 4-decimal values are compared
rounded. Its AR item names are fixed labels of COCOeval's stats 6..11, which are AR at
``proposal_nums[0]``, ``[1]``, ``[2]`` and the small / medium / large AR at
``proposal_nums[2]``: with ``proposal_nums=(1, 10, 100)`` (pycocotools' own maxDets) the
12 items are the standard AP, AP50, AP75, AP_s/m/l, AR1, AR10, AR100, AR_s/m/l.
"""
import json

import pytest
import torch
from mmdet.evaluation import CocoMetric

ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l',
         'AR@100', 'AR@300', 'AR@1000', 'AR_s@1000', 'AR_m@1000', 'AR_l@1000')
#: Published COCOeval bbox stats of the official cocoapi fake results on 100 val2014 images.
FAKE100_BBOX = (.505, .697, .573, .586, .519, .501, .387, .594, .595, .640, .566, .564)


def _data_samples(gt, detections):
    """One test-loop data sample per image of ``gt`` (images without detections included)."""
    cat_ids = [cat['id'] for cat in gt['categories']]
    per_image = {img['id']: [] for img in gt['images']}
    for det in detections:
        per_image[det['image_id']].append(det)
    for img in gt['images']:
        dets = per_image[img['id']]
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (det['bbox'] for det in dets)]
        yield {
            'img_id': img['id'],
            'ori_shape': (img['height'], img['width']),
            'pred_instances': {
                'bboxes': torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4),
                'scores': torch.tensor([det['score'] for det in dets], dtype=torch.float64),
                'labels': torch.tensor([cat_ids.index(det['category_id']) for det in dets],
                                       dtype=torch.long),
            },
        }


def _evaluate(ann_file, gt, detections, proposal_nums, items, batch_size=8):
    """Run CocoMetric's process / evaluate over batches; returns its prefixed results."""
    metric = CocoMetric(ann_file=str(ann_file), metric='bbox', proposal_nums=proposal_nums,
                        metric_items=list(items))
    metric.dataset_meta = {'classes': tuple(cat['name'] for cat in gt['categories'])}
    samples = list(_data_samples(gt, detections))
    for start in range(0, len(samples), batch_size):
        metric.process({}, samples[start:start + batch_size])
    return metric.evaluate(len(samples))


def test_fake100_bbox_stats(coco_eval_fixtures):
    folder = coco_eval_fixtures / 'coco_fake100'
    ann_file = folder / 'instances_val2014_100.json'
    gt = json.loads(ann_file.read_text())
    detections = json.loads((folder / 'instances_val2014_fakebbox100_results.json').read_text())

    res = _evaluate(ann_file, gt, detections, proposal_nums=(1, 10, 100), items=ITEMS)

    got = tuple(res[f'coco/bbox_{item}'] for item in ITEMS)
    assert got == pytest.approx(FAKE100_BBOX, abs=1e-9)


def test_ignore_fixture_bbox_stats(coco_eval_fixtures, tmp_path):
    folder = coco_eval_fixtures / 'faster_coco_eval_fixtures'
    gt = json.loads((folder / 'gt_ignore_test.json').read_text())
    # The fixture stores the image id as "2299" in places; a user casts it to int.
    for record in gt['images']:
        record['id'] = int(record['id'])
    for ann in gt['annotations']:
        ann['image_id'] = int(ann['image_id'])
    ann_file = tmp_path / 'gt_ignore_test.json'
    ann_file.write_text(json.dumps(gt))
    detections = [det for det in json.loads((folder / 'dt_ignore_test.json').read_text())
                  if det['score'] >= 0.1]

    res = _evaluate(ann_file, gt, detections, proposal_nums=(100, 300, 1000),
                    items=('mAP', 'mAP_50', 'mAP_75', 'AR@100'))

    published = {'mAP': 0.7099, 'mAP_50': 1.0, 'mAP_75': 0.8416, 'AR@100': 0.7154}
    for item, value in published.items():
        assert res[f'coco/bbox_{item}'] == pytest.approx(round(value, 3), abs=1e-9), item
