# Ablation on FLIR-Aligned (SPEC section 2): SSCS only (no DSSF); paper 82.4 / 42.0 / 44.6 mAP50 / mAP75 / mAP.
_base_ = '../fm-yolov8_l_1xb4-150e_flir_aligned.py'
model = dict(backbone=dict(fusion=dict(num_dssf=0)))
