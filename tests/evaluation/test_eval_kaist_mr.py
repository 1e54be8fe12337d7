"""tools/analysis_tools/eval_kaist_mr.py on a hand-made KAIST test set, both result formats.

The annotation file has the layout of KAIST's improved test annotations: 640 x 512 images
with ``im_name`` and no day / night field, annotations with ``height``, ``occlusion`` and
``ignore``, categories '__ignore__', 'person', 'cyclist', 'people', 'person?'. Every expected
number below is worked out by hand in the comments.
"""
import importlib.util
import json
import math
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FLOOR = 1e-10  # a miss rate of 0 counts as 1e-10 in the log average

# id, im_name: two day frames (sets 06, 07) and two night frames (sets 09, 11).
IMAGES = [(0, 'set06/V000/I00019'), (1, 'set07/V001/I00039'), (2, 'set09/V000/I00019'),
          (3, 'set11/V001/I00059')]
CATEGORIES = [(0, '__ignore__'), (1, 'person'), (2, 'cyclist'), (3, 'people'), (4, 'person?')]
# image, category, bbox (xywh), height, occlusion
P1 = (0, 1, [100, 100, 40, 100], 100, 0)  # reasonable; medium; occ none
P2 = (0, 1, [300, 100, 60, 150], 150, 1)  # reasonable; partial occlusion
P3 = (1, 1, [200, 200, 30, 70], 70, 0)  # reasonable; medium; occ none
CROWD = (1, 3, [400, 100, 80, 120], 120, 0)  # 'people': an ignore region everywhere
P4 = (2, 1, [100, 150, 50, 120], 120, 0)  # reasonable; near; occ none
P5 = (2, 1, [400, 200, 20, 40], 40, 0)  # 40 px: far only; occ none
P6 = (3, 1, [250, 120, 40, 100], 100, 2)  # heavy occlusion only
IGNORE = (0, 0, [500, 20, 40, 100], 100, 0)  # '__ignore__': an ignore region everywhere
# image, bbox (xywh), score
DETECTIONS = [
    (0, [505, 30, 30, 80], 0.97),  # d0: inside the '__ignore__' box -> always ignored
    (1, [410, 110, 30, 80], 0.95),  # d4: inside the 'people' box -> always ignored
    (0, P1[2], 0.90),  # d1: on P1
    (2, P5[2], 0.85),  # d6: on P5
    (0, [500, 300, 40, 100], 0.80),  # d2: background, false positive everywhere
    (1, P3[2], 0.70),  # d3: on P3
    (3, [50, 300, 40, 100], 0.65),  # d7: background, false positive everywhere
    (2, P4[2], 0.60),  # d5: on P4
    (3, P6[2], 0.30),  # d8: on P6
]


def _mr(*miss_rates):
    """Geometric mean of the miss rates at the 9 reference FPPIs, in percent."""
    assert len(miss_rates) == 9
    return 100 * math.exp(sum(math.log(max(m, FLOOR)) for m in miss_rates) / 9)


# Reference FPPIs: .01 .0178 .0316 .0562 .1 .178 .316 .562 1; each sees the last curve point of
# FPPI <= itself (none: miss rate 1). A detection on an ignore region is dropped before the
# curve; one on a box outside the subset's range hits an ignore region of that subset.
EXPECTED = {
    # 4 images, regular P1-P4. d0, d4 (ignore labels) and d6 (P5 is 40 px) ignored. By score:
    # TP .9, FP .8, TP .7, FP .65, TP .6 -> (FPPI, recall) (0, .25) (.25, .25) (.25, .5)
    # (.5, .5) (.5, .75): six references see .25 (miss .75), .316 sees .5, .562 and 1 see .75.
    'reasonable-all': (_mr(*[.75] * 6, .5, .25, .25), 75.0, 4, 4),
    # images 0, 1 (sets 06, 07), regular P1-P3. TP .9, FP .8, TP .7 -> (0, 1/3) (.5, 1/3)
    # (.5, 2/3): seven references see 1/3, .562 and 1 see 2/3.
    'reasonable-day': (_mr(*[2 / 3] * 7, 1 / 3, 1 / 3), 200 / 3, 2, 3),
    # images 2, 3 (sets 09, 11), regular P4 (P5 too small, P6 heavy). d6, d8 ignored.
    # FP .65, TP .6 -> (.5, 0) (.5, 1): seven references see no point, .562 and 1 see recall 1.
    'reasonable-night': (_mr(*[1] * 7, 0, 0), 100.0, 2, 1),
    # [115, inf], none: regular P4 only (P2 is partly occluded). FP .8, FP .65, TP .6 ->
    # (.25, 0) (.5, 0) (.5, 1): six references see nothing, .316 sees recall 0, .562 and 1 see 1.
    'scale-near': (_mr(*[1] * 7, 0, 0), 100.0, 4, 1),
    # [45, 115], none: regular P1, P3 (P4 120 px and P5 40 px are ignore regions). TP .9,
    # FP .8, TP .7, FP .65 -> (0, .5) (.25, .5) (.25, 1) (.5, 1): six see .5, three see 1.
    'scale-medium': (_mr(*[.5] * 6, 0, 0, 0), 100.0, 4, 2),
    # [1, 45], none: regular P5. TP .85, FP .8, FP .65 -> (0, 1) ...: every reference sees 1.
    'scale-far': (_mr(*[0] * 9), 100.0, 4, 1),
    # [1, inf], none: regular P1, P3, P4, P5. TP .9, TP .85, FP .8, TP .7, FP .65, TP .6 ->
    # (0, .25) (0, .5) (.25, .5) (.25, .75) (.5, .75) (.5, 1): six see .5, .316 sees .75,
    # .562 and 1 see 1.
    'occ-none': (_mr(*[.5] * 6, .25, 0, 0), 100.0, 4, 4),
    # partial: regular P2, never detected. FP .8, FP .65: miss rate 1 everywhere.
    'occ-partial': (100.0, 0.0, 4, 1),
    # heavy: regular P6. FP .8, FP .65, TP .3 -> (.25, 0) (.5, 0) (.5, 1), as scale-near.
    'occ-heavy': (_mr(*[1] * 7, 0, 0), 100.0, 4, 1),
}


