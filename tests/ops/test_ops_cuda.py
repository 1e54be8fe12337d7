"""CUDA tests: every GPU backend against the sequential reference (run on a GPU machine)."""
import functools

import pytest
import torch
from ops_testing import (assert_close, assert_grads_close, channels_last_ss2d,
                         cross_modal_inputs, detached_copy, explicit_cross_modal, explicit_ss2d,
                         grads_of, scan_inputs, segmented_launch, ss2d_inputs)

from fusion_mamba.ops import (available_backends, cross_modal_ss2d_scan, selective_scan,
                              selective_scan_states, ss2d_selective_scan)

pytestmark = pytest.mark.cuda
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
SHAPES = [  # (batch, dim, d_state, length, groups)
    (1, 1, 1, 1, None),
    (2, 5, 16, 7, None),
    (2, 4, 1, 255, 2),
    (1, 6, 16, 1000, 3),
    (2, 64, 16, 129, None),
    (1, 8, 1, 4096, None),
    (1, 4, 16, 4096, 2),
]


GPU_BACKENDS = ['torch', 'triton', 'mamba_ssm']


def require(backend):
    if backend not in available_backends():
        pytest.skip(f'backend {backend!r} is not available here')


@functools.lru_cache(maxsize=None)
def scan_reference(shape, dtype):
    """(inputs, y, grads) of the reference scan; shared by the backends' tests."""
    inputs = scan_inputs(*shape, dtype=dtype, device='cuda')
    ref_inputs = detached_copy(inputs)
    ref = selective_scan(**ref_inputs, delta_softplus=True, backend='reference')
    return inputs, ref.detach(), grads_of(ref, ref_inputs)


@pytest.mark.parametrize('backend', GPU_BACKENDS)
@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('shape', SHAPES, ids=str)
def test_backends_match_reference(shape, dtype, backend):
    require(backend)
    inputs, ref, g_ref = scan_reference(shape, dtype)
    ours_inputs = detached_copy(inputs)
    ours = selective_scan(**ours_inputs, delta_softplus=True, backend=backend)
    assert ours.dtype == dtype
    assert_close(ours, ref, dtype, 'y')
    assert_grads_close(grads_of(ours, ours_inputs), g_ref, dtype)


@pytest.mark.parametrize('backend', GPU_BACKENDS)
def test_last_state_and_no_softplus(backend):
    require(backend)
    inputs = scan_inputs(2, 8, 16, 300, dtype=torch.float32, device='cuda', extras=False)
    inputs['delta'] = inputs['delta'].detach().abs().requires_grad_()  # no softplus: keep > 0
    y, last = selective_scan(**inputs, return_last_state=True, backend=backend)
    y_ref, last_ref = selective_scan(**detached_copy(inputs), return_last_state=True,
                                     backend='reference')
    assert_close(y, y_ref, torch.float32)
    assert_close(last, last_ref, torch.float32)


def test_states_on_cuda():
    inputs = scan_inputs(2, 16, 1, 500, device='cuda', extras=False)
    args = dict(u=inputs['u'], delta=inputs['delta'], A=inputs['A'], B=inputs['B'])
    h = selective_scan_states(**args, delta_softplus=True)
    ref_args = detached_copy(args)
    h_ref = selective_scan_states(**ref_args, delta_softplus=True, backend='reference')
    assert h.shape == (2, 16, 500)
    assert_close(h, h_ref, torch.float32)
    assert_grads_close(grads_of(h, args), grads_of(h_ref, ref_args), torch.float32)


@functools.lru_cache(maxsize=None)
def ss2d_reference(shape, dtype, groups=None):
    inputs = ss2d_inputs(*shape, dtype=dtype, device='cuda', groups=groups)
    ref_inputs = detached_copy(inputs, torch.float32)  # sum the directions without rounding
    ref = explicit_ss2d(**ref_inputs)
    return inputs, ref.detach(), grads_of(ref, ref_inputs)


@pytest.fixture
def sequential_on_small_grids(monkeypatch):
    """Triton's sequential kernels for channels-last inputs whatever the grid size, over
    whole sequences (no segments)."""
    from fusion_mamba.ops.selective_scan import triton_kernels
    monkeypatch.setattr(triton_kernels, 'SEQ_MIN_PROGRAMS', 0)

    def config(d_state, per_block, length):
        return triton_kernels.default_config(d_state, per_block, length)._replace(
            seq_fwd_programs=0, seq_bwd_programs=0)
    monkeypatch.setattr(triton_kernels, 'launch_config', config)


@pytest.fixture
def whole_sequence_launch(monkeypatch):
    """The default launch without the backward's segments: a channels-last SS2D with
    gradients on a small grid takes the chunked kernels on contiguous copies."""
    from fusion_mamba.ops.selective_scan import triton_kernels

    def config(d_state, per_block, length):
        return triton_kernels.default_config(d_state, per_block, length)._replace(
            seq_bwd_programs=0)
    monkeypatch.setattr(triton_kernels, 'launch_config', config)


LAYOUT_FIXTURES = {'channels_last': 'sequential_on_small_grids',
                   'channels_last_chunked': 'whole_sequence_launch'}


