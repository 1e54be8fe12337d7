"""Evaluation setting of the pedestrian protocol: which boxes count and which are ignored.

The defaults are the KAIST "reasonable" setting of the KAIST devkit (``kaist_eval_full``
with ``bbGt bbLoad``) and the MLPD ``evaluation_script.py``:

- labels 'people', 'person?' and 'cyclist' are ignore regions (``ilbls``), and so is
  '__ignore__', the ignore category of the improved test annotations' json;
- a ground truth box is an ignore region when its height is outside [55, inf] px, its
  occlusion level is not none (0) or partial (1), or it leaves the image interior shrunk by
  5 px (``xRng = [5, W - 5]``, ``yRng = [5, H - 5]``; 635 x 507 for 640 x 512 KAIST frames);
- detections are all kept. The Caltech ``dbEval`` additionally drops detections whose height
  is outside ``[h_min / 1.25, h_max * 1.25)`` before matching; ``det_height_expand=1.25``
  reproduces that, the KAIST scripts do not do it.
"""
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class PedestrianSetting:
    """Ground truth filter and detection filter of one evaluation setting.

    Args:
        height_range: ``(min, max)`` ground truth height in px, both inclusive.
        occlusions: occlusion levels kept (0 none, 1 partial, 2 heavy).
        border_margin: px; boxes closer than this to the image border are ignored. None
            disables the check.
        ignore_names: category names whose boxes are ignore regions.
        det_height_expand: None keeps every detection; a factor ``e`` drops detections of
            height outside ``[min / e, max * e)`` before matching.
    """

    height_range: Tuple[float, float] = (55.0, math.inf)
    occlusions: Tuple[int, ...] = (0, 1)
    border_margin: Optional[float] = 5.0
    ignore_names: Tuple[str, ...] = ('people', 'person?', 'cyclist', '__ignore__')
    det_height_expand: Optional[float] = None

    def is_ignored(self, bbox: np.ndarray, height: float, occlusion: int,
                   image_size: Optional[Tuple[float, float]]) -> bool:
        """Whether a regular ground truth box falls outside the setting.

        Args:
            bbox: (4,) box, xyxy px.
            height: object height in px.
            occlusion: occlusion level.
            image_size: ``(width, height)`` in px, or None to skip the border check.
        """
        low, high = self.height_range
        if not low <= height <= high or occlusion not in self.occlusions:
            return True
        if self.border_margin is None or image_size is None:
            return False
        m = self.border_margin
        width, img_height = image_size
        x1, y1, x2, y2 = bbox
        return x1 < m or y1 < m or x2 > width - m or y2 > img_height - m

    def keep_detections(self, det_boxes: np.ndarray) -> np.ndarray:
        """(N,) bool mask of the detections that take part in matching.

        Args:
            det_boxes: (N, 4) detections, xyxy px.
        """
        det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
        if self.det_height_expand is None:
            return np.ones(len(det_boxes), dtype=bool)
        heights = det_boxes[:, 3] - det_boxes[:, 1]
        low, high = self.height_range
        e = self.det_height_expand
        return (heights >= low / e) & (heights < high * e)
