"""Detections drawn on a visible / infrared pair, side by side.

Shared by :class:`PairedDetVisualizationHook` (``tools/test.py --show-dir``, validation) and
:class:`FusionMambaInferencer` (the demos), so both draw the same picture.
"""
from typing import Mapping, Optional, Sequence, Union

import mmcv
import numpy as np
from mmengine.structures import InstanceData

#: Drawing threshold of a class with no threshold of its own.
DEFAULT_SCORE_THR = 0.3


def per_label_thresholds(classes: Sequence[str],
                         class_thresholds: Optional[Mapping[str, float]],
                         default: float = DEFAULT_SCORE_THR) -> np.ndarray:
    """(C,) thresholds indexed by label: ``class_thresholds[name]`` where given (e.g. the
    best-F1 thresholds of a checkpoint, keyed by class name), else ``default``."""
    class_thresholds = class_thresholds or {}
    return np.array([class_thresholds.get(name, default) for name in classes], np.float64)


def select_detections(instances: InstanceData,
                      score_thr: Union[float, np.ndarray]) -> InstanceData:
    """The instances scoring above ``score_thr``, on the CPU.

    Args:
        instances: ``scores`` (N,) and ``labels`` (N,) (tensors), plus any other fields.
        score_thr: one threshold for all classes, or (C,) thresholds indexed by label.
    """
    instances = instances.cpu()
    scores = instances.scores.numpy()
    thr = np.asarray(score_thr, np.float64)
    if thr.ndim:
        thr = thr[instances.labels.numpy()]
    return instances[scores > thr]


def draw_paired_detections(visualizer, visible: np.ndarray, infrared: np.ndarray,
                           instances: InstanceData,
                           gt_instances: Optional[InstanceData] = None) -> np.ndarray:
    """Draw boxes on both images of a pair and put them side by side.

    Args:
        visualizer: an mmdet ``DetLocalVisualizer`` whose ``dataset_meta`` has ``classes``
            (and ``palette``).
        visible: (H, W, 3) uint8 RGB.
        infrared: (H', W', 3) uint8 RGB; resized to H x W if its size differs.
        instances: boxes to draw (``bboxes`` (N, 4) xyxy in visible-image pixels,
            ``labels``, optional ``scores``), already selected (:func:`select_detections`).
        gt_instances: ground truth to draw too (optional).

    Returns:
        (H, 2W, 3) uint8 RGB ``[visible | infrared]`` with ``instances``; with
        ``gt_instances`` (2H, 2W, 3): the ground truth in the top row, ``instances`` below.
    """
    h, w = visible.shape[:2]
    if infrared.shape[:2] != (h, w):
        infrared = mmcv.imresize(infrared, (w, h))
    classes = visualizer.dataset_meta.get('classes')
    palette = visualizer.dataset_meta.get('palette')
    rows = [instances] if gt_instances is None else [gt_instances.cpu(), instances]
    return np.concatenate([
        np.concatenate([visualizer._draw_instances(img, boxes, classes, palette)
                        for img in (visible, infrared)], axis=1) for boxes in rows
    ], axis=0)
