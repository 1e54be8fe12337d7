"""Synthetic marker pairs for the transform tests.

A marker pair is a textured visible image with filled rectangles of distinct colours (one
per box, label = colour index) and an infrared image that is exactly its grayscale version.
After any geometric transform both images must still satisfy ``ir == gray(visible)`` (up
to interpolation rounding) and every box must sit on the rectangle of its label's colour.
"""
import cv2
import numpy as np
from mmdet.structures.bbox import HorizontalBoxes

# Distinct colours (BGR) whose gray levels differ by >= 15 and exceed the texture's.
MARKER_COLORS = np.array([(40, 200, 250), (250, 60, 60), (60, 250, 60), (200, 200, 200),
                          (0, 140, 255), (255, 0, 255), (255, 255, 0), (120, 255, 180),
                          (30, 90, 240), (250, 250, 250), (150, 100, 255), (90, 220, 130)],
                         dtype=np.uint8)
MARKER_GRAYS = cv2.cvtColor(MARKER_COLORS[None], cv2.COLOR_BGR2GRAY)[0]


def make_marker_pair(seed: int, height: int, width: int, boxes, labels,
                     ir_channels: int = 3) -> dict:
    """Results dict (as after loading) of a marker pair with the given pixel boxes."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 70, (height // 8 + 1, width // 8 + 1, 3)).astype(np.uint8)
    img = cv2.resize(texture, (width, height), interpolation=cv2.INTER_LINEAR)
    for (x1, y1, x2, y2), label in zip(boxes, labels):
        img[int(y1):int(y2), int(x1):int(x2)] = MARKER_COLORS[label]
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[..., None]
    ir = np.repeat(gray, 3, axis=2) if ir_channels == 3 else gray
    num = len(boxes)
    return dict(img=img, ir_img=ir, img_shape=(height, width), ori_shape=(height, width),
                img_path=f'vis_{seed}.png', ir_path=f'ir_{seed}.png',
                gt_bboxes=HorizontalBoxes(np.asarray(boxes, np.float32).reshape(num, 4)),
                gt_bboxes_labels=np.asarray(labels, np.int64),
                gt_ignore_flags=np.zeros(num, bool))


def assert_pixel_aligned(results: dict, tol: int = 2) -> None:
    """The infrared image equals the grayscale of the visible one at every pixel."""
    img, ir = results['img'], results['ir_img']
    assert ir.ndim == 3 and ir.shape[:2] == img.shape[:2]
    expected = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(int)
    for c in range(ir.shape[2]):
        diff = np.abs(ir[..., c].astype(int) - expected)
        assert diff.max() <= tol, f'channel {c}: {int((diff > tol).sum())} misaligned pixels'


def assert_boxes_on_markers(results: dict, min_size: float = 4, tol: int = 3) -> set:
    """Each box (at least ``min_size`` px) has its label's marker at its centre in both
    images; every marker still visible in the images has its box. Returns the labels kept."""
    img, ir = results['img'].astype(int), results['ir_img'].astype(int)
    height, width = img.shape[:2]
    boxes = results['gt_bboxes'].numpy()
    labels = results['gt_bboxes_labels']
    assert len(boxes) == len(labels) == len(results['gt_ignore_flags'])
    if len(boxes):
        assert boxes[:, [0, 2]].min() >= 0 and boxes[:, [0, 2]].max() <= width
        assert boxes[:, [1, 3]].min() >= 0 and boxes[:, [1, 3]].max() <= height
    for (x1, y1, x2, y2), label in zip(boxes, labels):
        if x2 - x1 < min_size or y2 - y1 < min_size:
            continue
        cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
        assert np.abs(img[cy, cx] - MARKER_COLORS[label]).max() <= tol, (label, (cx, cy))
        assert np.abs(ir[cy, cx] - int(MARKER_GRAYS[label])).max() <= tol, (label, (cx, cy))
    kept = set(labels.tolist())
    for label, color in enumerate(MARKER_COLORS):
        visible_pixels = (np.abs(img - color).max(axis=2) <= 1).sum()
        if visible_pixels >= 16:
            assert label in kept, f'marker {label} is in the image ({visible_pixels} px) ' \
                'but its box was dropped'
    return kept
