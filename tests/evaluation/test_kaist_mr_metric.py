"""KAISTMissRateMetric end to end (registry build, process, evaluate) on hand-made files."""
import json
import math

import pytest
import torch
from mmdet.registry import METRICS

import fusion_mamba.evaluation  # noqa: F401  registers the metric

PERSON = (100, 100, 40, 100)  # xywh of a reasonable pedestrian
FAR = (400, 300, 440, 400)  # xyxy of a detection on background
NO_DETECTION = ()


def _xyxy(xywh):
    x, y, w, h = xywh
    return (x, y, x + w, y + h)


def _ann_file(tmp_path, annotations, conditions):
    """Annotation file of 640 x 512 images ``0 .. len(conditions) - 1``.

    ``conditions[i]`` is the condition of image i or None to leave the field out;
    ``annotations`` are dicts with ``image_id`` and ``bbox`` (category 'person' unless set).
    """
    images = []
    for img_id, condition in enumerate(conditions):
        image = {'id': img_id, 'width': 640, 'height': 512, 'file_name': f'{img_id}.jpg'}
        if condition is not None:
            image['condition'] = condition
        images.append(image)
    coco = {
        'images': images,
        'annotations': [{'id': i, 'category_id': 1, **ann} for i, ann in enumerate(annotations)],
        'categories': [{'id': 1, 'name': 'person'}, {'id': 2, 'name': 'people'}],
    }
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(coco))
    return str(path)


def _sample(img_id, detections):
    """Test-loop data sample; ``detections`` are ``(x1, y1, x2, y2, score[, label])``."""
    return {
        'img_id': img_id,
        'pred_instances': {
            'bboxes': torch.tensor([d[:4] for d in detections],
                                   dtype=torch.float32).reshape(-1, 4),
            'scores': torch.tensor([d[4] for d in detections], dtype=torch.float32),
            'labels': torch.tensor([d[5] if len(d) > 5 else 0 for d in detections]),
        },
    }


def _evaluate(ann_file, detections_per_image, **kwargs):
    metric = METRICS.build(dict(type='KAISTMissRateMetric', ann_file=ann_file, **kwargs))
    samples = [_sample(i, dets) for i, dets in enumerate(detections_per_image)]
    metric.process({}, samples[:2])
    metric.process({}, samples[2:])
    return metric.evaluate(len(samples))


def test_perfect_detections_give_zero(tmp_path):
    ann = _ann_file(tmp_path, [{'image_id': 0, 'bbox': PERSON},
                               {'image_id': 1, 'bbox': PERSON},
                               {'image_id': 1, 'bbox': (300, 50, 60, 150)}], [None, None])
    res = _evaluate(ann, [[(*_xyxy(PERSON), 0.9)],
                          [(*_xyxy(PERSON), 0.8), (300, 50, 360, 200, 0.7)]])
    assert res.keys() == {'kaist/MR_all'}
    assert res['kaist/MR_all'] == pytest.approx(0.0, abs=1e-6)


def test_no_detections_give_100_percent(tmp_path):
    ann = _ann_file(tmp_path, [{'image_id': 0, 'bbox': PERSON}], [None, None])
    assert _evaluate(ann, [NO_DETECTION, NO_DETECTION]) == {'kaist/MR_all': 100.0}


def test_hand_computed_curve(tmp_path):
    second = (300, 100, 40, 100)
    ann = _ann_file(tmp_path, [{'image_id': 0, 'bbox': PERSON}, {'image_id': 0, 'bbox': second},
                               *({'image_id': i, 'bbox': PERSON} for i in (1, 2, 3))],
                    [None] * 4)
    # By score: TP FP TP FP FP TP over 5 pedestrians in 4 images (see test_miss_rate).
    res = _evaluate(ann, [[(*_xyxy(PERSON), 0.9), (*_xyxy(second), 0.7)],
                          [(*FAR, 0.8), (*_xyxy(PERSON), 0.4)],
                          [(*FAR, 0.6)],
                          [(*FAR, 0.5)]])
    assert res['kaist/MR_all'] == pytest.approx(100 * 0.6948291755922805)


def _ignored_objects():
    """One reasonable pedestrian and five objects the reasonable setting ignores, with a
    detection on each ignored object scored above the pedestrian's."""
    annotations = [
        {'image_id': 0, 'bbox': PERSON},
        {'image_id': 0, 'bbox': (200, 100, 80, 120), 'category_id': 2},  # 'people'
        {'image_id': 0, 'bbox': (300, 200, 50, 100), 'iscrowd': 1},
        {'image_id': 0, 'bbox': (400, 100, 40, 100), 'occlusion': 2},
        {'image_id': 0, 'bbox': (500, 100, 20, 40)},  # 40 px tall
        {'image_id': 0, 'bbox': (2, 300, 40, 100)},  # crosses the 5 px border
    ]
    detections = [
        (210, 110, 240, 200, 0.9),  # inside 'people': IoU .28, all of it inside
        (300, 200, 350, 300, 0.9), (400, 100, 440, 200, 0.9), (500, 100, 520, 140, 0.9),
        (2, 300, 42, 400, 0.9), (*_xyxy(PERSON), 0.5),
    ]
    return annotations, detections


