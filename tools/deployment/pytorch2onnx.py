"""Export a paired detector to ONNX; optionally check and time it in ONNX Runtime.

    python tools/deployment/pytorch2onnx.py CONFIG [CHECKPOINT] --out model.onnx
        [--shape H W] [--batch-size B] [--dynamic-batch] [--opset 17] [--with-nms]
        [--verify [--score-atol 1e-3] [--box-atol 0.05]] [--benchmark [--num-iters 20]]
        [--threads N] [--cfg-options key=value ...]

The ONNX model takes two float32 tensors, ``visible (B, 3, H, W)`` and ``infrared
(B, C_ir, H, W)``: pixel values 0..255 after the test pipeline's letterbox, the visible image
in mmcv's BGR order (the graph flips and normalises both, as the data preprocessor does).
Without ``--with-nms`` it returns ``scores (B, N, C)`` and ``boxes (B, N, 4)`` (xyxy, input
pixels) for every prior; with it ``num_dets (B,)`` and the best ``max_per_img`` detections of
each image after per-class ONNX ``NonMaxSuppression``, padded: ``boxes (B, M, 4)``,
``scores (B, M)``, ``labels (B, M)`` (thresholds from the config's ``test_cfg``:
``nms.iou_threshold``, ``score_thr``, ``max_per_img``; ``nms_pre`` is not applied). The
selective scans are exported as a log-depth parallel scan of standard operators (the
``'parallel'`` backend).

``--verify`` runs the exported model in ONNX Runtime (CPU) on random pairs of the export
shape (and twice the batch with ``--dynamic-batch``) and compares it with the PyTorch model
on its usual scan backend: the largest absolute / relative differences of scores and boxes,
or, with NMS, the detections slot by slot. It exits 1 when a difference exceeds
``--score-atol`` / ``--box-atol`` (or, with NMS, when an image's detection count or labels
differ).
``--benchmark`` times ONNX Runtime (CPU) against PyTorch eager on the same inputs, same
thread count.
"""
import argparse
import json
import sys

import torch
from mmengine.config import Config, DictAction

from fusion_mamba.apis.model_loading import build_detector
from fusion_mamba.deployment import ExportableDetector, export_scan
from fusion_mamba.deployment.onnx_export import (compare_nms, compare_raw, example_inputs,
                                                 export_onnx, onnx_session, run_onnx,
                                                 time_calls)
