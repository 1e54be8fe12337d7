"""Batch pre-processing of paired visible + infrared inputs."""
from numbers import Number
from typing import Optional, Sequence, Union

import torch
from mmengine.model.utils import stack_batch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS

MODALITIES = ('visible', 'infrared')


@MODELS.register_module()
class MultiModalDetDataPreprocessor(DetDataPreprocessor):
    """Normalise each modality with its own mean / std and pad both identically.

    Takes ``data['inputs'] = {'visible': [uint8 (3, H, W), ...], 'infrared': [uint8
    (C_ir, H, W), ...]}`` (what ``PackMultiModalDetInputs`` + ``pseudo_collate`` give) and
    returns ``{'visible': (B, 3, H', W'), 'infrared': (B, C_ir, H', W')}`` float tensors, with
    H', W' the batch maximum rounded up to ``pad_size_divisor``. The visible path is mmdet's
    :class:`DetDataPreprocessor` (it also writes ``batch_input_shape`` / ``pad_shape`` into the
    data samples); the infrared images get the same padding.

    Args:
        mean, std: Visible channel statistics (after ``bgr_to_rgb``).
        ir_mean, ir_std: Infrared statistics, one value per infrared channel (1 or 3).
        bgr_to_rgb (bool): Flip the visible channels (mmcv loads BGR).
        Other arguments: as :class:`DetDataPreprocessor`; batch augmentations are refused
        because they would move only the visible images.
    """

    def __init__(self,
                 mean: Sequence[Number] = (0., 0., 0.),
                 std: Sequence[Number] = (255., 255., 255.),
                 ir_mean: Sequence[Number] = (0., 0., 0.),
                 ir_std: Sequence[Number] = (255., 255., 255.),
                 pad_size_divisor: int = 32,
                 pad_value: Union[float, int] = 0,
                 bgr_to_rgb: bool = True,
                 boxtype2tensor: bool = True,
                 non_blocking: Optional[bool] = False,
                 batch_augments: Optional[list] = None):
        if batch_augments:
            raise ValueError('MultiModalDetDataPreprocessor: batch_augments would transform '
                             'the visible images only; use paired pipeline transforms')
        if len(ir_mean) != len(ir_std):
            raise ValueError(f'ir_mean {tuple(ir_mean)} and ir_std {tuple(ir_std)} must have '
                             'one value per infrared channel')
        super().__init__(mean=mean, std=std, pad_size_divisor=pad_size_divisor,
                         pad_value=pad_value, bgr_to_rgb=bgr_to_rgb,
                         boxtype2tensor=boxtype2tensor, non_blocking=non_blocking)
        self.register_buffer('ir_mean', torch.tensor(ir_mean, dtype=torch.float32).view(-1, 1, 1),
                             False)
        self.register_buffer('ir_std', torch.tensor(ir_std, dtype=torch.float32).view(-1, 1, 1),
                             False)

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data.get('inputs')
        if not isinstance(inputs, dict) or set(inputs) != set(MODALITIES):
            got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise TypeError(f'MultiModalDetDataPreprocessor expects inputs with keys '
                            f'{MODALITIES}, got {got}; pack samples with '
                            'PackMultiModalDetInputs')
        visible, infrared = list(inputs['visible']), list(inputs['infrared'])
        for k, (v, i) in enumerate(zip(visible, infrared)):
            if v.shape[-2:] != i.shape[-2:]:
                raise ValueError(f'sample {k}: visible {tuple(v.shape)} and infrared '
                                 f'{tuple(i.shape)} sizes differ')
            if i.shape[0] != self.ir_mean.shape[0]:
                raise ValueError(f'sample {k}: infrared has {i.shape[0]} channels but ir_mean '
                                 f'has {self.ir_mean.shape[0]} values')
        out = super().forward(dict(data, inputs=visible), training)
        ir = [(self.cast_data(i).float() - self.ir_mean) / self.ir_std for i in infrared]
        ir = stack_batch(ir, self.pad_size_divisor, self.pad_value)
        out['inputs'] = dict(visible=out['inputs'], infrared=ir)
        return out
