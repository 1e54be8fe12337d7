"""Data-parallel training and testing on CPU-only machines (one process per "GPU", gloo).

mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device`` before creating the process
group, and its Runner wraps the model in DDP with ``device_ids=[LOCAL_RANK]``; both fail
without CUDA. :func:`init_cpu_distributed` creates the gloo process group first (the Runner
then uses it as it is) and :class:`CPUDistributedDataParallel` drops ``device_ids`` for a
model on the CPU.
"""
import atexit
import gc

import torch
import torch.distributed as torch_dist
from mmdet.registry import MODEL_WRAPPERS
from mmengine.model import MMDistributedDataParallel


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """:class:`MMDistributedDataParallel` that accepts the Runner's ``device_ids`` and ignores
    them when the module's parameters are on the CPU (DDP refuses device ids there)."""

    def __init__(self, module: torch.nn.Module, device_ids=None, **kwargs) -> None:
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        super().__init__(module=module, device_ids=None if on_cpu else device_ids, **kwargs)


def init_cpu_distributed(launcher: str) -> bool:
    """Start the gloo process group of a CPU-only distributed run from torchrun's
    environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``).

    Returns:
        bool: True when this call created the process group; False when there is nothing to
        do (no launcher, CUDA available: mmengine's own set-up works, or a group exists).
    """
    if launcher == 'none' or torch.cuda.is_available() or torch_dist.is_initialized():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(
            f"--launcher {launcher} needs CUDA; on a CPU-only machine use --launcher pytorch "
            '(tools/dist_train.sh, tools/dist_test.sh)')
    torch_dist.init_process_group(backend='gloo')
    atexit.register(_close_process_group)
    return True


def _close_process_group() -> None:
    """Close the gloo group at exit, after every rank got there and after the objects that
    hold it are freed.

    A group left open, or closed while DDP's reducer (kept alive by the Runner's reference
    cycles) still holds it, aborts the process at interpreter exit with "terminate called
    without an active exception".
    """
    if not torch_dist.is_initialized():
        return
    gc.collect()
    torch_dist.barrier()
    torch_dist.destroy_process_group()
