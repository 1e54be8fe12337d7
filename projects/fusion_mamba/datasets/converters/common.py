"""Shared pieces of the dataset converters: paired COCO building, checks, skip reports.

Converters never stop on a bad file: they record it in a :class:`ConversionReport` with the
reason and go on. Image-level problems skip the pair; box-level problems drop the box. A
split that ends with no pair at all is a failure: its json is not written and the command
line tools exit with status 1, naming the files they expected (:func:`finish`).
"""
import json
import os
import os.path as osp
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

from PIL import Image

# Image-level reasons (the pair is skipped).
MISSING_VISIBLE = 'missing visible image'
MISSING_INFRARED = 'missing infrared image'
MISSING_ANNOTATION = 'missing annotation file'
EMPTY_ANNOTATION = 'empty annotation file'
MALFORMED_ANNOTATION = 'malformed annotation file'
UNREADABLE_IMAGE = 'unreadable image'
SIZE_MISMATCH = 'visible / infrared size mismatch'
NO_OBJECTS = 'no objects (skip_empty)'
# Box-level reasons (the box is dropped).
BOX_OUTSIDE = 'box outside the image'
BOX_DEGENERATE = 'degenerate box (x2 <= x1 or y2 <= y1)'
BOX_MALFORMED = 'malformed box'
UNKNOWN_CLASS = 'unknown class'
# Kept, but worth knowing.
BOX_CLIPPED = 'box clipped to the image'

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff')


class ConversionError(ValueError):
    """An input that makes a whole conversion impossible (bad option, bad list or label file);
    the message names the file and, where it applies, the line."""


class AnnotationError(ValueError):
    """An annotation file that cannot be used; ``reason`` is one of the image-level reasons."""

    def __init__(self, reason: str, detail: str = '') -> None:
        super().__init__(f'{reason}: {detail}' if detail else reason)
        self.reason = reason


