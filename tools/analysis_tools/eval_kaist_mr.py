"""Log-average miss rate (MR^-2) of a KAIST results file on the subsets of the KAIST benchmark.

    python tools/analysis_tools/eval_kaist_mr.py RESULTS ANN_JSON [--format json|txt]
        [--out FILE] [--category-id ID] [--subsets reasonable]

RESULTS, format from the extension unless ``--format`` says:

- ``json``: COCO-style detections, a list of ``{"image_id", "bbox": [x, y, w, h], "score",
  "category_id"}`` with ANN_JSON's image ids (e.g. the ``*.bbox.json`` that mmdet's
  ``CocoMetric`` writes with ``outfile_prefix``). Only detections of ``--category-id``
  (default: the id of 'person' in ANN_JSON) or without a category are evaluated.
- ``txt``: the KAIST format, one detection per line ``frame x y w h score`` (x, y, w, h in
  px), separated by commas as in the KAIST devkit and MLPD result files, or by blanks.
  Frames count from 1: frame f is image id f - 1 of ANN_JSON, as in MLPD's evaluation script
  (the improved test annotations number their 2252 frames 0 ... 2251 in test-list order, and
  ``tools/dataset_converters/kaist.py`` keeps those ids).

ANN_JSON is KAIST's improved test annotations (``kaist_annotations_test20.json``) or the
converted ``kaist_test.json``. Day / night come from the images' ``condition`` field or,
when it is absent (the improved annotations have none), from the KAIST set in ``im_name`` /
``file_name``: sets 06-08 day, 09-11 night. Every image of ANN_JSON is evaluated; an image
without detections counts with all its pedestrians missed.

Prints a table of MR^-2 per subset: reasonable all / day / night, near / medium / far scale
and none / partial / heavy occlusion (``fusion_mamba.evaluation.functional.kaist_subsets``);
``--out`` writes the same numbers as JSON.
"""
import argparse
import json
import math
import os
import os.path as osp
import re
import sys
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import numpy as np

from fusion_mamba.evaluation.functional import (KAIST_SUBSETS, evaluate_subsets,
                                                image_condition)

FORMATS = {'.json': 'json', '.txt': 'txt'}
_SEPARATORS = re.compile(r'[,\s]+')

Detections = Dict[object, Tuple[np.ndarray, np.ndarray]]


