# Ablation on FLIR-Aligned (SPEC section 2): 16 stacked DSSF; paper 46.3 mAP.
_base_ = '../fm-yolov8_l_1xb4-150e_flir_aligned.py'
model = dict(backbone=dict(fusion=dict(num_dssf=16)))
