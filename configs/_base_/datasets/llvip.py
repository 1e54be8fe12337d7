# LLVIP (person), converted by tools/dataset_converters/llvip.py; evaluated on its test split.
_base_ = './paired_det_640.py'
data_root = 'data/LLVIP/'
train_dataloader = dict(dataset=dict(dataset=dict(
    type='LLVIPDataset', data_root=data_root, ann_file='annotations/llvip_train.json')))
val_dataloader = dict(dataset=dict(type='LLVIPDataset', data_root=data_root, ann_file='annotations/llvip_test.json'))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/llvip_test.json')
test_evaluator = val_evaluator
