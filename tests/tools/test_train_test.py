"""End-to-end entry points on a tiny model and tiny demo data, each in a subprocess:
``tools/train.py``, ``tools/test.py``, ``tools/run_demo.py``, and ``--resume`` after a killed
run reaching the same weights as an uninterrupted run."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import mmengine
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / 'configs/fusion_mamba/fm-yolov8_demo_1xb8-5e_demo-pairs.py'

TINY_CONFIG = """
_base_ = {base!r}
data_root = {root!r}
gen = dict(num_train=8, num_val=4, img_size=(160, 128))
img_scale = (160, 128)
deterministic_pipeline = [
    dict(type='LoadPairedImagesFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PairedResize', scale=img_scale, keep_ratio=True),
    dict(type='PairedPad', size=img_scale, pad_val=dict(img=(114, 114, 114))),
    dict(type='PackMultiModalDetInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='DemoPairsDataset', data_root=data_root, generator=gen,
                 ann_file='annotations/train.json', pipeline=deterministic_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, generator=gen, pipeline=deterministic_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
model = dict(
    backbone=dict(rgb_stream=dict(widen_factor=0.125), in_channels=[32, 64, 128],
                  fusion=dict(num_dssf=1, ssm_cfg=dict(d_state=4))),
    neck=dict(widen_factor=0.125), bbox_head=dict(widen_factor=0.125))
train_cfg = dict(max_epochs={epochs}, val_interval=100)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=5))
randomness = dict(seed=0)
"""


def write_tiny_config(folder: Path, data_root: Path, epochs: int = 1) -> Path:
    path = folder / 'tiny_demo.py'
    path.write_text(TINY_CONFIG.format(base=str(DEMO_CONFIG), root=str(data_root) + '/',
                                       epochs=epochs))
    return path


def run_tool(*args, cwd, check=True, **kwargs):
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='2')
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-5000:]}')
    return proc


@pytest.fixture(scope='module')
def tiny_setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp('tiny')
    return folder, write_tiny_config(folder, folder / 'demo_pairs')


@pytest.fixture(scope='module')
def trained(tiny_setup):
    """The tiny model trained for one epoch by tools/train.py: (folder, config, work dir,
    training log)."""
    folder, config = tiny_setup
    work = folder / 'work'
    out = run_tool(REPO / 'tools/train.py', config, '--work-dir', work, cwd=folder)
    return folder, config, work, out.stdout + out.stderr


def test_train_then_test_from_another_directory(trained):
    folder, config, work, train_log = trained
    assert 'Epoch(train) [1][2/2]' in train_log
    ckpt = work / 'epoch_1.pth'
    assert ckpt.is_file() and (work / 'last_checkpoint').read_text().strip() == str(ckpt)
    assert not list(work.glob('*.tmp*')), 'the atomic checkpoint writer left a temp file'

    proc = run_tool(REPO / 'tools/test.py', config, ckpt, '--work-dir', work,
                    '--out', work / 'preds.pkl', '--show-dir', 'vis', '--cfg-options',
                    'model.test_cfg.score_thr=0.0', cwd=folder)
    log = proc.stdout + proc.stderr
    assert 'coco/bbox_mAP:' in log and 'coco/bbox_mAP_50:' in log
    preds = mmengine.load(work / 'preds.pkl')
    assert len(preds) == 4 and 'pred_instances' in preds[0]
    drawings = list(work.glob('*/vis/*.jpg'))
    assert len(drawings) == 4
    import cv2
    drawing = cv2.imread(str(drawings[0]))
    assert drawing.shape[1] == 2 * drawing.shape[0] * 160 // 128  # visible | infrared


def test_validation_score_thresholds_reach_the_checkpoints(tiny_setup, tmp_path):
    """ScoreThresholdHook in a real run: the per-class best-F1 thresholds of the validation
    are logged and stored in the epoch checkpoint (saved before the validation) and in the
    best one, and equal those recomputed from tools/test.py's predictions of the same
    weights against the annotation file."""
    from fusion_mamba.evaluation.functional import best_f1_threshold, match_image_classes
    folder, config = tiny_setup
    work = tmp_path / 'work'
    options = ('--cfg-options', 'model.test_cfg.score_thr=0.0')
    log = run_tool(REPO / 'tools/train.py', config, '--work-dir', work, *options,
                   'train_cfg.val_interval=1', cwd=folder)
    assert 'best-F1 score thresholds (IoU 0.5, 4 images)' in log.stdout + log.stderr
    stored = [torch.load(path, map_location='cpu', weights_only=False)['meta']
              ['score_thresholds'] for path in [work / 'epoch_1.pth', *work.glob('best_*.pth')]]
    assert len(stored) == 2 and stored[0] == stored[1]

    run_tool(REPO / 'tools/test.py', config, work / 'epoch_1.pth', '--work-dir', work,
             '--out', work / 'preds.pkl', *options, cwd=folder)
    ann = json.loads((folder / 'demo_pairs/annotations/val.json').read_text())
    classes = [c['name'] for c in sorted(ann['categories'], key=lambda c: c['id'])]
    pooled = {}
    for pred in mmengine.load(work / 'preds.pkl'):
        gts = [a for a in ann['annotations'] if a['image_id'] == pred['img_id']]
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in gts)]
        inst = pred['pred_instances']
        matches = match_image_classes(inst['bboxes'].numpy(), inst['scores'].numpy(),
                                      inst['labels'].numpy(), boxes,
                                      [a['category_id'] - 1 for a in gts])
        for label, match in matches.items():
            pooled.setdefault(classes[label], []).append(match)
    expected = {}
    for name, parts in pooled.items():
        cut = best_f1_threshold(np.concatenate([p.scores for p in parts]),
                                np.concatenate([p.true_positive for p in parts]),
                                sum(p.num_gt for p in parts))
        if cut is not None:
            expected[name] = cut.score_thr
    assert stored[0] == pytest.approx(expected, rel=1e-5)


def _box_iou(a, b):
    """IoU of two xyxy boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area > 0 else 0.0