class ConversionReport:
    """What a converter skipped, dropped or changed, grouped by reason.

    Attributes:
        skipped_images (dict[str, list[str]]): reason -> items (pair names) skipped.
        expected_paths (dict[str, list[str]]): reason -> the paths looked for, for the skips
            of a missing file (image or annotation) that know where it should have been.
        dropped_boxes (dict[str, list[str]]): reason -> ``'item: detail'`` per dropped box.
        notes (dict[str, list[str]]): reason -> items kept with a change (e.g. clipped).
        sources (list[str]): where the converter looked for pairs (folders, list files), to
            explain a split where it found none.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.skipped_images: Dict[str, List[str]] = defaultdict(list)
        self.expected_paths: Dict[str, List[str]] = defaultdict(list)
        self.dropped_boxes: Dict[str, List[str]] = defaultdict(list)
        self.notes: Dict[str, List[str]] = defaultdict(list)
        self.sources: List[str] = []
        self.num_images = 0
        self.num_boxes = 0

    def skip_image(self, item: str, reason: str, expected: Optional[str] = None) -> None:
        """Record a skipped pair; ``expected`` is the path of the missing file, if known."""
        self.skipped_images[reason].append(item)
        if expected is not None:
            self.expected_paths[reason].append(expected)

    def drop_box(self, item: str, reason: str) -> None:
        self.dropped_boxes[reason].append(item)

    def note(self, item: str, reason: str) -> None:
        self.notes[reason].append(item)

    def to_dict(self) -> dict:
        return dict(name=self.name, images=self.num_images, boxes=self.num_boxes,
                    skipped_images=dict(self.skipped_images),
                    expected_paths=dict(self.expected_paths),
                    dropped_boxes=dict(self.dropped_boxes), notes=dict(self.notes),
                    sources=self.sources)

    def summary(self, examples: int = 3) -> str:
        """Human-readable summary: counts per reason with the first ``examples`` items."""
        lines = [f'{self.name}: {self.num_images} images, {self.num_boxes} boxes written']
        for title, groups in (('skipped images', self.skipped_images),
                              ('dropped boxes', self.dropped_boxes), ('kept', self.notes)):
            for reason, items in sorted(groups.items()):
                lines.append(f'  {title}: {reason}: {len(items)} ({_shown(items, examples)})')
                if title == 'skipped images' and self.expected_paths.get(reason):
                    lines.append('    looked for: '
                                 + _shown(self.expected_paths[reason], examples))
        return '\n'.join(lines)

    def failure(self, examples: int = 3) -> Optional[str]:
        """Why nothing usable was converted, or None when at least one pair was written.

        Names the sources looked in when no pair was found at all; else, per skip reason,
        the count and the first ``examples`` expected paths (or skipped items), with where the
        first expected path stops existing.
        """
        if self.num_images:
            return None
        lines = [f'{self.name}: no image pair written']
        if not self.skipped_images:
            lines.append('  no pair found; looked in: ' + (', '.join(
                f'{src}{"" if osp.exists(src) else " (does not exist)"}'
                for src in self.sources) or '(nothing)'))
        for reason, items in sorted(self.skipped_images.items()):
            expected = self.expected_paths.get(reason)
            if not expected:
                lines.append(f'  {reason}: {len(items)} ({_shown(items, examples)})')
                continue
            lines.append(f'  {reason}: {len(items)}; expected at:')
            lines += [f'    {path}' for path in expected[:examples]]
            if len(expected) > examples:
                lines.append(f'    ... and {len(expected) - examples} more')
            lines.append(f'    ({missing_part(expected[0])})')
        return '\n'.join(lines)


def _shown(items: Sequence[str], examples: int) -> str:
    """The first ``examples`` items, comma-separated, with ', ...' when there are more."""
    return ', '.join(items[:examples]) + (', ...' if len(items) > examples else '')


def missing_part(path: str) -> str:
    """Where a missing path stops existing: the first missing folder on its way, or that
    its folder exists without the file."""
    folder = osp.dirname(path) or '.'
    if osp.isdir(folder):
        return f'{folder} exists but holds no {osp.basename(path)}'
    while not osp.isdir(osp.dirname(folder) or '.'):
        folder = osp.dirname(folder)
    return f'{folder} does not exist'


class PairedCocoBuilder:
    """Collects images and boxes into a paired COCO dict (category id = class index + 1)."""

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = tuple(classes)
        self.images: List[dict] = []
        self.annotations: List[dict] = []
        self._ids = set()

    def add_image(self, file_name: str, ir_file_name: str, width: int, height: int,
                  image_id: Optional[int] = None, **extra) -> int:
        """Add an image record; ``extra`` fields (e.g. ``condition``) are stored as given.

        Args:
            image_id: the record's id (e.g. the dataset's own frame index); default: the
                number of images added so far + 1.

        Returns:
            the image id.
        """
        img_id = len(self.images) + 1 if image_id is None else int(image_id)
        if img_id in self._ids:
            raise ValueError(f'image id {img_id} is used twice ({file_name})')
        self._ids.add(img_id)
        self.images.append(dict(id=img_id, file_name=file_name, ir_file_name=ir_file_name,
                                width=int(width), height=int(height), **extra))
        return img_id

    def add_box(self, image_id: int, class_name: str, box: Tuple[float, float, float, float],
                **extra) -> None:
        """Add a box (x1, y1, x2, y2) in pixels; ``extra`` fields are stored as given."""
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        self.annotations.append(dict(
            id=len(self.annotations) + 1, image_id=image_id,
            category_id=self.classes.index(class_name) + 1, bbox=[x1, y1, w, h], area=w * h,
            iscrowd=extra.pop('iscrowd', 0), **extra))

    def to_dict(self) -> dict:
        return dict(images=self.images, annotations=self.annotations,
                    categories=[dict(id=i + 1, name=name)
                                for i, name in enumerate(self.classes)])


def write_outputs(coco: dict, report: ConversionReport, out_dir: str, name: str) -> str:
    """Write ``<out_dir>/<name>.json`` and ``<out_dir>/<name>_report.json``; returns the
    json path."""
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, f'{name}.json')
    with open(path, 'w') as f:
        json.dump(coco, f)
    with open(osp.join(out_dir, f'{name}_report.json'), 'w') as f:
        json.dump(report.to_dict(), f, indent=1)
    return path


def save_results(results: Dict[str, Tuple[dict, ConversionReport]], out_dir: str
                 ) -> List[str]:
    """Write every split of a converter's results; returns one summary block per split.

    A split without any image gets its ``_report.json`` but no json (see :func:`finish`).
    """
    lines = []
    for coco, report in results.values():
        if report.num_images:
            path = write_outputs(coco, report, out_dir, report.name)
            lines.append(f'{report.summary()}\n  -> {path}')
            continue
        os.makedirs(out_dir, exist_ok=True)
        path = osp.join(out_dir, f'{report.name}_report.json')
        with open(path, 'w') as f:
            json.dump(report.to_dict(), f, indent=1)
        lines.append(f'{report.summary()}\n  -> {report.name}.json not written; report {path}')
    return lines


def finish(results: Dict[str, Tuple[dict, ConversionReport]], out_dir: str) -> int:
    """End of a converter command: write the results, print the summaries and return the exit
    status: 0, or 1 after printing to stderr why a split has no image pair."""
    print('\n'.join(save_results(results, out_dir)))
    failures = [report.failure() for _, report in results.values()]
    failures = [failure for failure in failures if failure]
    if not failures:
        return 0
    print('error: nothing usable converted\n' + '\n'.join(failures), file=sys.stderr)
    return 1


def fail(err: Exception) -> int:
    """Print an input error of a converter command to stderr; returns exit status 1."""
    print(f'error: {err}', file=sys.stderr)
    return 1


def locate_image(root: str, folder: str, stem: str, default_ext: str = '.jpg') -> str:
    """Path relative to ``root`` of ``folder/stem<ext>`` (``folder`` relative to ``root``)
    for the first existing extension of ``IMAGE_EXTENSIONS``; when none exists, the path
    with ``default_ext``, where the image was expected."""
    found = find_image(osp.join(root, folder), stem)
    return osp.relpath(found, root) if found else osp.join(folder, stem + default_ext)


def check_box(box: Tuple[float, float, float, float], width: int,
              height: int) -> Tuple[Optional[tuple], Optional[str]]:
    """Validate a pixel box (x1, y1, x2, y2) against a width x height image.

    Returns:
        tuple: (box clipped to the image or None, reason or None). The reason is
        ``BOX_DEGENERATE`` / ``BOX_OUTSIDE`` when the box is dropped, ``BOX_CLIPPED`` when it
        was kept after clipping.
    """
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        return None, BOX_DEGENERATE
    clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
    if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
        return None, BOX_OUTSIDE
    if clipped != (x1, y1, x2, y2):
        return clipped, BOX_CLIPPED
    return clipped, None


def validate_box(box: Tuple[float, float, float, float], size: Tuple[int, int], item: str,
                 report: ConversionReport) -> Optional[tuple]:
    """:func:`check_box` that records a dropped or clipped box in ``report``."""
    checked, reason = check_box(box, *size)
    if reason == BOX_CLIPPED:
        report.note(f'{item}: {box}', reason)
    elif reason is not None:
        report.drop_box(f'{item}: {box}', reason)
    return checked


def image_size(path: str) -> Tuple[int, int]:
    """(width, height) from the image header. Raises ``OSError`` if it cannot be read."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except Exception as err:  # PIL raises several types on bad files
        raise OSError(f'cannot read image {path}: {err}') from err
    if width == 0 or height == 0:
        raise OSError(f'empty image {path}')
    return width, height


