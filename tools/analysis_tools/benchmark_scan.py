"""Benchmark the selective-scan backends.

On CUDA: SS2D (4 directions, merged) at the shapes of FM-YOLOv8-l at 640x640 (P3 80x80 with
inner width 512, P4 40x40 and P5 20x20 with 1024; batch 4) for d_state 16 and 1. For each
available backend it prints forward and forward+backward time (median, CUDA events), peak
memory, the achieved bandwidth over the bytes the op must read and write, that bandwidth as
a share of the device's measured copy bandwidth, and the speed-up over mamba-ssm's kernel
(wrapped in the same torch cross-scan / merge) when mamba-ssm is installed. ``--layout``
chooses the inputs' memory layout: channels-last as the SS2D module makes them on CUDA (the
default; Triton's sequential kernels when the grid is large enough, see
``triton_kernels.SEQ_MIN_PROGRAMS``) or channel-major (Triton's chunked kernels).

On CPU: one 1D scan (fp32, with D, z, delta_bias and softplus) at B=8, D=512, L in (1280,
320) for d_state 8 and 16, for every available CPU backend but ``reference`` (the compiled
``cpp`` one and the chunked ``torch`` one; name ``reference`` in ``--backends`` to add the
per-token loop). It prints the forward time (with autograd recording), the backward time and
their sum (medians of wall-clock time; the backends take turns in every repetition) and the
speed-ups over the ``torch`` backend.

    python tools/analysis_tools/benchmark_scan.py [--dtype bf16] [--backends triton mamba_ssm]
        [--launch-config best.json] [--layout channels_last|channel_major]
    python tools/analysis_tools/benchmark_scan.py --device cpu [--threads 2] [--states]

``--states`` (CPU) times ``selective_scan_states`` (Spatial-Mamba's hidden states, d_state 1
by default) instead of the scan: u, delta, A, B and delta_bias, softplus.
"""
import argparse
import statistics
import time

import torch

from fusion_mamba.ops import (available_backends, selective_scan, selective_scan_states,
                              ss2d_selective_scan)
from fusion_mamba.ops.selective_scan import add_launch_config_argument, use_launch_config

DTYPES = dict(fp32=torch.float32, fp16=torch.float16, bf16=torch.bfloat16)
LEVELS = (('P3', 512, 80, 80), ('P4', 1024, 40, 40), ('P5', 1024, 20, 20))
CPU_SHAPES = ((8, 512, 1280), (8, 512, 320))  # (batch, dim, length)
CPU_ONLY_BACKENDS = ('cpp', )


def parse_args():
    parser = argparse.ArgumentParser(description='Benchmark the selective-scan backends.')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--dtype', choices=DTYPES, default='bf16',
                        help='input dtype on CUDA (CPU always uses fp32)')
    parser.add_argument('--batch', type=int, default=4, help='batch size on CUDA')
    parser.add_argument('--layout', choices=('channel_major', 'channels_last'),
                        default='channels_last',
                        help="memory layout of the SS2D inputs on CUDA: 'channels_last' as "
                        "the SS2D module makes them on CUDA (Triton's sequential kernels on "
                        "large grids), 'channel_major' as on CPU (Triton's chunked kernels)")
    parser.add_argument('--d-states', type=int, nargs='+', default=None,
                        help='d_state values (default: 16 1 on CUDA, 8 16 on CPU)')
    parser.add_argument('--backends', nargs='+', default=None,
                        help='backends to time (default: every available one for the device '
                        'but reference)')
    parser.add_argument('--reps', type=int, default=None,
                        help='timed repetitions (default: 20 on CUDA, 5 on CPU)')
    parser.add_argument('--threads', type=int, default=None,
                        help='CPU threads (torch.set_num_threads; default: torch\'s)')
    parser.add_argument('--states', action='store_true',
                        help='on CPU, time selective_scan_states instead of selective_scan')
    add_launch_config_argument(parser)
    return parser.parse_args()


def default_backends(device_type):
    """The backends available here that run on ``device_type``, but ``reference``."""
    cpu = ('torch', ) + CPU_ONLY_BACKENDS
    return [b for b in available_backends() if b != 'reference'
            and (b in cpu if device_type == 'cpu' else b not in CPU_ONLY_BACKENDS)]


