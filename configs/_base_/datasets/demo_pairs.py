# The built-in procedural RGB / IR demo data (generated into data/demo_pairs on first use;
# docs/datasets.md): 400 train / 100 val pairs of 320x256, classes person, car, sign, animal.
dataset_type = 'DemoPairsDataset'
data_root = 'data/demo_pairs/'
img_scale = (320, 256)  # (w, h)
backend_args = None

pre_transform = [
    dict(type='LoadPairedImagesFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
]
train_pipeline = [
    dict(type='PairedMosaic', img_scale=img_scale, pad_val=114.0, prob=0.5),
    dict(type='PairedRandomAffine', scaling_ratio_range=(0.5, 1.5), max_rotate_degree=0.0,
         max_shear_degree=0.0, border=(-img_scale[0] // 2, -img_scale[1] // 2)),
    dict(type='YOLOXHSVRandomAug'),  # visible only
    dict(type='ApplyToModality', modalities='infrared', transforms=[
        dict(type='YOLOXHSVRandomAug', hue_delta=0, saturation_delta=0, value_delta=20)]),
    dict(type='PairedRandomFlip', prob=0.5),
    dict(type='PairedResize', scale=img_scale, keep_ratio=True),
    dict(type='PairedPad', size=img_scale, pad_val=dict(img=(114, 114, 114))),
    dict(type='RandomModalityDropout', prob=0.05),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackMultiModalDetInputs'),
]
test_pipeline = [
    dict(type='LoadPairedImagesFromFile', backend_args=backend_args),
    dict(type='PairedResize', scale=img_scale, keep_ratio=True),
    dict(type='PairedPad', size=img_scale, pad_val=dict(img=(114, 114, 114))),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackMultiModalDetInputs'),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='MultiImageMixDataset',
        pipeline=train_pipeline,
        dataset=dict(type=dataset_type, data_root=data_root,
                     ann_file='annotations/train.json',
                     filter_cfg=dict(filter_empty_gt=True, min_size=4),
                     pipeline=pre_transform)))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file='annotations/val.json',
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/val.json',
                     metric='bbox', classwise=True, format_only=False)
test_evaluator = val_evaluator
