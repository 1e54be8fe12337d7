"""VSS block: VMamba's visual state-space block on (B, C, H, W) maps."""
import torch
import torch.nn as nn
from mmdet.utils import ConfigType

from .norms import STATE_SPACE_NORM
from .state_space_branch import ChannelsLastMLP, GatedStateSpaceBranch


class VSSBlock(nn.Module):
    """``x + Linear(y * z)`` with ``(y, z)`` from :class:`GatedStateSpaceBranch`, then an
    optional MLP residual (newer VMamba releases; ``mlp_ratio=0`` disables it).

    Args:
        channels (int): Channels C of the (B, C, H, W) input and output.
        ssm_cfg, ssm_ratio, d_conv, norm_cfg: See :class:`GatedStateSpaceBranch`.
        mlp_ratio (float): Hidden width of the MLP relative to C; 0 for none.
    """

    def __init__(self,
                 channels: int,
                 ssm_cfg: ConfigType,
                 ssm_ratio: float = 2.0,
                 d_conv: int = 3,
                 mlp_ratio: float = 0.0,
                 norm_cfg: ConfigType = STATE_SPACE_NORM):
        super().__init__()
        self.branch = GatedStateSpaceBranch(channels, ssm_cfg, ssm_ratio, d_conv, norm_cfg)
        self.out_proj = nn.Linear(self.branch.d_inner, channels, bias=False)
        self.mlp = ChannelsLastMLP(channels, mlp_ratio, norm_cfg) if mlp_ratio > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W), channels-last in memory (computed so, with no
        copy back; a channels-last x is read in place)."""
        y, z = self.branch(x)
        out = self.out_proj(y * z) + x.permute(0, 2, 3, 1)  # channels-last, whatever x's layout
        if self.mlp is not None:
            out = self.mlp(out)
        return out.permute(0, 3, 1, 2)
