"""Per-image ground truth of a COCO-style pedestrian annotation file under a setting.

Fields read (absent fields take the default in brackets):

- ``images[i]``: ``id``, ``width`` / ``height`` (px) [no border check], ``condition``
  ('day' or 'night') [derived from a KAIST frame name in ``im_name`` / ``file_name``, see
  :func:`image_condition`, else None];
- ``annotations[j]``: ``image_id``, ``bbox`` (xywh px), ``category_id``, ``ignore`` [0],
  ``iscrowd`` [0], ``occlusion`` (0 none, 1 partial, 2 heavy) [0], ``height`` (px) [bbox h];
- ``categories[k]``: ``id``, ``name``.

An annotation is an ignore region when ``ignore`` or ``iscrowd`` is 1, its category name is in
the setting's ``ignore_names``, or it falls outside the setting (height, occlusion, border).
"""
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .conditions import image_condition
from .pedestrian_setting import PedestrianSetting


@dataclass(frozen=True)
class ImageGroundTruth:
    """Ground truth of one image.

    Attributes:
        boxes: (G, 4) float64 boxes, xyxy px.
        ignore: (G,) bool, True for ignore regions.
        condition: 'day', 'night' or None when unknown (see :func:`image_condition`).
    """

    boxes: np.ndarray
    ignore: np.ndarray
    condition: Optional[str]


def _image_size(image: dict) -> Optional[Tuple[float, float]]:
    """``(width, height)`` of an image record in px; None when it does not record them."""
    if 'width' in image and 'height' in image:
        return image['width'], image['height']
    return None


def parse_coco_ground_truth(coco: dict, setting: PedestrianSetting) -> Dict[Any, ImageGroundTruth]:
    """Ground truth of every image of a COCO-style dict, keyed by image id.

    Args:
        coco: the loaded annotation file (``images``, ``annotations``, ``categories``).
        setting: decides which boxes are ignore regions.
    """
    cat_names = {cat['id']: cat['name'] for cat in coco.get('categories', [])}
    images = {img['id']: img for img in coco['images']}
    boxes = {img_id: [] for img_id in images}
    ignore = {img_id: [] for img_id in images}
    for ann in coco.get('annotations', []):
        image = images[ann['image_id']]
        x, y, w, h = (float(v) for v in ann['bbox'])
        bbox = np.array([x, y, x + w, y + h])
        flagged = bool(ann.get('ignore', 0) or ann.get('iscrowd', 0))
        ignored = (flagged or cat_names.get(ann['category_id']) in setting.ignore_names
                   or setting.is_ignored(bbox, float(ann.get('height', h)),
                                         int(ann.get('occlusion', 0)), _image_size(image)))
        boxes[ann['image_id']].append(bbox)
        ignore[ann['image_id']].append(ignored)
    return {
        img_id: ImageGroundTruth(
            boxes=np.array(boxes[img_id], dtype=np.float64).reshape(-1, 4),
            ignore=np.array(ignore[img_id], dtype=bool),
            condition=image_condition(image))
        for img_id, image in images.items()
    }
