"""Make the loss scaler of mixed-precision training visible in the training log."""
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmdet.registry import HOOKS


@HOOKS.register_module()
class LossScaleMonitorHook(Hook):
    """Log the dynamic loss scale and count the optimizer steps it skipped.

    ``AmpOptimWrapper``'s ``GradScaler`` skips a step whose gradients overflowed and halves
    its scale; nothing in mmengine's log shows it (the logged ``grad_norm`` is inf / nan on
    such a step and, being averaged over the log window, stays nan for the whole window).
    After every iteration this hook puts ``train/loss_scale`` and the running count
    ``train/skipped_steps`` into the message hub (printed by the logger hook with the
    losses), and warns for every skipped step after ``warn_after`` iterations, when the
    scale should have settled. Without a loss scaler (plain fp32 training) it does nothing.

    Args:
        warn_after (int): Iterations during which skipped steps are expected (the scaler
            starts at 2^16 and halves until the gradients fit in fp16).
    """

    priority = 'LOW'

    def __init__(self, warn_after: int = 20):
        self.warn_after = warn_after
        self.skipped = 0
        self._scale_before = None

    @staticmethod
    def _scaler(runner):
        scaler = getattr(runner.optim_wrapper, 'loss_scaler', None)
        return scaler if scaler is not None and scaler.is_enabled() else None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        scaler = self._scaler(runner)
        self._scale_before = scaler.get_scale() if scaler is not None else None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        scaler = self._scaler(runner)
        if scaler is None or self._scale_before is None:
            return
        scale = scaler.get_scale()
        # GradScaler.update() multiplies the scale by backoff_factor (< 1) exactly when the
        # step found inf / nan gradients and was skipped.
        if scale < self._scale_before:
            self.skipped += 1
            if runner.iter >= self.warn_after:
                print_log(f'iteration {runner.iter + 1}: gradients overflowed in mixed '
                          f'precision, optimizer step skipped (loss scale {self._scale_before:g}'
                          f' -> {scale:g}; {self.skipped} skipped so far)', logger='current',
                          level=30)
        runner.message_hub.update_scalar('train/loss_scale', scale)
        runner.message_hub.update_scalar('train/skipped_steps', self.skipped)
