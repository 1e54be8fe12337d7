# Ablation on FLIR-Aligned (SPEC section 2): DSSF only (no SSCS); paper 82.9 / 42.3 / 45.9.
_base_ = '../fm-yolov8_l_1xb4-150e_flir_aligned.py'
model = dict(backbone=dict(fusion=dict(use_sscs=False)))
