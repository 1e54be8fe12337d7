# Overfit check on real data: the demo-sized FM-YOLOv8 trained on the 50 annotated train
# pairs of a small LLVIP subset (official layout in data/LLVIP_mini, converted with
# tools/dataset_converters/llvip.py --skip-empty) at 320x256, evaluated on the same 50 pairs
# (val) and on the annotated test pairs (test). It proves the whole pipeline on real
# RGB + thermal images; it is not a benchmark.
_base_ = './fm-yolov8_demo_1xb8-5e_demo-pairs.py'
data_root = 'data/LLVIP_mini/'
img_scale = (320, 256)
train_pipeline = [
    dict(type='LoadPairedImagesFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PairedResize', scale=img_scale, keep_ratio=True),
    dict(type='PairedRandomFlip', prob=0.5),
    dict(type='PairedPad', size=img_scale, pad_val=dict(img=(114, 114, 114))),
    dict(type='PackMultiModalDetInputs'),
]
test_pipeline = {{_base_.test_pipeline}}  # same img_scale as the demo
train_dataloader = dict(
    dataset=dict(_delete_=True, type='LLVIPDataset', data_root=data_root,
                 ann_file='annotations/llvip_train.json',
                 filter_cfg=dict(filter_empty_gt=True), pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='LLVIPDataset', data_root=data_root,
                 ann_file='annotations/llvip_train.json', test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = dict(
    dataset=dict(_delete_=True, type='LLVIPDataset', data_root=data_root,
                 ann_file='annotations/llvip_test.json', test_mode=True,
                 pipeline=test_pipeline))
val_evaluator = dict(ann_file=data_root + 'annotations/llvip_train.json')
test_evaluator = dict(ann_file=data_root + 'annotations/llvip_test.json')
model = dict(bbox_head=dict(num_classes=1))

max_epochs = 60
train_cfg = dict(max_epochs=max_epochs, val_interval=20)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min=0.0005, begin=0, end=max_epochs, by_epoch=True,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=20))
