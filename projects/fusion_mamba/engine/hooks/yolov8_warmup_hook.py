"""YOLOv8's warm-up of the learning rate (biases from above) and of the momentum."""
from typing import List, Optional, Sequence, Set

import numpy as np
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmdet.registry import HOOKS


@HOOKS.register_module()
class YOLOv8WarmupHook(Hook):
    """Warm up every parameter group over the first ``n`` training iterations as YOLOv8
    (ultralytics) does, on top of the epoch-wise lr of the param schedulers.

    At iteration ``i < n`` of epoch ``e``, with ``lr_g`` and ``m_g`` the values the param
    schedulers give group ``g`` for epoch ``e`` (YOLOv8: ``lr0 * lf(e)``):

    - ``lr = interp(i, [0, n], [warmup_bias_lr, lr_g])`` for bias groups, whose lr falls
      from ``warmup_bias_lr`` (ultralytics: 0.1) to the scheduled lr,
    - ``lr = interp(i, [0, n], [0, lr_g])`` for all other groups, rising from 0,
    - ``momentum = interp(i, [0, n], [warmup_momentum, m_g])`` (groups with a momentum),

    with ``n = max(round(warmup_epochs * iters_per_epoch), min_warmup_iters)`` (YOLOv8:
    3 epochs, at least 100 iterations). A group is a bias group when every parameter in it
    has ``bias`` in its name (ultralytics' rule, which takes standalone biases such as the
    state-space ``dt_proj_bias`` too); this needs one group per parameter, i.e. a
    ``paramwise_cfg`` (any parameter-wise optimizer constructor gives that).

    The warm-up values are set before each iteration and the scheduled values put back
    after it, before :class:`ParamSchedulerHook` steps (this hook's priority is higher), so
    the chained param schedulers and the optimizer state saved in checkpoints only ever see
    their own values; resuming in the middle of the warm-up continues it.

    Args:
        warmup_epochs (float): Warm-up length in epochs (fractions allowed); 0 disables.
        min_warmup_iters (int): Lower bound on the warm-up iterations.
        warmup_bias_lr (float): Initial lr of the bias groups.
        warmup_momentum (float): Initial momentum.
    """

    priority = 'NORMAL'  # before ParamSchedulerHook ('LOW') in after_train_iter

    def __init__(self,
                 warmup_epochs: float = 3.0,
                 min_warmup_iters: int = 100,
                 warmup_bias_lr: float = 0.1,
                 warmup_momentum: float = 0.8) -> None:
        if warmup_epochs < 0 or min_warmup_iters < 0:
            raise ValueError('YOLOv8WarmupHook: warmup_epochs and min_warmup_iters must be '
                             f'>= 0, got {warmup_epochs} and {min_warmup_iters}')
        self.warmup_epochs = warmup_epochs
        self.min_warmup_iters = min_warmup_iters
        self.warmup_bias_lr = warmup_bias_lr
        self.warmup_momentum = warmup_momentum
        self.warmup_iters = 0
        self._bias_groups: List[bool] = []
        self._scheduled: Optional[List[dict]] = None

    def before_train(self, runner) -> None:
        """Fix the warm-up length and find the bias groups."""
        if self.warmup_epochs > 0:
            iters_per_epoch = len(runner.train_dataloader)
            self.warmup_iters = max(round(self.warmup_epochs * iters_per_epoch),
                                    self.min_warmup_iters)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        bias_ids = bias_parameter_ids(model.named_parameters())
        # mmengine's wrapper lists a pseudo group last (the base lr it logs): not a bias group
        self._bias_groups = [
            isinstance(group['params'], list) and len(group['params']) > 0
            and all(id(p) in bias_ids for p in group['params'])
            for group in runner.optim_wrapper.param_groups
        ]

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """Replace the scheduled lr / momentum by the warm-up values."""
        step = runner.iter
        if step >= self.warmup_iters:
            return
        groups = runner.optim_wrapper.param_groups
        self._scheduled = [{k: g[k] for k in ('lr', 'momentum') if k in g} for g in groups]
        span = [0, self.warmup_iters]
        for group, is_bias, scheduled in zip(groups, self._bias_groups, self._scheduled):
            start = self.warmup_bias_lr if is_bias else 0.0
            group['lr'] = float(np.interp(step, span, [start, scheduled['lr']]))
            if 'momentum' in scheduled:
                group['momentum'] = float(
                    np.interp(step, span, [self.warmup_momentum, scheduled['momentum']]))
        # RuntimeInfoHook logged the scheduled values already: log what this step uses.
        for name, values in runner.optim_wrapper.get_lr().items():
            runner.message_hub.update_scalar(f'train/{name}', values[0])

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Put the scheduled values back for the param schedulers."""
        if self._scheduled is None:
            return
        for group, scheduled in zip(runner.optim_wrapper.param_groups, self._scheduled):
            group.update(scheduled)
        self._scheduled = None


def bias_parameter_ids(named_parameters: Sequence) -> Set[int]:
    """ids of the parameters with ``bias`` in their full name (ultralytics' bias group)."""
    return {id(p) for name, p in named_parameters if 'bias' in name}
