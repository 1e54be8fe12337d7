from .amp_monitor_hook import LossScaleMonitorHook
from .paired_visualization_hook import PairedDetVisualizationHook
from .pipeline_switch_hook import MixDatasetPipelineSwitchHook
from .rank_sync_hook import RankSyncCheckHook, parameter_digest
from .score_threshold_hook import (SCORE_THRESHOLDS_KEY, ScoreThresholdHook,
                                   checkpoint_score_thresholds)
from .yolov8_warmup_hook import YOLOv8WarmupHook

__all__ = [
    'LossScaleMonitorHook', 'PairedDetVisualizationHook', 'RankSyncCheckHook',
    'parameter_digest', 'MixDatasetPipelineSwitchHook', 'YOLOv8WarmupHook',
    'SCORE_THRESHOLDS_KEY', 'ScoreThresholdHook', 'checkpoint_score_thresholds'
]
