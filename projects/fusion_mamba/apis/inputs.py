"""The inputs :class:`FusionMambaInferencer` accepts, turned into a stream of image pairs.

- ``(visible, infrared)`` image files (str or path-like);
- ``(visible, infrared)`` numpy arrays: (H, W, 3) BGR as OpenCV reads it, and (H, W),
  (H, W, 1) or (H, W, 3);
- ``(visible_dir, infrared_dir)`` folders: their images paired by file stem (the extensions
  may differ), in sorted stem order;
- ``(visible_video, infrared_video)`` video files (:class:`PairedVideoReader`), frame by
  frame;
- a list of any of these.
"""
import os
import os.path as osp
from dataclasses import dataclass
from itertools import chain
from typing import Iterable, Iterator, List, Sequence, Union

import numpy as np

from .video import PairedVideoReader

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.m4v', '.mpg', '.mpeg')
MAX_LISTED = 20  # names listed in an error before "... and N more"

ImageSource = Union[str, os.PathLike, np.ndarray]


@dataclass
class ImagePair:
    """One pair to detect on.

    Attributes:
        name (str): Output file stem: the visible file's stem, ``<video stem>_<frame
            index:06d>`` for a video frame, the zero-padded position in the inputs for
            arrays.
        visible (str | np.ndarray): File path, or (H, W, 3) BGR array.
        infrared (str | np.ndarray): File path, or (H, W[, C]) array.
    """
    name: str
    visible: ImageSource
    infrared: ImageSource


class PairStream:
    """Image pairs of several inputs with their total count; videos are read lazily.

    Args:
        sources: ``(pairs, count)`` per input.
    """

    def __init__(self, sources: Sequence[tuple]) -> None:
        self.sources = list(sources)

    def __len__(self) -> int:
        return sum(count for _, count in self.sources)

    def __iter__(self) -> Iterator[ImagePair]:
        return chain.from_iterable(pairs for pairs, _ in self.sources)


def _is_pathlike(item) -> bool:
    return isinstance(item, (str, os.PathLike))


def _listing(names: Iterable[str]) -> str:
    names = sorted(names)
    shown = ', '.join(names[:MAX_LISTED])
    return shown + (f' ... and {len(names) - MAX_LISTED} more' if len(names) > MAX_LISTED
                     else '')


def images_by_stem(folder: str) -> dict:
    """``{stem: file name}`` of the images directly in ``folder``.

    Raises ``ValueError`` if two images share a stem or there is no image at all.
    """
    by_stem, clashes = {}, []
    for name in sorted(os.listdir(folder)):
        stem, ext = osp.splitext(name)
        if ext.lower() not in IMAGE_EXTENSIONS or not osp.isfile(osp.join(folder, name)):
            continue
        if stem in by_stem:
            clashes.append(f'{by_stem[stem]} / {name}')
        by_stem[stem] = name
    if clashes:
        raise ValueError(f'images with the same stem in {folder} (cannot pair them): '
                         f'{_listing(clashes)}')
    if not by_stem:
        raise ValueError(f'no image ({", ".join(IMAGE_EXTENSIONS)}) in {folder}')
    return by_stem


def folder_pairs(visible_dir: str, infrared_dir: str) -> List[ImagePair]:
    """The images of two folders paired by stem; every image must have a partner.

    Raises:
        ValueError: naming the images of either folder without a partner of the same stem.
    """
    visible, infrared = images_by_stem(visible_dir), images_by_stem(infrared_dir)
    only_visible = [visible[s] for s in visible.keys() - infrared.keys()]
    only_infrared = [infrared[s] for s in infrared.keys() - visible.keys()]
    if only_visible or only_infrared:
        lines = [f'cannot pair the images of {visible_dir} and {infrared_dir} by file stem:']
        if only_visible:
            lines.append(f'  {len(only_visible)} visible images without an infrared image: '
                         f'{_listing(only_visible)}')
        if only_infrared:
            lines.append(f'  {len(only_infrared)} infrared images without a visible image: '
                         f'{_listing(only_infrared)}')
        raise ValueError('\n'.join(lines))
    return [ImagePair(stem, osp.join(visible_dir, visible[stem]),
                      osp.join(infrared_dir, infrared[stem])) for stem in sorted(visible)]


def video_pairs(reader: PairedVideoReader) -> PairStream:
    """The frames of a :class:`PairedVideoReader` as image pairs named
    ``<visible video stem>_<frame index:06d>``."""
    stem = osp.splitext(osp.basename(reader.paths[0]))[0]
    pairs = (ImagePair(f'{stem}_{index:06d}', visible, infrared)
             for index, (visible, infrared) in enumerate(reader))
    return PairStream([(pairs, len(reader))])


def _single_source(visible, infrared, index: int) -> tuple:
    """``(pairs, count)`` of one ``(visible, infrared)`` input."""
    if isinstance(visible, np.ndarray) and isinstance(infrared, np.ndarray):
        return [ImagePair(f'{index:08d}', visible, infrared)], 1
    if not (_is_pathlike(visible) and _is_pathlike(infrared)):
        raise TypeError('a pair must be two paths or two numpy arrays, got '
                        f'({type(visible).__name__}, {type(infrared).__name__})')
    visible, infrared = os.fspath(visible), os.fspath(infrared)
    is_dir = (osp.isdir(visible), osp.isdir(infrared))
    if any(is_dir):
        if not all(is_dir):
            folder, other = (visible, infrared) if is_dir[0] else (infrared, visible)
            raise ValueError(f'{folder} is a folder but {other} is not: give two folders '
                             'or two files')
        pairs = folder_pairs(visible, infrared)
        return pairs, len(pairs)
    is_video = [osp.splitext(p)[1].lower() in VIDEO_EXTENSIONS for p in (visible, infrared)]
    if all(is_video):
        return video_pairs(PairedVideoReader(visible, infrared)).sources[0]
    if any(is_video):
        raise ValueError(f'give two videos or two images, got {visible} and {infrared}')
    return [ImagePair(osp.splitext(osp.basename(visible))[0], visible, infrared)], 1


def collect_pairs(inputs) -> PairStream:
    """The :class:`PairStream` of one ``(visible, infrared)`` input or a list of them (see
    the module docstring); a :class:`PairStream` is returned as it is."""
    if isinstance(inputs, PairStream):
        return inputs
    if isinstance(inputs, (tuple, list)) and len(inputs) == 2 and not isinstance(
            inputs[0], (tuple, list)):
        inputs = [inputs]
    if not isinstance(inputs, (tuple, list)) or not inputs:
        raise TypeError('inputs must be a (visible, infrared) pair or a non-empty list of '
                        f'pairs, got {type(inputs).__name__}')
    sources = []
    for index, item in enumerate(inputs):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f'input {index} is not a (visible, infrared) pair: {item!r:.80}')
        sources.append(_single_source(item[0], item[1], index))
    return PairStream(sources)