from fusion_mamba.utils import load_tool_config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='weights (default: random init)')
    parser.add_argument('--out', required=True, help='ONNX file to write')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help="input size (default: the config's img_scale, else 640 640)")
    parser.add_argument('--batch-size', type=int, default=1, help='batch of the traced call')
    parser.add_argument('--dynamic-batch', action='store_true', help='batch axis left free')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--with-nms', action='store_true',
                        help='append ONNX NonMaxSuppression (thresholds from test_cfg)')
    parser.add_argument('--verify', action='store_true',
                        help='compare ONNX Runtime with PyTorch, exit 1 above tolerance')
    parser.add_argument('--score-atol', type=float, default=1e-3)
    parser.add_argument('--box-atol', type=float, default=0.05, help='pixels')
    parser.add_argument('--benchmark', action='store_true',
                        help='time ONNX Runtime against PyTorch (CPU, same threads)')
    parser.add_argument('--num-iters', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--threads', type=int, default=0,
                        help='CPU threads for both runtimes (default: torch\'s count)')
    parser.add_argument('--json', help='write the verify / benchmark results here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def export_shape(cfg: Config, shape) -> tuple:
    if shape:
        height, width = shape
    else:
        width, height = cfg.get('img_scale', (640, 640))
    if height % 32 or width % 32:
        raise ValueError(f'--shape {height} {width}: both must be multiples of 32 (the '
                         'largest feature stride)')
    return height, width


def nms_settings(cfg: Config) -> dict:
    """NMS thresholds of the model's ``test_cfg``; ``ValueError`` for settings the exported
    NMS cannot reproduce."""
    test_cfg = cfg.model.get('test_cfg') or {}
    nms = test_cfg.get('nms', {})
    if nms.get('type', 'nms') != 'nms' or nms.get('class_agnostic', False):
        raise ValueError(f'--with-nms: test_cfg.nms {dict(nms)} is not plain per-class NMS, '
                         'which is what ONNX NonMaxSuppression does; export without NMS')
    if not test_cfg.get('multi_label', True):
        raise ValueError('--with-nms: test_cfg.multi_label=False (one class per prior) is not '
                         'exported; export without NMS')
    return dict(iou_threshold=float(nms.get('iou_threshold', 0.7)),
                score_threshold=float(test_cfg.get('score_thr', 0.001)),
                max_per_img=int(test_cfg.get('max_per_img', 300)))


def verify(session, wrapper, inputs, args) -> dict:
    """ONNX Runtime against the PyTorch model on its usual scan backends."""
    with torch.no_grad():
        ref = wrapper(*inputs)
    ours = run_onnx(session, inputs)
    if wrapper.nms_cfg is None:
        report = compare_raw(ours, ref)
        report['ok'] = (report['scores']['max_abs'] <= args.score_atol
                        and report['boxes']['max_abs'] <= args.box_atol)
    else:
        report = compare_nms(ours, ref)
        report['ok'] = (report['mismatched_images'] == 0
                        and report['max_abs_score'] <= args.score_atol
                        and report['max_abs_box'] <= args.box_atol)
    report['batch'] = int(inputs[0].shape[0])
    return report


def main(argv=None):
    args = parse_args(argv)
    cfg = load_tool_config(args.config, args.cfg_options)
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = export_shape(cfg, args.shape)
    model, _ = build_detector(cfg, args.checkpoint)
    wrapper = ExportableDetector(model, nms_settings(cfg) if args.with_nms else None).eval()
    inputs = example_inputs(args.batch_size, (height, width), int(wrapper.ir_mean.shape[1]))
    with export_scan(wrapper) as switched:
        outputs = export_onnx(wrapper, args.out, inputs, args.opset, args.dynamic_batch)
    import onnx
    graph = onnx.load(args.out).graph
    print(f'wrote {args.out}: inputs visible / infrared {args.batch_size}x?x{height}x{width}'
          f'{" (dynamic batch)" if args.dynamic_batch else ""}, outputs {", ".join(outputs)}; '
          f'{len(graph.node)} nodes, opset {args.opset}, {switched} selective-scan modules '
          'exported as the parallel scan')
    results = dict(onnx=args.out, shape=[height, width], nodes=len(graph.node))
    session = onnx_session(args.out, threads=args.threads or torch.get_num_threads())
    ok = True
    if args.verify:
        batches = [args.batch_size] + ([2 * args.batch_size] if args.dynamic_batch else [])
        results['verify'] = []
        for seed, batch in enumerate(batches, start=1):
            pair = example_inputs(batch, (height, width), inputs[1].shape[1], seed=seed)
            report = verify(session, wrapper, pair, args)
            results['verify'].append(report)
            ok &= report['ok']
            print(f'verify (batch {batch}, ONNX Runtime vs PyTorch): '
                  + json.dumps({k: v for k, v in report.items() if k != 'batch'}))
        print(f'verify: {"PASS" if ok else "FAIL"} (score atol {args.score_atol}, box atol '
              f'{args.box_atol} px)')
    if args.benchmark:
        with torch.no_grad():
            torch_time = time_calls(lambda: wrapper(*inputs), args.warmup, args.num_iters)
        ort_time = time_calls(lambda: run_onnx(session, inputs), args.warmup, args.num_iters)
        results['benchmark'] = dict(threads=torch.get_num_threads(), pytorch=torch_time,
                                    onnxruntime=ort_time)
        print(f'benchmark, CPU, {torch.get_num_threads()} threads, batch {args.batch_size}, '
              f'{height}x{width}, median of {args.num_iters}: PyTorch '
              f'{torch_time["median_ms"]:.1f} ms, ONNX Runtime {ort_time["median_ms"]:.1f} ms '
              f'({torch_time["median_ms"] / ort_time["median_ms"]:.2f}x)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
