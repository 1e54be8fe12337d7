# The demo model with a one-layer CFT-style fusion transformer (8x8 pooled tokens) per level in
# place of the Fusion-Mamba Blocks; everything else as the demo.
_base_ = '../fm-yolov8_demo_1xb8-5e_demo-pairs.py'
model = dict(
    backbone=dict(
        fusion=dict(_delete_=True, type='TransformerFusion', num_layers=1, num_heads=8,
                    pool_size=(8, 8))))
