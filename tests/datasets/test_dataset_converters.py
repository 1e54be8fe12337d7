"""Converters on small hand-made trees in the official layouts, and LLVIP on real data."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fusion_mamba.datasets.converters import (convert_flir_aligned, convert_kaist_json,
                                              convert_kaist_txt, convert_llvip, convert_m3fd,
                                              seeded_split)
from fusion_mamba.datasets.converters.common import (BOX_CLIPPED, BOX_OUTSIDE,
                                                     EMPTY_ANNOTATION, MALFORMED_ANNOTATION,
                                                     MISSING_ANNOTATION, MISSING_INFRARED,
                                                     MISSING_VISIBLE, NO_OBJECTS, SIZE_MISMATCH,
                                                     UNKNOWN_CLASS, UNREADABLE_IMAGE)

REPO = Path(__file__).resolve().parents[2]
W, H = 32, 24


def put_image(path: Path, size=(W, H), channels=3):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0], channels) if channels == 3 else (size[1], size[0])
    assert cv2.imwrite(str(path), np.full(shape, 128, np.uint8))


def put_voc(path: Path, objects, size=(W, H)):
    """objects: (name, xmin, ymin, xmax, ymax)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = ''.join(
        f'<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{x1}</xmin>'
        f'<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>'
        for n, x1, y1, x2, y2 in objects)
    path.write_text(f'<annotation><size><width>{size[0]}</width><height>{size[1]}</height>'
                    f'<depth>3</depth></size>{body}</annotation>')


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, REPO / 'tools' / 'dataset_converters' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- LLVIP
@pytest.fixture
def llvip_tree(tmp_path):
    root = tmp_path / 'LLVIP'
    person = [('person', 2, 3, 12, 20)]

    def pair(split, stem, objects=person, visible=True, infrared=True, ir_size=(W, H)):
        if visible:
            put_image(root / 'visible' / split / f'{stem}.jpg')
        if infrared:
            put_image(root / 'infrared' / split / f'{stem}.jpg', ir_size)
        if objects is not None:
            put_voc(root / 'Annotations' / f'{stem}.xml', objects)

    pair('train', '000001', [('person', 2, 3, 12, 20), ('person', 25, 10, 40, 22)])
    pair('train', '000002', infrared=False)
    pair('train', '000003', visible=False)
    pair('train', '000004', objects=None)
    (root / 'Annotations' / '000004.xml').write_text('')
    pair('train', '000005', objects=None)
    (root / 'Annotations' / '000005.xml').write_text('<annotation><object>')
    pair('train', '000006', [('person', 40, 30, 60, 50), ('dog', 1, 1, 5, 5),
                             ('person', 1, 1, 9, 9)])
    pair('train', '000007', ir_size=(W * 2, H * 2))
    pair('train', '000008')
    (root / 'visible' / 'train' / '000008.jpg').write_bytes(b'garbage')
    pair('train', '000009', objects=None)
    pair('train', '000010', objects=[])
    pair('test', '000101')
    return root


def test_llvip_reports_every_bad_file_and_goes_on(llvip_tree):
    results = convert_llvip(str(llvip_tree))
    coco, report = results['train']
    skipped = dict(report.skipped_images)
    [unreadable] = skipped.pop(UNREADABLE_IMAGE)
    assert unreadable.startswith('train/000008 (cannot read image')
    assert skipped == {
        MISSING_INFRARED: ['train/000002'], MISSING_VISIBLE: ['train/000003'],
        EMPTY_ANNOTATION: ['train/000004'], MALFORMED_ANNOTATION: ['train/000005'],
        SIZE_MISMATCH: ['train/000007 ((32, 24) vs (64, 48))'],
        MISSING_ANNOTATION: ['train/000009']}
    assert set(report.dropped_boxes) == {BOX_OUTSIDE, UNKNOWN_CLASS}
    assert report.notes[BOX_CLIPPED] == ['train/000001: (25.0, 10.0, 40.0, 22.0)']
    names = [img['file_name'] for img in coco['images']]
    assert names == ['visible/train/000001.jpg', 'visible/train/000006.jpg',
                     'visible/train/000010.jpg']
    assert [img['ir_file_name'] for img in coco['images']][0] == 'infrared/train/000001.jpg'
    boxes = {a['image_id']: [] for a in coco['annotations']}
    for ann in coco['annotations']:
        boxes[ann['image_id']].append(ann['bbox'])
    assert boxes == {1: [[2.0, 3.0, 10.0, 17.0], [25.0, 10.0, 7.0, 12.0]],
                     2: [[1.0, 1.0, 8.0, 8.0]]}
    assert coco['categories'] == [dict(id=1, name='person')]
    assert results['test'][1].num_images == 1


