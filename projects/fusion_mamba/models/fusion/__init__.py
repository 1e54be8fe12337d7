from .cmsa import CMSABlock, CMSAFusion, CrossModalSS2D
from .fusion_mamba_block import DSSF, FusionMambaBlock, channel_swap
from .simple_fusion import AddFusion, ConcatConvFusion
from .transformer_fusion import TransformerFusion

__all__ = [
    'channel_swap', 'DSSF', 'FusionMambaBlock', 'AddFusion', 'ConcatConvFusion',
    'CrossModalSS2D', 'CMSABlock', 'CMSAFusion', 'TransformerFusion'
]