def read_list(path: str) -> List[str]:
    """Stems listed in a text file, one per line (extensions and blank lines ignored)."""
    with open(path) as f:
        return [osp.splitext(osp.basename(line.strip()))[0] for line in f if line.strip()]


def find_image(folder: str, stem: str, extensions: Sequence[str] = IMAGE_EXTENSIONS
               ) -> Optional[str]:
    """Path of ``folder/stem<ext>`` for the first existing extension, else None."""
    for ext in extensions:
        path = osp.join(folder, stem + ext)
        if osp.isfile(path):
            return path
    return None


def check_pair(root: str, visible: Optional[str], infrared: Optional[str], item: str,
               report: ConversionReport) -> Optional[Tuple[int, int]]:
    """Check that both images exist, are readable and have the same size.

    Args:
        visible, infrared: paths relative to ``root``, found or expected (then recorded as
            expected when missing); None when not known.

    Returns:
        (width, height) of the pair, or None after recording the reason in ``report``.
    """
    for path, reason in ((visible, MISSING_VISIBLE), (infrared, MISSING_INFRARED)):
        if path is None or not osp.isfile(osp.join(root, path)):
            report.skip_image(item, reason, path and osp.join(root, path))
            return None
    try:
        sizes = [image_size(osp.join(root, p)) for p in (visible, infrared)]
    except OSError as err:
        report.skip_image(f'{item} ({err})', UNREADABLE_IMAGE)
        return None
    if sizes[0] != sizes[1]:
        report.skip_image(f'{item} ({sizes[0]} vs {sizes[1]})', SIZE_MISMATCH)
        return None
    return sizes[0]


