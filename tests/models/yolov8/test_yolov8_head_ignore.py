"""YOLOv8Head's loss with ignore regions (KAIST's ignore boxes): priors whose centre lies in
an ignore region and that no real gt claims add no classification loss; everything else is
trained as before."""
import torch
from mmengine.structures import InstanceData

from fusion_mamba.models.dense_heads.yolov8_head import YOLOv8Head

STRIDES = (8, 16, 32)
SIZE = 64
NUM_CLASSES = 2
TRAIN_CFG = dict(assigner=dict(type='BatchTaskAlignedAssigner', num_classes=NUM_CLASSES,
                               topk=10, alpha=0.5, beta=6.0, eps=1e-9))
GT = InstanceData(bboxes=torch.tensor([[6., 8., 30., 40.]]), labels=torch.tensor([0]))
IGNORE = InstanceData(bboxes=torch.tensor([[36., 34., 62., 62.]]), labels=torch.tensor([0]))


def _head():
    head = YOLOv8Head(num_classes=NUM_CLASSES, in_channels=[16, 32, 64], train_cfg=TRAIN_CFG)
    head.init_weights()
    return head


def _predictions(seed=0):
    """Random class and distance logits, per level (1, C, H, W) / (1, 64, H, W)."""
    gen = torch.Generator().manual_seed(seed)
    cls = [torch.randn(1, NUM_CLASSES, SIZE // s, SIZE // s, generator=gen) for s in STRIDES]
    dist = [torch.randn(1, 64, SIZE // s, SIZE // s, generator=gen) for s in STRIDES]
    return cls, dist


def _centres_in(box, stride, strict=True):
    """(H, W) mask of the cells of a level whose centre lies inside box (x1, y1, x2, y2)."""
    centres = (torch.arange(SIZE // stride) + 0.5) * stride
    x1, y1, x2, y2 = box.tolist()
    inside_x = (centres > x1) & (centres < x2)
    inside_y = (centres > y1) & (centres < y2)
    return inside_y[:, None] & inside_x[None, :]


def _changed(preds, box, delta=4.0):
    """Copies of the logits with every prior centred inside ``box`` changed by ``delta``."""
    cls, dist = preds
    new_cls, new_dist = [], []
    for c, d, s in zip(cls, dist, STRIDES):
        mask = _centres_in(box, s).to(c.dtype)
        new_cls.append(c + delta * mask)
        new_dist.append(d - delta * mask)
    assert sum(int(_centres_in(box, s).sum()) for s in STRIDES) > 0
    return new_cls, new_dist


def _losses(head, preds, ignore):
    cls, dist = preds
    metas = [dict(img_shape=(SIZE, SIZE))]
    return head.loss_by_feat(cls, dist, [GT], metas, ignore)


def test_predictions_on_an_ignore_region_change_no_loss_term():
    head = _head()
    preds = _predictions()
    other = _changed(preds, IGNORE.bboxes[0])
    with_ignore = _losses(head, preds, [IGNORE])
    with_ignore_other = _losses(head, other, [IGNORE])
    for name in ('loss_cls', 'loss_bbox', 'loss_dfl'):
        torch.testing.assert_close(with_ignore[name], with_ignore_other[name])
    # without the ignore region the same priors are background: their logits count
    assert not torch.allclose(_losses(head, preds, None)['loss_cls'],
                              _losses(head, other, None)['loss_cls'])
    # an empty ignore list (or None per image) is no ignore region
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    for ignore in ([empty], [None]):
        torch.testing.assert_close(_losses(head, preds, ignore)['loss_cls'],
                                   _losses(head, preds, None)['loss_cls'])


def test_predictions_outside_ignore_regions_still_count():
    head = _head()
    preds = _predictions()
    background = torch.tensor([36., 2., 62., 30.])  # neither gt nor ignore
    other = _changed(preds, background)
    assert not torch.allclose(_losses(head, preds, [IGNORE])['loss_cls'],
                              _losses(head, other, [IGNORE])['loss_cls'])


def test_priors_assigned_to_a_gt_inside_an_ignore_region_are_trained():
    """An ignore box covering a real gt (a crowd around a person): the gt's positives keep
    their classification loss, the other priors of the region get none."""
    head = _head()
    cls, dist = _predictions()
    cls = [c.requires_grad_() for c in cls]
    dist = [d.requires_grad_() for d in dist]
    crowd = InstanceData(bboxes=torch.tensor([[0., 0., 48., 56.]]), labels=torch.tensor([0]))
    losses = head.loss_by_feat(cls, dist, [GT], [dict(img_shape=(SIZE, SIZE))], [crowd])
    # positives: the priors the box loss trains
    box_grads = torch.autograd.grad(losses['loss_bbox'], dist, retain_graph=True)
    cls_grads = torch.autograd.grad(losses['loss_cls'], cls)
    num_pos = num_ignored = 0
    for box_grad, cls_grad, s in zip(box_grads, cls_grads, STRIDES):
        positive = box_grad[0].abs().sum(0) > 0
        trained = cls_grad[0].abs().sum(0) > 0
        in_crowd = _centres_in(crowd.bboxes[0], s)
        assert torch.equal(trained, positive | ~in_crowd)
        num_pos += int(positive.sum())
        num_ignored += int((in_crowd & ~positive).sum())
    assert num_pos > 0 and num_ignored > 0
