"""KAIST multispectral pedestrians -> paired COCO with the fields of the MR^-2 protocol.

Layout::

    kaist/
        images/set00/V000/visible/I00000.jpg     (or .png)
        images/set00/V000/lwir/I00000.jpg
        annotations/set00/V000/I00000.txt        '% bbGt version=3' files (Piotr's toolbox)
        imageSets/train-all-02.txt               frames, e.g. 'set00/V000/I01217'
        kaist_annotations_test20.json            improved test annotations (COCO-like with
                                                 'im_name', 'height', 'occlusion', 'ignore')

A bbGt line is ``label x y w h occ xv yv wv hv ign ang``. Only 'person' is a class; the
other labels ('people', 'cyclist', 'person?') and boxes flagged ``ign`` become ignore
regions. Written fields: image ``condition`` ('day' for set00-02 / set06-08, else 'night');
annotation ``height`` (box height, px), ``occlusion`` (0 none, 1 partial, 2 heavy),
``ignore`` (0 / 1) and ``iscrowd`` (= ``ignore``, so COCO tools and mmdet ignore them too).
Frames without any box are kept: they count in the miss-rate protocol.

Image ids are KAIST's, not renumbered: the improved test annotations' own ids (0 ... 2251,
the frames in test-list order), and for a frame list the 0-based position of the frame in
the list (blank lines not counted). A frame skipped for a missing or bad file leaves a gap,
so detection results written with these ids line up with published ones (KAIST txt results
number frames from 1: frame f is image id f - 1).
"""
import json
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

from ...evaluation.functional.conditions import kaist_condition
from ..classes import KAIST_CLASSES
from .common import (BOX_MALFORMED, EMPTY_ANNOTATION, MALFORMED_ANNOTATION,
                     MISSING_ANNOTATION, AnnotationError, ConversionError, ConversionReport,
                     PairedCocoBuilder, check_pair, locate_image, validate_box)

PERSON = 'person'


def condition_of(frame: str) -> str:
    """'day' or 'night' for a frame name 'setXX/VYYY/IZZZZZ' (sets 00-02, 06-08: day)."""
    condition = kaist_condition(frame)
    if condition is None:
        raise ConversionError(f'{frame!r} is not a KAIST frame name (setXX/VYYY/IZZZZZ, '
                              'sets 00-11)')
    return condition


def frame_images(root: str, frame: str) -> Tuple[str, str]:
    """(visible, infrared) paths relative to ``root``: the images found, else where they were
    expected (``images/setXX/VYYY/{visible,lwir}/IZZZZZ.jpg``)."""
    set_id, video, image = _split_frame(frame)
    return tuple(locate_image(root, osp.join('images', set_id, video, modality), image)
                 for modality in ('visible', 'lwir'))


def _split_frame(frame: str) -> Tuple[str, str, str]:
    """'setXX/VYYY/IZZZZZ' -> ('setXX', 'VYYY', 'IZZZZZ')."""
    parts = frame.split('/')
    if len(parts) != 3:
        raise ConversionError(f'{frame!r} is not a KAIST frame name (setXX/VYYY/IZZZZZ)')
    return parts[0], parts[1], parts[2]


def read_frame_list(path: str) -> List[str]:
    """Frames 'setXX/VYYY/IZZZZZ' of a KAIST image-set file."""
    with open(path) as f:
        return [osp.splitext(line.strip())[0] for line in f if line.strip()]


