"""The compiled CPU backend ('cpp') against the sequential reference: forward, last state and
every gradient, low-precision inputs, SS2D, float64 gradcheck, thread-count independence, and
how ``auto`` and explicit requests behave when the extension is or is not available."""
import pytest
import torch
from ops_testing import (assert_close, assert_grads_close, detached_copy, explicit_ss2d,
                         grads_of, scan_inputs, ss2d_inputs)

from fusion_mamba.ops import resolve_backend, selective_scan, ss2d_selective_scan
from fusion_mamba.ops.selective_scan import cpp_backend

SHAPES = [  # (batch, dim, d_state, length, groups); the kernel keeps a state every 64 tokens
    (1, 1, 1, 1, None),
    (2, 4, 16, 1, None),
    (2, 3, 1, 7, None),
    (1, 6, 16, 37, 3),
    (2, 4, 5, 64, 2),
    (2, 5, 16, 129, None),
    (1, 8, 1, 1000, 2),
]
LONG_SHAPE = (1, 2, 16, 4099, None)  # run once, to keep the per-token reference's time down


@pytest.fixture
def forget_build():
    """Let a test break the build: the remembered outcome is dropped before and after it."""
    cpp_backend._load.cache_clear()
    yield
    cpp_backend._load.cache_clear()


def scan_both(inputs, **kwargs):
    """y, last state and input gradients (of y) of 'cpp' and of 'reference'."""
    ref_inputs = detached_copy(inputs)
    results = []
    for backend, leaves in (('cpp', inputs), ('reference', ref_inputs)):
        y, last = selective_scan(**leaves, backend=backend, return_last_state=True, **kwargs)
        results.append((y, last, grads_of(y, leaves)))
    return results


@pytest.mark.usefixtures('needs_cpp')
@pytest.mark.parametrize('shape, softplus', [(shape, softplus) for shape in SHAPES
                                             for softplus in (True, False)]
                         + [(LONG_SHAPE, True)], ids=str)
def test_matches_reference(shape, softplus):
    batch, dim, d_state, length, groups = shape
    inputs = scan_inputs(batch, dim, d_state, length, groups)
    if not softplus:  # keep delta positive as a real model's would be
        for name in ('delta', 'delta_bias'):
            inputs[name] = inputs[name].detach().abs().requires_grad_()
    (y, last, grads), (y_ref, last_ref, grads_ref) = scan_both(inputs, delta_softplus=softplus)
    assert y.dtype == torch.float32 and y.shape == (batch, dim, length)
    assert last.shape == (batch, dim, d_state) and not last.requires_grad
    assert_close(y, y_ref, torch.float32, 'y')
    assert_close(last, last_ref, torch.float32, 'last state')
    assert_grads_close(grads, grads_ref, torch.float32)


@pytest.mark.usefixtures('needs_cpp')
def test_minimal_arguments():
    inputs = scan_inputs(2, 3, 4, 50, extras=False)
    (y, last, grads), (y_ref, last_ref, grads_ref) = scan_both(inputs)
    assert_close(y, y_ref, torch.float32, 'y')
    assert_close(last, last_ref, torch.float32, 'last state')
    assert_grads_close(grads, grads_ref, torch.float32)


@pytest.mark.usefixtures('needs_cpp')
def test_strided_inputs():
    """Transposed / sliced views give what their contiguous copies give."""
    inputs = scan_inputs(2, 6, 4, 70, groups=2)
    views = {k: v.detach().transpose(-1, -2).contiguous().transpose(-1, -2).requires_grad_()
             if v.dim() > 1 else v.detach().clone().requires_grad_() for k, v in inputs.items()}
    views['A'] = inputs['A'].detach().repeat_interleave(2, dim=1)[:, ::2].requires_grad_()
    assert not views['u'].is_contiguous() and not views['A'].is_contiguous()
    y = selective_scan(**inputs, delta_softplus=True, backend='cpp')
    y_views = selective_scan(**views, delta_softplus=True, backend='cpp')
    torch.testing.assert_close(y_views, y)
    grads, grads_views = grads_of(y, inputs), grads_of(y_views, views)
    for name in grads:
        torch.testing.assert_close(grads_views[name], grads[name], msg=name)


@pytest.mark.usefixtures('needs_cpp')
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_low_precision_inputs(dtype):
    inputs = scan_inputs(2, 4, 16, 300, groups=2, dtype=dtype)
    (y, _, grads), (y_ref, _, grads_ref) = scan_both(inputs, delta_softplus=True)
    assert y.dtype == dtype
    assert_close(y, y_ref, dtype, 'y')
    assert_grads_close(grads, grads_ref, dtype)


