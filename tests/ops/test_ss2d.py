"""CPU tests of SS2D, the cross-scan helpers and the cross-modal interleaved scan."""
import pytest
import torch
from ops_testing import (assert_close, assert_grads_close, cross_modal_inputs, detached_copy,
                         direction_indices, explicit_cross_modal, explicit_ss2d, grads_of,
                         segmented_launch, ss2d_inputs)

from fusion_mamba.ops import (cross_merge, cross_modal_ss2d_scan, cross_scan,
                              deinterleave_tokens, interleave_tokens, ss2d_selective_scan)


@pytest.mark.parametrize('hw', [(1, 1), (3, 5), (4, 4), (6, 2)], ids=str)
def test_cross_scan_orders_and_merge(hw):
    height, width = hw
    x = torch.randn(2, 3, height, width)
    seqs = cross_scan(x)
    assert seqs.shape == (2, 4, 3, height * width)
    for k, idx in enumerate(direction_indices(height, width)):
        torch.testing.assert_close(seqs[:, k], x.flatten(2)[..., idx])
    torch.testing.assert_close(cross_merge(seqs, hw), 4 * x)
    torch.testing.assert_close(cross_merge(seqs.view(2, 4, 3, height, width)), 4 * x)


def test_cross_merge_rejects_bad_shapes():
    with pytest.raises(ValueError, match='cross_merge expects'):
        cross_merge(torch.randn(2, 4, 3, 12))
    with pytest.raises(ValueError, match='cross_merge expects'):
        cross_merge(torch.randn(2, 3, 3, 12), (3, 4))


def test_interleave_roundtrip():
    a, b = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    x = interleave_tokens(a, b)
    assert x.shape == (2, 3, 10)
    torch.testing.assert_close(x[..., 0::2], a)
    torch.testing.assert_close(x[..., 1::2], b)
    a2, b2 = deinterleave_tokens(x)
    torch.testing.assert_close(a2, a)
    torch.testing.assert_close(b2, b)
    with pytest.raises(ValueError):
        interleave_tokens(a, b[..., :4])
    with pytest.raises(ValueError):
        deinterleave_tokens(x[..., :9])


@pytest.mark.parametrize('backend', ['torch', 'reference', 'parallel'])
@pytest.mark.parametrize('shape', [(1, 3, 1, 4, 7), (2, 4, 16, 5, 3)], ids=str)
def test_ss2d_matches_explicit_cross_scan(shape, backend):
    inputs = ss2d_inputs(*shape)
    y = ss2d_selective_scan(**inputs, backend=backend)
    assert y.shape == inputs['x'].shape
    ref_inputs = detached_copy(inputs)
    y_ref = explicit_ss2d(**ref_inputs)
    assert_close(y, y_ref, torch.float32, 'y')
    assert_grads_close(grads_of(y, inputs), grads_of(y_ref, ref_inputs), torch.float32)


@pytest.mark.parametrize('backend', ['torch', 'reference', 'parallel'])
def test_grouped_ss2d_scans_each_group_with_its_own_projections(backend):
    """With B / C of shape (B, 4, G, N, H, W) the channels form G equal groups, group g
    scanning with B[:, :, g] and C[:, :, g]: G explicit SS2D scans of its channels
    (outputs and gradients)."""
    inputs = ss2d_inputs(2, 6, 4, 5, 3, groups=2)
    y = ss2d_selective_scan(**inputs, backend=backend)
    ref_inputs = detached_copy(inputs)
    y_ref = explicit_ss2d(**ref_inputs)
    assert_close(y, y_ref, torch.float32, 'y')
    assert_grads_close(grads_of(y, inputs), grads_of(y_ref, ref_inputs), torch.float32)
    with pytest.raises(ValueError, match='4 channel groups do not divide the 6 channels'):
        ss2d_selective_scan(**dict(inputs, B=torch.randn(2, 4, 4, 4, 5, 3)), backend=backend)


def test_ss2d_without_optional_parameters():
    inputs = ss2d_inputs(1, 2, 4, 3, 4, extras=False)
    y = ss2d_selective_scan(**inputs, delta_softplus=False, backend='torch')
    assert_close(y, explicit_ss2d(**detached_copy(inputs), delta_softplus=False), torch.float32)


