"""Paired visible / infrared images with YOLO txt labels -> paired COCO.

Layout (every folder relative to ``root``, given by the caller)::

    root/
        <visible>/000001.jpg        visible images
        <infrared>/000001.jpg       infrared images (same stems; extensions may differ)
        <labels>/000001.txt         YOLO labels, one box per line: 'class cx cy w h', class a
                                    0-based index, the rest normalised to [0, 1] by the image
                                    width / height
        <infrared_labels>/...       optional: the labels of the infrared images

Pairs are matched by file stem: every stem of either image folder (or of a split file) is a
pair, and a pair with one image missing is skipped and reported. An image without a label
file, or with an empty one, is a negative (background) image: kept, without boxes, and
counted in the summary.

Labels: ``labels`` is the ground truth of both images (the pairs are registered, so the
normalised boxes are the same in both). Datasets that ship a separate copy for the infrared
images (e.g. the YOLO multispectral layouts of CFT / Fusion-Mamba) can pass it as
``infrared_labels``: it is read and checked the same way, and pairs whose two label files
disagree (other classes, or boxes more than 1 px apart) are reported; the boxes written are
always those of ``labels``. To train on the infrared labels, pass them as ``labels``.

Label lines tolerate extra blanks, tabs, trailing spaces, blank lines and CRLF endings. A
malformed line (not 5 fields, not numbers), a class id outside the classes or a coordinate
outside [0, 1] (``w``, ``h`` > 0) is an error naming the file and line; all of them are
collected and the conversion fails (``skip_invalid=True`` skips the pairs of those files
instead). Category ids are the class index + 1, like every converter's.
"""
import math
import os
import os.path as osp
import re
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from mmengine.utils import track_iter_progress

from .common import (IMAGE_EXTENSIONS, ConversionError, ConversionReport, PairedCocoBuilder,
                     check_pair, locate_image, read_list, validate_box)

# Reasons specific to this converter.
NO_LABEL_FILE = 'no label file (negative image)'
EMPTY_LABEL_FILE = 'empty label file (negative image)'
INVALID_LABELS = 'invalid label file'
DUPLICATE_STEM = 'several images with this stem'
LABELS_DIFFER = 'visible / infrared labels differ (visible labels used)'

#: Tolerance on normalised coordinates: rounding may put a box edge a hair outside [0, 1].
COORD_EPS = 1e-6
#: Largest distance (px) between matching boxes of the two label sets that counts as equal.
LABEL_MATCH_PX = 1.0

_INDEXED_NAME = re.compile(r'^(\d+)\s+(\S.*)$')


class YoloBox(NamedTuple):
    """One label line: 0-based class index and the normalised centre, width, height."""

    class_id: int
    cx: float
    cy: float
    w: float
    h: float

    def to_pixels(self, width: int, height: int) -> Tuple[float, float, float, float]:
        """(x1, y1, x2, y2) in pixels of a ``width`` x ``height`` image."""
        return ((self.cx - self.w / 2) * width, (self.cy - self.h / 2) * height,
                (self.cx + self.w / 2) * width, (self.cy + self.h / 2) * height)


def read_classes(spec: str) -> Tuple[str, ...]:
    """Class names, in index order, from ``spec``.

    Args:
        spec: comma-separated names (``'person,car'``), or a file with one name per line,
            each optionally prefixed by its index (``'0 person'``; then every line is, and the
            indices are 0 ... N-1 in any order). Blank lines are skipped.

    Raises:
        ConversionError: a missing file, an empty or repeated name, mixed or bad indices.
    """
    if osp.isfile(spec):
        return _classes_from_file(spec)
    if os.sep in spec or spec.endswith(('.txt', '.names')):
        raise ConversionError(f'classes file {spec} does not exist')
    names = [name.strip() for name in spec.split(',')]
    if not all(names):
        raise ConversionError(f'empty class name in {spec!r} (expected e.g. "person,car")')
    return _unique(names, spec)


def _classes_from_file(path: str) -> Tuple[str, ...]:
    """Names of a classes file (see :func:`read_classes`)."""
    with open(path) as f:
        lines = [(no, line.strip()) for no, line in enumerate(f, 1) if line.strip()]
    if not lines:
        raise ConversionError(f'classes file {path} is empty')
    matches = [(no, _INDEXED_NAME.match(line), line) for no, line in lines]
    indexed = [m is not None for _, m, _ in matches]
    if not any(indexed):
        return _unique([line for _, line in lines], path)
    if not all(indexed):
        no = next(no for (no, _, _), i in zip(matches, indexed) if not i)
        raise ConversionError(f'{path}:{no}: no index before the name, but other lines have '
                              'one ("0 person"): index every line or none')
    by_index: Dict[int, str] = {}
    for no, match, _ in matches:
        index = int(match.group(1))
        if index in by_index:
            raise ConversionError(f'{path}:{no}: index {index} given twice')
        by_index[index] = match.group(2).strip()
    missing = sorted(set(range(len(by_index))) - set(by_index))
    if missing:
        raise ConversionError(f'{path}: indices must be 0 ... {len(by_index) - 1}; missing '
                              f'{missing[:5]}, found {sorted(by_index)[-1]}')
    return _unique([by_index[i] for i in range(len(by_index))], path)


