"""YOLOv8's CSPDarknet backbone (C2f stages, SPPF) for MMDetection."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig

from ..layers.yolov8_layers import C2f, SPPF, YOLOV8_SCALES, make_divisible, make_round


@MODELS.register_module()
class YOLOv8CSPDarknet(BaseModule):
    """CSPDarknet of YOLOv8 (``yolov8.yaml``, P5 layout).

    Stem (3x3 conv, stride 2) then four stages, each a 3x3 stride-2 conv followed by a
    :class:`C2f` (with residual bottlenecks); the last stage ends with :class:`SPPF`.
    Base channels 64 (stem), 128, 256, 512, 1024 and base depths 3, 6, 6, 3 are scaled as in
    the public models: ``c = make_divisible(min(c, max_channels) * widen_factor, 8)`` and
    ``n = max(round(n * deepen_factor), 1)``.

    Stage index 0 is the stem, 1..4 the stages (strides 2, 4, 8, 16, 32), so the default
    ``out_indices=(2, 3, 4)`` returns P3, P4, P5. Every stage is a plain ``nn.Module`` attribute
    named in ``self.layers``, so the backbone can be run stage by stage with
    ``getattr(backbone, name)(x)``.

    Scales (``scale`` argument; explicit factors override the scale's):

    ===== ============= ============ ============ ===================
    scale deepen_factor widen_factor max_channels P3 / P4 / P5 channels
    ===== ============= ============ ============ ===================
    n     0.33          0.25         1024         64 / 128 / 256
    s     0.33          0.50         1024         128 / 256 / 512
    m     0.67          0.75         768          192 / 384 / 576
    l     1.00          1.00         512          256 / 512 / 512
    x     1.00          1.25         512          320 / 640 / 640
    ===== ============= ============ ============ ===================

    Args:
        arch (str): Architecture; only ``'P5'`` (strides 8-32 outputs) is defined.
        scale (str, optional): One of ``'n', 's', 'm', 'l', 'x'``; sets the three factors
            below unless they are given explicitly.
        deepen_factor (float, optional): Depth multiplier of the C2f blocks. Defaults to the
            scale's, or 1.0.
        widen_factor (float, optional): Width multiplier. Defaults to the scale's, or 1.0.
        max_channels (int, optional): Cap on the base channels before widening. Defaults to
            the scale's, or 1024.
        in_channels (int): Channels of the input image.
        out_indices (Sequence[int]): Stage indices returned.
        frozen_stages (int): Stages ``0..frozen_stages`` are frozen (BN in eval mode, no
            gradients); -1 freezes nothing.
        norm_eval (bool): Keep every BN layer in eval mode while training.
        norm_cfg (dict): Normalisation layer config.
        act_cfg (dict): Activation layer config.
        init_cfg (dict or list[dict], optional): Initialisation config.

    Forward: ``(B, in_channels, H, W)`` -> tuple of ``(B, stage_channels[i], H / 2**(i+1),
    W / 2**(i+1))`` for ``i`` in ``out_indices``.
    """

    # stage: (base in channels, base out channels, base C2f blocks, with SPPF)
    arch_settings = dict(P5=[(64, 128, 3, False), (128, 256, 6, False),
                             (256, 512, 6, False), (512, 1024, 3, True)])
    stem_channels = 64

    def __init__(self,
                 arch: str = 'P5',
                 scale: Optional[str] = None,
                 deepen_factor: Optional[float] = None,
                 widen_factor: Optional[float] = None,
                 max_channels: Optional[int] = None,
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (2, 3, 4),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 norm_cfg: ConfigType = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 init_cfg: OptMultiConfig = None):
        super().__init__(init_cfg=init_cfg)
        if arch not in self.arch_settings:
            raise ValueError(f'YOLOv8CSPDarknet: arch must be one of '
                             f'{sorted(self.arch_settings)}, got {arch!r}')
        defaults = (1.0, 1.0, 1024)
        if scale is not None:
            if scale not in YOLOV8_SCALES:
                raise ValueError(f'YOLOv8CSPDarknet: scale must be one of '
                                 f'{sorted(YOLOV8_SCALES)}, got {scale!r}')
            defaults = YOLOV8_SCALES[scale]
        given = (deepen_factor, widen_factor, max_channels)
        self.deepen_factor, self.widen_factor, self.max_channels = (
            d if g is None else g for g, d in zip(given, defaults))
        settings = self.arch_settings[arch]
        num_stages = len(settings) + 1
        if not all(0 <= i < num_stages for i in out_indices):
            raise ValueError(f'YOLOv8CSPDarknet: out_indices {tuple(out_indices)} must lie '
                             f'in [0, {num_stages - 1}]')
        if frozen_stages not in range(-1, num_stages):
            raise ValueError(f'YOLOv8CSPDarknet: frozen_stages must lie in '
                             f'[-1, {num_stages - 1}], got {frozen_stages}')
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        stem_out = self._channels(self.stem_channels)
        self.stem = ConvModule(in_channels, stem_out, 3, stride=2, padding=1,
                               norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.layers = ['stem']
        self.stage_channels: List[int] = [stem_out]
        for i, (c_in, c_out, num_blocks, use_sppf) in enumerate(settings, start=1):
            c_in, c_out = self._channels(c_in), self._channels(c_out)
            stage = [
                ConvModule(c_in, c_out, 3, stride=2, padding=1, norm_cfg=norm_cfg,
                           act_cfg=act_cfg),
                C2f(c_out, c_out, make_round(num_blocks, self.deepen_factor),
                    add_identity=True, norm_cfg=norm_cfg, act_cfg=act_cfg)
            ]
            if use_sppf:
                stage.append(SPPF(c_out, c_out, 5, norm_cfg=norm_cfg, act_cfg=act_cfg))
            self.add_module(f'stage{i}', nn.Sequential(*stage))
            self.layers.append(f'stage{i}')
            self.stage_channels.append(c_out)
        self._freeze_stages()

    def _channels(self, base: int) -> int:
        return make_divisible(min(base, self.max_channels), self.widen_factor)

    @property
    def out_channels(self) -> List[int]:
        """Channels of the returned maps, in ``out_indices`` order."""
        return [self.stage_channels[i] for i in self.out_indices]

    def _freeze_stages(self) -> None:
        for name in self.layers[:self.frozen_stages + 1]:
            stage = getattr(self, name)
            stage.eval()
            for param in stage.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'YOLOv8CSPDarknet':
        """Switch train / eval mode, keeping frozen stages (and BN with ``norm_eval``) in
        eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple:
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
