from .checkpoint import allow_mmengine_checkpoints
from .runner_cfg import load_runner_config, load_tool_config

__all__ = ['allow_mmengine_checkpoints', 'load_runner_config', 'load_tool_config']
