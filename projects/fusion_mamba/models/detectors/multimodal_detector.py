"""Single-stage detector over paired visible + infrared inputs."""
from typing import Dict, Tuple

import torch
from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import MODELS


@MODELS.register_module()
class MultiModalDetector(SingleStageDetector):
    """A dual-stream backbone (e.g. :class:`DualStreamBackbone`), a neck and a dense head.

    ``batch_inputs`` is ``{'visible': (B, 3, H, W), 'infrared': (B, C_ir, H, W)}`` as
    produced by :class:`MultiModalDetDataPreprocessor`; the backbone fuses the two streams
    into one pyramid and the rest is mmdet's single-stage detector.
    """

    def extract_feat(self, batch_inputs: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor]:
        x = self.backbone(batch_inputs['visible'], batch_inputs['infrared'])
        if self.with_neck:
            x = self.neck(x)
        return x
