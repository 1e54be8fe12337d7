"""CFT-style transformer fusion (Cross-Modality Fusion Transformer, arXiv 2111.00273) baseline.

The RGB and IR maps of one level are (optionally) average-pooled to a fixed grid, their tokens
concatenated into one sequence with a learnable position embedding, and a stack of pre-norm
transformer layers attends globally over both modalities at once (intra- and inter-modal
attention in one matrix). The result is resized back and added to each stream.
"""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig

NUM_MODALITIES = 2


def pooling_matrix(in_size: int, out_size: int, like: torch.Tensor) -> torch.Tensor:
    """(out_size, in_size) matrix of adaptive average pooling along one axis: row i averages
    inputs floor(i * in / out) .. ceil((i + 1) * in / out) - 1 (PyTorch's bins)."""
    rows = []
    for i in range(out_size):
        start, end = (i * in_size) // out_size, ((i + 1) * in_size + out_size - 1) // out_size
        rows.append([1.0 / (end - start) if start <= j < end else 0.0 for j in range(in_size)])
    # built from Python numbers: a constant of a traced graph, not a chain of slice writes
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def adaptive_avg_pool2d(x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
    """``F.adaptive_avg_pool2d`` of (B, C, H, W) to ``grid``; while exporting to ONNX (whose
    exporter refuses output sizes that do not divide the input) as two products with
    pooling matrices, which give the same bins."""
    if not torch.onnx.is_in_onnx_export():
        return F.adaptive_avg_pool2d(x, grid)
    height, width = x.shape[-2:]
    return pooling_matrix(height, grid[0], x) @ x @ pooling_matrix(width, grid[1], x).T


class SelfAttentionLayer(nn.Module):
    """Pre-norm transformer layer on (B, L, C) tokens:
    ``x + Drop(Proj(MHSA(Norm(x))))``, then ``x + Drop(MLP(Norm(x)))`` (GELU MLP).

    Args:
        channels (int): C, divisible by ``num_heads``.
        num_heads (int): Attention heads.
        mlp_ratio (float): Hidden width of the MLP relative to C.
        attn_drop (float): Dropout on the attention weights.
        drop (float): Dropout on both residual branches.
        norm_cfg (dict): Norm over the channels.
    """

    def __init__(self, channels: int, num_heads: int, mlp_ratio: float, attn_drop: float,
                 drop: float, norm_cfg: ConfigType):
        super().__init__()
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.norm1 = build_norm_layer(norm_cfg, channels)[1]
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.norm2 = build_norm_layer(norm_cfg, channels)[1]
        hidden = int(round(channels * mlp_ratio))
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(),
                                 nn.Linear(hidden, channels))
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, C) -> (B, L, C)."""
        batch, length, channels = x.shape
        qkv = self.qkv(self.norm1(x)).view(batch, length, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, L, C / heads)
        attn = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        x = x + self.drop(self.proj(attn.transpose(1, 2).reshape(batch, length, channels)))
        return x + self.drop(self.mlp(self.norm2(x)))


@MODELS.register_module()
class TransformerFusion(BaseModule):
    """CFT's fusion transformer with the fusion-module interface.

    ``T = cat(tokens(Pool(F_RGB)), tokens(Pool(F_IR))) + PE`` (2 * h * w tokens), then
    ``num_layers`` global self-attention layers and a final norm; the two halves are reshaped
    to (B, C, h, w), bilinearly resized to (H, W) and added: ``F_m + T_m``. The fused map is
    ``(F_RGB + T_RGB) + (F_IR + T_IR)``.

    Args:
        in_channels (int): C of both (B, C, H, W) inputs, divisible by ``num_heads``.
        stage_name (str): Where the module sits (e.g. ``'P3'``), for error messages.
        num_layers (int): Transformer layers (CFT: 8).
        num_heads (int): Attention heads (CFT: 8).
        mlp_ratio (float): MLP hidden width relative to C (CFT: 4).
        pool_size (Sequence[int], optional): (h, w) grid each stream is average-pooled to
            before attention (CFT: 8 x 8); ``None`` attends over all H * W tokens (quadratic
            memory and time).
        pos_embed_size (Sequence[int]): Grid of the learnable position embedding when
            ``pool_size`` is None; it is bilinearly resized to the token grid when they
            differ. With pooling the embedding has the pooled grid.
        attn_drop (float): Dropout on attention weights (CFT: 0.1).
        drop (float): Dropout on the embedded tokens and residual branches (CFT: 0.1).
        norm_cfg (dict): Norm over the channels.
    """

    def __init__(self,
                 in_channels: int,
                 stage_name: str = '',
                 num_layers: int = 8,
                 num_heads: int = 8,
                 mlp_ratio: float = 4.0,
                 pool_size: Optional[Sequence[int]] = (8, 8),
                 pos_embed_size: Sequence[int] = (8, 8),
                 attn_drop: float = 0.1,
                 drop: float = 0.1,
                 norm_cfg: ConfigType = dict(type='LN'),
                 init_cfg: OptMultiConfig = dict(
                     type='TruncNormal', layer='Linear', std=0.02, bias=0.)):
        super().__init__(init_cfg=init_cfg)
        where = f' at {stage_name}' if stage_name else ''
        if num_heads < 1 or in_channels % num_heads:
            raise ValueError(f'TransformerFusion{where}: the width {in_channels} must be '
                             f'divisible by num_heads={num_heads}')
        if num_layers < 1:
            raise ValueError(f'TransformerFusion{where}: num_layers must be >= 1, '
                             f'got {num_layers}')
        for name, grid in (('pool_size', pool_size), ('pos_embed_size', pos_embed_size)):
            if grid is not None and (len(grid) != 2 or min(grid) < 1):
                raise ValueError(f'TransformerFusion{where}: {name} must be a pair of '
                                 f'positive ints, got {grid!r}')
        self.in_channels = in_channels
        self.pool_size = tuple(pool_size) if pool_size is not None else None
        grid = self.pool_size or tuple(pos_embed_size)
        self.pos_embed = nn.Parameter(torch.zeros(NUM_MODALITIES, in_channels, *grid))
        self.embed_drop = nn.Dropout(drop)
        self.layers = nn.ModuleList(
            SelfAttentionLayer(in_channels, num_heads, mlp_ratio, attn_drop, drop, norm_cfg)
            for _ in range(num_layers))
        self.norm = build_norm_layer(norm_cfg, in_channels)[1]

    def forward(self, f_rgb: torch.Tensor,
                f_ir: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """f_rgb, f_ir: (B, C, H, W) -> (fused, rgb, ir), each (B, C, H, W)."""
        batch, channels, height, width = f_rgb.shape
        grid = self.pool_size or (height, width)
        x = torch.stack((f_rgb, f_ir), dim=1).flatten(0, 1)  # (2B, C, H, W), RGB / IR pairs
        if grid != (height, width):
            x = adaptive_avg_pool2d(x, grid)
        pos = self.pos_embed
        if tuple(pos.shape[-2:]) != grid:
            pos = F.interpolate(pos, size=grid, mode='bilinear', align_corners=False)
        x = x.view(batch, NUM_MODALITIES, channels, *grid) + pos
        tokens = self.embed_drop(x.flatten(3).transpose(2, 3).flatten(1, 2))  # (B, 2hw, C)
        for layer in self.layers:
            tokens = layer(tokens)
        tokens = self.norm(tokens)
        x = tokens.view(batch, NUM_MODALITIES, -1, channels).transpose(2, 3)
        x = x.reshape(batch * NUM_MODALITIES, channels, *grid)
        if grid != (height, width):
            x = F.interpolate(x, size=(height, width), mode='bilinear', align_corners=False)
        x = x.view(batch, NUM_MODALITIES, channels, height, width)
        rgb, ir = f_rgb + x[:, 0], f_ir + x[:, 1]
        return rgb + ir, rgb, ir
