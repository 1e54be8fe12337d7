"""Fusion-Mamba Block (FMB): SSCS shallow fusion + stacked DSSF deep fusion (arXiv 2404.09146).

Every fusion module of this package takes ``(f_rgb, f_ir)``, two (B, C, H, W) maps, and
returns ``(fused, rgb_out, ir_out)``: the map for the neck and the two maps that may continue
down their own backbone streams.
"""
from typing import Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig

from ..layers.checkpointing import check_with_cp, run_checkpointed
from ..layers.norms import STATE_SPACE_NORM
from ..layers.state_space_branch import ChannelsLastMLP, GatedStateSpaceBranch, run_branches
from ..layers.vss_block import VSSBlock

DEFAULT_SSM_CFG = dict(type='SS2D', d_state=16, dt_rank='auto', backend='auto')


def channel_swap(f_rgb: torch.Tensor,
                 f_ir: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """SSCS's channel swap (Eq. 5): with both maps split into 4 channel groups,
    ``T_R = [R1, I2, R3, I4]`` and ``T_IR = [I1, R2, I3, R4]``.

    Args:
        f_rgb, f_ir: (B, C, H, W) with C divisible by 4.

    Returns:
        (T_R, T_IR), each (B, C, H, W), channels-last in memory (the layout the fusion
        modules read and write).
    """
    c = f_rgb.shape[1]
    if c % 4:
        raise ValueError(f'channel_swap needs channels divisible by 4, got {c}')
    r = f_rgb.permute(0, 2, 3, 1).chunk(4, dim=-1)
    i = f_ir.permute(0, 2, 3, 1).chunk(4, dim=-1)
    t_rgb = torch.cat((r[0], i[1], r[2], i[3]), dim=-1)
    t_ir = torch.cat((i[0], r[1], i[2], r[3]), dim=-1)
    return t_rgb.permute(0, 3, 1, 2), t_ir.permute(0, 3, 1, 2)


class DSSF(nn.Module):
    """Dual State Space Fusion (Eq. 7-11), on (B, C, H, W) maps.

    ``y'_R = y_R * z_R + [ir_to_rgb] z_R * y_IR``,
    ``y'_IR = y_IR * z_IR + [rgb_to_ir] z_IR * y_R``,
    ``F_R <- F_R + Linear(y'_R)`` and likewise for IR (then an optional MLP residual).
    The two branches' scans run as one call where their operators allow it
    (:func:`~fusion_mamba.models.layers.state_space_branch.run_branches`).

    Args:
        channels (int): C.
        ir_to_rgb (bool): Keep the cross term that brings IR's hidden state into the RGB
            update (Eq. 9).
        rgb_to_ir (bool): Keep the cross term that brings RGB's hidden state into the IR
            update (Eq. 10).
        share_weights (bool): One set of projections for both modalities.
        ssm_cfg, ssm_ratio, d_conv, mlp_ratio, norm_cfg: See :class:`VSSBlock`.
    """

    def __init__(self,
                 channels: int,
                 ssm_cfg: ConfigType,
                 ir_to_rgb: bool = True,
                 rgb_to_ir: bool = True,
                 share_weights: bool = False,
                 ssm_ratio: float = 2.0,
                 d_conv: int = 3,
                 mlp_ratio: float = 0.0,
                 norm_cfg: ConfigType = STATE_SPACE_NORM):
        super().__init__()
        self.ir_to_rgb = ir_to_rgb
        self.rgb_to_ir = rgb_to_ir
        num_sets = 1 if share_weights else 2
        self.branches = nn.ModuleList(
            GatedStateSpaceBranch(channels, ssm_cfg, ssm_ratio, d_conv, norm_cfg)
            for _ in range(num_sets))
        d_inner = self.branches[0].d_inner
        self.out_projs = nn.ModuleList(
            nn.Linear(d_inner, channels, bias=False) for _ in range(num_sets))
        self.mlps = nn.ModuleList(
            ChannelsLastMLP(channels, mlp_ratio, norm_cfg)
            for _ in range(num_sets)) if mlp_ratio > 0 else None

    def _modality(self, index: int) -> int:
        """Index of the weight set of modality 0 (RGB) or 1 (IR)."""
        return min(index, len(self.branches) - 1)

    def forward(self, f_rgb: torch.Tensor,
                f_ir: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """f_rgb, f_ir: (B, C, H, W) -> updated (B, C, H, W) pair, channels-last in memory
        (computed so, with no copy back; channels-last inputs are read in place)."""
        (y_r, z_r), (y_i, z_i) = run_branches(
            [self.branches[self._modality(m)] for m in (0, 1)], [f_rgb, f_ir])
        mixed_r = z_r * (y_r + y_i) if self.ir_to_rgb else z_r * y_r
        mixed_i = z_i * (y_i + y_r) if self.rgb_to_ir else z_i * y_i
        outs = []
        for m, (f, mixed) in enumerate(((f_rgb, mixed_r), (f_ir, mixed_i))):
            k = self._modality(m)
            # the projection first: the sum takes its layout, channels-last, whatever f's
            out = self.out_projs[k](mixed) + f.permute(0, 2, 3, 1)
            if self.mlps is not None:
                out = self.mlps[k](out)
            outs.append(out.permute(0, 3, 1, 2))
        return outs[0], outs[1]


@MODELS.register_module()
class FusionMambaBlock(BaseModule):
    """Fusion-Mamba Block: SSCS + ``num_dssf`` x DSSF + residual enhancement (Eq. 12).

    ``F~ = VSS(channel_swap(F_R, F_IR))`` (SSCS, per branch), then the DSSF stack gives
    ``F-``; the outputs are ``F^_R = F_R + F-_R``, ``F^_IR = F_IR + F-_IR`` and the fused
    map ``P = F^_R + F^_IR``. Between the block's modules the maps stay channels-last in
    memory: each module normalises and projects (B, H, W, C) rows, and reading and writing
    them in that layout costs no copy; the residual sums give the outputs in the inputs'
    layout.

    Args:
        in_channels (int): C of both (B, C, H, W) inputs.
        stage_name (str): Where the block sits (e.g. ``'P3'``), for error messages.
        use_sscs (bool): Channel swap + one VSS block per branch (ablation: off).
        num_dssf (int): Number of stacked DSSF modules (paper: 8; ablation 0/2/4/16).
        ir_to_rgb, rgb_to_ir (bool): The cross terms of Eq. 9 / Eq. 10.
        share_weights (bool): Share the RGB and IR branch weights in VSS and DSSF.
        ssm_cfg (dict): State-space operator, ``SS2D`` (default) or ``SASF`` with its
            ``d_state``, ``dt_rank`` and scan ``backend``.
        ssm_ratio (float): Inner width of the state-space branch relative to C.
        d_conv (int): Depthwise conv kernel size before the scan.
        mlp_ratio (float): MLP after each VSS / DSSF update (0: none, as in the paper).
        with_cp (bool | str): Gradient checkpointing of each VSS / DSSF module: ``True``
            recomputes everything, ``'selective'`` everything but the scans (see
            :mod:`fusion_mamba.models.layers.checkpointing`).
    """

    def __init__(self,
                 in_channels: int,
                 stage_name: str = '',
                 use_sscs: bool = True,
                 num_dssf: int = 8,
                 ir_to_rgb: bool = True,
                 rgb_to_ir: bool = True,
                 share_weights: bool = False,
                 ssm_cfg: ConfigType = DEFAULT_SSM_CFG,
                 ssm_ratio: float = 2.0,
                 d_conv: int = 3,
                 mlp_ratio: float = 0.0,
                 norm_cfg: ConfigType = STATE_SPACE_NORM,
                 with_cp: Union[bool, str] = False,
                 init_cfg: OptMultiConfig = None):
        super().__init__(init_cfg=init_cfg)
        where = f' at {stage_name}' if stage_name else ''
        if use_sscs and in_channels % 4:
            raise ValueError(
                f'FusionMambaBlock{where}: SSCS splits the channels into 4 groups, but the '
                f'width {in_channels} is not divisible by 4 (set use_sscs=False or change '
                'the backbone width)')
        if num_dssf < 0:
            raise ValueError(f'FusionMambaBlock{where}: num_dssf must be >= 0, got {num_dssf}')
        self.in_channels = in_channels
        self.use_sscs = use_sscs
        self.with_cp = check_with_cp(with_cp, f'FusionMambaBlock{where}')
        common = dict(ssm_cfg=ssm_cfg, ssm_ratio=ssm_ratio, d_conv=d_conv,
                      mlp_ratio=mlp_ratio, norm_cfg=norm_cfg)
        if use_sscs:
            self.vss_rgb = VSSBlock(in_channels, **common)
            self.vss_ir = self.vss_rgb if share_weights else VSSBlock(in_channels, **common)
        self.dssf = nn.ModuleList(
            DSSF(in_channels, ir_to_rgb=ir_to_rgb, rgb_to_ir=rgb_to_ir,
                 share_weights=share_weights, **common) for _ in range(num_dssf))

    def _run(self, module: nn.Module, *args):
        return run_checkpointed(module, *args, with_cp=self.with_cp, training=self.training)

    def forward(self, f_rgb: torch.Tensor,
                f_ir: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """f_rgb, f_ir: (B, C, H, W) -> (fused, rgb_enhanced, ir_enhanced), each (B, C, H, W)."""
        t_rgb, t_ir = f_rgb, f_ir
        if self.use_sscs:
            t_rgb, t_ir = channel_swap(f_rgb, f_ir)
            t_rgb = self._run(self.vss_rgb, t_rgb)
            t_ir = self._run(self.vss_ir, t_ir)
        for dssf in self.dssf:
            t_rgb, t_ir = self._run(dssf, t_rgb, t_ir)
        rgb = f_rgb + t_rgb
        ir = f_ir + t_ir
        return rgb + ir, rgb, ir
