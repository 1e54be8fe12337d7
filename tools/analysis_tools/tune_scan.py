"""Choose the Triton scan kernels' launch configuration on this GPU.

Times the fused SS2D kernels at the benchmark's shapes (FM-YOLOv8-l at 640x640: P3, P4, P5;
batch 4) under candidate launches, for each d_state: the chunked kernels' forward for every
(chunk, channel block, warps, next-chunk prefetch) and the backward for every (chunk,
channel block, warps), summed over the three levels. The chunk is shared by the two passes;
the best chunk is the one with the smallest best-forward + best-backward time. Prints every
timing and the winner, and with ``--out`` writes the winners as JSON that
``benchmark_scan.py --launch-config`` reads (the chunked kernels' defaults in
``fusion_mamba/ops/selective_scan/triton_kernels.py`` came from this script).

    python tools/analysis_tools/tune_scan.py [--dtype bf16] [--d-states 16 1] [--out best.json]
        [--compile-workers 8]
    python tools/analysis_tools/tune_scan.py --sequential [--d-states 16] [--out best.json]

``--sequential`` tunes the sequential kernels instead (channels-last inputs, batch 16 by
default; ``--batch 1`` for latency): the gradient-free forward for every (``seq_fwd_block``,
``seq_fwd_programs``) and a training pass, the forward that saves states and the backward,
for every (``seq_chunk``, ``seq_bwd_block``, ``seq_bwd_programs``, ``seq_bwd_maxnreg``), the
other fields at their defaults (the training forward follows the backward's layout and
grid). Each candidate gets the layout the SS2D module would give the scan under it:
channels-last where the sequential kernels run, channel-major where a small grid leaves the
scan to the chunked kernels (so at batch 1 the unsegmented forward and backward are timed as
the model runs them, without copies; the chunked backward once, as the candidate with
``seq_bwd_programs`` 0). Each line gives the sum over the levels and each level's time.
Candidates run their backward channel block on every grid (``seq_bwd_wide_block`` 0). The
timed scans are single SS2D calls of FM-YOLOv8-l's shapes; a DSSF module scans its two
branches in one call of twice the channels, which ``--batch`` 2B models at batch B.

Compiling the candidates takes most of the time; ``--compile-workers`` compiles them in
parallel processes first (into Triton's on-disk cache, which the timing run then reads).
"""
import argparse
import itertools
import json
import multiprocessing
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_scan import DTYPES, LEVELS, cuda_time, ss2d_inputs  # noqa: E402

from fusion_mamba.ops import ss2d_selective_scan  # noqa: E402
from fusion_mamba.ops.selective_scan import triton_kernels  # noqa: E402

# {chunk: (channel block, warps) launches} tried for each pass, by padded d_state; only
# launches whose registers fit without spilling (ptxas for sm_90). Tokens go to the
# threads' registers first, then to warps when the channels x states do not fill them.
CANDIDATES = {
    'many_states': {16: ((1, 1), (2, 1), (2, 2), (2, 4), (4, 2), (8, 4)),
                    32: ((1, 1), (2, 2), (2, 4), (4, 4)),
                    64: ((2, 4), )},
    'few_states': {8: ((32, 1), ),
                   16: ((4, 4), (8, 4), (8, 8), (16, 2), (32, 1)),
                   64: ((4, 4), (8, 4), (8, 8)),
                   256: ((4, 4), (4, 8))},
}


# values tried for the sequential kernels' fields (d_state >= 8)
SEQUENTIAL_CANDIDATES = dict(seq_fwd_block=(8, 16, 32), seq_fwd_programs=(0, 1024, 2048, 4096),
                             seq_chunk=(16, 32, 64), seq_bwd_block=(8, 16, 32),
                             seq_bwd_programs=(0, 1024, 2048, 4096), seq_bwd_maxnreg=(0, 168))
BACKWARD_FIELDS = ('seq_chunk', 'seq_bwd_block', 'seq_bwd_programs', 'seq_bwd_maxnreg')


