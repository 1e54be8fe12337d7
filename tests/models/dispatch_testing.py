"""Helpers for the model tests: which operators run."""
from torch.utils._python_dispatch import TorchDispatchMode


class OpNames(TorchDispatchMode):
    """The names of the operators dispatched inside the context (``'aten::mm'``,
    ``'fusion_mamba::cpu_scan_forward'``, ...), in order."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.name())
        return func(*args, **(kwargs or {}))
