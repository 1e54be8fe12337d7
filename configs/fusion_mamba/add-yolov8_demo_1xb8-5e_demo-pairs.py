# The add baseline on the demo data: the demo model with element-wise addition
# (P_i = F_R + F_IR) in place of the Fusion-Mamba Blocks.
_base_ = './fm-yolov8_demo_1xb8-5e_demo-pairs.py'
model = dict(backbone=dict(fusion=dict(_delete_=True, type='AddFusion')))
