"""Instruction counts of the Triton scan kernels of one SS2D training step, compiled offline
for a GPU architecture (no GPU needed).

    python tools/analysis_tools/scan_kernel_sass.py [--batch 8] [--channels 512] [--groups 2]
        [--size 80 80] [--d-state 16] [--dtype bf16] [--inference] [--arch 90]
        [--launch-config TABLE.json] [--out JSON] [--dump DIR]

The operands of one grouped SS2D call (``--groups`` maps of ``--channels`` channels,
channels-last, as a DSSF module hands them to :func:`grouped_ss2d`; the defaults are
FM-YOLOv8-l's P3 at batch 8) are built on the meta device; the Triton backend's forward and
backward (``--inference``: the forward of a call without gradients) run on them with every
kernel launch recorded instead of run. Each recorded launch
is compiled for ``sm_<arch>`` with the specialisations Triton's JIT gives a real launch
(integers divisible by 16 unless the kernel's ``do_not_specialize`` names them, 16-byte
aligned tensors) and disassembled with the ``cuobjdump`` that ships with Triton. Printed per
launch: registers, stack (spills), shared memory, instructions, and each loop (a backward
branch) with its instruction count and most frequent opcodes. The token loops take two
tokens per iteration, so their per-token cost is half their count.

Counts depend on the Triton version; compare variants with the same one. They count
instructions, not time: a GPU run (``benchmark_fusion.py``, ``benchmark_train.py
--profile``) decides.
"""
import argparse
import contextlib
import inspect
import json
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile
from collections import Counter
from typing import Dict, List, NamedTuple, Tuple

import torch

TRITON_DTYPES = {torch.float32: 'fp32', torch.float16: 'fp16', torch.bfloat16: 'bf16',
                 torch.int32: 'i32', torch.int64: 'i64', torch.bool: 'i1'}
DTYPES = dict(fp32=torch.float32, bf16=torch.bfloat16, fp16=torch.float16)
TOP_OPCODES = 8  # opcodes listed per loop
INSTRUCTION = re.compile(r'\s+/\*([0-9a-f]{4,})\*/\s+(.*?);')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=8, help='images per call (default 8)')
    parser.add_argument('--channels', type=int, default=512,
                        help='scanned channels D of one map (default 512: FM-l P3)')
    parser.add_argument('--groups', type=int, default=2,
                        help='maps scanned in one call (default 2: a DSSF module)')
    parser.add_argument('--size', type=int, nargs=2, default=(80, 80), metavar=('H', 'W'))
    parser.add_argument('--d-state', type=int, default=16)
    parser.add_argument('--dtype', choices=list(DTYPES), default='bf16',
                        help='activation dtype (bf16: autocast training)')
    parser.add_argument('--inference', action='store_true',
                        help='a forward without gradients (no saved states, no backward)')
    parser.add_argument('--arch', type=int, default=90, help='compute capability x 10')
    parser.add_argument('--launch-config', help='a launch table (see use_launch_table)')
    parser.add_argument('--out', help='also write the counts to this JSON file')
    parser.add_argument('--dump', help='write each launch\'s SASS into this folder')
    return parser.parse_args(argv)


class Launch(NamedTuple):
    """One recorded kernel launch."""
    kernel: object  # triton JITFunction
    grid: Tuple[int, ...]
    args: tuple
    kwargs: dict


@contextlib.contextmanager
def recorded_launches(module, launches: List[Launch]):
    """Within the context, launching any Triton kernel of ``module`` (``kernel[grid](...)``)
    appends a :class:`Launch` to ``launches`` and runs nothing."""
    from triton.runtime.jit import JITFunction

    class Recorder:
        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, grid):
            return lambda *args, **kwargs: launches.append(
                Launch(self.kernel, tuple(grid), args, kwargs))

    kernels = {name: obj for name, obj in vars(module).items() if isinstance(obj, JITFunction)}
    try:
        for name, kernel in kernels.items():
            setattr(module, name, Recorder(kernel))
        yield
    finally:
        for name, kernel in kernels.items():
            setattr(module, name, kernel)


