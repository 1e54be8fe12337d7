"""Which selective-scan backends exist, which can run here, and which one a call gets.

- ``reference``: sequential fp32 recurrence (tests).
- ``torch``: chunked pure-PyTorch scan; any device.
- ``triton``: Triton kernels; CUDA tensors (or any device under ``TRITON_INTERPRET=1``).
- ``mamba_ssm``: mamba-ssm's CUDA ``selective_scan_fn``; CUDA tensors, when it imports.
- ``auto``: ``triton`` on CUDA when Triton imports, ``torch`` otherwise.
"""
import functools
import importlib
import importlib.util
import os

import torch

BACKENDS = ('reference', 'torch', 'triton', 'mamba_ssm')
_MODULES = dict(reference='reference', torch='torch_chunked', triton='triton_kernels',
                mamba_ssm='mamba_ssm_backend')


def _interpreting():
    return os.environ.get('TRITON_INTERPRET') == '1'


@functools.lru_cache(maxsize=None)
def _unavailable_reason(name):
    """None when ``name`` can be imported here, else a short reason."""
    if name in ('reference', 'torch'):
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
            and (name in ('reference', 'torch') or cuda or (name == 'triton' and _interpreting()))]


def resolve_backend(name, device):
    """Map a backend name (or ``'auto'``) and a tensor device to a concrete backend name.

    Raises ``ValueError`` for an unknown name or a CUDA-only backend on another device and
    ``RuntimeError`` for a backend that cannot be imported here.
    """
    device = torch.device(device)
    if name == 'auto':
        if device.type == 'cuda' and _unavailable_reason('triton') is None:
            return 'triton'
        return 'torch'
    if name not in BACKENDS:
        raise ValueError(f'unknown selective-scan backend {name!r}; choose one of '
                         f'{("auto", ) + BACKENDS}')
    reason = _unavailable_reason(name)
    if reason is not None:
        raise RuntimeError(f'selective-scan backend {name!r} is not available: {reason}')
    cuda_only = name == 'mamba_ssm' or (name == 'triton' and not _interpreting())
    if cuda_only and device.type != 'cuda':
        raise ValueError(f'selective-scan backend {name!r} needs CUDA tensors, got device '
                         f'{device}; use backend="torch" or "auto"')
    return name


def get_backend(name):
    """The module implementing a concrete backend (imported on first use)."""
    return importlib.import_module(f'{__package__}.{_MODULES[name]}')
