# FM-YOLOv8-m on LLVIP: the l recipe with YOLOv8-m's depth / width / max channels.
_base_ = './fm-yolov8_l_1xb4-150e_llvip.py'
deepen_factor = 0.67
widen_factor = 0.75
last_stage_out_channels = 768
model = dict(
    backbone=dict(
        rgb_stream=dict(deepen_factor=deepen_factor, widen_factor=widen_factor,
                        max_channels=768),
        in_channels=[192, 384, 576]),
    neck=dict(deepen_factor=deepen_factor, widen_factor=widen_factor,
              in_channels=[256, 512, last_stage_out_channels],
              out_channels=[256, 512, last_stage_out_channels]),
    bbox_head=dict(widen_factor=widen_factor,
                   in_channels=[256, 512, last_stage_out_channels]))
