"""Config handling shared by the train / test / benchmark entry points."""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.registry import init_default_scope

from ..engine.cpu_distributed import init_cpu_distributed


def load_runner_config(config: str,
                       cfg_options: Optional[dict] = None,
                       work_dir: Optional[str] = None,
                       launcher: str = 'none') -> Config:
    """Load ``config`` and apply the command-line settings every entry point shares.

    - ``cfg_options`` (``--cfg-options``) are merged last-but-one; ``work_dir`` wins over the
      config's, which wins over ``./work_dirs/<config name>``.
    - Distributed runs without CUDA start a gloo process group and wrap the model in
      :class:`~fusion_mamba.engine.CPUDistributedDataParallel` (unless the config names
      another ``model_wrapper_cfg``), so ``tools/dist_train.sh CONFIG 2`` works on a
      CPU-only machine.
    """
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    if init_cpu_distributed(launcher):
        if cfg.get('model_wrapper_cfg') is None:
            cfg.model_wrapper_cfg = dict(
                type='mmdet.CPUDistributedDataParallel', broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters', False))
    return cfg


def load_tool_config(config: str, cfg_options: Optional[dict] = None) -> Config:
    """Load ``config`` for an analysis or deployment tool: ``--cfg-options`` merged and the
    config's default registry scope (mmdet) initialised."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    return cfg
