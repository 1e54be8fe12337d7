"""Mixed precision for the entry points: the autocast dtype, and a test loop that uses it.

``--amp`` in ``tools/train.py`` / ``tools/test.py`` / the benchmarks autocasts to bfloat16
where the device supports it (no loss scaling needed: bf16 has float32's range) and to
float16 elsewhere; ``--amp-dtype {bf16,fp16}`` chooses.
"""
from typing import Optional, Union

import torch
from mmdet.registry import LOOPS
from mmengine.runner import TestLoop

AMP_DTYPES = dict(bf16=torch.bfloat16, fp16=torch.float16)


def resolve_amp_dtype(name: Optional[str], device: Union[str, torch.device]) -> str:
    """The autocast dtype ('bf16' or 'fp16', keys of ``AMP_DTYPES``) for ``--amp-dtype name``
    (None: bf16 unless the device is a GPU without it).

    Raises ``ValueError`` for an unknown name, or for bf16 on a CUDA device without it.
    """
    device = torch.device(device)
    if name is None:
        if device.type == 'cuda' and not torch.cuda.is_bf16_supported():
            return 'fp16'
        return 'bf16'
    if name not in AMP_DTYPES:
        raise ValueError(f'--amp-dtype must be one of {sorted(AMP_DTYPES)}, got {name!r}')
    if (name == 'bf16' and device.type == 'cuda'
            and not torch.cuda.is_bf16_supported(including_emulation=False)):
        raise ValueError(f'--amp-dtype bf16: {torch.cuda.get_device_name(device)} has no '
                         'bfloat16 support; use --amp-dtype fp16')
    return name


def add_amp_arguments(parser, what: str = 'inference') -> None:
    """``--amp`` and ``--amp-dtype`` on an argparse parser (see :func:`amp_from_args`)."""
    parser.add_argument('--amp', action='store_true', help=f'mixed precision {what}')
    parser.add_argument('--amp-dtype', choices=sorted(AMP_DTYPES),
                        help='autocast dtype of --amp (default: bf16 where supported)')


def amp_from_args(args, device: Union[str, torch.device]) -> Optional[str]:
    """The autocast dtype ('bf16' / 'fp16') that ``--amp [--amp-dtype]`` ask for on
    ``device``, None without ``--amp``; ``--amp-dtype`` alone is a ``ValueError``."""
    if args.amp_dtype and not args.amp:
        raise ValueError('--amp-dtype needs --amp')
    return resolve_amp_dtype(args.amp_dtype, device) if args.amp else None


# float16's largest value is 65504. The YOLOv8 loss is multiplied by the batch size (as
# ultralytics does), which puts single weight-gradient elements in the hundreds: torch's
# default first scale (65536) overflows them. Measured on the H200 (LLVIP sample, batch 8,
# l models, fp16): from 65536 the scaler skipped 7-8 of the first 15 steps and settled at
# 256, then FM-YOLOv8 skipped once more at step 94 and the add baseline at step 37 (512 ->
# 256). From 256, FM-YOLOv8 skipped none of 105 steps and the add baseline one, at step 42
# (256 -> 128). The scaler still halves on overflow and doubles after ``growth_interval``
# clean steps.
FP16_LOSS_SCALE = dict(init_scale=2.0**8, growth_interval=2000)


def amp_optim_wrapper_cfg(optim_wrapper: dict, amp: str) -> dict:
    """``optim_wrapper`` (a config dict) as mmengine's ``AmpOptimWrapper`` autocasting to
    ``amp`` ('bf16' / 'fp16'); a ``loss_scale`` the config sets is kept, else bf16 gets
    mmengine's dynamic scaler and fp16 a dynamic scaler from ``FP16_LOSS_SCALE``."""
    cfg = dict(optim_wrapper, type='AmpOptimWrapper',
               dtype=str(AMP_DTYPES[amp]).replace('torch.', ''))
    cfg.setdefault('loss_scale', dict(FP16_LOSS_SCALE) if amp == 'fp16' else 'dynamic')
    return cfg


@LOOPS.register_module()
class AmpTestLoop(TestLoop):
    """mmengine's ``TestLoop`` under ``torch.autocast`` with a chosen dtype (mmengine's own
    ``fp16=True`` autocasts to float16 only).

    Args:
        runner, dataloader, evaluator: As :class:`mmengine.runner.TestLoop`.
        dtype (str): 'bf16' or 'fp16'.
    """

    def __init__(self, runner, dataloader, evaluator, dtype: str = 'bf16'):
        if dtype not in AMP_DTYPES:
            raise ValueError(f'AmpTestLoop: dtype must be one of {sorted(AMP_DTYPES)}, '
                             f'got {dtype!r}')
        super().__init__(runner, dataloader, evaluator, fp16=False)
        self.dtype = AMP_DTYPES[dtype]

    @torch.no_grad()
    def run_iter(self, idx, data_batch) -> None:
        """``TestLoop.run_iter`` with the model's step under ``torch.autocast(self.dtype)``
        (the parent's step enters mmengine's autocast, whose ``enabled=False`` would switch
        an outer one off)."""
        self.runner.call_hook('before_test_iter', batch_idx=idx, data_batch=data_batch)
        device = next(self.runner.model.parameters()).device
        with torch.autocast(device_type=device.type, dtype=self.dtype):
            outputs = self.runner.model.test_step(data_batch)
        self.evaluator.process(data_samples=outputs, data_batch=data_batch)
        self.runner.call_hook('after_test_iter', batch_idx=idx, data_batch=data_batch,
                              outputs=outputs)
