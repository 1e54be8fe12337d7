# FM-YOLOv8-l on LLVIP with the paper's recipe (640x640, SGD lr 0.01, batch 4, 150 epochs).
_base_ = [
    '../_base_/models/fm_yolov8.py', '../_base_/datasets/llvip.py',
    '../_base_/schedules/sgd_150e.py', '../_base_/default_runtime.py'
]
model = dict(bbox_head=dict(num_classes=1))
