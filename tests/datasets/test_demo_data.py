"""The built-in demo dataset: deterministic, fast, paired COCO, complementary modalities."""
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from fusion_mamba.datasets import DEMO_CLASSES, ensure_demo_dataset, generate_demo_dataset

SMALL = dict(num_train=24, num_val=8)


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo') / 'pairs'
    generate_demo_dataset(str(root), seed=0, **SMALL)
    return root


def digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_data(demo_root, tmp_path):
    generate_demo_dataset(str(tmp_path / 'again'), seed=0, **SMALL)
    assert digest(tmp_path / 'again') == digest(demo_root)
    generate_demo_dataset(str(tmp_path / 'other'), seed=1, **SMALL)
    other = digest(tmp_path / 'other')
    assert other.keys() == digest(demo_root).keys()
    assert other['annotations/train.json'] != digest(demo_root)['annotations/train.json']


def test_paired_coco_content(demo_root):
    meta = json.loads((demo_root / 'meta.json').read_text())
    assert meta['classes'] == list(DEMO_CLASSES)
    for split, count in (('train', 24), ('val', 8)):
        coco = json.loads((demo_root / 'annotations' / f'{split}.json').read_text())
        assert [c['name'] for c in coco['categories']] == list(DEMO_CLASSES)
        assert [c['id'] for c in coco['categories']] == [1, 2, 3, 4]
        assert len(coco['images']) == count == meta['counts'][split]['images']
        assert len(coco['annotations']) == meta['counts'][split]['boxes'] > count
        for img in coco['images']:
            visible = cv2.imread(str(demo_root / img['file_name']), cv2.IMREAD_UNCHANGED)
            infrared = cv2.imread(str(demo_root / img['ir_file_name']), cv2.IMREAD_UNCHANGED)
            assert visible.shape == (256, 320, 3) and infrared.shape == (256, 320)
            assert img['condition'] in ('day', 'night')
            assert max(abs(v) for v in img['ir_offset']) <= 2
        for ann in coco['annotations']:
            x, y, w, h = ann['bbox']
            assert x >= 0 and y >= 0 and x + w <= 320 and y + h <= 256 and min(w, h) >= 5
    conditions = {img['condition'] for img in coco['images']}
    assert conditions == {'day', 'night'}


def box_contrast(gray: np.ndarray, box) -> float:
    """|median inside the box - median of a 4-px ring around it|."""
    x, y, w, h = (int(round(v)) for v in box)
    inner = gray[y + 1:y + h - 1, x + 1:x + w - 1]
    y0, x0 = max(y - 4, 0), max(x - 4, 0)
    ring = gray[y0:y + h + 4, x0:x + w + 4].copy()
    mask = np.ones(ring.shape, bool)
    mask[y - y0:y - y0 + h, x - x0:x - x0 + w] = False
    return abs(float(np.median(inner)) - float(np.median(ring[mask])))


def test_classes_have_complementary_visibility(tmp_path):
    """Signs show only in the visible image, animals only in the infrared one, people at
    night only in the infrared one; cars in both."""
    root = tmp_path / 'vis'
    generate_demo_dataset(str(root), seed=3, num_train=60, num_val=1)
    coco = json.loads((root / 'annotations' / 'train.json').read_text())
    images = {img['id']: img for img in coco['images']}
    contrast = defaultdict(list)
    for img_id, img in images.items():
        visible = cv2.imread(str(root / img['file_name']), cv2.IMREAD_GRAYSCALE)
        infrared = cv2.imread(str(root / img['ir_file_name']), cv2.IMREAD_GRAYSCALE)
        for ann in coco['annotations']:
            if ann['image_id'] == img_id:
                name = DEMO_CLASSES[ann['category_id'] - 1]
                contrast[name, img['condition']].append(
                    (box_contrast(visible, ann['bbox']), box_contrast(infrared, ann['bbox'])))
    mean = {key: np.mean(values, axis=0) for key, values in contrast.items()}
    for condition in ('day', 'night'):
        assert mean['sign', condition][0] > 15 and mean['sign', condition][1] < 5
        assert mean['animal', condition][0] < 5 and mean['animal', condition][1] > 30
        assert mean['car', condition].min() > 10
    assert mean['person', 'night'][0] < 6 and mean['person', 'night'][1] > 50
    assert mean['person', 'day'][1] > 30


def test_default_generation_counts(tmp_path):
    # Its speed is printed by tools/dataset_converters/make_demo_data.py, not asserted here.
    meta = generate_demo_dataset(str(tmp_path / 'default'))
    assert meta['counts']['train']['images'] == 400 and meta['counts']['val']['images'] == 100
    assert meta['seconds'] > 0


def test_ensure_regenerates_only_when_parameters_change(demo_root):
    stamp = (demo_root / 'annotations' / 'train.json').stat().st_mtime_ns
    ensure_demo_dataset(str(demo_root), seed=0, **SMALL)
    assert (demo_root / 'annotations' / 'train.json').stat().st_mtime_ns == stamp
    ensure_demo_dataset(str(demo_root), seed=0, num_train=4, num_val=2)
    meta = json.loads((demo_root / 'meta.json').read_text())
    assert meta['counts']['train']['images'] == 4
    ensure_demo_dataset(str(demo_root), seed=0, **SMALL)  # back, for the other tests


@pytest.mark.parametrize('kwargs', [dict(num_train=0), dict(img_size=(64, 64)),
                                    dict(night_ratio=2.0), dict(max_offset=20)])
def test_rejects_bad_parameters(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generate_demo_dataset(str(tmp_path / 'bad'), **kwargs)
