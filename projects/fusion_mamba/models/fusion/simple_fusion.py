"""Parameter-light fusion baselines with the fusion-module interface."""
from typing import Tuple

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig


@MODELS.register_module()
class AddFusion(BaseModule):
    """The paper's baseline: ``fused = F_R + F_IR``; the streams continue unchanged.

    Args:
        in_channels (int): Channels of both inputs (unused, for a uniform interface).
        stage_name (str): Where the module sits (unused, for a uniform interface).
    """

    def __init__(self, in_channels: int, stage_name: str = '',
                 init_cfg: OptMultiConfig = None):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels

    def forward(self, f_rgb: torch.Tensor,
                f_ir: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, H, W) x2 -> (fused, f_rgb, f_ir)."""
        return f_rgb + f_ir, f_rgb, f_ir


@MODELS.register_module()
class ConcatConvFusion(BaseModule):
    """``fused = Conv1x1(cat(F_R, F_IR))`` with norm and activation; streams unchanged.

    Args:
        in_channels (int): Channels C of both inputs and of the fused map.
        stage_name (str): Where the module sits (unused, for a uniform interface).
    """

    def __init__(self,
                 in_channels: int,
                 stage_name: str = '',
                 norm_cfg: ConfigType = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 init_cfg: OptMultiConfig = None):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.conv = ConvModule(2 * in_channels, in_channels, 1,
                               norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, f_rgb: torch.Tensor,
                f_ir: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, H, W) x2 -> (fused, f_rgb, f_ir)."""
        return self.conv(torch.cat([f_rgb, f_ir], dim=1)), f_rgb, f_ir
