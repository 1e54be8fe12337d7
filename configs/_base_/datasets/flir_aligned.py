# FLIR-Aligned (person, car, bicycle), converted by tools/dataset_converters/flir_aligned.py.
_base_ = './paired_det_640.py'
data_root = 'data/FLIR_aligned/align/'
train_dataloader = dict(dataset=dict(dataset=dict(
    type='FLIRAlignedDataset', data_root=data_root, ann_file='annotations/flir_aligned_train.json')))
val_dataloader = dict(dataset=dict(type='FLIRAlignedDataset', data_root=data_root, ann_file='annotations/flir_aligned_val.json'))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/flir_aligned_val.json')
test_evaluator = val_evaluator