def load_tool():
    path = REPO / 'tools' / 'analysis_tools' / 'eval_kaist_mr.py'
    spec = importlib.util.spec_from_file_location('eval_kaist_mr', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tool():
    return load_tool()


def improved_annotations(names=True):
    """The test set as KAIST's improved annotations (``names=False``: without ``im_name``)."""
    images = [dict(id=i, width=640, height=512, **({'im_name': name} if names else {}))
              for i, name in IMAGES]
    annotations = [dict(id=k, image_id=img, category_id=cat, bbox=bbox, height=h,
                        occlusion=occ, ignore=0)
                   for k, (img, cat, bbox, h, occ) in enumerate(
                       [P1, P2, P3, CROWD, P4, P5, P6, IGNORE], 1)]
    categories = [dict(id=i, name=name) for i, name in CATEGORIES]
    return dict(images=images, annotations=annotations, categories=categories)


@pytest.fixture
def ann_json(tmp_path):
    path = tmp_path / 'kaist_annotations_test20.json'
    path.write_text(json.dumps(improved_annotations()))
    return path


def write_json_results(path):
    results = [dict(image_id=img, bbox=bbox, score=score, category_id=1)
               for img, bbox, score in DETECTIONS]
    # A 'cyclist' detection: not evaluated (only the 'person' category is).
    results.append(dict(image_id=0, bbox=[20, 20, 40, 100], score=0.99, category_id=2))
    path.write_text(json.dumps(results))
    return path


def write_txt_results(path):
    """KAIST txt: 'frame,x,y,w,h,score' with frames from 1; one line blank-separated."""
    lines = [f'{img + 1},{x},{y},{w},{h},{score}' for img, (x, y, w, h), score in DETECTIONS]
    lines[3] = lines[3].replace(',', ' ').replace(' ', '  ', 1)
    path.write_text('\n'.join(lines) + '\n\n')
    return path


def check_rows(rows, expected=EXPECTED):
    assert list(rows) == list(expected)
    for name, (mr, recall, images, pedestrians) in expected.items():
        row = rows[name]
        assert row['mr'] == pytest.approx(mr, rel=1e-9, abs=1e-12), name
        assert row['recall'] == pytest.approx(recall), name
        assert (row['images'], row['pedestrians']) == (images, pedestrians), name


@pytest.mark.parametrize('fmt', ['json', 'txt'])
def test_hand_computed_subsets_in_both_formats(tool, ann_json, tmp_path, fmt, capsys):
    writer = write_json_results if fmt == 'json' else write_txt_results
    results = writer(tmp_path / f'dets.{fmt}')
    out = tmp_path / 'mr.json'
    assert tool.main([str(results), str(ann_json), '--out', str(out)]) == 0
    report = json.loads(out.read_text())
    check_rows(report['rows'])
    assert report['detections'] == 9
    assert report['other_category'] == (1 if fmt == 'json' else 0)
    assert report['note'] is None
    printed = capsys.readouterr().out
    assert '| subset | images | pedestrians | MR^-2 (%) | recall (%) |' in printed
    assert f'| reasonable-all | 4 | 4 | {EXPECTED["reasonable-all"][0]:.2f} | 75.00 |' in printed
    assert f'| reasonable-day | 2 | 3 | {EXPECTED["reasonable-day"][0]:.2f} | 66.67 |' in printed
    assert '| reasonable-night | 2 | 1 | 0.60 | 100.00 |' in printed  # 1e-10 ** (2/9)


def test_expected_numbers_are_what_the_comments_say():
    # Spelled out once, independently of _mr: (.75^6 * .5 * .25^2)^(1/9) and 1e-10^(2/9).
    assert EXPECTED['reasonable-all'][0] == pytest.approx(
        100 * (0.75 ** 6 * 0.5 * 0.25 ** 2) ** (1 / 9))
    assert EXPECTED['reasonable-all'][0] == pytest.approx(56.17, abs=0.01)
    assert EXPECTED['reasonable-day'][0] == pytest.approx(57.15, abs=0.01)
    assert EXPECTED['reasonable-night'][0] == pytest.approx(100 * 10 ** (-20 / 9))


def test_format_option_overrides_the_extension(tool, ann_json, tmp_path, capsys):
    results = write_txt_results(tmp_path / 'dets.results')
    with pytest.raises(SystemExit):
        tool.parse_args([str(results), str(ann_json)])
    assert 'give --format json or --format txt' in capsys.readouterr().err
    out = tmp_path / 'mr.json'
    assert tool.main([str(results), str(ann_json), '--format', 'txt', '--out', str(out)]) == 0
    check_rows(json.loads(out.read_text())['rows'])


def test_reasonable_only(tool, ann_json, tmp_path, capsys):
    results = write_json_results(tmp_path / 'dets.json')
    assert tool.main([str(results), str(ann_json), '--subsets', 'reasonable']) == 0
    printed = capsys.readouterr().out
    assert 'reasonable-night' in printed and 'scale-near' not in printed


def test_condition_field_wins_over_the_frame_name(tool, tmp_path):
    coco = improved_annotations()
    for image in coco['images']:  # swap day and night
        image['condition'] = 'night' if image['id'] < 2 else 'day'
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(coco))
    rows = tool.evaluate(str(write_json_results(tmp_path / 'dets.json')), str(ann),
                         'json')['rows']
    assert rows['reasonable-night']['mr'] == pytest.approx(EXPECTED['reasonable-day'][0])
    assert rows['reasonable-day']['mr'] == pytest.approx(EXPECTED['reasonable-night'][0])


