"""Check that data-parallel ranks hold identical weights."""
import hashlib

import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_gather_object, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner


def parameter_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter, in registration order (bit-exact)."""
    digest = hashlib.sha256()
    for name, tensor in model.named_parameters():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@HOOKS.register_module()
class RankSyncCheckHook(Hook):
    """Every ``interval`` training iterations and after training, gather each rank's
    :func:`parameter_digest`, log them all and raise if the ranks disagree.

    DDP keeps the parameters of all replicas identical by averaging gradients; a rank that
    drifts (a parameter outside the all-reduce, a rank-dependent update) trains a different
    model. Buffers are not compared: BatchNorm running statistics are per rank unless the
    config uses ``SyncBN`` (``sync_bn='torch'``, CUDA only).

    Args:
        interval (int): Iterations between checks (0: only after training).
    """

    priority = 'VERY_LOW'

    def __init__(self, interval: int = 0) -> None:
        self.interval = interval

    def _check(self, runner: Runner, when: str) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        digests = all_gather_object(parameter_digest(model))
        # Only rank 0 logs to the console: it reports every rank's digest.
        runner.logger.info(f'weights {when} (world size {get_world_size()}): ' + ', '.join(
            f'rank {rank} {digest[:16]}' for rank, digest in enumerate(digests)))
        if len(set(digests)) != 1:
            raise RuntimeError(f'RankSyncCheckHook: ranks hold different weights {when}: '
                               f'{[d[:16] for d in digests]}')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.interval and self.every_n_train_iters(runner, self.interval):
            self._check(runner, f'at iteration {runner.iter + 1}')

    def after_train(self, runner: Runner) -> None:
        self._check(runner, 'after training')
