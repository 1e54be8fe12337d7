"""BatchTaskAlignedAssigner: hand-made cases with known answers, padding, and agreement with
a plain per-image, per-gt loop written from the TOOD / YOLOv8 definition."""
import math

import torch

from fusion_mamba.models.losses.yolov8_iou_loss import bbox_ciou
from fusion_mamba.models.task_modules.assigners.batch_task_aligned_assigner import \
    BatchTaskAlignedAssigner


def _ciou_by_hand(a, b):
    """CIoU of two xyxy boxes (python floats), the YOLOv8 formula without eps."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    wa, ha, wb, hb = a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1]
    iou = inter / (wa * ha + wb * hb - inter)
    cw = max(a[2], b[2]) - min(a[0], b[0])
    ch = max(a[3], b[3]) - min(a[1], b[1])
    rho2 = ((a[0] + a[2] - b[0] - b[2])**2 + (a[1] + a[3] - b[1] - b[3])**2) / 4
    v = 4 / math.pi**2 * (math.atan(wb / hb) - math.atan(wa / ha))**2
    alpha = v / (v - iou + 1)
    return iou - rho2 / (cw**2 + ch**2) - alpha * v


def test_ciou_known_values():
    gt, pred = [0., 0., 16., 8.], [0., 0., 16., 4.]
    value = bbox_ciou(torch.tensor(pred), torch.tensor(gt)).item()
    assert math.isclose(value, _ciou_by_hand(pred, gt), rel_tol=1e-5)
    assert math.isclose(bbox_ciou(torch.tensor(gt), torch.tensor(gt)).item(), 1.0,
                        rel_tol=1e-6)


def _grid_priors():
    """Centres of a 2x2 grid of stride 8: (4, 4), (12, 4), (4, 12), (12, 12)."""
    return torch.tensor([[4., 4.], [12., 4.], [4., 12.], [12., 12.]])


def test_known_assignment_single_gt():
    assigner = BatchTaskAlignedAssigner(num_classes=3, topk=10, alpha=0.5, beta=6.0)
    gt = [0., 0., 16., 8.]  # holds the centres of priors 0 and 1 only
    pred_bboxes = torch.tensor([[gt, [0., 0., 16., 4.], gt, gt]])
    pred_scores = torch.full((1, 4, 3), 0.25)
    pred_scores[0, 1, 2] = 0.64
    result = assigner(pred_bboxes, pred_scores, _grid_priors(), torch.tensor([[[2]]]),
                      torch.tensor([[gt]]), torch.ones(1, 1, 1))
    assert result['fg_mask'].tolist() == [[True, True, False, False]]
    assert result['assigned_labels'].tolist() == [[2, 2, 3, 3]]
    # metric t = s^0.5 * u^6; the best positive is normalised to the gt's best IoU (1)
    u1 = _ciou_by_hand([0., 0., 16., 4.], gt)
    t0, t1 = 0.25**0.5 * 1.0, 0.64**0.5 * u1**6
    expected = torch.zeros(1, 4, 3)
    expected[0, 0, 2] = 1.0 if t0 >= t1 else t0 / t1
    expected[0, 1, 2] = t1 / t0 if t0 >= t1 else 1.0
    torch.testing.assert_close(result['assigned_scores'], expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(result['assigned_bboxes'][0, :2], torch.tensor([gt, gt]))


def test_topk_one_keeps_best_prior():
    assigner = BatchTaskAlignedAssigner(num_classes=1, topk=1)
    gt = [0., 0., 16., 16.]  # holds all four centres
    pred_bboxes = torch.tensor([[[0., 0., 8., 8.], gt, [0., 0., 16., 8.], [8., 8., 16., 16.]]])
    result = assigner(pred_bboxes, torch.full((1, 4, 1), 0.5), _grid_priors(),
                      torch.zeros(1, 1, 1), torch.tensor([[gt]]), torch.ones(1, 1, 1))
    assert result['fg_mask'].tolist() == [[False, True, False, False]]
    torch.testing.assert_close(result['assigned_scores'][0, :, 0],
                               torch.tensor([0., 1., 0., 0.]))


def test_prior_in_two_gts_goes_to_higher_iou():
    assigner = BatchTaskAlignedAssigner(num_classes=2, topk=10)
    big, small = [0., 0., 16., 16.], [0., 0., 8., 8.]  # prior 0 lies in both
    pred_bboxes = torch.tensor([[small, big, big, big]])
    result = assigner(pred_bboxes, torch.full((1, 4, 2), 0.5), _grid_priors(),
                      torch.tensor([[[0], [1]]]), torch.tensor([[big, small]]),
                      torch.ones(1, 2, 1))
    assert result['fg_mask'].all()
    assert result['assigned_gt_inds'].tolist() == [[1, 0, 0, 0]]
    assert result['assigned_labels'].tolist() == [[1, 0, 0, 0]]


def test_gt_without_prior_inside_and_empty_images():
    assigner = BatchTaskAlignedAssigner(num_classes=2, topk=10)
    tiny = [5., 5., 7., 7.]  # no prior centre strictly inside
    pred_bboxes = torch.tensor([[[0., 0., 8., 8.]] * 4] * 2)
    scores = torch.full((2, 4, 2), 0.5)
    gt_bboxes = torch.tensor([[tiny], [[0., 0., 0., 0.]]])
    flags = torch.tensor([[[1.]], [[0.]]])  # image 1 has no gt (padding only)
    result = assigner(pred_bboxes, scores, _grid_priors(), torch.zeros(2, 1, 1), gt_bboxes,
                      flags)
    assert not result['fg_mask'].any()
    assert (result['assigned_labels'] == 2).all()
    assert result['assigned_scores'].abs().sum() == 0
    # a batch without any gt at all
    empty = assigner(pred_bboxes, scores, _grid_priors(), torch.zeros(2, 0, 1),
                     torch.zeros(2, 0, 4), torch.zeros(2, 0, 1))
    assert empty['assigned_scores'].shape == (2, 4, 2) and not empty['fg_mask'].any()
    assert (empty['assigned_labels'] == 2).all()


def _loop_reference(pred_bboxes, pred_scores, priors, gts, topk, alpha, beta, num_classes):
    """Task-aligned assignment of one image, one gt at a time."""
    num_priors = len(priors)
    scores = torch.zeros(num_priors, num_classes)
    labels = torch.full((num_priors, ), num_classes)
    claims = [[] for _ in range(num_priors)]
    metrics_all, ious_all = [], []
    for g, (box, label) in enumerate(gts):
        inside = [(box[0] < x < box[2]) and (box[1] < y < box[3])
                  for x, y in priors.tolist()]
        ious = torch.tensor([max(_ciou_by_hand(p, box), 0.0) if ok else 0.0
                             for p, ok in zip(pred_bboxes.tolist(), inside)])
        metric = pred_scores[:, label]**alpha * ious**beta * torch.tensor(inside)
        # well-posed case: every prior inside the gt has a distinct, positive metric
        assert (metric[torch.tensor(inside)] > 0).all()
        for j in metric.topk(min(topk, num_priors)).indices.tolist():
            if inside[j]:
                claims[j].append(g)
        metrics_all.append(metric)
        ious_all.append(ious)
    positives = [[] for _ in gts]
    for j, gs in enumerate(claims):
        if not gs:
            continue
        g = gs[0] if len(gs) == 1 else int(torch.stack([i[j] for i in ious_all]).argmax())
        positives[g].append(j)
        labels[j] = gts[g][1]
    for g, js in enumerate(positives):
        if not js:
            continue
        t = metrics_all[g][js]
        norm = t / t.max() * ious_all[g][js].max()
        for j, value in zip(js, norm.tolist()):
            scores[j, gts[g][1]] = value
    return labels, scores


def test_batched_matches_per_gt_loop():
    gen = torch.Generator().manual_seed(0)
    num_classes = 3
    # priors of a 4x4 grid (stride 8) and a 2x2 grid (stride 16)
    priors = torch.cat([
        torch.stack(torch.meshgrid(torch.arange(n) * s + s / 2, torch.arange(n) * s + s / 2,
                                   indexing='xy'), -1).reshape(-1, 2)
        for n, s in ((4, 8), (2, 16))])
    num_priors, batch = len(priors), 3
    centres = priors[None].expand(batch, -1, -1)
    half = torch.rand(batch, num_priors, 2, generator=gen) * 6 + 6
    pred_bboxes = torch.cat([centres - half, centres + half], -1)
    pred_scores = torch.rand(batch, num_priors, num_classes, generator=gen)
    per_image = [[([2., 3., 20., 17.], 1), ([10., 9., 30., 30.], 0), ([0., 0., 12., 12.], 2)],
                 [],
                 [([4., 4., 28., 28.], 2)]]
    num_gt = max(len(g) for g in per_image)
    gt_bboxes = torch.zeros(batch, num_gt, 4)
    gt_labels = torch.zeros(batch, num_gt, 1, dtype=torch.long)
    flags = torch.zeros(batch, num_gt, 1)
    for i, gts in enumerate(per_image):
        for g, (box, label) in enumerate(gts):
            gt_bboxes[i, g], gt_labels[i, g], flags[i, g] = torch.tensor(box), label, 1
    assigner = BatchTaskAlignedAssigner(num_classes, topk=4, alpha=0.5, beta=6.0)
    result = assigner(pred_bboxes, pred_scores, priors, gt_labels, gt_bboxes, flags)
    for i, gts in enumerate(per_image):
        labels, scores = _loop_reference(pred_bboxes[i], pred_scores[i], priors, gts, 4, 0.5,
                                         6.0, num_classes)
        assert result['assigned_labels'][i].tolist() == labels.tolist()
        torch.testing.assert_close(result['assigned_scores'][i], scores, rtol=1e-4,
                                   atol=1e-6)
    assert result['fg_mask'][0].sum() > 4 and not result['fg_mask'][1].any()
