"""Paired geometric transforms keep both images pixel-aligned and the boxes on their objects."""
import random

import numpy as np
import pytest
from mmdet.registry import TRANSFORMS

from paired_samples import assert_boxes_on_markers, assert_pixel_aligned, make_marker_pair

BOXES = [(10, 12, 40, 50), (60, 20, 100, 44), (120, 70, 150, 110), (30, 80, 70, 112)]
LABELS = [0, 1, 2, 3]
H, W = 120, 160


def sample(seed=0, ir_channels=3):
    return make_marker_pair(seed, H, W, BOXES, LABELS, ir_channels)


def run(cfg, results, seed=0):
    random.seed(seed)
    np.random.seed(seed)
    return TRANSFORMS.build(cfg)(results)


CASES = {
    'resize': dict(type='PairedResize', scale=(96, 80), keep_ratio=False),
    'resize_keep_ratio': dict(type='PairedResize', scale=(240, 200), keep_ratio=True),
    'letterbox': dict(type='PairedLetterResize', scale=(128, 128)),
    'flip_h': dict(type='PairedRandomFlip', prob=1.0, direction='horizontal'),
    'flip_v': dict(type='PairedRandomFlip', prob=1.0, direction='vertical'),
    'flip_d': dict(type='PairedRandomFlip', prob=1.0, direction='diagonal'),
    'flip_random': dict(type='PairedRandomFlip', prob=[0.3, 0.3],
                        direction=['horizontal', 'vertical']),
    'crop': dict(type='PairedRandomCrop', crop_size=(90, 70), allow_negative_crop=True),
    'pad': dict(type='PairedPad', size_divisor=32, pad_val=dict(img=114)),
    'affine': dict(type='PairedRandomAffine', max_rotate_degree=8.0, max_shear_degree=2.0,
                   scaling_ratio_range=(0.7, 1.3)),
    'random_resize': dict(type='RandomResize', scale=[(100, 80), (200, 160)],
                          keep_ratio=True, resize_type='PairedResize'),
}


@pytest.mark.parametrize('ir_channels', [1, 3])
@pytest.mark.parametrize('name', sorted(CASES))
def test_transform_keeps_pair_aligned(name, ir_channels):
    for seed in range(3):
        out = run(CASES[name], sample(seed, ir_channels), seed)
        assert out['ir_img'].shape[2] == ir_channels
        assert out['img_shape'] == out['img'].shape[:2]
        assert_pixel_aligned(out)
        assert_boxes_on_markers(out, min_size=8)


def test_flip_moves_boxes_and_records_it():
    out = run(CASES['flip_h'], sample())
    assert out['flip'] and out['flip_direction'] == 'horizontal'
    np.testing.assert_allclose(out['gt_bboxes'].numpy()[0], [W - 40, 12, W - 10, 50])


def test_letterbox_centres_and_records_padding():
    out = run(CASES['letterbox'], sample())
    assert out['img'].shape == (128, 128, 3) and out['pad_shape'] == (128, 128)
    np.testing.assert_allclose(out['pad_param'], [16, 16, 0, 0])
    np.testing.assert_allclose(out['gt_bboxes'].numpy()[0], [8, 25.6, 32, 56])
    assert (out['ir_img'][:16] == 114).all()


def test_random_parameters_are_drawn_once():
    """A paired transform leaves the random state where one single-image run leaves it, and
    different seeds give different draws shared by both images."""
    from mmdet.datasets.transforms import RandomAffine
    cfg = dict(max_rotate_degree=10.0, max_translate_ratio=0.2)
    single = {k: v for k, v in sample().items() if k != 'ir_img'}
    random.seed(3)
    np.random.seed(3)
    RandomAffine(**cfg)(single)
    expected = (random.random(), np.random.rand())
    out = run(dict(type='PairedRandomAffine', **cfg), sample(), seed=3)
    assert (random.random(), np.random.rand()) == expected
    np.testing.assert_array_equal(out['img'], single['img'])
    assert_pixel_aligned(out)