def test_llvip_skip_empty(llvip_tree):
    coco, report = convert_llvip(str(llvip_tree), skip_empty=True)['train']
    assert report.skipped_images[NO_OBJECTS] == ['train/000010']
    assert len(coco['images']) == 2


def test_llvip_command_line(llvip_tree, tmp_path, capsys):
    load_tool('llvip').main([str(llvip_tree), '--out-dir', str(tmp_path / 'out')])
    printed = capsys.readouterr().out
    assert 'llvip_train: 3 images, 3 boxes written' in printed
    assert 'missing infrared image: 1 (train/000002)' in printed
    coco = json.loads((tmp_path / 'out' / 'llvip_test.json').read_text())
    assert len(coco['images']) == 1
    report = json.loads((tmp_path / 'out' / 'llvip_train_report.json').read_text())
    assert report['skipped_images'][MISSING_VISIBLE] == ['train/000003']


def test_llvip_real_release_sample(llvip_mini, tmp_path):
    """All 55 annotated pairs of the sample with their 232 boxes, split as released."""
    results = convert_llvip(str(llvip_mini))
    train, test = results['train'][0], results['test'][0]
    assert len(train['images']) == 50 and len(test['images']) == 5
    assert len(train['annotations']) + len(test['annotations']) == 232
    assert {Path(i['file_name']).stem for i in train['images']} == {
        f'0100{i:02d}' for i in range(1, 51)}
    assert {Path(i['file_name']).stem for i in test['images']} == {
        f'19000{i}' for i in range(1, 6)}
    for coco in (train, test):
        for img in coco['images']:
            assert (img['width'], img['height']) == (1280, 1024)
            assert (llvip_mini / img['ir_file_name']).is_file()
    skipped = [r.skipped_images[MISSING_ANNOTATION] for _, r in results.values()]
    assert sum(map(len, skipped)) == 53  # the unannotated pairs, reported
    assert not any(r.dropped_boxes for _, r in results.values())
    from mmdet.registry import DATASETS
    ann_file = tmp_path / 'llvip_test.json'
    ann_file.write_text(json.dumps(test))
    dataset = DATASETS.build(dict(
        type='LLVIPDataset', data_root=str(llvip_mini), ann_file=str(ann_file),
        test_mode=True, pipeline=[dict(type='LoadPairedImagesFromFile'),
                                  dict(type='LoadAnnotations', with_bbox=True),
                                  dict(type='PairedResize', scale=(640, 512), keep_ratio=True),
                                  dict(type='PackMultiModalDetInputs')]))
    sample = dataset[0]
    assert sample['inputs']['visible'].shape == sample['inputs']['infrared'].shape == (
        3, 512, 640)
    assert len(sample['data_samples'].gt_instances) == sum(
        a['image_id'] == 1 for a in test['annotations'])


# ----------------------------------------------------------------------------- M3FD
@pytest.fixture
def m3fd_tree(tmp_path):
    root = tmp_path / 'M3FD_Detection'
    for i in range(10):
        stem = f'{i:05d}'
        put_image(root / 'Vis' / f'{stem}.png')
        if i != 3:
            put_image(root / 'Ir' / f'{stem}.png', channels=1)
        put_voc(root / 'Annotation' / f'{stem}.xml', [('People', 1, 1, 8, 20),
                                                      ('Truck', 10, 2, 30, 22)])
    return root


