# FM-YOLOv8-l with the paper's training settings (640x640, SGD lr 0.01, batch 4, 150
# epochs) at the public YOLOv8-l widths (the paper's model is larger: docs/model_size.md),
# on your own
# paired dataset with YOLO labels, converted by tools/dataset_converters/yolo_paired.py, e.g.
#   python tools/dataset_converters/yolo_paired.py data/my_pairs --visible images/train \
#       --infrared infrared/train --labels labels/train --classes person,car \
#       --out data/my_pairs/annotations/train.json      (and the same for val)
# Set the four values below; the rest follows from them.
_base_ = [
    '../_base_/models/fm_yolov8.py', '../_base_/datasets/yolo_paired.py',
    '../_base_/schedules/sgd_150e.py', '../_base_/default_runtime.py'
]
data_root = 'data/my_pairs/'  # the converter's ROOT
classes = ('person', 'car')  # the converter's --classes: same names, same order
train_ann_file = 'annotations/train.json'  # the converter's --out, relative to data_root
val_ann_file = 'annotations/val.json'

metainfo = dict(classes=classes)
train_dataloader = dict(dataset=dict(dataset=dict(
    data_root=data_root, ann_file=train_ann_file, metainfo=metainfo)))
val_dataloader = dict(dataset=dict(data_root=data_root, ann_file=val_ann_file,
                                   metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann_file)
test_evaluator = val_evaluator
model = dict(bbox_head=dict(num_classes=len(classes)))
# EMA and YOLOv8's warm-up (schedule), then YOLOv8's close_mosaic: for the last 10 epochs
# the pairs are letterboxed instead of Mosaic + random affine.
custom_hooks = [
    {{_base_.ema_hook}},
    {{_base_.warmup_hook}},
    dict(type='MixDatasetPipelineSwitchHook', switch_epoch={{_base_.close_mosaic_epoch}},
         switch_pipeline={{_base_.train_pipeline_stage2}}),
]
