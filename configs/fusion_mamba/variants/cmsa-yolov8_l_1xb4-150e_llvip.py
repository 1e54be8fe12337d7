# The dual-stream YOLOv8-l with S4Fusion's CMSA (K = 3 cross-modal interleaved-scan blocks per
# level, fused map = sum of both streams) in place of the Fusion-Mamba Blocks.
_base_ = '../fm-yolov8_l_1xb4-150e_llvip.py'
model = dict(
    backbone=dict(
        fusion=dict(_delete_=True, type='CMSAFusion', num_blocks=3, ssm_ratio=2.0, d_state=16,
                    dt_rank='auto', backend='auto', with_cp=False)))
