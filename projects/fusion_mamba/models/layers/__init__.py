from .norms import STATE_SPACE_NORM, AutocastLayerNorm
from .sasf import SASF
from .ss2d import SS2D
from .state_space_branch import ChannelsLastMLP, GatedStateSpaceBranch
from .vss_block import VSSBlock
from .yolov8_layers import SPPF, YOLOV8_SCALES, C2f, YOLOv8Bottleneck, make_divisible, make_round

__all__ = [
    'AutocastLayerNorm', 'STATE_SPACE_NORM', 'SS2D', 'SASF', 'GatedStateSpaceBranch',
    'ChannelsLastMLP', 'VSSBlock', 'C2f', 'SPPF', 'YOLOV8_SCALES', 'YOLOv8Bottleneck',
    'make_divisible', 'make_round'
]
