"""Optimizer wrapper constructor that honours Mamba's ``_no_weight_decay`` parameter flag."""
from typing import List

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS, OPTIMIZERS
from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS

#: The attribute Mamba / VMamba set on a Parameter (``A_log``, ``D``) to keep it out of
#: weight decay; our SS2D, SASF and Cross SS2D set it too.
NO_DECAY_FLAG = '_no_weight_decay'


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class StateSpaceOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's :class:`DefaultOptimWrapperConstructor` plus no weight decay on every
    parameter that carries ``_no_weight_decay = True``.

    The state-space parameters ``A_log`` (the log of the decay rates, A = -exp(A_log)) and
    ``D`` (the skip gain) are not weights of a linear map: decaying them pulls A towards -1
    and D towards 0 whatever the data says, which is why the Mamba and VMamba references mark
    them and exclude them from decay. mmengine's default constructor does not read the flag.

    Every other rule of ``paramwise_cfg`` is kept (``norm_decay_mult``, ``bias_decay_mult``,
    ``custom_keys`` ...): the flag only forces ``weight_decay = 0`` on the flagged
    parameters' groups, whatever those rules gave them. The flag is read from the Parameter
    object, not from module or parameter names, so it works wherever a module marks its
    parameters. Each parameter gets its own group (as with any ``paramwise_cfg`` in
    mmengine), also when ``paramwise_cfg`` is empty.

    Args:
        optim_wrapper_cfg (dict): The optim wrapper config (``optimizer`` inside).
        paramwise_cfg (dict, optional): mmengine's parameter-wise options.
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        if hasattr(model, 'module'):
            model = model.module
        optim_wrapper_cfg = self.optim_wrapper_cfg.copy()
        optim_wrapper_cfg.setdefault('type', 'OptimWrapper')
        optimizer_cfg = self.optimizer_cfg.copy()
        params: List[dict] = []
        self.add_params(params, model)
        num_flagged = exempt_flagged_params(params)
        print_log(f'{type(self).__name__}: weight_decay=0 for {num_flagged} parameter '
                  f'tensors flagged {NO_DECAY_FLAG}', logger='current')
        optimizer_cfg['params'] = params
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(optim_wrapper_cfg, default_args=dict(optimizer=optimizer))


def exempt_flagged_params(param_groups: List[dict]) -> int:
    """Set ``weight_decay = 0`` in every group holding a flagged parameter, in place.

    Args:
        param_groups (list[dict]): Groups as mmengine's ``add_params`` builds them.

    Returns:
        int: The number of flagged parameter tensors.
    """
    num_flagged = 0
    for group in param_groups:
        flagged = [getattr(p, NO_DECAY_FLAG, False) for p in group['params']]
        if any(flagged) and not all(flagged):
            raise ValueError('a parameter group mixes parameters with and without '
                             f'{NO_DECAY_FLAG}; give them separate groups')
        if any(flagged):
            group['weight_decay'] = 0.0
            num_flagged += len(flagged)
    return num_flagged