def test_affine_boxes_leaving_the_canvas():
    cfg = dict(type='PairedRandomAffine', max_rotate_degree=0.0, max_shear_degree=0.0,
               max_translate_ratio=0.45, scaling_ratio_range=(0.8, 1.6))
    dropped = 0
    for seed in range(12):
        out = run(cfg, sample(seed), seed)
        assert_pixel_aligned(out)
        dropped += len(LABELS) - len(assert_boxes_on_markers(out, min_size=3))
    assert dropped > 0, 'no box left the canvas: the case is not exercised'


def mosaic_inputs(seed, ir_channels):
    """Four marker pairs (labels 0-11 across them) as MultiImageMixDataset passes them."""
    parts = []
    for i in range(4):
        rng = np.random.default_rng(seed * 10 + i)
        h, w = int(rng.integers(90, 140)), int(rng.integers(110, 180))
        boxes = [(5, 5, 35, 45), (w - 45, 10, w - 5, 40), (w // 2 - 15, h - 40, w // 2 + 15, h - 5)]
        parts.append(make_marker_pair(seed * 10 + i, h, w, boxes, [3 * i, 3 * i + 1, 3 * i + 2],
                                      ir_channels))
    results = parts[0]
    results['mix_results'] = parts[1:]
    return results


@pytest.mark.parametrize('ir_channels', [1, 3])
def test_mosaic_boxes_leaving_the_canvas(ir_channels):
    cfg = dict(type='PairedMosaic', img_scale=(128, 96), center_ratio_range=(0.5, 1.5),
               pad_val=114.0)
    dropped = 0
    for seed in range(8):
        out = run(cfg, mosaic_inputs(seed, ir_channels), seed)
        assert out['img'].shape == (192, 256, 3)
        assert out['ir_img'].shape == (192, 256, ir_channels)
        assert_pixel_aligned(out)
        dropped += 12 - len(assert_boxes_on_markers(out, min_size=3))
    assert dropped > 0, 'no box left the canvas: the case is not exercised'


def test_full_training_chain_stays_aligned():
    chain = [dict(type='PairedMosaic', img_scale=(128, 96)),
             dict(type='PairedRandomAffine', max_rotate_degree=5.0, border=(-64, -48)),
             dict(type='PairedRandomFlip', prob=0.5),
             dict(type='PairedResize', scale=(160, 160), keep_ratio=True),
             dict(type='PairedPad', size=(160, 160), pad_val=dict(img=114))]
    for seed in range(4):
        results = mosaic_inputs(seed, ir_channels=1)
        random.seed(seed)
        np.random.seed(seed)
        for cfg in chain:
            results = TRANSFORMS.build(cfg)(results)
        assert results['img'].shape[:2] == (160, 160)
        assert_pixel_aligned(results)
        assert_boxes_on_markers(results, min_size=8)


def test_paired_transform_needs_the_infrared_image():
    results = sample()
    del results['ir_img']
    with pytest.raises(KeyError, match='ir_img'):
        run(CASES['flip_h'], results)


def test_transform_with_private_randomness_is_refused():
    """A wrapped transform whose draws cannot be replayed is caught, not silently misaligned."""
    from mmcv.transforms import BaseTransform

    from fusion_mamba.datasets.transforms import PairedTransformMixin

    class PrivateShift(BaseTransform):
        rng = np.random.default_rng(0)

        def transform(self, results):
            shift = int(self.rng.integers(1, 10))
            results['img'] = np.roll(results['img'], shift, axis=1)
            results['gt_bboxes'].translate_([shift, 0])
            return results

    class PairedPrivateShift(PairedTransformMixin, PrivateShift):
        pass

    with pytest.raises(RuntimeError, match='differently'):
        PairedPrivateShift()(sample())
