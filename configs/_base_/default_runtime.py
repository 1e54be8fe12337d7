# Runtime shared by every config: registry scope, imports, hooks, logging.
default_scope = 'mmdet'
# Registers every fusion_mamba component; works from any working directory once the
# package is installed (``pip install -e .`` / ``make env``).
custom_imports = dict(imports=['fusion_mamba'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Checkpoints are written to a temporary file and renamed into place, so an interrupted
    # save never leaves a truncated ``epoch_N.pth`` / ``last_checkpoint`` behind. The best
    # checkpoint is chosen by COCO mAP (``'auto'`` would take the first metric, which with
    # ``classwise=True`` is the first class's precision).
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3,
                    save_best='coco/bbox_mAP', rule='greater',
                    backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Per-class best-F1 score thresholds of every validation, saved in the checkpoints'
    # meta; drawings (--show-dir, demos, FusionMambaInferencer) use them by default.
    score_threshold=dict(type='ScoreThresholdHook'),
    visualization=dict(type='PairedDetVisualizationHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))  # without CUDA the tools start a gloo group instead

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