def parse_bbgt(path: str, report: ConversionReport, frame: str) -> List[dict]:
    """Objects of a bbGt v3 file: dict(label, box (x1, y1, x2, y2), occlusion, ignore).

    Malformed lines are dropped and recorded.

    Raises:
        AnnotationError: the file is missing, empty, or has no '% bbGt' header.
    """
    if not osp.isfile(path):
        raise AnnotationError(MISSING_ANNOTATION, path)
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip()]
    if not lines:
        raise AnnotationError(EMPTY_ANNOTATION, path)
    if not lines[0].startswith('% bbGt'):
        raise AnnotationError(MALFORMED_ANNOTATION, f'{path}: no "% bbGt" header')
    objects = []
    for line in lines[1:]:
        fields = line.split()
        try:
            x, y, w, h, occlusion = (float(v) for v in fields[1:6])
            ignore = int(float(fields[10])) if len(fields) > 10 else 0
        except (ValueError, IndexError):
            report.drop_box(f'{frame}: {line!r}', BOX_MALFORMED)
            continue
        objects.append(dict(label=fields[0], box=(x, y, x + w, y + h),
                            occlusion=int(occlusion), ignore=ignore))
    return objects


def add_frame(builder: PairedCocoBuilder, report: ConversionReport, root: str, frame: str,
              objects: List[dict], image_id: int) -> None:
    """Check a frame's pair and add it as image ``image_id`` with its objects (non-person
    labels -> ignore regions)."""
    visible, infrared = frame_images(root, frame)
    size = check_pair(root, visible, infrared, frame, report)
    if size is None:
        return
    img_id = builder.add_image(visible, infrared, *size, image_id=image_id,
                               condition=condition_of(frame))
    report.num_images += 1
    for obj in objects:
        box = validate_box(obj['box'], size, frame, report)
        if box is None:
            continue
        ignore = int(bool(obj['ignore']) or obj['label'] != PERSON)
        builder.add_box(img_id, PERSON, box, height=box[3] - box[1],
                        occlusion=obj['occlusion'], ignore=ignore, iscrowd=ignore)
        report.num_boxes += 1


def convert_kaist_txt(root: str, frame_list: str, ann_dir: Optional[str] = None,
                      name: str = 'kaist_train') -> Tuple[dict, ConversionReport]:
    """Convert the frames of ``frame_list`` with their bbGt files.

    Image ids are the 0-based positions of the frames in ``frame_list``.

    Args:
        ann_dir (str, optional): folder of the bbGt files (``setXX/VYYY/IZZZZZ.txt``), e.g.
            the sanitized training annotations. Default ``root/annotations``.
    """
    ann_dir = ann_dir or osp.join(root, 'annotations')
    builder = PairedCocoBuilder(KAIST_CLASSES)
    report = ConversionReport(name)
    report.sources = [frame_list]
    for image_id, frame in enumerate(read_frame_list(frame_list)):
        path = osp.join(ann_dir, f'{frame}.txt')
        try:
            objects = parse_bbgt(path, report, frame)
        except AnnotationError as err:
            report.skip_image(frame, err.reason,
                              path if err.reason == MISSING_ANNOTATION else None)
            continue
        add_frame(builder, report, root, frame, objects, image_id)
    return builder.to_dict(), report


def convert_kaist_json(root: str, improved_json: str,
                       name: str = 'kaist_test') -> Tuple[dict, ConversionReport]:
    """Convert the improved test annotations (json with ``im_name`` per image), keeping their
    image ids."""
    with open(improved_json) as f:
        source = json.load(f)
    labels = {cat['id']: cat['name'] for cat in source.get('categories', [])}
    per_image: Dict[int, List[dict]] = defaultdict(list)
    builder = PairedCocoBuilder(KAIST_CLASSES)
    report = ConversionReport(name)
    report.sources = [improved_json]
    for ann in source['annotations']:
        try:
            x, y, w, h = (float(v) for v in ann['bbox'])
        except (KeyError, TypeError, ValueError):
            report.drop_box(f'image {ann.get("image_id")}: {ann.get("bbox")!r}', BOX_MALFORMED)
            continue
        per_image[ann['image_id']].append(dict(
            label=labels.get(ann.get('category_id'), PERSON), box=(x, y, x + w, y + h),
            occlusion=int(ann.get('occlusion', 0)), ignore=int(ann.get('ignore', 0))))
    for image in source['images']:
        add_frame(builder, report, root, image['im_name'], per_image[image['id']], image['id'])
    return builder.to_dict(), report