# memory order of each SS2D input in the channels-last layout SS2D makes on CUDA (see
# SelectiveScanModule.token_parameters): x (B, H, W, D), delta (K, B, H, W, D), B / C (B, H, W,
# K, N)
CHANNELS_LAST_ORDER = dict(x=(0, 2, 3, 1), delta=(1, 0, 3, 4, 2), B=(0, 3, 4, 1, 2),
                           C=(0, 3, 4, 1, 2))


def ss2d_inputs(batch, dim, d_state, height, width, dtype, device, channels_last=False):
    def rand(*shape, scale=1.0, dt=dtype):
        return (torch.randn(*shape, device=device) * scale).to(dt)

    inputs = dict(x=rand(batch, dim, height, width),
                  delta=rand(batch, 4, dim, height, width, scale=0.5),
                  A=-torch.rand(4 * dim, d_state, device=device) - 0.5,
                  B=rand(batch, 4, d_state, height, width),
                  C=rand(batch, 4, d_state, height, width),
                  D=rand(4 * dim, dt=torch.float32), delta_bias=rand(4 * dim, dt=torch.float32))
    if channels_last:
        for key, order in CHANNELS_LAST_ORDER.items():
            inverse = [order.index(i) for i in range(len(order))]
            inputs[key] = inputs[key].permute(*order).contiguous().permute(*inverse)
    return {k: v.requires_grad_() for k, v in inputs.items()}


def ss2d_bytes(inputs, backward):
    """Bytes an SS2D op must at least move: read x, delta, B, C; write y (and the grads)."""
    big = [inputs[k] for k in ('x', 'delta', 'B', 'C')]
    io = sum(t.numel() * t.element_size() for t in big)
    out = inputs['x'].numel() * inputs['x'].element_size()
    return io + out if not backward else 2 * (io + out) + io  # fwd + (read + dy) + grads


