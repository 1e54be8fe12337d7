# FM-YOLOv8-l with Spatial-Mamba's structure-aware state fusion (SASF: one raster scan, states
# fused by 3x3 depthwise kernels of dilation 1 / 3 / 5, d_state 1 as in Spatial-Mamba) in place
# of SS2D in every VSS block and DSSF module.
_base_ = '../fm-yolov8_l_1xb4-150e_flir_aligned.py'
model = dict(backbone=dict(fusion=dict(ssm_cfg=dict(type='SASF', d_state=1))))