def parse_args():
    parser = argparse.ArgumentParser(description='Tune the Triton scan launch configuration.')
    parser.add_argument('--dtype', choices=DTYPES, default='bf16')
    parser.add_argument('--sequential', action='store_true',
                        help="tune the sequential kernels (channels-last inputs) instead of "
                        "the chunked ones")
    parser.add_argument('--batch', type=int, default=None,
                        help='batch size (default 4, with --sequential 16)')
    parser.add_argument('--d-states', type=int, nargs='+', default=[16, 1])
    parser.add_argument('--reps', type=int, default=10)
    parser.add_argument('--out', help='write the best launches here (JSON)')
    parser.add_argument('--compile-workers', type=int, default=0,
                        help='processes that compile the candidates before timing (0: none)')
    args = parser.parse_args()
    if args.batch is None:
        args.batch = 16 if args.sequential else 4
    return args


def candidates(d_state):
    """Every (pass, LaunchConfig) to time for ``d_state``; the pass not timed keeps the
    chunk's first launch."""
    states = triton_kernels.triton.next_power_of_2(d_state)
    space = CANDIDATES['many_states' if states >= 8 else 'few_states']
    for chunk, launches in space.items():
        anchor = launches[0]
        for launch in launches:  # forward, with and without loading the next chunk early
            for prefetch in (False, True):
                yield False, triton_kernels.LaunchConfig(states, chunk, *launch, *anchor,
                                                         prefetch)
        for launch in launches:
            yield True, triton_kernels.LaunchConfig(states, chunk, *anchor, *launch)


def sequential_candidates(d_state, whole_backward=True):
    """Every (pass, LaunchConfig) of the sequential kernels to time for ``d_state``: the
    forward for each (``seq_fwd_block``, ``seq_fwd_programs``), the backward for each
    (``seq_chunk``, ``seq_bwd_block``, ``seq_bwd_programs``, ``seq_bwd_maxnreg``); the other
    fields are the defaults. Without ``whole_backward`` (the batch's grid is too small for a
    backward over whole sequences, which then runs the chunked kernels) only one candidate
    has ``seq_bwd_programs`` 0. Each candidate runs its ``seq_bwd_block`` on every grid
    (``seq_bwd_wide_block`` 0)."""
    _, dim, height, width = LEVELS[0]
    default = triton_kernels.default_config(d_state, dim, height * width)._replace(
        seq_bwd_wide_block=0)
    if not default.seq_fwd_block:
        raise SystemExit(f'd_state {d_state}: the sequential kernels serve d_state >= 8 only')
    for block in SEQUENTIAL_CANDIDATES['seq_fwd_block']:
        for programs in SEQUENTIAL_CANDIDATES['seq_fwd_programs']:
            yield False, default._replace(seq_fwd_block=block, seq_fwd_programs=programs)
    if not whole_backward:
        yield True, default._replace(seq_bwd_programs=0)
    for chunk, block, programs, maxnreg in itertools.product(
            *(SEQUENTIAL_CANDIDATES[field] for field in BACKWARD_FIELDS)):
        if programs or whole_backward:
            yield True, default._replace(seq_chunk=chunk, seq_bwd_block=block,
                                         seq_bwd_programs=programs, seq_bwd_maxnreg=maxnreg)


def compile_candidates(job):
    """Worker: run each candidate once on a small map of the benchmark's width (same kernel
    specialisation as the timed shapes), filling Triton's cache."""
    dtype, batch, d_state, channels_last, configs = job
    _, dim, _, _ = LEVELS[0]
    inputs = ss2d_inputs(batch, dim, d_state, 8, 8, DTYPES[dtype], torch.device('cuda'),
                         channels_last)
    for config in configs:
        triton_kernels.launch_config = fixed_launch(config)
        with torch.no_grad():  # a forward without states has kernels of its own
            ss2d_selective_scan(**inputs, backend='triton')
        ss2d_selective_scan(**inputs, backend='triton').sum().backward()
    torch.cuda.synchronize()
    return len(configs)


