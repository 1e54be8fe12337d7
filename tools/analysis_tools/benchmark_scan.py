"""Benchmark the selective-scan backends.

On CUDA: SS2D (4 directions, merged) at the shapes of FM-YOLOv8-l at 640x640 (P3 80x80 with
inner width 512, P4 40x40 and P5 20x20 with 1024; batch 4) for d_state 16 and 1. For each
available backend it prints forward and forward+backward time (median, CUDA events), peak
memory, the achieved bandwidth over the bytes the op must read and write, that bandwidth as
a share of the device's measured copy bandwidth, and the speed-up over mamba-ssm's kernel
(wrapped in the same torch cross-scan / merge) when mamba-ssm is installed.

On CPU: the torch backend against the per-token autograd loop (the ``reference`` backend)
for one 1D scan (B=2, D=256, N=16, L=40x40).

    python tools/analysis_tools/benchmark_scan.py [--dtype bf16] [--backends triton mamba_ssm]
"""
import argparse
import statistics
import time

import torch

from fusion_mamba.ops import available_backends, selective_scan, ss2d_selective_scan

DTYPES = dict(fp32=torch.float32, fp16=torch.float16, bf16=torch.bfloat16)
LEVELS = (('P3', 512, 80, 80), ('P4', 1024, 40, 40), ('P5', 1024, 20, 20))


def parse_args():
    parser = argparse.ArgumentParser(description='Benchmark the selective-scan backends.')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--dtype', choices=DTYPES, default='bf16',
                        help='input dtype on CUDA (CPU always uses fp32)')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--d-states', type=int, nargs='+', default=[16, 1])
    parser.add_argument('--backends', nargs='+', default=None,
                        help='backends to time (default: every available one but reference)')
    parser.add_argument('--reps', type=int, default=20, help='timed repetitions on CUDA')
    return parser.parse_args()


def ss2d_inputs(batch, dim, d_state, height, width, dtype, device):
    def rand(*shape, scale=1.0, dt=dtype):
        return (torch.randn(*shape, device=device) * scale).to(dt).requires_grad_()

    return dict(x=rand(batch, dim, height, width),
                delta=rand(batch, 4, dim, height, width, scale=0.5),
                A=(-torch.rand(4 * dim, d_state, device=device) - 0.5).requires_grad_(),
                B=rand(batch, 4, d_state, height, width), C=rand(batch, 4, d_state, height, width),
                D=rand(4 * dim, dt=torch.float32), delta_bias=rand(4 * dim, dt=torch.float32))


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
    backends = args.backends or [b for b in available_backends() if b != 'reference']
    peak_bw = copy_bandwidth(device)
    print(f'device: {torch.cuda.get_device_name(device)}; torch {torch.__version__}; '
          f'dtype {args.dtype}; batch {args.batch}; measured copy bandwidth {peak_bw:.0f} GB/s')
    header = (f'{"level":5} {"D":>5} {"HxW":>6} {"N":>3} {"backend":10} {"fwd ms":>8} '
              f'{"f+b ms":>8} {"peak MiB":>9} {"fwd GB/s":>9} {"f+b GB/s":>9} {"f+b %bw":>8} '
              f'{"vs mamba fwd":>12} {"vs mamba f+b":>12}')
    print(header)
    print('-' * len(header))
    for d_state in args.d_states:
        for level, dim, height, width in LEVELS:
            inputs = ss2d_inputs(args.batch, dim, d_state, height, width, dtype, device)
            grad = torch.randn(args.batch, dim, height, width, device=device, dtype=dtype)
            results = {}
            for backend in backends:
                reps = args.reps if backend != 'torch' else 3

                def forward():
                    with torch.no_grad():
                        ss2d_selective_scan(**inputs, backend=backend)

                def forward_backward():
                    ss2d_selective_scan(**inputs, backend=backend).backward(grad)

                fwd, _ = cuda_time(forward, reps)
                fb, peak = cuda_time(forward_backward, reps)
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


def bench_cpu(args):
    batch, dim, d_state, length = 2, 256, 16, 40 * 40
    torch.manual_seed(0)
    print(f'CPU, {torch.get_num_threads()} threads; 1D scan B={batch} D={dim} N={d_state} '
          f'L={length} (40x40), fp32')
    inputs = dict(u=torch.randn(batch, dim, length), delta=torch.randn(batch, dim, length) * 0.5,
                  A=-torch.rand(dim, d_state) - 0.5, B=torch.randn(batch, d_state, length),
                  C=torch.randn(batch, d_state, length), D=torch.randn(dim))
    for t in inputs.values():
        t.requires_grad_()
    timings = {}
    for backend, reps in (('torch', 5), ('reference', 1)):
        def forward():
            with torch.no_grad():
                selective_scan(**inputs, delta_softplus=True, backend=backend)

        def forward_backward():
            selective_scan(**inputs, delta_softplus=True, backend=backend).sum().backward()

        row = []
        for fn in (forward, forward_backward):
            fn()
            start = time.perf_counter()
            for _ in range(reps):
                fn()
            row.append((time.perf_counter() - start) / reps * 1e3)
        timings[backend] = row
        print(f'{backend:10} fwd {row[0]:10.1f} ms   fwd+bwd {row[1]:10.1f} ms')
    speedup = [r / t for r, t in zip(timings['reference'], timings['torch'])]
    print(f'torch vs per-token loop: fwd {speedup[0]:.1f}x, fwd+bwd {speedup[1]:.1f}x')


def main():
    args = parse_args()
    if torch.device(args.device).type == 'cuda':
        bench_cuda(args)
    else:
        bench_cpu(args)


if __name__ == '__main__':
    main()
