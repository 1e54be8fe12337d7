"""Complete-IoU as defined by YOLOv8 (used by its box loss and its task-aligned assigner).

mmdet's ``CIoULoss`` differs: it applies the aspect-ratio term only where IoU > 0.5 and clamps
the CIoU, so YOLOv8's weights and its loss balance (box weight 7.5) assume this definition.
"""
import math
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor
from mmdet.models.losses.utils import weighted_loss
from mmdet.registry import MODELS


def bbox_ciou(pred: Tensor, target: Tensor, eps: float = 1e-7) -> Tensor:
    """Element-wise CIoU of two sets of boxes, YOLOv8's definition.

    ``CIoU = IoU - rho^2 / c^2 - alpha * v`` with ``v = 4 / pi^2 (atan(w_t / h_t) -
    atan(w_p / h_p))^2`` and ``alpha = v / (v - IoU + 1 + eps)`` treated as a constant
    (no gradient); ``eps`` is also added to the heights and the union.

    Args:
        pred (Tensor): Boxes ``(..., 4)`` as ``x1, y1, x2, y2``.
        target (Tensor): Boxes ``(..., 4)`` broadcastable with ``pred``.
        eps (float): Numerical stabiliser.

    Returns:
        Tensor: CIoU of shape ``(...)`` (at most 1).
    """
    px1, py1, px2, py2 = pred.unbind(-1)
    tx1, ty1, tx2, ty2 = target.unbind(-1)
    pw, ph = px2 - px1, py2 - py1 + eps
    tw, th = tx2 - tx1, ty2 - ty1 + eps
    inter = ((torch.min(px2, tx2) - torch.max(px1, tx1)).clamp(min=0) *
             (torch.min(py2, ty2) - torch.max(py1, ty1)).clamp(min=0))
    union = pw * ph + tw * th - inter + eps
    iou = inter / union
    # squared diagonal of the smallest enclosing box and squared centre distance
    cw = torch.max(px2, tx2) - torch.min(px1, tx1)
    ch = torch.max(py2, ty2) - torch.min(py1, ty1)
    c2 = cw.pow(2) + ch.pow(2) + eps
    rho2 = ((tx1 + tx2 - px1 - px2).pow(2) + (ty1 + ty2 - py1 - py2).pow(2)) / 4
    v = (4 / math.pi**2) * (torch.atan(tw / th) - torch.atan(pw / ph)).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


@weighted_loss
def yolov8_ciou_loss(pred: Tensor, target: Tensor, eps: float = 1e-7) -> Tensor:
    """``1 - CIoU`` per box pair, shape ``(n,)`` for inputs ``(n, 4)``."""
    return 1.0 - bbox_ciou(pred, target, eps)


@MODELS.register_module()
class YOLOv8CIoULoss(nn.Module):
    """``1 - CIoU`` box loss with YOLOv8's CIoU (see :func:`bbox_ciou`).

    With ``reduction='mean'`` and ``avg_factor`` the result is ``sum(weight * (1 - CIoU)) /
    avg_factor``; YOLOv8 passes the summed target scores as both.

    Args:
        eps (float): Numerical stabiliser of the CIoU.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight (float): Multiplier of the loss (YOLOv8's box gain, 7.5).
    """

    def __init__(self, eps: float = 1e-7, reduction: str = 'mean', loss_weight: float = 1.0):
        super().__init__()
        self.eps = eps
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Loss of boxes ``pred`` and ``target`` ``(n, 4)`` (xyxy), ``weight`` ``(n,)``."""
        reduction = reduction_override or self.reduction
        return self.loss_weight * yolov8_ciou_loss(
            pred, target, weight, eps=self.eps, reduction=reduction, avg_factor=avg_factor)
