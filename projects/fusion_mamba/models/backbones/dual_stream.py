"""Dual-stream (RGB + IR) backbone with fusion modules at chosen stages."""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig


def stage_layout(backbone: nn.Module) -> str:
    """How a backbone can be run stage by stage.

    - ``'layers'``: a ``layers`` list of submodule names (mmdet's CSPDarknet, this package's
      YOLOv8CSPDarknet); stage i is ``getattr(backbone, layers[i])`` and index 0 is the stem.
    - ``'res_layers'``: mmdet's ResNet family; stage 0 is the stem, max-pool and first
      residual layer, stage i the i-th residual layer, matching ResNet's ``out_indices``.
    - ``'whole'``: anything else (e.g. mmpretrain's ConvNeXt); it runs whole.
    """
    names = getattr(backbone, 'layers', None)
    if isinstance(names, (list, tuple)) and names and all(
            isinstance(n, str) and isinstance(getattr(backbone, n, None), nn.Module)
            for n in names):
        return 'layers'
    if isinstance(getattr(backbone, 'res_layers', None), (list, tuple)) and hasattr(
            backbone, 'maxpool'):
        return 'res_layers'
    return 'whole'


def num_stages(backbone: nn.Module, layout: str) -> int:
    return len(getattr(backbone, layout)) if layout != 'whole' else 0


def run_stage(backbone: nn.Module, layout: str, index: int, x: torch.Tensor) -> torch.Tensor:
    """Run stage ``index`` of a backbone of the given :func:`stage_layout`."""
    if layout == 'layers':
        return getattr(backbone, backbone.layers[index])(x)
    if index == 0:
        if getattr(backbone, 'deep_stem', False):
            x = backbone.stem(x)
        else:
            x = backbone.relu(backbone.norm1(backbone.conv1(x)))
        x = backbone.maxpool(x)
    return getattr(backbone, backbone.res_layers[index])(x)


@MODELS.register_module()
class DualStreamBackbone(BaseModule):
    """Two backbone streams (visible, infrared) fused at the pyramid levels.

    Stage-by-stage backbones (see :func:`stage_layout`) run in lock step and each fusion
    module fuses the two streams right after its stage; with ``feedback=True`` the enhanced
    maps it returns continue down their own streams (Fusion-Mamba's default here). Other
    backbones (e.g. mmpretrain's ConvNeXt) run whole and their outputs are fused.

    Args:
        rgb_stream (dict): Backbone config of the visible stream.
        ir_stream (dict, optional): Backbone config of the infrared stream; ``None`` builds a
            second copy of ``rgb_stream`` (its own weights).
        fusion (dict): Fusion module config (e.g. ``FusionMambaBlock``, ``AddFusion``);
            ``in_channels`` and ``stage_name`` are filled in per level.
        in_channels (Sequence[int]): Channels of the fused levels, in output order.
        out_indices (Sequence[int]): Stage indices fused and returned; must be the streams'
            own ``out_indices``.
        stage_names (Sequence[str], optional): Names of the fused levels for messages,
            e.g. ``('P3', 'P4', 'P5')``.
        feedback (bool): Feed the enhanced maps back into the streams.
        fusion_overrides (Sequence[dict], optional): Per-level changes to ``fusion``.

    Forward: ``(visible (B, 3, H, W), infrared (B, C_ir, H, W))`` -> tuple of fused maps
    ``(B, in_channels[i], H / s_i, W / s_i)``.
    """

    def __init__(self,
                 rgb_stream: ConfigType,
                 fusion: ConfigType,
                 in_channels: Sequence[int],
                 out_indices: Sequence[int] = (2, 3, 4),
                 ir_stream: OptConfigType = None,
                 stage_names: Sequence[str] = None,
                 feedback: bool = True,
                 fusion_overrides: Sequence[dict] = None,
                 init_cfg: OptMultiConfig = None):
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(out_indices):
            raise ValueError(f'DualStreamBackbone: {len(in_channels)} in_channels for '
                             f'{len(out_indices)} out_indices {tuple(out_indices)}')
        self.rgb_stream = MODELS.build(rgb_stream)
        self.ir_stream = MODELS.build(ir_stream if ir_stream is not None else rgb_stream)
        self.out_indices = tuple(out_indices)
        self.in_channels = tuple(in_channels)
        self.stage_names = tuple(stage_names or (f'stage{i}' for i in out_indices))
        self.feedback = feedback
        overrides = fusion_overrides or [{}] * len(out_indices)
        self.fusions = nn.ModuleList(
            MODELS.build(dict(fusion, in_channels=c, stage_name=name, **extra))
            for c, name, extra in zip(self.in_channels, self.stage_names, overrides))
        self.layouts = (stage_layout(self.rgb_stream), stage_layout(self.ir_stream))
        for stream, layout in zip((self.rgb_stream, self.ir_stream), self.layouts):
            if layout != 'whole' and max(self.out_indices) >= num_stages(stream, layout):
                raise ValueError(
                    f'DualStreamBackbone: out_indices {self.out_indices} exceed the '
                    f'{num_stages(stream, layout)} stages of {type(stream).__name__}')

    def _fuse(self, level: int, f_rgb: torch.Tensor,
              f_ir: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        expected = self.in_channels[level]
        for name, f in (('visible', f_rgb), ('infrared', f_ir)):
            if f.shape[1] != expected:
                raise ValueError(
                    f'DualStreamBackbone: the {name} stream gives {f.shape[1]} channels at '
                    f'{self.stage_names[level]}, but in_channels says {expected}')
        if f_rgb.shape != f_ir.shape:
            raise ValueError(f'DualStreamBackbone: stream maps differ at '
                             f'{self.stage_names[level]}: {tuple(f_rgb.shape)} vs '
                             f'{tuple(f_ir.shape)}')
        return self.fusions[level](f_rgb, f_ir)

    def forward(self, visible: torch.Tensor, infrared: torch.Tensor) -> Tuple[torch.Tensor]:
        if visible.shape[0] != infrared.shape[0] or visible.shape[2:] != infrared.shape[2:]:
            raise ValueError(f'DualStreamBackbone: visible {tuple(visible.shape)} and infrared '
                             f'{tuple(infrared.shape)} batches must have the same N, H, W')
        rgb_layout, ir_layout = self.layouts
        if 'whole' in self.layouts:
            rgb_outs, ir_outs = self.rgb_stream(visible), self.ir_stream(infrared)
            return tuple(self._fuse(level, r, i)[0]
                         for level, (r, i) in enumerate(zip(rgb_outs, ir_outs)))
        outs = []
        r, i = visible, infrared
        for index in range(max(self.out_indices) + 1):
            r = run_stage(self.rgb_stream, rgb_layout, index, r)
            i = run_stage(self.ir_stream, ir_layout, index, i)
            if index in self.out_indices:
                fused, r_enh, i_enh = self._fuse(self.out_indices.index(index), r, i)
                outs.append(fused)
                if self.feedback:
                    r, i = r_enh, i_enh
        return tuple(outs)
