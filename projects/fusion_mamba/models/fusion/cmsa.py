"""S4Fusion's Cross-Modal Spatial Awareness module (CMSA, arXiv 2405.20881) as a fusion module.

Every CMSA block interleaves the two modalities token by token in the four SS2D directions
and scans the 2L-token sequences with modality-specific delta / B / C and shared A / D
(Cross SS2D), so one hidden state carries both spatial and cross-modal context.
"""
from typing import Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig

from fusion_mamba.ops import cross_modal_ss2d_scan
from ..layers.checkpointing import check_with_cp, run_checkpointed
from ..layers.norms import STATE_SPACE_NORM
from ..layers.selective_scan_module import SelectiveScanModule
from ..layers.ss2d import NUM_DIRECTIONS

NUM_MODALITIES = 2


class CrossModalSS2D(SelectiveScanModule):
    """Cross SS2D (S4Fusion's Algorithm 1) on two (B, D, H, W) maps.

    Modality ``m`` (0: ``x_a``, the even tokens; 1: ``x_b``, the odd tokens) has its own
    per-direction projections to (dt, B, C) and its own dt projection; the step bias, A and
    D are shared (``proj_groups = (2, 4)``, four scans, see :class:`SelectiveScanModule`).
    Each modality's parameters are computed from its own tokens only
    (:meth:`modality_parameters`); the interleaved scan then lets each modality write into and
    read from the one shared state.

    Args:
        d_inner (int): Channels D of both maps.
        d_state (int): State size N.
        dt_rank (int | str): Rank of the dt projections; ``'auto'`` is ceil(d_model / 16).
        d_model (int): Width of the block's input, used by ``dt_rank='auto'``.
        dt_min, dt_max, dt_init_floor (float): Range of the initial step sizes (Mamba's).
        backend (str): Scan backend, see :func:`fusion_mamba.ops.cross_modal_ss2d_scan`.
    """

    def __init__(self,
                 d_inner: int,
                 d_state: int = 16,
                 dt_rank: Union[int, str] = 'auto',
                 d_model: int = None,
                 dt_min: float = 0.001,
                 dt_max: float = 0.1,
                 dt_init_floor: float = 1e-4,
                 backend: str = 'auto'):
        super().__init__(d_inner, d_state, dt_rank, d_model, dt_min, dt_max, dt_init_floor,
                         backend, proj_groups=(NUM_MODALITIES, NUM_DIRECTIONS),
                         num_scans=NUM_DIRECTIONS)
        self.reset_parameters()

    def modality_parameters(self, x: torch.Tensor,
                            modality: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-token scan parameters of one modality from its own map x (B, D, H, W):
        delta (B, 4, D, H, W) before bias and softplus, B and C (B, 4, N, H, W)."""
        return self.token_parameters(x, self.x_proj_weight[modality],
                                     self.dt_proj_weight[modality])

    def forward(self, x_a: torch.Tensor,
                x_b: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x_a, x_b: (B, D, H, W) -> (y_a, y_b), each (B, D, H, W), summed over directions."""
        for name, x in (('x_a', x_a), ('x_b', x_b)):
            if x.dim() != 4 or x.shape[1] != self.d_inner:
                raise ValueError(f'CrossModalSS2D expects {name} of shape (B, {self.d_inner}, '
                                 f'H, W), got {tuple(x.shape)}')
        delta_a, B_a, C_a = self.modality_parameters(x_a, 0)
        delta_b, B_b, C_b = self.modality_parameters(x_b, 1)
        A, D, delta_bias = self.scan_constants()
        return cross_modal_ss2d_scan(x_a, x_b, delta_a, delta_b, A, B_a, B_b, C_a, C_b, D=D,
                                     delta_bias=delta_bias, delta_softplus=True,
                                     backend=self.backend)


class CMSABlock(nn.Module):
    """One CMSA block (CMSAB) on the (RGB, IR) pair of (B, C, H, W) maps.

    Per modality m: ``u_m, z_m = chunk(Linear_m(Norm_m(F_m)))``, ``P_m = SiLU(DWConv(u_m))``
    with the depthwise convolution shared; Patch Mark ``M = Linear(cat(P_IR, P_RGB))`` is
    added to both (tokens at one position get one mark); Cross SS2D with the IR tokens first
    (S4Fusion's ``[I_1, V_1, I_2, V_2, ...]``) and recovery; then
    ``F_m + Linear_m(Norm_m(Y_m) * SiLU(z_m))``.

    Args:
        channels (int): C.
        ssm_ratio (float): Inner width D = ssm_ratio * C (an integer).
        d_conv (int): Kernel size of the shared depthwise convolution (odd).
        scan_cfg (dict): Keyword arguments of :class:`CrossModalSS2D` (d_state, dt_rank,
            backend, ...); ``d_inner`` and ``d_model`` are filled in.
        norm_cfg (dict): Norm over channels-last features (see
            :class:`GatedStateSpaceBranch`).
    """

    def __init__(self,
                 channels: int,
                 ssm_ratio: float = 2.0,
                 d_conv: int = 3,
                 scan_cfg: dict = None,
                 norm_cfg: ConfigType = STATE_SPACE_NORM):
        super().__init__()
        d_inner = int(round(ssm_ratio * channels))
        self.d_inner = d_inner
        self.norms = nn.ModuleList(
            build_norm_layer(norm_cfg, channels)[1] for _ in range(NUM_MODALITIES))
        self.in_projs = nn.ModuleList(
            nn.Linear(channels, 2 * d_inner, bias=False) for _ in range(NUM_MODALITIES))
        self.dwconv = nn.Conv2d(d_inner, d_inner, d_conv, padding=d_conv // 2, groups=d_inner)
        self.patch_mark = nn.Linear(NUM_MODALITIES * d_inner, d_inner)
        self.scan = CrossModalSS2D(d_inner, d_model=channels, **(scan_cfg or {}))
        self.out_norms = nn.ModuleList(
            build_norm_layer(norm_cfg, d_inner)[1] for _ in range(NUM_MODALITIES))
        self.out_projs = nn.ModuleList(
            nn.Linear(d_inner, channels, bias=False) for _ in range(NUM_MODALITIES))

    def forward(self, f_rgb: torch.Tensor,
                f_ir: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """f_rgb, f_ir: (B, C, H, W) -> updated (B, C, H, W) pair."""
        feats, gates = [], []
        for m, f in enumerate((f_rgb, f_ir)):
            u, z = self.in_projs[m](self.norms[m](f.permute(0, 2, 3, 1))).chunk(2, dim=-1)
            feats.append(F.silu(self.dwconv(u.permute(0, 3, 1, 2).contiguous())))
            gates.append(F.silu(z))
        p_rgb, p_ir = feats
        mark = self.patch_mark(torch.cat((p_ir, p_rgb), dim=1).permute(0, 2, 3, 1))
        mark = mark.permute(0, 3, 1, 2)
        y_ir, y_rgb = self.scan(p_ir + mark, p_rgb + mark)
        outs = []
        for m, (f, y) in enumerate(((f_rgb, y_rgb), (f_ir, y_ir))):
            y = self.out_norms[m](y.permute(0, 2, 3, 1)) * gates[m]
            outs.append(f + self.out_projs[m](y).permute(0, 3, 1, 2))
        return outs[0], outs[1]


@MODELS.register_module()
class CMSAFusion(BaseModule):
    """CMSA: ``num_blocks`` CMSA blocks; the fused map is the sum of the two streams.

    Args:
        in_channels (int): C of both (B, C, H, W) inputs.
        stage_name (str): Where the module sits (e.g. ``'P3'``), for error messages.
        num_blocks (int): CMSA blocks K (S4Fusion: 3).
        ssm_ratio (float): Inner width relative to C; ``ssm_ratio * in_channels`` must be an
            integer.
        d_conv (int): Kernel size of the shared depthwise convolution (odd).
        d_state (int): State size N of Cross SS2D.
        dt_rank (int | str): Rank of the dt projections; ``'auto'`` is ceil(C / 16).
        backend (str): Scan backend.
        norm_cfg (dict): Norm over channels-last features (see
            :class:`GatedStateSpaceBranch`).
        with_cp (bool | str): Gradient checkpointing of each block: ``True`` recomputes
            everything, ``'selective'`` everything but the scans (see
            :mod:`fusion_mamba.models.layers.checkpointing`).

    Forward: ``(f_rgb, f_ir)`` (B, C, H, W) each -> ``(rgb + ir, rgb, ir)``.
    """

    def __init__(self,
                 in_channels: int,
                 stage_name: str = '',
                 num_blocks: int = 3,
                 ssm_ratio: float = 2.0,
                 d_conv: int = 3,
                 d_state: int = 16,
                 dt_rank: Union[int, str] = 'auto',
                 backend: str = 'auto',
                 norm_cfg: ConfigType = STATE_SPACE_NORM,
                 with_cp: Union[bool, str] = False,
                 init_cfg: OptMultiConfig = None):
        super().__init__(init_cfg=init_cfg)
        where = f' at {stage_name}' if stage_name else ''
        d_inner = ssm_ratio * in_channels
        if in_channels < 1 or round(d_inner) < 1 or abs(d_inner - round(d_inner)) > 1e-6:
            raise ValueError(
                f'CMSAFusion{where}: the inner width ssm_ratio * in_channels = {ssm_ratio} * '
                f'{in_channels} must be a positive integer (change ssm_ratio or the width)')
        if num_blocks < 1:
            raise ValueError(f'CMSAFusion{where}: num_blocks must be >= 1, got {num_blocks}')
        if d_conv < 1 or d_conv % 2 == 0:
            raise ValueError(f'CMSAFusion{where}: d_conv must be a positive odd kernel size, '
                             f'got {d_conv}')
        self.in_channels = in_channels
        self.with_cp = check_with_cp(with_cp, f'CMSAFusion{where}')
        scan_cfg = dict(d_state=d_state, dt_rank=dt_rank, backend=backend)
        self.blocks = nn.ModuleList(
            CMSABlock(in_channels, ssm_ratio, d_conv, scan_cfg, norm_cfg)
            for _ in range(num_blocks))

    def forward(self, f_rgb: torch.Tensor,
                f_ir: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """f_rgb, f_ir: (B, C, H, W) -> (fused, rgb, ir), each (B, C, H, W)."""
        rgb, ir = f_rgb, f_ir
        for block in self.blocks:
            rgb, ir = run_checkpointed(block, rgb, ir, with_cp=self.with_cp,
                                       training=self.training)
        return rgb + ir, rgb, ir
