"""Multi-class NMS that exports as ONNX ``NonMaxSuppression``.

Eager PyTorch runs torchvision's NMS per image and class; the ONNX exporter (TorchScript
based) emits one ``NonMaxSuppression`` node, gathers the kept boxes from its indices and
keeps the best ``max_per_img`` of each image with ``TopK``.
"""
from typing import Tuple

import torch
from torch import Tensor


class _NonMaxSuppression(torch.autograd.Function):
    """Selected ``(K, 3)`` int64 indices (image, class, box), as ONNX ``NonMaxSuppression``:
    per image and class, boxes with a score above ``score_threshold`` by falling score,
    dropping those whose IoU with a kept one exceeds ``iou_threshold``, at most
    ``max_per_class`` kept."""

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, max_per_class: int, iou_threshold: float,
                score_threshold: float) -> Tensor:
        from torchvision.ops import nms
        selected = []
        for image in range(scores.shape[0]):
            for label in range(scores.shape[1]):
                class_scores = scores[image, label]
                candidates = (class_scores > score_threshold).nonzero().squeeze(1)
                keep = nms(boxes[image, candidates], class_scores[candidates], iou_threshold)
                keep = candidates[keep[:max_per_class]]
                selected.append(torch.stack([torch.full_like(keep, image),
                                             torch.full_like(keep, label), keep], dim=1))
        return torch.cat(selected)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class, iou_threshold, score_threshold):
        def const(value, dtype):
            return g.op('Constant', value_t=torch.tensor([value], dtype=dtype))

        return g.op('NonMaxSuppression', boxes, scores, const(max_per_class, torch.long),
                    const(iou_threshold, torch.float), const(score_threshold, torch.float))


def onnx_nms(boxes: Tensor, scores: Tensor, iou_threshold: float = 0.7,
             score_threshold: float = 0.001, max_per_img: int = 300
             ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """NMS per image and class of ``boxes (B, N, 4)`` xyxy and ``scores (B, N, C)``, then the
    ``max_per_img`` best of each image (mmdet's multi-class NMS with ``max_per_img``).

    Returns ``num_dets (B,)`` and, padded to M = ``max_per_img`` per image and best first,
    ``boxes (B, M, 4)``, ``scores (B, M)`` and ``labels (B, M)``; the padding has boxes and
    scores 0 and label -1.
    """
    batch = scores.shape[0]
    selected = _NonMaxSuppression.apply(boxes, scores.transpose(1, 2).contiguous(),
                                        max_per_img, iou_threshold, score_threshold)
    image, label, box = selected[:, 0], selected[:, 1], selected[:, 2]
    kept_scores = scores[image, box, label]  # (K,), all > score_threshold >= 0
    # (B, K + M) scores, -1 outside each row's image and in M padding columns, so that the
    # top M of a row are that image's best detections followed by padding
    own = image.unsqueeze(0) == torch.arange(batch, device=image.device).unsqueeze(1)
    per_image = torch.where(own, kept_scores.unsqueeze(0), kept_scores.new_tensor(-1.0))
    per_image = torch.cat([per_image, per_image.new_full((batch, max_per_img), -1.0)], dim=1)
    top_scores, order = per_image.topk(max_per_img, dim=1)
    valid = top_scores >= 0
    kept_boxes = torch.cat([boxes[image, box], boxes.new_zeros(max_per_img, 4)])[order]
    kept_labels = torch.cat([label, label.new_full((max_per_img, ), -1)])[order]
    return (valid.sum(1), kept_boxes * valid.unsqueeze(-1), top_scores.clamp(min=0),
            torch.where(valid, kept_labels, kept_labels.new_tensor(-1)))
