"""Inference on visible + infrared pairs: :class:`FusionMambaInferencer` and its inputs."""
from .inferencer import FusionMambaInferencer, PairPrediction
from .inputs import ImagePair, PairStream, collect_pairs, folder_pairs, video_pairs
from .video import PairedVideoReader

__all__ = [
    'FusionMambaInferencer', 'PairPrediction', 'ImagePair', 'PairStream', 'collect_pairs',
    'folder_pairs', 'video_pairs', 'PairedVideoReader'
]
