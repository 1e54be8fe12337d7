# Ablation on FLIR-Aligned (SPEC section 2): the enhanced features do not continue down their own streams.
_base_ = '../fm-yolov8_l_1xb4-150e_flir_aligned.py'
model = dict(backbone=dict(feedback=False))
