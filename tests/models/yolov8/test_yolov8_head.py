"""YOLOv8Head: layers, losses (known answers, images without gts, batch scaling) and
post-processing (score threshold, class-wise NMS, max detections, letterbox rescale)."""
import math

import pytest
import torch
from mmdet.models.losses import CIoULoss
from mmengine.structures import InstanceData

from fusion_mamba.models.dense_heads.yolov8_head import YOLOv8Head
from fusion_mamba.models.losses.yolov8_iou_loss import YOLOv8CIoULoss

STRIDES = (8, 16, 32)
SIZE = 64
TRAIN_CFG = dict(assigner=dict(type='BatchTaskAlignedAssigner', num_classes=2, topk=10,
                               alpha=0.5, beta=6.0, eps=1e-9))
TEST_CFG = dict(score_thr=0.001, nms=dict(type='nms', iou_threshold=0.7), max_per_img=300,
                nms_pre=30000, multi_label=True)


def _head(**kwargs):
    head = YOLOv8Head(num_classes=2, in_channels=[16, 32, 64], train_cfg=TRAIN_CFG,
                      test_cfg=TEST_CFG, **kwargs)
    head.init_weights()
    return head


def _feats(batch=2):
    torch.manual_seed(0)
    return [torch.randn(batch, c, SIZE // s, SIZE // s) for c, s in zip((16, 32, 64), STRIDES)]


def _metas(batch=2):
    return [dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE), scale_factor=(1.0, 1.0))
            for _ in range(batch)]


def _gts():
    return [InstanceData(bboxes=torch.tensor([[8., 10., 40., 50.], [30., 4., 60., 28.]]),
                         labels=torch.tensor([0, 1])),
            InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))]


def test_head_module_layers_and_outputs():
    head = _head()
    module = head.head_module
    # branch widths of ultralytics' Detect: max(16, c0 // 4, 4 * reg_max), max(c0, min(nc, 100))
    assert module.reg_preds[0][0].conv.out_channels == 64
    assert module.cls_preds[0][0].conv.out_channels == 16
    cls_scores, dist_preds = head(_feats())
    for cls, dist, s in zip(cls_scores, dist_preds, STRIDES):
        assert cls.shape == (2, 2, SIZE // s, SIZE // s)
        assert dist.shape == (2, 64, SIZE // s, SIZE // s)
    for cls_pred, reg_pred, s in zip(module.cls_preds, module.reg_preds, STRIDES):
        torch.testing.assert_close(cls_pred[-1].bias,
                                   torch.full((2, ), math.log(5 / 2 / (640 / s)**2)))
        torch.testing.assert_close(reg_pred[-1].bias, torch.ones(64))


def test_ciou_loss_matches_mmdet_where_mmdet_applies_the_aspect_term():
    """mmdet's CIoULoss drops the aspect-ratio term below IoU 0.5; ours never does."""
    pred = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 10.]])
    target = torch.tensor([[1., 0., 10., 11.], [4., 3., 18., 10.]])  # IoU 0.82 and 0.19
    ours = YOLOv8CIoULoss(reduction='none')(pred, target)
    theirs = CIoULoss(reduction='none')(pred, target)
    torch.testing.assert_close(ours[0], theirs[0], rtol=1e-5, atol=1e-6)
    assert ours[1] > theirs[1]
    assert YOLOv8CIoULoss()(pred[:1], pred[:1]).abs() < 1e-6
    weighted = YOLOv8CIoULoss(loss_weight=7.5)(pred, target, weight=torch.tensor([1., 0.5]),
                                               avg_factor=4.0)
    torch.testing.assert_close(weighted, 7.5 * (ours[0] + 0.5 * ours[1]) / 4)


