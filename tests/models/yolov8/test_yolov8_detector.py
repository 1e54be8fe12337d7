"""A single-stream YOLOv8 detector through mmdet's SingleStageDetector and DetDataPreprocessor:
loss and prediction on a batch with an image without gts, and a few optimisation steps."""
import copy

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.optim import OptimWrapper
from mmengine.structures import InstanceData

from fusion_mamba.models.backbones.yolov8_csp_darknet import YOLOv8CSPDarknet  # noqa: F401
from fusion_mamba.models.dense_heads.yolov8_head import YOLOv8Head  # noqa: F401
from fusion_mamba.models.necks.yolov8_pafpn import YOLOv8PAFPN  # noqa: F401

register_all_modules()  # mmdet's default scope, for DetDataPreprocessor

DEEPEN, WIDEN, SIZE = 0.33, 0.125, 64
MODEL = dict(
    type='SingleStageDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[0., 0., 0.],
                           std=[255., 255., 255.], bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='YOLOv8CSPDarknet', deepen_factor=DEEPEN, widen_factor=WIDEN),
    neck=dict(type='YOLOv8PAFPN', in_channels=[256, 512, 1024],
              out_channels=[256, 512, 1024], deepen_factor=DEEPEN, widen_factor=WIDEN),
    bbox_head=dict(type='YOLOv8Head', num_classes=2, in_channels=[256, 512, 1024],
                   widen_factor=WIDEN),
    train_cfg=dict(assigner=dict(type='BatchTaskAlignedAssigner', num_classes=2, topk=10,
                                 alpha=0.5, beta=6.0, eps=1e-9)),
    test_cfg=dict(score_thr=0.001, nms=dict(type='nms', iou_threshold=0.7), max_per_img=300,
                  nms_pre=30000))


def _batch():
    torch.manual_seed(0)
    inputs, samples = [], []
    gts = [(torch.tensor([[8., 10., 40., 50.], [30., 4., 60., 28.]]), torch.tensor([0, 1])),
           (torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))]
    for bboxes, labels in gts:
        img = torch.randint(0, 60, (3, SIZE, SIZE), dtype=torch.uint8)
        for (x1, y1, x2, y2), label in zip(bboxes.int().tolist(), labels.tolist()):
            img[label, y1:y2, x1:x2] = 230  # a bright object per class channel
        sample = DetDataSample(metainfo=dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE),
                                             scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=bboxes, labels=labels)
        inputs.append(img)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _model():
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(MODEL))
    model.init_weights()
    return model


def test_loss_and_predict_with_an_image_without_gt():
    model = _model()
    model.train()
    data = model.data_preprocessor(_batch(), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_dfl'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())

    model.eval()
    with torch.no_grad():
        results = model.test_step(_batch())
    assert len(results) == 2
    for result in results:
        pred = result.pred_instances
        assert pred.bboxes.shape[1] == 4 and len(pred) <= 300
        assert len(pred.scores) == len(pred.labels) == len(pred.bboxes)
        assert (pred.scores > 0.001).all() and set(pred.labels.tolist()) <= {0, 1}
        assert (pred.bboxes[:, 2:] <= SIZE).all() and (pred.bboxes[:, :2] >= 0).all()


def _batch_loss(model):
    """Total loss of the fixed batch (train-mode forward, no update)."""
    with torch.no_grad():
        return float(sum(model(**model.data_preprocessor(_batch(), True), mode='loss').values()))


def test_optimisation_steps_lower_the_loss():
    model = _model()
    model.train()
    optim_wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
    before = _batch_loss(model)
    history = [model.train_step(_batch(), optim_wrapper)['loss'].item() for _ in range(10)]
    after = _batch_loss(model)
    assert all(torch.isfinite(torch.tensor(history)))
    assert after < 0.8 * before, (before, history, after)