class ResultsError(ValueError):
    """A results or annotation file that cannot be evaluated; the message says where."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('results', help='detections: COCO-style .json or KAIST .txt')
    parser.add_argument('ann_json', help='KAIST improved test annotations (or kaist_test.json)')
    parser.add_argument('--format', choices=sorted(set(FORMATS.values())),
                        help='format of RESULTS (default: from its extension)')
    parser.add_argument('--out', help='also write the table as JSON to this file')
    parser.add_argument('--category-id', type=int,
                        help='evaluate json detections of this category (default: the id of '
                        '"person" in ANN_JSON; every detection when it has none)')
    parser.add_argument('--subsets', choices=('all', 'reasonable'), default='all',
                        help='all nine KAIST subsets (default) or reasonable all/day/night')
    args = parser.parse_args(argv)
    if args.format is None:
        args.format = FORMATS.get(osp.splitext(args.results)[1].lower())
        if args.format is None:
            parser.error(f'cannot tell the format of {args.results} from its extension: '
                         'give --format json or --format txt')
    for path in (args.results, args.ann_json):
        if not osp.isfile(path):
            parser.error(f'no such file: {path}')
    return args


def group_detections(image_ids: List[object], boxes: List[List[float]],
                     scores: List[float]) -> Detections:
    """Per-image arrays from flat lists: image id -> ((D, 4) xyxy px, (D,) scores).

    Args:
        boxes: xywh px boxes, one per detection.
    """
    grouped = defaultdict(lambda: ([], []))
    for img_id, (x, y, w, h), score in zip(image_ids, boxes, scores):
        grouped[img_id][0].append((x, y, x + w, y + h))
        grouped[img_id][1].append(score)
    return {img_id: (np.array(b, dtype=np.float64).reshape(-1, 4), np.array(s, np.float64))
            for img_id, (b, s) in grouped.items()}


def read_json_results(path: str, category_id: Optional[int]) -> Tuple[Detections, int]:
    """COCO-style detections of ``category_id`` (None: all).

    Returns:
        (image id -> ((D, 4) xyxy, (D,) scores), number of detections of other categories).
    """
    with open(path) as f:
        try:
            results = json.load(f)
        except json.JSONDecodeError as err:
            raise ResultsError(f'{path}: not valid JSON: {err}') from err
    if not isinstance(results, list):
        raise ResultsError(f'{path}: expected a list of detections, got {type(results).__name__}')
    ids, boxes, scores, other = [], [], [], 0
    for index, det in enumerate(results):
        try:
            box = [float(v) for v in det['bbox']]
            score = float(det['score'])
            img_id = det['image_id']
        except (KeyError, TypeError, ValueError) as err:
            raise ResultsError(f'{path}: detection {index} ({det!r:.100}) needs "image_id", '
                               f'"bbox" [x, y, w, h] and "score": {err!r}') from err
        if len(box) != 4 or not all(map(math.isfinite, box + [score])):
            raise ResultsError(f'{path}: detection {index}: bbox must be 4 finite numbers and '
                               f'score finite, got {det["bbox"]!r}, {det["score"]!r}')
        if category_id is not None and det.get('category_id', category_id) != category_id:
            other += 1
            continue
        ids.append(img_id)
        boxes.append(box)
        scores.append(score)
    return group_detections(ids, boxes, scores), other


def read_txt_results(path: str) -> Detections:
    """KAIST txt detections ``frame x y w h score`` (frames from 1 -> image id frame - 1)."""
    ids, boxes, scores = [], [], []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = _SEPARATORS.split(line.strip())
            try:
                if len(fields) != 6:
                    raise ValueError(f'expected 6 fields (frame x y w h score), got '
                                     f'{len(fields)}')
                values = [float(v) for v in fields]
                if not all(map(math.isfinite, values)):
                    raise ValueError('not a finite number')
                frame = values[0]
                if frame != int(frame) or frame < 1:
                    raise ValueError(f'frame must be an integer >= 1 (frames count from 1), '
                                     f'got {fields[0]}')
            except ValueError as err:
                raise ResultsError(f'{path}:{line_no}: {err}: {line.rstrip()!r}') from err
            ids.append(int(frame) - 1)
            boxes.append(values[1:5])
            scores.append(values[5])
    return group_detections(ids, boxes, scores)


def person_category(coco: dict) -> Optional[int]:
    """Id of the category named 'person' in an annotation dict, None when there is none."""
    return next((cat['id'] for cat in coco.get('categories', [])
                 if cat.get('name') == 'person'), None)


def condition_note(coco: dict) -> Optional[str]:
    """Why day / night rows are missing or partial, None when every image has a condition."""
    unknown = sum(image_condition(image) not in ('day', 'night') for image in coco['images'])
    if unknown == len(coco['images']):
        return ('day / night: not reported: no image has a "condition" field or a KAIST frame '
                'name (setXX/VYYY/...) in "im_name" / "file_name"')
    if unknown:
        return (f'day / night: {unknown} of {len(coco["images"])} images have no known '
                'condition; they count in the rows over all images only')
    return None


def evaluate(results_path: str, ann_path: str, fmt: str, category_id: Optional[int] = None,
             subsets=KAIST_SUBSETS) -> dict:
    """MR^-2 of a results file per subset.

    Returns:
        dict: ``rows`` (subset -> dict(mr, recall in %, images, pedestrians)), ``detections``
        (evaluated), ``other_category`` (json detections left out), ``note`` (day / night
        remark or None).
    """
    with open(ann_path) as f:
        coco = json.load(f)
    if not coco.get('images'):
        raise ResultsError(f'{ann_path}: no images')
    other = 0
    if fmt == 'json':
        category_id = person_category(coco) if category_id is None else category_id
        detections, other = read_json_results(results_path, category_id)
    else:
        detections = read_txt_results(results_path)
    image_ids = {image['id'] for image in coco['images']}
    unknown = sorted((i for i in detections if i not in image_ids), key=str)
    if unknown:
        hint = (f' (txt frames are 1-based: frame f is image id f - 1; {ann_path} has ids '
                f'{min(image_ids)} ... {max(image_ids)})' if fmt == 'txt' else '')
        what, shown = (('frames', [i + 1 for i in unknown[:5]]) if fmt == 'txt' else
                       ('image ids', unknown[:5]))
        raise ResultsError(f'{results_path}: {len(unknown)} {what} not in {ann_path}, e.g. '
                           f'{shown}{hint}')
    per_subset = evaluate_subsets(coco, detections, subsets)
    rows = {name: dict(mr=100.0 * r.miss_rate, recall=100.0 * r.recall, images=r.num_images,
                       pedestrians=r.num_gt) for name, r in per_subset.items()}
    return dict(rows=rows, detections=int(sum(len(s) for _, s in detections.values())),
                other_category=other, note=condition_note(coco))


def markdown_table(rows: Dict[str, dict]) -> str:
    """``| subset | images | pedestrians | MR^-2 (%) | recall (%) |`` rows."""
    lines = ['| subset | images | pedestrians | MR^-2 (%) | recall (%) |',
             '|---|---:|---:|---:|---:|']
    lines += [f'| {name} | {r["images"]} | {r["pedestrians"]} | {r["mr"]:.2f} | '
              f'{r["recall"]:.2f} |' for name, r in rows.items()]
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    subsets = KAIST_SUBSETS if args.subsets == 'all' else KAIST_SUBSETS[:3]
    try:
        report = evaluate(args.results, args.ann_json, args.format, args.category_id, subsets)
    except ResultsError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'{args.results} ({args.format}, {report["detections"]} detections) on '
          f'{args.ann_json}')
    if report['other_category']:
        print(f'left out: {report["other_category"]} detections of other categories')
    print(markdown_table(report['rows']))
    if report['note']:
        print(report['note'])
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        rows = {name: {k: None if isinstance(v, float) and math.isnan(v) else v
                       for k, v in row.items()} for name, row in report['rows'].items()}
        with open(args.out, 'w') as f:
            json.dump(dict(results=args.results, ann_json=args.ann_json, format=args.format,
                           **dict(report, rows=rows)), f, indent=1)
        print(f'-> {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
