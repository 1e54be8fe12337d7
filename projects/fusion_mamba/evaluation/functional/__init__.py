"""Detection evaluation in plain numpy (no mmdet needed): KAIST's pedestrian protocol and
per-class best-F1 score thresholds."""
from .box_matching import (FALSE_POSITIVE, IGNORED, TRUE_POSITIVE, caltech_overlaps,
                           match_detections)
from .conditions import KAIST_DAY_SETS, KAIST_NIGHT_SETS, image_condition, kaist_condition
from .f1_threshold import (ClassMatches, F1Threshold, best_f1_threshold,
                           match_image_classes)
from .ground_truth import ImageGroundTruth, parse_coco_ground_truth
from .kaist_subsets import (KAIST_SUBSETS, EvalSubset, ImageMatch, SubsetResult,
                            evaluate_subsets, match_image, pooled_miss_rate)
from .miss_rate import REFERENCE_FPPI, log_average_miss_rate, miss_rate_curve
from .pedestrian_setting import PedestrianSetting

__all__ = [
    'FALSE_POSITIVE', 'IGNORED', 'TRUE_POSITIVE', 'caltech_overlaps', 'match_detections',
    'KAIST_DAY_SETS', 'KAIST_NIGHT_SETS', 'image_condition', 'kaist_condition',
    'ClassMatches', 'F1Threshold', 'best_f1_threshold', 'match_image_classes',
    'ImageGroundTruth', 'parse_coco_ground_truth', 'KAIST_SUBSETS', 'EvalSubset',
    'ImageMatch', 'SubsetResult', 'evaluate_subsets', 'match_image', 'pooled_miss_rate',
    'REFERENCE_FPPI', 'log_average_miss_rate', 'miss_rate_curve', 'PedestrianSetting'
]