def test_loss_without_any_gt_is_the_background_bce():
    head = _head()
    for cls_pred in head.head_module.cls_preds:
        torch.nn.init.zeros_(cls_pred[-1].weight)
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    losses = head.loss_by_feat(*head(_feats()), [empty, empty], _metas())
    # every logit is its level's bias b; target 0 gives BCE softplus(b); sum / 1, x batch 2
    expected = sum((SIZE // s)**2 * 2 * math.log1p(5 / 2 / (640 / s)**2)
                   for s in STRIDES) * 2 * 0.5 * 2
    # float32 BCE of logits near -8 is accurate to ~1e-4 relative
    assert losses['loss_cls'].item() == pytest.approx(expected, rel=1e-3)
    assert losses['loss_bbox'] == 0 and losses['loss_dfl'] == 0
    sum(losses.values()).backward()  # zero box / DFL losses keep the graph connected


def test_loss_with_an_image_without_gt_and_gradients():
    head = _head()
    feats = [f.requires_grad_() for f in _feats()]
    losses = head.loss_by_feat(*head(feats), _gts(), _metas())
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_dfl'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in head.parameters())
    assert all(f.grad.abs().sum() > 0 for f in feats)


def test_loss_batch_scaling_switch():
    feats = _feats()
    scaled = _head()
    plain = _head(scale_loss_by_batch=False)
    plain.load_state_dict(scaled.state_dict())
    a = scaled.loss_by_feat(*scaled(feats), _gts(), _metas())
    b = plain.loss_by_feat(*plain(feats), _gts(), _metas())
    for key in a:
        torch.testing.assert_close(a[key], 2 * b[key])


def test_loss_weights_are_configurable():
    feats = _feats()
    head = _head()
    heavy = _head(loss_bbox=dict(type='YOLOv8CIoULoss', loss_weight=15.0))
    heavy.load_state_dict(head.state_dict())
    a = head.loss_by_feat(*head(feats), _gts(), _metas())
    b = heavy.loss_by_feat(*heavy(feats), _gts(), _metas())
    torch.testing.assert_close(b['loss_bbox'], 2 * a['loss_bbox'])
    torch.testing.assert_close(b['loss_cls'], a['loss_cls'])


def _handmade_outputs(batch=2, num_classes=2, reg_max=16):
    """Head outputs with all scores ~0 and every box ``prior +- stride``."""
    cls_scores, dist_preds = [], []
    for s in STRIDES:
        n = SIZE // s
        cls_scores.append(torch.full((batch, num_classes, n, n), -10.0))
        dist = torch.full((batch, 4, reg_max, n, n), -30.0)
        dist[:, :, 1] = 30.0  # distance 1 (stride units) on every side
        dist_preds.append(dist.reshape(batch, 4 * reg_max, n, n))
    return cls_scores, dist_preds


def _set_prior(cls_scores, dist_preds, img, x, y, probs, sides, reg_max=16):
    """Scores ``probs`` and side bins ``sides`` at cell (x, y) of the stride-8 level."""
    for c, p in enumerate(probs):
        cls_scores[0][img, c, y, x] = math.log(p / (1 - p))
    dist = dist_preds[0].view(dist_preds[0].shape[0], 4, reg_max, *dist_preds[0].shape[2:])
    dist[img, :, :, y, x] = -30.0
    for side, b in enumerate(sides):
        dist[img, side, b, y, x] = 30.0


def test_predict_threshold_classwise_nms_and_empty_image():
    head = _head()
    cls_scores, dist_preds = _handmade_outputs()
    # cell (2, 2): centre (20, 20), box 20 -+ 8 = (12, 12, 28, 28), class 0 at 0.9
    _set_prior(cls_scores, dist_preds, 0, 2, 2, (0.9, 1e-5), (1, 1, 1, 1))
    # cell (3, 2): centre (28, 20), the same box, class 0 at 0.8 and class 1 at 0.7
    _set_prior(cls_scores, dist_preds, 0, 3, 2, (0.8, 0.7), (2, 1, 0, 1))
    results = head.predict_by_feat(cls_scores, dist_preds, batch_img_metas=_metas())
    first, second = results
    assert first.labels.tolist() == [0, 1]
    torch.testing.assert_close(first.scores, torch.tensor([0.9, 0.7]))
    torch.testing.assert_close(first.bboxes, torch.tensor([[12., 12., 28., 28.]] * 2))
    assert len(second) == 0 and second.bboxes.shape == (0, 4)
    # best class only
    single = head.predict_by_feat(cls_scores, dist_preds, batch_img_metas=_metas(),
                                  cfg=dict(TEST_CFG, multi_label=False))[0]
    assert single.labels.tolist() == [0] and single.scores.tolist() == pytest.approx([0.9])
    # max_per_img
    capped = head.predict_by_feat(cls_scores, dist_preds, batch_img_metas=_metas(),
                                  cfg=dict(TEST_CFG, max_per_img=1))[0]
    assert capped.labels.tolist() == [0]


def test_predict_rescales_letterboxed_boxes():
    head = _head()
    cls_scores, dist_preds = _handmade_outputs(batch=1)
    _set_prior(cls_scores, dist_preds, 0, 2, 2, (0.9, 1e-5), (1, 1, 1, 1))
    # a 32x16 (w x h) image scaled by 2 to 64x32 and padded by 16 above and below
    meta = dict(img_shape=(SIZE, SIZE), ori_shape=(16, 32), scale_factor=(2.0, 2.0),
                pad_param=[16.0, 16.0, 0.0, 0.0])
    result = head.predict_by_feat(cls_scores, dist_preds, batch_img_metas=[meta],
                                  rescale=True)[0]
    # (12, 12, 28, 28) - (0, 16, 0, 16) = (12, -4, 28, 12); / 2 = (6, -2, 14, 6); clipped
    torch.testing.assert_close(result.bboxes, torch.tensor([[6., 0., 14., 6.]]))
    plain = head.predict_by_feat(cls_scores, dist_preds, batch_img_metas=[meta])[0]
    torch.testing.assert_close(plain.bboxes, torch.tensor([[12., 12., 28., 28.]]))
