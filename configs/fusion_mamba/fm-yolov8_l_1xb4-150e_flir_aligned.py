# FM-YOLOv8-l on FLIR-Aligned with the paper's training settings (640x640, SGD lr 0.01, batch 4, 150
# epochs) at the public YOLOv8-l widths (the paper's model is larger: docs/model_size.md).
_base_ = [
    '../_base_/models/fm_yolov8.py', '../_base_/datasets/flir_aligned.py',
    '../_base_/schedules/sgd_150e.py', '../_base_/default_runtime.py'
]
model = dict(bbox_head=dict(num_classes=3))
# EMA and YOLOv8's warm-up (schedule), then YOLOv8's close_mosaic: for the last 10 epochs
# the pairs are letterboxed instead of Mosaic + random affine.
custom_hooks = [
    {{_base_.ema_hook}},
    {{_base_.warmup_hook}},
    dict(type='MixDatasetPipelineSwitchHook', switch_epoch={{_base_.close_mosaic_epoch}},
         switch_pipeline={{_base_.train_pipeline_stage2}}),
]
