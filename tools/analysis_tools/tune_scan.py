"""Choose the Triton scan kernels' launch configuration on this GPU.

Times the fused SS2D kernels at the benchmark's shapes (FM-YOLOv8-l at 640x640: P3, P4, P5;
batch 4) under candidate launches, for each d_state: the forward for every (chunk, channel
block, warps) and the backward for every (chunk, channel block, warps), summed over the three
levels. The chunk is shared by the two passes; the best chunk is the one with the smallest
best-forward + best-backward time. Prints every timing and the winner, and with ``--out``
writes the winners as JSON that ``benchmark_scan.py --launch-config`` reads (the defaults in
``fusion_mamba/ops/selective_scan/triton_kernels.py`` came from this script).

    python tools/analysis_tools/tune_scan.py [--dtype bf16] [--d-states 16 1] [--out best.json]
"""
import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_scan import DTYPES, LEVELS, cuda_time, ss2d_inputs  # noqa: E402

from fusion_mamba.ops import ss2d_selective_scan  # noqa: E402
from fusion_mamba.ops.selective_scan import triton_kernels  # noqa: E402

# (chunk, channel block, warps) tried for each pass, by padded d_state: one thread per
# (channel, state) pair and chunk lengths whose registers fit without spilling (sm_90)
CANDIDATES = {
    'many_states': dict(chunks=(8, 16, 32), launches=((2, 1), (4, 2), (8, 4), (16, 8))),
    'few_states': dict(chunks=(8, 16), launches=((32, 1), (64, 2), (128, 4))),
}


def parse_args():
    parser = argparse.ArgumentParser(description='Tune the Triton scan launch configuration.')
    parser.add_argument('--dtype', choices=DTYPES, default='bf16')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--d-states', type=int, nargs='+', default=[16, 1])
    parser.add_argument('--reps', type=int, default=10)
    parser.add_argument('--out', help='write the best launches here (JSON)')
    return parser.parse_args()


def fixed_launch(config):
    return lambda d_state, per_block, length: config


def time_pass(levels, config, backward, reps):
    """Milliseconds of the forward (or of the backward alone) summed over the levels."""
    triton_kernels.launch_config = fixed_launch(config)
    total = 0.0
    for inputs, grad in levels:
        if backward:
            y = ss2d_selective_scan(**inputs, backend='triton')
            ms, _ = cuda_time(lambda: y.backward(grad, retain_graph=True), reps)
        else:
            def forward():
                with torch.no_grad():
                    ss2d_selective_scan(**inputs, backend='triton')
            ms, _ = cuda_time(forward, reps)
        total += ms
    triton_kernels.launch_config = triton_kernels.default_config
    return total


def tune(d_state, args):
    """Time every candidate of ``d_state``; return the best :class:`LaunchConfig`."""
    device, dtype = torch.device('cuda'), DTYPES[args.dtype]
    states = triton_kernels.triton.next_power_of_2(d_state)
    space = CANDIDATES['many_states' if states >= 8 else 'few_states']
    levels = []
    for _, dim, height, width in LEVELS:
        inputs = ss2d_inputs(args.batch, dim, d_state, height, width, dtype, device)
        levels.append((inputs, torch.randn(args.batch, dim, height, width, device=device,
                                           dtype=dtype)))
    print(f'd_state {d_state}: ms summed over {", ".join(level[0] for level in LEVELS)}')
    print(f'{"chunk":>5} {"pass":4} {"block":>5} {"warps":>5} {"ms":>8}')
    anchor = space['launches'][1]  # the other pass's launch while one pass is timed
    best = None
    for chunk in space['chunks']:
        winners = []
        for backward in (False, True):
            times = {}
            for launch in space['launches']:
                fwd, bwd = (anchor, launch) if backward else (launch, anchor)
                config = triton_kernels.LaunchConfig(states, chunk, *fwd, *bwd)
                times[launch] = time_pass(levels, config, backward, args.reps)
                print(f'{chunk:5d} {"bwd" if backward else "fwd":4} {launch[0]:5d} '
                      f'{launch[1]:5d} {times[launch]:8.3f}', flush=True)
            winners.append(min(times.items(), key=lambda item: item[1]))
        total = winners[0][1] + winners[1][1]
        if best is None or total < best[0]:
            best = (total, triton_kernels.LaunchConfig(states, chunk, *winners[0][0],
                                                       *winners[1][0]))
    _, dim, height, width = LEVELS[0]
    default = triton_kernels.default_config(d_state, dim, height * width)
    default_ms = (time_pass(levels, default, False, args.reps)
                  + time_pass(levels, default, True, args.reps))
    print(f'best for d_state {d_state}: {best[1]} ({best[0]:.3f} ms fwd + bwd); '
          f'default {default} ({default_ms:.3f} ms)', flush=True)
    return best[1]


def main():
    args = parse_args()
    print(f'device: {torch.cuda.get_device_name()}; torch {torch.__version__}; '
          f'triton {triton_kernels.triton.__version__}; dtype {args.dtype}; batch {args.batch}')
    best = {str(d): list(tune(d, args)) for d in args.d_states}
    if args.out:
        Path(args.out).write_text(json.dumps(best, indent=1))
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
