"""Where the time and the memory of a step go: kernel profiles and saved-activation totals.

Used by ``tools/analysis_tools/benchmark_detector.py`` (inference) and
``benchmark_train.py`` (training steps).
"""
import contextlib
import itertools
import re
from collections import defaultdict
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn

PROFILE_TOP = 25  # kernels listed by a profile

KERNEL_GROUPS = (  # (group, regular expression on the kernel / operator name), first match
    ('selective scan', r'scan_(fwd|bwd|forward|backward)|selective_scan'),
    ('matmul (GEMM)', r'gemm|cutlass|xmma|nvjet|cublas|addmm|\bmm\b|matmul|linear'),
    ('convolution', r'conv|cudnn|implicit|winograd|depthwise'),
    ('normalization', r'norm'),
    ('NMS', r'nms|gather_keep_from_mask'),  # the second: the NMS's keep-list gather
    ('copy / layout', r'copy|cat|Memcpy|Memset|transpose|permute|stack|contiguous|flip|gather'),
    ('optimizer', r'foreach|adam|sgd|multi_tensor'),
    ('elementwise / reduce', r'elementwise|reduce|silu|sigmoid|softplus|softmax|exp|mul|add'),
)


def kernel_group(name: str) -> str:
    """The coarse group of a kernel name, for the where-the-time-goes summary."""
    for group, pattern in KERNEL_GROUPS:
        if re.search(pattern, name, flags=re.IGNORECASE):
            return group
    return 'other'


def profile_steps(name: str, step: Callable[[object], object], batches: list, iters: int,
                  device: torch.device, trace_path: Optional[str] = None,
                  grad: bool = False) -> str:
    """Run ``iters`` calls of ``step`` (cycling over ``batches``) under ``torch.profiler``,
    with autograd off unless ``grad``; returns a printable summary of where the device time
    goes (CPU operators on CPU): per group and per kernel, self time per iteration and
    launches per iteration. ``trace_path``: also write a Chrome trace there."""
    from torch.profiler import ProfilerActivity, profile
    cuda = device.type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    cycle = itertools.cycle(batches)
    with torch.set_grad_enabled(grad), profile(activities=activities) as prof:
        for _ in range(iters):
            step(next(cycle))
        if cuda:
            torch.cuda.synchronize(device)
    if trace_path:
        prof.export_chrome_trace(trace_path)
    kind = torch.autograd.DeviceType.CUDA if cuda else torch.autograd.DeviceType.CPU
    # user annotations (e.g. 'Optimizer.step#SGD.step') span kernels listed on their own
    rows = [(e.key, e.self_device_time_total if cuda else e.self_cpu_time_total, e.count)
            for e in prof.key_averages()
            if e.device_type == kind and not getattr(e, 'is_user_annotation', False)]
    rows = [r for r in rows if r[1] > 0]
    total = sum(r[1] for r in rows) / iters / 1e3
    launches = sum(r[2] for r in rows) / iters
    groups: Dict[str, List[float]] = {}
    for key, us, count in rows:
        g = groups.setdefault(kernel_group(key), [0.0, 0.0])
        g[0] += us / iters / 1e3
        g[1] += count / iters
    what = 'kernels' if cuda else 'CPU operators (self time)'
    lines = [f'profile of {name}: {iters} iterations, {total:.2f} ms of {what} and '
             f'{launches:.0f} launches per iteration',
             '| group | ms / iter | share | launches / iter |', '|---|---:|---:|---:|']
    for group, (ms, count) in sorted(groups.items(), key=lambda kv: -kv[1][0]):
        lines.append(f'| {group} | {ms:.2f} | {100 * ms / total:.1f}% | {count:.0f} |')
    lines += ['| kernel | ms / iter | share | launches / iter |', '|---|---:|---:|---:|']
    for key, us, count in sorted(rows, key=lambda r: -r[1])[:PROFILE_TOP]:
        ms = us / iters / 1e3
        lines.append(f'| {key[:90]} | {ms:.3f} | {100 * ms / total:.1f}% | '
                     f'{count / iters:.0f} |')
    return '\n'.join(lines)