@pytest.mark.parametrize('shape', [(1, 2, 1, 3, 4), (2, 3, 16, 4, 2)], ids=str)
def test_cross_modal_matches_explicit_interleaving(shape):
    inputs = cross_modal_inputs(*shape)
    ys = cross_modal_ss2d_scan(**inputs, backend='torch')
    assert [y.shape for y in ys] == [inputs['x_a'].shape] * 2
    ref_inputs = detached_copy(inputs)
    refs = explicit_cross_modal(**ref_inputs)
    for y, ref in zip(ys, refs):
        assert_close(y, ref, torch.float32)
    assert_grads_close(grads_of(ys, inputs), grads_of(refs, ref_inputs), torch.float32)


@pytest.mark.parametrize('name, shape, match', [
    ('x', (2, 3, 4), r'x must be \(B, D, H, W\)'),
    ('delta', (1, 4, 3, 4, 4), 'delta must have shape'),
    ('A', (8, 2), 'A must have shape'),
    ('B', (1, 4, 3, 4, 5), 'B must have shape'),
    ('C', (1, 2, 2, 4, 5), 'C must have shape'),
    ('D', (3, ), 'D must have shape'),
])
def test_ss2d_invalid_shapes(name, shape, match):
    inputs = {k: v.detach() for k, v in ss2d_inputs(1, 3, 2, 4, 5).items()}
    inputs[name] = torch.randn(shape)
    with pytest.raises(ValueError, match=match):
        ss2d_selective_scan(**inputs, backend='torch')


def test_cross_modal_rejects_mismatched_modalities():
    inputs = {k: v.detach() for k, v in cross_modal_inputs(1, 2, 2, 3, 4).items()}
    inputs['delta_b'] = torch.randn(1, 4, 2, 4, 3)
    with pytest.raises(ValueError, match='delta must have shape'):
        cross_modal_ss2d_scan(**inputs, backend='torch')
    grouped = {k: v.detach() for k, v in cross_modal_inputs(1, 2, 2, 3, 4).items()}
    grouped['B_a'] = grouped['B_a'].unsqueeze(2)  # (B, 4, 1, N, H, W): SS2D's grouped form
    with pytest.raises(ValueError, match='without channel groups'):
        cross_modal_ss2d_scan(**grouped, backend='torch')


def test_channels_last_is_preferred_only_for_the_sequential_triton_kernels(monkeypatch):
    """The SS2D branch keeps maps channels-last only where Triton's sequential kernels run:
    on CUDA at d_state >= 8, on grids of at least SEQ_MIN_PROGRAMS warps, and without a
    backward on every grid when the launch cuts the forward into segments (the default; a
    launch with ``seq_fwd_programs`` 0 does not), with one on every grid when it cuts the
    backward's (``seq_bwd_programs``, the default too); never on CPU backends."""
    from fusion_mamba.ops import ss2d_prefers_channels_last
    assert not ss2d_prefers_channels_last(64, 512, 16, 'cpu')
    assert not ss2d_prefers_channels_last(64, 512, 16, 'cpu', backend='torch', needs_grad=False)
    pytest.importorskip('triton')
    from fusion_mamba.ops.selective_scan import triton_kernels
    # the default launch segments small forwards and backwards: batch 1 runs them too
    for needs_grad in (True, False):
        assert triton_kernels.sequential_scan(1, 4, 512, 16, needs_grad)
        assert not triton_kernels.sequential_scan(64, 4, 512, 1, needs_grad)  # d_state 1
    # a launch that cuts no sequence needs a full grid: FM-YOLOv8-l's P3 (512 channels, 4
    # directions) has 16 warps of 32 channels per direction
    whole = triton_kernels.default_config(16, 512, 6400)._replace(
        seq_fwd_programs=0, seq_bwd_programs=0)
    assert triton_kernels.SEQ_MIN_PROGRAMS == 256
    for needs_grad in (True, False):
        assert triton_kernels.sequential_scan(4, 4, 512, 16, needs_grad, whole)
        assert not triton_kernels.sequential_scan(3, 4, 512, 16, needs_grad, whole)
        assert triton_kernels.sequential_scan(2, 4, 1024, 16, needs_grad, whole)
    # each pass follows its own field
    assert triton_kernels.sequential_scan(1, 4, 512, 16, True,
                                          whole._replace(seq_bwd_programs=1024))
    assert not triton_kernels.sequential_scan(1, 4, 512, 16, False,
                                              whole._replace(seq_bwd_programs=1024))
    monkeypatch.setattr(triton_kernels, 'launch_config', segmented_launch(triton_kernels, 0))
    assert not triton_kernels.sequential_scan(1, 4, 512, 16, needs_grad=False)


