# Ablation on FLIR-Aligned (SPEC section 2): 4 stacked DSSF; paper 45.9 mAP.
_base_ = '../fm-yolov8_l_1xb4-150e_flir_aligned.py'
model = dict(backbone=dict(fusion=dict(num_dssf=4)))
