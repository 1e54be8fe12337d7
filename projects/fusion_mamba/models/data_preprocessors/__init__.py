from .multimodal_preprocessor import MultiModalDetDataPreprocessor

__all__ = ['MultiModalDetDataPreprocessor']
