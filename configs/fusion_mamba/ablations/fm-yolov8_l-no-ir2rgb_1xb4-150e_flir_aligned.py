# Ablation on FLIR-Aligned (SPEC section 2): without the IR->RGB cross term of Eq. 9; paper 83.3 mAP50.
_base_ = '../fm-yolov8_l_1xb4-150e_flir_aligned.py'
model = dict(backbone=dict(fusion=dict(ir_to_rgb=False)))
