"""Gradient checkpointing of the fusion modules: full, or everything but the selective scans.

``with_cp`` of the fusion blocks takes:

- ``False``: autograd keeps every activation the backward needs;
- ``True``: only each module's inputs are kept and its whole forward runs again during the
  backward (least memory, a second forward of every scan);
- ``'selective'``: the selective-scan operators' outputs (the scanned map and the states
  their backward restarts from) are kept and the scans are not run again; everything else
  (norms, projections, the depthwise convolution, activations, gates) is recomputed from the
  module's inputs (torch's selective activation checkpointing). Scans that are not one of
  :data:`fusion_mamba.ops.SCAN_FORWARD_OPS` (the ``torch``, ``parallel`` and ``mamba_ssm``
  backends) are recomputed like the rest.
"""
from functools import partial
from typing import Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp

from fusion_mamba.ops import SCAN_FORWARD_OPS


def check_with_cp(with_cp: Union[bool, str], where: str) -> Union[bool, str]:
    """``with_cp`` if it is False, True or ``'selective'``; else a ValueError naming
    ``where`` (the module and stage)."""
    if not (isinstance(with_cp, bool) or with_cp == 'selective'):
        raise ValueError(f'{where}: with_cp must be False, True or "selective", got '
                         f'{with_cp!r}')
    return with_cp


def _keep_scan_outputs(ctx, func, *args, **kwargs) -> cp.CheckpointPolicy:
    """Selective checkpointing policy: save what the scan operators return, recompute the
    rest."""
    if getattr(func, 'name', None) is not None and func.name() in SCAN_FORWARD_OPS:
        return cp.CheckpointPolicy.MUST_SAVE
    return cp.CheckpointPolicy.PREFER_RECOMPUTE


def run_checkpointed(module: nn.Module, *args: torch.Tensor, with_cp: Union[bool, str],
                     training: bool):
    """``module(*args)``, under the checkpointing ``with_cp`` asks for when a training
    forward wants gradients of the inputs (otherwise plainly)."""
    wants_grad = torch.is_grad_enabled() and any(a.requires_grad for a in args)
    if not (with_cp and training and wants_grad):
        return module(*args)
    if with_cp == 'selective':
        context_fn = partial(cp.create_selective_checkpoint_contexts, _keep_scan_outputs)
        return cp.checkpoint(module, *args, use_reentrant=False, context_fn=context_fn)
    return cp.checkpoint(module, *args, use_reentrant=False)
