"""Fusion-Mamba: RGB + thermal-infrared object detection with state-space fusion.

Importing ``fusion_mamba`` registers every component (models, datasets, transforms,
metrics) in MMDetection's registries, so configs only need::

    custom_imports = dict(imports=['fusion_mamba'], allow_failed_imports=False)

The scan operators in :mod:`fusion_mamba.ops` depend on torch alone (Triton on CUDA); when
mmdet is not installed, importing the package gives access to them and registers nothing.
"""
import importlib.util

from .version import __version__

MMDET_AVAILABLE = importlib.util.find_spec('mmdet') is not None

if MMDET_AVAILABLE:
    from . import datasets, engine, evaluation, models  # noqa: F401  registers components
    from .apis import FusionMambaInferencer
    from .utils import allow_mmengine_checkpoints

    # Since torch 2.6 ``torch.load`` defaults to ``weights_only=True`` and mmengine calls it
    # without the argument; allow-list the types mmengine's own checkpoints contain.
    allow_mmengine_checkpoints()

__all__ = ['__version__', 'MMDET_AVAILABLE'] + (['FusionMambaInferencer']
                                                if MMDET_AVAILABLE else [])