def test_without_any_condition_day_night_are_left_out_and_said_why(tool, tmp_path, capsys):
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(improved_annotations(names=False)))
    results = write_json_results(tmp_path / 'dets.json')
    assert tool.main([str(results), str(ann)]) == 0
    printed = capsys.readouterr().out
    assert 'reasonable-day' not in printed and 'reasonable-night' not in printed
    assert 'day / night: not reported: no image has a "condition" field' in printed
    rows = tool.evaluate(str(results), str(ann), 'json')['rows']
    assert rows['reasonable-all']['mr'] == pytest.approx(EXPECTED['reasonable-all'][0])


def test_frames_outside_the_annotations_are_an_error_with_a_hint(tool, ann_json, tmp_path,
                                                                capsys):
    results = tmp_path / 'dets.txt'
    results.write_text('5,1,2,3,4,0.5\n')  # frame 5 would be image id 4: there are 0 ... 3
    assert tool.main([str(results), str(ann_json)]) == 1
    err = capsys.readouterr().err
    assert '1 frames not in' in err and 'e.g. [5]' in err
    assert 'frame f is image id f - 1' in err and 'has ids 0 ... 3' in err


@pytest.mark.parametrize('line, message', [
    ('1,2,3,4,5', 'expected 6 fields (frame x y w h score), got 5'),
    ('0,1,2,3,4,0.5', 'frame must be an integer >= 1'),
    ('1,a,2,3,4,0.5', 'could not convert'),
])
def test_malformed_txt_lines_are_named_with_their_line(tool, ann_json, tmp_path, capsys, line,
                                                       message):
    results = tmp_path / 'dets.txt'
    results.write_text(f'1,100,100,40,100,0.9\n\n{line}\n')
    assert tool.main([str(results), str(ann_json)]) == 1
    err = capsys.readouterr().err
    assert f'dets.txt:3: ' in err and message in err


def test_json_detection_without_score_is_named(tool, ann_json, tmp_path, capsys):
    results = tmp_path / 'dets.json'
    results.write_text(json.dumps([dict(image_id=0, bbox=[1, 2, 3, 4], category_id=1)]))
    assert tool.main([str(results), str(ann_json)]) == 1
    assert 'detection 0' in capsys.readouterr().err


def test_metric_derives_day_and_night_from_the_frame_names(ann_json):
    """KAISTMissRateMetric on the same file: the day / night rows it used to leave out."""
    import torch
    from mmdet.registry import METRICS

    import fusion_mamba.evaluation  # noqa: F401  registers the metric
    metric = METRICS.build(dict(type='KAISTMissRateMetric', ann_file=str(ann_json)))
    samples = []
    for img_id, _ in IMAGES:
        dets = [(x, y, x + w, y + h, s) for i, (x, y, w, h), s in DETECTIONS if i == img_id]
        samples.append(dict(img_id=img_id, pred_instances=dict(
            bboxes=torch.tensor([d[:4] for d in dets], dtype=torch.float64).reshape(-1, 4),
            scores=torch.tensor([d[4] for d in dets], dtype=torch.float64),
            labels=torch.zeros(len(dets), dtype=torch.long))))
    metric.process({}, samples)
    res = metric.evaluate(len(samples))
    assert res.keys() == {'kaist/MR_all', 'kaist/MR_day', 'kaist/MR_night'}
    for key, subset in (('all', 'reasonable-all'), ('day', 'reasonable-day'),
                        ('night', 'reasonable-night')):
        assert res[f'kaist/MR_{key}'] == pytest.approx(EXPECTED[subset][0])
