"""The Triton kernels' logic on the CPU, through Triton's interpreter (slow; needs triton)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r'''
import copy

import torch
from ops_testing import (assert_close, assert_grads_close, channels_last_ss2d, detached_copy,
                         explicit_ss2d, grads_of, scan_inputs, ss2d_inputs)
from fusion_mamba.ops import selective_scan, selective_scan_states, ss2d_selective_scan
from fusion_mamba.ops.selective_scan import triton_kernels


def check_scan():
    inputs = scan_inputs(2, 4, 3, 70, groups=2)
    ours = selective_scan(**inputs, delta_softplus=True, backend='triton')
    ref_inputs = detached_copy(inputs)
    ref = selective_scan(**ref_inputs, delta_softplus=True, backend='reference')
    assert_close(ours, ref, torch.float32)
    assert_grads_close(grads_of(ours, inputs), grads_of(ref, ref_inputs), torch.float32)


def check_states():
    full = scan_inputs(2, 4, 1, 70, groups=2, extras=False)
    inputs = {k: full[k] for k in ('u', 'delta', 'A', 'B')}
    ours = selective_scan_states(**inputs, delta_softplus=True, backend='triton')
    ref_inputs = detached_copy(inputs)
    ref = selective_scan_states(**ref_inputs, delta_softplus=True, backend='reference')
    assert_close(ours, ref, torch.float32)
    assert_grads_close(grads_of(ours, inputs), grads_of(ref, ref_inputs), torch.float32)


def check_ss2d(dim, d_state, height, width, channels_last=False, batch=1, groups=None):
    inputs = ss2d_inputs(batch, dim, d_state, height, width, groups=groups)
    if channels_last:  # the sequential forward (for d_state >= 8)
        inputs = channels_last_ss2d(inputs)
    ours = ss2d_selective_scan(**inputs, backend='triton')
    per_group = dim // (groups or 1)
    cfg = triton_kernels.launch_config(d_state, per_group, 1)
    blocks = [b for b in (cfg.seq_fwd_block, cfg.seq_bwd_block, cfg.seq_bwd_wide_block) if b]
    # a channel block of the sequential kernels must not straddle two groups
    sequential = channels_last and cfg.seq_fwd_block > 0 and (
        groups is None or all(per_group % block == 0 for block in blocks))
    assert ours.stride(1) == 1 if sequential else ours.is_contiguous()
    ref_inputs = detached_copy(inputs)
    ref = explicit_ss2d(**ref_inputs)
    assert_close(ours, ref, torch.float32)
    assert_grads_close(grads_of(ours, inputs), grads_of(ref, ref_inputs), torch.float32)
    with torch.no_grad():  # inference: no chunk states are saved
        assert_close(ss2d_selective_scan(**inputs, backend='triton'), ref, torch.float32)


def check_ss2d_unusual_layouts():
    # channels-last inputs the SS2D module does not make, through the sequential kernels:
    # C in another layout than B, delta shared by the directions (stride 0 over K), and saved
    # tensors that come back channel-major (a saved-tensor hook: the backward must still run
    # the sequential kernels, whose saved states it gets)
    inputs = channels_last_ss2d(ss2d_inputs(1, 2, 16, 3, 4))
    inputs['C'] = inputs['C'].detach().contiguous().requires_grad_()
    ref_inputs = detached_copy(inputs)
    ref = explicit_ss2d(**ref_inputs)
    ref_grads = grads_of(ref, ref_inputs)
    ours = ss2d_selective_scan(**inputs, backend='triton')
    assert_close(ours, ref, torch.float32)
    assert_grads_close(grads_of(ours, inputs), ref_grads, torch.float32)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: t.contiguous(), lambda t: t):
        ours = ss2d_selective_scan(**inputs, backend='triton')
    assert_grads_close(grads_of(ours, inputs), ref_grads, torch.float32)
    shared = inputs['delta'].detach()[:, :1].clone().requires_grad_()
    ref_shared = shared.detach().clone().requires_grad_()
    others = {k: v.detach() for k, v in inputs.items() if k != 'delta'}
    ours = ss2d_selective_scan(delta=shared.expand(-1, 4, -1, -1, -1), **others,
                               backend='triton')
    ref = explicit_ss2d(delta=ref_shared.expand(-1, 4, -1, -1, -1), **others)
    assert_close(ours, ref, torch.float32)
    assert_grads_close(grads_of(ours, {'delta': shared}), grads_of(ref, {'delta': ref_shared}),
                       torch.float32)


def check_last_state_channels_last():
    # the operator given a channels-last x and asked for the last state runs the chunked
    # kernels (and their state buffer): output, last state and gradients of the reference
    full = scan_inputs(1, 32, 16, 40, extras=False)
    inputs = {k: full[k] for k in ('u', 'delta', 'A', 'B', 'C')}
    ref_inputs = detached_copy(inputs)
    ref, ref_last = selective_scan(**ref_inputs, delta_softplus=True, return_last_state=True,
                                   backend='reference')
    u = inputs['u'].detach().transpose(1, 2).contiguous().transpose(1, 2).requires_grad_()
    assert u.stride(1) == 1
    ours, last, _ = torch.ops.fusion_mamba.triton_scan_forward(
        u, inputs['delta'].unsqueeze(1), inputs['A'], inputs['B'].unsqueeze(1),
        inputs['C'].unsqueeze(1), None, None, True, 1, 40, True, True)
    assert_close(ours, ref, torch.float32)
    assert_close(last, ref_last, torch.float32)
    ours_inputs = dict(inputs, u=u)
    assert_grads_close(grads_of(ours, ours_inputs), grads_of(ref, ref_inputs), torch.float32)


def check_grouped_dssf():
    # a DSSF step as CUDA runs it: both branches' maps channels-last and concatenated, one
    # convolution, one grouped scan through the sequential kernels; against the same
    # weights on the torch backend, branch by branch (outputs and every gradient)
    from fusion_mamba.models.fusion.fusion_mamba_block import DSSF
    torch.manual_seed(0)
    dssf = DSSF(16, dict(type='SS2D', d_state=16, backend='triton'))  # 32 inner channels
    ref = copy.deepcopy(dssf)
    for branch in ref.branches:
        branch.ssm.backend = 'torch'
    maps = [torch.randn(2, 16, 3, 5) for _ in range(2)]
    first, second = (branch.ssm for branch in dssf.branches)
    assert first.groups_with(second, maps[0].device)
    assert dssf.branches[0].scans_channels_last(maps[0])  # with a backward to come
    weights = [torch.randn(2, 16, 3, 5) for _ in range(2)]

    def run(module):
        inputs = [x.detach().clone().requires_grad_() for x in maps]
        out = module(*inputs)
        loss = sum((o * w).sum() for o, w in zip(out, weights))
        return out, torch.autograd.grad(loss, inputs + list(module.parameters()))
    (out, grads), (ref_out, ref_grads) = run(dssf), run(ref)
    for o in out:
        assert o.is_contiguous(memory_format=torch.channels_last)
    for got, want in zip(out + grads, ref_out + ref_grads):
        assert_close(got, want, torch.float32)


def with_launch(chunk, fwd, bwd, prefetch=False, nograd_chunk=0, seq=(0, 32, 8, 0)):
    # the kernels under other launches: several chunks per column, channel blocks that
    # differ between the passes, the prefetching forward, a longer no-gradient chunk and
    # the sequential kernels with 8-channel forward programs, states saved every 4 tokens
    # (several per sequence), 8-channel backward programs, the forward's sequences cut into
    # segments of 4 tokens (up to 64 programs) and, with a fifth field, the backward's (a
    # sixth caps the backward's registers, which only a compiled kernel feels)
    def config(d_state, per_block, length):
        np_ = triton_kernels.triton.next_power_of_2(d_state)
        return triton_kernels.LaunchConfig(np_, chunk, *fwd, *bwd, prefetch, nograd_chunk,
                                           *seq)
    return config


triton_kernels.NOGRAD_CHUNK_MIN_PROGRAMS = 0  # the no-gradient chunk on these small grids too
triton_kernels.SEQ_MIN_PROGRAMS = 0  # and the sequential kernels
for launch in (triton_kernels.default_config, with_launch(4, (2, 1), (1, 1)),
               with_launch(8, (1, 1), (2, 2), prefetch=True),
               with_launch(4, (2, 1), (1, 1), prefetch=True, nograd_chunk=8),
               with_launch(4, (2, 1), (1, 1), seq=(8, 4, 8, 64))):
    triton_kernels.launch_config = launch
    check_scan()
    check_states()
    check_ss2d(3, 2, 3, 5)
    check_ss2d(2, 16, 5, 3)
    check_ss2d(2, 16, 5, 3, channels_last=True)
    check_ss2d(16, 16, 3, 2, channels_last=True, groups=2)  # two groups of 8 channels
check_ss2d(40, 12, 3, 4, channels_last=True)  # two channel blocks, the second and states masked
# the segmented launch above cut check_ss2d(2, 16, 5, 3)'s 15 tokens (4 programs) into 4
# segments; at batch 3 (12 programs) into 4 segments again, each batch its own
segmented = with_launch(4, (2, 1), (1, 1), seq=(8, 4, 8, 64))
assert triton_kernels.sequence_segments(segmented(16, 2, 15), 4, 15) == (4, 4)
assert triton_kernels.sequence_segments(segmented(16, 2, 15), 12, 15) == (4, 4)
triton_kernels.launch_config = segmented
check_ss2d(2, 16, 5, 3, channels_last=True, batch=3)
# training passes (the backward and the forward saving states for it) cut as well: 15 tokens
# (4 programs) in 4 one-chunk segments, 42 tokens (11 chunks) in 5 segments of 2 chunks and
# a last of 1, and at batch 3 (12 programs) in 2 segments of 6 and 5 chunks
both = with_launch(4, (2, 1), (1, 1), seq=(8, 4, 8, 64, 24, 168))  # registers capped
assert triton_kernels.sequence_segments(both(16, 2, 15), 4, 15, training=True) == (4, 4)
assert triton_kernels.sequence_segments(both(16, 2, 42), 4, 42, training=True) == (8, 6)
assert triton_kernels.sequence_segments(both(16, 2, 42), 12, 42, training=True) == (24, 2)
triton_kernels.SEQ_MIN_PROGRAMS = 10 ** 6  # only the segmented launch may pick them
triton_kernels.launch_config = both
check_ss2d(2, 16, 5, 3, channels_last=True)
check_ss2d(2, 16, 6, 7, channels_last=True)
check_ss2d(2, 16, 6, 7, channels_last=True, batch=3)
check_ss2d(10, 12, 6, 7, channels_last=True)  # masked channels and states, 12 programs
check_ss2d(16, 12, 6, 7, channels_last=True, groups=2)
# 32-channel backward programs wherever they fill 2 programs (all grids here): one masked
# block of 2 channels, two of 40 with masked states
wide = with_launch(4, (2, 1), (1, 1), seq=(8, 4, 8, 64, 2, 0, 32))
triton_kernels.launch_config = wide
assert triton_kernels.backward_block(wide(16, 2, 15), 1, 4, 2) == 32
check_ss2d(2, 16, 5, 3, channels_last=True)
check_ss2d(40, 12, 3, 4, channels_last=True)
triton_kernels.SEQ_MIN_PROGRAMS = 0
# the forward's two-token iterations over whole sequences of odd length and over segments
# of 4 tokens, the last of 3; one-row and one-column maps wrap their runs every token
for fwd_programs in (0, 64):
    triton_kernels.launch_config = with_launch(4, (2, 1), (1, 1), seq=(8, 4, 8, fwd_programs))
    check_ss2d(2, 16, 5, 3, channels_last=True)
    check_ss2d(40, 12, 3, 4, channels_last=True)
    check_ss2d(2, 16, 1, 5, channels_last=True)
    check_ss2d(2, 16, 6, 1, channels_last=True)
triton_kernels.launch_config = triton_kernels.default_config
check_ss2d_unusual_layouts()
check_last_state_channels_last()
check_grouped_dssf()
# the custom operator's schema, fake kernel and autograd registration
for d_state, layout in ((4, detached_copy), (16, channels_last_ss2d)):
    inputs = layout(ss2d_inputs(1, 2, d_state, 3, 5))
    b, d, h, w = inputs['x'].shape
    flat = {k: v.detach().reshape(b, *v.shape[1:-2], h * w).requires_grad_()
            for k, v in inputs.items() if k in ('x', 'delta', 'B', 'C')}
    torch.library.opcheck(torch.ops.fusion_mamba.triton_scan_forward, (
        flat['x'], flat['delta'], inputs['A'].detach().float().requires_grad_(), flat['B'],
        flat['C'], inputs['D'].detach().requires_grad_(),
        inputs['delta_bias'].detach().requires_grad_(), True, h, w, False, True))
print('interpreter ok')
'''


@pytest.mark.slow
def test_triton_kernels_in_interpreter():
    pytest.importorskip('triton')
    here = Path(__file__).resolve().parent
    env = dict(os.environ, TRITON_INTERPRET='1',
               PYTHONPATH=os.pathsep.join([str(here), str(here.parents[1] / 'projects'),
                                           os.environ.get('PYTHONPATH', '')]))
    result = subprocess.run([sys.executable, '-c', SCRIPT], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'interpreter ok' in result.stdout
