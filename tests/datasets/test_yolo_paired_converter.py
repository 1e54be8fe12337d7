"""tools/dataset_converters/yolo_paired.py on tiny generated pairs with YOLO labels.

Images are 32 x 24 px, so a normalised box (cx, cy, w, h) is the pixel box
(32 cx - 16 w, 24 cy - 12 h, 32 cx + 16 w, 24 cy + 12 h); the values are picked to give
exact pixel numbers.
"""
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from fusion_mamba.datasets.converters import ConversionError, read_classes
from fusion_mamba.datasets.converters.common import BOX_CLIPPED, MISSING_INFRARED
from fusion_mamba.datasets.converters.yolo_paired import (EMPTY_LABEL_FILE, INVALID_LABELS,
                                                          LABELS_DIFFER, NO_LABEL_FILE)

REPO = Path(__file__).resolve().parents[2]
W, H = 32, 24
CLASSES = 'person,car,bike'


def put_image(path: Path, value=128, size=(W, H)):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((size[1], size[0], 3), value, np.uint8))


def put_labels(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'yolo_paired', REPO / 'tools' / 'dataset_converters' / 'yolo_paired.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tree(tmp_path):
    """Pairs a, b, c, d (and e without its infrared image) in rgb/ (jpg) and ir/ (png)."""
    root = tmp_path / 'pairs'
    for stem in 'abcde':
        put_image(root / 'rgb' / f'{stem}.jpg')
        if stem != 'e':
            put_image(root / 'ir' / f'{stem}.png', value=60)
    labels = root / 'labels'
    # a: person centred, 8 x 12 px -> (12, 6, 20, 18); a bike at cx 30 px, 8 px wide, reaching
    # x = 34 > 32: clipped to (26, 3, 32, 21).
    put_labels(labels / 'a.txt', '0 0.5 0.5 0.25 0.5\n2 0.9375 0.5 0.25 0.75\n')
    # b: double spaces, a tab, trailing blanks, blank lines, CRLF endings: car (0, 0, 16, 12)
    # and bike (16, 12, 32, 24).
    put_labels(labels / 'b.txt', '1  0.25\t0.25 0.5 0.5  \r\n\r\n \t\n2 0.75 0.75 0.5 0.5 \r\n')
    # c: no label file; d: empty label file -> negatives. e: label but no infrared image.
    put_labels(labels / 'd.txt', '\n')
    put_labels(labels / 'e.txt', '0 0.5 0.5 0.25 0.5\n')
    return root


def convert(tree, tmp_path, *extra, out='ann/train.json'):
    args = [str(tree), '--visible', 'rgb', '--infrared', 'ir', '--labels', 'labels',
            '--classes', CLASSES, '--out', str(tmp_path / out), *extra]
    return load_tool().main(args)


def boxes_by_image(coco):
    names = {img['id']: Path(img['file_name']).stem for img in coco['images']}
    boxes = {name: [] for name in names.values()}
    for ann in coco['annotations']:
        boxes[names[ann['image_id']]].append((ann['category_id'], ann['bbox']))
    return boxes


def test_pairs_labels_and_negatives(tree, tmp_path, capsys):
    assert convert(tree, tmp_path) == 0
    coco = json.loads((tmp_path / 'ann/train.json').read_text())
    assert [(i['file_name'], i['ir_file_name'], i['width'], i['height'])
            for i in coco['images']] == [(f'rgb/{s}.jpg', f'ir/{s}.png', W, H) for s in 'abcd']
    assert coco['categories'] == [dict(id=1, name='person'), dict(id=2, name='car'),
                                  dict(id=3, name='bike')]
    # category id = class index + 1; bbox = [x1, y1, x2 - x1, y2 - y1]
    assert boxes_by_image(coco) == {
        'a': [(1, [12.0, 6.0, 8.0, 12.0]), (3, [26.0, 3.0, 6.0, 18.0])],
        'b': [(2, [0.0, 0.0, 16.0, 12.0]), (3, [16.0, 12.0, 16.0, 12.0])],
        'c': [], 'd': []}
    assert [a['area'] for a in coco['annotations']] == [96.0, 108.0, 192.0, 192.0]
    report = json.loads((tmp_path / 'ann/train_report.json').read_text())
    assert report['notes'][NO_LABEL_FILE] == ['c']
    assert report['notes'][EMPTY_LABEL_FILE] == ['d']
    assert report['notes'][BOX_CLIPPED] == ['a: (26.0, 3.0, 34.0, 21.0)']
    assert report['skipped_images'] == {MISSING_INFRARED: ['e']}
    assert report['expected_paths'] == {MISSING_INFRARED: [str(tree / 'ir' / 'e.jpg')]}
    printed = capsys.readouterr().out
    assert 'classes (category id = index + 1): person, car, bike' in printed
    assert 'train: 4 images, 4 boxes written' in printed
    assert 'kept: no label file (negative image): 1 (c)' in printed
    assert 'kept: empty label file (negative image): 1 (d)' in printed


def test_result_loads_with_the_yolo_paired_config(tree, tmp_path):
    """The training config's dataset reads the converted file: classes, boxes, labels."""
    assert convert(tree, tmp_path, out='pairs/annotations/val.json') == 0
    cfg = Config.fromfile(str(REPO / 'configs/fusion_mamba/fm-yolov8_l_1xb4-150e_yolo-paired.py'))
    from mmdet.registry import DATASETS
    dataset_cfg = cfg.val_dataloader.dataset
    dataset_cfg.update(data_root=str(tree) + '/', ann_file='annotations/val.json',
                       metainfo=dict(classes=('person', 'car', 'bike')),
                       pipeline=[dict(type='LoadPairedImagesFromFile'),
                                 dict(type='LoadAnnotations', with_bbox=True),
                                 dict(type='PackMultiModalDetInputs')])
    dataset = DATASETS.build(dataset_cfg)
    assert dataset.metainfo['classes'] == ('person', 'car', 'bike') and len(dataset) == 4
    sample = dataset[1]['data_samples']
    assert Path(sample.ir_path).name == 'b.png'
    assert sample.gt_instances.bboxes.tensor.tolist() == [[0, 0, 16, 12], [16, 12, 32, 24]]
    assert sample.gt_instances.labels.tolist() == [1, 2]  # car, bike


@pytest.mark.parametrize('text, message', [
    ('0 0.5 0.5 0.2\n', 'expected 5 fields "class cx cy w h", got 4'),
    ('3 0.5 0.5 0.2 0.2\n', 'class id 3 out of range: 3 classes (ids 0 ... 2)'),
    ('-1 0.5 0.5 0.2 0.2\n', 'class id -1 out of range'),
    ('0.5 0.5 0.5 0.2 0.2\n', 'class id must be an integer, got 0.5'),
    ('0 1.2 0.5 0.1 0.1\n', 'cx = 1.2 is outside [0, 1]'),
    ('0 0.5 0.5 0.1 -0.1\n', 'h = -0.1 is outside [0, 1]'),
    ('0 0.5 0.5 0 0.1\n', 'box size must be > 0, got w = 0'),
    ('person 0.5 0.5 0.1 0.1\n', 'fields must be numbers'),
    ('0 0.5 nan 0.1 0.1\n', 'fields must be finite numbers'),
    ('0 0.5 0.5 0.1 0.1 0.9\n', 'expected 5 fields "class cx cy w h", got 6'),
])
def test_malformed_label_lines_fail_naming_file_and_line(tree, tmp_path, capsys, text,
                                                         message):
    put_labels(tree / 'labels' / 'c.txt', '0 0.5 0.5 0.25 0.5\n\n' + text)
    assert convert(tree, tmp_path) == 1
    err = capsys.readouterr().err
    assert 'error: 1 invalid label lines in the labels of 1 pairs (nothing written' in err
    assert f'{tree}/labels/c.txt:3: {message}' in err and f': {text.strip()!r}\n' in err
    assert not (tmp_path / 'ann/train.json').exists()


def test_every_invalid_line_is_listed_and_skip_invalid_skips_those_pairs(tree, tmp_path,
                                                                         capsys):
    put_labels(tree / 'labels' / 'c.txt', '7 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1\n')
    put_labels(tree / 'labels' / 'd.txt', '0 0.5 0.5 0.1 0.1\n\n\n1 2 0.5 0.1 0.1\n')
    assert convert(tree, tmp_path) == 1
    err = capsys.readouterr().err
    assert '3 invalid label lines in the labels of 2 pairs' in err
    for where in ('c.txt:1: class id 7', 'c.txt:2: expected 5 fields', 'd.txt:4: cx = 2'):
        assert where in err
    assert convert(tree, tmp_path, '--skip-invalid') == 0
    report = json.loads((tmp_path / 'ann/train_report.json').read_text())
    assert report['images'] == 2
    assert report['skipped_images'][INVALID_LABELS] == ['c', 'd']
    assert len(report['dropped_boxes']['invalid label line (pair skipped)']) == 3


def test_infrared_labels_are_checked_against_the_visible_ones(tree, tmp_path):
    ir_labels = tree / 'ir_labels'
    # a: the same boxes in another order and 0.5 px apart -> agree; b: a class differs.
    put_labels(ir_labels / 'a.txt', '2 0.9375 0.5 0.25 0.75\n0 0.515625 0.5 0.25 0.5\n')
    put_labels(ir_labels / 'b.txt', '1 0.25 0.25 0.5 0.5\n1 0.75 0.75 0.5 0.5\n')
    put_labels(ir_labels / 'd.txt', '')
    # c has no label in either set: agree (both negative).
    assert convert(tree, tmp_path, '--infrared-labels', 'ir_labels') == 0
    report = json.loads((tmp_path / 'ann/train_report.json').read_text())
    assert report['notes'][LABELS_DIFFER] == ['b']
    coco = json.loads((tmp_path / 'ann/train.json').read_text())
    assert boxes_by_image(coco)['b'][1][0] == 3  # the visible labels are written


def test_split_file_selects_pairs(tree, tmp_path):
    split = tmp_path / 'val.txt'
    split.write_text('./rgb/b.jpg\n\nc\n')
    assert convert(tree, tmp_path, '--split-file', str(split)) == 0
    coco = json.loads((tmp_path / 'ann/train.json').read_text())
    assert [i['file_name'] for i in coco['images']] == ['rgb/b.jpg', 'rgb/c.jpg']


def test_wrong_labels_folder_is_an_error(tree, tmp_path, capsys):
    assert convert(tree, tmp_path, '--labels', 'label') == 1
    assert f'labels folder {tree}/label does not exist' in capsys.readouterr().err
    (tree / 'empty').mkdir()
    assert convert(tree, tmp_path, '--labels', 'empty') == 1
    assert (f'none of the 4 pairs has a label file in {tree}/empty (expected e.g. '
            f'{tree}/empty/a.txt): check --labels') in capsys.readouterr().err


def test_no_pair_found_fails_naming_the_folders(tree, tmp_path, capsys):
    assert convert(tree, tmp_path, '--visible', 'RGB', '--infrared', 'IR') == 1
    assert (f'no pair found; looked in: {tree}/RGB (does not exist), {tree}/IR (does not '
            'exist)') in capsys.readouterr().err


def test_visible_only_fails_with_the_expected_infrared_paths(tree, tmp_path, capsys):
    for path in (tree / 'ir').iterdir():
        path.unlink()
    assert convert(tree, tmp_path) == 1
    err = capsys.readouterr().err
    assert f'missing infrared image: 5; expected at:\n    {tree}/ir/a.jpg\n' in err
    assert f'({tree}/ir exists but holds no a.jpg)' in err


@pytest.mark.parametrize('text, expected', [
    ('person\ncar\n\nbike\n', ('person', 'car', 'bike')),
    ('1 car\n0 person\n2 traffic light\n', ('person', 'car', 'traffic light')),
    ('0  person \r\n1\tcar\r\n', ('person', 'car')),
])
def test_classes_file(tmp_path, text, expected):
    path = tmp_path / 'classes.txt'
    path.write_bytes(text.encode())
    assert read_classes(str(path)) == expected


@pytest.mark.parametrize('text, message', [
    ('0 person\ncar\n', 'classes.txt:2: no index before the name'),
    ('0 person\n0 car\n', 'classes.txt:2: index 0 given twice'),
    ('0 person\n2 car\n', 'indices must be 0 ... 1; missing [1]'),
    ('person\ncar\nperson\n', "class names repeated: ['person']"),
    ('\n', 'is empty'),
])
def test_bad_classes_file(tmp_path, text, message):
    path = tmp_path / 'classes.txt'
    path.write_text(text)
    with pytest.raises(ConversionError, match=message.replace('[', r'\[').replace(']', r'\]')):
        read_classes(str(path))


def test_classes_from_the_command_line():
    assert read_classes('person, car,bike') == ('person', 'car', 'bike')
    with pytest.raises(ConversionError, match='empty class name'):
        read_classes('person,,car')
    with pytest.raises(ConversionError, match='classes file data/classes.txt does not exist'):
        read_classes('data/classes.txt')
