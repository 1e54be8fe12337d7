"""YOLOv8's learning-rate recipe with mmengine: LinearLR by epoch to lr0 * lrf and
YOLOv8WarmupHook, checked iteration by iteration against ultralytics' formulas, and the
schedule of the paper's config."""
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader

import fusion_mamba  # noqa: F401  registers the components

CONFIG_ROOT = Path(__file__).resolve().parents[2] / 'configs' / 'fusion_mamba'
LR0, LRF, MOMENTUM = 0.01, 0.01, 0.9
WARMUP_BIAS_LR, WARMUP_MOMENTUM = 0.1, 0.8


class ToyModel(BaseModel):
    """A linear layer (weight and bias) and a norm (weight and bias)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.norm = nn.LayerNorm(2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=self.norm(self.fc(inputs)).square().mean())


class RecordStepHook(Hook):
    """Records (epoch, iter, lr and momentum of every group) as the optimizer step sees them:
    after the warm-up hook's before_train_iter, before any after_train_iter."""

    priority = 'BELOW_NORMAL'

    def __init__(self):
        self.steps = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        groups = runner.optim_wrapper.optimizer.param_groups
        self.steps.append((runner.epoch, runner.iter, [g['lr'] for g in groups],
                           [g['momentum'] for g in groups]))


class StopAfterHook(Hook):
    """Ends training after ``epochs`` epochs (as an interruption would)."""

    def __init__(self, epochs):
        self.epochs = epochs

    def after_train_epoch(self, runner):
        if runner.epoch + 1 >= self.epochs:
            runner.train_loop.stop_training = True


def ultralytics_values(epoch, step, max_epochs, warmup_iters, is_bias):
    """lr and momentum of a group at an iteration, as ultralytics' trainer computes them."""
    lf = max(1 - epoch / max_epochs, 0) * (1.0 - LRF) + LRF  # linear, cos_lr=False
    scheduled = LR0 * lf
    if step >= warmup_iters:
        return scheduled, MOMENTUM
    start = WARMUP_BIAS_LR if is_bias else 0.0
    return (float(np.interp(step, [0, warmup_iters], [start, scheduled])),
            float(np.interp(step, [0, warmup_iters], [WARMUP_MOMENTUM, MOMENTUM])))


def run(work_dir, max_epochs, warmup_epochs, min_warmup_iters, resume_from=None,
        stop_after=None, iters_per_epoch=4):
    recorder = RecordStepHook()
    torch.manual_seed(0)
    data = [torch.randn(2) for _ in range(iters_per_epoch)]
    hooks = [] if stop_after is None else [StopAfterHook(stop_after)]
    runner = Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=DataLoader(data, batch_size=1,
                                    collate_fn=lambda batch: dict(inputs=torch.stack(batch))),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(
            constructor='StateSpaceOptimWrapperConstructor',
            optimizer=dict(type='SGD', lr=LR0, momentum=MOMENTUM, weight_decay=0.001),
            paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0)),
        param_scheduler=[dict(type='LinearLR', start_factor=1.0, end_factor=LRF, begin=0,
                              end=max_epochs + 1, by_epoch=True)],
        custom_hooks=[dict(type='YOLOv8WarmupHook', warmup_epochs=warmup_epochs,
                           min_warmup_iters=min_warmup_iters, warmup_bias_lr=WARMUP_BIAS_LR,
                           warmup_momentum=WARMUP_MOMENTUM), recorder, *hooks],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=1)),
        load_from=resume_from, resume=resume_from is not None,
        default_scope='mmdet', experiment_name=f'warmup_{uuid.uuid4().hex}')
    runner.train()
    return runner, recorder.steps


@pytest.mark.parametrize('warmup_epochs,min_iters,expected_iters', [
    (1.5, 0, 6),  # ends in the middle of the second epoch
    (0.5, 5, 5),  # at least min_warmup_iters
])
def test_lr_and_momentum_follow_ultralytics(tmp_path, warmup_epochs, min_iters,
                                            expected_iters):
    max_epochs = 3
    runner, steps = run(tmp_path, max_epochs, warmup_epochs, min_iters)
    names = [name for name, _ in runner.model.named_parameters()]
    is_bias = ['bias' in name for name in names]
    assert len(runner.optim_wrapper.optimizer.param_groups) == len(names) == 4
    assert len(steps) == 3 * 4
    for epoch, step, lrs, momenta in steps:
        for lr, momentum, bias in zip(lrs, momenta, is_bias):
            want_lr, want_momentum = ultralytics_values(epoch, step, max_epochs,
                                                        expected_iters, bias)
            assert lr == pytest.approx(want_lr, rel=1e-6, abs=1e-12), (epoch, step, bias)
            assert momentum == pytest.approx(want_momentum, rel=1e-6), (epoch, step)
    # the bias lr fell from 0.1, the weight lr rose from 0
    assert steps[0][2][is_bias.index(True)] == pytest.approx(WARMUP_BIAS_LR)
    assert steps[0][2][is_bias.index(False)] == 0
    # what the schedulers and the checkpoints keep is the plain schedule (stepped once
    # more after the last epoch: lf(E) = lrf)
    for group in runner.optim_wrapper.param_groups:
        assert group['lr'] == pytest.approx(LR0 * LRF)
        assert group['momentum'] == MOMENTUM


def test_resuming_inside_the_warm_up_continues_it(tmp_path):
    _, uninterrupted = run(tmp_path / 'a', 3, 1.5, 0)
    # interrupted after epoch 0, inside the 6-iteration warm-up
    run(tmp_path / 'b', 3, 1.5, 0, stop_after=1)
    checkpoint = str(tmp_path / 'b' / 'epoch_1.pth')
    _, resumed = run(tmp_path / 'b', 3, 1.5, 0, resume_from=checkpoint)
    assert [s[1] for s in resumed] == list(range(4, 12))
    for got, want in zip(resumed, uninterrupted[4:]):
        assert got[:2] == want[:2]
        np.testing.assert_allclose(got[2], want[2], rtol=1e-6)
        np.testing.assert_allclose(got[3], want[3], rtol=1e-6)


def test_paper_config_schedule_is_yolov8s():
    cfg = Config.fromfile(str(CONFIG_ROOT / 'fm-yolov8_l_1xb4-150e_llvip.py'))
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.momentum, optimizer.weight_decay) == (
        'SGD', 0.01, 0.9, 0.001)  # the paper's
    assert cfg.param_scheduler == [dict(type='LinearLR', start_factor=1.0, end_factor=0.01,
                                        begin=0, end=151, by_epoch=True)]
    warmup = [h for h in cfg.custom_hooks if h.type == 'YOLOv8WarmupHook']
    assert warmup == [dict(type='YOLOv8WarmupHook', warmup_epochs=3.0, min_warmup_iters=100,
                           warmup_bias_lr=0.1, warmup_momentum=0.8)]
    assert [h.type for h in cfg.custom_hooks].count('EMAHook') == 1
