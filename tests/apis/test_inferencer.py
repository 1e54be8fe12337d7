"""FusionMambaInferencer on a tiny random detector: every input form gives the predictions of
the config's own file-loading test pipeline, outputs and thresholds, and clear errors."""
import json
import shutil

import cv2
import mmengine
import numpy as np
import pytest
import torch
from mmdet.structures.bbox import bbox_overlaps
from mmengine.dataset import Compose, pseudo_collate

from fusion_mamba import FusionMambaInferencer
from fusion_mamba.apis.model_loading import find_config

CLASSES = ('person', 'car', 'sign', 'animal')


@pytest.fixture(scope='module')
def inferencer(tiny_detector):
    return FusionMambaInferencer(str(tiny_detector['config']), str(tiny_detector['checkpoint']),
                                 device='cpu', show_progress=False)


@pytest.fixture(scope='module')
def pair_files(tiny_detector):
    root = tiny_detector['data_root']
    return [(str(root / f'visible/val/{i:06d}.jpg'), str(root / f'infrared/val/{i:06d}.jpg'))
            for i in range(4)]


@pytest.fixture(scope='module')
def reference(inferencer, tiny_detector, pair_files):
    """Predictions of the config's test pipeline (files, annotations dropped) and the
    model's test_step, computed without the inferencer."""
    cfg = mmengine.Config.fromfile(tiny_detector['config'])
    pipeline = Compose([t for t in cfg.test_dataloader.dataset.pipeline
                        if t['type'] != 'LoadAnnotations'])
    batch = [pipeline(dict(img_path=v, ir_path=i, img_id=n))
             for n, (v, i) in enumerate(pair_files)]
    with torch.no_grad():
        return [s.pred_instances for s in inferencer.model.test_step(pseudo_collate(batch))]


def assert_same(pred: dict, reference) -> None:
    assert torch.allclose(torch.tensor(pred['bboxes']).reshape(-1, 4), reference.bboxes,
                          atol=1e-4)
    assert torch.allclose(torch.tensor(pred['scores']), reference.scores, atol=1e-6)
    assert pred['labels'] == reference.labels.tolist()


def test_prediction_dicts(inferencer, pair_files, reference):
    result = inferencer(pair_files[0])
    assert result['visualization'] == []
    (pred, ) = result['predictions']
    assert set(pred) == {'bboxes', 'scores', 'labels', 'label_names'}
    assert len(pred['bboxes']) > 0 and all(len(box) == 4 for box in pred['bboxes'])
    assert all(x1 <= x2 and y1 <= y2 for x1, y1, x2, y2 in pred['bboxes'])  # xyxy
    assert pred['label_names'] == [CLASSES[label] for label in pred['labels']]
    assert_same(pred, reference[0])


def test_arrays_folders_and_lists_match_the_file_pipeline(inferencer, pair_files, reference,
                                                          tmp_path):
    # arrays: visible BGR, infrared as a single-channel array (converted like the loader)
    arrays = [(cv2.imread(v), cv2.imread(i, cv2.IMREAD_GRAYSCALE)) for v, i in pair_files]
    (pred, ) = inferencer(arrays[1])['predictions']
    assert_same(pred, reference[1])
    # a list of pairs in one batch of 3 and a batch of 1
    preds = inferencer(pair_files, batch_size=3)['predictions']
    for pred, ref in zip(preds, reference):
        assert_same(pred, ref)
    # folders paired by stem, whatever the extension
    vis_dir, ir_dir = tmp_path / 'vis', tmp_path / 'ir'
    vis_dir.mkdir()
    ir_dir.mkdir()
    for n, (v, i) in enumerate(pair_files):
        shutil.copy(v, vis_dir / f'{3 - n:02d}.jpg')
        cv2.imwrite(str(ir_dir / f'{3 - n:02d}.png'), cv2.imread(i))  # lossless copy
    (ir_dir / 'notes.txt').write_text('not an image')
    preds = inferencer((str(vis_dir), ir_dir))['predictions']
    for pred, ref in zip(preds, reference[::-1]):  # sorted by stem: 00 is pair 3
        assert_same(pred, ref)