@pytest.mark.usefixtures('needs_cpp')
def test_large_decay_is_finite():
    """delta * |A| in the thousands: decays underflow, nothing overflows."""
    inputs = scan_inputs(1, 4, 16, 500, extras=False)
    with torch.no_grad():
        inputs['delta'].mul_(100).add_(30)
        inputs['A'].mul_(50)
    (y, _, grads), (y_ref, _, grads_ref) = scan_both(inputs, delta_softplus=True)
    assert torch.isfinite(y).all() and all(torch.isfinite(g).all() for g in grads.values())
    assert_close(y, y_ref, torch.float32, 'y')
    assert_grads_close(grads, grads_ref, torch.float32)


@pytest.mark.usefixtures('needs_cpp')
def test_thread_count_does_not_change_results():
    """The backward splits channels into more slices with more threads; sums must agree."""
    inputs = scan_inputs(1, 8, 4, 150, groups=2)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 4):
            torch.set_num_threads(n)
            leaves = detached_copy(inputs)
            y = selective_scan(**leaves, delta_softplus=True, backend='cpp')
            results.append((y, grads_of(y, leaves)))
    finally:
        torch.set_num_threads(threads)
    (y1, g1), (y4, g4) = results
    torch.testing.assert_close(y4, y1)
    for name in g1:
        torch.testing.assert_close(g4[name], g1[name], msg=name)


@pytest.mark.usefixtures('needs_cpp')
@pytest.mark.parametrize('shape', [(1, 3, 1, 4, 7), (2, 4, 16, 5, 3), (1, 2, 4, 9, 11)], ids=str)
def test_ss2d_matches_reference(shape):
    inputs = ss2d_inputs(*shape)
    y = ss2d_selective_scan(**inputs, backend='cpp')
    assert y.shape == inputs['x'].shape
    ref_inputs = detached_copy(inputs)
    y_ref = explicit_ss2d(**ref_inputs)
    assert_close(y, y_ref, torch.float32, 'y')
    assert_grads_close(grads_of(y, inputs), grads_of(y_ref, ref_inputs), torch.float32)


@pytest.mark.usefixtures('needs_cpp')
def test_gradcheck_float64():
    inputs = scan_inputs(1, 4, 3, 70, groups=2, dtype=torch.float64)
    inputs = {k: v.detach().double().requires_grad_() for k, v in inputs.items()}
    names = list(inputs)

    def scan(*tensors):
        return selective_scan(**dict(zip(names, tensors)), delta_softplus=True, backend='cpp')

    assert scan(*inputs.values()).dtype == torch.float64
    assert torch.autograd.gradcheck(scan, tuple(inputs.values()))


@pytest.mark.usefixtures('needs_cpp')
def test_auto_picks_cpp_on_cpu_unless_disabled(monkeypatch):
    monkeypatch.delenv(cpp_backend.DISABLE_ENV, raising=False)
    assert resolve_backend('auto', 'cpu') == 'cpp'
    monkeypatch.setenv(cpp_backend.DISABLE_ENV, '1')
    assert resolve_backend('auto', 'cpu') == 'torch'
    assert resolve_backend('cpp', 'cpu') == 'cpp'


def test_cpp_needs_cpu_tensors():
    with pytest.raises(ValueError, match="'cpp' needs CPU tensors"):
        resolve_backend('cpp', 'cuda')


@pytest.mark.usefixtures('forget_build')
def test_failed_build_is_a_clear_error(monkeypatch):
    def broken_build(cpp_extension):
        raise RuntimeError("Error building extension 'x': [1/2] c++ ...\nFAILED: x.o\n"
                           'x.cpp:1:1: error: compiler exploded\n    1 | oops')

    monkeypatch.setattr(cpp_backend, '_build', broken_build)
    assert not cpp_backend.is_available()
    assert cpp_backend.unavailable_reason() == (
        "building selective_scan_cpu.cpp failed (RuntimeError: Error building extension 'x': "
        '[1/2] c++ ...; x.cpp:1:1: error: compiler exploded)')
    assert resolve_backend('auto', 'cpu') == 'torch'
    with pytest.raises(RuntimeError, match="'cpp' is not available: building .* compiler explo"):
        selective_scan(**scan_inputs(1, 2, 2, 5), backend='cpp')


@pytest.mark.usefixtures('forget_build')
def test_missing_compiler_is_reported(monkeypatch):
    monkeypatch.setenv('CXX', 'no-such-compiler-fm')
    assert not cpp_backend.is_available()
    assert "'no-such-compiler-fm' is not on PATH" in cpp_backend.unavailable_reason()
    with pytest.raises(RuntimeError, match='no C\\+\\+ compiler'):
        resolve_backend('cpp', 'cpu')
