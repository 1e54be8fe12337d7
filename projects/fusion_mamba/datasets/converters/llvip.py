"""LLVIP (official release layout) -> paired COCO, one json per split.

Layout::

    LLVIP/
        visible/{train,test}/010001.jpg
        infrared/{train,test}/010001.jpg
        Annotations/010001.xml            PASCAL VOC, class 'person', shared by both images

The split is the release's: the folder an image is in.
"""
import os
import os.path as osp
from typing import Dict, Sequence, Tuple

from ..classes import LLVIP_CLASSES
from .common import (ConversionReport, PairedCocoBuilder, add_voc_pair, IMAGE_EXTENSIONS)

LLVIP_SPLITS = ('train', 'test')


def _stems(folder: str) -> Dict[str, str]:
    """stem -> file name of the images in ``folder`` ({} if it does not exist)."""
    if not osp.isdir(folder):
        return {}
    return {osp.splitext(name)[0]: name for name in os.listdir(folder)
            if osp.splitext(name)[1].lower() in IMAGE_EXTENSIONS}


def convert_llvip(root: str, splits: Sequence[str] = LLVIP_SPLITS,
                  skip_empty: bool = False) -> Dict[str, Tuple[dict, ConversionReport]]:
    """Convert each split of an LLVIP tree.

    A pair is any stem found in ``visible/<split>`` or ``infrared/<split>``; pairs without
    an annotation file, with one partner missing (expected under the other's file name),
    unreadable or of different sizes are skipped and reported.

    Returns:
        dict: split -> (paired COCO dict, report). Paths are relative to ``root``.
    """
    results = {}
    for split in splits:
        builder = PairedCocoBuilder(LLVIP_CLASSES)
        report = ConversionReport(f'llvip_{split}')
        report.sources = [osp.join(root, modality, split) for modality in ('visible', 'infrared')]
        visible, infrared = map(_stems, report.sources)
        for stem in sorted(set(visible) | set(infrared)):
            name = visible.get(stem) or infrared[stem]
            add_voc_pair(
                builder, report, root, f'{split}/{stem}',
                f'visible/{split}/{visible.get(stem, name)}',
                f'infrared/{split}/{infrared.get(stem, name)}',
                osp.join(root, 'Annotations', f'{stem}.xml'), skip_empty)
        results[split] = (builder.to_dict(), report)
    return results