def parse_voc_xml(path: str) -> Tuple[Optional[Tuple[int, int]], List[dict]]:
    """Read a PASCAL VOC annotation file.

    Returns:
        tuple: ((width, height) from ``<size>`` or None when absent / zero, list of objects
        ``dict(name, box=(x1, y1, x2, y2) or None, difficult)``; ``box`` is None for an
        object whose ``<bndbox>`` is missing or not numeric).

    Raises:
        AnnotationError: the file is missing, empty or not valid XML.
    """
    if not osp.isfile(path):
        raise AnnotationError(MISSING_ANNOTATION, path)
    if osp.getsize(path) == 0:
        raise AnnotationError(EMPTY_ANNOTATION, path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise AnnotationError(MALFORMED_ANNOTATION, f'{path}: {err}') from err
    size = None
    try:
        width, height = (int(float(root.findtext(f'size/{k}'))) for k in ('width', 'height'))
        if width > 0 and height > 0:
            size = (width, height)
    except (TypeError, ValueError):
        pass
    objects = []
    for obj in root.iter('object'):
        name = (obj.findtext('name') or '').strip()
        try:
            box = tuple(float(obj.findtext(f'bndbox/{k}'))
                        for k in ('xmin', 'ymin', 'xmax', 'ymax'))
        except (TypeError, ValueError):
            box = None
        difficult = (obj.findtext('difficult') or '0').strip() == '1'
        objects.append(dict(name=name, box=box, difficult=difficult))
    return size, objects


def add_voc_pair(builder: PairedCocoBuilder, report: ConversionReport, root: str, item: str,
                 visible: Optional[str], infrared: Optional[str], xml_path: str,
                 skip_empty: bool = False) -> None:
    """Check a pair and its VOC annotation and add them to ``builder``, recording every skip.

    Boxes are VOC pixel corners (xmin, ymin, xmax, ymax) used as given; ``difficult`` objects
    are written with ``iscrowd: 1`` (ignored by training and COCO evaluation).
    """
    try:
        _, objects = parse_voc_xml(xml_path)
    except AnnotationError as err:
        report.skip_image(item, err.reason, xml_path if err.reason == MISSING_ANNOTATION
                          else None)
        return
    size = check_pair(root, visible, infrared, item, report)
    if size is None:
        return
    boxes = []
    for obj in objects:
        if obj['name'] not in builder.classes:
            report.drop_box(f'{item}: {obj["name"]!r}', UNKNOWN_CLASS)
            continue
        if obj['box'] is None:
            report.drop_box(item, BOX_MALFORMED)
            continue
        box = validate_box(obj['box'], size, item, report)
        if box is not None:
            boxes.append((obj['name'], box, int(obj['difficult'])))
    if not boxes and skip_empty:
        report.skip_image(item, NO_OBJECTS)
        return
    img_id = builder.add_image(visible, infrared, *size)
    for name, box, difficult in boxes:
        builder.add_box(img_id, name, box, iscrowd=difficult)
    report.num_images += 1
    report.num_boxes += len(boxes)