def test_m3fd_seeded_split_is_reproducible(m3fd_tree):
    first, splits = convert_m3fd(str(m3fd_tree), seed=5)
    again, splits_again = convert_m3fd(str(m3fd_tree), seed=5)
    assert splits == splits_again and first['val'][0] == again['val'][0]
    assert len(splits['val']) == 2 and len(splits['train']) == 8  # 831:3368 of 10 pairs
    assert not set(splits['val']) & set(splits['train'])
    reports = {split: report for split, (_, report) in first.items()}
    assert sum(r.num_images for r in reports.values()) == 9
    assert sum(len(r.skipped_images[MISSING_INFRARED]) for r in reports.values()) == 1
    coco = first['train'][0]
    assert [c['name'] for c in coco['categories']] == [
        'People', 'Car', 'Bus', 'Motorcycle', 'Lamp', 'Truck']
    assert {a['category_id'] for a in coco['annotations']} == {1, 6}
    assert coco['images'][0]['file_name'].startswith('Vis/')
    assert coco['images'][0]['ir_file_name'].startswith('Ir/')


def test_m3fd_published_sizes():
    stems = [f'{i:05d}' for i in range(4200)]
    split = seeded_split(stems, seed=0, train_size=3368, val_size=831)
    assert (len(split['train']), len(split['val']), len(split['unused'])) == (3368, 831, 1)
    assert seeded_split(stems, 0, 3368, 831) == split
    assert seeded_split(stems, 1, 3368, 831)['val'] != split['val']


def test_m3fd_list_files_and_command_line(m3fd_tree, tmp_path, capsys):
    (tmp_path / 't.txt').write_text('00000\n00001.png\n\n00002\n')
    (tmp_path / 'v.txt').write_text('00003\n00004\n')
    out = tmp_path / 'out'
    load_tool('m3fd').main([str(m3fd_tree), '--out-dir', str(out), '--train-list',
                            str(tmp_path / 't.txt'), '--val-list', str(tmp_path / 'v.txt')])
    assert 'm3fd_val: 1 images, 2 boxes written' in capsys.readouterr().out
    assert (out / 'm3fd_train.txt').read_text().split() == ['00000', '00001', '00002']
    assert len(json.loads((out / 'm3fd_train.json').read_text())['images']) == 3


# ----------------------------------------------------------------------------- FLIR
@pytest.fixture
def flir_tree(tmp_path):
    root = tmp_path / 'align'
    for i in range(1, 5):
        frame = f'FLIR_{i:05d}'
        if i != 3:
            put_image(root / 'JPEGImages' / f'{frame}_RGB.jpg')
        put_image(root / 'JPEGImages' / f'{frame}_PreviewData.jpeg', channels=1)
        put_voc(root / 'Annotations' / f'{frame}_PreviewData.xml',
                [('car', 2, 2, 20, 12), ('dog', 3, 3, 9, 9)] if i == 2 else
                [('person', 1, 1, 6, 18), ('bicycle', 8, 8, 20, 20)])
    (root / 'align_train.txt').write_text(
        'FLIR_00001_PreviewData\nFLIR_00002_PreviewData\nFLIR_00003_PreviewData\n')
    (root / 'ImageSets' / 'Main').mkdir(parents=True)
    (root / 'ImageSets' / 'Main' / 'align_validation.txt').write_text('FLIR_00004\n')
    return root


def test_flir_aligned(flir_tree):
    results = convert_flir_aligned(str(flir_tree))
    train, report = results['train']
    assert report.skipped_images == {MISSING_VISIBLE: ['FLIR_00003']}
    assert report.dropped_boxes == {UNKNOWN_CLASS: ["FLIR_00002: 'dog'"]}
    assert [c['name'] for c in train['categories']] == ['person', 'car', 'bicycle']
    assert train['images'][1] == dict(id=2, file_name='JPEGImages/FLIR_00002_RGB.jpg',
                                      ir_file_name='JPEGImages/FLIR_00002_PreviewData.jpeg',
                                      width=W, height=H)
    assert [a['category_id'] for a in train['annotations']] == [1, 3, 2]
    assert results['val'][1].num_images == 1


def test_flir_aligned_missing_list_is_named(flir_tree):
    (flir_tree / 'align_train.txt').unlink()
    with pytest.raises(FileNotFoundError, match='align_train.txt'):
        convert_flir_aligned(str(flir_tree))


