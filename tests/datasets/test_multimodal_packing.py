"""PackMultiModalDetInputs: the contract with the model's data preprocessor."""
import numpy as np
import pytest
import torch
from mmdet.registry import TRANSFORMS
from mmdet.structures import DetDataSample
from mmengine.dataset import pseudo_collate

from paired_samples import make_marker_pair


def packed(ir_channels, ignore_second=False):
    results = make_marker_pair(0, 60, 80, [(10, 10, 30, 40), (40, 5, 70, 50)], [0, 1],
                               ir_channels)
    results.update(img_id=7, scale_factor=(1.0, 1.0), flip=False, flip_direction=None)
    results['gt_ignore_flags'][1] = ignore_second
    return TRANSFORMS.build(dict(type='PackMultiModalDetInputs'))(results), results


@pytest.mark.parametrize('ir_channels', [1, 3])
def test_inputs_are_uint8_chw_tensors(ir_channels):
    out, results = packed(ir_channels)
    visible, infrared = out['inputs']['visible'], out['inputs']['infrared']
    assert visible.dtype == infrared.dtype == torch.uint8
    assert visible.shape == (3, 60, 80) and infrared.shape == (ir_channels, 60, 80)
    assert visible.is_contiguous() and infrared.is_contiguous()
    np.testing.assert_array_equal(visible.permute(1, 2, 0).numpy(), results['img'])
    np.testing.assert_array_equal(infrared.permute(1, 2, 0).numpy(), results['ir_img'])


def test_data_sample_carries_boxes_and_meta():
    out, _ = packed(3, ignore_second=True)
    sample = out['data_samples']
    assert isinstance(sample, DetDataSample)
    assert sample.gt_instances.labels.tolist() == [0]
    assert sample.ignored_instances.labels.tolist() == [1]
    meta = sample.metainfo
    for key in ('img_id', 'img_path', 'ir_path', 'ori_shape', 'img_shape', 'scale_factor',
                'flip', 'flip_direction'):
        assert key in meta, key
    assert meta['ir_path'] == 'ir_0.png' and 'pad_shape' not in meta


def test_pseudo_collate_gives_lists_per_modality():
    batch = pseudo_collate([packed(1)[0], packed(1)[0]])
    assert set(batch['inputs']) == {'visible', 'infrared'}
    assert [t.shape[0] for t in batch['inputs']['infrared']] == [1, 1]
    assert len(batch['data_samples']) == 2


def test_missing_infrared_is_an_error():
    results = make_marker_pair(0, 20, 20, [], [])
    del results['ir_img']
    with pytest.raises(KeyError, match='ir_img'):
        TRANSFORMS.build(dict(type='PackMultiModalDetInputs'))(results)
