# Ablation on FLIR-Aligned (SPEC section 2): without the RGB->IR cross term of Eq. 10; paper 83.8 mAP50.
_base_ = '../fm-yolov8_l_1xb4-150e_flir_aligned.py'
model = dict(backbone=dict(fusion=dict(rgb_to_ir=False)))
