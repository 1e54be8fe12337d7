"""The norm of the state-space modules: a layer norm that keeps 16-bit activations 16-bit
under autocast."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS


@MODELS.register_module(name='AutocastLN')
class AutocastLayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` over the last dimension that, under autocast, normalises in the
    autocast dtype instead of float32.

    Autocast runs ``layer_norm`` in float32: a 16-bit (B, H, W, C) map is copied to float32,
    normalised into a float32 map, and the next linear layer copies that back to 16 bits
    (the gate after an output norm multiplies in float32 on the way), so each norm moves
    the map about four times. Here the input (cast to the autocast dtype if it is not in
    it yet) and the weight and bias cast to that dtype go to ``layer_norm`` itself, whose
    CUDA and CPU kernels accumulate the mean and variance in float32 and write a 16-bit
    output. The parameters stay float32 (their gradients arrive through the casts), so
    state dicts are those of ``nn.LayerNorm``. Outside autocast it is ``nn.LayerNorm``.

    Registered as ``'AutocastLN'``; it is the default norm of the state-space modules (see
    ``STATE_SPACE_NORM``); ``norm_cfg=dict(type='LN', eps=1e-6)`` gives float32 norms under
    autocast instead.
    """

    _abbr_ = 'ln'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., C) -> (..., C), in the autocast dtype under autocast."""
        device = x.device.type
        if not torch.is_autocast_enabled(device):
            return super().forward(x)
        dtype = torch.get_autocast_dtype(device)
        weight = None if self.weight is None else self.weight.to(dtype)
        bias = None if self.bias is None else self.bias.to(dtype)
        with torch.autocast(device, enabled=False):
            return F.layer_norm(x.to(dtype), self.normalized_shape, weight, bias, self.eps)


# the default ``norm_cfg`` of the state-space modules (a class, so that it builds whatever the
# registry scope; configs can name it 'AutocastLN')
STATE_SPACE_NORM = dict(type=AutocastLayerNorm, eps=1e-6)
