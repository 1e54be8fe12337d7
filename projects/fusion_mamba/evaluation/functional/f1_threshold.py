"""Per-class score thresholds that maximise F1 on a set of images with ground truth.

Detections are matched to the ground truth image by image and class at IoU >= ``iou_thr``
(:func:`match_detections`: each box matches at most one detection, highest score first;
detections on ignore regions are left out). Over all images, keeping the detections of a
class that score at least ``s`` gives ``TP(s)`` true positives out of ``N(s)`` kept
detections and ``G`` ground-truth boxes, so

    precision = TP / N,   recall = TP / G,   F1 = 2 TP / (N + G).

The best cut is searched over the distinct detection scores (equal scores are kept or
dropped together; on equal F1 the higher score wins). The threshold returned lies half-way
between the lowest kept score and the next lower detection score (0 below the lowest
detection), so ``score > threshold`` and ``score >= threshold`` keep the same detections.
A class without ground truth, or without any true positive, gets no threshold.
"""
from typing import Dict, NamedTuple, Optional

import numpy as np

from .box_matching import IGNORED, TRUE_POSITIVE, match_detections


class F1Threshold(NamedTuple):
    """The best F1 cut of one class: threshold, F1, precision, recall, kept detections
    (``num_kept``) and ground-truth boxes (``num_gt``)."""
    score_thr: float
    f1: float
    precision: float
    recall: float
    num_kept: int
    num_gt: int


class ClassMatches(NamedTuple):
    """Matched detections of one class: (D,) scores, (D,) bool true positive, and the
    number of ground-truth boxes (ignore regions not counted)."""
    scores: np.ndarray
    true_positive: np.ndarray
    num_gt: int


def match_image_classes(det_boxes: np.ndarray, det_scores: np.ndarray,
                        det_labels: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray,
                        ignore_boxes: Optional[np.ndarray] = None,
                        ignore_labels: Optional[np.ndarray] = None,
                        iou_thr: float = 0.5) -> Dict[int, ClassMatches]:
    """Match one image's detections to its ground truth, class by class.

    Args:
        det_boxes, det_scores, det_labels: (D, 4) xyxy pixels, (D,), (D,) int.
        gt_boxes, gt_labels: (G, 4) xyxy pixels, (G,) int.
        ignore_boxes, ignore_labels: (I, 4), (I,) ignore regions (optional).
        iou_thr: the IoU a match needs.

    Returns:
        ``{label: ClassMatches}`` for every label with a detection or a ground-truth box;
        detections on ignore regions are dropped.
    """
    det_boxes = np.asarray(det_boxes, np.float64).reshape(-1, 4)
    det_scores = np.asarray(det_scores, np.float64).reshape(-1)
    det_labels = np.asarray(det_labels, np.int64).reshape(-1)
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, np.int64).reshape(-1)
    if ignore_boxes is None:
        ignore_boxes, ignore_labels = np.zeros((0, 4)), np.zeros(0, np.int64)
    ignore_boxes = np.asarray(ignore_boxes, np.float64).reshape(-1, 4)
    ignore_labels = np.asarray(ignore_labels, np.int64).reshape(-1)

    matches = {}
    for label in np.union1d(det_labels, gt_labels).tolist():
        det = det_labels == label
        boxes = np.concatenate([gt_boxes[gt_labels == label],
                                ignore_boxes[ignore_labels == label]])
        is_ignore = np.arange(len(boxes)) >= int((gt_labels == label).sum())
        status = match_detections(det_boxes[det], det_scores[det], boxes, is_ignore, iou_thr)
        kept = status != IGNORED
        matches[label] = ClassMatches(det_scores[det][kept], status[kept] == TRUE_POSITIVE,
                                      int((~is_ignore).sum()))
    return matches


def best_f1_threshold(scores: np.ndarray, true_positive: np.ndarray,
                      num_gt: int) -> Optional[F1Threshold]:
    """The score cut of one class with the highest F1 (see the module docstring).

    Args:
        scores: (D,) scores of the class's detections over all images.
        true_positive: (D,) bool, whether each detection matched a ground-truth box.
        num_gt: ground-truth boxes of the class over all images.

    Returns:
        The best cut, or None when ``num_gt`` is 0 or no detection is a true positive.
    """
    scores = np.asarray(scores, np.float64).reshape(-1)
    true_positive = np.asarray(true_positive, bool).reshape(-1)
    if num_gt == 0 or not true_positive.any():
        return None
    order = np.argsort(-scores, kind='stable')
    scores, true_positive = scores[order], true_positive[order]
    tp = np.cumsum(true_positive)
    kept = np.arange(1, len(scores) + 1)
    # A cut after position i is possible only where the next score is lower.
    valid = np.append(scores[:-1] > scores[1:], True)
    f1 = np.where(valid, 2 * tp / (kept + num_gt), -1.0)
    i = int(np.argmax(f1))  # first maximum: the highest score on ties
    lower = scores[i + 1] if i + 1 < len(scores) else 0.0
    return F1Threshold(score_thr=float((scores[i] + lower) / 2), f1=float(f1[i]),
                       precision=float(tp[i] / kept[i]), recall=float(tp[i] / num_gt),
                       num_kept=int(kept[i]), num_gt=int(num_gt))
