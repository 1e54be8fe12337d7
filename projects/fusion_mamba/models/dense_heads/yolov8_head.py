"""YOLOv8's decoupled, anchor-free detection head with distribution focal loss."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmcv.ops import batched_nms
from mmengine.dist import get_world_size
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.models.utils import filter_scores_and_topk
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures.bbox import bbox2distance, distance2bbox, get_box_tensor
from mmdet.utils import (ConfigType, InstanceList, OptConfigType, OptInstanceList,
                         OptMultiConfig)

from ..layers.yolov8_layers import make_divisible
# registered here as the defaults of YOLOv8Head
from ..losses.yolov8_iou_loss import YOLOv8CIoULoss  # noqa: F401
from ..task_modules.assigners.batch_task_aligned_assigner import \
    BatchTaskAlignedAssigner  # noqa: F401


@MODELS.register_module()
class YOLOv8HeadModule(BaseModule):
    """The layers of YOLOv8's head (ultralytics ``Detect``): per level, a box branch and a
    class branch of two 3x3 convs and a 1x1 prediction conv each.

    Box branch width ``max(16, c_0 // 4, 4 * reg_max)``, class branch width
    ``max(c_0, min(num_classes, 100))`` (``c_0``: channels of the finest level), as in the
    public models so that their weights load.

    Args:
        num_classes (int): Number of classes.
        in_channels (Sequence[int]): Base channels per level, scaled by ``widen_factor``.
        widen_factor (float): Width multiplier.
        featmap_strides (Sequence[int]): Stride of each level.
        reg_max (int): Bins of the distance distribution of each box side.
        norm_cfg (dict): Normalisation layer config.
        act_cfg (dict): Activation layer config.
        init_cfg (dict or list[dict], optional): Initialisation config.

    Forward: tuple of ``(B, c_i, H_i, W_i)`` -> ``(cls_scores, bbox_dist_preds)``, lists over
    levels of class logits ``(B, num_classes, H_i, W_i)`` and side-distance logits
    ``(B, 4 * reg_max, H_i, W_i)`` (channel ``side * reg_max + bin``, sides l, t, r, b).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: Sequence[int],
                 widen_factor: float = 1.0,
                 featmap_strides: Sequence[int] = (8, 16, 32),
                 reg_max: int = 16,
                 norm_cfg: ConfigType = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 init_cfg: OptMultiConfig = None):
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(featmap_strides):
            raise ValueError(f'YOLOv8HeadModule: {len(in_channels)} in_channels for '
                             f'{len(featmap_strides)} featmap_strides')
        self.num_classes = num_classes
        self.featmap_strides = tuple(featmap_strides)
        self.reg_max = reg_max
        self.in_channels = [make_divisible(c, widen_factor) for c in in_channels]
        reg_channels = max(16, self.in_channels[0] // 4, 4 * reg_max)
        cls_channels = max(self.in_channels[0], min(num_classes, 100))

        def branch(c_in: int, c_mid: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                ConvModule(c_in, c_mid, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg),
                ConvModule(c_mid, c_mid, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg),
                nn.Conv2d(c_mid, c_out, 1))

        self.reg_preds = nn.ModuleList(
            branch(c, reg_channels, 4 * reg_max) for c in self.in_channels)
        self.cls_preds = nn.ModuleList(
            branch(c, cls_channels, num_classes) for c in self.in_channels)

    def init_weights(self) -> None:
        """Prediction biases as in YOLOv8: 1.0 for the distances, and for the classes a
        prior of about 5 objects per 640x640 image spread over the level's cells."""
        super().init_weights()
        for reg_pred, cls_pred, stride in zip(self.reg_preds, self.cls_preds,
                                              self.featmap_strides):
            nn.init.constant_(reg_pred[-1].bias, 1.0)
            nn.init.constant_(cls_pred[-1].bias,
                              math.log(5 / self.num_classes / (640 / stride)**2))

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        if len(x) != len(self.featmap_strides):
            raise ValueError(f'YOLOv8HeadModule: expected {len(self.featmap_strides)} '
                             f'feature maps, got {len(x)}')
        cls_scores = [cls_pred(feat) for feat, cls_pred in zip(x, self.cls_preds)]
        bbox_dist_preds = [reg_pred(feat) for feat, reg_pred in zip(x, self.reg_preds)]
        return cls_scores, bbox_dist_preds


@MODELS.register_module()
class YOLOv8Head(BaseDenseHead):
    """YOLOv8 head: :class:`YOLOv8HeadModule` layers, YOLOv8's loss and post-processing.

    Each prior (cell centre of every level) predicts class logits and, per box side, a
    distribution over ``reg_max`` distance bins (in units of the level stride) whose
    expectation is the distance (DFL, Generalized Focal Loss).

    Loss (batched over the images): :class:`BatchTaskAlignedAssigner` gives soft targets;
    with ``S`` the sum of all target scores (at least 1),

    - ``loss_cls = 0.5 * sum(BCE(logits, target_scores)) / S``,
    - ``loss_bbox = 7.5 * sum_pos(w * (1 - CIoU)) / S`` with ``w`` the positive's target
      score, on boxes in stride units,
    - ``loss_dfl = 1.5 / 4 * sum_pos,side(w * DFL) / S`` (= YOLOv8's 1.5 times the mean
      over the four sides).

    Priors whose centre lies inside an ignore region of their image
    (``batch_gt_instances_ignore``, e.g. KAIST's ignore boxes) and that are not assigned to
    a gt get no classification loss.

    Batch scaling: ultralytics returns ``(box + cls + dfl) * batch_size`` and multiplies by
    the world size under DDP (whose gradient averaging then cancels it), so its
    hyper-parameters (lr 0.01 with SGD) assume a loss that grows with the batch. With
    ``scale_loss_by_batch=True`` (default) every term is multiplied by ``batch_size *
    world_size`` likewise, so the YOLOv8 / Fusion-Mamba optimiser settings carry over; with
    ``False`` the terms are per-batch means in mmdet's usual way (divide the lr accordingly).

    Prediction: sigmoid scores; candidates above ``score_thr`` (every class of a prior with
    ``multi_label=True``, else its best class), the ``nms_pre`` best kept, boxes rescaled to
    the original image (``pad_param`` of a letterbox is undone first, then ``scale_factor``)
    and clipped, class-wise NMS (:func:`mmcv.ops.batched_nms`), at most ``max_per_img``.

    Args:
        num_classes (int): Number of classes.
        in_channels (Sequence[int]): Base channels per level (scaled by ``widen_factor``).
        widen_factor (float): Width multiplier.
        featmap_strides (Sequence[int]): Stride of each level.
        reg_max (int): Distance bins per side.
        norm_cfg (dict): Normalisation layer config.
        act_cfg (dict): Activation layer config.
        loss_cls (dict): Classification loss (sigmoid BCE, ``reduction='mean'``).
        loss_bbox (dict): Box loss (YOLOv8's CIoU).
        loss_dfl (dict): Distribution focal loss.
        scale_loss_by_batch (bool): Multiply the losses by ``batch_size * world_size``.
        train_cfg (dict, optional): ``assigner`` config.
        test_cfg (dict, optional): ``score_thr``, ``nms``, ``max_per_img``, ``nms_pre``,
            ``multi_label``.
        init_cfg (dict or list[dict], optional): Initialisation config.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: Sequence[int],
                 widen_factor: float = 1.0,
                 featmap_strides: Sequence[int] = (8, 16, 32),
                 reg_max: int = 16,
                 norm_cfg: ConfigType = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: ConfigType = dict(type='SiLU', inplace=True),
                 loss_cls: ConfigType = dict(
                     type='CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                     loss_weight=0.5),
                 loss_bbox: ConfigType = dict(
                     type='YOLOv8CIoULoss', reduction='mean', loss_weight=7.5),
                 loss_dfl: ConfigType = dict(
                     type='DistributionFocalLoss', reduction='mean', loss_weight=1.5 / 4),
                 scale_loss_by_batch: bool = True,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None):
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.featmap_strides = tuple(featmap_strides)
        self.head_module = YOLOv8HeadModule(num_classes, in_channels, widen_factor,
                                            featmap_strides, reg_max, norm_cfg, act_cfg)
        self.prior_generator = MlvlPointGenerator(featmap_strides, offset=0.5)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_dfl = MODELS.build(loss_dfl)
        self.scale_loss_by_batch = scale_loss_by_batch
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if train_cfg is not None:
            # The assigner's class count follows the head unless the config sets it.
            self.assigner = TASK_UTILS.build(train_cfg['assigner'],
                                             default_args=dict(num_classes=num_classes))
        self.register_buffer('proj', torch.arange(reg_max, dtype=torch.float),
                             persistent=False)

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """See :class:`YOLOv8HeadModule`: ``(cls_scores, bbox_dist_preds)`` per level."""
        return self.head_module(x)

    def _flatten(self, cls_scores: Sequence[Tensor], bbox_dist_preds: Sequence[Tensor]
                 ) -> Tuple[Tensor, Tensor, Tensor]:
        """Concatenate the levels.

        Returns:
            tuple: class logits ``(B, N, C)``, distance logits ``(B, N, 4, reg_max)`` and
            priors ``(N, 4)`` (``x, y, stride_w, stride_h`` in pixels).
        """
        num_imgs = cls_scores[0].size(0)
        flat_cls = torch.cat([s.permute(0, 2, 3, 1).reshape(num_imgs, -1, self.num_classes)
                              for s in cls_scores], dim=1)
        flat_dist = torch.cat([d.permute(0, 2, 3, 1).reshape(num_imgs, -1, 4, self.reg_max)
                               for d in bbox_dist_preds], dim=1)
        priors = torch.cat(self.prior_generator.grid_priors(
            [s.shape[2:] for s in cls_scores], dtype=flat_cls.dtype, device=flat_cls.device,
            with_stride=True), dim=0)
        return flat_cls, flat_dist, priors

    def _distances(self, dist_logits: Tensor) -> Tensor:
        """Expected side distances ``(..., 4)`` (stride units) of logits ``(..., 4, R)``."""
        return dist_logits.softmax(dim=-1) @ self.proj.to(dist_logits.dtype)

    @staticmethod
    def _pad_gts(batch_gt_instances: InstanceList, device: torch.device
                 ) -> Tuple[Tensor, Tensor, Tensor]:
        """Stack per-image gts into ``(B, M, 4)`` boxes, ``(B, M)`` labels and ``(B, M)``
        valid flags, ``M`` the most gts of an image."""
        num_imgs = len(batch_gt_instances)
        counts = [len(gt) for gt in batch_gt_instances]
        num_gt = max(counts, default=0)
        bboxes = torch.zeros((num_imgs, num_gt, 4), device=device)
        labels = torch.zeros((num_imgs, num_gt), dtype=torch.long, device=device)
        valid = torch.zeros((num_imgs, num_gt), dtype=torch.bool, device=device)
        for i, (gt, count) in enumerate(zip(batch_gt_instances, counts)):
            bboxes[i, :count] = get_box_tensor(gt.bboxes).to(bboxes)
            labels[i, :count] = gt.labels
            valid[i, :count] = True
        return bboxes, labels, valid

    @staticmethod
    def _ignored_priors(priors: Tensor, batch_gt_instances_ignore: OptInstanceList,
                        num_imgs: int) -> Optional[Tensor]:
        """``(B, N)`` mask of the priors whose centre lies strictly inside an ignore box of
        their image, or None when no image has one.

        Args:
            priors (Tensor): ``(N, 4)`` priors, centres ``x, y`` in pixels first.
            batch_gt_instances_ignore (list[InstanceData | None] | None): Ignore regions,
                ``bboxes`` xyxy in pixels, per image.
            num_imgs (int): B.
        """
        if not batch_gt_instances_ignore:
            return None
        boxes = [None if ignore is None or len(ignore) == 0 else
                 get_box_tensor(ignore.bboxes).to(priors)
                 for ignore in batch_gt_instances_ignore]
        if all(b is None for b in boxes):
            return None
        mask = priors.new_zeros((num_imgs, len(priors)), dtype=torch.bool)
        centres = priors[:, None, :2]  # (N, 1, 2)
        for i, img_boxes in enumerate(boxes):
            if img_boxes is None:
                continue
            inside = torch.cat((centres - img_boxes[None, :, :2],
                                img_boxes[None, :, 2:] - centres), dim=-1)  # (N, M, 4)
            mask[i] = (inside.amin(dim=-1) > 0).any(dim=1)
        return mask

    def loss_by_feat(self,
                     cls_scores: Sequence[Tensor],
                     bbox_dist_preds: Sequence[Tensor],
                     batch_gt_instances: InstanceList,
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: OptInstanceList = None) -> Dict[str, Tensor]:
        """YOLOv8's loss of a batch.

        Args:
            cls_scores (list[Tensor]): Class logits ``(B, C, H_i, W_i)`` per level.
            bbox_dist_preds (list[Tensor]): Distance logits ``(B, 4 * reg_max, H_i, W_i)``.
            batch_gt_instances (list[InstanceData]): ``bboxes`` (xyxy, pixels) and
                ``labels`` per image; may be empty.
            batch_img_metas (list[dict]): Image metas (unused).
            batch_gt_instances_ignore (list[InstanceData | None], optional): ``bboxes``
                (xyxy, pixels) of the ignore regions of each image (e.g. KAIST's people
                and crowds marked ignore). A prior whose centre lies inside one and that
                the assigner gave no real gt adds no classification loss: it is neither
                trained as background nor as an object.

        Returns:
            dict: ``loss_cls``, ``loss_bbox``, ``loss_dfl`` (scalars).
        """
        flat_cls, flat_dist, priors = self._flatten(cls_scores, bbox_dist_preds)
        strides = priors[:, 2:3]
        anchors = priors[:, :2] / strides  # prior centres in stride units
        pred_bboxes = distance2bbox(anchors, self._distances(flat_dist))  # stride units
        gt_bboxes, gt_labels, valid = self._pad_gts(batch_gt_instances, flat_cls.device)

        assigned = self.assigner(
            (pred_bboxes.detach() * strides).to(gt_bboxes.dtype),
            flat_cls.detach().sigmoid(), priors, gt_labels, gt_bboxes, valid)
        target_scores = assigned['assigned_scores']
        fg_mask = assigned['fg_mask']
        scores_sum = target_scores.sum().clamp(min=1)

        ignored = self._ignored_priors(priors, batch_gt_instances_ignore, len(flat_cls))
        cls_weight = None
        if ignored is not None:
            cls_weight = (~(ignored & ~fg_mask)).to(flat_cls.dtype)[..., None].expand_as(
                flat_cls)
        loss_cls = self.loss_cls(flat_cls, target_scores.to(flat_cls.dtype),
                                 weight=cls_weight, avg_factor=scores_sum)
        if fg_mask.any():
            weight = target_scores.sum(-1)[fg_mask]
            target_bboxes = (assigned['assigned_bboxes'] / strides)[fg_mask]
            loss_bbox = self.loss_bbox(pred_bboxes[fg_mask], target_bboxes, weight=weight,
                                       avg_factor=scores_sum)
            target_dist = bbox2distance(anchors.expand_as(pred_bboxes[..., :2])[fg_mask],
                                        target_bboxes, max_dis=self.reg_max - 1, eps=0.01)
            loss_dfl = self.loss_dfl(flat_dist[fg_mask].reshape(-1, self.reg_max),
                                     target_dist.reshape(-1),
                                     weight=weight[:, None].expand(-1, 4).reshape(-1),
                                     avg_factor=scores_sum)
        else:
            # no positives: zero losses that keep the graph connected
            loss_bbox = loss_dfl = flat_dist.sum() * 0
        scale = len(cls_scores[0]) * get_world_size() if self.scale_loss_by_batch else 1
        return dict(loss_cls=loss_cls * scale, loss_bbox=loss_bbox * scale,
                    loss_dfl=loss_dfl * scale)

    def predict_by_feat(self,
                        cls_scores: Sequence[Tensor],
                        bbox_dist_preds: Sequence[Tensor],
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: OptConfigType = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> InstanceList:
        """Detections of each image.

        Args:
            cls_scores (list[Tensor]): Class logits ``(B, C, H_i, W_i)`` per level.
            bbox_dist_preds (list[Tensor]): Distance logits ``(B, 4 * reg_max, H_i, W_i)``.
            batch_img_metas (list[dict]): ``img_shape`` and, to rescale, ``scale_factor``
                (w, h), ``ori_shape`` and optionally ``pad_param`` (top, bottom, left, right).
            cfg (dict, optional): Overrides ``test_cfg``.
            rescale (bool): Map the boxes back to the original image.
            with_nms (bool): Apply NMS and ``max_per_img``.

        Returns:
            list[InstanceData]: ``bboxes`` ``(n, 4)`` xyxy, ``scores`` ``(n,)``, ``labels``
            ``(n,)`` per image, best first.
        """
        cfg = self.test_cfg if cfg is None else cfg
        scores, bboxes = self.decode(cls_scores, bbox_dist_preds)
        results_list = []
        for img_scores, img_bboxes, img_meta in zip(scores, bboxes, batch_img_metas):
            results = self._select_candidates(img_scores, img_bboxes, cfg)
            results.bboxes = self._to_image(results.bboxes, img_meta, rescale)
            if with_nms and len(results) > 0:
                det_bboxes, keep = batched_nms(results.bboxes, results.scores,
                                               results.labels, cfg['nms'])
                results = results[keep][:cfg.get('max_per_img', 300)]
                results.scores = det_bboxes[:len(results), -1]
            results_list.append(results)
        return results_list

    def decode(self, cls_scores: Sequence[Tensor], bbox_dist_preds: Sequence[Tensor]
               ) -> Tuple[Tensor, Tensor]:
        """Scores and boxes of every prior, before any selection or NMS.

        Decoding runs in float32 whatever the network ran in: mmcv's NMS takes float32 only,
        and fp16 / bf16 boxes of a 640 image are off by up to 0.25 / 2 pixels.

        Args:
            cls_scores, bbox_dist_preds: Per level, as :meth:`predict_by_feat`.

        Returns:
            tuple: sigmoid scores ``(B, N, C)`` and boxes ``(B, N, 4)`` (xyxy, pixels of the
            network input), N the priors of all levels.
        """
        flat_cls, flat_dist, priors = self._flatten([s.float() for s in cls_scores],
                                                    [d.float() for d in bbox_dist_preds])
        bboxes = distance2bbox(priors[:, :2], self._distances(flat_dist) * priors[:, 2:3])
        return flat_cls.sigmoid(), bboxes

    @staticmethod
    def _select_candidates(scores: Tensor, bboxes: Tensor, cfg: ConfigType) -> InstanceData:
        """Candidates of one image above ``score_thr``, at most ``nms_pre`` of them.

        Args:
            scores (Tensor): ``(N, C)`` probabilities.
            bboxes (Tensor): ``(N, 4)``.
            cfg (dict): Test config.
        """
        score_thr = cfg.get('score_thr', 0.001)
        nms_pre = cfg.get('nms_pre', 30000)
        if cfg.get('multi_label', True):
            scores, labels, keep, _ = filter_scores_and_topk(scores, score_thr, nms_pre)
        else:
            scores, labels = scores.max(dim=1)
            keep = (scores > score_thr).nonzero().squeeze(1)
            scores, order = scores[keep].sort(descending=True)
            keep = keep[order[:nms_pre]]
            scores, labels = scores[:nms_pre], labels[keep]
        return InstanceData(bboxes=bboxes[keep], scores=scores, labels=labels)

    @staticmethod
    def _to_image(bboxes: Tensor, img_meta: dict, rescale: bool) -> Tensor:
        """Boxes ``(n, 4)`` of the network input mapped to the original image (``rescale``)
        or kept in the input image, clipped to that image."""
        shape = img_meta.get('img_shape')
        if rescale:
            pad_param = img_meta.get('pad_param')
            if pad_param is not None:
                top, _, left, _ = (float(p) for p in pad_param)
                bboxes = bboxes - bboxes.new_tensor([left, top, left, top])
            bboxes = bboxes / bboxes.new_tensor(img_meta['scale_factor']).repeat(2)
            shape = img_meta.get('ori_shape', shape)
        if shape is not None:
            bboxes = YOLOv8Head.clip_boxes(bboxes, shape)
        return bboxes

    @staticmethod
    def clip_boxes(bboxes: Tensor, shape: Tuple[int, int]) -> Tensor:
        """Boxes ``(..., 4)`` xyxy clipped to an image of ``shape`` (H, W)."""
        height, width = shape[0], shape[1]
        return torch.stack([bboxes[..., 0].clamp(0, width), bboxes[..., 1].clamp(0, height),
                            bboxes[..., 2].clamp(0, width), bboxes[..., 3].clamp(0, height)],
                           dim=-1)
