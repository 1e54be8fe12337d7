"""The norm of the state-space modules: a layer norm that keeps bfloat16 activations in
bfloat16 under autocast."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS


@MODELS.register_module(name='AutocastLN')
class AutocastLayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` over the last dimension that, under bfloat16 autocast, normalises
    bfloat16 maps in bfloat16 instead of float32.

    CUDA autocast runs ``layer_norm`` in float32: a bfloat16 (B, H, W, C) map is copied to
    float32, normalised into a float32 map, and the next linear layer copies that back to
    bfloat16 (the gate after an output norm multiplies in float32 on the way), so each norm
    moves the map about four times. Under bfloat16 autocast this norm passes a bfloat16
    input, with its weight and bias cast to bfloat16, to ``layer_norm`` itself, whose CUDA
    and CPU kernels accumulate the mean and variance in float32 and write bfloat16; a
    float32 input is normalised in float32 (accurate statistics whatever its mean) and the
    result cast to bfloat16 once. The parameters stay float32 (their gradients arrive
    through the casts), so state dicts are those of ``nn.LayerNorm``.

    Under float16 autocast, and without autocast, it is ``nn.LayerNorm``: a 16-bit
    ``layer_norm`` writes its weight and bias gradients in its input's dtype, and in float16
    those sums of loss-scaled gradients over all B x H x W rows could pass 65504, making the
    loss scaler skip steps.

    Registered as ``'AutocastLN'``; it is the default norm of the state-space modules (see
    ``STATE_SPACE_NORM``); ``norm_cfg=dict(type='LN', eps=1e-6)`` gives float32 norms under
    every autocast instead.
    """

    _abbr_ = 'ln'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., C) -> (..., C), bfloat16 under bfloat16 autocast for bfloat16 or float32
        inputs."""
        device = x.device.type
        if not (torch.is_autocast_enabled(device)
                and torch.get_autocast_dtype(device) == torch.bfloat16):
            return super().forward(x)
        if x.dtype == torch.float32:
            return super().forward(x).to(torch.bfloat16)
        if x.dtype != torch.bfloat16:
            return super().forward(x)
        weight = None if self.weight is None else self.weight.to(torch.bfloat16)
        bias = None if self.bias is None else self.bias.to(torch.bfloat16)
        with torch.autocast(device, enabled=False):
            return F.layer_norm(x, self.normalized_shape, weight, bias, self.eps)


# the default ``norm_cfg`` of the state-space modules (a class, so that it builds whatever the
# registry scope; configs can name it 'AutocastLN')
STATE_SPACE_NORM = dict(type=AutocastLayerNorm, eps=1e-6)
