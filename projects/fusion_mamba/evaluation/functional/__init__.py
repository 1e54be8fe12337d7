"""Pedestrian-detection evaluation in plain numpy (no mmdet needed)."""
from .box_matching import (FALSE_POSITIVE, IGNORED, TRUE_POSITIVE, caltech_overlaps,
                           match_detections)
from .ground_truth import ImageGroundTruth, parse_coco_ground_truth
from .miss_rate import REFERENCE_FPPI, log_average_miss_rate, miss_rate_curve
from .pedestrian_setting import PedestrianSetting

__all__ = [
    'FALSE_POSITIVE', 'IGNORED', 'TRUE_POSITIVE', 'caltech_overlaps', 'match_detections',
    'ImageGroundTruth', 'parse_coco_ground_truth', 'REFERENCE_FPPI', 'log_average_miss_rate',
    'miss_rate_curve', 'PedestrianSetting'
]
