"""Per-modality transforms: photometric augmentation of one modality, modality dropout."""
from typing import Dict, List, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform, Compose
from mmdet.registry import TRANSFORMS

# Modality name -> results key of its image.
MODALITY_KEYS: Dict[str, str] = {'visible': 'img', 'infrared': 'ir_img'}


def _check_modalities(modalities: Sequence[str], arg: str) -> tuple:
    modalities = (modalities, ) if isinstance(modalities, str) else tuple(modalities)
    unknown = [m for m in modalities if m not in MODALITY_KEYS]
    if not modalities or unknown:
        raise ValueError(f'{arg} must be a non-empty subset of {tuple(MODALITY_KEYS)}, '
                         f'got {modalities!r}')
    return modalities


@TRANSFORMS.register_module()
class ApplyToModality(BaseTransform):
    """Apply single-image transforms (photometric ones) to the chosen modalities only.

    For each modality in ``modalities``, its image is put in ``img`` and ``transforms`` run
    on it, so any mmdet transform reading ``img`` works (e.g. ``YOLOXHSVRandomAug``,
    ``PhotoMetricDistortion``). Random parameters are drawn independently per modality
    (photometric changes of two sensors are independent). A 1-channel infrared image is
    replicated to 3 channels for the transforms and reduced back by averaging.

    Only use transforms that keep the image size: geometric transforms must be ``Paired*``.

    Args:
        transforms (list[dict]): configs of the transforms.
        modalities (str | Sequence[str]): ``'visible'`` (default) and / or ``'infrared'``.
    """

    def __init__(self, transforms: List[Union[dict, callable]],
                 modalities: Union[str, Sequence[str]] = ('visible', )) -> None:
        self.transforms = Compose(transforms)
        self.modalities = _check_modalities(modalities, 'modalities')

    def transform(self, results: dict) -> dict:
        for modality in self.modalities:
            key = MODALITY_KEYS[modality]
            img = results[key]
            channels = img.shape[2]
            view = {k: v for k, v in results.items() if k not in MODALITY_KEYS.values()}
            view['img'] = np.repeat(img, 3, axis=2) if channels == 1 else img
            out = self.transforms(view)
            if out is None:
                raise RuntimeError(f'{self.transforms} dropped the sample: ApplyToModality '
                                   'only takes transforms that always return a result')
            new_img = out['img']
            if new_img.shape[:2] != img.shape[:2]:
                raise ValueError(f'ApplyToModality: {self.transforms} changed the image size '
                                 f'{img.shape[:2]} -> {new_img.shape[:2]}; use Paired* '
                                 'transforms for geometry')
            if channels == 1:
                new_img = new_img.mean(axis=2, keepdims=True).round().astype(img.dtype)
            results[key] = new_img
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(transforms={self.transforms}, '
                f'modalities={self.modalities})')


@TRANSFORMS.register_module()
class RandomModalityDropout(BaseTransform):
    """With probability ``prob``, replace the image of one modality by a blank or noise image
    (a failed sensor). At most one modality is dropped per sample; the other is untouched.

    With ``prob=1`` and a single modality it is the robustness-evaluation transform
    (e.g. ``modalities=('infrared',)``: every infrared image blanked).

    Added key: ``dropped_modality`` ('visible', 'infrared' or None).

    Args:
        prob (float): probability to drop a modality. Default 0.1.
        modalities (Sequence[str]): modalities that may be dropped, one chosen uniformly.
            Default both.
        mode (str): ``'zero'`` (all 0), ``'mean'`` (the image's mean value per channel) or
            ``'noise'`` (uniform noise in [0, 255]). Default ``'zero'``.
    """
    MODES = ('zero', 'mean', 'noise')

    def __init__(self, prob: float = 0.1,
                 modalities: Sequence[str] = ('visible', 'infrared'),
                 mode: str = 'zero') -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if mode not in self.MODES:
            raise ValueError(f'mode must be one of {self.MODES}, got {mode!r}')
        self.prob = prob
        self.modalities = _check_modalities(modalities, 'modalities')
        self.mode = mode

    def transform(self, results: dict) -> dict:
        # Both draws are made for every sample, so the random stream does not depend on prob.
        drop = np.random.rand() < self.prob
        modality = self.modalities[np.random.randint(len(self.modalities))]
        results['dropped_modality'] = modality if drop else None
        if not drop:
            return results
        key = MODALITY_KEYS[modality]
        img = results[key]
        if self.mode == 'zero':
            results[key] = np.zeros_like(img)
        elif self.mode == 'mean':
            mean = img.reshape(-1, img.shape[2]).mean(axis=0)
            results[key] = np.broadcast_to(mean, img.shape).round().astype(img.dtype)
        else:
            results[key] = np.random.randint(0, 256, size=img.shape).astype(img.dtype)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, modalities={self.modalities}, '
                f'mode={self.mode!r})')
