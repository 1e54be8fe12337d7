"""Building blocks of YOLOv8 shared by its backbone and neck: C2f and SPPF.

Also the compound-scaling rules of the public YOLOv8 models (``YOLOV8_SCALES``,
:func:`make_divisible`, :func:`make_round`).
"""
import math
from typing import Dict, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmdet.utils import ConfigType, OptMultiConfig

#: ``scale -> (deepen_factor, widen_factor, max_channels)`` of the public YOLOv8 P5 models.
YOLOV8_SCALES: Dict[str, Tuple[float, float, int]] = dict(
    n=(0.33, 0.25, 1024),
    s=(0.33, 0.50, 1024),
    m=(0.67, 0.75, 768),
    l=(1.00, 1.00, 512),
    x=(1.00, 1.25, 512))


def make_divisible(channels: float, widen_factor: float = 1.0, divisor: int = 8) -> int:
    """Scale a channel count by ``widen_factor`` and round it up to a multiple of ``divisor``."""
    return int(math.ceil(channels * widen_factor / divisor) * divisor)


def make_round(num_blocks: int, deepen_factor: float = 1.0) -> int:
    """Scale a block count by ``deepen_factor`` (at least 1; a single block is never scaled)."""
    return max(round(num_blocks * deepen_factor), 1) if num_blocks > 1 else num_blocks


def _conv(in_channels: int, out_channels: int, kernel_size: int, norm_cfg: ConfigType,
          act_cfg: ConfigType, stride: int = 1) -> ConvModule:
    """Conv (no bias) -> BN -> activation with 'same' padding."""
    return ConvModule(in_channels, out_channels, kernel_size, stride=stride,
                      padding=kernel_size // 2, norm_cfg=norm_cfg, act_cfg=act_cfg)


class YOLOv8Bottleneck(BaseModule):
    """Two 3x3 convolutions with an optional residual connection.

    Args:
        channels (int): Input, hidden and output channels.
        add_identity (bool): Add the input to the output.
        norm_cfg (dict): Normalisation layer config.
        act_cfg (dict): Activation layer config.
        init_cfg (dict or list[dict], optional): Initialisation config.

    Forward: ``(B, channels, H, W) -> (B, channels, H, W)``.
    """

    def __init__(self,
                 channels: int,
                 add_identity: bool = True,
                 norm_cfg: ConfigType = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 init_cfg: OptMultiConfig = None):
        super().__init__(init_cfg=init_cfg)
        self.conv1 = _conv(channels, channels, 3, norm_cfg, act_cfg)
        self.conv2 = _conv(channels, channels, 3, norm_cfg, act_cfg)
        self.add_identity = add_identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class C2f(BaseModule):
    """CSP layer with two convolutions (YOLOv8's ``C2f``).

    A 1x1 ``main_conv`` doubles into two halves of ``mid = int(out_channels * expand_ratio)``
    channels; the second half runs through ``num_blocks`` bottlenecks in sequence, every
    intermediate result is kept, and the ``2 + num_blocks`` maps are concatenated and fused
    by the 1x1 ``final_conv``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        num_blocks (int): Number of bottlenecks.
        add_identity (bool): Residual connections inside the bottlenecks (``True`` in the
            backbone, ``False`` in the neck).
        expand_ratio (float): Hidden channels relative to ``out_channels``.
        norm_cfg (dict): Normalisation layer config.
        act_cfg (dict): Activation layer config.
        init_cfg (dict or list[dict], optional): Initialisation config.

    Forward: ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 num_blocks: int = 1,
                 add_identity: bool = True,
                 expand_ratio: float = 0.5,
                 norm_cfg: ConfigType = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 init_cfg: OptMultiConfig = None):
        super().__init__(init_cfg=init_cfg)
        self.mid_channels = int(out_channels * expand_ratio)
        self.main_conv = _conv(in_channels, 2 * self.mid_channels, 1, norm_cfg, act_cfg)
        self.blocks = nn.ModuleList(
            YOLOv8Bottleneck(self.mid_channels, add_identity, norm_cfg, act_cfg)
            for _ in range(num_blocks))
        self.final_conv = _conv((2 + num_blocks) * self.mid_channels, out_channels, 1,
                                norm_cfg, act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = list(self.main_conv(x).split(self.mid_channels, dim=1))
        for block in self.blocks:
            outs.append(block(outs[-1]))
        return self.final_conv(torch.cat(outs, dim=1))


class SPPF(BaseModule):
    """Spatial pyramid pooling, fast: three chained max-pools instead of parallel ones.

    ``conv1`` (1x1) halves the input channels, three ``kernel_size`` max-pools (stride 1)
    are chained, and the four maps are concatenated and projected by ``conv2`` (1x1).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Max-pool window.
        norm_cfg (dict): Normalisation layer config.
        act_cfg (dict): Activation layer config.
        init_cfg (dict or list[dict], optional): Initialisation config.

    Forward: ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 5,
                 norm_cfg: ConfigType = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 init_cfg: OptMultiConfig = None):
        super().__init__(init_cfg=init_cfg)
        mid_channels = in_channels // 2
        self.conv1 = _conv(in_channels, mid_channels, 1, norm_cfg, act_cfg)
        self.pool = nn.MaxPool2d(kernel_size, stride=1, padding=kernel_size // 2)
        self.conv2 = _conv(4 * mid_channels, out_channels, 1, norm_cfg, act_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.conv1(x)]
        for _ in range(3):
            outs.append(self.pool(outs[-1]))
        return self.conv2(torch.cat(outs, dim=1))
