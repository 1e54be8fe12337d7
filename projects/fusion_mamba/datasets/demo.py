"""The built-in demo dataset: procedural RGB / thermal pairs in paired COCO format.

``ensure_demo_dataset()`` generates it on first use (about 5 s on one CPU core for the
default 400 + 100 pairs of 320x256) into ``data/demo_pairs/``::

    data/demo_pairs/
        visible/{train,val}/000000.jpg     (H, W, 3) BGR JPEG
        infrared/{train,val}/000000.jpg    (H, W) single-channel JPEG
        annotations/{train,val}.json       paired COCO (file_name + ir_file_name)
        meta.json                          generator version and parameters

Every image is drawn from its own generator seeded by (seed, split, index), so the data is
a pure function of the parameters. Scenes, classes and their visibility per modality are
described in :mod:`fusion_mamba.datasets.demo_scene`.
"""
import json
import os
import os.path as osp
import shutil
import time
from contextlib import contextmanager
from typing import Tuple

import cv2
import numpy as np

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from .classes import DEMO_CLASSES
from .demo_scene import VISIBILITY, render_pair

DEFAULT_DEMO_ROOT = 'data/demo_pairs'
GENERATOR_VERSION = 1  # bump when the drawing changes: ensure_demo_dataset regenerates
SPLITS = ('train', 'val')
JPEG_QUALITY = 92


def _coco_record(img_id: int, split: str, width: int, height: int, night: bool,
                 ir_offset: Tuple[int, int]) -> dict:
    name = f'{img_id - 1:06d}.jpg'
    return dict(id=img_id, file_name=f'visible/{split}/{name}',
                ir_file_name=f'infrared/{split}/{name}', width=width, height=height,
                condition='night' if night else 'day', ir_offset=list(ir_offset))


def _write_split(root: str, split: str, split_index: int, count: int, seed: int,
                 img_size: Tuple[int, int], night_ratio: float, max_offset: int) -> dict:
    width, height = img_size
    for modality in ('visible', 'infrared'):
        os.makedirs(osp.join(root, modality, split), exist_ok=True)
    images, annotations = [], []
    for index in range(count):
        rng = np.random.default_rng([seed, split_index, index])
        night = bool(rng.random() < night_ratio)
        offset = tuple(int(v) for v in rng.integers(-max_offset, max_offset + 1, size=2))
        rgb, ir, boxes = render_pair(rng, width, height, night, offset)
        record = _coco_record(index + 1, split, width, height, night, offset)
        for key, img in (('file_name', rgb), ('ir_file_name', ir)):
            ok = cv2.imwrite(osp.join(root, record[key]), img,
                             [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise OSError(f'cannot write {osp.join(root, record[key])}')
        images.append(record)
        for name, (x0, y0, x1, y1) in boxes:
            w, h = x1 - x0, y1 - y0
            annotations.append(dict(
                id=len(annotations) + 1, image_id=record['id'],
                category_id=DEMO_CLASSES.index(name) + 1,
                bbox=[round(x0, 2), round(y0, 2), round(w, 2), round(h, 2)],
                area=round(w * h, 2), iscrowd=0,
                visible_in=list(VISIBILITY[name][int(night)])))
    coco = dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=name) for i, name in enumerate(DEMO_CLASSES)])
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    with open(osp.join(root, 'annotations', f'{split}.json'), 'w') as f:
        json.dump(coco, f)
    return dict(images=len(images), boxes=len(annotations))


def demo_params(seed: int = 0, num_train: int = 400, num_val: int = 100,
                img_size: Tuple[int, int] = (320, 256), night_ratio: float = 0.5,
                max_offset: int = 2) -> dict:
    """Validated generator parameters, as stored in ``meta.json``."""
    if num_train < 1 or num_val < 1:
        raise ValueError(f'num_train and num_val must be >= 1, got {num_train}, {num_val}')
    if len(img_size) != 2 or min(img_size) < 128:
        raise ValueError(f'img_size must be (W, H) with both >= 128, got {img_size}')
    if not 0 <= night_ratio <= 1:
        raise ValueError(f'night_ratio must be in [0, 1], got {night_ratio}')
    if not 0 <= max_offset <= 8:
        raise ValueError(f'max_offset must be in [0, 8] pixels, got {max_offset}')
    return dict(version=GENERATOR_VERSION, seed=int(seed), num_train=int(num_train),
                num_val=int(num_val), img_size=[int(v) for v in img_size],
                night_ratio=float(night_ratio), max_offset=int(max_offset))


def generate_demo_dataset(out_dir: str = DEFAULT_DEMO_ROOT, seed: int = 0,
                          num_train: int = 400, num_val: int = 100,
                          img_size: Tuple[int, int] = (320, 256), night_ratio: float = 0.5,
                          max_offset: int = 2) -> dict:
    """Generate the demo dataset into ``out_dir``, replacing what is there (written to a
    temporary folder first, then moved in place).

    Args:
        out_dir (str): output folder. Default ``'data/demo_pairs'``.
        seed (int): the data is a pure function of the parameters. Default 0.
        num_train, num_val (int): pairs per split. Default 400 / 100.
        img_size (tuple[int, int]): (W, H). Default (320, 256).
        night_ratio (float): fraction of night scenes. Default 0.5.
        max_offset (int): the infrared image is shifted by up to this many pixels in x and y
            (registration error). Default 2.

    Returns:
        dict: the ``meta.json`` content: parameters and per-split image / box counts.
    """
    params = demo_params(seed, num_train, num_val, img_size, night_ratio, max_offset)
    tmp_dir = f'{out_dir.rstrip("/")}.tmp-{os.getpid()}'
    shutil.rmtree(tmp_dir, ignore_errors=True)
    start = time.perf_counter()
    counts = {split: _write_split(tmp_dir, split, i, params[f'num_{split}'], params['seed'],
                                  tuple(params['img_size']), params['night_ratio'],
                                  params['max_offset'])
              for i, split in enumerate(SPLITS)}
    meta = dict(params=params, counts=counts, classes=list(DEMO_CLASSES))
    with open(osp.join(tmp_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp_dir, out_dir)
    meta['seconds'] = round(time.perf_counter() - start, 2)
    return meta


def read_demo_meta(root: str) -> dict:
    """``meta.json`` of a generated demo dataset, or {} when absent or unreadable."""
    try:
        with open(osp.join(root, 'meta.json')) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


@contextmanager
def _exclusive_lock(path: str):
    """Hold an exclusive lock on ``path`` (POSIX; a no-op where fcntl is missing)."""
    with open(path, 'w') as f:
        if fcntl is not None:
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def ensure_demo_dataset(out_dir: str = DEFAULT_DEMO_ROOT, **params) -> str:
    """Generate the demo dataset unless ``out_dir`` already holds it with these parameters
    (those of :func:`generate_demo_dataset`) and generator version. Safe when several
    processes (distributed training, data loader workers) call it at once. Returns
    ``out_dir``."""
    wanted = demo_params(**params)
    if read_demo_meta(out_dir).get('params') == wanted:
        return out_dir
    os.makedirs(osp.dirname(osp.abspath(out_dir)), exist_ok=True)
    with _exclusive_lock(f'{out_dir.rstrip("/")}.lock'):
        if read_demo_meta(out_dir).get('params') != wanted:
            generate_demo_dataset(out_dir,
                                  **{k: v for k, v in wanted.items() if k != 'version'})
    return out_dir