def test_ignore_regions_and_out_of_setting_boxes_are_neither_tp_fp_nor_missed(tmp_path):
    annotations, detections = _ignored_objects()
    ann = _ann_file(tmp_path, annotations, [None])
    assert _evaluate(ann, [detections])['kaist/MR_all'] == pytest.approx(0.0, abs=1e-6)
    assert _evaluate(ann, [detections[-1:]])['kaist/MR_all'] == pytest.approx(0.0, abs=1e-6)


def test_widened_setting_counts_the_heavy_small_and_border_boxes(tmp_path):
    annotations, detections = _ignored_objects()
    ann = _ann_file(tmp_path, annotations, [None])
    wide = dict(height_range=(0, math.inf), occlusions=(0, 1, 2), border_margin=None)
    # 4 regular boxes, only the pedestrian found, no false positive: miss rate .75 everywhere.
    assert _evaluate(ann, [detections[-1:]], **wide)['kaist/MR_all'] == pytest.approx(75.0)


def test_day_and_night_subsets_have_their_own_fppi(tmp_path):
    ann = _ann_file(tmp_path, [{'image_id': i, 'bbox': PERSON} for i in range(4)],
                    ['day', 'day', 'night', 'night'])
    res = _evaluate(ann, [[(*FAR, 0.95), (*_xyxy(PERSON), 0.9)], [(*_xyxy(PERSON), 0.9)],
                          NO_DETECTION, NO_DETECTION])
    # day: 2 images, the FP is at FPPI .5: references below it miss all, .562 and 1 miss none.
    assert res['kaist/MR_day'] == pytest.approx(100 * 1e-10 ** (2 / 9))
    # all: 4 images, FP at FPPI .25: references .316, .562, 1 see recall 2/4.
    assert res['kaist/MR_all'] == pytest.approx(100 * 0.5 ** (3 / 9))
    assert res['kaist/MR_night'] == 100.0


def test_only_conditions_present_are_reported(tmp_path):
    ann = _ann_file(tmp_path, [{'image_id': 0, 'bbox': PERSON}], ['day', None])
    res = _evaluate(ann, [NO_DETECTION, NO_DETECTION])
    assert res.keys() == {'kaist/MR_all', 'kaist/MR_day'}


def test_fppi_divides_by_all_evaluated_images(tmp_path):
    detections = [(*FAR, 0.9), (*_xyxy(PERSON), 0.8)]
    one = _ann_file(tmp_path, [{'image_id': 0, 'bbox': PERSON}], [None])
    assert _evaluate(one, [detections])['kaist/MR_all'] == pytest.approx(100 * 1e-10 ** (1 / 9))
    ten = _ann_file(tmp_path, [{'image_id': 0, 'bbox': PERSON}], [None] * 10)
    res = _evaluate(ten, [detections] + [NO_DETECTION] * 9)
    assert res['kaist/MR_all'] == pytest.approx(100 * 1e-10 ** (5 / 9))


def test_caltech_detection_height_filter_is_optional(tmp_path):
    ann = _ann_file(tmp_path, [{'image_id': 0, 'bbox': PERSON}], [None])
    detections = [[(300, 300, 310, 320, 0.9), (*_xyxy(PERSON), 0.5)]]  # 20 px tall FP
    kaist = _evaluate(ann, detections)['kaist/MR_all']
    assert kaist == pytest.approx(100 * 1e-10 ** (1 / 9))
    caltech = _evaluate(ann, detections, det_height_expand=1.25)['kaist/MR_all']
    assert caltech == pytest.approx(0.0, abs=1e-6)


def test_det_label_selects_the_evaluated_class(tmp_path):
    ann = _ann_file(tmp_path, [{'image_id': 0, 'bbox': PERSON}], [None])
    detections = [[(*FAR, 0.9, 1), (*_xyxy(PERSON), 0.5, 0)]]
    assert _evaluate(ann, detections)['kaist/MR_all'] == pytest.approx(100 * 1e-10 ** (1 / 9))
    assert _evaluate(ann, detections, det_label=0)['kaist/MR_all'] == pytest.approx(0, abs=1e-6)


def test_unknown_image_id_is_an_error(tmp_path):
    ann = _ann_file(tmp_path, [], [None])
    metric = METRICS.build(dict(type='KAISTMissRateMetric', ann_file=ann))
    metric.process({}, [_sample(7, NO_DETECTION)])
    with pytest.raises(KeyError, match='img_id 7'):
        metric.evaluate(1)
