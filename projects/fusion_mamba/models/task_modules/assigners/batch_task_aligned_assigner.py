"""Task-aligned assigner (TOOD) computed for a whole batch at once, as in YOLOv8."""
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from mmdet.registry import TASK_UTILS

from ...losses.yolov8_iou_loss import bbox_ciou


@TASK_UTILS.register_module()
class BatchTaskAlignedAssigner(nn.Module):
    """Assign ground-truth boxes to the priors of a batch of images with the task-aligned
    metric ``t = s^alpha * u^beta`` (``s``: predicted score of the gt's class, ``u``: CIoU of
    the predicted and gt boxes, clamped at 0), vectorised over images, gts and priors.

    For each gt, the ``topk`` priors of highest ``t`` among those whose centre lies inside
    the gt are positives; a prior claimed by several gts goes to the gt it overlaps most.
    The soft target of a positive is one-hot in its gt's class, scaled by
    ``t / max_t(gt) * max_u(gt)`` (maxima over the gt's positives). Images are padded to the
    same number of gts; padded gts (``pad_bbox_flag == 0``) never match, so images without
    gts are all background.

    Args:
        num_classes (int): Number of classes (also the background label).
        topk (int): Positives per gt (YOLOv8: 10).
        alpha (float): Exponent of the classification score (YOLOv8: 0.5).
        beta (float): Exponent of the IoU (YOLOv8: 6.0).
        eps (float): Small value for the in-box test and the normalisation.
    """

    def __init__(self,
                 num_classes: int,
                 topk: int = 10,
                 alpha: float = 0.5,
                 beta: float = 6.0,
                 eps: float = 1e-9):
        super().__init__()
        self.num_classes = num_classes
        self.topk = topk
        self.alpha = alpha
        self.beta = beta
        self.eps = eps

    @torch.no_grad()
    def forward(self, pred_bboxes: Tensor, pred_scores: Tensor, priors: Tensor,
                gt_labels: Tensor, gt_bboxes: Tensor, pad_bbox_flag: Tensor) -> Dict[str, Tensor]:
        """Assign gts to priors.

        Args:
            pred_bboxes (Tensor): Decoded predicted boxes ``(B, N, 4)``, xyxy in pixels.
            pred_scores (Tensor): Predicted class probabilities ``(B, N, C)``.
            priors (Tensor): Prior centres ``(N, 2)`` (extra columns, e.g. strides, are
                ignored), in pixels.
            gt_labels (Tensor): Labels ``(B, M, 1)`` or ``(B, M)``.
            gt_bboxes (Tensor): Boxes ``(B, M, 4)``, xyxy in pixels.
            pad_bbox_flag (Tensor): 1 for a real gt, 0 for padding, ``(B, M, 1)`` or
                ``(B, M)``.

        Returns:
            dict: ``assigned_labels`` ``(B, N)`` (``num_classes`` for background),
            ``assigned_bboxes`` ``(B, N, 4)``, ``assigned_scores`` ``(B, N, C)``,
            ``fg_mask`` ``(B, N)`` bool and ``assigned_gt_inds`` ``(B, N)`` (index into the
            padded gts; meaningful where ``fg_mask``).
        """
        batch_size, num_priors, num_classes = pred_scores.shape
        num_gt = gt_bboxes.size(1)
        if num_gt == 0:
            return dict(
                assigned_labels=pred_scores.new_full((batch_size, num_priors),
                                                     self.num_classes, dtype=torch.long),
                assigned_bboxes=pred_bboxes.new_zeros((batch_size, num_priors, 4)),
                assigned_scores=pred_scores.new_zeros((batch_size, num_priors, num_classes)),
                fg_mask=pred_scores.new_zeros((batch_size, num_priors), dtype=torch.bool),
                assigned_gt_inds=pred_scores.new_zeros((batch_size, num_priors),
                                                       dtype=torch.long))
        gt_labels = gt_labels.reshape(batch_size, num_gt).long()
        valid_gt = pad_bbox_flag.reshape(batch_size, num_gt).bool()

        in_gts = self.centres_in_boxes(priors[:, :2], gt_bboxes) & valid_gt[..., None]
        metrics, overlaps = self.alignment_metrics(pred_bboxes, pred_scores, gt_labels,
                                                   gt_bboxes, in_gts)
        pos_mask = self.topk_mask(metrics, valid_gt) & in_gts
        pos_mask = self.resolve_conflicts(pos_mask, overlaps)
        fg_mask = pos_mask.any(dim=1)
        gt_inds = pos_mask.byte().argmax(dim=1)

        labels = gt_labels.gather(1, gt_inds)
        bboxes = gt_bboxes.gather(1, gt_inds[..., None].expand(-1, -1, 4))
        scores = F.one_hot(labels, num_classes).to(pred_scores.dtype)
        # normalise the metric per gt: its best positive gets the gt's best IoU
        metrics = metrics * pos_mask
        overlaps = overlaps * pos_mask
        norm = (metrics * overlaps.amax(-1, keepdim=True) /
                (metrics.amax(-1, keepdim=True) + self.eps)).amax(dim=1)
        scores = scores * (norm * fg_mask)[..., None]
        labels = torch.where(fg_mask, labels, torch.full_like(labels, self.num_classes))
        return dict(
            assigned_labels=labels,
            assigned_bboxes=bboxes,
            assigned_scores=scores,
            fg_mask=fg_mask,
            assigned_gt_inds=gt_inds)

    def centres_in_boxes(self, points: Tensor, boxes: Tensor) -> Tensor:
        """Whether each point lies strictly inside each box.

        Args:
            points (Tensor): ``(N, 2)``.
            boxes (Tensor): ``(B, M, 4)`` xyxy.

        Returns:
            Tensor: Bool ``(B, M, N)``.
        """
        points = points[None, None]
        deltas = torch.cat([points - boxes[..., None, :2], boxes[..., None, 2:] - points], -1)
        return deltas.amin(dim=-1) > self.eps

    def alignment_metrics(self, pred_bboxes: Tensor, pred_scores: Tensor, gt_labels: Tensor,
                          gt_bboxes: Tensor, in_gts: Tensor) -> Tuple[Tensor, Tensor]:
        """Task-aligned metric and CIoU of every (gt, prior) pair whose prior is inside the
        gt; both are 0 elsewhere.

        Args:
            pred_bboxes (Tensor): ``(B, N, 4)``.
            pred_scores (Tensor): ``(B, N, C)``.
            gt_labels (Tensor): ``(B, M)`` long.
            gt_bboxes (Tensor): ``(B, M, 4)``.
            in_gts (Tensor): Bool ``(B, M, N)``.

        Returns:
            tuple[Tensor, Tensor]: ``metrics`` and ``overlaps``, both ``(B, M, N)``.
        """
        batch_size, num_gt, num_priors = in_gts.shape
        # score of the gt's class at every prior: (B, N, M) -> (B, M, N)
        cls_scores = pred_scores.gather(
            2, gt_labels[:, None, :].expand(-1, num_priors, -1)).transpose(1, 2)
        overlaps = pred_bboxes.new_zeros((batch_size, num_gt, num_priors))
        shape = (batch_size, num_gt, num_priors, 4)
        overlaps[in_gts] = bbox_ciou(
            gt_bboxes[:, :, None, :].expand(shape)[in_gts],
            pred_bboxes[:, None, :, :].expand(shape)[in_gts]).clamp(min=0).to(overlaps.dtype)
        metrics = cls_scores.pow(self.alpha) * overlaps.pow(self.beta) * in_gts
        return metrics, overlaps

    def topk_mask(self, metrics: Tensor, valid_gt: Tensor) -> Tensor:
        """The ``topk`` priors of highest metric of each real gt.

        Args:
            metrics (Tensor): ``(B, M, N)``.
            valid_gt (Tensor): Bool ``(B, M)``.

        Returns:
            Tensor: Bool ``(B, M, N)``; all False for padded gts.
        """
        topk = min(self.topk, metrics.size(-1))
        topk_inds = metrics.topk(topk, dim=-1).indices
        counts = torch.zeros_like(metrics, dtype=torch.int32).scatter_add_(
            -1, topk_inds, torch.ones_like(topk_inds, dtype=torch.int32))
        return (counts > 0) & valid_gt[..., None]

    @staticmethod
    def resolve_conflicts(pos_mask: Tensor, overlaps: Tensor) -> Tensor:
        """Keep, for a prior matched to several gts, only the gt of highest overlap.

        Args:
            pos_mask (Tensor): Bool ``(B, M, N)``.
            overlaps (Tensor): ``(B, M, N)``.

        Returns:
            Tensor: Bool ``(B, M, N)`` with at most one True per prior.
        """
        multiple = pos_mask.sum(dim=1, keepdim=True) > 1
        best = F.one_hot(overlaps.argmax(dim=1), overlaps.size(1)).transpose(1, 2).bool()
        return torch.where(multiple, best, pos_mask)
