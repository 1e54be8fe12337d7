"""Export an :class:`ExportableDetector` to ONNX, check it in ONNX Runtime, time both."""
import contextlib
import re
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

RAW_OUTPUTS = ('scores', 'boxes')
NMS_OUTPUTS = ('num_dets', 'boxes', 'scores', 'labels')
INPUTS = ('visible', 'infrared')


@contextlib.contextmanager
def name_failing_module(model: nn.Module):
    """Re-raise an error raised inside ``model`` as a ``RuntimeError`` that names the
    innermost module that was running (e.g. ``detector.backbone.fusion.0 (FusionMambaBlock)``)."""
    running: List[str] = []
    names = {module: name for name, module in model.named_modules()}

    def enter(module, args):
        running.append(names.get(module, type(module).__name__))

    def leave(module, args, output):
        running.pop()

    handles = [m.register_forward_pre_hook(enter) for m in names]
    handles += [m.register_forward_hook(leave) for m in names]
    try:
        yield
    except Exception as exc:
        # raised while tracing: the innermost running module; raised while converting the
        # traced graph: the module named by the failing node's scope, when it has one
        inner = running[-1] if running else scope_module(str(exc))
        if inner is None:
            raise
        # a scope skips the modules whose forward was not called (the detector's own)
        inner, module = next(((name, m) for name, m in model.named_modules()
                              if name == inner or name.endswith('.' + inner)),
                             (inner, model))
        raise RuntimeError(f'ONNX export failed in module {inner or "<root>"} '
                           f'({type(module).__name__}): {type(exc).__name__}: {exc}') from exc
    finally:
        for handle in handles:
            handle.remove()


def scope_module(message: str) -> Optional[str]:
    """The module path in the ``scope:`` of a TorchScript ONNX error (``A::/B::backbone/
    C::fusions.0`` -> ``backbone.fusions.0``), None without one."""
    match = re.search(r'scope: (\S+)', message)
    if match is None:
        return None
    return '.'.join(part.split('::')[-1] for part in match.group(1).split('/')
                    if part.split('::')[-1])


def example_inputs(batch: int, shape: Tuple[int, int], ir_channels: int,
                   seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random pixel pairs ``(B, 3, H, W)`` and ``(B, C_ir, H, W)`` in 0..255."""
    gen = torch.Generator().manual_seed(seed)
    height, width = shape
    return (torch.rand(batch, 3, height, width, generator=gen) * 255,
            torch.rand(batch, ir_channels, height, width, generator=gen) * 255)


def export_onnx(wrapper: nn.Module, path: str, inputs: Sequence[torch.Tensor],
                opset: int = 17, dynamic_batch: bool = False) -> List[str]:
    """Trace ``wrapper(visible, infrared)`` into an ONNX file; returns the output names.

    Uses torch's TorchScript-based exporter (``dynamo=False``): the graph is the trace of
    one call, so Python control flow follows the example inputs' shapes; only the batch
    dimension may vary (``dynamic_batch``).
    """
    outputs = list(RAW_OUTPUTS if wrapper.nms_cfg is None else NMS_OUTPUTS)
    dynamic_axes = None
    if dynamic_batch:
        dynamic_axes = {name: {0: 'batch'} for name in INPUTS + tuple(outputs)}
    with torch.no_grad(), name_failing_module(wrapper):
        torch.onnx.export(wrapper, tuple(inputs), path, dynamo=False, opset_version=opset,
                          input_names=list(INPUTS), output_names=outputs,
                          dynamic_axes=dynamic_axes)
    return outputs


def onnx_session(path: str, providers: Optional[Sequence[str]] = None, threads: int = 0):
    """An ONNX Runtime session (CPU unless ``providers`` says otherwise)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(path, options,
                                providers=list(providers or ['CPUExecutionProvider']))


def run_onnx(session, inputs: Sequence[torch.Tensor]) -> List[np.ndarray]:
    return session.run(None, {name: t.numpy() for name, t in zip(INPUTS, inputs)})


def compare_raw(ours: Sequence[np.ndarray], ref: Sequence[torch.Tensor]) -> Dict[str, dict]:
    """Largest absolute and relative differences of raw ``scores`` / ``boxes``."""
    report = {}
    for name, a, b in zip(RAW_OUTPUTS, ours, ref):
        b = b.numpy()
        diff = np.abs(a - b)
        report[name] = dict(max_abs=float(diff.max()),
                            max_rel=float((diff / np.maximum(np.abs(b), 1e-6)).max()))
    return report


def compare_nms(ours: Sequence[np.ndarray], ref: Sequence[torch.Tensor]) -> dict:
    """Detections after NMS of both runs, slot by slot (both best first per image): the
    images whose detection counts or labels differ, and the largest score and box
    differences of the valid slots."""
    num, boxes, scores, labels = ours
    ref_num, ref_boxes, ref_scores, ref_labels = (t.numpy() for t in ref)
    valid = np.arange(labels.shape[1])[None] < np.maximum(num, ref_num)[:, None]
    mismatched = (num != ref_num) | ((labels != ref_labels) & valid).any(1)
    return dict(detections=int(num.sum()), pytorch_detections=int(ref_num.sum()),
                mismatched_images=int(mismatched.sum()),
                max_abs_score=float(np.abs(scores - ref_scores)[valid].max(initial=0)),
                max_abs_box=float(np.abs(boxes - ref_boxes)[valid].max(initial=0)))


def time_calls(fn, warmup: int, iters: int) -> Dict[str, float]:
    """Mean and median wall time (ms) of ``fn()`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return dict(mean_ms=float(np.mean(times)), median_ms=float(np.median(times)))
