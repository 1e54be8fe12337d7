"""Which selective-scan backends exist, which can run here, and which one a call gets.

- ``reference``: sequential fp32 recurrence (tests).
- ``torch``: chunked pure-PyTorch scan; any device.
- ``triton``: Triton kernels; CUDA tensors (or any device under ``TRITON_INTERPRET=1``).
- ``mamba_ssm``: mamba-ssm's CUDA ``selective_scan_fn``; CUDA tensors, when it imports.
- ``cpp``: compiled C++ kernel for CPU tensors, built on first use (see ``cpp_backend``).
- ``parallel``: log-depth parallel scan of plain tensor operations, any device; the
  formulation for export (no loop over tokens in the graph), never picked by ``auto``.
- ``auto``: ``triton`` on CUDA when Triton imports; on CPU ``cpp`` when it builds, else
  ``torch``. ``FUSION_MAMBA_DISABLE_CPP=1`` in the environment makes ``auto`` skip ``cpp``.
"""
import functools
import importlib
import importlib.util
import os

import torch

BACKENDS = ('reference', 'torch', 'triton', 'mamba_ssm', 'cpp', 'parallel')
# the backends' fused scans as torch operators (``torch.ops.fusion_mamba.*``): what
# selective activation checkpointing keeps instead of running again
SCAN_FORWARD_OPS = ('fusion_mamba::triton_scan_forward', 'fusion_mamba::cpu_scan_forward')
_MODULES = dict(reference='reference', torch='torch_chunked', triton='triton_kernels',
                mamba_ssm='mamba_ssm_backend', cpp='cpp_backend', parallel='parallel')


def _interpreting():
    return os.environ.get('TRITON_INTERPRET') == '1'


def _unavailable_reason(name):
    """None when ``name`` can be used here, else a short reason (``cpp`` builds on first call
    and remembers the outcome itself)."""
    if name == 'cpp':
        return get_backend('cpp').unavailable_reason()
    return _import_failure(name)


@functools.lru_cache(maxsize=None)
def _import_failure(name):
    """None when ``name`` can be imported here, else a short reason."""
    if name in ('reference', 'torch', 'parallel'):
        return None
    if name == 'triton' and importlib.util.find_spec('triton') is None:
        return 'the triton package is not installed'
    if name == 'mamba_ssm':
        try:
            importlib.import_module(f'{__package__}.mamba_ssm_backend').load()
        except Exception as exc:  # a missing or broken build raises anything from import
            return f'mamba_ssm does not import ({type(exc).__name__}: {exc})'
    return None


def available_backends():
    """Names of the backends usable on this machine (CUDA ones only when a GPU is visible)."""
    cuda = torch.cuda.is_available()
    return [name for name in BACKENDS
            if _unavailable_reason(name) is None
            and (name in ('reference', 'torch', 'cpp', 'parallel') or cuda
                 or (name == 'triton' and _interpreting()))]


@torch.compiler.assume_constant_result
def resolve_backend(name, device):
    """Map a backend name (or ``'auto'``) and a tensor device to a concrete backend name.

    Under ``torch.compile`` this runs once while tracing and its answer is a constant of the
    graph (the backend's module is imported then, so that :func:`get_backend` is a lookup).

    Raises ``ValueError`` for an unknown name, a CUDA-only backend on another device or
    ``cpp`` on a non-CPU device, and ``RuntimeError`` for a backend that cannot be imported
    (or, for ``cpp``, built) here.
    """
    device = torch.device(device)
    if name == 'auto':
        if device.type == 'cuda' and _unavailable_reason('triton') is None:
            return _loaded('triton')
        if (device.type == 'cpu' and not get_backend('cpp').disabled_for_auto()
                and _unavailable_reason('cpp') is None):
            return 'cpp'
        return 'torch'
    if name not in BACKENDS:
        raise ValueError(f'unknown selective-scan backend {name!r}; choose one of '
                         f'{("auto", ) + BACKENDS}')
    if name == 'cpp' and device.type != 'cpu':
        raise ValueError(f"selective-scan backend 'cpp' needs CPU tensors, got device {device}; "
                         'use backend="auto"')
    reason = _unavailable_reason(name)
    if reason is not None:
        raise RuntimeError(f'selective-scan backend {name!r} is not available: {reason}')
    cuda_only = name == 'mamba_ssm' or (name == 'triton' and not _interpreting())
    if cuda_only and device.type != 'cuda':
        raise ValueError(f'selective-scan backend {name!r} needs CUDA tensors, got device '
                         f'{device}; use backend="torch" or "auto"')
    return _loaded(name)


def _loaded(name):
    get_backend(name)
    return name


_MODULE_CACHE = {}


def add_launch_config_argument(parser) -> None:
    """``--launch-config JSON`` of the benchmark tools (see :func:`use_launch_config`)."""
    parser.add_argument('--launch-config', metavar='JSON',
                        help='Triton scan launches per d_state: tune_scan.py --out, or the '
                        'fields that differ from the default, e.g. {"16": {"seq_fwd_programs": '
                        '2048}}')


def use_launch_config(path) -> None:
    """Launch the Triton kernels as the JSON file ``path`` says (nothing when ``path`` is
    empty); prints the table. See ``triton_kernels.use_launch_table``."""
    if path:
        print(f'Triton launches from {path}: {get_backend("triton").use_launch_table(path)}')


def get_backend(name):
    """The module implementing a concrete backend (imported on first use)."""
    module = _MODULE_CACHE.get(name)
    if module is None:
        module = _MODULE_CACHE[name] = importlib.import_module(f'{__package__}.{_MODULES[name]}')
    return module
