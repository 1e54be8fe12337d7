"""The benchmark datasets and the built-in demo dataset: paired COCO with fixed classes."""
from mmdet.registry import DATASETS

from .classes import (DEMO_CLASSES, FLIR_ALIGNED_CLASSES, KAIST_CLASSES, LLVIP_CLASSES,
                      M3FD_CLASSES, palette_of)
from .demo import DEFAULT_DEMO_ROOT, ensure_demo_dataset
from .paired_coco import PairedCocoDataset


def _metainfo(classes: tuple) -> dict:
    return dict(classes=classes, palette=palette_of(classes))


@DATASETS.register_module()
class LLVIPDataset(PairedCocoDataset):
    """LLVIP (1280x1024 night-time pedestrians), converted by
    ``tools/dataset_converters/llvip.py``."""
    METAINFO = _metainfo(LLVIP_CLASSES)


@DATASETS.register_module()
class M3FDDataset(PairedCocoDataset):
    """M3FD (1024x768, 6 classes), converted by ``tools/dataset_converters/m3fd.py``."""
    METAINFO = _metainfo(M3FD_CLASSES)


@DATASETS.register_module()
class FLIRAlignedDataset(PairedCocoDataset):
    """FLIR-Aligned (640x512, person / car / bicycle), converted by
    ``tools/dataset_converters/flir_aligned.py``."""
    METAINFO = _metainfo(FLIR_ALIGNED_CLASSES)


@DATASETS.register_module()
class KAISTDataset(PairedCocoDataset):
    """KAIST multispectral pedestrians (640x512), converted by
    ``tools/dataset_converters/kaist.py``; annotations carry ``height``, ``occlusion``,
    ``ignore`` and images a ``condition`` ('day' / 'night') for the MR^-2 metric."""
    METAINFO = _metainfo(KAIST_CLASSES)


@DATASETS.register_module()
class DemoPairsDataset(PairedCocoDataset):
    """The built-in procedural RGB / IR demo dataset, generated on first use.

    Before loading, ``ensure_demo_dataset(data_root, **generator)`` creates the data (a few
    seconds) when it is missing or was made with other parameters.

    Args:
        data_root (str): where the demo data lives. Default ``'data/demo_pairs'``.
        generator (dict, optional): arguments of :func:`generate_demo_dataset` (``seed``,
            ``num_train``, ``num_val``, ``img_size`` ...). Default: its defaults.
        **kwargs: arguments of ``PairedCocoDataset`` (``ann_file`` e.g.
            ``'annotations/train.json'``, ``pipeline``, ``filter_cfg`` ...).
    """
    METAINFO = _metainfo(DEMO_CLASSES)

    def __init__(self, data_root: str = DEFAULT_DEMO_ROOT, generator: dict = None,
                 **kwargs) -> None:
        ensure_demo_dataset(data_root, **(generator or {}))
        super().__init__(data_root=data_root, **kwargs)
