# The paper's baseline design: the same dual-stream YOLOv8-l with element-wise addition
# (P_i = F_R + F_IR) in place of the Fusion-Mamba Blocks.
_base_ = './fm-yolov8_l_1xb4-150e_m3fd.py'
model = dict(backbone=dict(fusion=dict(_delete_=True, type='AddFusion')))
