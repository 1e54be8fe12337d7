# M3FD (6 classes), converted by tools/dataset_converters/m3fd.py (seeded 3368 / 831 split).
_base_ = './paired_det_640.py'
data_root = 'data/M3FD_Detection/'
train_dataloader = dict(dataset=dict(dataset=dict(
    type='M3FDDataset', data_root=data_root, ann_file='annotations/m3fd_train.json')))
val_dataloader = dict(dataset=dict(type='M3FDDataset', data_root=data_root, ann_file='annotations/m3fd_val.json'))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/m3fd_val.json')
test_evaluator = val_evaluator