def record_ss2d_step(args) -> List[Launch]:
    """The kernel launches of one grouped SS2D call's forward (saving states for a
    backward) and backward, or with ``args.inference`` its gradient-free forward, on meta
    tensors."""
    from fusion_mamba.models.layers.ss2d import SS2D, _direction_major
    from fusion_mamba.ops.selective_scan import triton_kernels as tk
    height, width = args.size
    dtype = DTYPES[args.dtype]
    with torch.device('meta'):
        modules = [SS2D(args.channels, args.d_state, backend='triton')
                   for _ in range(args.groups)]
        x = torch.empty(args.batch, args.groups * args.channels, height, width, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_(not args.inference)
    delta, B, C = modules[0].grouped_token_parameters(
        x.chunk(args.groups, dim=1), [m.x_proj_weight.to(dtype) for m in modules],
        [m.dt_proj_weight.to(dtype) for m in modules])
    A, D, bias = (_direction_major(group)
                  for group in zip(*(m.scan_constants() for m in modules)))
    launches: List[Launch] = []
    forwards = []
    real_forward = tk.scan_forward

    def forward(*inputs):  # scan_forward's own body, its operands kept for the backward
        outputs = real_forward._init_fn(*inputs)
        forwards.append((inputs, outputs))
        return outputs

    try:
        tk.scan_forward = forward
        with recorded_launches(tk, launches):
            with torch.set_grad_enabled(not args.inference):
                y = tk.ss2d_scan(x, delta, A, B, C, D, delta_bias=bias, delta_softplus=True)
            if args.inference:
                return launches
            (xs, ds, As, Bs, Cs, Ds, biases, softplus, h, w, store_last, save_states), \
                (_, _, hs) = forwards[0]
            sequential = tk._forward_is_sequential(xs, ds, As, Bs, store_last, save_states)
            tk.scan_backward._init_fn(xs, ds, As, Bs, Cs, Ds, biases, hs,
                                      torch.empty_like(y).reshape(xs.shape), softplus, h, w,
                                      True, sequential)
    finally:
        tk.scan_forward = real_forward
    return launches


def signature_of(launch: Launch):
    """Triton's signature, constexprs and specialisation attributes of a launch, as its JIT
    would derive them, and the compile options."""
    kernel = launch.kernel
    kwargs = dict(launch.kwargs)
    options = {key: kwargs.pop(key) for key in ('num_warps', 'num_stages', 'maxnreg')
               if key in kwargs and kwargs[key] is not None}
    kwargs = {key: value for key, value in kwargs.items() if key not in options}
    values = dict(zip(kernel.arg_names, launch.args), **kwargs)
    defaults = inspect.signature(kernel.fn).parameters
    signature, constexprs, attrs = {}, {}, {}
    for index, param in enumerate(kernel.params):
        name = param.name
        value = values[name] if name in values else defaults[name].default
        if param.is_constexpr:
            signature[name], constexprs[name] = 'constexpr', value
        elif isinstance(value, torch.Tensor):
            signature[name] = '*' + TRITON_DTYPES[value.dtype]
            attrs[(index, )] = [['tt.divisibility', 16]]
        elif isinstance(value, bool):
            signature[name] = 'i1'
        elif isinstance(value, int):
            signature[name] = 'i32' if -2 ** 31 <= value < 2 ** 31 else 'i64'
            if value % 16 == 0 and not param.do_not_specialize:
                attrs[(index, )] = [['tt.divisibility', 16]]
        elif isinstance(value, float):
            signature[name] = 'fp32'
        else:
            raise TypeError(f'{kernel.fn.__name__}: argument {name} of type {type(value)}')
    return signature, constexprs, attrs, options


def compile_sass(launch: Launch, arch: int) -> Tuple[str, Dict[str, int]]:
    """The SASS of a launch compiled for sm_<arch>, and its resource usage."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    signature, constexprs, attrs, options = signature_of(launch)
    source = ASTSource(fn=launch.kernel, signature=signature, constexprs=constexprs,
                       attrs=attrs)
    compiled = triton.compile(source, target=GPUTarget('cuda', arch, 32), options=options)
    cuobjdump = osp.join(osp.dirname(triton.__file__), 'backends', 'nvidia', 'bin', 'cuobjdump')
    with tempfile.TemporaryDirectory() as folder:
        cubin = osp.join(folder, 'kernel.cubin')
        with open(cubin, 'wb') as f:
            f.write(compiled.asm['cubin'])
        sass = subprocess.run([cuobjdump, '-sass', cubin], capture_output=True, text=True,
                              check=True).stdout
        usage = subprocess.run([cuobjdump, '-res-usage', cubin], capture_output=True,
                               text=True, check=True).stdout
    resources = {key.lower(): int(value)
                 for key, value in re.findall(r'(REG|STACK|SHARED):(\d+)', usage)}
    return sass, resources


def opcode(text: str) -> str:
    """'@!P0 SHFL.BFLY PT, R1, ...' -> 'SHFL'."""
    words = text.split()
    if words[0].startswith('@'):
        words = words[1:]
    return words[0].split('.')[0]


def sass_summary(sass: str) -> dict:
    """Instruction count and loops (backward branches: instructions from the target to the
    branch, most frequent opcodes) of one kernel's SASS."""
    instructions = [(int(address, 16), text) for address, text in INSTRUCTION.findall(sass)]
    loops = []
    for address, text in instructions:
        branch = re.search(r'\bBRA\s+(?:`\([^)]*\)\s*)?0x([0-9a-f]+)', text)
        if branch and int(branch.group(1), 16) < address:
            start = int(branch.group(1), 16)
            body = Counter(opcode(t) for a, t in instructions if start <= a <= address)
            loops.append(dict(start=start, end=address, instructions=sum(body.values()),
                              opcodes=dict(body.most_common(TOP_OPCODES)),
                              shuffles=body.get('SHFL', 0)))
    return dict(instructions=len(instructions), loops=loops)


def describe(launch: Launch) -> str:
    """Kernel name and its constexprs that matter for the code (block, chunk, summary...)."""
    keys = ('BD', 'NP', 'S', 'T', 'SUMMARY', 'SAVE_STATES', 'WIDE')
    meta = ', '.join(f'{k}={launch.kwargs[k]}' for k in keys if k in launch.kwargs)
    return f'{launch.kernel.fn.__name__} ({meta}), grid {launch.grid}'


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                                'projects'))
    if args.launch_config:
        from fusion_mamba.ops.selective_scan.triton_kernels import use_launch_table
        use_launch_table(args.launch_config)
    import triton
    launches = record_ss2d_step(args)
    height, width = args.size
    step = 'inference forward' if args.inference else 'training forward + backward'
    print(f'SS2D call ({step}): batch {args.batch}, {args.groups} x {args.channels} '
          f'channels, {height}x{width}, d_state {args.d_state}, {args.dtype}, channels-last; '
          f'Triton {triton.__version__}, sm_{args.arch}')
    results = []
    for number, launch in enumerate(launches):
        sass, resources = compile_sass(launch, args.arch)
        summary = dict(kernel=describe(launch), **resources, **sass_summary(sass))
        results.append(summary)
        print(f'\n{summary["kernel"]}: {summary["instructions"]} instructions, '
              f'{resources.get("reg")} registers, stack {resources.get("stack")} B, '
              f'shared {resources.get("shared")} B')
        for loop in summary['loops']:
            ops = ' '.join(f'{k}:{v}' for k, v in loop['opcodes'].items())
            print(f'  loop {loop["start"]:#x}-{loop["end"]:#x}: {loop["instructions"]} '
                  f'instructions ({ops})')
        if args.dump:
            os.makedirs(args.dump, exist_ok=True)
            name = f'{number}_{launch.kernel.fn.__name__}.sass'
            with open(osp.join(args.dump, name), 'w') as f:
                f.write(sass)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(config=vars(args), triton=triton.__version__, launches=results), f,
                      indent=2)
    return results


if __name__ == '__main__':
    main()
