"""FLIR-Aligned (the aligned release of FLIR ADAS v1) -> paired COCO.

Layout of the release (``align/``)::

    align/
        JPEGImages/FLIR_00002_RGB.jpg            visible
        JPEGImages/FLIR_00002_PreviewData.jpeg   thermal
        Annotations/FLIR_00002_PreviewData.xml   PASCAL VOC, shared by both images
        align_train.txt / align_validation.txt   one entry per line, e.g. FLIR_00002_PreviewData
                                                 (also looked for in ImageSets/Main/)

Classes are person, car, bicycle; other labels in the files (a few 'dog') are dropped and
reported.
"""
import os.path as osp
from typing import Dict, Sequence, Tuple

from ..classes import FLIR_ALIGNED_CLASSES
from .common import ConversionReport, PairedCocoBuilder, add_voc_pair, read_list

FLIR_SPLITS = {'train': 'align_train.txt', 'val': 'align_validation.txt'}
SUFFIXES = ('_PreviewData', '_RGB')


def frame_id(entry: str) -> str:
    """'FLIR_00002_PreviewData' / 'FLIR_00002_RGB' / 'FLIR_00002' -> 'FLIR_00002'."""
    for suffix in SUFFIXES:
        if entry.endswith(suffix):
            return entry[:-len(suffix)]
    return entry


def find_split_list(root: str, file_name: str) -> str:
    """Path of a split list in ``root`` or ``root/ImageSets/Main``."""
    for folder in (root, osp.join(root, 'ImageSets', 'Main')):
        path = osp.join(folder, file_name)
        if osp.isfile(path):
            return path
    raise FileNotFoundError(f'split list {file_name} not found in {root} or '
                            f'{osp.join(root, "ImageSets", "Main")}')


def _annotation_path(root: str, frame: str) -> str:
    for name in (f'{frame}_PreviewData.xml', f'{frame}.xml', f'{frame}_RGB.xml'):
        path = osp.join(root, 'Annotations', name)
        if osp.isfile(path):
            return path
    return osp.join(root, 'Annotations', f'{frame}_PreviewData.xml')


def convert_flir_aligned(root: str, splits: Sequence[str] = tuple(FLIR_SPLITS),
                         skip_empty: bool = False
                         ) -> Dict[str, Tuple[dict, ConversionReport]]:
    """Convert the train / val lists of a FLIR-Aligned tree.

    Returns:
        dict: split -> (paired COCO dict, report); paths relative to ``root``.
    """
    results = {}
    for split in splits:
        builder = PairedCocoBuilder(FLIR_ALIGNED_CLASSES)
        report = ConversionReport(f'flir_aligned_{split}')
        report.sources = [find_split_list(root, FLIR_SPLITS[split])]
        for frame in map(frame_id, read_list(report.sources[0])):
            add_voc_pair(builder, report, root, frame,
                         f'JPEGImages/{frame}_RGB.jpg', f'JPEGImages/{frame}_PreviewData.jpeg',
                         _annotation_path(root, frame), skip_empty)
        results[split] = (builder.to_dict(), report)
    return results
