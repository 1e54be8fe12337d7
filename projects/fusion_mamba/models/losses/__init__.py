from .yolov8_iou_loss import YOLOv8CIoULoss, bbox_ciou

__all__ = ['YOLOv8CIoULoss', 'bbox_ciou']
