# The demo FM-YOLOv8 with SASF (d_state 1) in place of SS2D; everything else as the demo.
_base_ = '../fm-yolov8_demo_1xb8-5e_demo-pairs.py'
model = dict(backbone=dict(fusion=dict(ssm_cfg=dict(type='SASF', d_state=1))))
