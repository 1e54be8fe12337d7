"""COCO-style dataset of registered visible / infrared pairs.

Paired COCO json = standard COCO plus, in every image record, ``ir_file_name``: the infrared
image path, like ``file_name`` (the visible image path) relative to
``data_root`` / ``data_prefix['img']`` (or to ``data_prefix['ir']`` when given).
"""
import os.path as osp
from typing import List, Union

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

# Image-record fields copied into each data_info when present (e.g. KAIST's condition).
IMAGE_TAGS = ('condition', )


@DATASETS.register_module()
class PairedCocoDataset(CocoDataset):
    """mmdet ``CocoDataset`` whose samples are image pairs.

    Each data_info gets ``ir_path`` (from the image record's ``ir_file_name``) besides
    mmdet's ``img_path``, and the image tags of ``IMAGE_TAGS`` present in the record.
    Annotations marked ``ignore: 1`` are kept as ignored instances (``ignore_flag = 1``, like
    ``iscrowd``) instead of being dropped as mmdet does, so ignore regions stay visible to
    the training pipeline; everything else (filter_cfg, ``CocoMetric``) is mmdet's.

    Args:
        data_prefix (dict): ``img`` (default ``''``: the converters write paths relative to
            the dataset root) and optionally ``ir``, the prefix of ``ir_file_name`` when it
            differs from ``img``'s.
        **kwargs: arguments of mmdet's ``CocoDataset``.
    """

    def __init__(self, *args, data_prefix: dict = None, **kwargs) -> None:
        super().__init__(*args, data_prefix=data_prefix or dict(img=''), **kwargs)

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        img_info = raw_data_info['raw_img_info']
        if 'ir_file_name' not in img_info:
            raise KeyError(f'image record {img_info.get("id")} ({img_info.get("file_name")}) '
                           f'in {self.ann_file} has no "ir_file_name": not a paired COCO '
                           'file (see docs/datasets.md)')
        raw_ann_info = [self._ignore_as_crowd(ann) for ann in raw_data_info['raw_ann_info']]
        data_info = super().parse_data_info(
            dict(raw_ann_info=raw_ann_info, raw_img_info=img_info))
        ir_prefix = self.data_prefix.get('ir', self.data_prefix['img'])
        data_info['ir_path'] = osp.join(ir_prefix, img_info['ir_file_name'])
        for tag in IMAGE_TAGS:
            if tag in img_info:
                data_info[tag] = img_info[tag]
        return data_info

    @staticmethod
    def _ignore_as_crowd(ann: dict) -> dict:
        """``ignore: 1`` -> ``iscrowd: 1`` (mmdet skips ``ignore`` but flags ``iscrowd``)."""
        if not ann.get('ignore', False):
            return ann
        ann = dict(ann, iscrowd=1)
        ann.pop('ignore')
        return ann