# ----------------------------------------------------------------------------- KAIST
def put_bbgt(path: Path, lines, header='% bbGt version=3'):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join([header] + lines) + '\n')


@pytest.fixture
def kaist_tree(tmp_path):
    root = tmp_path / 'kaist'
    frames = ['set00/V000/I00000', 'set00/V000/I00001', 'set03/V001/I00002',
              'set03/V001/I00003', 'set03/V001/I00004', 'set06/V000/I00019']
    for frame in frames:
        set_id, video, image = frame.split('/')
        for modality in ('visible', 'lwir'):
            put_image(root / 'images' / set_id / video / modality / f'{image}.jpg')
    ann = root / 'annotations'
    put_bbgt(ann / 'set00/V000/I00000.txt', ['person 2 3 10 18 0 0 0 0 0 0 0',
                                             'people 14 2 12 20 1 0 0 0 0 0 0',
                                             'person 20 4 6 12 2 0 0 0 0 1 0',
                                             'person 2 x 10 18 0 0 0 0 0 0 0'])
    put_bbgt(ann / 'set00/V000/I00001.txt', [])
    put_bbgt(ann / 'set03/V001/I00002.txt', ['person 28 10 10 10 0 0 0 0 0 0 0'])
    put_bbgt(ann / 'set03/V001/I00004.txt', ['person 1 1 5 5 0'], header='garbage')
    (root / 'train.txt').write_text('\n'.join(frames[:5]) + '\n')
    return root


def test_kaist_text_annotations(kaist_tree):
    coco, report = convert_kaist_txt(str(kaist_tree), str(kaist_tree / 'train.txt'))
    assert report.skipped_images == {MISSING_ANNOTATION: ['set03/V001/I00003'],
                                     MALFORMED_ANNOTATION: ['set03/V001/I00004']}
    assert len(report.dropped_boxes['malformed box']) == 1
    assert report.notes[BOX_CLIPPED] == ['set03/V001/I00002: (28.0, 10.0, 38.0, 20.0)']
    assert [(i['file_name'], i['ir_file_name'], i['condition']) for i in coco['images']] == [
        ('images/set00/V000/visible/I00000.jpg', 'images/set00/V000/lwir/I00000.jpg', 'day'),
        ('images/set00/V000/visible/I00001.jpg', 'images/set00/V000/lwir/I00001.jpg', 'day'),
        ('images/set03/V001/visible/I00002.jpg', 'images/set03/V001/lwir/I00002.jpg',
         'night')]
    fields = [(a['image_id'], a['bbox'], a['height'], a['occlusion'], a['ignore'],
               a['iscrowd']) for a in coco['annotations']]
    # Image ids are the frames' 0-based positions in the list: 0, 1, 2 (3 and 4 skipped).
    assert [i['id'] for i in coco['images']] == [0, 1, 2]
    assert fields == [(0, [2.0, 3.0, 10.0, 18.0], 18.0, 0, 0, 0),
                      (0, [14.0, 2.0, 12.0, 20.0], 20.0, 1, 1, 1),  # 'people': ignore
                      (0, [20.0, 4.0, 6.0, 12.0], 12.0, 2, 1, 1),  # ign flag
                      (2, [28.0, 10.0, 4.0, 10.0], 10.0, 0, 0, 0)]  # clipped
    assert coco['categories'] == [dict(id=1, name='person')]


def test_kaist_improved_test_json(kaist_tree, tmp_path, capsys):
    improved = dict(
        images=[dict(id=0, im_name='set06/V000/I00019', height=H, width=W),
                dict(id=1, im_name='set09/V000/I00039', height=H, width=W)],
        annotations=[dict(id=0, image_id=0, category_id=1, bbox=[2, 2, 8, 16], height=16,
                          occlusion=1, ignore=0),
                     dict(id=1, image_id=0, category_id=3, bbox=[12, 2, 8, 16], height=16,
                          occlusion=0, ignore=0)],
        categories=[dict(id=0, name='__ignore__'), dict(id=1, name='person'),
                    dict(id=2, name='cyclist'), dict(id=3, name='people')])
    path = tmp_path / 'improved.json'
    path.write_text(json.dumps(improved))
    coco, report = convert_kaist_json(str(kaist_tree), str(path))
    assert report.skipped_images == {MISSING_VISIBLE: ['set09/V000/I00039']}
    assert report.expected_paths == {MISSING_VISIBLE: [
        str(kaist_tree / 'images/set09/V000/visible/I00039.jpg')]}
    assert [i['id'] for i in coco['images']] == [0]
    assert [(a['ignore'], a['occlusion']) for a in coco['annotations']] == [(0, 1), (1, 0)]
    assert coco['images'][0]['condition'] == 'day'
    load_tool('kaist').main([str(kaist_tree), '--train-list', str(kaist_tree / 'train.txt'),
                             '--test-json', str(path), '--out-dir', str(tmp_path / 'out')])
    printed = capsys.readouterr().out
    assert 'kaist_train: 3 images, 4 boxes written' in printed
    assert 'kaist_test: 1 images, 2 boxes written' in printed


