"""Per-image matching of detections to ground truth with ignore regions.

This is the modified PASCAL criterion of the Caltech pedestrian toolbox (``bbGt evalRes``),
which the KAIST multispectral benchmark scripts use unchanged:

- detections are matched in order of decreasing score (stable for equal scores);
- a detection matches the unmatched regular ground truth box of highest overlap, where the
  overlap with a regular box is IoU and a match needs overlap >= ``iou_thr``;
- a detection that matches no regular box but overlaps an ignore region by at least
  ``iou_thr`` is ignored. The overlap with an ignore region is the intersection over the
  *detection* area (the detection may match any sub-region of the ignore box), and an ignore
  region may absorb any number of detections;
- every other detection is a false positive; regular boxes left unmatched are misses.

Boxes are ``(x1, y1, x2, y2)`` in pixels; areas are ``(x2 - x1) * (y2 - y1)``.
"""
import numpy as np

#: Match status of a detection: true positive, false positive, ignored.
TRUE_POSITIVE, FALSE_POSITIVE, IGNORED = 1, 0, -1


def caltech_overlaps(det_boxes: np.ndarray, gt_boxes: np.ndarray,
                     gt_ignore: np.ndarray) -> np.ndarray:
    """Overlap of every detection with every ground truth box.

    Args:
        det_boxes: (D, 4) detections, xyxy pixels.
        gt_boxes: (G, 4) ground truth boxes, xyxy pixels.
        gt_ignore: (G,) bool, True for ignore regions.

    Returns:
        (D, G) float64: IoU for regular boxes, intersection over detection area for ignore
        regions; 0 where the denominator is 0.
    """
    det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    gt_ignore = np.asarray(gt_ignore, dtype=bool).reshape(-1)
    lt = np.maximum(det_boxes[:, None, :2], gt_boxes[None, :, :2])
    rb = np.minimum(det_boxes[:, None, 2:], gt_boxes[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    det_area = ((det_boxes[:, 2] - det_boxes[:, 0]) * (det_boxes[:, 3] - det_boxes[:, 1]))[:, None]
    gt_area = ((gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1]))[None, :]
    denom = np.where(gt_ignore[None, :], det_area, det_area + gt_area - inter)
    return np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)


def match_detections(det_boxes: np.ndarray, det_scores: np.ndarray, gt_boxes: np.ndarray,
                     gt_ignore: np.ndarray, iou_thr: float = 0.5) -> np.ndarray:
    """Label the detections of one image as true positive, false positive or ignored.

    Args:
        det_boxes: (D, 4) detections, xyxy pixels.
        det_scores: (D,) detection scores; higher is matched first.
        gt_boxes: (G, 4) ground truth boxes, xyxy pixels.
        gt_ignore: (G,) bool, True for ignore regions.
        iou_thr: the overlap a match needs.

    Returns:
        (D,) int8 status in the input order: ``TRUE_POSITIVE`` (1), ``FALSE_POSITIVE`` (0)
        or ``IGNORED`` (-1).
    """
    det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    gt_ignore = np.asarray(gt_ignore, dtype=bool).reshape(-1)
    overlaps = caltech_overlaps(det_boxes, gt_boxes, gt_ignore)
    status = np.full(len(det_scores), FALSE_POSITIVE, dtype=np.int8)
    regular = overlaps[:, ~gt_ignore]
    ignore = overlaps[:, gt_ignore]
    taken = np.zeros(regular.shape[1], dtype=bool)
    for d in np.argsort(-det_scores, kind='stable'):
        free = np.where(taken, -1.0, regular[d])
        if free.size and free.max() >= iou_thr:
            # Equal overlaps go to the last box, as the reference loop does.
            g = free.size - 1 - int(np.argmax(free[::-1]))
            taken[g] = True
            status[d] = TRUE_POSITIVE
        elif ignore.shape[1] and ignore[d].max() >= iou_thr:
            status[d] = IGNORED
    return status
