# KAIST multispectral pedestrians, converted by tools/dataset_converters/kaist.py (improved
# test annotations). Evaluated with the log-average miss rate (MR^-2, reasonable setting;
# all / day / night) next to COCO mAP.
_base_ = './paired_det_640.py'
data_root = 'data/kaist/'
train_dataloader = dict(dataset=dict(dataset=dict(
    type='KAISTDataset', data_root=data_root,
    ann_file='annotations-coco/kaist_train.json')))
val_dataloader = dict(dataset=dict(type='KAISTDataset', data_root=data_root,
                                   ann_file='annotations-coco/kaist_test.json'))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='KAISTMissRateMetric', ann_file=data_root + 'annotations-coco/kaist_test.json'),
    dict(type='CocoMetric', ann_file=data_root + 'annotations-coco/kaist_test.json',
         metric='bbox'),
]
test_evaluator = val_evaluator