def test_backward_block_widens_only_on_full_grids():
    """The default launch (``seq_bwd_wide_block``) gives the sequential backward wider programs
    where the grid of them still fills ``seq_bwd_programs`` (FM-YOLOv8-l at batch 8 with both
    DSSF branches in one call: 2 x 512 channels at P3), the narrow ones elsewhere."""
    pytest.importorskip('triton')
    from fusion_mamba.ops.selective_scan import triton_kernels
    cfg = triton_kernels.default_config(16, 512, 6400)
    assert (cfg.seq_bwd_programs, cfg.seq_bwd_block, cfg.seq_bwd_wide_block) == (1024, 16, 32)
    assert triton_kernels.backward_block(cfg, 8, 4, 1024) == 32  # 1024 programs
    assert triton_kernels.backward_block(cfg, 8, 4, 512) == 16  # 512 of 32 channels
    assert triton_kernels.backward_block(cfg, 4, 4, 1024) == 16
    assert triton_kernels.backward_block(cfg, 16, 4, 512) == 32
    for off in (dict(seq_bwd_wide_block=0), dict(seq_bwd_programs=0)):
        assert triton_kernels.backward_block(cfg._replace(**off), 64, 4, 1024) == 16
    assert triton_kernels.default_config(32, 512, 6400).seq_bwd_wide_block == 0  # untimed


def test_scans_group_only_where_one_call_keeps_the_sequential_kernels():
    """Several SS2D scans go into one grouped call only on the Triton backend, and only
    where every sequential channel block (32 channels) fits in one map's channels: with
    48 channels a grouped call would leave the sequential kernels for the chunked ones."""
    from fusion_mamba.ops import ss2d_scans_group
    assert not ss2d_scans_group(512, 16, torch.device('cpu'))
    assert not ss2d_scans_group(512, 16, torch.device('cpu'), backend='cpp')
    pytest.importorskip('triton')
    from fusion_mamba.ops.selective_scan import triton_kernels
    assert triton_kernels.groups_keep_sequential(16, 512)
    assert triton_kernels.groups_keep_sequential(16, 64)
    assert not triton_kernels.groups_keep_sequential(16, 48)
    assert triton_kernels.groups_keep_sequential(1, 48)  # d_state 1: chunked kernels anyway


@pytest.mark.parametrize('training', [False, True])
@pytest.mark.parametrize('programs,length', [(64, 6400), (128, 1600), (128, 400), (4096, 6400),
                                             (3, 40), (1, 31)])
def test_sequential_segments_fill_the_grid(programs, length, training):
    """A sequential gradient-free forward (or training pass) on a small grid cuts each
    sequence into segments of a multiple of the saved-state interval that cover it exactly
    once, enough of them for about ``seq_fwd_programs`` (``seq_bwd_programs``) programs (at
    most one per interval); a full grid is not cut."""
    pytest.importorskip('triton')
    from fusion_mamba.ops.selective_scan import triton_kernels
    cfg = segmented_launch(triton_kernels)(16, 512, length)
    if training:  # the training pass's own field, the gradient-free forward's off
        cfg = cfg._replace(seq_fwd_programs=0, seq_bwd_programs=cfg.seq_fwd_programs)
    target = cfg.seq_bwd_programs if training else cfg.seq_fwd_programs
    seg_len, segments = triton_kernels.sequence_segments(cfg, programs, length, training)
    if programs >= target:
        assert (seg_len, segments) == (length, 1)
        return
    chunks = -(-length // cfg.seq_chunk)
    assert seg_len % cfg.seq_chunk == 0
    assert (segments - 1) * seg_len < length <= segments * seg_len
    wanted = min(-(-target // programs), chunks)
    # rounding each segment up to whole intervals may drop a few segments, never half
    assert wanted / 2 < segments <= wanted