def precompile(args):
    def generate(d_state):
        if args.sequential:
            return sequential_candidates(d_state, sequential_backward(args.batch, d_state))
        return candidates(d_state)

    jobs = [(args.dtype, args.batch, d, args.sequential, [config]) for d in args.d_states
            for _, config in generate(d)]
    with multiprocessing.get_context('spawn').Pool(args.compile_workers) as pool:
        done = sum(pool.imap_unordered(compile_candidates, jobs))
    print(f'compiled {done} candidate launches in {args.compile_workers} processes', flush=True)


def fixed_launch(config):
    return lambda d_state, per_block, length: config


def time_pass(levels, config, backward, reps, training=False):
    """Milliseconds of the forward (or of the backward alone) summed over the levels."""
    return sum(level_times(levels, config, backward, reps, training))


def level_times(levels, config, backward, reps, training=False):
    """Milliseconds of the gradient-free forward (or of the backward alone; with
    ``training`` of the forward that saves states and the backward) at each level."""
    triton_kernels.launch_config = fixed_launch(config)
    times = []
    for inputs, grad in levels:
        if backward and training:
            ms, _ = cuda_time(
                lambda: ss2d_selective_scan(**inputs, backend='triton').backward(grad), reps)
        elif backward:
            y = ss2d_selective_scan(**inputs, backend='triton')
            ms, _ = cuda_time(lambda: y.backward(grad, retain_graph=True), reps)
        else:
            def forward():
                with torch.no_grad():
                    ss2d_selective_scan(**inputs, backend='triton')
            ms, _ = cuda_time(forward, reps)
        times.append(ms)
    triton_kernels.launch_config = triton_kernels.default_config
    return times


def timed_levels(d_state, args, channels_last=False):
    """(inputs, output gradient) of the benchmark's levels."""
    device, dtype = torch.device('cuda'), DTYPES[args.dtype]
    levels = []
    for _, dim, height, width in LEVELS:
        inputs = ss2d_inputs(args.batch, dim, d_state, height, width, dtype, device,
                             channels_last)
        levels.append((inputs, torch.randn_like(inputs['x'])))
    return levels


def sequential_backward(batch, d_state):
    """Whether the sequential backward over whole sequences (``seq_bwd_programs`` 0) runs
    at every level for ``batch`` (else the chunked kernels take such a backward)."""
    _, dim, height, width = LEVELS[0]
    whole = triton_kernels.default_config(d_state, dim, height * width)._replace(
        seq_bwd_programs=0)
    return all(triton_kernels.sequential_scan(batch, 4, dim, d_state, True, whole)
               for _, dim, _, _ in LEVELS)


def module_layouts(config, by_layout, d_state, batch, backward):
    """Each level's (inputs, gradient) in the layout the SS2D module hands the scan under
    ``config``: channels-last where the sequential kernels run, else channel-major (as
    ``SS2D.prefers_channels_last`` decides). ``by_layout``: {channels_last: levels}."""
    return [by_layout[triton_kernels.sequential_scan(batch, 4, dim, d_state, backward, config)][i]
            for i, (_, dim, _, _) in enumerate(LEVELS)]


