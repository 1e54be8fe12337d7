from .paired_visualization_hook import PairedDetVisualizationHook
from .rank_sync_hook import RankSyncCheckHook, parameter_digest

__all__ = ['PairedDetVisualizationHook', 'RankSyncCheckHook', 'parameter_digest']
