# Ablation on FLIR-Aligned (SPEC section 2): d_state 1 instead of 16 (a choice the paper leaves open).
_base_ = '../fm-yolov8_l_1xb4-150e_flir_aligned.py'
model = dict(backbone=dict(fusion=dict(ssm_cfg=dict(d_state=1))))
