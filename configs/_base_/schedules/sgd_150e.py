# The paper's recipe (SPEC section 2, Fusion-Mamba): SGD, lr 0.01, momentum 0.9, weight
# decay 0.001, batch 4, 150 epochs. Where the paper is silent the values are YOLOv8's
# (ultralytics' default.yaml and trainer, marked "YOLOv8" below): linear decay to
# lr0 * lrf, 3 warm-up epochs with the bias lr falling from 0.1 and the momentum rising
# from 0.8, no decay on norms and biases, EMA, Nesterov SGD.
max_epochs = 150  # paper
base_lr = 0.01  # paper (= YOLOv8's lr0)
lrf = 0.01  # YOLOv8: final lr = base_lr * lrf
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    # lr, momentum 0.9, weight decay 0.001: paper; Nesterov: YOLOv8
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.9, weight_decay=0.001, nesterov=True),
    # No weight decay on norms and biases (YOLOv8), nor on the state-space parameters that
    # carry Mamba's ``_no_weight_decay`` flag (A_log, D: the constructor reads the flag),
    # nor on the dt bias (``dt_proj_bias``: a bias, decay-free in Mamba as ``dt_proj.bias``
    # and flagged ``_no_weight_decay`` in Mamba-2 / VMamba).
    constructor='StateSpaceOptimWrapperConstructor',
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'dt_proj_bias': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=10.0))

# YOLOv8 (cos_lr=False): lr0 * ((1 - e / E) * (1 - lrf) + lrf) at epoch e = 0 .. E - 1,
# stepped per epoch. mmengine's LinearLR by epoch is that line; it reaches end_factor at
# its last epoch end - 1, and YOLOv8's line reaches lrf at e = E, hence end = E + 1.
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0, end_factor=lrf, begin=0, end=max_epochs + 1,
         by_epoch=True),
]

# YOLOv8's warm-up on top of the schedule: 3 epochs (at least 100 iterations), bias lr
# 0.1 -> lr, other lrs 0 -> lr, momentum 0.8 -> 0.9.
warmup_hook = dict(type='YOLOv8WarmupHook', warmup_epochs=3.0, min_warmup_iters=100,
                   warmup_bias_lr=0.1, warmup_momentum=0.8)
ema_hook = dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0001,
                update_buffers=True, priority=49)
# YOLOv8's close_mosaic: configs that train with Mosaic add a MixDatasetPipelineSwitchHook
# at this epoch (the dataset configs define the pipeline without Mosaic).
close_mosaic_epochs = 10
close_mosaic_epoch = max_epochs - close_mosaic_epochs
custom_hooks = [ema_hook, warmup_hook]

# ``tools/train.py --auto-scale-lr`` scales lr by (GPUs x batch) / 4.
auto_scale_lr = dict(enable=False, base_batch_size=4)
