"""ScoreThresholdHook picks best-F1 thresholds at validation and stores them in
checkpoints; PairedDetVisualizationHook draws with them (and with the ground truth)."""
import os
import uuid
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer
from mmengine.logging import MessageHub, MMLogger
from mmengine.runner import CheckpointLoader, save_checkpoint
from mmengine.structures import InstanceData

from fusion_mamba.engine import (PairedDetVisualizationHook, ScoreThresholdHook,
                                 checkpoint_score_thresholds)

CLASSES = ('person', 'car', 'sign')


def instances(boxes, labels, scores=None) -> InstanceData:
    data = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                        labels=torch.tensor(labels, dtype=torch.long))
    if scores is not None:
        data.scores = torch.tensor(scores, dtype=torch.float32)
    return data


def sample(img_id, preds, gts, ignored=((), ())) -> DetDataSample:
    data = DetDataSample(metainfo=dict(img_id=img_id))
    data.pred_instances = instances(*preds)
    data.gt_instances = instances(*gts)
    data.ignored_instances = instances(*ignored)
    return data


def make_runner(**info) -> SimpleNamespace:
    hub = MessageHub.get_instance(f'score_thr_{uuid.uuid4().hex}')
    for key, value in info.items():
        hub.update_info(key, value)
    dataset = SimpleNamespace(metainfo=dict(classes=CLASSES))
    return SimpleNamespace(message_hub=hub, hooks=[],
                           logger=MMLogger.get_instance(f'score_thr_{uuid.uuid4().hex}'),
                           val_loop=SimpleNamespace(dataloader=SimpleNamespace(dataset=dataset)))


# Two validation images. person: scores .9 TP, .8 FP, .7 TP (image 2), .6 on an ignore
# region (left out), 3 boxes -> F1 at k = 1, 2, 3: .5, .4, .667 -> threshold .35.
# car: .5 TP, .4 FP, 1 box -> F1 1 at k = 1 -> threshold .45. sign: boxes, no detection.
VAL_IMAGES = [
    sample(0, ([[0, 0, 10, 10], [30, 30, 40, 40], [0, 0, 10, 10], [20, 20, 30, 30]],
               [0, 0, 1, 1], [0.9, 0.8, 0.5, 0.4]),
           ([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]], [0, 1, 2])),
    sample(1, ([[0, 0, 10, 10], [60, 60, 70, 70]], [0, 0], [0.7, 0.6]),
           ([[0, 0, 10, 10], [80, 80, 90, 90]], [0, 0]),
           ([[50, 50, 100, 100]], [0])),
]
EXPECTED = {'person': 0.35, 'car': 0.45}


def validate(hook, runner, batches):
    hook.before_val_epoch(runner)
    for index, batch in enumerate(batches):
        hook.after_val_iter(runner, index, None, batch)
    hook.after_val_epoch(runner, {})


def test_validation_thresholds_survive_a_checkpoint_save_and_load(tmp_path):
    hook, runner = ScoreThresholdHook(), make_runner()
    validate(hook, runner, [VAL_IMAGES[:1], VAL_IMAGES[1:]])
    assert runner.message_hub.get_info('score_thresholds') == pytest.approx(EXPECTED)

    checkpoint = dict(meta=dict(epoch=1), state_dict={})
    hook.before_save_checkpoint(runner, checkpoint)
    save_checkpoint(checkpoint, str(tmp_path / 'epoch_1.pth'))
    loaded = CheckpointLoader.load_checkpoint(str(tmp_path / 'epoch_1.pth'))
    assert checkpoint_score_thresholds(loaded) == pytest.approx(EXPECTED)
    assert loaded['meta']['epoch'] == 1


def test_a_validation_starts_afresh_and_counts_an_image_once():
    hook, runner = ScoreThresholdHook(), make_runner()
    validate(hook, runner, [VAL_IMAGES])
    # Padded distributed batches repeat images: the same img_id counts once.
    validate(hook, runner, [VAL_IMAGES[:1], VAL_IMAGES[:1]])
    # image 0 alone: person .9 TP, .8 FP, 2 boxes -> best k = 1 (F1 .667), threshold .85
    assert runner.message_hub.get_info('score_thresholds') == pytest.approx(
        {'person': 0.85, 'car': 0.45})