def tune_sequential(d_state, args):
    """Time the sequential kernels' candidates of ``d_state``; return the best
    :class:`LaunchConfig` (the forward's best ``seq_fwd_block`` and ``seq_fwd_programs`` with
    the training pass's best :data:`BACKWARD_FIELDS`)."""
    by_layout = {layout: timed_levels(d_state, args, layout) for layout in (True, False)}
    print(f'd_state {d_state}, sequential kernels: ms summed over '
          f'{", ".join(level[0] for level in LEVELS)}')
    whole_backward = sequential_backward(args.batch, d_state)
    if not whole_backward:
        print(f'batch {args.batch}: a backward over whole sequences runs the chunked kernels '
              '(the f+b line with bprogs 0)')
    level_names = ''.join(f' {level[0]:>7}' for level in LEVELS)
    print(f'{"pass":4} {"fblock":>6} {"fprogs":>6} {"chunk":>5} {"bblock":>6} {"bprogs":>6} '
          f'{"bregs":>5} {"ms":>8}{level_names}')
    best = {}
    for backward, config in sequential_candidates(d_state, whole_backward):
        levels = module_layouts(config, by_layout, d_state, args.batch, backward)
        times = level_times(levels, config, backward, args.reps, training=True)
        ms = sum(times)
        print(f'{"f+b" if backward else "fwd":4} {config.seq_fwd_block:6d} '
              f'{config.seq_fwd_programs:6d} {config.seq_chunk:5d} {config.seq_bwd_block:6d} '
              f'{config.seq_bwd_programs:6d} {config.seq_bwd_maxnreg:5d} {ms:8.3f}'
              + ''.join(f' {level_ms:7.3f}' for level_ms in times), flush=True)
        if backward not in best or ms < best[backward][1]:
            best[backward] = (config, ms)
    _, dim, height, width = LEVELS[0]
    default = triton_kernels.default_config(d_state, dim, height * width)
    (forward, fwd_ms), (backward, bwd_ms) = best[False], best[True]
    winner = forward._replace(**{field: getattr(backward, field) for field in BACKWARD_FIELDS})
    default_ms = sum(time_pass(module_layouts(default, by_layout, d_state, args.batch, pass_),
                               default, pass_, args.reps, training=True) for pass_ in (False, True))
    print(f'best for d_state {d_state}: {winner} ({fwd_ms + bwd_ms:.3f} ms: forward + '
          f'training pass); default {default} ({default_ms:.3f} ms)', flush=True)
    return winner


def tune(d_state, args):
    """Time every candidate of ``d_state``; return the best :class:`LaunchConfig`."""
    levels = timed_levels(d_state, args)
    print(f'd_state {d_state}: ms summed over {", ".join(level[0] for level in LEVELS)}')
    print(f'{"chunk":>5} {"pass":4} {"block":>5} {"warps":>5} {"ms":>8}')
    times = {}
    for backward, config in candidates(d_state):
        times[backward, config] = time_pass(levels, config, backward, args.reps)
        block, warps = config[4:6] if backward else config[2:4]
        prefetch = '' if backward else (' prefetch' if config.fwd_prefetch else '')
        print(f'{config.chunk:5d} {"bwd" if backward else "fwd":4} {block:5d} {warps:5d} '
              f'{times[backward, config]:8.3f}{prefetch}', flush=True)
    best = None
    for chunk in sorted({config.chunk for _, config in times}):
        winners = [min(((config, ms) for (bwd, config), ms in times.items()
                        if bwd == backward and config.chunk == chunk), key=lambda item: item[1])
                   for backward in (False, True)]
        total = winners[0][1] + winners[1][1]
        if best is None or total < best[0]:
            best = (total, winners[0][0]._replace(bwd_block=winners[1][0].bwd_block,
                                                  bwd_warps=winners[1][0].bwd_warps))
    _, dim, height, width = LEVELS[0]
    default = triton_kernels.default_config(d_state, dim, height * width)
    # the chunk of gradient-free forwards is not tuned here (the timed forwards run with it
    # off); keep the default's
    best = (best[0], best[1]._replace(nograd_chunk=default.nograd_chunk))
    default_ms = (time_pass(levels, default, False, args.reps)
                  + time_pass(levels, default, True, args.reps))
    print(f'best for d_state {d_state}: {best[1]} ({best[0]:.3f} ms fwd + bwd); '
          f'default {default} ({default_ms:.3f} ms)', flush=True)
    return best[1]


def main():
    args = parse_args()
    print(f'device: {torch.cuda.get_device_name()}; torch {torch.__version__}; '
          f'triton {triton_kernels.triton.__version__}; dtype {args.dtype}; batch {args.batch}')
    if args.compile_workers:
        precompile(args)
    tuner = tune_sequential if args.sequential else tune
    best = {str(d): list(tuner(d, args)) for d in args.d_states}
    if args.out:
        Path(args.out).write_text(json.dumps(best, indent=1))
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
