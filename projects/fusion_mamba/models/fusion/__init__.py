from .fusion_mamba_block import DSSF, FusionMambaBlock, channel_swap
from .simple_fusion import AddFusion, ConcatConvFusion

__all__ = ['channel_swap', 'DSSF', 'FusionMambaBlock', 'AddFusion', 'ConcatConvFusion']
