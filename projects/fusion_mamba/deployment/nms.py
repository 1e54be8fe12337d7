"""Multi-class NMS that exports as ONNX ``NonMaxSuppression``.

Eager PyTorch runs torchvision's NMS per image and class; the ONNX exporter (TorchScript
based) emits one ``NonMaxSuppression`` node and gathers the kept boxes from its indices.
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
        return torch.cat(selected) if selected else boxes.new_zeros((0, 3), dtype=torch.long)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class, iou_threshold, score_threshold):
        def const(value, dtype):
            return g.op('Constant', value_t=torch.tensor([value], dtype=dtype))

        return g.op('NonMaxSuppression', boxes, scores, const(max_per_class, torch.long),
                    const(iou_threshold, torch.float), const(score_threshold, torch.float))


def onnx_nms(boxes: Tensor, scores: Tensor, iou_threshold: float = 0.7,
             score_threshold: float = 0.001, max_per_class: int = 300
             ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """NMS per image and class of ``boxes (B, N, 4)`` xyxy and ``scores (B, N, C)``.

    Returns ``batch_index (K,)``, ``boxes (K, 4)``, ``scores (K,)``, ``labels (K,)`` ordered
    by image, class, then falling score.
    """
    selected = _NonMaxSuppression.apply(boxes, scores.transpose(1, 2).contiguous(),
                                        max_per_class, iou_threshold, score_threshold)
    image, label, box = selected[:, 0], selected[:, 1], selected[:, 2]
    return image, boxes[image, box], scores[image, box, label], label
