# The paper's recipe: SGD lr 0.01, momentum 0.9, weight decay 0.001, 150 epochs (batch 4),
# with YOLOv8's usual linear warm-up and no decay on norms / biases.
max_epochs = 150
base_lr = 0.01
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=base_lr, momentum=0.9, weight_decay=0.001, nesterov=True),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=10.0))

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', eta_min=base_lr * 0.01, begin=0, end=max_epochs,
         by_epoch=True, convert_to_iter_based=True),
]

custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0001, update_buffers=True,
         priority=49),
]

# ``tools/train.py --auto-scale-lr`` scales lr by (GPUs x batch) / 4.
auto_scale_lr = dict(enable=False, base_batch_size=4)
