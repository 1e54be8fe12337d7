from .yolov8_head import YOLOv8Head, YOLOv8HeadModule

__all__ = ['YOLOv8Head', 'YOLOv8HeadModule']
