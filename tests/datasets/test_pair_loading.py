"""LoadPairedImagesFromFile: shapes per ir_color_type, and a clear error for each bad input."""
import cv2
import numpy as np
import pytest

from fusion_mamba.datasets.transforms import LoadPairedImagesFromFile


def write(path, img):
    assert cv2.imwrite(str(path), img)
    return str(path)


@pytest.fixture
def pair(tmp_path):
    """A 3-channel visible PNG and a 1-channel infrared PNG of 40x30."""
    rng = np.random.default_rng(0)
    visible = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    infrared = rng.integers(0, 255, (30, 40), dtype=np.uint8)
    return dict(img_path=write(tmp_path / 'v.png', visible),
                ir_path=write(tmp_path / 'i.png', infrared)), visible, infrared


@pytest.mark.parametrize('ir_color_type, channels',
                         [('color', 3), ('grayscale', 1), ('unchanged', 1)])
def test_loads_both_images(pair, ir_color_type, channels):
    paths, visible, infrared = pair
    out = LoadPairedImagesFromFile(ir_color_type=ir_color_type)(dict(paths))
    np.testing.assert_array_equal(out['img'], visible)
    assert out['ir_img'].shape == (30, 40, channels) and out['ir_img'].dtype == np.uint8
    for c in range(channels):
        np.testing.assert_array_equal(out['ir_img'][..., c], infrared)
    assert out['img_shape'] == out['ori_shape'] == (30, 40)


def test_three_channel_gray_infrared_to_grayscale(llvip_mini):
    paths = dict(img_path=str(llvip_mini / 'visible/train/010001.jpg'),
                 ir_path=str(llvip_mini / 'infrared/train/010001.jpg'))
    out = LoadPairedImagesFromFile(ir_color_type='grayscale')(paths)
    assert out['img'].shape == (1024, 1280, 3) and out['ir_img'].shape == (1024, 1280, 1)


@pytest.mark.parametrize('broken', ['img_path', 'ir_path'])
def test_missing_file_is_named(pair, broken):
    paths, _, _ = pair
    paths[broken] = paths[broken].replace('.png', '_gone.png')
    with pytest.raises(FileNotFoundError, match='_gone.png'):
        LoadPairedImagesFromFile()(paths)


@pytest.mark.parametrize('content, message',
                         [(b'', 'empty'), (b'not an image at all', 'cannot decode')])
@pytest.mark.parametrize('broken', ['img_path', 'ir_path'])
def test_unreadable_or_empty_file_is_named(pair, tmp_path, broken, content, message):
    paths, _, _ = pair
    bad = tmp_path / 'bad.png'
    bad.write_bytes(content)
    paths[broken] = str(bad)
    with pytest.raises(ValueError, match=f'{message}.*bad.png'):
        LoadPairedImagesFromFile()(paths)


def test_size_mismatch_names_both_files(pair, tmp_path):
    paths, _, _ = pair
    paths['ir_path'] = write(tmp_path / 'small.png', np.zeros((15, 20), np.uint8))
    with pytest.raises(ValueError, match=r'mismatch.*v\.png is 40x30.*small\.png is 20x15'):
        LoadPairedImagesFromFile()(paths)


def test_size_mismatch_can_resize_infrared(pair, tmp_path):
    paths, _, _ = pair
    paths['ir_path'] = write(tmp_path / 'small.png', np.full((15, 20), 77, np.uint8))
    out = LoadPairedImagesFromFile(ir_color_type='grayscale', resize_ir_to_visible=True)(paths)
    assert out['ir_img'].shape == (30, 40, 1) and (out['ir_img'] == 77).all()


def test_missing_ir_path_key():
    with pytest.raises(KeyError, match='ir_path'):
        LoadPairedImagesFromFile()(dict(img_path='x.png'))


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match='ir_color_type'):
        LoadPairedImagesFromFile(ir_color_type='rgb')
    with pytest.raises(ValueError, match='ignore_empty'):
        LoadPairedImagesFromFile(ignore_empty=True)
