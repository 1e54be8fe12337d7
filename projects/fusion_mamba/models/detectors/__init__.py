from .multimodal_detector import MultiModalDetector

__all__ = ['MultiModalDetector']
