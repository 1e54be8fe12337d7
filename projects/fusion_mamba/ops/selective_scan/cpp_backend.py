"""Selective scan as a compiled C++ CPU extension (backend name ``'cpp'``).

The kernel (``ops/csrc/selective_scan_cpu.cpp``) runs the recurrence token by token for every
(batch, channel) in parallel over ATen's thread pool (``torch.set_num_threads`` applies), in
float32 (float64 for float64 inputs). Its forward keeps the state every 64 tokens; its
backward recomputes each segment from there, so no (B, D, N, L) tensor is stored. delta's
bias / softplus and the D skip / z gate run in PyTorch around it, as in the ``torch`` backend.

The extension is built with ``torch.utils.cpp_extension.load`` the first time it is needed
(about 10 s on 2 cores; it needs a C++ compiler and ninja) and cached in torch's extension
directory (``TORCH_EXTENSIONS_DIR``), so later processes load it in well under a second. When it
cannot be built, :func:`is_available` is False and :func:`unavailable_reason` says why;
``backend='auto'`` then uses the ``torch`` backend and ``backend='cpp'`` raises that reason.

Environment: ``FUSION_MAMBA_DISABLE_CPP=1`` makes ``backend='auto'`` skip this backend
(explicit ``backend='cpp'`` still uses it).
"""
import functools
import logging
import os
import shutil
import time
from pathlib import Path

import torch

from .common import as_grouped, compute_dtype, prepare_delta, skip_and_gate

logger = logging.getLogger(__name__)
DISABLE_ENV = 'FUSION_MAMBA_DISABLE_CPP'
EXTENSION = 'fusion_mamba_selective_scan_cpu'
SOURCE = Path(__file__).resolve().parents[1] / 'csrc' / 'selective_scan_cpu.cpp'
# instruction sets torch's own kernels use on this CPU -> the matching compiler flags
_ISA_FLAGS = dict(AVX2=['-mavx2', '-mfma'], AVX512=['-mavx512f', '-mavx512dq', '-mavx512vl',
                                                     '-mavx2', '-mfma'])


def disabled_for_auto():
    """True when ``FUSION_MAMBA_DISABLE_CPP=1`` asks ``backend='auto'`` to skip this backend."""
    return os.environ.get(DISABLE_ENV) == '1'


def _cpp_extension():
    """``torch.utils.cpp_extension``, imported without its CUDA_HOME warning on CPU machines."""
    log = logging.getLogger('torch.utils.cpp_extension')
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension
    finally:
        log.setLevel(level)
    return cpp_extension


def _compiler_flags():
    flags = ['-O3', '-fopenmp-simd']
    if 'parallel backend: OpenMP' in torch.__config__.parallel_info():
        flags.append('-fopenmp')  # at::parallel_for is then an inlined OpenMP parallel region
    return flags + _ISA_FLAGS.get(torch.backends.cpu.get_cpu_capability(), [])


def _toolchain_problem(cpp_extension):
    """A short reason when there is no source, compiler or ninja, else None."""
    if not SOURCE.is_file():
        return f'the C++ source {SOURCE} is missing'
    compiler = os.environ.get('CXX', 'c++')
    if shutil.which(compiler) is None:
        return f'no C++ compiler ({compiler!r} is not on PATH; set CXX)'
    if not cpp_extension.is_ninja_available():
        return 'ninja is not installed (pip install ninja)'
    return None


def _build(cpp_extension):
    """Build (or load the cached build of) the extension; its ops land in torch.ops."""
    start = time.perf_counter()
    cflags = _compiler_flags()
    cpp_extension.load(name=EXTENSION, sources=[str(SOURCE)], extra_cflags=cflags,
                       extra_ldflags=['-fopenmp'] if '-fopenmp' in cflags else [],
                       is_python_module=False, verbose=False)
    logger.debug('loaded %s in %.1f s', EXTENSION, time.perf_counter() - start)


def _needs_build(cpp_extension):
    """Whether no cached build newer than the source exists (a guess: True when unsure)."""
    try:
        build_dir = Path(cpp_extension._get_build_directory(EXTENSION, False))
        newest = max(p.stat().st_mtime for p in build_dir.glob(f'{EXTENSION}*.so'))
    except Exception:  # no build yet, or torch moved its private helper
        return True
    return newest < SOURCE.stat().st_mtime