def test_outputs_written_and_returned(inferencer, pair_files, tmp_path):
    out = tmp_path / 'out'
    result = inferencer(pair_files[:2], out_dir=str(out), no_save_pred=False, return_vis=True)
    for name, pred, drawing in zip(('000000', '000001'), result['predictions'],
                                   result['visualization']):
        assert json.loads((out / 'preds' / f'{name}.json').read_text()) == pred
        assert drawing.shape == (128, 320, 3)  # visible | infrared, RGB
        jpeg = cv2.imdecode(cv2.imencode('.jpg', drawing[..., ::-1].copy())[1], cv2.IMREAD_COLOR)
        assert np.array_equal(cv2.imread(str(out / 'vis' / f'{name}.jpg')), jpeg)
    bare = inferencer(pair_files[0], return_vis=True, draw_pred=False)['visualization'][0]
    visible, infrared = (cv2.imread(p)[..., ::-1].astype(float) for p in pair_files[0])
    assert np.abs(bare[:, :160] - visible).max() < 1 and np.abs(bare[:, 160:] - infrared).max() < 1
    inferencer(pair_files[0], out_dir=str(tmp_path / 'nothing'), no_save_vis=True)
    assert not (tmp_path / 'nothing').exists()


def test_drawing_thresholds_come_from_the_checkpoint(tiny_detector, inferencer, pair_files):
    """No score_thr: the checkpoint's per-class thresholds (0.3 for the others); an explicit
    score_thr wins."""
    assert inferencer.score_thresholds is None
    assert inferencer.drawing_thresholds().tolist() == [0.3] * 4
    path = tiny_detector['save'](tiny_detector['folder'] / 'thr.pth',
                                 score_thresholds={'person': 1.0, 'sign': 0.25})
    with_thr = FusionMambaInferencer(str(tiny_detector['config']), str(path), device='cpu',
                                     show_progress=False)
    assert with_thr.score_thresholds == {'person': 1.0, 'sign': 0.25}
    assert with_thr.drawing_thresholds().tolist() == [1.0, 0.3, 0.25, 0.3]
    assert with_thr.drawing_thresholds(0.5) == 0.5

    prediction = next(with_thr.iter_predictions(pair_files[0]))
    preds = prediction.data_sample.pred_instances
    assert (preds.labels == 0).any() and (preds.scores[preds.labels == 0] > 0.3).any()
    # drawn with the checkpoint's thresholds == drawn with just the boxes they keep
    labels, scores = preds.labels.numpy(), preds.scores.numpy()
    keep = scores > np.array([1.0, 0.3, 0.25, 0.3])[labels]
    assert keep.any() and not keep[labels == 0].any()
    only_kept = prediction.data_sample.clone()
    only_kept.pred_instances = preds[torch.from_numpy(keep)]
    assert np.array_equal(with_thr.visualize(prediction),
                          with_thr.visualize(prediction._replace(data_sample=only_kept), 0.0))
    assert not np.array_equal(with_thr.visualize(prediction),
                              with_thr.visualize(prediction, 0.3))


def test_bf16_autocast_finds_the_fp32_detections(tiny_detector, pair_files, reference):
    amp = FusionMambaInferencer(str(tiny_detector['config']), str(tiny_detector['checkpoint']),
                                device='cpu', amp='bf16', show_progress=False)
    (pred, ) = amp(pair_files[0])['predictions']
    ref = reference[0]
    top = ref.scores.argsort(descending=True)[:5]
    boxes = torch.tensor(pred['bboxes'])
    for box, score in zip(ref.bboxes[top], ref.scores[top]):
        iou = bbox_overlaps(box[None], boxes)[0]
        close = (iou > 0.8) & ((torch.tensor(pred['scores']) - score).abs() < 0.05)
        assert close.any(), (box, score)


def test_option_errors(tiny_detector):
    args = (str(tiny_detector['config']), str(tiny_detector['checkpoint']))
    with pytest.raises(ValueError, match="amp must be None or one of \\['bf16', 'fp16'\\]"):
        FusionMambaInferencer(*args, device='cpu', amp='fp32')
    with pytest.raises(ValueError, match='cuda_graph=True needs a CUDA device, got cpu'):
        FusionMambaInferencer(*args, device='cpu', cuda_graph=True)


