"""KAIST log-average miss rate (MR^-2) as an MMDetection metric."""
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.fileio import load
from mmengine.logging import MMLogger

from ..functional import (ImageMatch, PedestrianSetting, match_image, parse_coco_ground_truth,
                          pooled_miss_rate)
from ..functional.conditions import CONDITIONS


def _to_numpy(value: Any) -> np.ndarray:
    """A tensor (any device) or array-like as a numpy array."""
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


@METRICS.register_module()
class KAISTMissRateMetric(BaseMetric):
    """Log-average miss rate over FPPI in [1e-2, 1e0] (MR^-2) of the KAIST benchmark.

    Detections are matched to ground truth per image with the Caltech ``bbGt evalRes``
    criterion (IoU >= ``iou_thr`` for pedestrians; intersection over detection area for
    ignore regions, whose detections are neither TP nor FP), then pooled over the images of
    each subset: the miss rate is sampled at 9 FPPIs evenly spaced in log space and averaged
    geometrically; FPPI divides false positives by the number of images of the subset. Images
    without detections or ground truth still count. The default setting is KAIST
    "reasonable"; see :class:`PedestrianSetting` for the rules and their sources.

    Input contract:

    - ``process`` receives the data samples of mmdet's test loop as dicts with ``img_id``
      (the image ``id`` of ``ann_file``) and ``pred_instances`` holding ``bboxes`` (N, 4) xyxy
      in original image px, ``scores`` (N,) and ``labels`` (N,) (tensors or arrays).
    - ``ann_file`` is a COCO-style json read as described in
      :func:`parse_coco_ground_truth`: annotation ``bbox`` (xywh), ``category_id``,
      ``ignore`` / ``iscrowd`` (1 for ignore regions), ``occlusion`` (0/1/2), ``height`` (px);
      image ``condition`` ('day' / 'night'), or else a KAIST frame name in ``im_name`` /
      ``file_name`` (``setXX/VYYY/...``: sets 00-02 and 06-08 day, the others night), as in
      KAIST's own improved test annotations, which have no condition field. Absent fields
      read as occlusion 0, height = bbox height, not ignored, condition unknown.

    Output, in percent (as KAIST papers report; lower is better): ``kaist/MR_all`` and, for
    each condition with at least one evaluated image, ``kaist/MR_day`` / ``kaist/MR_night``.
    When no image has a known condition, the day / night rows are left out and a warning
    says why. A subset without any regular ground truth box gives NaN.

    Args:
        ann_file: COCO-style annotation file of the evaluated split.
        height_range: ``(min, max)`` ground truth height in px kept, both inclusive.
        occlusions: occlusion levels kept (0 none, 1 partial, 2 heavy).
        border_margin: px; ground truth closer than this to the image border is ignored. None
            disables the check.
        ignore_names: category names whose boxes are ignore regions.
        det_height_expand: None keeps every detection (KAIST); 1.25 drops detections of
            height outside ``[min / 1.25, max * 1.25)`` before matching (Caltech ``dbEval``).
        iou_thr: overlap needed for a match.
        det_label: evaluate only detections of this label; None takes every detection.
        backend_args: file backend arguments for reading ``ann_file``.
        collect_device: 'cpu' or 'gpu', for collecting results across ranks.
        prefix: metric name prefix; defaults to 'kaist'.
    """

    default_prefix: Optional[str] = 'kaist'

    def __init__(self,
                 ann_file: str,
                 height_range: Tuple[float, float] = (55.0, math.inf),
                 occlusions: Sequence[int] = (0, 1),
                 border_margin: Optional[float] = 5.0,
                 ignore_names: Sequence[str] = ('people', 'person?', 'cyclist', '__ignore__'),
                 det_height_expand: Optional[float] = None,
                 iou_thr: float = 0.5,
                 det_label: Optional[int] = None,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.setting = PedestrianSetting(
            height_range=tuple(height_range),
            occlusions=tuple(occlusions),
            border_margin=border_margin,
            ignore_names=tuple(ignore_names),
            det_height_expand=det_height_expand)
        self.iou_thr = iou_thr
        self.det_label = det_label
        self.ground_truth = parse_coco_ground_truth(
            load(ann_file, backend_args=backend_args), self.setting)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep the image id, (N, 4) xyxy boxes and (N,) scores of each sample."""
        for sample in data_samples:
            pred = sample['pred_instances']
            bboxes = _to_numpy(pred['bboxes']).reshape(-1, 4)
            scores = _to_numpy(pred['scores']).reshape(-1)
            if self.det_label is not None:
                keep = _to_numpy(pred['labels']).reshape(-1) == self.det_label
                bboxes, scores = bboxes[keep], scores[keep]
            self.results.append(dict(img_id=sample['img_id'], bboxes=bboxes, scores=scores))

    def _match_image(self, result: dict) -> ImageMatch:
        """Match the detections of one processed sample to its ground truth."""
        if result['img_id'] not in self.ground_truth:
            raise KeyError(f"img_id {result['img_id']!r} is not an image id of ann_file")
        return match_image(self.ground_truth[result['img_id']], result['bboxes'],
                           result['scores'], self.setting, self.iou_thr)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """MR^-2 in percent of the 'all' subset and of each condition present."""
        images = [self._match_image(result) for result in results]
        subsets = {'all': images}
        for condition in CONDITIONS:
            members = [image for image in images if image.condition == condition]
            if members:
                subsets[condition] = members
        logger = MMLogger.get_current_instance()
        unknown = sum(image.condition not in CONDITIONS for image in images)
        if unknown == len(images):
            logger.warning(
                'KAIST MR^-2: no day / night rows: no evaluated image has a "condition" '
                'field or a KAIST frame name (setXX/VYYY/...) in "im_name" / "file_name"')
        elif unknown:
            logger.warning(f'KAIST MR^-2: {unknown} of {len(images)} images have no known '
                           'condition; they count in MR_all only')
        metrics = {f'MR_{name}': 100.0 * pooled_miss_rate(members).miss_rate
                   for name, members in subsets.items()}
        logger.info('KAIST MR^-2 (%): ' + ', '.join(f'{k} {v:.2f}' for k, v in metrics.items()))
        return metrics
