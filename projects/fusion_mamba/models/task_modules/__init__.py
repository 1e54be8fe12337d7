from .assigners import BatchTaskAlignedAssigner

__all__ = ['BatchTaskAlignedAssigner']