@pytest.mark.parametrize('layout', ['channel_major', 'channels_last', 'channels_last_default',
                                    'channels_last_chunked'])
@pytest.mark.parametrize('backend', GPU_BACKENDS)
@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('shape', [(1, 3, 1, 5, 7), (2, 5, 16, 9, 4), (2, 64, 16, 20, 20),
                                   (1, 16, 1, 40, 24), (2, 40, 12, 7, 9), (1, 96, 16, 33, 17)],
                         ids=str)
def test_ss2d_backends_match_explicit_reference(shape, dtype, backend, layout, request):
    """Both layouts of the inputs: channels-last runs Triton's sequential kernels (masked
    channel blocks at D = 5 / 40, masked states at d_state 12) over whole sequences, or
    under the default launch on a grid this small cut into segments, or under a launch
    without the backward's segments the chunked kernels on contiguous copies (d_state 1:
    the chunked kernels everywhere)."""
    require(backend)
    channels_last = layout != 'channel_major'
    if layout in LAYOUT_FIXTURES:
        request.getfixturevalue(LAYOUT_FIXTURES[layout])
    inputs, ref, g_ref = ss2d_reference(shape, dtype)
    ours_inputs = (channels_last_ss2d if channels_last else detached_copy)(inputs)
    ours = ss2d_selective_scan(**ours_inputs, backend=backend)
    assert ours.dtype == dtype and ours.shape == ref.shape
    # mamba-ssm returns each direction rounded to the input dtype before the 4-way merge
    assert_close(ours, ref, dtype, 'y', 4 if backend == 'mamba_ssm' else 1)
    assert_grads_close(grads_of(ours, ours_inputs), g_ref, dtype)


@pytest.mark.parametrize('layout', ['channel_major', 'channels_last', 'channels_last_default',
                                    'channels_last_chunked'])
@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('shape', [(2, 64, 16, 20, 20), (1, 128, 12, 9, 31)], ids=str)
def test_grouped_ss2d_on_triton(shape, dtype, layout, request):
    """Two channel groups with their own B / C (the RGB and IR branches of a DSSF module in
    one call) on every Triton path (masked states in the second shape): each group's
    explicit SS2D, outputs and gradients."""
    require('triton')
    if layout in LAYOUT_FIXTURES:
        request.getfixturevalue(LAYOUT_FIXTURES[layout])
    inputs, ref, g_ref = ss2d_reference(shape, dtype, groups=2)
    ours_inputs = (detached_copy if layout == 'channel_major' else channels_last_ss2d)(inputs)
    ours = ss2d_selective_scan(**ours_inputs, backend='triton')
    sequential = layout in ('channels_last', 'channels_last_default')
    assert ours.stride(1) == 1 if sequential else ours.is_contiguous()
    assert_close(ours, ref, dtype)
    assert_grads_close(grads_of(ours, ours_inputs), g_ref, dtype)


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('shape,groups', [((2, 64, 16, 20, 20), None),
                                          ((3, 40, 12, 33, 17), None),
                                          ((2, 64, 16, 20, 20), 2)], ids=str)
