from .dual_stream import DualStreamBackbone
from .yolov8_csp_darknet import YOLOv8CSPDarknet

__all__ = ['DualStreamBackbone', 'YOLOv8CSPDarknet']