def _unique(names: List[str], source: str) -> Tuple[str, ...]:
    """``names`` as a tuple; a repeated name is an error naming ``source``."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConversionError(f'{source}: class names repeated: {repeated}')
    return tuple(names)


def parse_yolo_line(line: str, num_classes: int) -> YoloBox:
    """One non-blank label line ``'class cx cy w h'`` (any blanks between fields).

    Raises:
        ValueError: with the reason (wrong field count, not a number, class id out of range,
            coordinate outside [0, 1] or non-positive size).
    """
    fields = line.split()
    if len(fields) != 5:
        raise ValueError(f'expected 5 fields "class cx cy w h", got {len(fields)}')
    try:
        values = [float(v) for v in fields]
    except ValueError:
        raise ValueError('fields must be numbers') from None
    if not all(map(math.isfinite, values)):
        raise ValueError('fields must be finite numbers')
    class_value, cx, cy, w, h = values
    if class_value != int(class_value):
        raise ValueError(f'class id must be an integer, got {fields[0]}')
    class_id = int(class_value)
    if not 0 <= class_id < num_classes:
        raise ValueError(f'class id {class_id} out of range: {num_classes} classes '
                         f'(ids 0 ... {num_classes - 1})')
    for key, value in zip(('cx', 'cy', 'w', 'h'), (cx, cy, w, h)):
        if not -COORD_EPS <= value <= 1 + COORD_EPS:
            raise ValueError(f'{key} = {value:g} is outside [0, 1] (coordinates are '
                             'normalised by the image size)')
    if w <= 0 or h <= 0:
        raise ValueError(f'box size must be > 0, got w = {w:g}, h = {h:g}')
    return YoloBox(class_id, cx, cy, w, h)


def read_yolo_labels(path: str, num_classes: int) -> Tuple[List[YoloBox], List[str]]:
    """Boxes of a YOLO label file.

    Returns:
        tuple: (boxes of the valid lines, one ``'path:line: reason: text'`` per invalid line).
    """
    boxes, problems = [], []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                boxes.append(parse_yolo_line(line, num_classes))
            except ValueError as err:
                problems.append(f'{path}:{line_no}: {err}: {line.strip()!r}')
    return boxes, problems


def _image_stems(folder: str) -> Tuple[Dict[str, str], List[str]]:
    """(stem -> file name of the images in ``folder`` ({} if it does not exist), stems of
    several images)."""
    if not osp.isdir(folder):
        return {}, []
    stems: Dict[str, str] = {}
    repeated = []
    for name in sorted(os.listdir(folder)):
        stem, ext = osp.splitext(name)
        if ext.lower() not in IMAGE_EXTENSIONS:
            continue
        if stem in stems:
            repeated.append(stem)
        stems[stem] = name
    return stems, repeated


def labels_agree(first: Sequence[YoloBox], second: Sequence[YoloBox], size: Tuple[int, int],
                 tolerance: float = LABEL_MATCH_PX) -> bool:
    """Whether two label sets of a ``(width, height)`` image hold the same classes and boxes
    (corners at most ``tolerance`` px apart, after sorting)."""
    if len(first) != len(second):
        return False

    def pixels(boxes):
        return sorted((b.class_id, *b.to_pixels(*size)) for b in boxes)

    return all(a[0] == b[0] and max(abs(u - v) for u, v in zip(a[1:], b[1:])) <= tolerance
               for a, b in zip(pixels(first), pixels(second)))


class _LabelSource(NamedTuple):
    """A labels folder (relative to root) and where its problems go."""

    folder: str
    problems: List[str]


def _read_labels(root: str, source: _LabelSource, stem: str, num_classes: int
                 ) -> Tuple[Optional[List[YoloBox]], Optional[str]]:
    """(boxes or None when invalid, negative-image reason or None) of one stem's labels."""
    path = osp.join(root, source.folder, f'{stem}.txt')
    if not osp.isfile(path):
        return [], NO_LABEL_FILE
    boxes, problems = read_yolo_labels(path, num_classes)
    if problems:
        source.problems.extend(problems)
        return None, None
    return boxes, None if boxes else EMPTY_LABEL_FILE


