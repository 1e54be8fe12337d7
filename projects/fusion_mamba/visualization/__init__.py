"""Drawing of paired (visible + infrared) detections."""
from .paired_drawing import (DEFAULT_SCORE_THR, draw_paired_detections, per_label_thresholds,
                             select_detections)

__all__ = [
    'DEFAULT_SCORE_THR', 'draw_paired_detections', 'per_label_thresholds', 'select_detections'
]
