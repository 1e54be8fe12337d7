"""M3FD (detection release) -> paired COCO, with a reproducible train / val split.

Layout::

    M3FD_Detection/
        Vis/00000.png
        Ir/00000.png
        Annotation/00000.xml      PASCAL VOC: People, Car, Bus, Motorcycle, Lamp, Truck

M3FD has no official split. Either give list files (one stem per line), or the annotation
stems (sorted) are shuffled with ``random.Random(seed)`` and the first ``val_size`` go to
val, the next ``train_size`` to train (defaults: the published 831 / 3368). With fewer
pairs, the two sizes are scaled in proportion. The split is decided on the annotation file
names, before any check, so a bad file never shifts the others between splits; the lists
used are returned (and written by the command-line tool) for reuse.
"""
import os
import os.path as osp
import random
from typing import Dict, List, Optional, Tuple

from ..classes import M3FD_CLASSES
from .common import (ConversionReport, PairedCocoBuilder, add_voc_pair, locate_image,
                     read_list)

M3FD_TRAIN_SIZE = 3368
M3FD_VAL_SIZE = 831


def seeded_split(stems: List[str], seed: int, train_size: int,
                 val_size: int) -> Dict[str, List[str]]:
    """Reproducible split of ``stems`` into {'train': [...], 'val': [...], 'unused': [...]}
    (each list sorted)."""
    if train_size < 1 or val_size < 1:
        raise ValueError(f'train_size and val_size must be >= 1, got {train_size}, {val_size}')
    order = sorted(stems)
    random.Random(seed).shuffle(order)
    if len(order) < train_size + val_size:
        val_size = round(len(order) * val_size / (train_size + val_size))
        train_size = len(order) - val_size
    return dict(val=sorted(order[:val_size]),
                train=sorted(order[val_size:val_size + train_size]),
                unused=sorted(order[val_size + train_size:]))


def convert_m3fd(root: str, seed: int = 0, train_size: int = M3FD_TRAIN_SIZE,
                 val_size: int = M3FD_VAL_SIZE, split_lists: Optional[Dict[str, str]] = None,
                 skip_empty: bool = False
                 ) -> Tuple[Dict[str, Tuple[dict, ConversionReport]], Dict[str, List[str]]]:
    """Convert an M3FD tree.

    Args:
        split_lists (dict, optional): split name -> list file; overrides the seeded split.

    Returns:
        tuple: (split -> (paired COCO dict, report), split -> stems used). Paths in the json
        are relative to ``root``.

    Raises:
        FileNotFoundError: a list file or, without lists, ``root/Annotation`` is missing.
    """
    ann_dir = osp.join(root, 'Annotation')
    if split_lists:
        splits = {name: read_list(path) for name, path in split_lists.items()}
        sources = split_lists
    else:
        if not osp.isdir(ann_dir):
            raise FileNotFoundError(f'annotation folder {ann_dir} does not exist (expected the '
                                    'M3FD layout: Vis/, Ir/, Annotation/)')
        stems = [osp.splitext(n)[0] for n in os.listdir(ann_dir) if n.endswith('.xml')]
        if not stems:
            raise FileNotFoundError(f'no .xml annotation in {ann_dir}')
        splits = seeded_split(stems, seed, train_size, val_size)
        sources = {split: ann_dir for split in splits}
    results = {}
    for split, stems in splits.items():
        if split == 'unused':
            continue
        builder = PairedCocoBuilder(M3FD_CLASSES)
        report = ConversionReport(f'm3fd_{split}')
        report.sources = [sources[split]]
        for stem in stems:
            add_voc_pair(builder, report, root, stem, locate_image(root, 'Vis', stem, '.png'),
                         locate_image(root, 'Ir', stem, '.png'),
                         osp.join(ann_dir, f'{stem}.xml'), skip_empty)
        results[split] = (builder.to_dict(), report)
    return results, splits
