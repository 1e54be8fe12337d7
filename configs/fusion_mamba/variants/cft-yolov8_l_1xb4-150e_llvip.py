# The dual-stream YOLOv8-l with a CFT-style fusion transformer (8 layers, 8 heads, global
# attention over both modalities' tokens average-pooled to 8x8) in place of the Fusion-Mamba
# Blocks.
_base_ = '../fm-yolov8_l_1xb4-150e_llvip.py'
model = dict(
    backbone=dict(
        fusion=dict(_delete_=True, type='TransformerFusion', num_layers=8, num_heads=8,
                    mlp_ratio=4.0, pool_size=(8, 8), attn_drop=0.1, drop=0.1)))
