"""Training-engine helpers: storage backends, hooks and CPU-only data parallelism."""
from .amp import (AMP_DTYPES, FP16_LOSS_SCALE, AmpTestLoop, add_amp_arguments, amp_from_args,
                  amp_optim_wrapper_cfg, resolve_amp_dtype)
from .atomic_local_backend import AtomicLocalBackend, atomic_write_bytes
from .cpu_distributed import CPUDistributedDataParallel, init_cpu_distributed
from .hooks import (LossScaleMonitorHook, MixDatasetPipelineSwitchHook,
                    PairedDetVisualizationHook, RankSyncCheckHook, ScoreThresholdHook,
                    YOLOv8WarmupHook, checkpoint_score_thresholds, parameter_digest)
from .optimizers import StateSpaceOptimWrapperConstructor

__all__ = [
    'AMP_DTYPES', 'FP16_LOSS_SCALE', 'AmpTestLoop', 'add_amp_arguments', 'amp_from_args',
    'amp_optim_wrapper_cfg', 'resolve_amp_dtype', 'LossScaleMonitorHook',
    'AtomicLocalBackend', 'atomic_write_bytes', 'CPUDistributedDataParallel',
    'init_cpu_distributed', 'PairedDetVisualizationHook', 'RankSyncCheckHook',
    'parameter_digest', 'MixDatasetPipelineSwitchHook', 'YOLOv8WarmupHook',
    'ScoreThresholdHook', 'checkpoint_score_thresholds', 'StateSpaceOptimWrapperConstructor'
]
