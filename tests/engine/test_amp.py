"""Mixed precision: the autocast dtype chosen for ``--amp``, the test loop that uses it, and
the loss-scale monitor that makes skipped fp16 steps visible."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub

from fusion_mamba.engine import (AmpTestLoop, LossScaleMonitorHook, amp_optim_wrapper_cfg,
                                 resolve_amp_dtype)


def test_amp_dtype_defaults_to_bf16_on_cpu_and_rejects_unknown_names():
    assert resolve_amp_dtype(None, 'cpu') == 'bf16'
    assert resolve_amp_dtype('fp16', 'cpu') == 'fp16'
    with pytest.raises(ValueError, match='--amp-dtype'):
        resolve_amp_dtype('int8', 'cpu')


def test_amp_test_loop_rejects_unknown_dtype():
    with pytest.raises(ValueError, match='dtype'):
        AmpTestLoop.__init__(object.__new__(AmpTestLoop), runner=None, dataloader=None,
                             evaluator=None, dtype='float8')


class _Runner(SimpleNamespace):
    pass


def _scaled_step(model, optimizer, scaler, overflow):
    """One optimizer step through the scaler; ``overflow`` makes a gradient infinite."""
    optimizer.zero_grad()
    loss = (model(torch.ones(1, 2)) * (float('inf') if overflow else 1.0)).sum()
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


@pytest.mark.parametrize('overflows', [[False, True, False, True], [False, False]])
def test_loss_scale_monitor_counts_the_steps_the_scaler_skipped(overflows):
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler('cpu', init_scale=1024.0)
    hub = MessageHub.get_instance('loss_scale_monitor_test')
    runner = _Runner(optim_wrapper=SimpleNamespace(loss_scaler=scaler), message_hub=hub, iter=0)
    hook = LossScaleMonitorHook(warn_after=2)
    weights = []
    for it, overflow in enumerate(overflows):
        runner.iter = it
        hook.before_train_iter(runner, it)
        before = model.weight.detach().clone()
        _scaled_step(model, optimizer, scaler, overflow)
        hook.after_train_iter(runner, it)
        weights.append(torch.equal(before, model.weight.detach()))
    # an overflowing step leaves the weights untouched: the hook's count is the skipped steps
    assert weights == overflows
    assert hub.get_scalar('train/skipped_steps').current() == sum(overflows)
    assert hub.get_scalar('train/loss_scale').current() == scaler.get_scale()


def test_loss_scale_monitor_is_silent_without_a_scaler():
    hub = MessageHub.get_instance('loss_scale_monitor_fp32')
    runner = _Runner(optim_wrapper=SimpleNamespace(), message_hub=hub, iter=0)
    hook = LossScaleMonitorHook()
    hook.before_train_iter(runner, 0)
    hook.after_train_iter(runner, 0)
    assert 'train/loss_scale' not in hub.log_scalars


def test_amp_optim_wrapper_starts_fp16_scaling_below_the_yolov8_gradient_overflow():
    sgd = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01), clip_grad=None)
    fp16 = amp_optim_wrapper_cfg(sgd, 'fp16')
    assert (fp16['type'], fp16['dtype'], fp16['optimizer']) == ('AmpOptimWrapper', 'float16',
                                                                sgd['optimizer'])
    scaler = torch.amp.GradScaler('cpu', **fp16['loss_scale'])
    # a gradient element of 200 (the size the batch-scaled YOLOv8 loss gives) stays finite in
    # float16 at the first scale, where torch's default first scale overflows it
    assert torch.isfinite(torch.tensor(200. * scaler.get_scale(), dtype=torch.float16))
    assert torch.isinf(torch.tensor(200. * torch.amp.GradScaler('cpu').get_scale(),
                                    dtype=torch.float16))
    assert amp_optim_wrapper_cfg(sgd, 'bf16')['loss_scale'] == 'dynamic'
    assert amp_optim_wrapper_cfg(dict(sgd, loss_scale=512.), 'fp16')['loss_scale'] == 512.
    assert sgd['type'] == 'OptimWrapper'  # the config is not modified
