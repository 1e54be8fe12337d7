"""Single-stage detector over paired visible + infrared inputs."""
from typing import Dict, Tuple

import torch
from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList

from fusion_mamba.utils.cuda_graph import CUDAGraphRunner


@MODELS.register_module()
class MultiModalDetector(SingleStageDetector):
    """A dual-stream backbone (e.g. :class:`DualStreamBackbone`), a neck and a dense head.

    ``batch_inputs`` is ``{'visible': (B, 3, H, W), 'infrared': (B, C_ir, H, W)}`` as
    produced by :class:`MultiModalDetDataPreprocessor`; the backbone fuses the two streams
    into one pyramid and the rest is mmdet's single-stage detector.

    Inference can replay the network (backbone, fusion, neck and head forward: everything
    before box decoding and NMS) as CUDA graphs, one per input shape (:meth:`use_cuda_graphs`),
    or run it through ``torch.compile`` (:meth:`use_compile`; the network traces as one graph,
    the scans being custom operators).
    """

    _graph_runner = None
    _compiled_network = None

    def extract_feat(self, batch_inputs: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor]:
        x = self.backbone(batch_inputs['visible'], batch_inputs['infrared'])
        if self.with_neck:
            x = self.neck(x)
        return x

    def use_cuda_graphs(self, enabled: bool = True) -> None:
        """Replay the network of :meth:`predict` as CUDA graphs (captured on the first batch
        of each shape; the model must be on a CUDA device and stay unchanged afterwards)."""
        self._graph_runner = CUDAGraphRunner(self._network) if enabled else None
        if enabled:
            self._compiled_network = None

    def use_compile(self, enabled: bool = True, **compile_kwargs) -> None:
        """Run the network of :meth:`predict` through ``torch.compile(**compile_kwargs)``
        (e.g. ``mode='max-autotune'``; ``mode='reduce-overhead'`` adds CUDA graphs of its
        own); box decoding and NMS stay eager. Replaces :meth:`use_cuda_graphs`."""
        self._compiled_network = (torch.compile(self._network, **compile_kwargs)
                                  if enabled else None)
        if enabled:
            self._graph_runner = None

    def _network(self, batch_inputs: Dict[str, torch.Tensor]) -> tuple:
        """Head outputs (class and box logits per level) of a preprocessed batch."""
        return self.bbox_head(self.extract_feat(batch_inputs))

    def predict(self, batch_inputs: Dict[str, torch.Tensor], batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """mmdet's single-stage prediction, with the network replayed as a CUDA graph or
        compiled when :meth:`use_cuda_graphs` / :meth:`use_compile` asked for it (box decoding
        and NMS stay eager)."""
        network = self._graph_runner if self._graph_runner is not None else \
            self._compiled_network
        if network is None:
            return super().predict(batch_inputs, batch_data_samples, rescale=rescale)
        outs = network(batch_inputs)
        results = self.bbox_head.predict_by_feat(
            *outs, batch_img_metas=[s.metainfo for s in batch_data_samples], rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results)