def improved_json(path: Path, frames):
    """Improved-annotation json of ``frames`` (ids 0, 1, ...), one person in each."""
    path.write_text(json.dumps(dict(
        images=[dict(id=i, im_name=frame, height=H, width=W) for i, frame in enumerate(frames)],
        annotations=[dict(id=i + 1, image_id=i, category_id=1, bbox=[2, 2, 8, 16], height=16,
                          occlusion=0, ignore=0) for i in range(len(frames))],
        categories=[dict(id=1, name='person')])))
    return path


TEST_FRAMES = [f'set{s:02d}/V000/I{i:05d}' for s in (6, 9) for i in (19, 39, 59, 79)]


def test_kaist_keeps_the_improved_annotation_ids(tmp_path):
    """Ids are the json's, with a gap where a frame is skipped, so results line up."""
    root = tmp_path / 'kaist'
    for frame in TEST_FRAMES[:3]:
        if frame != TEST_FRAMES[1]:
            set_id, video, image = frame.split('/')
            for modality in ('visible', 'lwir'):
                put_image(root / 'images' / set_id / video / modality / f'{image}.png')
    coco, report = convert_kaist_json(str(root), str(improved_json(tmp_path / 'i.json',
                                                                   TEST_FRAMES[:3])))
    assert [(i['id'], i['file_name']) for i in coco['images']] == [
        (0, 'images/set06/V000/visible/I00019.png'), (2, 'images/set06/V000/visible/I00059.png')]
    assert [a['image_id'] for a in coco['annotations']] == [0, 2]
    # mmdet reads image id 0 like any other.
    from mmdet.registry import DATASETS
    ann_file = tmp_path / 'kaist_test.json'
    ann_file.write_text(json.dumps(coco))
    dataset = DATASETS.build(dict(
        type='KAISTDataset', data_root=str(root), ann_file=str(ann_file), test_mode=True,
        pipeline=[dict(type='LoadPairedImagesFromFile'),
                  dict(type='LoadAnnotations', with_bbox=True),
                  dict(type='PackMultiModalDetInputs')]))
    assert [dataset[i]['data_samples'].img_id for i in range(2)] == [0, 2]
    assert dataset[0]['data_samples'].gt_instances.bboxes.tensor.tolist() == [[2, 2, 10, 18]]


