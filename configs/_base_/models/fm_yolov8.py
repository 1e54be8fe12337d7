# FM-YOLOv8: two YOLOv8 CSPDarknet streams (RGB, IR), a Fusion-Mamba Block after the P3, P4
# and P5 stages, the fused pyramid P_i = F^_R + F^_IR into YOLOv8's PAFPN and head.
# Scale l by default; the dataset configs set num_classes.
deepen_factor = 1.0
widen_factor = 1.0
last_stage_out_channels = 512  # max channels of the scale: n/s 1024 -> 256/512, m 768, l 512
num_classes = 1

# Fusion-Mamba Block; the documents leave d_state, ssm_ratio and dt_rank open: these are our
# defaults (VMamba's), see README "Configs".
fusion_block = dict(
    type='FusionMambaBlock',
    use_sscs=True,
    num_dssf=8,
    ir_to_rgb=True,
    rgb_to_ir=True,
    share_weights=False,
    ssm_ratio=2.0,
    d_conv=3,
    mlp_ratio=0.0,
    ssm_cfg=dict(type='SS2D', d_state=16, dt_rank='auto', backend='auto'),
    with_cp=False)

model = dict(
    type='MultiModalDetector',
    data_preprocessor=dict(
        type='MultiModalDetDataPreprocessor',
        mean=[0., 0., 0.], std=[255., 255., 255.],
        ir_mean=[0., 0., 0.], ir_std=[255., 255., 255.],
        bgr_to_rgb=True, pad_size_divisor=32, pad_value=114),
    backbone=dict(
        type='DualStreamBackbone',
        rgb_stream=dict(
            type='YOLOv8CSPDarknet', deepen_factor=deepen_factor, widen_factor=widen_factor,
            max_channels=last_stage_out_channels, out_indices=(2, 3, 4)),
        ir_stream=None,  # same architecture, its own weights
        in_channels=[int(256 * widen_factor), int(512 * widen_factor),
                     int(last_stage_out_channels * widen_factor)],
        out_indices=(2, 3, 4),
        stage_names=('P3', 'P4', 'P5'),
        feedback=True,
        fusion=fusion_block),
    neck=dict(
        type='YOLOv8PAFPN', deepen_factor=deepen_factor, widen_factor=widen_factor,
        in_channels=[256, 512, last_stage_out_channels],
        out_channels=[256, 512, last_stage_out_channels], num_csp_blocks=3),
    bbox_head=dict(
        type='YOLOv8Head', num_classes=num_classes, widen_factor=widen_factor,
        in_channels=[256, 512, last_stage_out_channels], featmap_strides=(8, 16, 32),
        reg_max=16,
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                      loss_weight=0.5),
        # lambda_coord = 7.5 (Eq. 13)
        loss_bbox=dict(type='YOLOv8CIoULoss', reduction='mean', loss_weight=7.5),
        loss_dfl=dict(type='DistributionFocalLoss', reduction='mean', loss_weight=1.5 / 4)),
    # mmdet's single-stage detectors hand these to the head.
    train_cfg=dict(assigner=dict(type='BatchTaskAlignedAssigner', topk=10, alpha=0.5,
                                 beta=6.0, eps=1e-9)),
    test_cfg=dict(score_thr=0.001, nms_pre=30000, nms=dict(type='nms', iou_threshold=0.7),
                  max_per_img=300, multi_label=True))
