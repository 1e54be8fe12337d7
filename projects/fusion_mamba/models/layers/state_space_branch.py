"""The gated state-space branch shared by VSS blocks and DSSF modules."""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmdet.registry import MODELS
from mmdet.utils import ConfigType

from .norms import STATE_SPACE_NORM
from .ss2d import grouped_ss2d, maps_group


class GatedStateSpaceBranch(nn.Module):
    """Project a (B, C, H, W) map into the hidden state space and compute its gate.

    With ``n = Norm(x)`` (channels-last), as in Fusion-Mamba's Eq. 7-8:

    - ``y = Norm(SSM(SiLU(DWConv3x3(Linear(n)))))``  (P_in: the hidden-state features)
    - ``z = SiLU(Linear(n))``                          (the gate)

    Args:
        channels (int): Input channels C.
        ssm_ratio (float): Inner width D = ssm_ratio * C.
        ssm_cfg (dict): Config of the state-space operator on (B, D, H, W) maps, e.g.
            ``dict(type='SS2D', d_state=16, dt_rank='auto', backend='auto')``; ``d_inner`` and
            ``d_model`` are filled in.
        d_conv (int): Depthwise convolution kernel size.
        norm_cfg (dict): Norm over channels-last features (default
            :class:`AutocastLayerNorm`: 16-bit in, 16-bit out under autocast).

    Returns (forward): ``(y, z)``, both channels-last (B, H, W, D).
    """

    def __init__(self,
                 channels: int,
                 ssm_cfg: ConfigType,
                 ssm_ratio: float = 2.0,
                 d_conv: int = 3,
                 norm_cfg: ConfigType = STATE_SPACE_NORM):
        super().__init__()
        d_inner = int(round(ssm_ratio * channels))
        if d_inner < 1:
            raise ValueError(f'ssm_ratio={ssm_ratio} gives no inner channels for {channels}')
        self.d_inner = d_inner
        self.norm = build_norm_layer(norm_cfg, channels)[1]
        self.in_proj = nn.Linear(channels, 2 * d_inner, bias=False)  # x and z together
        self.dwconv = nn.Conv2d(d_inner, d_inner, d_conv, padding=d_conv // 2, groups=d_inner)
        self.ssm = MODELS.build(dict(ssm_cfg, d_inner=d_inner, d_model=channels))
        self.out_norm = build_norm_layer(norm_cfg, d_inner)[1]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, H, W) -> y, z: (B, H, W, D)."""
        return run_branches([self], [x])[0]

    def project(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, H, W) -> the projected map to convolve and scan, u (B, H, W, D) (a view
        of the input projection's output), and the gate z (B, H, W, D). A channels-last
        x (as the fusion modules pass between each other) is normalised in place."""
        n = self.norm(x.permute(0, 2, 3, 1))
        u, z = self.in_proj(n).chunk(2, dim=-1)
        return u, F.silu(z)

    def scans_channels_last(self, x: torch.Tensor) -> bool:
        """Whether the operator scans maps like ``x`` fastest channels-last (its
        ``prefers_channels_last(batch, device, needs_grad)``: SS2D with Triton's sequential
        kernels); the map to scan then stays channels-last from the input projection to the
        output norm, else it is made channel-major for the convolution."""
        prefers = getattr(self.ssm, 'prefers_channels_last', None)
        return prefers is not None and prefers(x.shape[0], x.device, self._needs_grad(x))

    def scan_output(self, scanned: torch.Tensor) -> torch.Tensor:
        """The scanned map (B, D, H, W) -> y (B, H, W, D)."""
        return self.out_norm(scanned.permute(0, 2, 3, 1))

    def _needs_grad(self, x: torch.Tensor) -> bool:
        """Whether a backward will run through this forward (the scan then saves states)."""
        return torch.is_grad_enabled() and (
            x.requires_grad or any(p.requires_grad for p in self.parameters()))


def run_branches(branches: Sequence[GatedStateSpaceBranch],
                 maps: Sequence[torch.Tensor]) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """Each branch on its map, ``[(y, z)]`` as from ``branch(x)``.

    Where the operators group on the maps' device (``SS2D.groups_with``), the convolutions
    share their configuration and the projected maps their shape, layout and dtype
    (:func:`maps_group`), the branches convolve and scan
    their maps as one: the projected maps are written once into one (B, G D, H, W) map in
    the layout the scan reads, one depthwise convolution with the branches' kernels stacked
    runs over it, and one scan call takes it (:func:`grouped_ss2d`). Otherwise each branch
    convolves and scans its own map.
    """
    projected = [branch.project(x) for branch, x in zip(branches, maps)]
    us = [u for u, _ in projected]
    ssms = [branch.ssm for branch in branches]
    convs = [branch.dwconv for branch in branches]
    groups_with = getattr(ssms[0], 'groups_with', None)
    if (len(branches) > 1 and groups_with is not None
            and all(groups_with(ssm, maps[0].device) for ssm in ssms[1:])
            and _convs_group(convs) and maps_group(us)):
        x = _scan_map(us, branches[0].scans_channels_last(maps[0]))
        scanned = grouped_ss2d(ssms, F.silu(_depthwise_conv(convs, x)))
    else:
        scanned = [
            branch.ssm(F.silu(branch.dwconv(_scan_map([u], branch.scans_channels_last(x)))))
            for branch, x, u in zip(branches, maps, us)]
    return [(branch.scan_output(s), z) for branch, s, (_, z) in zip(branches, scanned, projected)]


def _scan_map(maps: Sequence[torch.Tensor], channels_last: bool) -> torch.Tensor:
    """G (B, H, W, D) maps -> (B, G D, H, W), concatenated along the channels, channels-last
    or contiguous; each map copied once."""
    if channels_last:
        x = maps[0] if len(maps) == 1 else torch.cat(maps, dim=-1)
        return x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    if len(maps) == 1:
        return maps[0].permute(0, 3, 1, 2).contiguous()
    batch, height, width, dim = maps[0].shape
    x = maps[0].new_empty(batch, len(maps) * dim, height, width)
    for g, u in enumerate(maps):
        x[:, g * dim:(g + 1) * dim] = u.permute(0, 3, 1, 2)
    return x


def _convs_group(convs: Sequence[nn.Conv2d]) -> bool:
    """Whether the convolutions can run as one over concatenated maps
    (:func:`_depthwise_conv`): one kernel size, stride, padding and dilation, all with a bias
    or none."""
    first = convs[0]
    return all((conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.bias is None)
               == (first.kernel_size, first.stride, first.padding, first.dilation,
                   first.bias is None) for conv in convs)


def _depthwise_conv(convs: Sequence[nn.Conv2d], x: torch.Tensor) -> torch.Tensor:
    """G depthwise convolutions of one configuration, conv g on channel group g of x
    (B, G D, H, W), as one convolution with their kernels stacked."""
    first = convs[0]
    weight = torch.cat([conv.weight for conv in convs])
    bias = None if first.bias is None else torch.cat([conv.bias for conv in convs])
    return F.conv2d(x, weight, bias, first.stride, first.padding, first.dilation,
                    groups=x.shape[1])


class ChannelsLastMLP(nn.Module):
    """Pre-norm MLP residual on channels-last features: x + fc2(GELU(fc1(Norm(x))))."""

    def __init__(self, channels: int, ratio: float,
                 norm_cfg: ConfigType = STATE_SPACE_NORM):
        super().__init__()
        hidden = int(round(channels * ratio))
        self.norm = build_norm_layer(norm_cfg, channels)[1]
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) -> (B, H, W, C)."""
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))
