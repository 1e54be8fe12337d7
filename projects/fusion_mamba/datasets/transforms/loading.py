"""Loading of a registered visible / infrared image pair."""
from typing import Optional

import cv2
import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmdet.registry import TRANSFORMS

IR_COLOR_TYPES = ('color', 'grayscale', 'unchanged')


def read_image(path: str, color_type: str, backend: str,
               backend_args: Optional[dict] = None) -> np.ndarray:
    """Read one image file with checks that name the file.

    Returns:
        np.ndarray: (H, W, C) array; a single-channel image keeps its channel axis (C = 1).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is empty, cannot be decoded, or decodes to a 0-sized image.
    """
    if not fileio.exists(path, backend_args=backend_args):
        raise FileNotFoundError(f'image file not found: {path}')
    img_bytes = fileio.get(path, backend_args=backend_args)
    if len(img_bytes) == 0:
        raise ValueError(f'image file is empty (0 bytes): {path}')
    try:
        img = mmcv.imfrombytes(img_bytes, flag=color_type, backend=backend)
    except Exception as err:  # decoders raise many types on corrupt data
        raise ValueError(f'cannot decode image file {path}: {err}') from err
    if img is None:
        raise ValueError(f'cannot decode image file (corrupt or not an image): {path}')
    if img.size == 0:
        raise ValueError(f'image file decodes to an empty image {img.shape}: {path}')
    if img.ndim == 2:
        img = img[..., None]
    return img


@TRANSFORMS.register_module()
class LoadPairedImagesFromFile(LoadImageFromFile):
    """Load the visible image (``img_path``) and the infrared image (``ir_path``).

    Added keys: ``img`` (H, W, 3) uint8 BGR, ``ir_img`` (H, W, C_ir) uint8, ``img_shape``,
    ``ori_shape`` (both (H, W)).  ``ir_img`` always keeps a channel axis: C_ir = 3 with
    ``ir_color_type='color'`` (a 1-channel file is replicated), 1 with ``'grayscale'`` (a
    3-channel gray file is converted).

    Args:
        ir_color_type (str): ``'color'`` (default), ``'grayscale'`` or ``'unchanged'``.
        resize_ir_to_visible (bool): if the two images differ in size, resize the infrared
            image to the visible size (bilinear) instead of raising. Default False: a size
            mismatch means the pair is not registered, which is an error.
        **kwargs: arguments of mmcv's ``LoadImageFromFile`` (``to_float32``, ``color_type``
            for the visible image, ``imdecode_backend``, ``backend_args``).

    Raises:
        FileNotFoundError: a missing visible or infrared file (the message names it).
        ValueError: an empty or unreadable file, or a size mismatch between the two images
            (the message names both files and sizes).
    """

    def __init__(self, ir_color_type: str = 'color', resize_ir_to_visible: bool = False,
                 **kwargs) -> None:
        if kwargs.get('ignore_empty'):
            raise ValueError('LoadPairedImagesFromFile does not support ignore_empty: a '
                             'missing image is always an error naming the file')
        super().__init__(**kwargs)
        if ir_color_type not in IR_COLOR_TYPES:
            raise ValueError(f'ir_color_type must be one of {IR_COLOR_TYPES}, '
                             f'got {ir_color_type!r}')
        self.ir_color_type = ir_color_type
        self.resize_ir_to_visible = resize_ir_to_visible

    def transform(self, results: dict) -> dict:
        if 'ir_path' not in results:
            raise KeyError(f"no 'ir_path' for {results.get('img_path')}: the dataset must be "
                           'a paired dataset (image records with ir_file_name)')
        img = read_image(results['img_path'], self.color_type, self.imdecode_backend,
                         self.backend_args)
        ir_img = read_image(results['ir_path'], self.ir_color_type, self.imdecode_backend,
                            self.backend_args)
        return self._set_pair(results, img, ir_img)

    def _set_pair(self, results: dict, img: np.ndarray, ir_img: np.ndarray) -> dict:
        """Check (or fix) the pair's sizes and store both images with their shapes."""
        if img.shape[:2] != ir_img.shape[:2]:
            visible = results.get('img_path', 'the visible image')
            infrared = results.get('ir_path', 'the infrared image')
            if not self.resize_ir_to_visible:
                raise ValueError(
                    f'visible / infrared size mismatch: {visible} is '
                    f'{img.shape[1]}x{img.shape[0]}, {infrared} is '
                    f'{ir_img.shape[1]}x{ir_img.shape[0]} (W x H); set '
                    'resize_ir_to_visible=True to resize the infrared image')
            channels = ir_img.shape[2]
            ir_img = mmcv.imresize(ir_img, (img.shape[1], img.shape[0]))
            ir_img = ir_img.reshape(img.shape[0], img.shape[1], channels)
        if self.to_float32:
            img = img.astype(np.float32)
            ir_img = ir_img.astype(np.float32)
        results['img'] = img
        results['ir_img'] = ir_img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(color_type={self.color_type!r}, '
                f'ir_color_type={self.ir_color_type!r}, '
                f'resize_ir_to_visible={self.resize_ir_to_visible}, '
                f'to_float32={self.to_float32}, imdecode_backend={self.imdecode_backend!r})')


def convert_color(img: np.ndarray, color_type: str) -> np.ndarray:
    """An image array in the layout ``read_image(path, color_type)`` would give.

    Args:
        img: (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA.
        color_type: ``'color'`` -> (H, W, 3) BGR, ``'grayscale'`` -> (H, W, 1),
            ``'unchanged'`` -> as given, with a channel axis.
    """
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ValueError(f'expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, '
                         f'got shape {img.shape}')
    channels = img.shape[2]
    if color_type == 'color' and channels != 3:
        code = cv2.COLOR_GRAY2BGR if channels == 1 else cv2.COLOR_BGRA2BGR
        return cv2.cvtColor(img, code)
    if color_type == 'grayscale' and channels != 1:
        code = cv2.COLOR_BGR2GRAY if channels == 3 else cv2.COLOR_BGRA2GRAY
        return cv2.cvtColor(img, code)[..., None]
    return img


@TRANSFORMS.register_module()
class LoadPairedImagesFromNDArray(LoadPairedImagesFromFile):
    """:class:`LoadPairedImagesFromFile` for a pair already in memory (inference on arrays
    or video frames): ``results['img']`` (visible, BGR as OpenCV reads it) and
    ``results['ir_img']`` are converted to the loader's ``color_type`` / ``ir_color_type``
    layouts and checked like loaded files. ``img_path`` / ``ir_path``, when present, only
    name the images in error messages.

    Args: those of :class:`LoadPairedImagesFromFile`.
    """

    def transform(self, results: dict) -> dict:
        for key in ('img', 'ir_img'):
            if not isinstance(results.get(key), np.ndarray):
                raise TypeError(f'LoadPairedImagesFromNDArray needs results[{key!r}] as a '
                                f'numpy array, got {type(results.get(key)).__name__}')
        return self._set_pair(results, convert_color(results['img'], self.color_type),
                              convert_color(results['ir_img'], self.ir_color_type))