def _failure(what, exc):
    """A one-line reason: the message's first line (cut short) and its first compiler error."""
    lines = str(exc).strip().splitlines() or ['']
    errors = [line.strip() for line in lines[1:] if 'error' in line.lower()]
    detail = lines[0][:200] + (f'; {errors[0]}' if errors else '')
    return f'{what} failed ({type(exc).__name__}: {detail})'


@functools.lru_cache(maxsize=None)
def _load():
    """``(ops, None)`` once the extension is loaded, else ``(None, reason)``; never raises."""
    try:
        cpp_extension = _cpp_extension()
    except Exception as exc:  # a broken torch install
        return None, _failure('importing torch.utils.cpp_extension', exc)
    reason = _toolchain_problem(cpp_extension)
    if reason is not None:
        return None, reason
    if _needs_build(cpp_extension):
        logger.warning('fusion_mamba: compiling the C++ selective scan (%s) on first use; this '
                       'takes about 10 s and is cached for later runs', SOURCE.name)
    try:
        _build(cpp_extension)
    except Exception as exc:  # compiler errors, a failed dlopen, a broken toolchain...
        return None, _failure(f'building {SOURCE.name}', exc)
    _register_python_parts()
    return torch.ops.fusion_mamba, None


def unavailable_reason():
    """None when the extension is built and loaded, else why it is not (builds on first call)."""
    return _load()[1]


def is_available():
    """Whether the compiled CPU scan can run here (builds it on first call; never raises)."""
    return unavailable_reason() is None


def _ops():
    ops, reason = _load()
    if ops is None:
        raise RuntimeError(f"selective-scan backend 'cpp' is not available: {reason}")
    return ops


SEGMENT = 64  # tokens between two states saved by the forward (kSegment in the C++ source)


def _fake_forward(u, delta, A, B, C):
    """Shapes of ``fusion_mamba::cpu_scan_forward``: y (B, D, L), the last state (B, D, N)
    and the saved states (B, D, ceil(L / SEGMENT), N)."""
    batch, dim, length = u.shape
    d_state = A.shape[1]
    segments = -(-length // SEGMENT)
    return (u.new_empty(u.shape), u.new_empty(batch, dim, d_state),
            u.new_empty(batch, dim, segments, d_state))


def _fake_backward(u, delta, A, B, C, checkpoints, grad_y):
    return (u.new_empty(u.shape), delta.new_empty(delta.shape), A.new_empty(A.shape),
            B.new_empty(B.shape), C.new_empty(C.shape))


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs, output[2])


def _backward(ctx, grad_y, _grad_last, _grad_checkpoints):
    if grad_y is None:
        return None, None, None, None, None
    return torch.ops.fusion_mamba.cpu_scan_backward(*ctx.saved_tensors, grad_y.contiguous())


def _register_python_parts():
    """Fake kernels (torch.compile, meta tensors) and the autograd formula of the C++ ops;
    once, after the extension defined them (:func:`_load`)."""
    torch.library.register_fake('fusion_mamba::cpu_scan_forward')(_fake_forward)
    torch.library.register_fake('fusion_mamba::cpu_scan_backward')(_fake_backward)
    torch.library.register_autograd('fusion_mamba::cpu_scan_forward', _backward,
                                    setup_context=_setup_context)


def compiled_scan(u, delta, A, B, C):
    """The core scan on compute-dtype CPU tensors through ``torch.ops.fusion_mamba``: u, delta
    (B, D, L); A (D, N); B, C (B, G, N, L). Returns ``(y (B, D, L), last_state (B, D, N))``;
    differentiable in y (the state carries no gradient). Under torch.compile the extension
    is already loaded (by the backend resolution, which runs eagerly)."""
    if not torch.compiler.is_compiling():
        _ops()
    y, last, _ = torch.ops.fusion_mamba.cpu_scan_forward(u, delta, A, B, C)
    return y, last.detach()


def _cast(dtype, *tensors):
    return [None if t is None else t.to(dtype) for t in tensors]


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False):
    """Compiled CPU selective scan; returns ``(y (B, D, L), last_state (B, D, N))`` in the
    compute dtype. Arguments as :func:`fusion_mamba.ops.selective_scan`."""
    dtype = compute_dtype(u.dtype)
    u, delta, A, B, C, D, z, delta_bias = _cast(dtype, u, delta, A, as_grouped(B), as_grouped(C),
                                                D, z, delta_bias)
    delta = prepare_delta(delta, delta_bias, delta_softplus)
    y, last = compiled_scan(u, delta, A, B, C)
    return skip_and_gate(y, u, D, z), last