def test_kaist_images_in_the_wrong_place_fail_naming_the_expected_paths(tmp_path, capsys):
    """The frames are under kaist/setXX/... instead of kaist/images/setXX/...: exit status
    1, the expected paths (first three and a count), no kaist_test.json."""
    root = tmp_path / 'kaist'
    for frame in TEST_FRAMES:
        set_id, video, image = frame.split('/')
        for modality in ('visible', 'lwir'):
            put_image(root / set_id / video / modality / f'{image}.jpg')
    ann = improved_json(root / 'kaist_annotations_test20.json', TEST_FRAMES)
    out = tmp_path / 'out'
    args = [str(root), '--test-json', str(ann), '--out-dir', str(out)]
    assert load_tool('kaist').main(args) == 1
    captured = capsys.readouterr()
    assert 'kaist_test: 0 images, 0 boxes written' in captured.out
    err = captured.err
    assert 'kaist_test: no image pair written' in err
    assert 'missing visible image: 8; expected at:' in err
    for frame in TEST_FRAMES[:3]:
        set_id, video, image = frame.split('/')
        assert f'    {root}/images/{set_id}/{video}/visible/{image}.jpg\n' in err
    assert str(root / 'images/set09') not in err  # only the first three are listed
    assert '... and 5 more' in err
    assert f'({root}/images does not exist)' in err
    assert not (out / 'kaist_test.json').exists()
    report = json.loads((out / 'kaist_test_report.json').read_text())
    assert len(report['expected_paths'][MISSING_VISIBLE]) == 8
    # The same run as a command: the exit status is 1.
    proc = subprocess.run([sys.executable, str(REPO / 'tools/dataset_converters/kaist.py'),
                           *args], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert 'missing visible image: 8; expected at:' in proc.stderr


def test_llvip_with_nothing_where_expected(tmp_path, capsys):
    root = tmp_path / 'LLVIP'
    root.mkdir()
    assert load_tool('llvip').main([str(root), '--out-dir', str(tmp_path / 'out')]) == 1
    err = capsys.readouterr().err
    assert (f'no pair found; looked in: {root}/visible/train (does not exist), '
            f'{root}/infrared/train (does not exist)') in err
    assert 'llvip_test: no image pair written' in err
    assert not any((tmp_path / 'out' / f'llvip_{s}.json').exists() for s in ('train', 'test'))


def test_llvip_misplaced_annotations_and_one_empty_split(llvip_tree, tmp_path, capsys):
    """Annotations under another name: every pair skipped, the expected xml named; a split
    that works is still written, but the run fails."""
    (llvip_tree / 'Annotations').rename(llvip_tree / 'annotations')
    out = tmp_path / 'out'
    assert load_tool('llvip').main([str(llvip_tree), '--out-dir', str(out)]) == 1
    err = capsys.readouterr().err
    assert ('missing annotation file: 10; expected at:\n'
            f'    {llvip_tree}/Annotations/000001.xml') in err
    assert f'({llvip_tree}/Annotations does not exist)' in err
    (llvip_tree / 'annotations').rename(llvip_tree / 'Annotations')
    for path in (llvip_tree / 'visible' / 'test').iterdir():
        path.unlink()
    for path in (llvip_tree / 'infrared' / 'test').iterdir():
        path.unlink()
    assert load_tool('llvip').main([str(llvip_tree), '--out-dir', str(out)]) == 1
    assert 'llvip_test: no image pair written' in capsys.readouterr().err
    assert (out / 'llvip_train.json').is_file() and not (out / 'llvip_test.json').exists()


def test_m3fd_misplaced_images_and_missing_annotations(m3fd_tree, tmp_path, capsys):
    (m3fd_tree / 'Vis').rename(m3fd_tree / 'visible')
    out = str(tmp_path / 'out')
    assert load_tool('m3fd').main([str(m3fd_tree), '--out-dir', out]) == 1
    err = capsys.readouterr().err
    assert 'm3fd_train: no image pair written' in err and 'm3fd_val: no image pair' in err
    assert f'({m3fd_tree}/Vis does not exist)' in err
    assert f'{m3fd_tree}/Vis/0000' in err and '.png' in err
    (m3fd_tree / 'Annotation').rename(m3fd_tree / 'xml')
    assert load_tool('m3fd').main([str(m3fd_tree), '--out-dir', out]) == 1
    assert (f'error: annotation folder {m3fd_tree}/Annotation does not exist'
            in capsys.readouterr().err)


def test_flir_aligned_missing_images_and_list(flir_tree, tmp_path, capsys):
    (flir_tree / 'JPEGImages').rename(flir_tree / 'images')
    out = str(tmp_path / 'out')
    assert load_tool('flir_aligned').main([str(flir_tree), '--out-dir', out]) == 1
    err = capsys.readouterr().err
    assert ('missing visible image: 3; expected at:\n'
            f'    {flir_tree}/JPEGImages/FLIR_00001_RGB.jpg') in err
    (flir_tree / 'align_train.txt').unlink()
    assert load_tool('flir_aligned').main([str(flir_tree), '--out-dir', out]) == 1
    assert 'error: split list align_train.txt not found' in capsys.readouterr().err