class SavedActivationCounter:
    """Bytes that autograd keeps for the backward pass, by the module that saved them.

    Inside the context, every tensor saved for backward is attributed to the innermost
    module running when it was saved (its class) and to the module path's first
    ``path_depth`` levels; each storage is counted once, at its first save (views and
    tensors saved twice share one storage). Parameters are not activations and are left
    out. Usage::

        counter = SavedActivationCounter(model)
        with counter:
            loss = model(...)        # forward only: the counts are complete here
        print(counter.summary())
    """

    def __init__(self, model: nn.Module, path_depth: int = 3):
        self.model = model
        self.path_depth = path_depth
        self.by_class: Dict[str, int] = defaultdict(int)
        self.by_path: Dict[str, int] = defaultdict(int)
        self._seen = set()
        self._stack: List[str] = []
        self._params = set()
        self._exit = contextlib.ExitStack()

    def _pack(self, tensor: torch.Tensor):
        storage = tensor.untyped_storage()
        key = (storage.device, storage.data_ptr())
        if key not in self._seen and storage.data_ptr() not in self._params:
            self._seen.add(key)
            path = self._stack[-1] if self._stack else ''
            module = self.model.get_submodule(path) if path else self.model
            self.by_class[type(module).__name__] += storage.nbytes()
            self.by_path['.'.join(path.split('.')[:self.path_depth]) or '(top)'] += \
                storage.nbytes()
        return tensor

    def _enter_module(self, path: str) -> None:
        self._stack.append(path)

    def _leave_module(self) -> None:  # returns None: a hook's result would replace the output
        self._stack.pop()

    def __enter__(self):
        self._params = {p.untyped_storage().data_ptr() for p in self.model.parameters()}
        for path, module in self.model.named_modules():
            self._exit.enter_context(module.register_forward_pre_hook(
                lambda _module, _args, path=path: self._enter_module(path)))
            self._exit.enter_context(module.register_forward_hook(
                lambda _module, _args, _output: self._leave_module(), always_call=True))
        self._exit.enter_context(torch.autograd.graph.saved_tensors_hooks(
            self._pack, lambda tensor: tensor))
        return self

    def __exit__(self, *exc):
        self._exit.close()
        return False

    @property
    def total_bytes(self) -> int:
        return sum(self.by_class.values())

    def summary(self, top: int = 15) -> str:
        """Markdown tables of the saved bytes by module class and by module path."""
        total = max(self.total_bytes, 1)
        lines = [f'activations saved for backward: {self.total_bytes / 2**20:.0f} MiB '
                 '(unique storages)']
        for title, counts in (('module class', self.by_class),
                              (f'module path (first {self.path_depth} levels)',
                               self.by_path)):
            lines += [f'| {title} | MiB | share |', '|---|---:|---:|']
            for key, nbytes in sorted(counts.items(), key=lambda kv: -kv[1])[:top]:
                lines.append(f'| {key} | {nbytes / 2**20:.0f} | {100 * nbytes / total:.1f}% |')
        return '\n'.join(lines)


def tensor_memory(step: Callable[[object], object], batch, model: nn.Module,
                  optimizer: Optional[torch.optim.Optimizer] = None) -> Dict[str, float]:
    """Peak tensor memory (MiB) of one ``step(batch)`` by what the tensors are, tracked by
    torch's ``MemTracker`` (``torch.distributed._tools``) on any device, CPU included:
    parameters, buffers, gradients, activations (what autograd keeps for the backward,
    also inside checkpointed modules), temporaries, optimizer state, other, and the total;
    the caching allocator's reserve on CUDA is not counted, nor are buffers an operator
    allocates and frees inside itself (the tracker sees operators' inputs and outputs: a
    fused scan's working copies are missing). Taken at the step's peak total, so the
    categories add up to it."""
    from torch.distributed._tools.mem_tracker import MemTracker
    tracker = MemTracker()
    tracker.track_external(model, *([optimizer] if optimizer is not None else []))
    with tracker:
        step(batch)
    peaks = tracker.get_tracker_snapshot('peak')
    device = next(model.parameters()).device
    return {getattr(kind, 'value', kind): nbytes / 2**20
            for kind, nbytes in peaks.get(device, {}).items()}


def tensor_memory_summary(name: str, peaks: Dict[str, float]) -> str:
    """Printable table of :func:`tensor_memory`'s result."""
    lines = [f'tensor memory of {name} at its peak (MiB, torch MemTracker)',
             '| kind | MiB |', '|---|---:|']
    lines += [f'| {kind} | {mib:.1f} |' for kind, mib in peaks.items()]
    return '\n'.join(lines)
