"""YOLOv8's path-aggregation neck (PAFPN with C2f blocks) for MMDetection."""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig

from ..layers.yolov8_layers import C2f, make_divisible, make_round


@MODELS.register_module()
class YOLOv8PAFPN(BaseModule):
    """Path aggregation network of YOLOv8 (the ``head`` part of ``yolov8.yaml`` before Detect).

    Top-down: the coarsest input is upsampled (nearest, x2), concatenated *after* the
    upsampled map with the next finer input and fused by a :class:`C2f` (no residuals);
    repeated down to the finest level, whose result is the first output. Bottom-up: each
    output is downsampled by a 3x3 stride-2 conv, concatenated (downsampled map first) with
    the top-down map of the next coarser level (the raw input at the coarsest one) and fused
    by a C2f. There are no extra lateral or output convs.

    Channels are given at base width and scaled like the backbone:
    ``c = make_divisible(c * widen_factor, 8)``. Use the backbone's capped base channels,
    e.g. ``[256, 512, 1024]`` with widen 0.25 (n), ``[256, 512, 768]`` with 0.75 (m),
    ``[256, 512, 512]`` with 1.0 (l), or the actual channels with ``widen_factor=1.0``.

    Args:
        in_channels (Sequence[int]): Base channels of the inputs, finest first.
        out_channels (Sequence[int]): Base channels of the outputs, finest first.
        deepen_factor (float): Depth multiplier of the C2f blocks.
        widen_factor (float): Width multiplier.
        num_csp_blocks (int): Base number of bottlenecks per C2f.
        norm_cfg (dict): Normalisation layer config.
        act_cfg (dict): Activation layer config.
        init_cfg (dict or list[dict], optional): Initialisation config.

    Forward: tuple of ``(B, in_channels[i], H_i, W_i)`` with ``H_i = 2 * H_{i+1}`` -> tuple of
    ``(B, out_channels[i], H_i, W_i)`` (scaled channels).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: Sequence[int],
                 deepen_factor: float = 1.0,
                 widen_factor: float = 1.0,
                 num_csp_blocks: int = 3,
                 norm_cfg: ConfigType = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 init_cfg: OptMultiConfig = None):
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(out_channels) or len(in_channels) < 2:
            raise ValueError(f'YOLOv8PAFPN: need as many in_channels {list(in_channels)} as '
                             f'out_channels {list(out_channels)}, at least two')
        self.in_channels: List[int] = [make_divisible(c, widen_factor) for c in in_channels]
        self.out_channels: List[int] = [make_divisible(c, widen_factor) for c in out_channels]
        num_blocks = make_round(num_csp_blocks, deepen_factor)
        num_levels = len(self.in_channels)

        def c2f(c_in: int, c_out: int) -> C2f:
            return C2f(c_in, c_out, num_blocks, add_identity=False, norm_cfg=norm_cfg,
                       act_cfg=act_cfg)

        self.upsample = nn.Upsample(scale_factor=2, mode='nearest')
        # top_down_layers[k] makes level num_levels - 2 - k (coarse to fine)
        self.top_down_layers = nn.ModuleList()
        high = self.in_channels[-1]
        for level in range(num_levels - 2, -1, -1):
            self.top_down_layers.append(
                c2f(high + self.in_channels[level], self.out_channels[level]))
            high = self.out_channels[level]
        # downsample_layers[k] / bottom_up_layers[k] make level k + 1 (fine to coarse)
        self.downsample_layers = nn.ModuleList()
        self.bottom_up_layers = nn.ModuleList()
        for level in range(num_levels - 1):
            c_low = self.out_channels[level]
            c_high = (self.in_channels[-1] if level + 1 == num_levels - 1 else
                      self.out_channels[level + 1])
            self.downsample_layers.append(
                ConvModule(c_low, c_low, 3, stride=2, padding=1, norm_cfg=norm_cfg,
                           act_cfg=act_cfg))
            self.bottom_up_layers.append(c2f(c_low + c_high, self.out_channels[level + 1]))

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'YOLOv8PAFPN: expected {len(self.in_channels)} inputs, '
                             f'got {len(inputs)}')
        # top-down path, coarse to fine; inner[i] is the map of level i
        inner = [inputs[-1]]
        for k, layer in enumerate(self.top_down_layers):
            level = len(inputs) - 2 - k
            inner.insert(0, layer(torch.cat([self.upsample(inner[0]), inputs[level]], 1)))
        # bottom-up path, fine to coarse
        outs = [inner[0]]
        for level, (down, layer) in enumerate(zip(self.downsample_layers,
                                                  self.bottom_up_layers)):
            outs.append(layer(torch.cat([down(outs[-1]), inner[level + 1]], 1)))
        return tuple(outs)
