"""Packing of an image pair and its annotations into model inputs and a DetDataSample."""
import numpy as np
import torch
from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS

DEFAULT_META_KEYS = ('img_id', 'img_path', 'ir_path', 'ori_shape', 'img_shape', 'pad_shape',
                     'scale_factor', 'flip', 'flip_direction', 'pad_param',
                     'dropped_modality')


def image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W, C) or (H, W) array -> contiguous (C, H, W) tensor of the same dtype."""
    if img.ndim == 2:
        img = img[..., None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@TRANSFORMS.register_module()
class PackMultiModalDetInputs(PackDetInputs):
    """mmdet ``PackDetInputs`` for a visible / infrared pair.

    Returns ``{'inputs': {'visible': Tensor (3, H, W), 'infrared': Tensor (C_ir, H, W)},
    'data_samples': DetDataSample}``, tensors of the images' dtype (uint8 from the loader).
    ``gt_instances`` / ``ignored_instances`` and the meta keys are packed as mmdet does;
    meta keys absent from the results are left out.

    Args:
        meta_keys (Sequence[str]): default adds ``ir_path``, ``pad_shape``, ``pad_param``
            and ``dropped_modality`` to mmdet's keys.
    """

    def __init__(self, meta_keys=DEFAULT_META_KEYS) -> None:
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        for key in ('img', 'ir_img'):
            if key not in results:
                raise KeyError(f'PackMultiModalDetInputs needs results[{key!r}] '
                               f'({results.get("img_path")})')
        single = {k: v for k, v in results.items() if k not in ('img', 'ir_img')}
        packed = super().transform(single)
        packed['inputs'] = {'visible': image_to_tensor(results['img']),
                            'infrared': image_to_tensor(results['ir_img'])}
        return packed
