"""tools/analysis_tools/browse_dataset.py draws visible | infrared with boxes to files."""
import importlib.util
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
default_scope = 'mmdet'
train_dataloader = dict(dataset=dict(
    type='DemoPairsDataset', data_root={root!r}, generator=dict(num_train=3, num_val=2),
    ann_file='annotations/train.json',
    pipeline=[dict(type='LoadPairedImagesFromFile', ir_color_type='grayscale'),
              dict(type='LoadAnnotations', with_bbox=True),
              dict(type='PairedResize', scale=(160, 128), keep_ratio=True),
              dict(type='PackMultiModalDetInputs')]))
"""


def test_browse_dataset_writes_side_by_side_images(tmp_path, capsys):
    config = tmp_path / 'demo_cfg.py'
    config.write_text(CONFIG.format(root=str(tmp_path / 'demo')))
    spec = importlib.util.spec_from_file_location(
        'browse_dataset', REPO / 'tools' / 'analysis_tools' / 'browse_dataset.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main([str(config), '--num', '5', '--output-dir', str(tmp_path / 'out')])
    files = sorted((tmp_path / 'out').iterdir())
    assert [f.name for f in files] == ['00000_000000.jpg', '00001_000001.jpg',
                                       '00002_000002.jpg']
    drawn = cv2.imread(str(files[0]))
    assert drawn.shape == (128, 2 * 160 + tool.GAP, 3)
    assert '3 samples drawn' in capsys.readouterr().out
