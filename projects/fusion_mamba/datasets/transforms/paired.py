"""Geometric transforms applied identically to the visible image, the infrared image and boxes.

Each ``Paired*`` class is mmdet's own transform run twice per sample: once on the visible
view of the results (``img`` = visible image, with the boxes) and once on the infrared view
(``img`` = infrared image, with a copy of the boxes), with Python's and NumPy's random state
restored between the two runs. Both runs see the same shapes and annotations, so they take
the same code path and consume the same random numbers: every random parameter (flip
direction, crop offset, affine matrix, mosaic centre ...) is drawn once per sample and shared
by both images, and the random state afterwards is what a single run leaves.

The infrared image keeps its channel count: a 1-channel image is replicated to 3 channels
for the run (so padding values and colour-aware code behave as for the visible image) and
reduced back to its first channel afterwards.
"""
import copy
import random

import numpy as np
from mmdet.datasets.transforms import (Mosaic, Pad, RandomAffine, RandomCrop, RandomFlip,
                                       Resize)
from mmdet.registry import TRANSFORMS

# Keys holding image arrays of one modality; the views below swap them.
IMAGE_KEYS = ('img', 'ir_img')


def _single_modality_view(results: dict, modality_key: str) -> dict:
    """A results dict where ``img`` is the image of ``modality_key`` (``'img'`` or ``'ir_img'``).

    The visible view shares every non-image value with ``results``; the infrared view holds
    deep copies of them, because mmdet transforms modify boxes in place. ``mix_results``
    (Mosaic's other samples) are converted the same way.
    """
    if modality_key == 'img':
        view = {k: v for k, v in results.items() if k != 'ir_img'}
    else:
        view = {k: copy.deepcopy(v) for k, v in results.items()
                if k not in IMAGE_KEYS and k != 'mix_results'}
        img = results['ir_img']
        view['img'] = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
    if 'mix_results' in results:
        view['mix_results'] = [_single_modality_view(r, modality_key)
                               for r in results['mix_results']]
    return view


def _boxes_array(results: dict) -> np.ndarray:
    """(N, 4) array of ``gt_bboxes`` (empty when absent)."""
    boxes = results.get('gt_bboxes')
    if boxes is None:
        return np.zeros((0, 4), np.float32)
    return boxes.numpy() if hasattr(boxes, 'numpy') else np.asarray(boxes)


class PairedTransformMixin:
    """Runs the parent (single-image) mmdet transform on both modalities.

    Put it first in the bases: ``class PairedX(PairedTransformMixin, X)``.
    """

    def transform(self, results: dict) -> dict:
        if 'ir_img' not in results:
            raise KeyError(f'{type(self).__name__} needs results["ir_img"]: load the pair '
                           'with LoadPairedImagesFromFile')
        ir_channels = results['ir_img'].shape[2]
        # The infrared view copies the annotations before the visible run changes them.
        ir_view = _single_modality_view(results, 'ir_img')
        py_state, np_state = random.getstate(), np.random.get_state()
        visible_out = super().transform(_single_modality_view(results, 'img'))
        if visible_out is None:  # e.g. RandomCrop without boxes left
            return None
        after_py, after_np = random.getstate(), np.random.get_state()
        random.setstate(py_state)
        np.random.set_state(np_state)
        ir_out = super().transform(ir_view)
        random.setstate(after_py)
        np.random.set_state(after_np)
        ir_img = ir_out['img']
        if ir_img.ndim == 2:
            ir_img = ir_img[..., None]
        if ir_img.shape[:2] != visible_out['img'].shape[:2] or not np.array_equal(
                _boxes_array(ir_out), _boxes_array(visible_out)):
            raise RuntimeError(
                f'{type(self).__name__} transformed the visible and infrared views '
                f'differently (shapes {visible_out["img"].shape} and {ir_img.shape}): it '
                "must draw from Python's or NumPy's global random state, independently of "
                'pixel values')
        visible_out['ir_img'] = np.ascontiguousarray(ir_img[..., :ir_channels])
        if 'mix_results' in results:  # hand the untouched pairs on, not their views
            visible_out['mix_results'] = results['mix_results']
        return visible_out


@TRANSFORMS.register_module()
class PairedResize(PairedTransformMixin, Resize):
    """mmdet ``Resize`` on both modalities (same arguments); usable as
    ``resize_type='PairedResize'`` in ``RandomResize`` / ``RandomChoiceResize``."""


@TRANSFORMS.register_module()
class PairedRandomFlip(PairedTransformMixin, RandomFlip):
    """mmdet ``RandomFlip`` on both modalities; one flip decision per sample."""


@TRANSFORMS.register_module()
class PairedRandomCrop(PairedTransformMixin, RandomCrop):
    """mmdet ``RandomCrop`` on both modalities; one crop window per sample."""


@TRANSFORMS.register_module()
class PairedPad(PairedTransformMixin, Pad):
    """mmdet ``Pad`` on both modalities (``pad_val['img']`` is used for both images)."""


@TRANSFORMS.register_module()
class PairedRandomAffine(PairedTransformMixin, RandomAffine):
    """mmdet ``RandomAffine`` on both modalities; one warp matrix per sample."""


@TRANSFORMS.register_module()
class PairedMosaic(PairedTransformMixin, Mosaic):
    """mmdet ``Mosaic`` on both modalities; one centre per sample, the same 4 source pairs.

    Use inside ``MultiImageMixDataset`` whose inner dataset loads pairs
    (``LoadPairedImagesFromFile`` + ``LoadAnnotations``).
    """
