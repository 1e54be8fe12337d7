"""Paired RGB / infrared datasets, transforms and the built-in demo data.

Importing this package registers the dataset classes in mmdet's ``DATASETS`` and the
transforms in mmdet's ``TRANSFORMS``.
"""
from .benchmarks import (DemoPairsDataset, FLIRAlignedDataset, KAISTDataset, LLVIPDataset,
                         M3FDDataset)
from .classes import (DEMO_CLASSES, FLIR_ALIGNED_CLASSES, KAIST_CLASSES, LLVIP_CLASSES,
                      M3FD_CLASSES)
from .demo import DEFAULT_DEMO_ROOT, ensure_demo_dataset, generate_demo_dataset
from .paired_coco import PairedCocoDataset
from .transforms import *  # noqa: F401,F403

__all__ = [
    'PairedCocoDataset', 'LLVIPDataset', 'M3FDDataset', 'FLIRAlignedDataset', 'KAISTDataset',
    'DemoPairsDataset', 'LLVIP_CLASSES', 'M3FD_CLASSES', 'FLIR_ALIGNED_CLASSES',
    'KAIST_CLASSES', 'DEMO_CLASSES', 'DEFAULT_DEMO_ROOT', 'generate_demo_dataset',
    'ensure_demo_dataset'
]
