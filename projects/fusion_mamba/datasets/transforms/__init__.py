"""Transforms for visible / infrared pairs, registered in mmdet's ``TRANSFORMS``."""
from .formatting import PackMultiModalDetInputs
from .letterbox import PairedLetterResize
from .loading import LoadPairedImagesFromFile, LoadPairedImagesFromNDArray, convert_color
from .modality import ApplyToModality, RandomModalityDropout
from .paired import (PairedMosaic, PairedPad, PairedRandomAffine, PairedRandomCrop,
                     PairedRandomFlip, PairedResize, PairedTransformMixin)

__all__ = [
    'LoadPairedImagesFromFile', 'LoadPairedImagesFromNDArray', 'convert_color',
    'PairedTransformMixin', 'PairedResize', 'PairedRandomFlip', 'PairedRandomCrop',
    'PairedPad', 'PairedRandomAffine', 'PairedMosaic', 'PairedLetterResize',
    'ApplyToModality', 'RandomModalityDropout', 'PackMultiModalDetInputs'
]
