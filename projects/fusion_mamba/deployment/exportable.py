"""A detector as one traceable function of two image tensors, for ONNX export.

:class:`ExportableDetector` wraps a :class:`MultiModalDetector` so that the exported graph
holds everything from pixels to decoded boxes: the data preprocessor's channel flip and
normalisation (both modalities), the dual-stream backbone with its fusion blocks, the neck,
the head and its box decoding, and optionally NMS as ONNX ``NonMaxSuppression``. The
selective scans run on the ``'parallel'`` backend there (a log-depth scan of standard
operators, see :mod:`fusion_mamba.ops.selective_scan.parallel`), never a loop over tokens.
"""
import contextlib
from typing import Dict, Iterator, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from fusion_mamba.models.layers.selective_scan_module import SelectiveScanModule

from .nms import onnx_nms

EXPORT_SCAN_BACKEND = 'parallel'


@contextlib.contextmanager
def export_scan(model: nn.Module) -> Iterator[int]:
    """Within the block every selective-scan module of ``model`` runs the loop-free
    ``'parallel'`` backend (yields how many modules); their backends are restored after."""
    previous = {m: m.backend for m in model.modules() if isinstance(m, SelectiveScanModule)}
    for module in previous:
        module.backend = EXPORT_SCAN_BACKEND
    try:
        yield len(previous)
    finally:
        for module, backend in previous.items():
            module.backend = backend


class ExportableDetector(nn.Module):
    """``forward(visible, infrared)`` -> decoded detections of a multimodal detector.

    Inputs are pixel values as the test pipeline hands them to the data preprocessor (after
    letterboxing; mmcv's BGR order for the visible image): ``visible (B, 3, H, W)`` and
    ``infrared (B, C_ir, H, W)``, float32 in 0..255, H and W multiples of the largest
    stride (32).

    Outputs without NMS: ``scores (B, N, C)`` (sigmoid) and ``boxes (B, N, 4)`` (xyxy,
    input pixels, clipped to the input) for the N priors of all levels. With NMS
    (``nms_cfg``): ``num_dets (B,)``, ``boxes (B, M, 4)``, ``scores (B, M)`` and ``labels
    (B, M)``, the best M = ``max_per_img`` detections of each image after per-class NMS,
    padded (see :func:`onnx_nms`).

    Args:
        detector: A :class:`MultiModalDetector` in eval mode, with a
            :class:`MultiModalDetDataPreprocessor` and a head with ``decode`` (YOLOv8Head).
        nms_cfg (dict, optional): ``iou_threshold``, ``score_threshold`` and
            ``max_per_img``; None exports raw scores and boxes.
    """

    def __init__(self, detector: nn.Module, nms_cfg: Dict = None):
        super().__init__()
        self.detector = detector
        self.nms_cfg = nms_cfg
        pre = detector.data_preprocessor
        if not hasattr(pre, 'ir_mean'):
            raise TypeError(f'ExportableDetector needs a MultiModalDetDataPreprocessor, the '
                            f'detector has {type(pre).__name__}')
        if not hasattr(detector.bbox_head, 'decode'):
            raise TypeError(f'ExportableDetector needs a head with decode() (YOLOv8Head), the '
                            f'detector has {type(detector.bbox_head).__name__}')
        self.flip_visible = bool(getattr(pre, '_channel_conversion', False))
        normalize = getattr(pre, '_enable_normalize', False)
        self.register_buffer('mean', pre.mean.float().view(1, -1, 1, 1) if normalize
                             else torch.zeros(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', pre.std.float().view(1, -1, 1, 1) if normalize
                             else torch.ones(1, 3, 1, 1), persistent=False)
        self.register_buffer('ir_mean', pre.ir_mean.float().unsqueeze(0), persistent=False)
        self.register_buffer('ir_std', pre.ir_std.float().unsqueeze(0), persistent=False)

    def preprocess(self, visible: Tensor, infrared: Tensor) -> Tuple[Tensor, Tensor]:
        """The data preprocessor's per-image work, batched: channel flip, normalisation."""
        if self.flip_visible:
            visible = visible.flip(1)
        return (visible - self.mean) / self.std, (infrared - self.ir_mean) / self.ir_std

    def forward(self, visible: Tensor, infrared: Tensor) -> Tuple[Tensor, ...]:
        visible, infrared = self.preprocess(visible.float(), infrared.float())
        feats = self.detector.extract_feat(dict(visible=visible, infrared=infrared))
        head = self.detector.bbox_head
        scores, boxes = head.decode(*head(feats))
        boxes = head.clip_boxes(boxes, visible.shape[-2:])  # as the head's predict does
        if self.nms_cfg is None:
            return scores, boxes
        return onnx_nms(boxes, scores, **self.nms_cfg)
