"""The evaluation subsets of the KAIST benchmark and MR^-2 pooled over the images of a subset.

KAIST papers report MR^-2 (in %) on the nine subsets of the KAIST devkit's
``kaist_eval_full`` (improved test annotations):

================  ======  ===========  ===============
subset            images  height (px)  occlusion
================  ======  ===========  ===============
reasonable-all    all     [55, inf]    none, partial
reasonable-day    day     [55, inf]    none, partial
reasonable-night  night   [55, inf]    none, partial
scale-near        all     [115, inf]   none
scale-medium      all     [45, 115]    none
scale-far         all     [1, 45]      none
occ-none          all     [1, inf]     none
occ-partial       all     [1, inf]     partial
occ-heavy         all     [1, inf]     heavy
================  ======  ===========  ===============

Every subset also makes ignore regions of the boxes leaving the image interior shrunk by 5 px
and of the labels 'people', 'person?', 'cyclist' and '__ignore__' (the defaults of
:class:`PedestrianSetting`). Height ranges include both ends (bbGt ``hRng``), so a 45 px
pedestrian counts in both medium and far. Boxes outside a subset's range are ignore regions,
not removed: detections on them are neither true nor false positives.
"""
import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .box_matching import IGNORED, TRUE_POSITIVE, match_detections
from .ground_truth import ImageGroundTruth, parse_coco_ground_truth
from .miss_rate import log_average_miss_rate
from .pedestrian_setting import PedestrianSetting


@dataclass(frozen=True)
class EvalSubset:
    """One row of the KAIST table.

    Attributes:
        name: e.g. 'reasonable-day'.
        setting: which ground truth boxes are regular.
        condition: evaluate only the images of this condition ('day' / 'night'); None for
            every image.
    """

    name: str
    setting: PedestrianSetting
    condition: Optional[str] = None


_REASONABLE = PedestrianSetting()
_ANY_HEIGHT = (1.0, math.inf)

#: The nine subsets of ``kaist_eval_full``, in its order.
KAIST_SUBSETS = (
    EvalSubset('reasonable-all', _REASONABLE),
    EvalSubset('reasonable-day', _REASONABLE, 'day'),
    EvalSubset('reasonable-night', _REASONABLE, 'night'),
    EvalSubset('scale-near', PedestrianSetting(height_range=(115.0, math.inf), occlusions=(0, ))),
    EvalSubset('scale-medium', PedestrianSetting(height_range=(45.0, 115.0), occlusions=(0, ))),
    EvalSubset('scale-far', PedestrianSetting(height_range=(1.0, 45.0), occlusions=(0, ))),
    EvalSubset('occ-none', PedestrianSetting(height_range=_ANY_HEIGHT, occlusions=(0, ))),
    EvalSubset('occ-partial', PedestrianSetting(height_range=_ANY_HEIGHT, occlusions=(1, ))),
    EvalSubset('occ-heavy', PedestrianSetting(height_range=_ANY_HEIGHT, occlusions=(2, ))),
)


class ImageMatch(NamedTuple):
    """Matched detections of one image.

    Attributes:
        scores: (D,) scores of the detections that count (not on an ignore region).
        is_tp: (D,) bool, True for the true positives among them.
        num_gt: number of regular ground truth boxes.
        condition: the image condition ('day', 'night' or None).
    """

    scores: np.ndarray
    is_tp: np.ndarray
    num_gt: int
    condition: Optional[str]


class SubsetResult(NamedTuple):
    """MR^-2 of a set of images.

    Attributes:
        miss_rate: log-average miss rate as a fraction (NaN without regular ground truth).
        recall: true positives over regular boxes with every detection (the end of the
            curve; NaN without regular ground truth).
        num_images: images evaluated (the FPPI denominator).
        num_gt: regular ground truth boxes.
    """

    miss_rate: float
    recall: float
    num_images: int
    num_gt: int


def match_image(gt: ImageGroundTruth, det_boxes: np.ndarray, det_scores: np.ndarray,
                setting: PedestrianSetting, iou_thr: float = 0.5) -> ImageMatch:
    """Match the detections of one image to its ground truth.

    Args:
        gt: the image's ground truth under ``setting``.
        det_boxes: (D, 4) detections, xyxy px.
        det_scores: (D,) their scores.
        setting: its detection filter is applied first (off in the KAIST settings).
        iou_thr: the overlap a match needs.
    """
    det_boxes = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4)
    det_scores = np.asarray(det_scores, dtype=np.float64).reshape(-1)
    keep = setting.keep_detections(det_boxes)
    det_boxes, det_scores = det_boxes[keep], det_scores[keep]
    status = match_detections(det_boxes, det_scores, gt.boxes, gt.ignore, iou_thr)
    counted = status != IGNORED
    return ImageMatch(scores=det_scores[counted], is_tp=status[counted] == TRUE_POSITIVE,
                      num_gt=int(np.count_nonzero(~gt.ignore)), condition=gt.condition)


def pooled_miss_rate(matches: Sequence[ImageMatch]) -> SubsetResult:
    """MR^-2 of the detections of ``matches`` pooled, FPPI over ``len(matches)`` images."""
    if not matches:
        raise ValueError('no image to evaluate')
    scores = np.concatenate([m.scores for m in matches])
    is_tp = np.concatenate([m.is_tp for m in matches])
    num_gt = sum(m.num_gt for m in matches)
    miss_rate = log_average_miss_rate(scores, is_tp, num_gt=num_gt, num_images=len(matches))
    recall = np.count_nonzero(is_tp) / num_gt if num_gt else float('nan')
    return SubsetResult(miss_rate=miss_rate, recall=recall, num_images=len(matches),
                        num_gt=num_gt)


def evaluate_subsets(coco: dict, detections: Mapping[Any, Tuple[np.ndarray, np.ndarray]],
                     subsets: Sequence[EvalSubset] = KAIST_SUBSETS,
                     iou_thr: float = 0.5) -> Dict[str, SubsetResult]:
    """MR^-2 of every subset for the detections of a whole test set.

    Args:
        coco: the annotation file, read as in :func:`parse_coco_ground_truth` (image
            conditions as in :func:`image_condition`).
        detections: image id -> ((D, 4) xyxy px boxes, (D,) scores). Every image of ``coco``
            is evaluated; a missing id has no detection. Ids not in ``coco`` are an error.
        subsets: the subsets to evaluate, in the order of the result.
        iou_thr: the overlap a match needs.

    Returns:
        subset name -> :class:`SubsetResult`. A subset restricted to a condition no image has
        is left out.
    """
    image_ids = {image['id'] for image in coco['images']}
    unknown = [img_id for img_id in detections if img_id not in image_ids]
    if unknown:
        raise KeyError(f'{len(unknown)} image ids of the detections are not in the '
                       f'annotations, e.g. {unknown[:5]}')
    empty = (np.zeros((0, 4)), np.zeros(0))
    ground_truth: Dict[PedestrianSetting, Dict[Any, ImageGroundTruth]] = {}
    results = {}
    for subset in subsets:
        if subset.setting not in ground_truth:
            ground_truth[subset.setting] = parse_coco_ground_truth(coco, subset.setting)
        matches = [match_image(gt, *detections.get(img_id, empty), subset.setting, iou_thr)
                   for img_id, gt in ground_truth[subset.setting].items()
                   if subset.condition is None or gt.condition == subset.condition]
        if matches:
            results[subset.name] = pooled_miss_rate(matches)
    return results
