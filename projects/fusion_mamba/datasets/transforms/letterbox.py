"""Letterbox resize of an image pair: keep-ratio resize into a fixed canvas, centred padding."""
from typing import Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from .paired import IMAGE_KEYS


@TRANSFORMS.register_module()
class PairedLetterResize(BaseTransform):
    """Resize both images keeping the aspect ratio to fit in ``scale`` and pad them, centred,
    to exactly ``scale`` (YOLO-style letterbox). Deterministic: no random parameters.

    Updated keys: ``img`` (H, W, 3), ``ir_img`` (H, W, C_ir) with (W, H) = ``scale``,
    ``img_shape`` = ``pad_shape`` = (H, W), ``scale_factor`` (w_scale, h_scale),
    ``gt_bboxes`` (scaled, then shifted by the padding), ``pad_param``
    = np.array([top, bottom, left, right], float32).

    Note: models that map predictions back to the original image with ``scale_factor`` only
    (mmdet's heads) must also subtract ``pad_param``; for evaluation with mmdet's heads use
    ``PairedResize(keep_ratio=True)`` + ``PairedPad`` (bottom / right padding) instead.

    Args:
        scale (int | tuple[int, int]): canvas size (W, H); an int means a square canvas.
        pad_val (int): value of the padding in both images. Default 114.
        allow_scale_up (bool): enlarge images smaller than the canvas. Default True.
        interpolation (str): mmcv interpolation used for both images. Default 'bilinear'.
    """

    def __init__(self, scale: Union[int, Tuple[int, int]], pad_val: int = 114,
                 allow_scale_up: bool = True, interpolation: str = 'bilinear') -> None:
        self.scale = (scale, scale) if isinstance(scale, int) else tuple(scale)
        if len(self.scale) != 2 or min(self.scale) <= 0:
            raise ValueError(f'scale must be a positive int or (W, H), got {scale!r}')
        self.pad_val = pad_val
        self.allow_scale_up = allow_scale_up
        self.interpolation = interpolation

    def transform(self, results: dict) -> dict:
        height, width = results['img'].shape[:2]
        canvas_w, canvas_h = self.scale
        ratio = min(canvas_w / width, canvas_h / height)
        if not self.allow_scale_up:
            ratio = min(ratio, 1.0)
        new_w, new_h = int(round(width * ratio)), int(round(height * ratio))
        top = (canvas_h - new_h) // 2
        left = (canvas_w - new_w) // 2
        for key in IMAGE_KEYS:
            if key not in results:
                continue
            img = results[key]
            channels = img.shape[2] if img.ndim == 3 else 1
            resized = mmcv.imresize(img, (new_w, new_h), interpolation=self.interpolation)
            canvas = np.full((canvas_h, canvas_w, channels), self.pad_val, dtype=img.dtype)
            canvas[top:top + new_h, left:left + new_w] = resized.reshape(new_h, new_w, channels)
            results[key] = canvas if img.ndim == 3 else canvas[..., 0]
        w_scale, h_scale = new_w / width, new_h / height
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'].rescale_([w_scale, h_scale])
            results['gt_bboxes'].translate_([left, top])
        results['img_shape'] = (canvas_h, canvas_w)
        results['pad_shape'] = (canvas_h, canvas_w)
        results['scale_factor'] = (w_scale, h_scale)
        results['pad_param'] = np.array(
            [top, canvas_h - new_h - top, left, canvas_w - new_w - left], dtype=np.float32)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale={self.scale}, pad_val={self.pad_val}, '
                f'allow_scale_up={self.allow_scale_up}, interpolation={self.interpolation!r})')
