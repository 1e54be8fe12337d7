"""ONNX export of paired detectors (tools/deployment/pytorch2onnx.py), checked in ONNX Runtime."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / 'configs/fusion_mamba'
DEMO = CONFIGS / 'fm-yolov8_demo_1xb8-5e_demo-pairs.py'
TINY = {  # FM-YOLOv8 at width 1/8, one DSSF per level
    'model.backbone.rgb_stream.widen_factor': 0.125,
    'model.backbone.in_channels': [32, 64, 128],
    'model.backbone.fusion.num_dssf': 1,
    'model.neck.widen_factor': 0.125,
    'model.bbox_head.widen_factor': 0.125,
}


def load_tool():
    path = REPO / 'tools/deployment/pytorch2onnx.py'
    spec = importlib.util.spec_from_file_location('pytorch2onnx', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(config, options=None, seed=0):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options or {})
    torch.manual_seed(seed)
    return MODELS.build(cfg.model).eval()


def export_and_run(wrapper, inputs, path, **kwargs):
    from fusion_mamba.deployment import export_scan
    from fusion_mamba.deployment.onnx_export import export_onnx, onnx_session, run_onnx
    with export_scan(wrapper):
        export_onnx(wrapper, str(path), inputs, **kwargs)
    return onnx_session(str(path)), run_onnx


@pytest.mark.parametrize('config', [
    DEMO, CONFIGS / 'add-yolov8_demo_1xb8-5e_demo-pairs.py',
    CONFIGS / 'variants/cft-yolov8_demo_1xb8-5e_demo-pairs.py',
    CONFIGS / 'variants/cmsa-yolov8_demo_1xb8-5e_demo-pairs.py',
    CONFIGS / 'variants/fm-yolov8_demo-sasf_1xb8-5e_demo-pairs.py',
], ids=lambda p: p.stem.split('_1x')[0])
def test_every_fusion_choice_exports_and_matches_pytorch(config, tmp_path):
    """The tool on each demo config (random weights, 256x320 as the demo's test pipeline):
    ONNX Runtime's scores and boxes within the stated tolerance of PyTorch on its own scan
    backends, at the traced batch and at twice it."""
    out = tmp_path / 'results.json'
    code = load_tool().main([str(config), '--out', str(tmp_path / 'model.onnx'),
                             '--dynamic-batch', '--verify', '--json', str(out)])
    results = json.loads(out.read_text())
    assert code == 0, results
    assert [r['batch'] for r in results['verify']] == [1, 2]
    assert results['shape'] == [256, 320]
    for report in results['verify']:
        assert report['scores']['max_abs'] <= 1e-3 and report['boxes']['max_abs'] <= 0.05


def test_exported_nms_gives_the_detections_of_the_mmdet_predict_path(tmp_path):
    """Preprocessing, decoding, NMS and the per-image top-k in the graph against the
    detector's own predict (data preprocessor on uint8 pairs, mmdet's multi-class NMS,
    ``max_per_img``), image by image in a batch of two, best first."""
    from mmdet.structures import DetDataSample

    from fusion_mamba.deployment import ExportableDetector
    max_per_img = 20
    model = build(DEMO, dict(TINY, **{'model.test_cfg.score_thr': 0.2,
                                      'model.test_cfg.max_per_img': max_per_img}))
    nms = dict(iou_threshold=0.7, score_threshold=0.2, max_per_img=max_per_img)
    wrapper = ExportableDetector(model, nms).eval()
    gen = torch.Generator().manual_seed(3)
    height, width = 96, 128
    pairs = [[torch.randint(0, 256, (3, height, width), generator=gen, dtype=torch.uint8)
              for _ in range(2)] for _ in range(2)]
    meta = dict(img_shape=(height, width), ori_shape=(height, width), scale_factor=(1., 1.))
    with torch.no_grad():
        refs = [model.test_step(dict(inputs=dict(visible=[v], infrared=[i]),
                                     data_samples=[DetDataSample(metainfo=meta)])
                                )[0].pred_instances for v, i in pairs]
    inputs = [torch.stack([pair[k] for pair in pairs]).float() for k in (0, 1)]
    session, run = export_and_run(wrapper, inputs, tmp_path / 'nms.onnx')
    num_dets, boxes, scores, labels = run(session, inputs)
    assert [len(ref) for ref in refs] == num_dets.tolist()
    assert num_dets.max() == max_per_img and num_dets.min() > 0  # the cap is exercised
    for image, ref in enumerate(refs):
        n = len(ref)
        np.testing.assert_array_equal(labels[image, :n], ref.labels.numpy())
        np.testing.assert_allclose(scores[image, :n], ref.scores.numpy(), atol=1e-4)
        np.testing.assert_allclose(boxes[image, :n], ref.bboxes.numpy(), atol=0.05)
        assert (labels[image, n:] == -1).all() and (scores[image, n:] == 0).all()


def test_cli_exports_nms_from_the_test_cfg_and_refuses_what_it_cannot_reproduce(tmp_path):
    tool, config = load_tool(), str(CONFIGS / 'add-yolov8_demo_1xb8-5e_demo-pairs.py')
    out = tmp_path / 'results.json'
    assert tool.main([config, '--out', str(tmp_path / 'nms.onnx'), '--with-nms',
                      '--dynamic-batch', '--verify', '--json', str(out)]) == 0
    reports = json.loads(out.read_text())['verify']
    assert [r['batch'] for r in reports] == [1, 2]
    assert all(r['mismatched_images'] == 0 and r['detections'] > 0 for r in reports)
    from fusion_mamba.deployment.onnx_export import example_inputs, onnx_session, run_onnx
    num_dets, boxes, scores, labels = run_onnx(onnx_session(str(tmp_path / 'nms.onnx')),
                                               example_inputs(3, (256, 320), 3))
    assert boxes.shape == (3, 100, 4)  # the demo's test_cfg.max_per_img, any batch
    with pytest.raises(ValueError, match='not plain per-class NMS'):
        tool.main([config, '--out', str(tmp_path / 'x.onnx'), '--with-nms', '--cfg-options',
                   'model.test_cfg.nms.type=soft_nms'])


def test_graph_grows_with_the_log_of_the_number_of_tokens(tmp_path):
    """Each 4x more tokens per level adds the same number of nodes (two more doubling steps
    per scan); a loop over tokens would add 4x more nodes at every step."""
    import onnx

    from fusion_mamba.deployment import ExportableDetector
    from fusion_mamba.deployment.onnx_export import example_inputs
    counts = []
    for size in (64, 128, 256):
        wrapper = ExportableDetector(build(DEMO, TINY)).eval()
        path = tmp_path / f'{size}.onnx'
        export_and_run(wrapper, example_inputs(1, (size, size), 3), path)
        counts.append(len(onnx.load(str(path)).graph.node))
    growth = np.diff(counts)
    assert growth[0] > 0 and growth[1] == growth[0], counts
    assert growth[0] < 0.2 * counts[0], counts


def test_export_errors_name_the_failing_module(tmp_path):
    from fusion_mamba.deployment.onnx_export import name_failing_module

    class Unsupported(nn.Module):
        def forward(self, x):
            raise NotImplementedError('no ONNX form')

    model = nn.Sequential(nn.Identity(), nn.Sequential(nn.ReLU(), Unsupported()))
    with pytest.raises(RuntimeError, match=r'in module 1\.1 \(Unsupported\).*no ONNX form'):
        with name_failing_module(model):
            model(torch.zeros(1))


def test_pooling_matrices_give_adaptive_average_pooling_bins():
    from fusion_mamba.models.fusion.transformer_fusion import pooling_matrix
    x = torch.randn(2, 3, 13, 20)
    for grid in ((8, 8), (5, 3), (13, 20)):
        pooled = pooling_matrix(13, grid[0], x) @ x @ pooling_matrix(20, grid[1], x).T
        torch.testing.assert_close(pooled, F.adaptive_avg_pool2d(x, grid))


def test_shape_must_be_a_multiple_of_the_stride(tmp_path):
    with pytest.raises(ValueError, match='--shape 100 128: both must be multiples of 32'):
        load_tool().main([str(DEMO), '--out', str(tmp_path / 'x.onnx'), '--shape', '100',
                          '128'])
