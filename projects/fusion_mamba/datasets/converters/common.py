"""Shared pieces of the dataset converters: paired COCO building, checks, skip reports.

Converters never stop on a bad file: they record it in a :class:`ConversionReport` with the
reason and go on. Image-level problems skip the pair; box-level problems drop the box.
"""
import json
import os
import os.path as osp
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


class AnnotationError(ValueError):
    """An annotation file that cannot be used; ``reason`` is one of the image-level reasons."""

    def __init__(self, reason: str, detail: str = '') -> None:
        super().__init__(f'{reason}: {detail}' if detail else reason)
        self.reason = reason


class ConversionReport:
    """What a converter skipped, dropped or changed, grouped by reason.

    Attributes:
        skipped_images (dict[str, list[str]]): reason -> items (pair names) skipped.
        dropped_boxes (dict[str, list[str]]): reason -> ``'item: detail'`` per dropped box.
        notes (dict[str, list[str]]): reason -> items kept with a change (e.g. clipped).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.skipped_images: Dict[str, List[str]] = defaultdict(list)
        self.dropped_boxes: Dict[str, List[str]] = defaultdict(list)
        self.notes: Dict[str, List[str]] = defaultdict(list)
        self.num_images = 0
        self.num_boxes = 0

    def skip_image(self, item: str, reason: str) -> None:
        self.skipped_images[reason].append(item)

    def drop_box(self, item: str, reason: str) -> None:
        self.dropped_boxes[reason].append(item)

    def note(self, item: str, reason: str) -> None:
        self.notes[reason].append(item)

    def to_dict(self) -> dict:
        return dict(name=self.name, images=self.num_images, boxes=self.num_boxes,
                    skipped_images=dict(self.skipped_images),
                    dropped_boxes=dict(self.dropped_boxes), notes=dict(self.notes))

    def summary(self, examples: int = 3) -> str:
        """Human-readable summary: counts per reason with the first ``examples`` items."""
        lines = [f'{self.name}: {self.num_images} images, {self.num_boxes} boxes written']
        for title, groups in (('skipped images', self.skipped_images),
                              ('dropped boxes', self.dropped_boxes), ('kept', self.notes)):
            for reason, items in sorted(groups.items()):
                shown = ', '.join(items[:examples]) + (', ...' if len(items) > examples else '')
                lines.append(f'  {title}: {reason}: {len(items)} ({shown})')
        return '\n'.join(lines)


class PairedCocoBuilder:
    """Collects images and boxes into a paired COCO dict (category id = class index + 1)."""

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = tuple(classes)
        self.images: List[dict] = []
        self.annotations: List[dict] = []

    def add_image(self, file_name: str, ir_file_name: str, width: int, height: int,
                  **extra) -> int:
        """Add an image record; ``extra`` fields (e.g. ``condition``) are stored as given."""
        img_id = len(self.images) + 1
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
    """Write every split of a converter's results; returns one summary block per split."""
    lines = []
    for coco, report in results.values():
        path = write_outputs(coco, report, out_dir, report.name)
        lines.append(f'{report.summary()}\n  -> {path}')
    return lines


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
        visible, infrared: paths relative to ``root`` (None when not found).

    Returns:
        (width, height) of the pair, or None after recording the reason in ``report``.
    """
    for path, reason in ((visible, MISSING_VISIBLE), (infrared, MISSING_INFRARED)):
        if path is None or not osp.isfile(osp.join(root, path)):
            report.skip_image(item, reason)
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
        report.skip_image(item, err.reason)
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
