# Paired RGB / IR detection at 640x640 (the paper's input size) for any paired COCO dataset.
# The dataset configs (llvip.py, m3fd.py, flir_aligned.py, kaist.py) fill in the dataset
# class, its folder and annotation files.
img_scale = (640, 640)  # (w, h)
backend_args = None

pre_transform = [
    dict(type='LoadPairedImagesFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
]
train_pipeline = [
    dict(type='PairedMosaic', img_scale=img_scale, pad_val=114.0),
    dict(type='PairedRandomAffine', scaling_ratio_range=(0.5, 1.5), max_rotate_degree=0.0,
         max_shear_degree=0.0, border=(-img_scale[0] // 2, -img_scale[1] // 2)),
    dict(type='YOLOXHSVRandomAug'),  # visible only; infrared keeps its radiometry
    dict(type='PairedRandomFlip', prob=0.5),
    dict(type='PairedResize', scale=img_scale, keep_ratio=True),
    dict(type='PairedPad', size=img_scale, pad_val=dict(img=(114, 114, 114))),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackMultiModalDetInputs'),
]
# The last epochs (YOLOv8's close_mosaic; the configs' MixDatasetPipelineSwitchHook switches
# to it): no Mosaic and no random affine; each pair is letterboxed as YOLOv8 does (resized
# keeping its aspect ratio, padded centred to img_scale), then HSV and flip as before.
# ultralytics and mmyolo keep a random affine after the letterbox (scale +-50 %, translate
# +-10 %); here the last epochs see the pairs at the test-time scale.
train_pipeline_stage2 = [
    dict(type='PairedLetterResize', scale=img_scale, pad_val=114),
    dict(type='YOLOXHSVRandomAug'),  # visible only
    dict(type='PairedRandomFlip', prob=0.5),
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
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='MultiImageMixDataset',
        pipeline=train_pipeline,
        dataset=dict(type='PairedCocoDataset', data_root=None, ann_file=None,
                     filter_cfg=dict(filter_empty_gt=False, min_size=4),
                     pipeline=pre_transform)))
val_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='PairedCocoDataset', data_root=None, ann_file=None, test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='CocoMetric', ann_file=None, metric='bbox', classwise=True)
test_evaluator = val_evaluator
