"""Config lookup, model + checkpoint loading and the inference pipeline of the inferencer."""
import glob
import os.path as osp
import warnings
from pathlib import Path
from typing import Tuple, Union

from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.runner import load_checkpoint

#: The repository's configs folder (present in a source checkout / editable install).
CONFIG_ROOT = Path(__file__).resolve().parents[3] / 'configs'
LOADER = 'LoadPairedImagesFromFile'


def find_config(name: str) -> str:
    """The path of a config: ``name`` itself if it is a file, else the config of that name
    under the repository's ``configs/`` (``fm-yolov8_demo_1xb8-5e_demo-pairs``, with or
    without ``.py`` or a folder such as ``fusion_mamba/``).

    Raises ``FileNotFoundError`` (where it looked) or ``ValueError`` (several matches).
    """
    if osp.isfile(name):
        return name
    stem = name[:-3] if name.endswith('.py') else name
    matches = sorted(glob.glob(str(CONFIG_ROOT / '**' / f'{stem}.py'), recursive=True))
    if not matches:
        raise FileNotFoundError(f'config not found: {name} is not a file and there is no '
                                f'{stem}.py under {CONFIG_ROOT}')
    if len(matches) > 1:
        raise ValueError(f'config name {name} is ambiguous: {", ".join(matches)}')
    return matches[0]


def dataset_meta(cfg: Config, checkpoint: dict) -> dict:
    """Class names / palette of the checkpoint's ``dataset_meta``, else of the config's test
    dataset (its class's ``METAINFO`` updated by the config's ``metainfo``); the palette is
    ``'random'`` when neither has one."""
    from mmdet.registry import DATASETS
    meta = checkpoint.get('meta', {}).get('dataset_meta')
    if meta:
        meta = {k.lower(): v for k, v in meta.items()}
    else:
        dataset_cfg = cfg.test_dataloader.dataset
        dataset_cls = DATASETS.get(dataset_cfg.type)
        if dataset_cls is None:
            raise KeyError(f'test_dataloader.dataset.type {dataset_cfg.type!r} is not '
                           'registered')
        meta = dict(getattr(dataset_cls, 'METAINFO', {}), **dataset_cfg.get('metainfo', {}))
        if 'classes' not in meta:
            raise ValueError(f'no class names: the checkpoint has no meta.dataset_meta and '
                             f'{dataset_cfg.type} has no METAINFO classes')
    meta.setdefault('palette', 'random')
    return meta


def build_detector(cfg: Config, weights: Union[str, None]) -> Tuple[object, dict]:
    """The config's model (on the CPU, eval mode) with ``weights`` loaded and
    ``dataset_meta`` set, and the checkpoint dict (``{}`` without weights: the model then
    keeps its random initialisation, with a warning)."""
    from mmdet.registry import MODELS
    from mmengine.model import revert_sync_batchnorm
    model = MODELS.build(cfg.model)
    if weights is None:
        warnings.warn('no checkpoint given: the detector is randomly initialised')
        checkpoint = {}
    else:
        checkpoint = load_checkpoint(model, weights, map_location='cpu')
    model.dataset_meta = dataset_meta(cfg, checkpoint)
    return revert_sync_batchnorm(model).eval(), checkpoint


def inference_pipeline(cfg: Config) -> Tuple[Compose, object]:
    """The config's test pipeline for in-memory pairs: without ``LoadAnnotations``, its
    ``LoadPairedImagesFromFile`` replaced by ``LoadPairedImagesFromNDArray`` with the same
    arguments. Returns the pipeline and that loader (its ``color_type`` /
    ``ir_color_type`` say how to read image files for it)."""
    from fusion_mamba.datasets.transforms import LoadPairedImagesFromNDArray
    steps = []
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'].endswith('LoadAnnotations'):
            continue
        if step['type'].split('.')[-1] == LOADER:
            step = dict(step, type='LoadPairedImagesFromNDArray')
        steps.append(step)
    pipeline = Compose(steps)
    loaders = [t for t in pipeline.transforms if isinstance(t, LoadPairedImagesFromNDArray)]
    if not loaders:
        raise ValueError(f'the test pipeline has no {LOADER} step to load image pairs')
    return pipeline, loaders[0]