def test_ss2d_training_on_wide_backward_programs(shape, groups, dtype, monkeypatch):
    """Under a launch whose grids here all hold enough 32-channel backward programs
    (``seq_bwd_wide_block``), a channels-last SS2D trains on them, uncut (masked channels
    and states in the second shape, two groups of 32 channels in the third): the
    reference's output and gradients."""
    require('triton')
    from fusion_mamba.ops.selective_scan import triton_kernels

    def config(d_state, per_block, length):
        return triton_kernels.default_config(d_state, per_block, length)._replace(
            seq_bwd_programs=8, seq_bwd_block=16, seq_bwd_wide_block=32)
    monkeypatch.setattr(triton_kernels, 'launch_config', config)
    batch, dim, d_state, height, width = shape
    cfg = config(d_state, dim, height * width)
    assert triton_kernels.backward_block(cfg, batch, 4, dim) == 32
    inputs, ref, g_ref = ss2d_reference(shape, dtype, groups)
    ours_inputs = channels_last_ss2d(inputs)
    ours = ss2d_selective_scan(**ours_inputs, backend='triton')
    assert ours.stride(1) == 1  # the sequential kernels' channels-last output
    assert_close(ours, ref, dtype)
    assert_grads_close(grads_of(ours, ours_inputs), g_ref, dtype)


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('shape', [(1, 64, 16, 40, 40), (3, 40, 12, 33, 17)], ids=str)
def test_ss2d_inference_on_sequence_segments(shape, dtype, monkeypatch):
    """Without gradients, under a launch that cuts the sequential forward into segments, a
    channels-last SS2D runs Triton's sequential forward on any grid, cutting the sequences
    of a small one into segments (masked channels and states in the second shape): the
    reference's output."""
    require('triton')
    from fusion_mamba.ops.selective_scan import triton_kernels
    monkeypatch.setattr(triton_kernels, 'launch_config', segmented_launch(triton_kernels))
    batch, dim, d_state, height, width = shape
    cfg = triton_kernels.launch_config(d_state, dim, height * width)
    programs = batch * 4 * -(-dim // cfg.seq_fwd_block)
    assert triton_kernels.sequence_segments(cfg, programs, height * width)[1] > 1
    inputs, ref, _ = ss2d_reference(shape, dtype)
    with torch.no_grad():
        ours = ss2d_selective_scan(**channels_last_ss2d(inputs), backend='triton')
    assert ours.stride(1) == 1  # the sequential kernels' channels-last output
    assert_close(ours, ref, dtype)


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('shape', [(1, 64, 16, 40, 40), (3, 40, 12, 33, 17)], ids=str)
def test_ss2d_training_on_sequence_segments(shape, dtype, monkeypatch):
    """Under a launch that cuts the sequential backward into segments (``seq_bwd_programs``),
    a channels-last SS2D trains on the sequential kernels on a grid too small for whole
    sequences, the sequences cut into several segments: the reference's output and
    gradients."""
    require('triton')
    from fusion_mamba.ops.selective_scan import triton_kernels
    launch = segmented_launch(triton_kernels)

    def config(d_state, per_block, length):
        return launch(d_state, per_block, length)._replace(seq_bwd_programs=2048)
    monkeypatch.setattr(triton_kernels, 'launch_config', config)
    batch, dim, d_state, height, width = shape
    cfg = config(d_state, dim, height * width)
    assert not triton_kernels.sequential_scan(batch, 4, dim, d_state, True,
                                              cfg._replace(seq_bwd_programs=0))
    programs = batch * 4 * -(-dim // triton_kernels.backward_block(cfg, batch, 4, dim))
    assert triton_kernels.sequence_segments(cfg, programs, height * width, training=True)[1] > 1
    inputs, ref, g_ref = ss2d_reference(shape, dtype)
    ours_inputs = channels_last_ss2d(inputs)
    ours = ss2d_selective_scan(**ours_inputs, backend='triton')
    assert ours.stride(1) == 1  # the sequential kernels' channels-last output
    assert_close(ours, ref, dtype)
    assert_grads_close(grads_of(ours, ours_inputs), g_ref, dtype)


@pytest.mark.parametrize('backend', GPU_BACKENDS)
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16], ids=str)
def test_cross_modal_on_cuda(dtype, backend):
    require(backend)
    inputs = cross_modal_inputs(2, 8, 16, 6, 5, dtype=dtype, device='cuda')
    ref_inputs = detached_copy(inputs, torch.float32)
    refs = explicit_cross_modal(**ref_inputs)
    g_ref = grads_of(refs, ref_inputs)
    ours_inputs = detached_copy(inputs)
    ys = cross_modal_ss2d_scan(**ours_inputs, backend=backend)
    for y, ref in zip(ys, refs):
        assert_close(y, ref, dtype)
    assert_grads_close(grads_of(ys, ours_inputs), g_ref, dtype)


def test_mixed_devices_are_rejected():
    inputs = {k: v.detach() for k, v in scan_inputs(1, 4, 2, 8, device='cuda').items()}
    inputs['B'] = inputs['B'].cpu()
    with pytest.raises(ValueError, match='one device'):
        selective_scan(**inputs)


def test_auto_picks_triton_on_cuda():
    if 'triton' not in available_backends():
        pytest.skip('triton is not installed')
    from fusion_mamba.ops import resolve_backend
    assert resolve_backend('auto', 'cuda') == 'triton'


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_triton_scan_op_passes_opcheck_and_compiles(dtype, sequential_on_small_grids):
    """``torch.ops.fusion_mamba.triton_scan_forward``: schema, fake kernel and autograd pass
    opcheck in both layouts, and torch.compile (inductor) traces SS2D in one graph with
    eager's output."""
    require('triton')
    inputs = ss2d_inputs(2, 40, 16, 6, 10, dtype=dtype, device='cuda')
    b, d, h, w = inputs['x'].shape
    for layout in (detached_copy(inputs), channels_last_ss2d(inputs)):
        flat = {k: v.detach().reshape(b, *v.shape[1:-2], h * w).requires_grad_()
                for k, v in layout.items() if k in ('x', 'delta', 'B', 'C')}
        args = (flat['x'], flat['delta'], inputs['A'].detach().float().requires_grad_(),
                flat['B'], flat['C'], inputs['D'].detach().requires_grad_(),
                inputs['delta_bias'].detach().requires_grad_(), True, h, w, False, True)
        torch.library.opcheck(torch.ops.fusion_mamba.triton_scan_forward, args)

    def fn(**kwargs):
        return ss2d_selective_scan(**kwargs, backend='triton')

    explanation = torch._dynamo.explain(fn)(**detached_copy(inputs))
    assert explanation.graph_break_count == 0, explanation.break_reasons
    compiled = torch.compile(fn, fullgraph=True)
    ours = compiled(**inputs)
    ref_inputs = detached_copy(inputs, torch.float32)
    ref = explicit_ss2d(**ref_inputs)
    assert_close(ours, ref, dtype)
    assert_grads_close(grads_of(ours, inputs), grads_of(ref, ref_inputs), dtype)
