"""CPU tests of the selective scan: torch backend vs the sequential reference, gradcheck,
numerical safety, the hidden-state mode and input validation."""
import pytest
import torch
from ops_testing import (assert_close, assert_grads_close, detached_copy, grads_of,
                         scan_inputs)

from fusion_mamba.ops import (available_backends, resolve_backend, selective_scan,
                              selective_scan_states)
from fusion_mamba.ops.selective_scan.torch_chunked import linear_scan

SHAPES = [  # (batch, dim, d_state, length, groups)
    (1, 1, 1, 1, None),
    (2, 3, 1, 7, None),
    (2, 4, 16, 1, None),
    (1, 6, 16, 37, 3),
    (2, 5, 16, 129, None),
    (1, 8, 1, 1000, 2),
    (1, 4, 16, 2049, None),
]


def run_both(inputs, backend, dtype=torch.float32, **kwargs):
    ours = selective_scan(**inputs, backend=backend, **kwargs)
    ref_inputs = detached_copy(inputs)
    ref = selective_scan(**ref_inputs, backend='reference', **kwargs)
    return ours, grads_of(ours, inputs), ref, grads_of(ref, ref_inputs)


@pytest.mark.parametrize('backend', ['torch', 'parallel'])
@pytest.mark.parametrize('shape', SHAPES, ids=str)
@pytest.mark.parametrize('softplus', [True, False])
def test_pure_torch_backends_match_reference(shape, softplus, backend):
    batch, dim, d_state, length, groups = shape
    inputs = scan_inputs(batch, dim, d_state, length, groups)
    if not softplus:  # keep delta positive as a real model's would be
        for name in ('delta', 'delta_bias'):
            inputs[name] = inputs[name].detach().abs().requires_grad_()
    ours, g_ours, ref, g_ref = run_both(inputs, backend, delta_softplus=softplus)
    assert ours.dtype == torch.float32 and ours.shape == (batch, dim, length)
    assert_close(ours, ref, torch.float32, 'y')
    assert_grads_close(g_ours, g_ref, torch.float32)


@pytest.mark.parametrize('backend', ['torch', 'parallel'])
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_torch_low_precision_inputs(dtype, backend):
    inputs = scan_inputs(2, 4, 16, 300, groups=2, dtype=dtype)
    ours, g_ours, ref, g_ref = run_both(inputs, backend, delta_softplus=True)
    assert ours.dtype == dtype
    assert_close(ours, ref, dtype, 'y')
    assert_grads_close(g_ours, g_ref, dtype)


def test_last_state_and_minimal_arguments():
    inputs = scan_inputs(2, 3, 4, 50, extras=False)
    y, last = selective_scan(**inputs, return_last_state=True, backend='torch')
    y_ref, last_ref = selective_scan(**detached_copy(inputs), return_last_state=True,
                                     backend='reference')
    assert last.shape == (2, 3, 4) and last.dtype == torch.float32
    assert_close(y, y_ref, torch.float32)
    assert_close(last, last_ref, torch.float32)
    states = selective_scan_states(inputs['u'], inputs['delta'], inputs['A'], inputs['B'],
                                   backend='torch')
    assert_close(states[..., -1], last_ref, torch.float32)


@pytest.mark.parametrize('backend', ['torch', 'cpp', 'parallel', 'auto'])
@pytest.mark.parametrize('shape', [(2, 3, 1, 45, None), (1, 4, 1, 300, 2), (1, 4, 16, 33, 2)],
                         ids=str)
def test_states_match_reference(shape, backend):
    """N > 1: the chunked torch states; N == 1: the backend's own scan with C = 1."""
    if backend not in available_backends() + ['auto']:
        pytest.skip(f'backend {backend!r} is not available here')
    batch, dim, d_state, length, groups = shape
    full = scan_inputs(batch, dim, d_state, length, groups, extras=False)
    inputs = dict(u=full['u'], delta=full['delta'], A=full['A'], B=full['B'])
    bias = torch.randn(dim).requires_grad_()
    h = selective_scan_states(**inputs, delta_bias=bias, delta_softplus=True, backend=backend)
    expected_shape = (batch, dim, length) if d_state == 1 else (batch, dim, d_state, length)
    assert h.shape == expected_shape
    ref_inputs = detached_copy(dict(inputs, delta_bias=bias))
    h_ref = selective_scan_states(**ref_inputs, delta_softplus=True, backend='reference')
    assert_close(h, h_ref, torch.float32, 'h')
    assert_grads_close(grads_of(h, dict(inputs, delta_bias=bias)), grads_of(h_ref, ref_inputs),
                       torch.float32)


def test_gradcheck_float64():
    inputs = scan_inputs(2, 4, 3, 11, groups=2, dtype=torch.float64)
    inputs = {k: v.detach().double().requires_grad_() for k, v in inputs.items()}
    names = list(inputs)

    def scan(*tensors):
        return selective_scan(**dict(zip(names, tensors)), delta_softplus=True, backend='torch')

    assert torch.autograd.gradcheck(scan, tuple(inputs.values()))


