# The README's main job: a small FM-YOLOv8 trained from scratch on the built-in demo data
# (400 / 100 procedural RGB + IR pairs of 320x256, generated on first use) in about 12 min
# on a 2-core CPU (250 iterations of about 2.8 s). Same components as the paper's model,
# smaller: YOLOv8-n width / depth, Fusion-Mamba Blocks with 1 DSSF, d_state 4 and inner
# width = C (paper: 8 DSSF).
_base_ = [
    '../_base_/models/fm_yolov8.py', '../_base_/datasets/demo_pairs.py',
    '../_base_/schedules/sgd_150e.py', '../_base_/default_runtime.py'
]
deepen_factor = 0.33
widen_factor = 0.25
last_stage_out_channels = 1024
num_classes = 4  # person, car, sign, animal

model = dict(
    backbone=dict(
        rgb_stream=dict(deepen_factor=deepen_factor, widen_factor=widen_factor,
                        max_channels=1024),
        in_channels=[64, 128, 256],
        fusion=dict(num_dssf=1, ssm_ratio=1.0, ssm_cfg=dict(d_state=4))),
    neck=dict(deepen_factor=deepen_factor, widen_factor=widen_factor,
              in_channels=[256, 512, last_stage_out_channels],
              out_channels=[256, 512, last_stage_out_channels]),
    bbox_head=dict(num_classes=num_classes, widen_factor=widen_factor,
                   in_channels=[256, 512, last_stage_out_channels]),
    test_cfg=dict(score_thr=0.01, max_per_img=100))

# The base schedule's SGD + warm-up + cosine, shortened to 5 epochs with YOLOv8's own
# momentum / weight decay, a 50-iteration warm-up and a faster EMA.
max_epochs = 5
base_lr = 0.01
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(momentum=0.937, weight_decay=0.0005))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min=base_lr * 0.05, begin=0, end=max_epochs,
         by_epoch=True, convert_to_iter_based=True),
]
custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.001, update_buffers=True,
         priority=49),
    # With tools/dist_train.sh: fail if the data-parallel ranks' weights ever differ.
    dict(type='RankSyncCheckHook', interval=50),
]
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=1, max_keep_ckpts=2))
auto_scale_lr = dict(enable=False, base_batch_size=8)
