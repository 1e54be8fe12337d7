"""Per-modality photometric transforms and modality dropout."""
import numpy as np
import pytest
from mmdet.registry import TRANSFORMS

from paired_samples import make_marker_pair

HSV = dict(type='YOLOXHSVRandomAug', hue_delta=20, saturation_delta=60, value_delta=60)


def sample(ir_channels=3):
    return make_marker_pair(0, 60, 80, [(10, 10, 30, 40)], [0], ir_channels)


@pytest.mark.parametrize('modalities, changed', [(('visible', ), 'img'),
                                                 (('infrared', ), 'ir_img')])
def test_apply_to_modality_touches_only_that_modality(modalities, changed):
    np.random.seed(1)
    before = sample()
    out = TRANSFORMS.build(dict(type='ApplyToModality', transforms=[HSV],
                                modalities=modalities))(sample())
    untouched = 'ir_img' if changed == 'img' else 'img'
    np.testing.assert_array_equal(out[untouched], before[untouched])
    assert not np.array_equal(out[changed], before[changed])
    np.testing.assert_array_equal(out['gt_bboxes'].numpy(), before['gt_bboxes'].numpy())


def test_apply_to_modality_keeps_one_channel_infrared():
    np.random.seed(2)
    out = TRANSFORMS.build(dict(type='ApplyToModality', modalities='infrared', transforms=[
        dict(type='YOLOXHSVRandomAug', hue_delta=0, saturation_delta=0, value_delta=60)
    ]))(sample(ir_channels=1))
    assert out['ir_img'].shape == (60, 80, 1) and out['ir_img'].dtype == np.uint8


def test_apply_to_modality_rejects_geometry():
    with pytest.raises(ValueError, match='changed the image size'):
        TRANSFORMS.build(dict(type='ApplyToModality',
                              transforms=[dict(type='Resize', scale=(40, 30))]))(sample())


def test_apply_to_modality_rejects_unknown_modality():
    with pytest.raises(ValueError, match='modalities'):
        TRANSFORMS.build(dict(type='ApplyToModality', transforms=[HSV], modalities='thermal'))


@pytest.mark.parametrize('mode', ['zero', 'mean', 'noise'])
@pytest.mark.parametrize('modality', ['visible', 'infrared'])
def test_dropout_with_prob_one_blanks_the_chosen_modality(mode, modality):
    before = sample(ir_channels=1)
    out = TRANSFORMS.build(dict(type='RandomModalityDropout', prob=1.0, modalities=[modality],
                                mode=mode))(sample(ir_channels=1))
    key, other = ('img', 'ir_img') if modality == 'visible' else ('ir_img', 'img')
    assert out['dropped_modality'] == modality
    np.testing.assert_array_equal(out[other], before[other])
    assert out[key].shape == before[key].shape and out[key].dtype == np.uint8
    if mode == 'zero':
        assert not out[key].any()
    elif mode == 'mean':
        assert np.ptp(out[key].reshape(-1, out[key].shape[2]), axis=0).max() == 0
    else:
        assert out[key].std() > 50  # uniform noise, not the image


def test_dropout_rate_and_never_both():
    np.random.seed(0)
    drop = TRANSFORMS.build(dict(type='RandomModalityDropout', prob=0.3))
    counts = {None: 0, 'visible': 0, 'infrared': 0}
    for _ in range(2000):
        out = drop(sample())
        counts[out['dropped_modality']] += 1
        assert out['img'].any() or out['ir_img'].any()
    assert abs(counts['visible'] + counts['infrared'] - 600) < 90
    assert abs(counts['visible'] - counts['infrared']) < 110


@pytest.mark.parametrize('kwargs', [dict(prob=1.5), dict(mode='blur'),
                                    dict(modalities=())])
def test_dropout_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        TRANSFORMS.build(dict(type='RandomModalityDropout', **kwargs))