@pytest.mark.cuda
def test_cuda_graph_and_amp_match_eager_on_gpu(tiny_detector, pair_files):
    args = (str(tiny_detector['config']), str(tiny_detector['checkpoint']))
    eager = FusionMambaInferencer(*args, device='cuda', show_progress=False)
    graphs = FusionMambaInferencer(*args, device='cuda', cuda_graph=True, show_progress=False)
    for pred, ref in zip(graphs(pair_files)['predictions'], eager(pair_files)['predictions']):
        assert pred['labels'] == ref['labels']
        # fp32 with cuDNN's TF32 convolutions, whose algorithm may differ between the eager
        # and the captured run (the H200 gave differences of 0.008 px on 160x128 boxes);
        # the tolerance of tests/models/test_cuda_graph.py
        assert np.allclose(pred['bboxes'], ref['bboxes'], rtol=1e-3, atol=1e-2)
    bf16 = FusionMambaInferencer(*args, device='cuda', amp='bf16', cuda_graph=True,
                                 show_progress=False)
    assert len(bf16(pair_files)['predictions']) == len(pair_files)


def test_input_errors_name_the_files(inferencer, pair_files, tmp_path):
    visible, infrared = pair_files[0]
    with pytest.raises(FileNotFoundError, match='image file not found: .*missing.jpg'):
        inferencer((visible, str(tmp_path / 'missing.jpg')))
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not a jpeg')
    with pytest.raises(ValueError, match=f'cannot decode image file .*{broken}'):
        inferencer((str(broken), infrared))
    small = tmp_path / 'small.jpg'
    cv2.imwrite(str(small), cv2.imread(infrared)[:64, :96])
    with pytest.raises(ValueError, match=(f'size mismatch: {visible} is 160x128, {small} is '
                                          r'96x64 \(W x H\)')):
        inferencer((visible, str(small)))
    with pytest.raises(ValueError, match="pair '00000000'.* is 160x128, .* is 96x64"):
        inferencer((cv2.imread(visible), cv2.imread(str(small))))
    with pytest.raises(ValueError, match='is a folder but .* is not'):
        inferencer((str(tmp_path), infrared))
    with pytest.raises(TypeError, match='two paths or two numpy arrays'):
        inferencer((visible, cv2.imread(infrared)))


def test_unpaired_folder_images_are_listed(inferencer, pair_files, tmp_path):
    vis_dir, ir_dir = tmp_path / 'vis', tmp_path / 'ir'
    vis_dir.mkdir()
    ir_dir.mkdir()
    for name in ('a', 'b', 'c'):
        shutil.copy(pair_files[0][0], vis_dir / f'{name}.jpg')
    for name in ('b', 'd'):
        shutil.copy(pair_files[0][1], ir_dir / f'{name}.png')
    with pytest.raises(ValueError) as err:
        inferencer((str(vis_dir), str(ir_dir)))
    assert str(err.value) == (
        f'cannot pair the images of {vis_dir} and {ir_dir} by file stem:\n'
        '  2 visible images without an infrared image: a.jpg, c.jpg\n'
        '  1 infrared images without a visible image: d.png')
    shutil.copy(pair_files[0][0], vis_dir / 'b.png')
    with pytest.raises(ValueError, match=r'same stem in .*vis \(cannot pair them\): b.jpg / b.png'):
        inferencer((str(vis_dir), str(ir_dir)))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match=f'no image .* in {empty}'):
        inferencer((str(empty), str(ir_dir)))


def test_config_by_name():
    path = find_config('fm-yolov8_demo_1xb8-5e_demo-pairs')
    assert path.endswith('configs/fusion_mamba/fm-yolov8_demo_1xb8-5e_demo-pairs.py')
    assert find_config('fusion_mamba/fm-yolov8_demo_1xb8-5e_demo-pairs.py') == path
    with pytest.raises(FileNotFoundError, match='config not found: no-such-config'):
        find_config('no-such-config')
