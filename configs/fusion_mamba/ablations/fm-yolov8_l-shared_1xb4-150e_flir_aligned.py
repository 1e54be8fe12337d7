# Ablation on FLIR-Aligned (SPEC section 2): RGB and IR branches share their VSS / DSSF weights (a choice the paper leaves open).
_base_ = '../fm-yolov8_l_1xb4-150e_flir_aligned.py'
model = dict(backbone=dict(fusion=dict(share_weights=True)))
