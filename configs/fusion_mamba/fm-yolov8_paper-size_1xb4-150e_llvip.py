# FM-YOLOv8-l on LLVIP at the widths the paper's parameter counts point to: YOLOv8-l without
# its 512 cap on the base channels, so the streams, Fusion-Mamba Blocks, neck and head run at
# P3 / P4 / P5 = 256 / 512 / 1024 (YOLOv5-l's widths) instead of 256 / 512 / 512; everything
# else is the l recipe. At these widths the SSCS parameters equal the paper's (20.8 M);
# docs/model_size.md has the analysis. 301.4 M parameters against the paper's 287.6 M (add
# baseline at these widths 114.2 M against 117.2 M): our DSSF branches keep separate scan
# parameters per modality, 16.7 M more than the paper's DSSF.
_base_ = './fm-yolov8_l_1xb4-150e_llvip.py'
last_stage_out_channels = 1024
model = dict(
    backbone=dict(
        rgb_stream=dict(max_channels=last_stage_out_channels),
        in_channels=[256, 512, last_stage_out_channels]),
    neck=dict(in_channels=[256, 512, last_stage_out_channels],
              out_channels=[256, 512, last_stage_out_channels]),
    bbox_head=dict(in_channels=[256, 512, last_stage_out_channels]))
