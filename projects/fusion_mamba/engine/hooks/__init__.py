from .paired_visualization_hook import PairedDetVisualizationHook

__all__ = ['PairedDetVisualizationHook']