def test_after_train_writes_the_last_validation_into_the_last_checkpoint(tmp_path):
    path = str(tmp_path / 'epoch_2.pth')
    save_checkpoint(dict(meta=dict(epoch=2, score_thresholds={'person': 0.1}),
                         state_dict={'w': torch.ones(2)}), path)
    runner = make_runner(score_thresholds=EXPECTED, last_ckpt=path)
    ScoreThresholdHook().after_train(runner)
    loaded = CheckpointLoader.load_checkpoint(path)
    assert checkpoint_score_thresholds(loaded) == EXPECTED
    assert loaded['meta']['epoch'] == 2 and torch.equal(loaded['state_dict']['w'],
                                                        torch.ones(2))
    # Up to date: not written again.
    stamp = os.stat(path).st_mtime_ns
    ScoreThresholdHook().after_train(runner)
    assert os.stat(path).st_mtime_ns == stamp


@pytest.fixture
def vis_hook_factory():
    visualizer = DetLocalVisualizer.get_instance(f'paired_vis_{uuid.uuid4().hex}')
    visualizer.dataset_meta = dict(classes=CLASSES, palette=[(255, 0, 0), (0, 255, 0),
                                                             (0, 0, 255)])
    return PairedDetVisualizationHook


def test_visualization_threshold_priority(vis_hook_factory):
    checkpoint = dict(meta=dict(score_thresholds={'person': 0.6, 'sign': 0.2}))
    hook = vis_hook_factory()
    assert hook.score_thresholds(make_runner()).tolist() == [0.3, 0.3, 0.3]
    hook.after_load_checkpoint(make_runner(), checkpoint)
    # the checkpoint's, 0.3 for the class without one
    assert hook.score_thresholds(make_runner()).tolist() == [0.6, 0.3, 0.2]
    # this run's validation comes first
    assert hook.score_thresholds(make_runner(score_thresholds={'car': 0.7})).tolist() == [
        0.3, 0.7, 0.3]
    explicit = vis_hook_factory(score_thr=0.5)
    explicit.after_load_checkpoint(make_runner(), checkpoint)
    assert explicit.score_thresholds(make_runner(score_thresholds={'car': 0.7})) == 0.5


def test_drawing_with_per_class_thresholds_and_ground_truth(vis_hook_factory, tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for name in ('vis.png', 'ir.png'):
        paths.append(str(tmp_path / name))
        cv2.imwrite(paths[-1], rng.integers(0, 60, (64, 120, 3), dtype=np.uint8))
    data = sample(0, ([[5, 5, 30, 30], [70, 30, 110, 60]], [0, 1], [0.5, 0.5]),
                  ([[8, 8, 20, 20]], [2]))
    data.set_metainfo(dict(img_path=paths[0], ir_path=paths[1]))
    rgb = [cv2.imread(p)[..., ::-1].astype(float) for p in paths]

    hook = vis_hook_factory(draw_gt=True)
    both = hook.draw_pair(data, np.array([0.4, 0.4, 0.4]))
    car_only = hook.draw_pair(data, np.array([0.6, 0.4, 0.4]))  # person's 0.5 < 0.6
    none = hook.draw_pair(data, 1.0)
    assert both.shape == (128, 240, 3)  # ground truth row above the prediction row
    for drawing in (both, car_only, none):  # the ground truth row is the same
        assert np.array_equal(drawing[:64], both[:64])
    for half, image in zip((slice(0, 120), slice(120, 240)), rgb):
        assert np.abs(none[64:, half] - image).max() < 1  # nothing drawn
        assert np.abs(both[:64, half] - image).max() > 50  # the sign's box
        person = (slice(64 + 5, 64 + 31), half.start + np.arange(5, 31))
        car = (slice(64 + 30, 64 + 61), half.start + np.arange(70, 111))
        assert np.abs(car_only[person] - both[person]).max() > 50  # person not drawn
        assert np.array_equal(car_only[car], both[car])
    assert vis_hook_factory().draw_pair(data, 0.4).shape == (64, 240, 3)