def test_gradcheck_states_float64():
    inputs = scan_inputs(1, 3, 2, 9, dtype=torch.float64, extras=False)
    tensors = tuple(inputs[k].detach().double().requires_grad_() for k in ('u', 'delta', 'A', 'B'))
    assert torch.autograd.gradcheck(
        lambda *t: selective_scan_states(*t, delta_softplus=True, backend='torch'), tensors)


def test_large_decay_is_finite():
    """delta * |A| in the thousands: decays underflow to 0, nothing overflows."""
    inputs = scan_inputs(1, 4, 16, 500, extras=False)
    with torch.no_grad():
        inputs['delta'].mul_(100).add_(30)
        inputs['A'].mul_(50)
    ours, g_ours, ref, g_ref = run_both(inputs, 'torch', delta_softplus=True)
    assert torch.isfinite(ours).all()
    assert all(torch.isfinite(g).all() for g in g_ours.values())
    assert_close(ours, ref, torch.float32)
    assert_grads_close(g_ours, g_ref, torch.float32)


@pytest.mark.parametrize('reverse', [False, True])
@pytest.mark.parametrize('length', [1, 2, 10, 17, 64])
def test_linear_scan_matches_loop(length, reverse):
    gen = torch.Generator().manual_seed(length)
    a, b, h0 = torch.rand(length, 3, generator=gen), torch.randn(length, 3, generator=gen), \
        torch.randn(3, generator=gen)
    expected, h = torch.empty_like(b), h0
    for t in (range(length - 1, -1, -1) if reverse else range(length)):
        h = a[t] * h + b[t]
        expected[t] = h
    torch.testing.assert_close(linear_scan(a.clone(), b.clone(), h0, reverse), expected)


def test_parallel_scan_graph_grows_with_log_length():
    """The 'parallel' backend traces to a graph whose size grows by a constant per doubling
    of the sequence length (log2 L steps, no per-token loop): what export needs."""
    def traced_nodes(length):
        inputs = {k: v.detach() for k, v in scan_inputs(1, 2, 3, length).items()}
        names = ('u', 'delta', 'A', 'B', 'C', 'D', 'z', 'delta_bias')

        def scan(*args):
            return selective_scan(**dict(zip(names, args)), delta_softplus=True,
                                  backend='parallel')
        with torch.no_grad():
            graph = torch.jit.trace(scan, tuple(inputs[n] for n in names), check_trace=False)
        return len(list(graph.graph.nodes()))

    counts = {length: traced_nodes(length) for length in (64, 128, 2048, 4096)}
    per_doubling = counts[128] - counts[64]
    assert per_doubling > 0
    assert counts[4096] - counts[2048] == per_doubling
    assert counts[4096] == counts[64] + 6 * per_doubling


def test_backends_listing(monkeypatch):
    monkeypatch.delenv('FUSION_MAMBA_DISABLE_CPP', raising=False)
    names = available_backends()
    assert {'reference', 'torch', 'parallel'} <= set(names)
    assert resolve_backend('auto', 'cpu') == ('cpp' if 'cpp' in names else 'torch')


@pytest.mark.parametrize('backend', ['triton', 'mamba_ssm'])
def test_cuda_backend_on_cpu_is_a_clear_error(backend, monkeypatch):
    monkeypatch.delenv('TRITON_INTERPRET', raising=False)
    inputs = scan_inputs(1, 2, 2, 5, extras=False)
    with pytest.raises((ValueError, RuntimeError), match=backend):
        selective_scan(**inputs, backend=backend)


def test_unknown_backend():
    with pytest.raises(ValueError, match='unknown selective-scan backend'):
        selective_scan(**scan_inputs(1, 2, 2, 5, extras=False), backend='cuda_magic')


def _bad(**changes):
    inputs = {k: v.detach() for k, v in scan_inputs(2, 4, 3, 6, groups=2).items()}
    inputs.update(changes)
    return inputs


@pytest.mark.parametrize('changes, error, match', [
    (dict(delta=torch.rand(2, 4, 7)), ValueError, 'delta must have shape'),
    (dict(u=torch.randn(2, 4)), ValueError, r'u must be \(batch, dim, length\)'),
    (dict(A=torch.randn(3, 3)), ValueError, 'A must be'),
    (dict(B=torch.randn(2, 3, 3, 6)), ValueError, 'groups, which must divide'),
    (dict(C=torch.randn(2, 3, 6)), ValueError, 'same number of groups'),
    (dict(B=torch.randn(2, 2, 4, 6)), ValueError, 'B must have shape'),
    (dict(D=torch.randn(5)), ValueError, 'D must have shape'),
    (dict(z=torch.randn(2, 4, 5)), ValueError, 'z must have shape'),
    (dict(delta=torch.rand(2, 4, 6, dtype=torch.float64)), TypeError, 'delta must have the dtype'),
    (dict(B=torch.randn(2, 2, 3, 6).half()), TypeError, 'B must have the dtype'),
    (dict(u=torch.randint(0, 3, (2, 4, 6))), TypeError, 'u must be a floating tensor'),
    (dict(A=torch.randn(4, 3, device='meta')), ValueError, 'one device'),
], ids=lambda v: v if isinstance(v, str) else '')
def test_invalid_inputs(changes, error, match):
    with pytest.raises(error, match=match):
        selective_scan(**_bad(**changes), backend='torch')
