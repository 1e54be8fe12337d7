"""Reading a visible and an infrared video frame by frame, as registered pairs."""
import math
import os.path as osp
from typing import Iterator, Tuple

import cv2
import numpy as np


class PairedVideoReader:
    """The frames of a visible and an infrared video of the same scene.

    Opening checks that both files exist and decode, and that the videos have the same
    frame count, frame size and frame rate; any difference is a ``ValueError`` naming both
    files and both values. Iterating yields ``(visible, infrared)`` frames, each
    (H, W, 3) uint8 BGR as OpenCV decodes them.

    Args:
        visible (str): Visible video file.
        infrared (str): Infrared video file.
        fps_rel_tol (float): Relative difference of the frame rates still counted as equal.

    Attributes:
        num_frames (int), fps (float), width (int), height (int): of both videos.
    """

    def __init__(self, visible: str, infrared: str, fps_rel_tol: float = 1e-3) -> None:
        self.paths = (str(visible), str(infrared))
        self._captures = [self._open(path, name)
                          for path, name in zip(self.paths, ('visible', 'infrared'))]
        props = [self._properties(cap, path) for cap, path in zip(self._captures, self.paths)]
        (vis_n, vis_fps, vis_w, vis_h), (ir_n, ir_fps, ir_w, ir_h) = props
        pair = f'visible {self.paths[0]} has {{}}, infrared {self.paths[1]} has {{}}'
        if vis_n != ir_n:
            self.close()
            raise ValueError('the videos must have the same number of frames: ' +
                             pair.format(f'{vis_n} frames', f'{ir_n} frames'))
        if (vis_w, vis_h) != (ir_w, ir_h):
            self.close()
            raise ValueError('the videos must have the same frame size: ' +
                             pair.format(f'{vis_w}x{vis_h}', f'{ir_w}x{ir_h}') + ' (W x H)')
        if not math.isclose(vis_fps, ir_fps, rel_tol=fps_rel_tol):
            self.close()
            raise ValueError('the videos must have the same frame rate: ' +
                             pair.format(f'{vis_fps:g} fps', f'{ir_fps:g} fps'))
        self.num_frames, self.fps, self.width, self.height = vis_n, vis_fps, vis_w, vis_h

    @staticmethod
    def _open(path: str, name: str) -> cv2.VideoCapture:
        if not osp.isfile(path):
            raise FileNotFoundError(f'{name} video not found: {path}')
        capture = cv2.VideoCapture(path)
        if not capture.isOpened():
            raise ValueError(f'cannot open the {name} video (not a video file, or a codec '
                             f'OpenCV lacks): {path}')
        return capture

    @staticmethod
    def _properties(capture: cv2.VideoCapture, path: str) -> Tuple[int, float, int, int]:
        """(frame count, fps, width, height) of an opened video."""
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:
            raise ValueError(f'cannot tell the number of frames of {path}')
        return (count, float(capture.get(cv2.CAP_PROP_FPS)),
                int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Frames from the start; raises ``ValueError`` naming the video and the frame if
        one video ends or fails to decode before ``num_frames``."""
        for capture in self._captures:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        for index in range(self.num_frames):
            frames = []
            for capture, path in zip(self._captures, self.paths):
                ok, frame = capture.read()
                if not ok:
                    raise ValueError(f'cannot read frame {index} of {path} '
                                     f'({self.num_frames} frames announced)')
                frames.append(frame)
            yield frames[0], frames[1]

    def close(self) -> None:
        for capture in self._captures:
            capture.release()

    def __enter__(self) -> 'PairedVideoReader':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
