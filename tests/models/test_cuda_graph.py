"""Inference with the network replayed as CUDA graphs (MultiModalDetector.use_cuda_graphs)."""
import contextlib
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / 'configs/fusion_mamba/fm-yolov8_demo_1xb8-5e_demo-pairs.py'


def tiny_detector():
    """A randomly initialised FM-YOLOv8 at width 1/8 with one DSSF per level."""
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.merge_from_dict({
        'model.backbone.rgb_stream.widen_factor': 0.125,
        'model.backbone.in_channels': [32, 64, 128],
        'model.backbone.fusion.num_dssf': 1,
        'model.neck.widen_factor': 0.125,
        'model.bbox_head.widen_factor': 0.125,
        'model.test_cfg.score_thr': 0.05,
    })
    torch.manual_seed(0)
    return MODELS.build(cfg.model).eval()


def paired_batch(batch_size, height, width, device):
    """A preprocessed batch (normalised (B, 3, H, W) pairs) and its data samples."""
    from mmdet.structures import DetDataSample
    gen = torch.Generator().manual_seed(height * width + batch_size)
    inputs = {key: torch.rand(batch_size, 3, height, width, generator=gen).to(device)
              for key in ('visible', 'infrared')}
    meta = dict(img_shape=(height, width), ori_shape=(height, width), scale_factor=(1., 1.),
                batch_input_shape=(height, width))
    return inputs, [DetDataSample(metainfo=meta) for _ in range(batch_size)]


def assert_detections_found(ref, out, tol):
    """Every reference detection has one of ``out`` with its label, its score and its box
    within ``tol`` (order-free: near-tied scores may swap places between two runs)."""
    for box, score, label in zip(ref.bboxes, ref.scores, ref.labels):
        same = ((out.labels == label)
                & torch.isclose(out.scores, score, rtol=tol['rtol'], atol=tol['atol'])
                & torch.isclose(out.bboxes, box, rtol=tol['rtol'], atol=tol['atol']).all(1))
        assert same.any(), (box, score, label)


@contextlib.contextmanager
def without_tf32():
    """float32 matmuls and convolutions in full float32 inside the context (the flags are
    restored by hand: ``torch.backends.cuda.matmul`` answers ``allow_tf32`` through
    ``__getattr__``, which pytest's monkeypatch cannot restore)."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = matmul.allow_tf32, cudnn.allow_tf32
    matmul.allow_tf32 = cudnn.allow_tf32 = False
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved


def test_cuda_graphs_refuse_cpu_inputs():
    model = tiny_detector()
    model.use_cuda_graphs()
    inputs, samples = paired_batch(1, 64, 64, 'cpu')
    with pytest.raises(ValueError, match='CUDA graphs need CUDA inputs'):
        model.predict(inputs, samples)


@pytest.mark.cuda
@pytest.mark.parametrize('amp', [None, torch.bfloat16])
def test_cuda_graph_detections_equal_eager(amp):
    """The graph replays the eager network: the same head outputs and detections (within
    the dtype's tolerance) for two input shapes, each captured once and replayed with new
    data. float32 runs without TF32: with it, two eager runs of this network differ by up to
    6e-3 in the head outputs on an H200 (the scan's atomics reorder sums, and a last-bit
    change moves a TF32 rounding), enough for two near-tied boxes of a random network to
    suppress each other the other way round."""
    with contextlib.nullcontext() if amp else without_tf32():
        check_replays_equal_eager(amp)


def check_replays_equal_eager(amp):
    model = tiny_detector().cuda()
    model.use_cuda_graphs()
    tol = dict(rtol=2e-2, atol=0.5) if amp else dict(rtol=1e-3, atol=1e-2)
    for shape in ((1, 96, 128), (2, 64, 64), (1, 96, 128)):
        inputs, samples = paired_batch(*shape, 'cuda')
        with torch.no_grad(), torch.autocast('cuda', dtype=amp or torch.float32,
                                             enabled=amp is not None):
            eager_outs = model._network(inputs)
            eager = model.bbox_head.predict(model.extract_feat(inputs), samples, rescale=True)
            graph = model.predict(inputs, [s.clone() for s in samples])
            replay_outs = model._graph_runner(inputs)
        for ref_level, replay_level in zip(eager_outs, replay_outs):
            for ref_map, replay_map in zip(ref_level, replay_level):
                torch.testing.assert_close(replay_map, ref_map, **tol)
        for ref, out in zip(eager, graph):
            assert len(ref) > 0
            assert_detections_found(ref[:20], out.pred_instances, tol)
    assert len(model._graph_runner.graphs) == 2  # one capture per shape, the third replayed


def test_without_tf32_restores_the_flags():
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    before = matmul.allow_tf32, cudnn.allow_tf32
    matmul.allow_tf32 = cudnn.allow_tf32 = True
    try:
        with without_tf32():
            assert (matmul.allow_tf32, cudnn.allow_tf32) == (False, False)
        assert (matmul.allow_tf32, cudnn.allow_tf32) == (True, True)
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = before


def test_compiled_network_predicts_as_eager():
    """``use_compile``: the network (both streams, fusion blocks with their scans, neck, head)
    traces as one graph, and predictions through it equal eager's (the eager backend: the
    tracing, not a code generator); CUDA graphs and compile replace each other."""
    model = tiny_detector()
    inputs, samples = paired_batch(1, 96, 128, 'cpu')
    with torch.no_grad():
        explanation = torch._dynamo.explain(model._network)(inputs)
        assert explanation.graph_break_count == 0, explanation.break_reasons
        eager = model.predict(inputs, [s.clone() for s in samples])
        model.use_cuda_graphs()
        model.use_compile(backend='eager')
        assert model._graph_runner is None
        compiled = model.predict(inputs, [s.clone() for s in samples])
    for ref, out in zip(eager, compiled):
        assert len(ref.pred_instances) > 0
        assert_detections_found(ref.pred_instances[:20], out.pred_instances,
                                dict(rtol=1e-4, atol=1e-3))