def convert_yolo_paired(root: str, visible: str, infrared: str, labels: str,
                        classes: Sequence[str], infrared_labels: Optional[str] = None,
                        split_file: Optional[str] = None, skip_invalid: bool = False,
                        name: str = 'yolo_paired', progress: bool = False
                        ) -> Tuple[dict, ConversionReport]:
    """Convert paired images with YOLO labels (see the module docstring).

    Args:
        root: dataset folder; the json's paths are relative to it.
        visible, infrared, labels, infrared_labels: folders relative to ``root``.
        classes: class names in index order (class id k -> category id k + 1).
        split_file: list of the pairs to convert, one per line (a stem or an image path;
            only its stem counts). Default: every stem of the two image folders.
        skip_invalid: skip (and report) the pairs whose label files have invalid lines
            instead of failing.
        progress: show a progress bar.

    Returns:
        tuple: (paired COCO dict, report).

    Raises:
        ConversionError: a labels folder does not exist, no pair has a label file (a wrong
            ``labels``, not a dataset of negatives), or invalid label lines (all of them,
            with file and line) unless ``skip_invalid``.
    """
    for folder in (labels, infrared_labels):
        if folder is not None and not osp.isdir(osp.join(root, folder)):
            raise ConversionError(f'labels folder {osp.join(root, folder)} does not exist')
    builder = PairedCocoBuilder(classes)
    report = ConversionReport(name)
    visible_stems, repeated = _image_stems(osp.join(root, visible))
    infrared_stems, repeated_ir = _image_stems(osp.join(root, infrared))
    if split_file is not None:
        report.sources = [split_file]
        stems = list(dict.fromkeys(read_list(split_file)))
    else:
        report.sources = [osp.join(root, visible), osp.join(root, infrared)]
        stems = sorted(set(visible_stems) | set(infrared_stems))
    sources = [_LabelSource(labels, [])]
    if infrared_labels is not None:
        sources.append(_LabelSource(infrared_labels, []))
    ambiguous = set(repeated) | set(repeated_ir)
    for stem in (track_iter_progress(stems) if progress and stems else stems):
        if stem in ambiguous:
            report.skip_image(stem, DUPLICATE_STEM)
            continue
        read = [_read_labels(root, source, stem, len(classes)) for source in sources]
        if any(boxes is None for boxes, _ in read):
            report.skip_image(stem, INVALID_LABELS)
            continue
        paths = (_image_path(root, visible, stem, visible_stems, infrared_stems),
                 _image_path(root, infrared, stem, infrared_stems, visible_stems))
        size = check_pair(root, *paths, stem, report)
        if size is None:
            continue
        (boxes, negative), *infrared_read = read
        if infrared_read and not labels_agree(boxes, infrared_read[0][0], size):
            report.note(stem, LABELS_DIFFER)
        if negative:
            report.note(stem, negative)
        _add_pair(builder, report, stem, paths, size, boxes)
    problems = [p for source in sources for p in source.problems]
    if problems and not skip_invalid:
        shown = '\n  '.join(problems[:10])
        more = f'\n  ... and {len(problems) - 10} more' if len(problems) > 10 else ''
        raise ConversionError(
            f'{len(problems)} invalid label lines in the labels of '
            f'{len(report.skipped_images[INVALID_LABELS])} pairs (nothing written; '
            f'--skip-invalid skips those pairs instead):\n  {shown}{more}')
    if problems:
        report.dropped_boxes['invalid label line (pair skipped)'] = problems
    unlabelled = len(report.notes.get(NO_LABEL_FILE, []))
    if report.num_images and unlabelled == report.num_images:
        raise ConversionError(
            f'none of the {unlabelled} pairs has a label file in {osp.join(root, labels)} '
            f'(expected e.g. {osp.join(root, labels, report.notes[NO_LABEL_FILE][0])}.txt): '
            'check --labels')
    return builder.to_dict(), report


def _image_path(root: str, folder: str, stem: str, stems: Dict[str, str],
                partner_stems: Dict[str, str]) -> str:
    """Path relative to ``root`` of the image of ``stem`` in ``folder``: found, or expected
    (with the partner's extension, else ``.jpg``)."""
    if stem in stems:
        return osp.normpath(osp.join(folder, stems[stem]))
    if stem in partner_stems:
        return osp.normpath(osp.join(folder, partner_stems[stem]))
    return osp.normpath(locate_image(root, folder, stem))


def _add_pair(builder: PairedCocoBuilder, report: ConversionReport, stem: str,
              paths: Tuple[str, str], size: Tuple[int, int], boxes: List[YoloBox]) -> None:
    """Add a checked pair ((visible, infrared) paths, ``size`` (width, height)) and its boxes
    (clipped to the image; boxes left with no area are dropped and reported)."""
    img_id = builder.add_image(*paths, *size)
    report.num_images += 1
    for box in boxes:
        pixels = validate_box(box.to_pixels(*size), size, stem, report)
        if pixels is not None:
            builder.add_box(img_id, builder.classes[box.class_id], pixels)
            report.num_boxes += 1