def cuda_time(fn, reps):
    """Median milliseconds of ``fn`` and its peak extra memory (MiB)."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    return statistics.median(times), peak


def copy_bandwidth(device):
    """Device-to-device copy bandwidth in GB/s (read + write) of a 1 GiB buffer."""
    src = torch.empty(2**28, device=device)
    dst = torch.empty_like(src)
    ms, _ = cuda_time(lambda: dst.copy_(src), 10)
    return 2 * src.numel() * src.element_size() / ms / 1e6


def bench_cuda(args):
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    backends = args.backends or default_backends('cuda')
    d_states, reps = args.d_states or [16, 1], args.reps or 20
    peak_bw = copy_bandwidth(device)
    print(f'device: {torch.cuda.get_device_name(device)}; torch {torch.__version__}; '
          f'dtype {args.dtype}; batch {args.batch}; {args.layout} inputs; measured copy '
          f'bandwidth {peak_bw:.0f} GB/s')
    header = (f'{"level":5} {"D":>5} {"HxW":>6} {"N":>3} {"backend":10} {"fwd ms":>8} '
              f'{"f+b ms":>8} {"peak MiB":>9} {"fwd GB/s":>9} {"f+b GB/s":>9} {"f+b %bw":>8} '
              f'{"vs mamba fwd":>12} {"vs mamba f+b":>12}')
    print(header)
    print('-' * len(header))
    for d_state in d_states:
        for level, dim, height, width in LEVELS:
            inputs = ss2d_inputs(args.batch, dim, d_state, height, width, dtype, device,
                                 args.layout == 'channels_last')
            grad = torch.randn_like(inputs['x'])
            results = {}
            for backend in backends:
                n_reps = reps if backend != 'torch' else 3

                def forward():
                    with torch.no_grad():
                        ss2d_selective_scan(**inputs, backend=backend)

                def forward_backward():
                    ss2d_selective_scan(**inputs, backend=backend).backward(grad)

                fwd, _ = cuda_time(forward, n_reps)
                fb, peak = cuda_time(forward_backward, n_reps)
                results[backend] = (fwd, fb, peak)
            for backend, (fwd, fb, peak) in results.items():
                fwd_bw = ss2d_bytes(inputs, False) / fwd / 1e6
                fb_bw = ss2d_bytes(inputs, True) / fb / 1e6
                ratio = ('', '')
                if 'mamba_ssm' in results:
                    ratio = (f'{results["mamba_ssm"][0] / fwd:.2f}x',
                             f'{results["mamba_ssm"][1] / fb:.2f}x')
                print(f'{level:5} {dim:5d} {height:>3}x{width:<2} {d_state:3d} {backend:10} '
                      f'{fwd:8.3f} {fb:8.3f} {peak:9.0f} {fwd_bw:9.0f} {fb_bw:9.0f} '
                      f'{100 * fb_bw / peak_bw:7.1f}% {ratio[0]:>12} {ratio[1]:>12}')


def scan_inputs(batch, dim, d_state, length):
    """Random fp32 1D-scan inputs (with D, z and delta_bias) as leaves requiring grad."""
    inputs = dict(u=torch.randn(batch, dim, length), delta=torch.randn(batch, dim, length) * 0.5,
                  A=-torch.rand(dim, d_state) - 0.5, B=torch.randn(batch, d_state, length),
                  C=torch.randn(batch, d_state, length), D=torch.randn(dim),
                  z=torch.randn(batch, dim, length), delta_bias=torch.randn(dim) * 0.3)
    return {k: v.requires_grad_() for k, v in inputs.items()}


def cpu_times(inputs, backends, reps, op=selective_scan):
    """{backend: (forward ms, backward ms)} of ``op`` (``selective_scan`` or
    ``selective_scan_states``), medians of wall-clock time; the forward records autograd. The
    backends take turns in every repetition, so that load from other processes falls on all
    of them alike (the per-token ``reference`` runs once)."""
    grad = torch.randn_like(inputs['u'])

    def run(backend):
        for t in inputs.values():
            t.grad = None
        start = time.perf_counter()
        y = op(**inputs, delta_softplus=True, backend=backend)
        mid = time.perf_counter()
        y.backward(grad)
        return (mid - start) * 1e3, (time.perf_counter() - mid) * 1e3

    times = {b: [] for b in backends}
    for b in backends:
        run(b)  # warm-up (and, for 'cpp', the build or load of the extension)
    for rep in range(reps):
        for b in backends:
            if b != 'reference' or rep == 0:
                times[b].append(run(b))
    return {b: tuple(statistics.median(x) for x in zip(*runs)) for b, runs in times.items()}


def bench_cpu(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    backends = args.backends or default_backends('cpu')
    d_states = args.d_states or ([1] if args.states else [8, 16])
    reps = args.reps or 5
    what = ('hidden states (selective_scan_states), with delta_bias and softplus' if args.states
            else '1D scan, with D, z, delta_bias and softplus')
    print(f'CPU, {torch.get_num_threads()} threads; torch {torch.__version__}; fp32 {what}; '
          f'median of {reps} runs')
    header = (f'{"B":>3} {"D":>5} {"N":>3} {"L":>5} {"backend":10} {"fwd ms":>9} {"bwd ms":>9} '
              f'{"f+b ms":>9}   speed-up over torch: fwd / bwd / f+b')
    print(header)
    print('-' * len(header))
    torch.manual_seed(0)
    for d_state in d_states:
        for batch, dim, length in CPU_SHAPES:
            inputs = scan_inputs(batch, dim, d_state, length)
            if args.states:
                inputs = {k: inputs[k] for k in ('u', 'delta', 'A', 'B', 'delta_bias')}
            results = cpu_times(inputs, backends, reps,
                                selective_scan_states if args.states else selective_scan)
            for backend, (fwd, bwd) in results.items():
                ratio = ''
                if 'torch' in results:
                    base = results['torch']
                    ratio = (f'{base[0] / fwd:.2f}x / {base[1] / bwd:.2f}x / '
                             f'{sum(base) / (fwd + bwd):.2f}x')
                print(f'{batch:3d} {dim:5d} {d_state:3d} {length:5d} {backend:10} {fwd:9.1f} '
                      f'{bwd:9.1f} {fwd + bwd:9.1f}   {ratio}', flush=True)


def main():
    args = parse_args()
    if torch.device(args.device).type == 'cuda':
        use_launch_config(args.launch_config)
        bench_cuda(args)
    else:
        bench_cpu(args)


if __name__ == '__main__':
    main()