def test_amp_inference_finds_the_fp32_detections(trained):
    """tools/test.py --amp (bf16 autocast; on a GPU the same loop) evaluates, and each
    image's best fp32 detections are found again (IoU > 0.8, score within 0.05)."""
    folder, config, work, _ = trained
    ckpt = work / 'epoch_1.pth'
    preds = {}
    for name, extra in (('fp32', ()), ('bf16', ('--amp', '--amp-dtype', 'bf16'))):
        out = work / f'{name}.pkl'
        proc = run_tool(REPO / 'tools/test.py', config, ckpt, '--work-dir', work / name,
                        '--out', out, *extra, '--cfg-options', 'model.test_cfg.score_thr=0.0',
                        cwd=folder)
        assert 'coco/bbox_mAP:' in proc.stdout + proc.stderr
        preds[name] = mmengine.load(out)
    for ref, amp in zip(preds['fp32'], preds['bf16']):
        ref, amp = ref['pred_instances'], amp['pred_instances']
        assert amp['bboxes'].dtype == torch.float32
        for box, score in zip(ref['bboxes'][:5].tolist(), ref['scores'][:5].tolist()):
            assert any(_box_iou(box, other) > 0.8 and abs(score - other_score) < 0.05
                       for other, other_score in zip(amp['bboxes'].tolist(),
                                                     amp['scores'].tolist())), (box, score)


def _state_dict(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def test_resume_after_kill_matches_uninterrupted_run(tiny_setup, tmp_path):
    folder, _ = tiny_setup
    config = write_tiny_config(tmp_path, folder / 'demo_pairs', epochs=3)
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    run_tool(REPO / 'tools/train.py', config, '--work-dir', straight, cwd=tmp_path)

    # Kill the second run as soon as its first checkpoint is complete.
    env = dict(os.environ, OMP_NUM_THREADS='2')
    proc = subprocess.Popen([sys.executable, str(REPO / 'tools/train.py'), str(config),
                             '--work-dir', str(resumed)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (resumed / 'last_checkpoint').exists() and proc.poll() is None:
        assert time.time() < deadline, 'no checkpoint within 10 min'
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    if (resumed / 'epoch_3.pth').exists():
        pytest.skip('the run finished before it could be interrupted')
    last = Path((resumed / 'last_checkpoint').read_text().strip())
    out = run_tool(REPO / 'tools/train.py', config, '--work-dir', resumed, '--resume',
                   cwd=tmp_path)
    assert f'resumed epoch: {last.stem.split("_")[1]}' in (out.stdout + out.stderr)

    expected, got = _state_dict(straight / 'epoch_3.pth'), _state_dict(resumed / 'epoch_3.pth')
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-4, atol=1e-5, msg=key)


def test_run_demo_trains_evaluates_and_draws(tiny_setup):
    folder, config = tiny_setup
    work = folder / 'demo_work'
    proc = run_tool(REPO / 'tools/run_demo.py', '--config', config, '--work-dir', work,
                    '--cfg-options', 'model.test_cfg.score_thr=0.0', cwd=folder)
    assert '==== demo finished ====' in proc.stdout
    summary = json.loads((work / 'demo_metrics.json').read_text())
    assert 0.0 <= summary['metrics']['coco/bbox_mAP_50'] <= 1.0
    assert len(list(Path(summary['detections_dir']).glob('*.jpg'))) == 4
    # A second run finds the finished training and only evaluates again.
    again = run_tool(REPO / 'tools/run_demo.py', '--config', config, '--work-dir', work,
                     '--cfg-options', 'model.test_cfg.score_thr=0.0', cwd=folder)
    assert 'Epoch(train)' not in again.stdout + again.stderr
