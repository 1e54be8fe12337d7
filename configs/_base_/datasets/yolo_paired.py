# Your own paired visible / infrared images with YOLO labels, converted by
# tools/dataset_converters/yolo_paired.py (docs/datasets.md). A config inheriting this sets
# data_root (the converter's ROOT), the two annotation files (its --out, relative to
# data_root) and classes (its --classes: the same names in the same order), and passes them
# to the dataloaders again (values here are placeholders).
_base_ = './paired_det_640.py'
data_root = 'data/yolo_paired/'
classes = ('person', )
train_ann_file = 'annotations/train.json'
val_ann_file = 'annotations/val.json'
metainfo = dict(classes=classes)
train_dataloader = dict(dataset=dict(dataset=dict(
    type='PairedCocoDataset', data_root=data_root, ann_file=train_ann_file,
    metainfo=metainfo)))
val_dataloader = dict(dataset=dict(type='PairedCocoDataset', data_root=data_root,
                                   ann_file=val_ann_file, metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann_file)
test_evaluator = val_evaluator
