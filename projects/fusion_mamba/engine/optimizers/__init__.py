from .no_decay_flag_constructor import NO_DECAY_FLAG, StateSpaceOptimWrapperConstructor

__all__ = ['NO_DECAY_FLAG', 'StateSpaceOptimWrapperConstructor']
