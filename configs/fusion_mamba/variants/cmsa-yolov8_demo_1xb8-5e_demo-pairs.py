# The demo model with one CMSA block per level (cheap enough for a 2-core CPU) in place of the
# Fusion-Mamba Blocks; everything else as the demo.
_base_ = '../fm-yolov8_demo_1xb8-5e_demo-pairs.py'
model = dict(
    backbone=dict(
        fusion=dict(_delete_=True, type='CMSAFusion', num_blocks=1, ssm_ratio=2.0, d_state=4)))
